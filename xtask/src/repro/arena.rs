//! Experiment `arena`: the whole arena a firmware must give TFLM (head + tail)
//! against the real interpreter, per family of models (MobileNetV2 candidates in int8
//! and float, small fully connected networks), with the tail broken down the way TFLM
//! records it. Needs no TensorFlow: the models are written by danas-tflite.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, anyhow};
use danas_core::{Arch, Candidate, Color, DataConfig};
use danas_search::stats::median;
use danas_tflite::{ElemType, FloatNet, Fused, Model, OpDef, Operator, QuantOptions, TensorDef};
use danas_tflite::{calibrate, float_model, quantize};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Ctx, Mix, Opts};

/// The settings of `repro/arena.toml` at one scale.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Arena {
    /// A folder of committed `.tflite` models with a `manifest.json`, relative to the
    /// repository.
    #[serde(default)]
    models: Option<String>,
    /// Random MobileNetV2 candidates written as int8 models.
    #[serde(default)]
    int8: usize,
    /// Random MobileNetV2 candidates written as float models.
    #[serde(default)]
    float: usize,
    /// Fully connected int8 networks, each as its layer widths from input to classes.
    #[serde(default)]
    mlps: Vec<Vec<u32>>,
    /// Seed of the candidate sample and of the weights.
    #[serde(default)]
    seed: u64,
    /// 32-bit boards whose estimate is listed next to the host's (not measurable here).
    #[serde(default)]
    boards: Vec<String>,
}

/// A random candidate of the `paper` space's shape (smaller resolutions, to keep the
/// models quick to write and run).
fn sample_candidate(rng: &mut Mix) -> (Candidate, u32) {
    let res = rng.pick(&[24u32, 32, 40, 48, 64, 96]);
    let color = rng.pick(&[Color::Rgb, Color::Grayscale]);
    let alpha = rng.pick(&[0.1, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0]);
    let mut depths = [0u32; 5];
    for (i, d) in depths.iter_mut().enumerate() {
        *d = rng.pick(&[0u32, 1, 2, 3, 4]).min([3, 4, 3, 3, 1][i]);
    }
    depths[0] = depths[0].max(1);
    let classes = rng.pick(&[2u32, 4, 10]);
    (Candidate::new(DataConfig::new(res, color), Arch::mobilenet_v2(alpha, depths)), classes)
}

/// A float fully connected network of the given widths (ReLU between layers, softmax
/// at the end), with seeded random weights.
fn mlp_float(widths: &[u32], rng: &mut Mix) -> Model {
    let f32_tensor = |name: String, shape: Vec<i32>, data: Option<Vec<f32>>| TensorDef {
        name,
        shape,
        ty: ElemType::F32,
        data: data.map(|d| d.iter().flat_map(|v| v.to_le_bytes()).collect()),
        quant: None,
        is_variable: false,
    };
    let mut m = Model { description: "danas arena: fully connected".into(), ..Model::default() };
    m.tensors.push(f32_tensor("input".into(), vec![1, widths[0] as i32], None));
    m.inputs.push(0);
    let mut prev = 0i32;
    for (l, pair) in widths.windows(2).enumerate() {
        let (n_in, n_out) = (pair[0] as usize, pair[1] as usize);
        let bound = (6.0 / n_in.max(1) as f32).sqrt();
        let w: Vec<f32> = (0..n_in * n_out).map(|_| (rng.unit() * 2.0 - 1.0) * bound).collect();
        let b: Vec<f32> = (0..n_out).map(|_| (rng.unit() - 0.5) * 0.2).collect();
        let base = m.tensors.len() as i32;
        m.tensors.push(f32_tensor(format!("fc{l}/w"), vec![n_out as i32, n_in as i32], Some(w)));
        m.tensors.push(f32_tensor(format!("fc{l}/b"), vec![n_out as i32], Some(b)));
        m.tensors.push(f32_tensor(format!("fc{l}/out"), vec![1, n_out as i32], None));
        let last = l + 2 == widths.len();
        m.operators.push(Operator {
            op: OpDef::FullyConnected { act: if last { Fused::None } else { Fused::Relu } },
            inputs: vec![prev, base, base + 1],
            outputs: vec![base + 2],
        });
        prev = base + 2;
    }
    let out = m.tensors.len() as i32;
    let classes = *widths.last().unwrap_or(&2) as i32;
    m.tensors.push(f32_tensor("probabilities".into(), vec![1, classes], None));
    m.operators.push(Operator { op: OpDef::Softmax { beta: 1.0 }, inputs: vec![prev], outputs: vec![out] });
    m.outputs.push(out);
    m
}

