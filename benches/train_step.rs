//! One training step (forward, backward, Adam) of MobileNetV2 α 0.35 on
//! 3×96×96 RGB, batch 32, 2 classes, on burn's `flex` CPU backend.
//! Throughput = 32 images / median step time. Compare with
//! `crates/danas-train/tools/peer_step.py` (PyTorch CPU, same step).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use danas_core::{Arch, Batch, Candidate, Color, DataConfig};
use danas_train::{Network, TrainConfig, Trainer};
use rand::{Rng, SeedableRng};

fn batch(n: usize, res: usize, seed: u64) -> Batch {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let images = (0..n * 3 * res * res).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let labels = (0..n).map(|i| (i % 2) as u32).collect();
    Batch { images, labels, n, c: 3, h: res, w: res }
}

fn train_step(c: &mut Criterion) {
    let cand = Candidate::new(DataConfig::new(96, Color::Rgb), Arch::full(0.35));
    let net = Network::new(&cand, 2, 0).unwrap();
    let cfg = TrainConfig { steps: 1_000_000, batch_size: 32, ..TrainConfig::default() };
    let mut trainer = Trainer::new(&net, &cfg).unwrap();
    let b = batch(32, 96, 1);
    // Warm-up: first steps allocate optimiser state.
    for _ in 0..2 {
        trainer.step(&b).unwrap();
    }
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10).measurement_time(std::time::Duration::from_secs(20));
    g.throughput(Throughput::Elements(32));
    g.bench_function("mbv2_a0.35_96x96_rgb_b32_adam", |bench| bench.iter(|| trainer.step(&b).unwrap()));
    g.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
