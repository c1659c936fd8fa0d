//! The model package as firmware uses it.
//!
//! - Every model package (the public TF-converted models of danas-cost's tests and
//!   danas's own int8 exports of several candidates), written for the `host` profile,
//!   runs in the real TFLM interpreter (PyPI `tflite-micro`) with exactly its
//!   `kTensorArenaSize`. Needs `DANAS_TFLM_PYTHON`; skipped without it unless `CI` is
//!   set (then it fails).
//! - The generated `.cc` / `.h` files and the plain C++ main of `docs/deploy.md`
//!   compile with `g++ -std=c++17 -c` against declarations of the TFLM API
//!   (`tests/fixtures/tflm-decls`, declarations only). Needs `g++`; skipped without it
//!   unless `CI` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use danas_core::{Arch, Candidate, Color, DataConfig};
use danas_cost::Profile;
use danas_search::deploy::{ModelInfo, write_model_dir};
use danas_tflite::{FloatNet, Model, QuantOptions, calibrate, float_model, quantize};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `(candidate, classes, model)` for every model the tests package: the committed
/// public models and seeded random int8 exports of danas candidates.
fn models() -> Vec<(Candidate, u32, Model)> {
    let dir = root().join("crates/danas-cost/tests/models");
    let manifest: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for m in &manifest {
        let file = dir.join(m["file"].as_str().unwrap());
        let model = Model::from_bytes(&std::fs::read(&file).unwrap(), &file.display().to_string()).unwrap();
        let depths: Vec<u32> = m["depths"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as u32).collect();
        let arch = Arch { depths, ..Arch::mobilenet_v2(m["alpha"].as_f64().unwrap(), [0; 5]) };
        let data = DataConfig::new(m["res"].as_u64().unwrap() as u32, m["color"].as_str().unwrap().parse().unwrap());
        out.push((Candidate::new(data, arch), m["classes"].as_u64().unwrap() as u32, model));
    }
    let cases: [(u32, Color, f64, [u32; 5], u32); 4] = [
        (32, Color::Rgb, 0.35, [1, 1, 1, 1, 1], 2),
        (48, Color::Grayscale, 0.25, [2, 2, 0, 0, 0], 3),
        (64, Color::Rgb, 0.5, [3, 2, 1, 0, 0], 10),
        (96, Color::Grayscale, 0.35, [3, 4, 3, 0, 0], 2),
    ];
    for (k, (res, color, alpha, depths, classes)) in cases.into_iter().enumerate() {
        let cand = Candidate::new(DataConfig::new(res, color), Arch::mobilenet_v2(alpha, depths));
        let bp = cand.blueprint(classes).unwrap();
        let float = float_model(&bp, &FloatNet::random(&bp, 7 + k as u64), true).unwrap();
        let per = (res * res * color.channels()) as usize;
        let calib: Vec<Vec<f32>> =
            (0..4).map(|j| (0..per).map(|i| ((i * 31 + j * 17) % 255) as f32 / 127.5 - 1.0).collect()).collect();
        let ranges = calibrate(&float, &calib).unwrap();
        out.push((cand, classes, quantize(&float, &ranges, &QuantOptions::default()).unwrap()));
    }
    out
}

/// Writes the package of `model` for `profile` into `dir`.
fn package(dir: &Path, cand: &Candidate, classes: u32, model: &Model, profile: &Profile) {
    let names: Vec<String> = (0..classes).map(|c| format!("label \"{c}\"")).collect();
    let info =
        ModelInfo { candidate: cand, classes, metrics: serde_json::json!({}), calib_images: 4, class_names: names };
    write_model_dir(dir, model, profile, &info).unwrap();
}

/// `kTensorArenaSize` of a package.
fn arena_size(dir: &Path) -> u64 {
    let h = std::fs::read_to_string(dir.join("model_data.h")).unwrap();
    let line = h.lines().find(|l| l.contains("kTensorArenaSize =")).unwrap();
    line.trim_end_matches(';').rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn every_package_runs_in_tflm_with_exactly_its_arena() {
    let Some(python) = std::env::var_os("DANAS_TFLM_PYTHON") else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but DANAS_TFLM_PYTHON is not: the arena-size test must not be skipped in CI");
        }
        eprintln!("skipped: set DANAS_TFLM_PYTHON to a python with `tflite-micro` installed to run this test");
        return;
    };
    let host = Profile::builtin("host").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let probe = root().join("crates/danas-cost/tools/tflm_probe.py");
    let all = models();
    assert!(all.len() >= 12);
    let mut tightest = f64::INFINITY;
    for (k, (cand, classes, model)) in all.iter().enumerate() {
        let dir = tmp.path().join(format!("m{k}"));
        package(&dir, cand, *classes, model, &host);
        let size = arena_size(&dir);
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["tensor_arena_size"].as_u64(), Some(size));
        let predicted = manifest["predicted"]["arena_bytes"].as_u64().unwrap();
        assert!(size > predicted && size.is_multiple_of(16));
        let out = Command::new(&python)
            .arg(&probe)
            .args(["--arena", &size.to_string()])
            .arg(dir.join("model.tflite"))
            .output()
            .unwrap();
        let r: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{cand}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        let total =
            r["total"].as_u64().unwrap_or_else(|| panic!("{cand}: TFLM failed with kTensorArenaSize {size}: {r}"));
        assert!(total <= size, "{cand}: TFLM used {total} > {size}");
        let spare = (size - total) as f64 / size as f64;
        tightest = tightest.min(spare);
        eprintln!(
            "{cand}: kTensorArenaSize {size}, predicted {predicted}, TFLM used {total} ({:.1} % spare)",
            spare * 100.0
        );
    }
    eprintln!("tightest spare: {:.2} %", tightest * 100.0);
}

#[test]
fn the_package_and_the_docs_main_compile_with_gxx() {
    if Command::new("g++").arg("--version").output().is_err() {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but g++ is missing: the firmware compile test must not be skipped in CI");
        }
        eprintln!("skipped: no g++");
        return;
    }
    let doc = std::fs::read_to_string(root().join("docs/deploy.md")).unwrap();
    let marker = "<!-- main.cc: compiled by crates/danas-search/tests/firmware.rs -->";
    let after = &doc[doc.find(marker).expect("docs/deploy.md marks its main.cc") + marker.len()..];
    let main = after.split("```cpp\n").nth(1).and_then(|b| b.split("\n```").next()).unwrap();
    let decls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tflm-decls");
    let tmp = tempfile::tempdir().unwrap();
    let all = models();
    // A public model (ADD, MEAN, …) and danas exports of both colour encodings.
    for k in [0, all.len() - 3, all.len() - 1] {
        let (cand, classes, model) = &all[k];
        let dir = tmp.path().join(format!("m{k}"));
        package(&dir, cand, *classes, model, &Profile::builtin("nano33-ble").unwrap());
        std::fs::write(dir.join("main.cc"), main).unwrap();
        for src in ["model_data.cc", "main.cc"] {
            let out = Command::new("g++")
                .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-c"])
                .arg("-I")
                .arg(&decls)
                .arg("-I")
                .arg(&dir)
                .arg(dir.join(src))
                .arg("-o")
                .arg(dir.join(format!("{src}.o")))
                .output()
                .unwrap();
            assert!(out.status.success(), "{cand}: g++ {src}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let ops = std::fs::read_to_string(dir.join("model_ops.h")).unwrap();
        assert!(ops.contains("AddConv2D()") && ops.contains("AddDepthwiseConv2D()"), "{ops}");
    }
}
