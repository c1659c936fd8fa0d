//! The smaller `danas` commands as a user runs them: output keys, exit codes, errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;

/// One dataset cache for this test binary (the cache is safe across processes).
fn cache() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn danas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_danas")).args(args).env("DANAS_CACHE", cache()).output().unwrap()
}

fn json(args: &[&str]) -> Value {
    let out = danas(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e})"))
}

fn fails(args: &[&str], needle: &str) {
    let out = danas(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: expected {needle:?} in {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn spaces_lists_the_three_presets() {
    let out = danas(&["spaces"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for (name, card) in [("paper", "37,520"), ("extended", "8,535,748,800"), ("demo", "198")] {
        assert!(text.contains(name) && text.contains(card), "{name} {card} in\n{text}");
    }
    let v = json(&["spaces", "--json"]);
    let paper = v.as_array().unwrap().iter().find(|s| s["name"] == "paper").unwrap();
    assert_eq!(paper["data_configs"], 14);
    assert_eq!(paper["cardinality"].as_u64(), Some(37_520));
}

#[test]
fn estimate_a_candidate_and_a_tflite_model() {
    let v = json(&["estimate", "--res", "96", "--color", "rgb", "--alpha", "0.35", "--depths", "3,4,3,3,1", "--json"]);
    for k in [
        "macs",
        "params",
        "flash_bytes",
        "tflm_head_bytes",
        "arena_bytes",
        "live_bound_bytes",
        "inplace_peak_bytes",
        "latency_ms",
        "fits",
        "paper_ram_bytes",
        "paper_flash_bytes",
    ] {
        assert!(v.get(k).is_some(), "{k} missing");
    }
    assert!(v["tflm_head_bytes"].as_u64() >= v["live_bound_bytes"].as_u64());
    // Any α > 0 and any resolution, not only a preset's grid.
    json(&["estimate", "--res", "37", "--color", "grayscale", "--alpha", "0.13", "--depths", "1,0,0,0,0", "--json"]);
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../danas-cost/tests/models/m48_gray_a025_d22000.tflite");
    let m = json(&["estimate", model, "--mcu", "host", "--json"]);
    assert_eq!(m["tflm_head_bytes"], 34_560, "TFLM's measured head for this model");
    fails(&["estimate", model, "--mcu", "nucleo-h9000"], "nucleo-h743");
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.tflite");
    std::fs::write(&junk, b"not a flatbuffer at all").unwrap();
    fails(&["estimate", junk.to_str().unwrap()], "junk.tflite");
}

#[test]
fn mcus_catalogue_template_and_calibration() {
    let v = json(&["mcus", "--json"]);
    assert!(v.as_array().unwrap().len() >= 8);
    let out = danas(&["mcus", "--toml", "rpi-pico"]);
    assert!(out.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let board = tmp.path().join("board.toml");
    let text = String::from_utf8_lossy(&out.stdout).replace("name = \"rpi-pico\"", "name = \"my-board\"");
    std::fs::write(&board, &text).unwrap();
    let e = json(&[
        "estimate",
        "--res",
        "32",
        "--alpha",
        "0.25",
        "--depths",
        "1,1,0,0,0",
        "--mcu",
        board.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(e["mcu"], "my-board");
    // A profile with a negative field is refused, naming it.
    std::fs::write(&board, text.replace("clock_mhz = 133.0", "clock_mhz = -1.0")).unwrap();
    fails(
        &["estimate", "--res", "32", "--alpha", "0.25", "--depths", "1,1,0,0,0", "--mcu", board.to_str().unwrap()],
        "clock_mhz",
    );
    // Calibration from measurements reports the fit error.
    let csv = tmp.path().join("m.csv");
    std::fs::write(&csv, "model,ms\n96:rgb:0.35:3-4-3-3-1,95\n32:grayscale:0.5:1-1-0-0-0,6.1\n64:rgb:0.25:2-2-1-0-0,22\n48:rgb:1.0:3-4-3-3-1,150\n").unwrap();
    let fit = json(&["mcus", "--calibrate", csv.to_str().unwrap(), "--json"]);
    assert!(fit["rmse_ms"].as_f64().unwrap().is_finite());
    // Tied: one factor keeps the profile's relative costs; conv-fc shares one value
    // across convolution kinds (these MobileNetV2 candidates have a negligible FC: kept).
    let scaled = json(&["mcus", "--calibrate", csv.to_str().unwrap(), "--fit", "scale", "--json"]);
    let c = &scaled["profile"]["cycles_per_mac"];
    let ratio = c["depthwise"].as_f64().unwrap() / c["conv1x1"].as_f64().unwrap();
    assert!((ratio - 6.5 / 3.6).abs() < 1e-9, "{c}");
    let tied = json(&["mcus", "--calibrate", csv.to_str().unwrap(), "--fit", "conv-fc", "--json"]);
    let c = &tied["profile"]["cycles_per_mac"];
    assert_eq!(c["conv1x1"], c["depthwise"]);
    assert!(tied["kept"].as_array().unwrap().iter().any(|k| k == "cycles_per_mac.fc"), "{}", tied["kept"]);
    fails(&["mcus", "--calibrate", csv.to_str().unwrap(), "--fit", "magic"], "magic");
    std::fs::write(&csv, "model,ms\n96:rgb:zero:3-4-3-3-1,95\n").unwrap();
    fails(&["mcus", "--calibrate", csv.to_str().unwrap()], "line 2");
}

#[test]
fn data_inspect_reports_splits_and_skips() {
    let v = json(&["data", "inspect", "synthetic:n=60,size=16", "--json"]);
    let splits = v["splits"].as_object().unwrap();
    assert!(splits.contains_key("train") && splits.contains_key("validation"));
    assert!(splits["train"]["count"].as_u64().unwrap() > 0);
    assert!(splits["train"]["per_class"].is_object());
    assert_eq!(v["skipped_count"], 0);
    assert!(v["skipped"].is_array());
    // A folder with a bad file: usable (exit 0), the file named.
    let tmp = tempfile::tempdir().unwrap();
    for (class, colour) in [("a", [200u8, 0, 0]), ("b", [0, 0, 200])] {
        std::fs::create_dir_all(tmp.path().join(class)).unwrap();
        for i in 0..10 {
            let img = image::RgbImage::from_pixel(12, 10, image::Rgb(colour));
            img.save(tmp.path().join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    std::fs::write(tmp.path().join("a/broken.png"), b"no png").unwrap();
    let spec = format!("folder:{}", tmp.path().display());
    let v = json(&["data", "inspect", &spec, "--json"]);
    assert_eq!(v["skipped_count"], 1, "{v}");
    assert!(v["skipped"][0]["path"].as_str().unwrap().contains("broken.png"));
    // The splits count only the 20 images that decode.
    let counted: u64 = v["splits"].as_object().unwrap().values().map(|s| s["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 20, "{v}");
    fails(&["data", "inspect", "idx:/no/such/dir"], "/no/such/dir");
}

#[test]
fn optim_bench_json_has_the_keys() {
    let v = json(&["optim", "bench", "--seeds", "2", "--budget", "12", "--json"]);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    for r in rows {
        for k in ["strategy", "median_best_feasible", "median_hypervolume"] {
            assert!(r.get(k).is_some(), "{k} missing in {r}");
        }
    }
    fails(&["optim", "bench", "--strategies", "simulated-annealing"], "aging-evolution");
}

#[test]
fn train_json_params_equal_the_cost_models() {
    let args = ["--res", "16", "--color", "rgb", "--alpha", "0.35", "--depths", "1,1,0,0,0"];
    let mut t = vec!["train", "--data", "synthetic:n=80,size=16", "--steps", "3", "--batch-size", "8", "--json"];
    t.extend(args);
    let v = json(&t);
    for k in ["val_accuracy", "val_balanced_accuracy", "params", "train_seconds"] {
        assert!(v.get(k).is_some(), "{k} missing");
    }
    let mut e = vec!["estimate", "--json", "--classes"];
    let classes =
        json(&["data", "inspect", "synthetic:n=80,size=16", "--json"])["classes"].as_array().unwrap().len().to_string();
    e.push(&classes);
    e.extend(args);
    assert_eq!(v["params"], json(&e)["params"], "danas train and danas estimate count the same deployable parameters");
    fails(&["train", "--data", "synthetic", "--res", "16", "--optimizer", "lbfgs"], "lbfgs");
}

#[test]
fn export_writes_a_deployable_model_and_rejects_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("nets/net.ckpt");
    let ck = ckpt.to_str().unwrap();
    let data = "synthetic:n=80,size=16";
    let arch = ["--res", "16", "--color", "grayscale", "--alpha", "0.25", "--depths", "1,1,0,0,0"];
    let mut t = vec!["train", "--data", data, "--steps", "3", "--batch-size", "8", "--json", "--save", ck];
    t.extend(arch);
    json(&t);

    // To a directory: the model, its C array and manifest.
    let dir = tmp.path().join("model");
    let v = json(&["export", ck, "--data", data, "--out", dir.to_str().unwrap(), "--calib", "16", "--test", "--json"]);
    let bytes = std::fs::read(dir.join("model.tflite")).unwrap();
    assert_eq!(v["model_bytes"].as_u64(), Some(bytes.len() as u64));
    assert!((0.0..=1.0).contains(&v["metrics"]["int8_test_accuracy"].as_f64().unwrap()));
    let header = std::fs::read_to_string(dir.join("model_data.h")).unwrap();
    assert!(header.contains(&format!("kTensorArenaPredicted = {};", v["arena_bytes"])), "{header}");
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["calibration_images"], 16);
    // `danas estimate` of the written file plans the head the export reported.
    let est = json(&["estimate", dir.join("model.tflite").to_str().unwrap(), "--json"]);
    assert_eq!(est["tflm_head_bytes"], v["arena_head_bytes"]);
    // To a file: the same model bytes (seeded calibration).
    let file = tmp.path().join("m.tflite");
    json(&["export", ck, "--data", data, "--out", file.to_str().unwrap(), "--calib", "16", "--json"]);
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "same checkpoint, data and seed: same model");

    // Not a checkpoint; an unknown board; no calibration images.
    let junk = tmp.path().join("junk.ckpt");
    std::fs::write(&junk, b"not a checkpoint").unwrap();
    fails(&["export", junk.to_str().unwrap(), "--data", data, "--out", "x.tflite"], "junk.ckpt");
    fails(&["export", ck, "--data", data, "--out", "x.tflite", "--mcu", "no-such-board"], "no-such-board");
    fails(&["export", ck, "--data", data, "--out", "x.tflite", "--calib", "0"], "--calib");
}
