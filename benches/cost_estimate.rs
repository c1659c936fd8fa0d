//! The cost model's speed: one `paper`-space candidate's whole estimate (target ≤ 10 µs
//! median) and the whole 37,520-candidate `paper` space on all cores (target ≤ 0.5 s).
//! Run: `cargo bench --bench cost_estimate`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use danas_core::{Arch, Candidate, Color, DataConfig, Precision};
use danas_cost::{Estimator, Profile, estimate, estimate_many};

/// The paper's space: 7 resolutions × 2 colours × 268 depth tuples × 10 widths.
fn paper_space() -> Vec<Candidate> {
    let max = [3u32, 4, 3, 3, 1];
    let mut tuples = Vec::new();
    for kept in 0..=5usize {
        let mut d = [1u32; 5];
        loop {
            let mut t = [0u32; 5];
            t[..kept].copy_from_slice(&d[..kept]);
            tuples.push(t);
            // next tuple of the first `kept` stages, each 1..=max
            let mut i = 0;
            while i < kept && d[i] == max[i] {
                d[i] = 1;
                i += 1;
            }
            if i == kept {
                break;
            }
            d[i] += 1;
        }
    }
    assert_eq!(tuples.len(), 268);
    let mut out = Vec::new();
    for res in [224, 192, 160, 128, 96, 64, 32] {
        for color in Color::ALL {
            for d in &tuples {
                for a in 1..=10 {
                    out.push(Candidate::new(DataConfig::new(res, color), Arch::mobilenet_v2(f64::from(a) / 10.0, *d)));
                }
            }
        }
    }
    assert_eq!(out.len(), 37_520);
    out
}

fn bench(c: &mut Criterion) {
    let mcu = Profile::builtin("nucleo-h743").unwrap();
    let cand = Candidate::new(DataConfig::new(96, Color::Rgb), Arch::mobilenet_v2(0.35, [3, 4, 3, 3, 1]));
    let mut g = c.benchmark_group("cost");
    let mut est = Estimator::new();
    g.bench_function("one_candidate_fast", |b| {
        b.iter(|| {
            let bp = cand.blueprint(2).unwrap();
            est.estimate_blueprint(&bp, &mcu, Precision::Int8)
        })
    });
    g.bench_function("one_candidate_graph_with_layers", |b| {
        b.iter(|| estimate(&cand.blueprint(2).unwrap().to_graph(Precision::Int8), &mcu).unwrap())
    });
    let space = paper_space();
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("paper_space_37520_par", |b| {
        b.iter(|| {
            let r = estimate_many(&space, 2, &mcu, Precision::Int8);
            assert!(r.iter().all(Result::is_ok));
            r
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
