//! Experiment 5, `cost-model`: danas-cost's RAM and flash estimates (from the
//! `.tflite` file and from the candidate) and the paper's formulas against the real
//! TensorFlow Lite Micro interpreter, over committed and generated models.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use danas_search::stats::median;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Ctx, Mix, Opts};
use crate::plot::{Figure, Series, draw};

/// The settings of `repro/cost-model.toml` at one scale.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CostModel {
    /// A folder of `.tflite` models with a `manifest.json` (as `make_models.py` writes),
    /// relative to the repository; used as is.
    #[serde(default)]
    models: Option<String>,
    /// Generate this many blueprint models of candidates sampled from the `paper`
    /// space (needs TensorFlow, installed into `.venv-tf`).
    #[serde(default)]
    generate: usize,
    /// Also generate Keras' own MobileNetV2 at these (resolution, α).
    #[serde(default)]
    keras: Vec<(u32, f64)>,
    /// Also generate this many dynamic-batch models with a Flatten head.
    #[serde(default)]
    flatten: usize,
    /// Classes of generated models.
    #[serde(default = "two")]
    classes: u32,
    /// Seed of the candidate sample.
    #[serde(default)]
    seed: u64,
}

fn two() -> u32 {
    2
}

impl CostModel {
    /// Candidates of the paper space: 7 resolutions × 2 colours, valid depth tuples, α 0.1–1.0.
    fn sample(&self) -> Vec<Value> {
        let mut rng = Mix(self.seed ^ 0xC057);
        let max = [3u32, 4, 3, 3, 1];
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        while out.len() < self.generate {
            let res = rng.pick(&[32u32, 64, 96, 128, 160, 192, 224]);
            let color = rng.pick(&["rgb", "grayscale"]);
            let alpha = f64::from(rng.pick(&[1u32, 2, 3, 4, 5, 6, 7, 8, 9, 10])) / 10.0;
            let mut depths = [0u32; 5];
            let mut stop = false;
            for (i, d) in depths.iter_mut().enumerate() {
                if stop {
                    break;
                }
                *d = (rng.next() % u64::from(max[i] + 1)) as u32;
                stop = *d == 0;
            }
            let key = format!("{res}{color}{alpha}{depths:?}");
            if seen.insert(key) {
                let name = format!(
                    "gen{:02}_{res}_{}_a{}_d{}",
                    out.len(),
                    if color == "rgb" { "rgb" } else { "gray" },
                    (alpha * 100.0).round() as u32,
                    depths.iter().map(u32::to_string).collect::<String>()
                );
                out.push(json!({"name": name, "res": res, "color": color, "alpha": alpha, "depths": depths, "classes": self.classes}));
            }
        }
        for (i, &(res, alpha)) in self.keras.iter().enumerate() {
            let a = (alpha * 100.0).round() as u32;
            out.push(json!({"name": format!("keras{i}_mobilenetv2_{res}_a{a}"),
                "kind": "keras-mobilenetv2", "res": res, "alpha": alpha, "classes": self.classes}));
            out.push(json!({"name": format!("keras{i}_mobilenetv2_{res}_a{a}_float"),
                "kind": "keras-mobilenetv2", "res": res, "alpha": alpha, "classes": self.classes, "float": true}));
        }
        for i in 0..self.flatten {
            let res = [48u32, 64][i % 2];
            out.push(json!({"name": format!("flatten{i}_{res}"), "kind": "flatten-dynamic", "res": res,
                "color": "rgb", "alpha": 0.35, "depths": [2, 2, 1, 0, 0], "classes": self.classes}));
        }
        out
    }

