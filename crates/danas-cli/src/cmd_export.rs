//! `danas export`: a trained network checkpoint as a deployable int8 TFLite model.

use std::path::PathBuf;

use anyhow::Context;
use danas_core::{BatchSource, Split};
use danas_cost::Profile;
use danas_search::deploy::{ModelInfo, write_model_dir};
use danas_train::{ExportConfig, Network};

use crate::InputError;

/// Export a trained network (`danas train --save`, or a search's `final/*.ckpt`) as int8 TFLite.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The network checkpoint.
    pub checkpoint: PathBuf,
    /// Where to write the model: a `.tflite` file, or a directory that receives
    /// `model.tflite`, `model_data.cc`, `model_data.h` and `manifest.json`.
    #[arg(long)]
    pub out: PathBuf,
    /// The training data (for calibrating the int8 activation ranges), as for `danas train`.
    #[arg(long)]
    pub data: String,
    /// Training images to calibrate on (seeded pick).
    #[arg(long, default_value_t = 128)]
    pub calib: usize,
    /// Seed of the calibration pick.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// End the model with logits instead of SOFTMAX probabilities.
    #[arg(long)]
    pub no_softmax: bool,
    /// MCU the predicted arena (`kTensorArenaSize`), flash and latency are for.
    #[arg(long, default_value = "nucleo-h743")]
    pub mcu: String,
    /// Also measure float and int8 accuracy on the test split (int8 by the reference
    /// evaluator, whose outputs are TFLM's).
    #[arg(long)]
    pub test: bool,
    /// Seed of the train / validation / test split, as for `danas train`.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Use at most this many training images.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use at most this many validation (and test) images.
    #[arg(long)]
    pub eval_limit: Option<usize>,
    /// Write the test split as the int8 model sees it into this directory, for checking
    /// the model in another runtime: `inputs.bin` (int8 NHWC images back to back),
    /// `labels.bin` (u32 little-endian) and `outputs.bin` (danas's int8 outputs).
    #[arg(long)]
    pub dump_test_set: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `danas export`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.calib == 0 {
        return Err(InputError("--calib 0: at least one calibration image is needed".into()).into());
    }
    let profile = Profile::resolve(&args.mcu).map_err(|e| InputError(format!("--mcu: {e}")))?;
    let net = Network::load(&args.checkpoint).map_err(|e| InputError(e.to_string()))?;
    let source = crate::cmd_train::open_dataset(&args.data, args.train_limit, args.eval_limit, args.split_seed)?;
    if source.classes() != net.classes() {
        return Err(InputError(format!(
            "--data {}: {} classes, but the network in {} has {}",
            args.data,
            source.classes(),
            args.checkpoint.display(),
            net.classes()
        ))
        .into());
    }
    let cfg = ExportConfig { calib_images: args.calib, seed: args.seed, softmax: !args.no_softmax };
    let exported = danas_train::export_int8(&net, &source, &cfg)
        .with_context(|| format!("exporting {}", args.checkpoint.display()))?;
    let mut metrics = serde_json::Map::new();
    if args.test {
        let f = danas_train::evaluate(&net, &source, Split::Test, 128)?;
        let q = danas_train::evaluate_int8(&exported.int8, &source, net.candidate().data, Split::Test)?;
        metrics.insert("test_accuracy".into(), f.accuracy.into());
        metrics.insert("int8_test_accuracy".into(), q.accuracy.into());
        metrics.insert("test_images".into(), q.images.into());
    }
    if let Some(dir) = &args.dump_test_set {
        let n = dump_test_set(dir, &exported.int8, &source, net.candidate().data)?;
        metrics.insert("dumped_test_images".into(), n.into());
    }
    let to_dir = args.out.extension().is_none_or(|e| !e.eq_ignore_ascii_case("tflite"));
    let cost = if to_dir {
        let info = ModelInfo {
            candidate: net.candidate(),
            classes: net.classes(),
            metrics: serde_json::Value::Object(metrics.clone()),
            calib_images: exported.calib_images,
        };
        write_model_dir(&args.out, &exported.int8, &profile, &info)?
    } else {
        let bytes = exported.int8.to_bytes().map_err(|e| anyhow::anyhow!("serialising the model: {e}"))?;
        let cost = danas_search::deploy::predict(&exported.int8, &bytes, &profile)?;
        if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
        cost
    };
    if args.json {
        let v = serde_json::json!({
            "out": args.out,
            "candidate": net.candidate().to_string(),
            "calibration_images": exported.calib_images,
            "mcu": profile.name,
            "model_bytes": cost.model_bytes,
            "arena_head_bytes": cost.tflm_head_bytes,
            "arena_tail_bytes": cost.tail_bytes,
            "arena_bytes": cost.arena_bytes,
            "flash_bytes": cost.flash_bytes,
            "latency_ms": cost.latency_ms,
            "metrics": metrics,
        });
        println!("{v}");
    } else {
        println!("wrote {} ({})", args.out.display(), net.candidate());
        println!(
            "  int8 model {} B; on {}: arena {} B (head {} + tail {}), flash {} B, latency {:.1} ms",
            cost.model_bytes,
            profile.name,
            cost.arena_bytes,
            cost.tflm_head_bytes,
            cost.tail_bytes,
            cost.flash_bytes,
            cost.latency_ms
        );
        if let (Some(f), Some(q)) = (metrics.get("test_accuracy"), metrics.get("int8_test_accuracy")) {
            let (f, q) = (f.as_f64().unwrap_or(0.0), q.as_f64().unwrap_or(0.0));
            println!(
                "  test accuracy: float {:.2} %, int8 {:.2} % ({:+.2} points)",
                100.0 * f,
                100.0 * q,
                100.0 * (q - f)
            );
        }
    }
    Ok(())
}

/// Writes the test split's int8 inputs, labels and danas's int8 outputs to `dir`.
fn dump_test_set(
    dir: &std::path::Path,
    model: &danas_tflite::Model,
    source: &dyn BatchSource,
    data: danas_core::DataConfig,
) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (mut inputs, mut labels, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
    for batch in source.batches(Split::Test, data, 256, false, 0) {
        let batch = batch.map_err(|e| anyhow::anyhow!("reading the test split: {e}"))?;
        for i in 0..batch.n {
            inputs.extend(danas_train::int8_input(&batch, i).iter().map(|&v| v as u8));
            labels.extend(batch.labels[i].to_le_bytes());
        }
        for row in danas_train::run_int8_batch(model, &batch)? {
            outputs.extend(row.iter().map(|&v| v as u8));
        }
    }
    for (name, bytes) in [("inputs.bin", &inputs), ("labels.bin", &labels), ("outputs.bin", &outputs)] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(labels.len() / 4)
}
