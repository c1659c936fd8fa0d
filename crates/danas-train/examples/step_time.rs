//! Times training steps of MobileNetV2 α 0.35, 3×96×96, batch 32, 2 classes
//! (the bench's step) and prints the median; for profiling with `perf`.
//!
//! `cargo run -p danas-train --release --example step_time -- [steps] [batch] [alpha] [res] [--json]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use danas_core::{Arch, Batch, Candidate, Color, DataConfig};
use danas_train::{Network, TrainConfig, Trainer};
use rand::{Rng, SeedableRng};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let steps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let alpha: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0.35);
    let res: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(96);
    let cand = Candidate::new(DataConfig::new(res as u32, Color::Rgb), Arch::full(alpha));
    let net = Network::new(&cand, 2, 0).unwrap();
    let cfg = TrainConfig { steps: 1_000_000, batch_size: n, ..TrainConfig::default() };
    let mut trainer = Trainer::new(&net, &cfg).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let images = (0..n * 3 * res * res).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let labels = (0..n).map(|i| (i % 2) as u32).collect();
    let b = Batch { images, labels, n, c: 3, h: res, w: res };
    trainer.step(&b).unwrap();
    let mut times = Vec::new();
    for _ in 0..steps {
        let t = std::time::Instant::now();
        trainer.step(&b).unwrap();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    if args.iter().any(|a| a == "--json") {
        println!(
            "{{\"framework\": \"danas-train\", \"alpha\": {alpha}, \"batch\": {n}, \"median_ms\": {:.3}, \"images_per_s\": {:.3}}}",
            med * 1e3,
            n as f64 / med
        );
    } else {
        println!(
            "alpha {alpha}: median step {:.1} ms, {:.1} images/s (batch {n}, {steps} steps)",
            med * 1e3,
            n as f64 / med
        );
    }
}
