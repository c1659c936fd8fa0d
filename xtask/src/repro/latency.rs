//! Experiment `latency`: the latency model against published MLPerf Tiny results.
//!
//! The four MLPerf Tiny reference models (visual wake words, image classification,
//! keyword spotting, anomaly detection) are rebuilt here from their published layer
//! lists (mlcommons/tiny, `benchmark/training/*`), written as TFLite by danas-tflite
//! and read back by danas-cost, so their latency features are the cost model's own.
//! Their MAC counts are checked against those of the published `.tflite` files
//! (recorded in `repro/latency.toml`). For every board with published latencies the
//! experiment reports the profile's uncalibrated error and, for each calibration fit,
//! the error on each model when the fit did not see that model (leave one out).
//! Results are reported, never asserted.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use danas_cost::{
    CalibrationSample, CyclesPerMac, Fit, LatencyFeatures, Profile, calibrate_with, latency_features, read_tflite,
};
use danas_search::stats::median;
use danas_tflite::{ElemType, Fused, Model, OpDef, Operator, TensorDef};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Ctx, Opts};

/// The settings of `repro/latency.toml` at one scale.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Latency {
    /// MACs of each benchmark's published `.tflite`, as danas-cost reads it.
    published_macs: BTreeMap<String, u64>,
    /// Boards with published results.
    boards: Vec<Board>,
}

/// One MLPerf Tiny submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Board {
    /// The danas profile the results are compared with (`--mcu` name).
    profile: String,
    /// The submission, as its results repository names it.
    submission: String,
    /// Where the numbers are, for a reader to check.
    source: String,
    /// Median latency per benchmark in ms.
    ms: BTreeMap<String, f64>,
    /// The cycles per MAC the fits start from, when not the catalogue profile's: for a
    /// board whose catalogue values were fitted on these very results, the values
    /// before that fit, so that a left-out model stays unseen.
    #[serde(default)]
    prior: Option<CyclesPerMac>,
}

/// The benchmarks, in report order.
const BENCHMARKS: [&str; 4] = ["vww", "ic", "kws", "ad"];

/// Builds float TFLite models layer by layer (zero weights: only shapes matter here).
struct Net {
    m: Model,
    /// Current activation and its NHWC shape.
    x: i32,
    shape: [i32; 4],
}

impl Net {
    fn new(name: &str, shape: [i32; 4]) -> Self {
        let mut m = Model { description: format!("danas: MLPerf Tiny {name} (layer shapes only)"), ..Model::default() };
        m.tensors.push(Self::def("input".into(), shape.to_vec(), false));
        m.inputs.push(0);
        Self { m, x: 0, shape }
    }

    fn def(name: String, shape: Vec<i32>, constant: bool) -> TensorDef {
        let n: usize = shape.iter().map(|&d| d.max(0) as usize).product();
        TensorDef {
            name,
            shape,
            ty: ElemType::F32,
            data: constant.then(|| vec![0u8; 4 * n]),
            quant: None,
            is_variable: false,
        }
    }

    fn tensor(&mut self, name: String, shape: Vec<i32>, constant: bool) -> i32 {
        self.m.tensors.push(Self::def(name, shape, constant));
        self.m.tensors.len() as i32 - 1
    }

    fn op(&mut self, op: OpDef, inputs: Vec<i32>, shape: [i32; 4]) -> i32 {
        let k = self.m.operators.len();
        let out = self.tensor(format!("op{k}/out"), shape.to_vec(), false);
        self.m.operators.push(Operator { op, inputs, outputs: vec![out] });
        (self.x, self.shape) = (out, shape);
        out
    }

    /// Output side of a SAME-padded window with `stride`.
    fn same(side: i32, stride: i32) -> i32 {
        (side + stride - 1) / stride
    }

    fn conv(&mut self, filters: i32, kernel: (i32, i32), stride: (i32, i32), act: Fused) -> i32 {
        let [n, h, w, c] = self.shape;
        let k = self.m.operators.len();
        let wt = self.tensor(format!("op{k}/w"), vec![filters, kernel.0, kernel.1, c], true);
        let b = self.tensor(format!("op{k}/b"), vec![filters], true);
        let shape = [n, Self::same(h, stride.0), Self::same(w, stride.1), filters];
        self.op(OpDef::Conv2d { same: true, stride, act }, vec![self.x, wt, b], shape)
    }

