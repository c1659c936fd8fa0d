//! Times the trainer on the device `DANAS_DEVICE` names (cpu, cuda, wgpu): training
//! steps of MobileNetV2 at one resolution for several batch sizes, and the supernet
//! evaluation of one candidate (extract, BatchNorm recalibration, validation pass) on
//! the built-in synthetic data. Prints one JSON object per measurement on stdout.
//!
//! On a GPU machine (not yet run on one):
//!
//! ```text
//! DANAS_DEVICE=cuda cargo run --release --features cuda --example device_bench -- \
//!     --steps 20 --batches 32,128 --alpha 0.35 --res 96 --evals 5
//! ```

use std::time::Instant;

use anyhow::{Context, Result, bail};
use danas::core::{Arch, Batch, Candidate, Color, DataConfig};
use danas::data::{DataOptions, Dataset};
use danas::train::{EvalConfig, Network, Supernet, TrainConfig, Trainer};
use rand::{Rng, SeedableRng};

struct Opts {
    steps: usize,
    batches: Vec<usize>,
    alpha: f64,
    res: u32,
    evals: usize,
}

fn parse() -> Result<Opts> {
    // Small defaults, so that CI runs it in seconds; the GPU check passes its own.
    let mut o = Opts { steps: 3, batches: vec![8], alpha: 0.35, res: 32, evals: 1 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--steps" => o.steps = value()?.parse().context("--steps")?,
            "--batches" => {
                o.batches = value()?
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--batches")?
            }
            "--alpha" => o.alpha = value()?.parse().context("--alpha")?,
            "--res" => o.res = value()?.parse().context("--res")?,
            "--evals" => o.evals = value()?.parse().context("--evals")?,
            other => bail!("unknown flag {other:?} (--steps, --batches, --alpha, --res, --evals)"),
        }
    }
    if o.steps == 0 || o.evals == 0 || o.batches.contains(&0) {
        bail!("--steps, --evals and every batch size must be at least 1");
    }
    Ok(o)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let o = parse()?;
    danas::train::select_device(None)?;
    let device = std::env::var("DANAS_DEVICE").unwrap_or_else(|_| "cpu".into());
    let data = DataConfig::new(o.res, Color::Rgb);
    let cand = Candidate::new(data, Arch::full(o.alpha));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let side = o.res as usize;
    for &n in &o.batches {
        let net = Network::new(&cand, 2, 0)?;
        let cfg = TrainConfig { steps: 1_000_000, batch_size: n, ..TrainConfig::default() };
        let mut trainer = Trainer::new(&net, &cfg)?;
        let images = (0..n * 3 * side * side).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let labels = (0..n).map(|i| (i % 2) as u32).collect();
        let b = Batch { images, labels, n, c: 3, h: side, w: side };
        // Warm-up: kernel compilation and autotuning happen on the first steps.
        let warm = Instant::now();
        for _ in 0..3 {
            trainer.step(&b)?;
        }
        let warm_s = warm.elapsed().as_secs_f64();
        let mut times = Vec::with_capacity(o.steps);
        for _ in 0..o.steps {
            let t = Instant::now();
            // A step reads its loss back, so the timing includes the device's work.
            trainer.step(&b)?;
            times.push(t.elapsed().as_secs_f64());
        }
        let med = median(times);
        println!(
            "{{\"kind\": \"train_step\", \"device\": \"{device}\", \"alpha\": {}, \"res\": {}, \"batch\": {n}, \
             \"steps\": {}, \"warmup_s\": {warm_s:.3}, \"median_ms\": {:.3}, \"images_per_s\": {:.1}}}",
            o.alpha,
            o.res,
            o.steps,
            med * 1e3,
            n as f64 / med
        );
    }

    // Supernet evaluation of one candidate on synthetic data (400 validation images).
    let mut opts = DataOptions::default();
    opts.eval_limit = Some(400);
    let ds = Dataset::from_spec("synthetic:n=4000,size=96", opts)?;
    let supernet = Supernet::new(data, Arch::full(1.0), danas::core::BatchSource::classes(&ds), 0)?;
    let sub = Candidate::new(data, Arch::full(o.alpha));
    let eval_cfg = EvalConfig::default();
    let first = Instant::now();
    supernet.evaluate(&sub, &ds, &eval_cfg)?;
    let first_s = first.elapsed().as_secs_f64();
    let mut times = Vec::with_capacity(o.evals);
    for _ in 0..o.evals {
        let t = Instant::now();
        supernet.evaluate(&sub, &ds, &eval_cfg)?;
        times.push(t.elapsed().as_secs_f64());
    }
    println!(
        "{{\"kind\": \"supernet_eval\", \"device\": \"{device}\", \"supernet_alpha\": 1.0, \"alpha\": {}, \"res\": {}, \
         \"calib_batches\": {}, \"calib_batch\": {}, \"val_images\": 400, \"first_s\": {first_s:.3}, \"median_s\": {:.3}}}",
        o.alpha,
        o.res,
        eval_cfg.calib_batches,
        eval_cfg.calib_batch_size,
        median(times)
    );
    Ok(())
}
