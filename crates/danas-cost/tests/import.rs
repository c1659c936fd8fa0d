//! `.tflite` import: committed models agree with their equivalent candidates and with the
//! heads recorded from real TFLM in `manifest.json`; bad bytes give errors, never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use danas_core::{Arch, Candidate, DataConfig, Precision};
use danas_cost::{Profile, estimate, estimate_candidate, estimate_tflite, read_tflite, read_tflite_file};
use proptest::prelude::*;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models")
}

fn manifest() -> Vec<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(models_dir().join("manifest.json")).unwrap()).unwrap()
}

fn candidate(m: &serde_json::Value) -> (Candidate, u32) {
    let depths: Vec<u32> = m["depths"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as u32).collect();
    let arch = Arch { depths, ..Arch::mobilenet_v2(m["alpha"].as_f64().unwrap(), [0; 5]) };
    let data = DataConfig::new(m["res"].as_u64().unwrap() as u32, m["color"].as_str().unwrap().parse().unwrap());
    (Candidate::new(data, arch), m["classes"].as_u64().unwrap() as u32)
}

#[test]
fn committed_models_match_candidates_and_recorded_tflm() {
    let host = Profile::builtin("host").unwrap();
    let list = manifest();
    assert!(list.len() >= 6);
    let mut total = 0;
    for m in &list {
        let file = models_dir().join(m["file"].as_str().unwrap());
        let model = read_tflite_file(&file).unwrap();
        total += model.file_bytes;
        let imp = estimate_tflite(&model, &host).unwrap();
        let (cand, classes) = candidate(m);
        let bp = cand.blueprint(classes).unwrap();
        let est = estimate_candidate(&cand, classes, &host, Precision::Int8).unwrap();
        let name = file.display();
        assert_eq!(imp.macs, est.macs, "{name}: MACs");
        assert_eq!(imp.macs, bp.macs(), "{name}: MACs vs blueprint");
        assert_eq!(imp.params, est.params, "{name}: params");
        assert_eq!(imp.tflm_head_bytes, est.tflm_head_bytes, "{name}: head");
        assert_eq!(imp.live_bound_bytes, est.live_bound_bytes, "{name}: live bound");
        assert_eq!(imp.inplace_peak_bytes, est.inplace_peak_bytes, "{name}: in-place");
        assert!(imp.not_estimated.is_empty(), "{name}: {:?}", imp.not_estimated);
        assert_eq!(imp.layers.len(), est.layers.len());
        // Recorded by tools/tflm_probe.py --record-manifest from the real interpreter.
        assert_eq!(imp.tflm_head_bytes, m["tflm_head"].as_u64().unwrap(), "{name}: recorded TFLM head");
        // The flatbuffer size estimate is within 10 % of the real file.
        let rel = (est.model_bytes as f64 - model.file_bytes as f64).abs() / model.file_bytes as f64;
        assert!(rel < 0.10, "{name}: model bytes {} vs file {}", est.model_bytes, model.file_bytes);
        // The import's own graph estimate (no file size) agrees too.
        let g = estimate(&model.graph, &host).unwrap();
        assert_eq!(g.tflm_head_bytes, imp.tflm_head_bytes);
    }
    assert!(total < 2 * 1024 * 1024, "committed models must stay small");
}

#[test]
fn other_ops_are_listed_not_counted() {
    // Turn the softmax into an unknown op: it is planned but listed as not estimated.
    let m = &manifest()[0];
    let mut model = read_tflite_file(&models_dir().join(m["file"].as_str().unwrap())).unwrap();
    let host = Profile::builtin("host").unwrap();
    let before = estimate_tflite(&model, &host).unwrap();
    let last = model.graph.ops.len() - 1;
    model.graph.ops[last].kind = danas_core::OpKind::Other { name: "RESHAPE".into() };
    let after = estimate_tflite(&model, &host).unwrap();
    assert_eq!(after.not_estimated, vec!["RESHAPE".to_string()]);
    assert_eq!(after.tflm_head_bytes, before.tflm_head_bytes);
    assert!(!after.layers[last].estimated);
}

#[test]
fn bad_files_give_clear_errors() {
    let e = read_tflite(b"", "empty.tflite").unwrap_err().to_string();
    assert!(e.contains("empty.tflite") && e.contains("too short"), "{e}");
    let e = read_tflite(b"hello, this is not a model", "x.txt").unwrap_err().to_string();
    assert!(e.contains("x.txt") && e.contains("TFL3"), "{e}");
    let m = &manifest()[0];
    let bytes = std::fs::read(models_dir().join(m["file"].as_str().unwrap())).unwrap();
    let e = read_tflite(&bytes[..bytes.len() / 3], "cut.tflite").unwrap_err().to_string();
    assert!(e.contains("cut.tflite"), "{e}");
    let e = read_tflite_file(Path::new("/nonexistent/model.tflite")).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/model.tflite"), "{e}");
}

fn model_bytes() -> Vec<u8> {
    std::fs::read(models_dir().join(manifest()[1]["file"].as_str().unwrap())).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut b = bytes;
        if b.len() >= 8 && b[0] % 2 == 0 {
            b[4..8].copy_from_slice(b"TFL3");
        }
        let _ = read_tflite(&b, "fuzz");
    }

    #[test]
    fn truncated_or_corrupted_models_never_panic(cut in 0usize..60_000, flips in proptest::collection::vec((0usize..60_000, any::<u8>()), 0..8)) {
        let mut b = model_bytes();
        for (pos, v) in flips {
            let n = b.len();
            b[pos % n] = v;
        }
        let cut = cut.min(b.len());
        if let Ok(m) = read_tflite(&b[..cut], "fuzz") {
            let _ = estimate(&m.graph, &Profile::default_mcu());
        }
    }
}