    fn depthwise(&mut self, stride: i32) -> i32 {
        let [n, h, w, c] = self.shape;
        let k = self.m.operators.len();
        let wt = self.tensor(format!("op{k}/w"), vec![1, 3, 3, c], true);
        let b = self.tensor(format!("op{k}/b"), vec![c], true);
        let shape = [n, Self::same(h, stride), Self::same(w, stride), c];
        let op = OpDef::DepthwiseConv2d { same: true, stride: (stride, stride), multiplier: 1, act: Fused::Relu };
        self.op(op, vec![self.x, wt, b], shape)
    }

    /// A depthwise-separable block: 3×3 depthwise (ReLU), then 1×1 pointwise to `filters` (ReLU).
    fn separable(&mut self, stride: i32, filters: i32) -> i32 {
        self.depthwise(stride);
        self.conv(filters, (1, 1), (1, 1), Fused::Relu)
    }

    fn add(&mut self, a: i32, b: i32) -> i32 {
        let shape = self.shape;
        self.op(OpDef::Add { act: Fused::Relu }, vec![a, b], shape)
    }

    /// VALID average pooling with the window as stride.
    fn avg_pool(&mut self, filter: (i32, i32)) -> i32 {
        let [n, h, w, c] = self.shape;
        let shape = [n, (h - filter.0) / filter.0 + 1, (w - filter.1) / filter.1 + 1, c];
        self.op(
            OpDef::Pool2d { max: false, same: false, stride: filter, filter, act: Fused::None },
            vec![self.x],
            shape,
        )
    }

    fn dense(&mut self, units: i32, act: Fused) -> i32 {
        let [_, h, w, c] = self.shape;
        let k = self.m.operators.len();
        let wt = self.tensor(format!("op{k}/w"), vec![units, h * w * c], true);
        let b = self.tensor(format!("op{k}/b"), vec![units], true);
        self.op(OpDef::FullyConnected { act }, vec![self.x, wt, b], [1, 1, 1, units])
    }

    fn softmax(mut self) -> Model {
        let shape = self.shape;
        self.op(OpDef::Softmax { beta: 1.0 }, vec![self.x], shape);
        self.finish()
    }

    fn finish(mut self) -> Model {
        self.m.outputs.push(self.x);
        self.m
    }
}

/// The benchmark's reference model, from its published layer list.
fn model(benchmark: &str) -> Result<Model> {
    Ok(match benchmark {
        // MobileNetV1 ×0.25 on 96×96×3 (visual_wake_words/vww_model.py).
        "vww" => {
            let mut n = Net::new("visual wake words", [1, 96, 96, 3]);
            n.conv(8, (3, 3), (2, 2), Fused::Relu);
            let strides = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1];
            let filters = [16, 32, 32, 64, 64, 128, 128, 128, 128, 128, 128, 256, 256];
            for (s, f) in strides.into_iter().zip(filters) {
                n.separable(s, f);
            }
            n.avg_pool((3, 3));
            n.dense(2, Fused::None);
            n.softmax()
        }
        // ResNet-8 on 32×32×3, 16/32/64 filters (image_classification/keras_model.py, v0.5).
        "ic" => {
            let mut n = Net::new("image classification", [1, 32, 32, 3]);
            n.conv(16, (3, 3), (1, 1), Fused::Relu);
            for (filters, stride) in [(16, 1), (32, 2), (64, 2)] {
                let (input, in_shape) = (n.x, n.shape);
                n.conv(filters, (3, 3), (stride, stride), Fused::Relu);
                let main = n.conv(filters, (3, 3), (1, 1), Fused::None);
                let main_shape = n.shape;
                let shortcut = if stride == 1 {
                    input
                } else {
                    (n.x, n.shape) = (input, in_shape);
                    n.conv(filters, (1, 1), (stride, stride), Fused::None)
                };
                n.shape = main_shape;
                n.add(main, shortcut);
            }
            n.avg_pool((8, 8));
            n.dense(10, Fused::None);
            n.softmax()
        }
        // DS-CNN on 49×10×1 MFCCs (keyword_spotting/keras_model.py).
        "kws" => {
            let mut n = Net::new("keyword spotting", [1, 49, 10, 1]);
            n.conv(64, (10, 4), (2, 2), Fused::Relu);
            for _ in 0..4 {
                n.separable(1, 64);
            }
            n.avg_pool((24, 5));
            n.dense(12, Fused::None);
            n.softmax()
        }
        // Fully connected autoencoder, 640 inputs (anomaly_detection/keras_model.py).
        "ad" => {
            let mut n = Net::new("anomaly detection", [1, 1, 1, 640]);
            for units in [128, 128, 128, 128, 8, 128, 128, 128, 128] {
                n.dense(units, Fused::Relu);
            }
            n.dense(640, Fused::None);
            n.finish()
        }
        other => bail!("repro/latency.toml: unknown benchmark {other:?} (expected one of {BENCHMARKS:?})"),
    })
}