/// Calibration inputs in [-1, 1] for a model whose input has `n` values.
fn calibration(n: usize, rng: &mut Mix) -> Vec<Vec<f32>> {
    (0..4).map(|_| (0..n).map(|_| rng.unit() * 2.0 - 1.0).collect()).collect()
}

/// One generated model: its file name and what it is.
struct Generated {
    file: String,
    family: &'static str,
    what: String,
}

impl Arena {
    /// Writes the generated models into `dir`.
    fn generate(&self, dir: &Path) -> Result<Vec<Generated>> {
        std::fs::create_dir_all(dir)?;
        let mut rng = Mix(self.seed);
        let mut out = Vec::new();
        for k in 0..self.int8 + self.float {
            let is_float = k >= self.int8;
            let (cand, classes) = sample_candidate(&mut rng);
            let bp = cand.blueprint(classes)?;
            // every other int8 model without its softmax (as `danas export --softmax false`)
            let softmax = is_float || k % 2 == 0;
            let float = float_model(&bp, &FloatNet::random(&bp, self.seed + k as u64), softmax)?;
            let model = if is_float {
                float
            } else {
                let n = (cand.data.resolution * cand.data.resolution * cand.data.color.channels()) as usize;
                quantize(&float, &calibrate(&float, &calibration(n, &mut rng))?, &QuantOptions::default())?
            };
            let file = format!("mnv2_{k:02}{}.tflite", if is_float { "_float" } else { "" });
            std::fs::write(dir.join(&file), model.to_bytes()?)?;
            let family = if is_float { "MobileNetV2 (float)" } else { "MobileNetV2 (int8)" };
            let head = if softmax { "" } else { ", no softmax" };
            out.push(Generated { file, family, what: format!("{cand} / {classes} classes{head}") });
        }
        for (k, widths) in self.mlps.iter().enumerate() {
            if widths.len() < 2 {
                return Err(anyhow!("arena: mlps[{k}] needs an input width and at least one layer"));
            }
            let float = mlp_float(widths, &mut rng);
            let model = quantize(
                &float,
                &calibrate(&float, &calibration(widths[0] as usize, &mut rng))?,
                &QuantOptions::default(),
            )?;
            let file = format!("fc_{k:02}.tflite");
            std::fs::write(dir.join(&file), model.to_bytes()?)?;
            let w: Vec<String> = widths.iter().map(u32::to_string).collect();
            out.push(Generated { file, family: "fully connected (int8)", what: w.join("-") });
        }
        Ok(out)
    }

    /// Runs (or, with `--dry-run`, plans) the experiment.
    pub(super) fn run(root: &Path, o: &Opts, cfg: Self) -> Result<()> {
        if o.dry_run {
            println!(
                "arena plan: {} committed models, {} int8 and {} float MobileNetV2 candidates, {} fully connected networks; \
                 each through real TFLM (tflite-micro, host) and danas estimate (host, and {:?})",
                cfg.models.as_deref().unwrap_or("no"),
                cfg.int8,
                cfg.float,
                cfg.mlps.len(),
                cfg.boards
            );
            return Ok(());
        }
        let ctx = Ctx::new(root, o)?;
        ctx.write_meta(o, &cfg, 1)?;
        let tflm_py = super::tflm_python(root)?;
        let mut files: Vec<(PathBuf, String, String)> = Vec::new();
        if let Some(m) = &cfg.models {
            let dir = root.join(m);
            let manifest = super::read_manifest(&dir)?;
            for m in manifest {
                let file = m["file"].as_str().unwrap_or("").to_string();
                files.push((dir.join(&file), "MobileNetV2 (int8, TensorFlow converter)".into(), file));
            }
        }
        let gen_dir = ctx.out.join("models");
        for g in cfg.generate(&gen_dir)? {
            files.push((gen_dir.join(&g.file), g.family.into(), g.what));
        }
        let probe = root.join("crates/danas-cost/tools/tflm_probe.py");
        let mut rows = Vec::new();
        for (file, family, what) in &files {
            eprintln!("  {}", file.display());
            let out = Command::new(&tflm_py).arg(&probe).arg(file).output()?;
            let real: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or(Value::Null);
            let estimate = |mcu: &str| -> Result<Value> {
                let args = ["estimate".into(), file.display().to_string(), "--mcu".into(), mcu.into(), "--json".into()];
                Ok(serde_json::from_str(&ctx.output(&args)?)?)
            };
            let host = estimate("host")?;
            let mut boards = serde_json::Map::new();
            for b in &cfg.boards {
                let e = estimate(b)?;
                boards.insert(b.clone(), json!({"tail": e["tail_bytes"], "arena": e["arena_bytes"]}));
            }
            rows.push(json!({
                "model": file.file_name().map(|f| f.to_string_lossy().to_string()),
                "family": family, "what": what,
                "tflm_head": real["head"], "tflm_tail": real["tail"], "tflm_total": real["total"],
                "tflm_tail_parts": real["tail_parts"], "tflm_error": real["error"],
                "head": host["tflm_head_bytes"], "tail": host["tail_bytes"], "total": host["arena_bytes"],
                "boards": boards,
            }));
        }
        ctx.write_json(&rows)?;
        cfg.report(&ctx, o, &rows)
    }

