//! `cargo xtask int8-check`: a network trained on Fashion-MNIST, exported to int8, and
//! run by the real TFLM interpreter over the test split. Checks that TFLM's outputs
//! equal danas's int8 evaluator's (0 LSB) and that int8 loses at most 1.5 points of
//! test accuracy against float; writes `results.json` and `results.md`.
//!
//! `cargo xtask int8-check [--danas BIN] [--out DIR] [--steps N | --epochs N]
//! [--eval-limit N] [--res R]` (defaults: the release binary, `target/int8-check`,
//! 1 epoch, the whole test split, 32 px).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{FASHION_MNIST, describe, setup, target_dir};

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn json_of(cmd: &mut Command) -> Result<Value> {
    eprintln!("\n$ {}", describe(cmd));
    let out = cmd.output().with_context(|| format!("cannot start {}", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}{}",
            describe(cmd),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    if let Ok(v) = serde_json::from_str(text.trim()) {
        return Ok(v);
    }
    let line = text.lines().rev().find(|l| l.trim_start().starts_with('{')).context("no JSON output")?;
    serde_json::from_str(line).with_context(|| format!("bad JSON from {}: {line}", describe(cmd)))
}

/// Runs the check.
pub fn int8_check(root: &Path, args: &[String]) -> Result<()> {
    let env = setup(root)?;
    let py = env.vars.iter().find(|(k, _)| k == "DANAS_TFLM_PYTHON").map(|(_, v)| v.clone()).context("no TFLM venv")?;
    let danas = match flag(args, "--danas") {
        Some(p) => PathBuf::from(p),
        None => {
            crate::run(crate::cargo().args(["build", "--release", "-q", "-p", "danas-cli"]))?;
            target_dir(root).join("release/danas")
        }
    };
    let out = flag(args, "--out").map_or_else(|| target_dir(root).join("int8-check"), PathBuf::from);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let data = format!("idx:{FASHION_MNIST}");
    let res = flag(args, "--res").unwrap_or("32");
    let ckpt = out.join("net.ckpt");
    let mut train = Command::new(&danas);
    train.args(["train", "--data", &data, "--res", res, "--color", "grayscale", "--alpha", "0.35"]);
    train.args(["--depths", "3,4,3,3,1", "--no-augment", "--test", "--json", "--save"]).arg(&ckpt);
    match (flag(args, "--steps"), flag(args, "--epochs")) {
        (Some(s), _) => train.args(["--steps", s]),
        (None, e) => train.args(["--epochs", e.unwrap_or("1")]),
    };
    let limit = flag(args, "--eval-limit");
    if let Some(l) = limit {
        train.args(["--eval-limit", l]);
    }
    let trained = json_of(&mut train)?;
    let model_dir = out.join("model");
    let test_dir = out.join("testset");
    let mut export = Command::new(&danas);
    export.arg("export").arg(&ckpt).args(["--data", &data, "--test", "--json", "--out"]).arg(&model_dir);
    export.arg("--dump-test-set").arg(&test_dir);
    if let Some(l) = limit {
        export.args(["--eval-limit", l]);
    }
    let exported = json_of(&mut export)?;
    let script = root.join("crates/danas-tflite/tools/tflm_check.py");
    let tflm = json_of(Command::new(&py).arg(script).arg(model_dir.join("model.tflite")).arg(&test_dir))?;
    let float = exported["metrics"]["test_accuracy"].as_f64().context("no float test accuracy")?;
    let int8 = exported["metrics"]["int8_test_accuracy"].as_f64().context("no int8 test accuracy")?;
    let tflm_acc = tflm["tflm_accuracy"].as_f64().context("no TFLM accuracy")?;
    let lsb = tflm["max_lsb_difference"].as_i64().context("no LSB difference")?;
    let images = tflm["images"].as_u64().unwrap_or(0);
    let drop = 100.0 * (float - tflm_acc);
    let summary = serde_json::json!({
        "candidate": exported["candidate"],
        "train_seconds": trained["train_seconds"].clone(),
        "test_images": images,
        "float_test_accuracy": float,
        "danas_int8_test_accuracy": int8,
        "tflm_int8_test_accuracy": tflm_acc,
        "drop_points": drop,
        "max_lsb_difference": lsb,
        "differing_values": tflm["differing_values"],
        "model_bytes": exported["model_bytes"],
        "arena_bytes": exported["arena_bytes"],
        "calibration_images": exported["calibration_images"],
    });
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(out.join("results.json"), format!("{text}\n"))?;
    let md = format!(
        "# int8 export on Fashion-MNIST\n\n`{}` trained by `danas train`, exported by `danas export`, run by TFLM\n\
         (PyPI `tflite-micro`) over {images} test images.\n\n\
         | | test accuracy |\n|---|---|\n| float (burn) | {:.2} % |\n| int8, danas evaluator | {:.2} % |\n\
         | int8, TFLM | {:.2} % |\n\nDrop: {drop:.2} points. TFLM vs danas int8 outputs: max {lsb} LSB.\n\n\
         Reproduce: `cargo xtask int8-check` (1 epoch, Adam 3e-3, no augmentation, 128\n\
         calibration images; about 2 minutes on 2 cores).\n",
        exported["candidate"].as_str().unwrap_or("?"),
        100.0 * float,
        100.0 * int8,
        100.0 * tflm_acc
    );
    std::fs::write(out.join("results.md"), md)?;
    eprintln!("{text}");
    if lsb != 0 {
        bail!("TFLM's int8 outputs differ from danas's by up to {lsb} LSB");
    }
    if drop > 1.5 {
        bail!("int8 loses {drop:.2} points of test accuracy (limit 1.5)");
    }
    eprintln!(
        "\nint8-check: {images} images, float {:.2} %, TFLM int8 {:.2} %, 0 LSB",
        100.0 * float,
        100.0 * tflm_acc
    );
    Ok(())
}