/// Relative error in percent.
fn err_pct(predicted: f64, measured: f64) -> f64 {
    100.0 * (predicted - measured) / measured
}

/// Cycles per MAC of a profile, for the report.
fn coefficients(p: &Profile) -> Value {
    let c = &p.cycles_per_mac;
    json!({"conv1x1": c.conv1x1, "conv": c.conv, "depthwise": c.depthwise, "fc": c.fc,
           "per_element": p.cycles_per_element, "per_op": p.per_op_cycles})
}

impl Latency {
    /// Runs (or, with `--dry-run`, plans) the experiment.
    pub(super) fn run(root: &Path, o: &Opts, cfg: Self) -> Result<()> {
        if o.dry_run {
            let boards: Vec<&str> = cfg.boards.iter().map(|b| b.profile.as_str()).collect();
            println!("latency plan: the 4 MLPerf Tiny reference models against the published results of {boards:?}");
            return Ok(());
        }
        std::fs::create_dir_all(&o.out).with_context(|| format!("cannot create {}", o.out.display()))?;
        let out = std::fs::canonicalize(&o.out)?;
        // No danas binary needed: the cost model is called as a library.
        let ctx = Ctx { root: root.to_path_buf(), danas: "danas-cost (library)".into(), out };
        ctx.write_meta(o, &cfg, 1)?;
        let models_dir = ctx.out.join("models");
        std::fs::create_dir_all(&models_dir)?;
        let mut features: BTreeMap<&str, LatencyFeatures> = BTreeMap::new();
        let mut macs = serde_json::Map::new();
        for b in BENCHMARKS {
            let bytes = model(b)?.to_bytes()?;
            std::fs::write(models_dir.join(format!("{b}.tflite")), &bytes)?;
            let f = latency_features(&read_tflite(&bytes, b)?.graph)?;
            let total = (f.conv1x1_macs + f.conv_macs + f.depthwise_macs + f.fc_macs) as u64;
            macs.insert(b.into(), json!({"rebuilt": total, "published": cfg.published_macs.get(b)}));
            features.insert(b, f);
        }
        let mut boards = Vec::new();
        for board in &cfg.boards {
            boards.push(evaluate(board, &features)?);
        }
        let raw = json!({"macs": macs, "features": features, "boards": boards});
        ctx.write_json(&raw)?;
        let md = report(&ctx, o, &raw, &cfg)?;
        ctx.write_md(&md)?;
        println!("{md}");
        Ok(())
    }
}

