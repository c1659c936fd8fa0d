//! Assembling 96×96 batches from the on-disk cache (no decoding).
//! Target: ≥ 50 000 images/s. Run: `cargo bench --bench data_batches`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use danas_core::Split;
use danas_data::{DataOptions, Dataset, SyntheticSource, assemble};

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("danas-bench-cache-{}", std::process::id()));
    let mut o = DataOptions::default();
    o.cache_dir = dir.clone();
    o.val_fraction = 0.0;
    o.test_fraction = 0.0;
    let ds = Dataset::open(Arc::new(SyntheticSource { n: 2048, size: 128, seed: 0 }), o).unwrap();
    let cache = ds.prepare(Split::Train, 96).unwrap();
    let eval = cache.eval_file(96, &dir, u64::MAX).unwrap();
    // Evaluation passes read consecutive cache entries; training passes shuffled ones.
    let run: Vec<usize> = (512..768).collect();
    let idx: Vec<usize> = (0..256).map(|i| (i * 7) % cache.entries.len()).collect();
    let mut g = c.benchmark_group("cached_batch_96");
    g.throughput(Throughput::Elements(idx.len() as u64));
    g.bench_function("eval_rgb_256", |b| b.iter(|| assemble(&cache, Some(&eval), &run, 96, false, false, 0).unwrap()));
    g.bench_function("eval_gray_256", |b| b.iter(|| assemble(&cache, Some(&eval), &run, 96, true, false, 0).unwrap()));
    g.bench_function("eval_rgb_256_scattered", |b| {
        b.iter(|| assemble(&cache, Some(&eval), &idx, 96, false, false, 0).unwrap())
    });
    g.bench_function("train_augment_rgb_256", |b| b.iter(|| assemble(&cache, None, &idx, 96, false, true, 1).unwrap()));
    g.finish();
    drop(eval);
    drop(cache);
    drop(ds);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
