//! `danas train`: train one candidate network and report validation (and test) metrics.

use std::path::PathBuf;

use anyhow::Context;
use danas_core::{Arch, BatchSource, Candidate, Color, DataConfig};
use danas_train::{GradientOptimizer, StoragePrecision, Supernet, TrainConfig};

use crate::InputError;

/// Train a network for one candidate (data configuration + architecture).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset source, e.g. `idx:DIR` (Fashion-MNIST) or `folder:DIR`.
    #[arg(long)]
    pub data: String,
    /// Input resolution (square side in pixels).
    #[arg(long)]
    pub res: u32,
    /// Colour encoding: rgb or grayscale.
    #[arg(long, default_value = "rgb")]
    pub color: String,
    /// Width multiplier α.
    #[arg(long, default_value_t = 0.35)]
    pub alpha: f64,
    /// Depths of the five searchable stages, e.g. 3,4,3,3,1.
    #[arg(long, default_value = "3,4,3,3,1")]
    pub depths: String,
    /// Training epochs (passes over the training split).
    #[arg(long, conflicts_with = "steps")]
    pub epochs: Option<u64>,
    /// Training steps (batches); default: 1 epoch.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Optimiser: adam, adamw or sgd.
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Peak learning rate (after warm-up; then cosine decay to 0). The default recipe
    /// (Adam 3e-3, 100 warm-up steps) was measured on Fashion-MNIST; see README.
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Linear warm-up steps before the cosine decay (default: 100, at most a fifth of the steps).
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Weight decay (L2 for adam/sgd, decoupled for adamw).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Disable training augmentation.
    #[arg(long)]
    pub no_augment: bool,
    /// Seed of initialisation, batch order and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Start from the weights of this supernet checkpoint instead of from scratch.
    #[arg(long)]
    pub from_supernet: Option<PathBuf>,
    /// Also report metrics on the test split.
    #[arg(long)]
    pub test: bool,
    /// Save the trained network to this checkpoint.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Store the checkpoint in half precision.
    #[arg(long)]
    pub f16: bool,
    /// Use at most this many training images (a seeded subset).
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use at most this many validation (and test) images.
    #[arg(long)]
    pub eval_limit: Option<usize>,
    /// Seed of the train / validation / test split of sources without their own
    /// splits (a search uses its own seed; pass it to retrain a searched candidate
    /// on the same split).
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Opens a dataset specification (the danas-data pipelines) with the image limits and
/// split seed of `danas train` and `danas export`.
pub(crate) fn open_dataset(
    spec: &str,
    train_limit: Option<usize>,
    eval_limit: Option<usize>,
    split_seed: u64,
) -> anyhow::Result<danas_data::Dataset> {
    let mut opts = danas_data::DataOptions::default();
    opts.train_limit = train_limit;
    opts.eval_limit = eval_limit;
    opts.split_seed = split_seed;
    Ok(danas_data::Dataset::from_spec(spec, opts).map_err(|e| InputError(format!("--data {spec}: {e}")))?)
}

/// Opens a dataset specification as a batch source.
fn open_source(spec: &str, args: &Args) -> anyhow::Result<Box<dyn BatchSource>> {
    Ok(Box::new(open_dataset(spec, args.train_limit, args.eval_limit, args.split_seed)?))
}

fn parse_depths(s: &str) -> Result<Vec<u32>, InputError> {
    s.split(',')
        .map(|p| {
            p.trim().parse::<u32>().map_err(|_| InputError(format!("--depths {s:?}: {p:?} is not a whole number")))
        })
        .collect()
}

fn metrics_json(m: &danas_train::Metrics) -> serde_json::Value {
    serde_json::json!({
        "accuracy": m.accuracy,
        "balanced_accuracy": m.balanced_accuracy,
        "loss": m.loss,
        "images": m.images,
        "per_class": m.per_class,
        "positive": m.positive,
    })
}

