//! Exactness against the real TFLM interpreter (PyPI `tflite-micro`).
//!
//! Runs every committed model in `tests/models/` through `tools/tflm_probe.py` with the
//! python named by `DANAS_TFLM_PYTHON` and checks that `tflm_head_bytes` equals TFLM's
//! planned head exactly, from the `.tflite` import and from the equivalent candidate.
//! Without `DANAS_TFLM_PYTHON` the test is skipped, unless `CI` is set (then it fails).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use danas_core::{Arch, Candidate, DataConfig, Precision};
use danas_cost::{Profile, estimate_candidate, estimate_tflite, read_tflite_file};

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models")
}

#[test]
fn tflm_head_matches_real_interpreter() {
    let Some(python) = std::env::var_os("DANAS_TFLM_PYTHON") else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but DANAS_TFLM_PYTHON is not: the TFLM exactness test must not be skipped in CI");
        }
        eprintln!("skipped: set DANAS_TFLM_PYTHON to a python with `tflite-micro` installed to run this test");
        return;
    };
    let dir = models_dir();
    let manifest: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest.len() >= 6);
    let files: Vec<PathBuf> = manifest.iter().map(|m| dir.join(m["file"].as_str().unwrap())).collect();
    let out = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/tflm_probe.py"))
        .args(&files)
        .output()
        .expect("run the TFLM probe");
    assert!(out.status.success(), "probe failed: {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), files.len());
    let host = Profile::builtin("host").unwrap();
    for ((m, file), probe) in manifest.iter().zip(&files).zip(&lines) {
        let head = probe["head"].as_u64().unwrap_or_else(|| panic!("{}: {probe}", file.display()));
        let tail = probe["tail"].as_u64().unwrap();
        let model = read_tflite_file(file).unwrap();
        let imported = estimate_tflite(&model, &host).unwrap();
        assert_eq!(imported.tflm_head_bytes, head, "{}: import vs TFLM", file.display());
        let depths: Vec<u32> = m["depths"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as u32).collect();
        let arch = Arch { depths, ..Arch::mobilenet_v2(m["alpha"].as_f64().unwrap(), [0; 5]) };
        let data = DataConfig::new(m["res"].as_u64().unwrap() as u32, m["color"].as_str().unwrap().parse().unwrap());
        let classes = m["classes"].as_u64().unwrap() as u32;
        let cand = estimate_candidate(&Candidate::new(data, arch), classes, &host, Precision::Int8).unwrap();
        assert_eq!(cand.tflm_head_bytes, head, "{}: candidate vs TFLM", file.display());
        // The tail is modelled per op kind: within 1 % of the 64-bit host's, from the
        // file and from the candidate.
        for (what, est) in [("import", imported.tail_bytes), ("candidate", cand.tail_bytes)] {
            let rel = (est as f64 - tail as f64).abs() / tail as f64;
            assert!(rel < 0.01, "{}: {what} tail {est} vs TFLM {tail}", file.display());
        }
        eprintln!("{}: head {head} (exact), tail {} vs {tail}", file.display(), imported.tail_bytes);
    }
}