/// A board's errors: uncalibrated, and per fit in-sample and left out.
fn evaluate(board: &Board, features: &BTreeMap<&str, LatencyFeatures>) -> Result<Value> {
    let catalogue = Profile::builtin(&board.profile).map_err(|e| anyhow!("repro/latency.toml: {e}"))?;
    let mut profile = catalogue.clone();
    if let Some(prior) = board.prior {
        profile.cycles_per_mac = prior;
    }
    let samples: Vec<CalibrationSample> = BENCHMARKS
        .iter()
        .filter_map(|b| {
            let ms = *board.ms.get(*b)?;
            Some(CalibrationSample { label: (*b).into(), features: *features.get(b)?, measured_ms: ms })
        })
        .collect();
    if samples.is_empty() {
        bail!("repro/latency.toml: board {} has no results", board.profile);
    }
    let ms_of =
        |p: &Profile| -> Vec<f64> { samples.iter().map(|s| s.features.cycles(p) / (p.clock_mhz * 1000.0)).collect() };
    let uncalibrated = ms_of(&profile);
    let mut fits = Vec::new();
    for (name, fit) in [("scale", Fit::Scale), ("conv-fc", Fit::ConvFc)] {
        let all = calibrate_with(&profile, &samples, fit)?;
        let mut left_out = Vec::new();
        for i in 0..samples.len() {
            let rest: Vec<CalibrationSample> =
                samples.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| s.clone()).collect();
            let cal = calibrate_with(&profile, &rest, fit)?;
            let p = &cal.profile;
            // A fit that never saw the held-out model's kind keeps the profile's value
            // for it: say so instead of calling that a held-out prediction.
            let s = &samples[i];
            let unseen = cal.kept.iter().any(|k| !all.kept.contains(k));
            left_out.push(json!({
                "model": s.label,
                "predicted_ms": s.features.cycles(p) / (p.clock_mhz * 1000.0),
                "measured_ms": s.measured_ms,
                "fitted_without_its_kind": unseen,
            }));
        }
        fits.push(json!({
            "fit": name,
            "coefficients": coefficients(&all.profile),
            "in_sample_ms": all.predicted_ms,
            "kept": all.kept,
            "left_out": left_out,
        }));
    }
    Ok(json!({
        "profile": board.profile,
        "submission": board.submission,
        "source": board.source,
        "kernels": profile.kernels.name(),
        "clock_mhz": profile.clock_mhz,
        "measured_ms": samples.iter().map(|s| json!({"model": s.label, "ms": s.measured_ms})).collect::<Vec<_>>(),
        "uncalibrated_ms": uncalibrated,
        "profile_coefficients": coefficients(&profile),
        "prior": board.prior.is_some(),
        "catalogue_ms": ms_of(&catalogue),
        "catalogue_coefficients": coefficients(&catalogue),
        "fits": fits,
    }))
}

