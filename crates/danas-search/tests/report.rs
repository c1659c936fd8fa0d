//! Tests of the study outputs rendered from journal records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use danas_core::{Arch, Candidate, Color, Costs, DataConfig, Limits, Metrics};
use danas_search::pareto::pareto_front;
use danas_search::report::{TrialRow, write_outputs};
use danas_search::{TrialRecord, TrialStatus};
use serde_json::json;

fn trial(id: u64, res: u32, color: Color, acc: f64, ram: f64, flash: f64, status: TrialStatus) -> TrialRecord {
    TrialRecord {
        id,
        genome: vec![id as u16],
        candidate: Candidate::new(DataConfig::new(res, color), Arch::mobilenet_v2(0.35, [1, 1, 0, 0, 0])),
        status,
        seed: id,
        costs: Some(Costs {
            latency_ms: Some(ram / 1000.0),
            macs: Some(1_000_000),
            params: Some(10_000),
            peak_op: Some("b1.dw".into()),
            ..Costs::new(ram as u64, flash as u64)
        }),
        metrics: (status == TrialStatus::Complete)
            .then(|| Metrics::new().with("val_accuracy", acc).with("val_balanced_accuracy", acc)),
        final_checkpoint: None,
        model_dir: None,
        message: None,
        started_at: 1000.0 + id as f64,
        finished_at: Some(1010.0 + id as f64 * 30.0),
        eval_seconds: Some(5.0),
        elapsed_at: Some(10.0 + id as f64 * 30.0),
        rungs: Vec::new(),
    }
}

fn sample() -> Vec<TrialRecord> {
    vec![
        trial(0, 32, Color::Rgb, 0.80, 100_000.0, 500_000.0, TrialStatus::Complete),
        trial(1, 64, Color::Rgb, 0.90, 300_000.0, 600_000.0, TrialStatus::Complete),
        trial(2, 64, Color::Grayscale, 0.85, 120_000.0, 550_000.0, TrialStatus::Complete),
        trial(3, 32, Color::Grayscale, 0.70, 110_000.0, 510_000.0, TrialStatus::Complete), // dominated by 0
        trial(4, 96, Color::Rgb, 0.99, 900_000.0, 700_000.0, TrialStatus::Infeasible),     // over the RAM limit
        trial(5, 96, Color::Rgb, 0.0, 2_000_000.0, 700_000.0, TrialStatus::Infeasible),
    ]
}

#[test]
fn pareto_is_feasible_and_non_dominated() {
    let trials = sample();
    let rows: Vec<TrialRow> = trials.iter().map(TrialRow::from_record).collect();
    let p = pareto_front(&trials);
    let ids: Vec<u64> = p.iter().map(|&i| rows[i].id).collect();
    assert_eq!(ids, vec![1, 2, 0], "best accuracy first; 3 dominated; 4 and 5 infeasible");
}

#[test]
fn outputs_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Some(Limits::paper());
    let out = write_outputs(dir.path(), &sample(), limits.as_ref()).unwrap();
    for name in [
        "trials.csv",
        "pareto.csv",
        "pareto.json",
        "report.md",
        "accuracy_vs_ram.svg",
        "accuracy_vs_ram.png",
        "accuracy_vs_flash.png",
        "accuracy_vs_latency.svg",
        "best_over_time.png",
    ] {
        let p = dir.path().join(name);
        assert!(p.is_file() && std::fs::metadata(&p).unwrap().len() > 0, "{name} missing or empty");
    }
    assert_eq!(out.pareto.len(), 3);
    let csv = std::fs::read_to_string(dir.path().join("trials.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("pareto.json")).unwrap()).unwrap();
    for key in
        ["resolution", "color", "alpha", "depths", "val_accuracy", "arena_bytes", "flash_bytes", "latency_ms", "macs"]
    {
        assert!(json[0].get(key).is_some(), "pareto.json lacks {key}");
    }
    assert_eq!(json[0]["depths"], json!([1, 1, 0, 0, 0]));
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("b1.dw") && md.contains("64/rgb"));
    if let Ok(keep) = std::env::var("DANAS_KEEP_REPORT") {
        write_outputs(std::path::Path::new(&keep), &sample(), limits.as_ref()).unwrap();
    }
    // empty study renders too
    write_outputs(&dir.path().join("empty"), &[], limits.as_ref()).unwrap();
}

/// `report.html` opened in the real headless Chromium (Debian `chromium`, named by
/// `DANAS_CHROMIUM`): the screenshot shows the tables and the inlined plots. Skipped
/// without `DANAS_CHROMIUM` unless `CI` is set.
#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(chromium) = std::env::var_os("DANAS_CHROMIUM") else {
        assert!(std::env::var_os("CI").is_none(), "CI is set but DANAS_CHROMIUM is not: the HTML test must run in CI");
        eprintln!("skipped: set DANAS_CHROMIUM to a chromium binary to run this test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let limits = Some(Limits::paper());
    write_outputs(dir.path(), &sample(), limits.as_ref()).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    // Self-contained: nothing to fetch (the only URL is the SVG namespace).
    let urls = html.matches("http://").count() + html.matches("https://").count();
    assert_eq!(urls, html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(), "a URL to fetch");
    assert!(!html.contains("src=") && !html.contains("<link"), "self-contained");
    let shot = dir.path().join("shot.png");
    let profile = dir.path().join("chromium-profile");
    let out = std::process::Command::new(&chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,2600"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", dir.path().join("report.html").display()))
        .output()
        .unwrap();
    assert!(shot.is_file(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (1200, 2600));
    let total = (img.width() * img.height()) as f64;
    let ink = img.pixels().filter(|p| p.0.iter().any(|&c| c < 200)).count() as f64;
    assert!(ink / total > 0.01, "the page is blank ({:.4} non-white)", ink / total);
    // The plots' points are drawn in the palette's first colours: the SVGs rendered.
    let near = |p: &image::Rgb<u8>, c: [u8; 3]| p.0.iter().zip(c).all(|(a, b)| a.abs_diff(b) < 12);
    let blue = img.pixels().filter(|p| near(p, [31, 119, 180])).count();
    let orange = img.pixels().filter(|p| near(p, [255, 127, 14])).count();
    assert!(blue > 50 && orange > 50, "plot points missing: {blue} blue, {orange} orange pixels");
    if let Ok(keep) = std::env::var("DANAS_KEEP_REPORT") {
        std::fs::copy(&shot, std::path::Path::new(&keep).join("report-screenshot.png")).unwrap();
    }
}

#[test]
fn best_per_limit_lists_limits_that_change_the_answer_and_the_board() {
    let dir = tempfile::tempdir().unwrap();
    let board = danas_cost::Profile::builtin("nano33-ble").unwrap();
    danas_search::report::write_outputs_on(dir.path(), &sample(), Some(&Limits::paper()), Some(&board)).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("Board: nano33-ble") && md.contains("kernels cmsis-nn"), "{md}");
    let section = md.split("## Best system per limit").nth(1).unwrap().split("\n## ").next().unwrap();
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| RAM")).collect();
    // Trials 1 (90 %, 300 KB), 2 (85 %, 120 KB), 0 (80 %, 100 KB): one row each, no repeats.
    assert_eq!(rows.len(), 3, "{section}");
    for (row, acc) in rows.iter().zip(["90.00", "85.00", "80.00"]) {
        assert!(row.contains(acc), "{row}");
    }
}