/// Runs `danas train`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let color: Color = args.color.parse().map_err(|e| InputError(format!("--color: {e}")))?;
    let data = DataConfig::new(args.res, color);
    data.validate().map_err(|e| InputError(format!("--res: {e}")))?;
    let arch = Arch { alpha: args.alpha, depths: parse_depths(&args.depths)?, ..Arch::full(args.alpha) };
    arch.validate().map_err(|e| InputError(format!("architecture: {e}")))?;
    let cand = Candidate::new(data, arch);
    let optimizer = match args.optimizer.to_ascii_lowercase().as_str() {
        "adam" => GradientOptimizer::Adam { weight_decay: args.weight_decay },
        "adamw" => GradientOptimizer::AdamW { weight_decay: args.weight_decay },
        "sgd" => GradientOptimizer::Sgd { momentum: 0.9, weight_decay: args.weight_decay, nesterov: false },
        o => return Err(InputError(format!("--optimizer {o:?}: expected adam, adamw or sgd")).into()),
    };
    let supernet = match &args.from_supernet {
        Some(p) => Some(Supernet::load(p).map_err(|e| InputError(e.to_string()))?),
        None => None,
    };
    let source = open_source(&args.data, &args)?;
    let train_images = source.len(danas_core::Split::Train);
    let steps = match (args.steps, args.epochs) {
        (Some(s), _) => s,
        (None, e) => TrainConfig::steps_for_epochs(train_images, args.batch_size, e.unwrap_or(1)),
    };
    if steps == 0 {
        return Err(InputError(
            "--steps/--epochs: 0 training steps would export an untrained model; give at least 1".into(),
        )
        .into());
    }
    let cfg = TrainConfig {
        steps,
        batch_size: args.batch_size,
        optimizer,
        lr: args.lr,
        warmup_steps: args.warmup.unwrap_or((steps / 5).min(100)),
        min_lr: 0.0,
        augment: !args.no_augment,
        bn_momentum: 0.1,
        seed: args.seed,
        plateau: None,
    };
    cfg.validate().map_err(|e| InputError(e.to_string()))?;
    if !args.json {
        eprintln!(
            "training {cand} on {} ({train_images} training images, {} classes): {steps} steps of {}",
            args.data,
            source.classes(),
            args.batch_size
        );
    }
    let every = (steps / 20).max(1);
    let quiet = args.json;
    let mut progress = |s: &danas_train::StepInfo| {
        if !quiet && (s.step.is_multiple_of(every) || s.step + 1 == s.steps) {
            let ips = (s.step + 1) as f64 * args.batch_size as f64 / s.seconds.max(1e-9);
            eprintln!(
                "step {:>6}/{}  loss {:.4}  lr {:.2e}  {:.0} img/s  {:.0} s",
                s.step + 1,
                s.steps,
                s.loss,
                s.lr,
                ips,
                s.seconds
            );
        }
    };
    let (net, report) =
        danas_train::final_train(&cand, source.as_ref(), &cfg, supernet.as_ref(), args.test, &mut progress)
            .with_context(|| format!("training {cand}"))?;
    if let Some(p) = &args.save {
        let prec = if args.f16 { StoragePrecision::F16 } else { StoragePrecision::F32 };
        net.save(p, prec)?;
    }
    if args.json {
        let mut v = serde_json::json!({
            "candidate": cand.to_string(),
            "val_accuracy": report.validation.accuracy,
            "val_balanced_accuracy": report.validation.balanced_accuracy,
            "val_loss": report.validation.loss,
            "params": report.params,
            "train_seconds": report.training.seconds,
            "steps": report.training.steps,
            "validation": metrics_json(&report.validation),
        });
        if let Some(t) = &report.test {
            v["test_accuracy"] = serde_json::json!(t.accuracy);
            v["test_balanced_accuracy"] = serde_json::json!(t.balanced_accuracy);
            v["test"] = metrics_json(t);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let v = &report.validation;
        println!("candidate            {cand}");
        println!("params (BN folded)   {}", report.params);
        println!("train                {} steps, {:.1} s", report.training.steps, report.training.seconds);
        println!("val accuracy         {:.4}  (balanced {:.4}, loss {:.4})", v.accuracy, v.balanced_accuracy, v.loss);
        if let Some(t) = &report.test {
            println!(
                "test accuracy        {:.4}  (balanced {:.4}, loss {:.4})",
                t.accuracy, t.balanced_accuracy, t.loss
            );
        }
    }
    Ok(())
}
