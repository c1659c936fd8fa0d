//! From a search to its model package on a data source without a test split:
//! the final stage fails with exit code 1, the reason and the fix; with `--split-test`
//! it succeeds, and `danas export` of its checkpoint (no `--data`: the checkpoint
//! records it) reproduces the search's model byte for byte; a different `--data` is an
//! input error (exit code 2). With stdout not a terminal, the search logs a line per
//! trial, its phases and the final stage's test accuracy; `danas resume --max-trials 1`
//! extends the finished study by one trial.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use danas_search::TrialStatus;

fn danas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_danas"))
}

/// A folder source with only `train/`: two classes of noisy solid images.
fn folder_without_test(root: &Path) {
    let mut state = 7u32;
    for (class, colour) in [("red", [200u8, 30, 30]), ("blue", [20u8, 40, 210])] {
        let dir = root.join("train").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..24 {
            let img = image::RgbImage::from_fn(20, 20, |_, _| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let n = ((state >> 16) % 60) as u8;
                image::Rgb(colour.map(|c| c.saturating_add(n)))
            });
            img.save(dir.join(format!("{i}.png"))).unwrap();
        }
    }
}

fn search(data: &str, out: &Path, cache: &Path, extra: &[&str]) -> std::process::Output {
    danas()
        .args(["search", "--space", "demo", "--fixed-data", "16,rgb", "--data", data, "--max-trials", "2"])
        .args(["--supernet-steps", "3", "--final-top-k", "1", "--final-steps", "3", "--seed", "1"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .env("DANAS_CACHE", cache)
        .output()
        .unwrap()
}

fn only_entry(dir: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

#[test]
fn final_stage_needs_a_test_split_and_export_reproduces_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    folder_without_test(&root);
    let data = format!("folder:{}", root.display());
    let cache = tmp.path().join("cache");

    let failed = search(&data, &tmp.path().join("o1"), &cache, &["--quiet"]);
    let err = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{err}");
    assert!(err.contains("no test split") && err.contains("--split-test") && err.contains("--final-top-k 0"), "{err}");
    assert!(tmp.path().join("o1/report.md").is_file(), "the search's results are still written");

    let out = tmp.path().join("o2");
    let ok = search(&data, &out, &cache, &["--split-test", "0.25"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    // Not a terminal: a line per trial, the phases, the final stage's test accuracy.
    let log = String::from_utf8_lossy(&ok.stdout);
    let trial_lines = log.lines().filter(|l| l.starts_with("trial ") && l.contains("| val acc")).count();
    assert!(trial_lines >= 2, "{log}");
    assert!(log.contains("phase: final training of trial"), "{log}");
    assert!(log.contains("Final stage (retrained, measured on the test split)") && log.contains("test acc"), "{log}");
    let start = String::from_utf8_lossy(&ok.stderr);
    assert!(start.contains("limits RAM (arena) 512.0 KiB") && start.contains("kernels cmsis-nn"), "{start}");
    let model_dir = only_entry(&out.join("models"));
    let ckpt = only_entry(&out.join("final"));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["class_names"], serde_json::json!(["blue", "red"]));
    assert!(model_dir.join("model_ops.h").is_file() && model_dir.join("model_info.h").is_file());

    // No --data: the checkpoint says what it was trained on; the model is the same, byte for byte.
    let again = tmp.path().join("export");
    let ex = danas().arg("export").arg(&ckpt).arg("--out").arg(&again).env("DANAS_CACHE", &cache).output().unwrap();
    assert!(ex.status.success(), "{}", String::from_utf8_lossy(&ex.stderr));
    assert_eq!(
        std::fs::read(again.join("model.tflite")).unwrap(),
        std::fs::read(model_dir.join("model.tflite")).unwrap(),
        "danas export reproduces the search's model"
    );
    // Other data than the search's is refused.
    let bad = danas()
        .arg("export")
        .arg(&ckpt)
        .args(["--data", "synthetic", "--out"])
        .arg(tmp.path().join("bad"))
        .env("DANAS_CACHE", &cache)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(err.contains("trained on") && err.contains(&data), "{err}");

    // A finished study is extended by `resume --max-trials N`.
    let evaluated = |dir: &Path| {
        let j = danas_search::Journal::open_read_only(&dir.join(danas_search::STUDY_FILE)).unwrap();
        let t = j.trials().unwrap();
        t.iter().filter(|t| matches!(t.status, TrialStatus::Complete | TrialStatus::Failed)).count()
    };
    let before = evaluated(&out);
    let r =
        danas().args(["resume", "--quiet", "--max-trials", "1"]).arg(&out).env("DANAS_CACHE", &cache).output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(evaluated(&out), before + 1);
}