fn report(ctx: &Ctx, o: &Opts, raw: &Value, cfg: &Latency) -> Result<String> {
    let mut md = ctx.heading(
        o,
        None,
        "The latency model (cycles = Σ MACs per kind × cycles per MAC + elements × cycles per element + \
         ops × cycles per op, at the profile's clock) against published MLPerf Tiny median latencies. \
         The four reference models are rebuilt from their published layer lists and read by danas-cost \
         like any `.tflite`. *Left out*: the fit saw the other models only, so its error on that model is \
         a held-out error. Fits: `scale` keeps the profile's relative costs per kind and fits one factor; \
         `conv-fc` fits one cycles-per-MAC for every convolution kind and one for fully connected layers \
         (the reference kernels' shape).",
    );
    let _ = writeln!(md, "## Rebuilt models\n\n| benchmark | MACs (rebuilt) | MACs (published .tflite) |");
    let _ = writeln!(md, "|---|---:|---:|");
    for b in BENCHMARKS {
        let m = &raw["macs"][b];
        let _ = writeln!(md, "| {b} | {} | {} |", m["rebuilt"], m["published"]);
    }
    let boards = raw["boards"].as_array().cloned().unwrap_or_default();
    for (board, cfg_board) in boards.iter().zip(&cfg.boards) {
        let _ = writeln!(
            md,
            "\n## {} ({}, {} MHz)\n\n{}. Source: {}.\n",
            board["profile"].as_str().unwrap_or("?"),
            board["kernels"].as_str().unwrap_or("?"),
            board["clock_mhz"],
            cfg_board.submission,
            cfg_board.source
        );
        let measured: Vec<(String, f64)> = board["measured_ms"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| (m["model"].as_str().unwrap_or("?").to_string(), m["ms"].as_f64().unwrap_or(0.0)))
                    .collect()
            })
            .unwrap_or_default();
        let col = |v: &Value, i: usize| v.get(i).and_then(Value::as_f64).unwrap_or(f64::NAN);
        let prior = board["prior"].as_bool() == Some(true);
        let start = if prior { "before (prior) ms (err %)" } else { "uncalibrated ms (err %)" };
        let _ = write!(md, "| model | published ms | {start} |");
        if prior {
            let _ = write!(md, " catalogue (fitted on these) ms (err %) |");
        }
        let fits = board["fits"].as_array().cloned().unwrap_or_default();
        for f in &fits {
            let name = f["fit"].as_str().unwrap_or("?");
            let _ = write!(md, " {name}: in-sample err % | {name}: left out ms (err %) |");
        }
        let _ =
            writeln!(md, "\n|---|---:|---:|{}{}", if prior { "---:|" } else { "" }, "---:|---:|".repeat(fits.len()));
        let mut summary: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (i, (model, ms)) in measured.iter().enumerate() {
            let un = col(&board["uncalibrated_ms"], i);
            let before = if prior { "before (prior)" } else { "uncalibrated" };
            summary.entry(before.into()).or_default().push(err_pct(un, *ms).abs());
            let _ = write!(md, "| {model} | {ms:.2} | {un:.1} ({:+.0}) |", err_pct(un, *ms));
            if prior {
                let cat = col(&board["catalogue_ms"], i);
                summary.entry("catalogue (in-sample)".into()).or_default().push(err_pct(cat, *ms).abs());
                let _ = write!(md, " {cat:.1} ({:+.0}) |", err_pct(cat, *ms));
            }
            for f in &fits {
                let name = f["fit"].as_str().unwrap_or("?");
                let ins = col(&f["in_sample_ms"], i);
                let lo = &f["left_out"][i];
                let p = lo["predicted_ms"].as_f64().unwrap_or(f64::NAN);
                let flag = if lo["fitted_without_its_kind"].as_bool() == Some(true) { " †" } else { "" };
                if flag.is_empty() {
                    summary.entry(format!("{name}, left out")).or_default().push(err_pct(p, *ms).abs());
                }
                let _ = write!(md, " {:+.1} | {p:.1} ({:+.0}){flag} |", err_pct(ins, *ms), err_pct(p, *ms));
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(md, "\n| | models | median \\|err\\| % | max \\|err\\| % |\n|---|---:|---:|---:|");
        for (what, e) in &summary {
            let max = e.iter().copied().fold(0.0, f64::max);
            let _ = writeln!(md, "| {what} | {} | {:.1} | {max:.1} |", e.len(), median(e));
        }
        let _ = writeln!(md, "\nCycles per MAC (the profile, then each fit on all four models):\n");
        let _ = writeln!(md, "| | conv1x1 | conv | depthwise | fc |\n|---|---:|---:|---:|---:|");
        let mut rows = vec![(
            if prior { "prior (fits start here)" } else { "profile" }.to_string(),
            board["profile_coefficients"].clone(),
        )];
        if prior {
            rows.push(("catalogue".into(), board["catalogue_coefficients"].clone()));
        }
        rows.extend(
            fits.iter().map(|f| (format!("{} fit", f["fit"].as_str().unwrap_or("?")), f["coefficients"].clone())),
        );
        for (what, c) in rows {
            let g = |k: &str| c[k].as_f64().unwrap_or(f64::NAN);
            let _ = writeln!(
                md,
                "| {what} | {:.2} | {:.2} | {:.2} | {:.2} |",
                g("conv1x1"),
                g("conv"),
                g("depthwise"),
                g("fc")
            );
        }
        if fits
            .iter()
            .any(|f| f["left_out"].as_array().is_some_and(|a| a.iter().any(|x| x["fitted_without_its_kind"] == true)))
        {
            let _ = writeln!(
                md,
                "\n† no other model has a fully connected layer of note, so that fit kept the profile's FC value: \
                 not a held-out test of the fit, and left out of the summary."
            );
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_rebuilt_models_have_the_published_mac_counts() {
        // The MACs danas-cost reads from the published .tflite files (repro/latency.toml).
        for (b, published) in [("vww", 7_489_664u64), ("ic", 12_501_632), ("kws", 2_656_768), ("ad", 264_192)] {
            let bytes = model(b).unwrap().to_bytes().unwrap();
            let f = latency_features(&read_tflite(&bytes, b).unwrap().graph).unwrap();
            let total = (f.conv1x1_macs + f.conv_macs + f.depthwise_macs + f.fc_macs) as u64;
            assert_eq!(total, published, "{b}");
        }
        assert!(model("nope").is_err());
    }
}