    /// Runs (or, with `--dry-run`, plans) the experiment.
    pub(super) fn run(root: &Path, o: &Opts, cfg: Self) -> Result<()> {
        if o.dry_run {
            println!(
                "cost-model plan: {} committed models, {} generated paper-space candidates, {} Keras MobileNetV2, {} dynamic-batch models; each through real TFLM (tflite-micro), our estimate (from the .tflite and from the candidate) and the paper's formulas",
                cfg.models.as_deref().unwrap_or("no"),
                cfg.generate,
                cfg.keras.len(),
                cfg.flatten
            );
            return Ok(());
        }
        let ctx = Ctx::new(root, o)?;
        ctx.write_meta(o, &cfg, 1)?;
        let tflm_py = super::tflm_python(root)?;
        let mut folders: Vec<PathBuf> = Vec::new();
        if let Some(m) = &cfg.models {
            folders.push(root.join(m));
        }
        let spec = cfg.sample();
        if !spec.is_empty() {
            let dir = ctx.out.join("models");
            if !dir.join("manifest.json").is_file() {
                let py = tf_venv(root)?;
                std::fs::create_dir_all(&dir)?;
                let spec_path = ctx.out.join("models-spec.json");
                std::fs::write(&spec_path, serde_json::to_string_pretty(&spec)?)?;
                crate::run(
                    Command::new(&py)
                        .arg(root.join("crates/danas-cost/tools/make_models.py"))
                        .arg(&dir)
                        .arg("--spec")
                        .arg(&spec_path)
                        .env("TF_CPP_MIN_LOG_LEVEL", "2"),
                )?;
            }
            folders.push(dir);
        }
        let probe = root.join("crates/danas-cost/tools/tflm_probe.py");
        let mut rows = Vec::new();
        for dir in &folders {
            let manifest = super::read_manifest(dir)?;
            for m in manifest {
                let file = dir.join(m["file"].as_str().unwrap_or(""));
                eprintln!("  {}", file.display());
                let out = Command::new(&tflm_py).arg(&probe).arg(&file).output()?;
                let real: Value =
                    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or(Value::Null);
                let import: Value = serde_json::from_str(&ctx.output(&[
                    "estimate".into(),
                    file.display().to_string(),
                    "--mcu".into(),
                    "host".into(),
                    "--json".into(),
                ])?)?;
                let flags = if m.get("depths").is_some()
                    && m.get("kind").and_then(Value::as_str) != Some("keras-mobilenetv2")
                {
                    let depths: Vec<String> =
                        m["depths"].as_array().map(|a| a.iter().map(|d| d.to_string()).collect()).unwrap_or_default();
                    let v = ctx.output(&[
                        "estimate".into(),
                        "--res".into(),
                        m["res"].to_string(),
                        "--color".into(),
                        m["color"].as_str().unwrap_or("rgb").into(),
                        "--alpha".into(),
                        m["alpha"].to_string(),
                        "--depths".into(),
                        depths.join(","),
                        "--classes".into(),
                        m["classes"].to_string(),
                        "--mcu".into(),
                        "host".into(),
                        "--json".into(),
                    ])?;
                    serde_json::from_str(&v)?
                } else {
                    Value::Null
                };
                let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                rows.push(json!({
                    "model": m["file"],
                    "kind": format!("{}{}", m.get("kind").and_then(Value::as_str).unwrap_or("blueprint"),
                        if m.get("float").and_then(Value::as_bool) == Some(true) { " (float)" } else { "" }),
                    "file_bytes": size,
                    "tflm_head": real["head"], "tflm_tail": real["tail"], "tflm_total": real["total"], "tflm_error": real["error"],
                    "import_head": import["tflm_head_bytes"], "import_tail": import["tail_bytes"], "import_model_bytes": import["model_bytes"],
                    "import_not_estimated": import["not_estimated"],
                    "flags_head": flags["tflm_head_bytes"], "flags_model_bytes": flags["model_bytes"], "flags_tail": flags["tail_bytes"],
                    "paper_ram": flags["paper_ram_bytes"], "paper_flash": flags["paper_flash_bytes"],
                }));
            }
        }
        ctx.write_json(&rows)?;
        cfg.report(&ctx, o, &rows)
    }

