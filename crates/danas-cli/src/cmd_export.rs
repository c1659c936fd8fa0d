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
    /// The training data (for calibrating the int8 activation ranges), as for `danas
    /// train`. Default: the data the checkpoint records (a search's final checkpoints
    /// do); a different source than the recorded one is an error.
    #[arg(long)]
    pub data: Option<String>,
    /// Training images to calibrate on (seeded pick) [default: the checkpoint's
    /// search's, else 128].
    #[arg(long)]
    pub calib: Option<usize>,
    /// Seed of the calibration pick [default: the checkpoint's search's, else 0].
    #[arg(long)]
    pub seed: Option<u64>,
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
    /// Seed of the train / validation / test split, as for `danas train` [default: the
    /// checkpoint's record, else 0].
    #[arg(long)]
    pub split_seed: Option<u64>,
    /// Use at most this many training images [default: the checkpoint's record].
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use at most this many validation (and test) images [default: the checkpoint's record].
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
    if args.calib == Some(0) {
        return Err(InputError("--calib 0: at least one calibration image is needed".into()).into());
    }
    let profile = Profile::resolve(&args.mcu).map_err(|e| InputError(format!("--mcu: {e}")))?;
    let (net, record) = Network::load_with_record(&args.checkpoint).map_err(|e| InputError(e.to_string()))?;
    let data = data_of(&args, record.as_ref())?;
    let train_limit = args.train_limit.or(record.as_ref().and_then(|r| r.train_limit));
    let eval_limit = args.eval_limit.or(record.as_ref().and_then(|r| r.eval_limit));
    let split_seed = args.split_seed.or(record.as_ref().map(|r| r.split_seed)).unwrap_or(0);
    let split_test = record.as_ref().and_then(|r| r.split_test);
    let source = open_recorded(&data, train_limit, eval_limit, split_seed, split_test)?;
    let recorded_export = record.as_ref().and_then(|r| r.export.clone());
    let args = Args {
        data: Some(data),
        calib: args.calib.or(recorded_export.as_ref().map(|e| e.calib_images)),
        seed: args.seed.or(recorded_export.as_ref().map(|e| e.seed)),
        ..args
    };
    if source.classes() != net.classes() {
        return Err(InputError(format!(
            "--data {}: {} classes, but the network in {} has {}",
            args.data.as_deref().unwrap_or_default(),
            source.classes(),
            args.checkpoint.display(),
            net.classes()
        ))
        .into());
    }
    let cfg = ExportConfig {
        calib_images: args.calib.unwrap_or(128),
        seed: args.seed.unwrap_or(0),
        softmax: !args.no_softmax,
    };
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
            class_names: source.class_names(),
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

/// Opens the data as the search did (its split, limits and carved test split).
fn open_recorded(
    spec: &str,
    train_limit: Option<usize>,
    eval_limit: Option<usize>,
    split_seed: u64,
    split_test: Option<f64>,
) -> anyhow::Result<danas_data::Dataset> {
    let mut opts = danas_data::DataOptions::default();
    opts.train_limit = train_limit;
    opts.eval_limit = eval_limit;
    opts.split_seed = split_seed;
    opts.split_test = split_test;
    Ok(danas_data::Dataset::from_spec(spec, opts).map_err(|e| InputError(format!("--data {spec}: {e}")))?)
}

/// The data source: `--data`, else the checkpoint's record. A `--data` that names a
/// different source than the record is an error (the model would be calibrated, and
/// measured, on other data than it was trained on).
fn data_of(args: &Args, record: Option<&danas_train::DataRecord>) -> anyhow::Result<String> {
    match (&args.data, record) {
        (None, Some(r)) => Ok(r.source.clone()),
        (None, None) => Err(InputError(format!(
            "{} records no data source (saved by `danas train` or an older danas): pass --data",
            args.checkpoint.display()
        ))
        .into()),
        (Some(d), None) => Ok(d.clone()),
        (Some(d), Some(r)) if same_source(d, &r.source) => Ok(r.source.clone()),
        (Some(d), Some(r)) => Err(InputError(format!(
            "--data {d}: {} was trained on `{}`; leave --data out to use it (a different source would \
             calibrate the int8 model on other data)",
            args.checkpoint.display(),
            r.source
        ))
        .into()),
    }
}

/// Whether two data specs name the same source (`kind:PATH` with relative or absolute
/// paths alike).
fn same_source(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        match s.split_once(':') {
            Some((kind, rest)) if !rest.is_empty() && (rest.contains('/') || std::path::Path::new(rest).exists()) => {
                let p = std::path::absolute(rest).unwrap_or_else(|_| PathBuf::from(rest));
                let p = p.canonicalize().unwrap_or(p);
                format!("{kind}:{}", p.display())
            }
            _ => s.trim().to_string(),
        }
    };
    a.trim() == b.trim() || norm(a) == norm(b)
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
