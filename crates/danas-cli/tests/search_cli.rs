//! End-to-end tests of `danas search` / `resume` / `report` on tiny synthetic data:
//! a search killed with SIGKILL mid-run resumes without losing or repeating trials,
//! and bad input gets a clear message and exit code 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use danas_search::{Journal, STUDY_FILE, TrialStatus};

fn danas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_danas"))
}

/// Tiny but real: synthetic data, 16 px, a few supernet steps.
const TINY: &[&str] = &[
    "--space",
    "demo",
    "--strategy",
    "aging-evolution",
    "--train-limit",
    "256",
    "--eval-limit",
    "128",
    "--supernet-steps",
    "6",
    "--budget",
    "10m",
    "--ram-kib",
    "64",
    "--flash-kib",
    "256",
    "--quiet",
];

/// Completed trials: id, genome, metrics and the time each finished (a re-run trial
/// would finish again, later).
type Done = (u64, Vec<u16>, Option<danas_core::Metrics>, Option<u64>);

fn complete(dir: &Path) -> Vec<Done> {
    let Ok(j) = Journal::open_read_only(&dir.join(STUDY_FILE)) else { return Vec::new() };
    j.trials()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.status == TrialStatus::Complete)
        .map(|t| (t.id, t.genome, t.metrics, t.finished_at.map(f64::to_bits)))
        .collect()
}

#[test]
fn sigkill_then_resume_loses_and_repeats_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("study");
    let cache = tmp.path().join("cache");
    let mut child = danas()
        .arg("search")
        .args(TINY)
        .args(["--max-trials", "8", "--seed", "3", "--fixed-data", "16,rgb"])
        .arg("--out")
        .arg(&dir)
        .env("DANAS_CACHE", &cache)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if complete(&dir).len() >= 3 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("search ended before it could be killed: {status}");
        }
        assert!(start.elapsed() < Duration::from_secs(300), "no progress in 5 minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = complete(&dir);
    assert!(before.len() >= 3 && before.len() < 8, "killed after {} trials", before.len());

    let out = danas().args(["resume", "--quiet"]).arg(&dir).env("DANAS_CACHE", &cache).output().unwrap();
    assert!(out.status.success(), "resume failed: {}", String::from_utf8_lossy(&out.stderr));
    let after = complete(&dir);
    assert_eq!(after.len(), 8, "the search finishes its budget");
    assert_eq!(&after[..before.len()], &before[..], "completed trials are intact and were not re-run");
    let j = Journal::open_read_only(&dir.join(STUDY_FILE)).unwrap();
    // Each genome was evaluated once: nothing was repeated under a new id.
    let mut genomes: Vec<Vec<u16>> = after.iter().map(|t| t.1.clone()).collect();
    genomes.sort();
    genomes.dedup();
    assert_eq!(genomes.len(), 8, "no candidate evaluated twice");
    assert!(j.trials().unwrap().iter().all(|t| t.status != TrialStatus::Running));
    assert!(j.supernet("16-rgb").unwrap().is_some(), "the supernet is journaled and reused");
    for f in ["report.md", "pareto.json", "trials.csv", "accuracy_vs_ram.png"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    // report re-renders from the journal
    std::fs::remove_file(dir.join("report.md")).unwrap();
    let out = danas().arg("report").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.join("report.md").is_file());
}

fn fails_with(args: &[&str], needle: &str) {
    let out = danas().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "args {args:?}: {err}");
    assert!(err.contains(needle), "args {args:?}: expected {needle:?} in {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let o = out.to_str().unwrap();
    fails_with(&["search", "--mcu", "nucleo-h9000", "--out", o], "nucleo-h743");
    fails_with(&["search", "--ram-kib", "1", "--flash-kib", "1", "--data", "synthetic", "--out", o], "smallest RAM");
    fails_with(&["search", "--data", "idx:/no/such/dir", "--out", o], "/no/such/dir");
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(&cfg, "max_trials = \"ten\"\n").unwrap();
    fails_with(&["search", "--config", cfg.to_str().unwrap(), "--out", o], "max_trials");
    let not_study = tmp.path().join("notes");
    std::fs::create_dir_all(&not_study).unwrap();
    std::fs::write(not_study.join(STUDY_FILE), "hello").unwrap();
    fails_with(&["resume", not_study.to_str().unwrap()], "not a danas study");
    fails_with(&["report", not_study.to_str().unwrap()], "not a danas study");
}