    fn report(&self, ctx: &Ctx, o: &Opts, rows: &[Value]) -> Result<()> {
        // The numeric columns of the table, in order, as `results.json` names them.
        const BYTE_COLUMNS: [&str; 9] = [
            "tflm_head",
            "import_head",
            "flags_head",
            "paper_ram",
            "tflm_tail",
            "import_tail",
            "file_bytes",
            "flags_model_bytes",
            "paper_flash",
        ];
        let mut md = ctx.heading(
            o,
            None,
            "Every model is run through the real TensorFlow Lite Micro interpreter (PyPI `tflite-micro`, \
             host build, reference kernels, allocation recording) and compared with danas-cost (from the \
             `.tflite` file, and from the equivalent candidate flags where the model is one of ours) and \
             with the paper's formulas (RAM = largest layer in + out × α, flash = weights × α). RAM: the \
             planned arena head, which TFLM computes exactly; the tail depends on pointer size and kernels \
             and is compared approximately. Flash: the model file, against danas-cost's estimate from the \
             candidate alone (the `.tflite` import reads the file's size, so it is exact by construction). \
             A `-` in the TFLM columns: the interpreter could not run the model (the error is in \
             results.json).",
        );
        let _ = writeln!(
            md,
            "| model | kind | TFLM head B | ours (.tflite) | ours (flags) | paper RAM | TFLM tail B | our tail | file B | our model B | paper flash |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let n = |v: &Value| v.as_i64().map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        let (mut exact_import, mut exact_flags, mut n_import, mut n_flags) = (0, 0, 0, 0);
        let mut err: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for r in rows {
            let names = ["model", "kind"].map(|k| r[k].as_str().unwrap_or("?").to_string());
            let bytes = BYTE_COLUMNS.map(|k| n(&r[k]));
            let _ = writeln!(md, "| {} | {} |", names.join(" | "), bytes.join(" | "));
            let real = r["tflm_head"].as_f64();
            if let (Some(t), Some(i)) = (real, r["import_head"].as_f64()) {
                n_import += 1;
                exact_import += usize::from(t == i);
                err.entry("ours (.tflite) RAM").or_default().push((t, i));
            }
            if let (Some(t), Some(f)) = (real, r["flags_head"].as_f64()) {
                n_flags += 1;
                exact_flags += usize::from(t == f);
                err.entry("ours (flags) RAM").or_default().push((t, f));
            }
            if let (Some(t), Some(p)) = (real, r["paper_ram"].as_f64()) {
                err.entry("paper RAM").or_default().push((t, p));
            }
            let file = r["file_bytes"].as_f64();
            if let (Some(t), Some(m)) = (file, r["flags_model_bytes"].as_f64()) {
                err.entry("ours (flags) flash").or_default().push((t, m));
            }
            if let (Some(t), Some(p)) = (file, r["paper_flash"].as_f64()) {
                err.entry("paper flash").or_default().push((t, p));
            }
        }
        let _ = writeln!(
            md,
            "\nExact TFLM head: {exact_import}/{n_import} from the `.tflite` import, {exact_flags}/{n_flags} from the candidate flags.\n"
        );
        let _ = writeln!(
            md,
            "| estimate | median error B | median \\|error\\| B | median ratio est/real | min ratio | max ratio |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
        for (k, v) in &err {
            let e: Vec<f64> = v.iter().map(|(t, x)| x - t).collect();
            let a: Vec<f64> = e.iter().map(|x| x.abs()).collect();
            let ratio: Vec<f64> = v.iter().filter(|(t, _)| *t > 0.0).map(|(t, x)| x / t).collect();
            let _ = writeln!(
                md,
                "| {k} | {:.0} | {:.0} | {:.3} | {:.3} | {:.3} |",
                median(&e),
                median(&a),
                median(&ratio),
                ratio.iter().copied().fold(f64::INFINITY, f64::min),
                ratio.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            );
        }
        // The (real, estimate) pairs of the estimates whose name has `word`, in KiB.
        let kib = |word: &str| -> Vec<Series> {
            err.iter()
                .filter(|(k, _)| k.contains(word))
                .map(|(k, v)| ((*k).to_string(), v.iter().map(|&(t, x)| (t / 1024.0, x / 1024.0)).collect()))
                .collect()
        };
        let (ram, flash) = (kib("RAM"), kib("flash"));
        let title = "RAM: estimate vs real TFLM arena head (KiB)";
        let fig = Figure::against_diagonal(title, "TFLM head (KiB)", "estimate (KiB)", &ram).log_axes();
        draw(&ctx.out, "ram_estimate_vs_tflm", &fig)?;
        let title = "flash: estimate vs .tflite file size (KiB)";
        let fig = Figure::against_diagonal(title, ".tflite file (KiB)", "estimate (KiB)", &flash).log_axes();
        draw(&ctx.out, "flash_estimate_vs_file", &fig)?;
        let _ = writeln!(md, "\n![ram](ram_estimate_vs_tflm.png)\n\n![flash](flash_estimate_vs_file.png)");
        ctx.write_md(&md)?;
        println!("{md}");
        Ok(())
    }
}

/// A throwaway venv with TensorFlow for generating models (`.venv-tf`).
fn tf_venv(root: &Path) -> Result<PathBuf> {
    crate::python_venv(&root.join(".venv-tf"), "tensorflow", &["tensorflow-cpu"])
}