    fn report(&self, ctx: &Ctx, o: &Opts, rows: &[Value]) -> Result<()> {
        let mut md = ctx.heading(
            o,
            None,
            "The arena a firmware must give TFLM (`arena_bytes`: the planned head plus the tail of \
             persistent runtime data) against what the real interpreter allocated (PyPI `tflite-micro`, \
             64-bit host build, reference kernels, allocation recording), per model. The head is exact; \
             the tail is modelled per op kind (danas-cost `lower.rs`). Models: the committed ones (written \
             by the TensorFlow converter), random MobileNetV2 candidates and fully connected networks \
             written by danas-tflite. 32-bit boards' tails follow the same model with 4-byte pointers; \
             no 32-bit TFLM runs here, so they are listed, not checked.",
        );
        let boards = self.boards.join(" | ");
        let _ = writeln!(
            md,
            "| model | family | what | TFLM head B | TFLM tail B | ours tail B | TFLM total B | ours total B | error % |{}",
            if boards.is_empty() { String::new() } else { format!(" {boards} (ours) |") }
        );
        let _ = writeln!(md, "|---|---|---|---:|---:|---:|---:|---:|---:|{}", "---:|".repeat(self.boards.len()));
        let n = |v: &Value| v.as_i64().map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        let mut by_family: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for r in rows {
            let err = match (r["tflm_total"].as_f64(), r["total"].as_f64()) {
                (Some(t), Some(e)) if t > 0.0 => Some(100.0 * (e - t) / t),
                _ => None,
            };
            let family = r["family"].as_str().unwrap_or("?").to_string();
            if let Some(e) = err {
                by_family.entry(family.clone()).or_default().push(e);
                by_family.entry("all".into()).or_default().push(e);
            }
            let board_cols: String =
                self.boards.iter().map(|b| format!(" {} |", n(&r["boards"][b.as_str()]["arena"]))).collect();
            let _ = writeln!(
                md,
                "| {} | {family} | {} | {} | {} | {} | {} | {} | {} |{board_cols}",
                r["model"].as_str().unwrap_or("?"),
                r["what"].as_str().unwrap_or(""),
                n(&r["tflm_head"]),
                n(&r["tflm_tail"]),
                n(&r["tail"]),
                n(&r["tflm_total"]),
                n(&r["total"]),
                err.map_or("-".into(), |e| format!("{e:+.1}")),
            );
        }
        let _ = writeln!(md, "\n| family | models | median error % | median \\|error\\| % | min % | max % |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
        for (family, e) in &by_family {
            let abs: Vec<f64> = e.iter().map(|x| x.abs()).collect();
            let _ = writeln!(
                md,
                "| {family} | {} | {:+.2} | {:.2} | {:+.2} | {:+.2} |",
                e.len(),
                median(e),
                median(&abs),
                e.iter().copied().fold(f64::INFINITY, f64::min),
                e.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            );
        }
        ctx.write_md(&md)?;
        println!("{md}");
        Ok(())
    }
}
