//! danas's int8 export against the real TFLM interpreter (PyPI `tflite-micro`).
//!
//! For candidates of several resolutions, colour encodings, widths and depths (block 0
//! with its residual at α 0.25 among them), seeded random weights are exported to float,
//! calibrated, quantised to int8 and written as `.tflite`. Each file must load and run in
//! TFLM; TFLM's planned arena head must equal `estimate_tflite`'s (what `danas estimate
//! FILE` prints) byte for byte; and TFLM's int8 outputs must equal danas's int8
//! evaluator's on every test input (0 LSB).
//!
//! Needs `DANAS_TFLM_PYTHON` (a python with `tflite-micro`); skipped without it unless
//! `CI` is set, then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use danas_core::{Arch, Candidate, Color, DataConfig};
use danas_cost::{Profile, estimate_tflite, read_tflite_file};
use danas_tflite::{FloatNet, QuantOptions, calibrate, float_model, interp, quantize};

fn python() -> Option<std::ffi::OsString> {
    let p = std::env::var_os("DANAS_TFLM_PYTHON");
    if p.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but DANAS_TFLM_PYTHON is not: the TFLM export test must not be skipped in CI");
        }
        eprintln!("skipped: set DANAS_TFLM_PYTHON to a python with `tflite-micro` installed to run this test");
    }
    p
}

fn tool(crate_dir: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(crate_dir).join("tools").join(name)
}

/// A tiny seeded generator (the test needs no statistics, only reproducible values).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    /// A random "image": pixels 0..=255 on a smooth pattern plus noise, as int8 `p − 128`.
    fn image(&mut self, n: usize) -> Vec<i8> {
        let phase = self.next() % 97;
        (0..n)
            .map(|i| {
                let smooth = ((i as u32 / 3 + phase) % 64) * 3;
                let p = (smooth + self.next() % 64).min(255);
                (p as i32 - 128) as i8
            })
            .collect()
    }
}

#[test]
fn int8_exports_run_in_tflm_and_match_the_reference_evaluator() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let host = Profile::builtin("host").unwrap();
    // (resolution, colour, α, depths, classes, softmax)
    let cases: [(u32, Color, f64, [u32; 5], u32, bool); 7] = [
        (32, Color::Rgb, 0.35, [1, 1, 1, 1, 1], 2, true),
        (48, Color::Grayscale, 0.25, [2, 2, 0, 0, 0], 3, false),
        (64, Color::Rgb, 0.5, [3, 2, 1, 0, 0], 10, true),
        (40, Color::Grayscale, 0.75, [1, 0, 0, 0, 0], 2, false),
        (96, Color::Grayscale, 0.35, [3, 4, 3, 0, 0], 2, true),
        (24, Color::Rgb, 1.0, [1, 1, 0, 0, 0], 4, false),
        (33, Color::Rgb, 0.25, [2, 1, 1, 1, 0], 2, true),
    ];
    let mut worst = 0i32;
    for (k, (res, color, alpha, depths, classes, softmax)) in cases.into_iter().enumerate() {
        let cand = Candidate::new(DataConfig::new(res, color), Arch::mobilenet_v2(alpha, depths));
        let bp = cand.blueprint(classes).unwrap();
        let net = FloatNet::random(&bp, 100 + k as u64);
        let float = float_model(&bp, &net, softmax).unwrap();
        let per = (res * res * color.channels()) as usize;
        let mut rng = Lcg(k as u64);
        let calib: Vec<Vec<f32>> =
            (0..6).map(|_| rng.image(per).iter().map(|&q| (f32::from(q) + 128.0) / 127.5 - 1.0).collect()).collect();
        let ranges = calibrate(&float, &calib).unwrap();
        let model = quantize(&float, &ranges, &QuantOptions::default()).unwrap();
        let path = dir.path().join(format!("m{k}_{res}_{color}_{alpha}.tflite"));
        std::fs::write(&path, model.to_bytes().unwrap()).unwrap();

        // Arena head: TFLM's plan against danas's estimate of the same file.
        let out = Command::new(&python).arg(tool("danas-cost", "tflm_probe.py")).arg(&path).output().unwrap();
        assert!(out.status.success(), "probe failed: {}", String::from_utf8_lossy(&out.stderr));
        let probe: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let head = probe["head"].as_u64().unwrap_or_else(|| panic!("{}: {probe}", path.display()));
        let est = estimate_tflite(&read_tflite_file(&path).unwrap(), &host).unwrap();
        assert_eq!(est.tflm_head_bytes, head, "{}: arena head, danas vs TFLM", path.display());
        // The whole arena (head + tail), what firmware sets: within 1 %.
        let total = probe["total"].as_u64().unwrap();
        let rel = (est.arena_bytes as f64 - total as f64).abs() / total as f64;
        assert!(rel < 0.01, "{}: arena {} vs TFLM {total}", path.display(), est.arena_bytes);

        // Outputs: TFLM against danas's int8 evaluator.
        let inputs: Vec<Vec<i8>> = (0..12).map(|_| rng.image(per)).collect();
        let in_path = dir.path().join(format!("in{k}.bin"));
        let out_path = dir.path().join(format!("out{k}.bin"));
        std::fs::write(&in_path, inputs.iter().flatten().map(|&v| v as u8).collect::<Vec<u8>>()).unwrap();
        let run = Command::new(&python)
            .arg(tool("danas-tflite", "tflm_run.py"))
            .args([&path, &in_path, &out_path])
            .output()
            .unwrap();
        assert!(run.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&run.stdout));
        let tflm: Vec<i8> = std::fs::read(&out_path).unwrap().into_iter().map(|b| b as i8).collect();
        let out_id = model.outputs[0] as usize;
        let ours: Vec<i8> =
            inputs.iter().flat_map(|x| interp::run_int8(&model, x).unwrap()[out_id].clone().unwrap()).collect();
        assert_eq!(ours.len(), tflm.len());
        let diff = ours.iter().zip(&tflm).map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs()).max().unwrap_or(0);
        eprintln!(
            "{}: head {head} B (exact), max output difference {diff} LSB; ours {ours:?} tflm {tflm:?}",
            path.display()
        );
        worst = worst.max(diff);
    }
    assert_eq!(worst, 0, "int8 outputs differ from TFLM's by up to {worst} LSB");
}
