#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The synthetic set is learnable and data-sensitive: a linear probe (softmax regression on
//! simple local features: per-cell means and mean absolute horizontal / vertical differences
//! of each channel) scores clearly better with rgb than grayscale, and at high than low
//! resolution.

mod common;

use std::sync::Arc;

use common::*;
use danas_core::{Color, DataConfig, Split};
use danas_data::{Dataset, SyntheticSource};

const GRID: usize = 4;

fn features(img: &[f32], c: usize, r: usize) -> Vec<f32> {
    let mut f = Vec::new();
    let cell = r / GRID;
    for ch in 0..c {
        let p = &img[ch * r * r..(ch + 1) * r * r];
        for gy in 0..GRID {
            for gx in 0..GRID {
                let (mut m, mut dx, mut dy, mut k) = (0.0, 0.0, 0.0, 0.0);
                for y in gy * cell..(gy + 1) * cell {
                    for x in gx * cell..(gx + 1) * cell {
                        m += p[y * r + x];
                        if x + 1 < r {
                            dx += (p[y * r + x + 1] - p[y * r + x]).abs();
                        }
                        if y + 1 < r {
                            dy += (p[(y + 1) * r + x] - p[y * r + x]).abs();
                        }
                        k += 1.0;
                    }
                }
                f.extend([m / k, dx / k, dy / k]);
            }
        }
    }
    f
}

/// Trains softmax regression on train features, returns validation accuracy.
fn probe(ds: &Dataset, dc: DataConfig) -> f64 {
    let (c, r) = (dc.color.channels() as usize, dc.resolution as usize);
    let feats = |split| -> Vec<(Vec<f32>, u32)> {
        samples(&all_batches(ds, split, dc, 64, false, 0))
            .into_iter()
            .map(|(img, l)| (features(&img, c, r), l))
            .collect()
    };
    let train = feats(Split::Train);
    let val = feats(Split::Validation);
    let d = train[0].0.len();
    // Standardise with train statistics.
    let mut mean = vec![0f64; d];
    let mut sd = vec![0f64; d];
    for (f, _) in &train {
        for j in 0..d {
            mean[j] += f64::from(f[j]) / train.len() as f64;
        }
    }
    for (f, _) in &train {
        for j in 0..d {
            sd[j] += (f64::from(f[j]) - mean[j]).powi(2) / train.len() as f64;
        }
    }
    let norm =
        |f: &[f32]| -> Vec<f64> { (0..d).map(|j| (f64::from(f[j]) - mean[j]) / (sd[j].sqrt() + 1e-6)).collect() };
    let xs: Vec<(Vec<f64>, usize)> = train.iter().map(|(f, l)| (norm(f), *l as usize)).collect();
    let k = 4;
    let mut w = vec![vec![0f64; d + 1]; k];
    let scores = |w: &[Vec<f64>], x: &[f64]| -> Vec<f64> {
        w.iter().map(|wc| wc[d] + wc[..d].iter().zip(x).map(|(a, b)| a * b).sum::<f64>()).collect()
    };
    for _ in 0..120 {
        let mut grad = vec![vec![0f64; d + 1]; k];
        for (x, y) in &xs {
            let s = scores(&w, x);
            let mx = s.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = s.iter().map(|v| (v - mx).exp()).collect();
            let z: f64 = e.iter().sum();
            for c in 0..k {
                let g = e[c] / z - f64::from(u8::from(c == *y));
                for j in 0..d {
                    grad[c][j] += g * x[j];
                }
                grad[c][d] += g;
            }
        }
        for c in 0..k {
            for j in 0..=d {
                w[c][j] -= 1.0 * (grad[c][j] / xs.len() as f64 + 1e-3 * w[c][j]);
            }
        }
    }
    let correct = val
        .iter()
        .filter(|(f, l)| {
            let s = scores(&w, &norm(f));
            let best = (0..k).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap_or(0);
            best == *l as usize
        })
        .count();
    correct as f64 / val.len() as f64
}

#[test]
fn synthetic_set_is_learnable_and_data_sensitive() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.val_fraction = 0.25;
    o.test_fraction = 0.0;
    let ds = Dataset::open(Arc::new(SyntheticSource { n: 800, size: 64, seed: 11 }), o).unwrap();
    let rgb_hi = probe(&ds, DataConfig::new(64, Color::Rgb));
    let gray_hi = probe(&ds, DataConfig::new(64, Color::Grayscale));
    let rgb_lo = probe(&ds, DataConfig::new(16, Color::Rgb));
    println!("validation accuracy: rgb@64 {rgb_hi:.3}, grayscale@64 {gray_hi:.3}, rgb@16 {rgb_lo:.3}");
    assert!(rgb_hi >= 0.85, "rgb@64 {rgb_hi}");
    assert!(rgb_hi - gray_hi >= 0.2, "rgb {rgb_hi} vs grayscale {gray_hi}");
    assert!(rgb_hi - rgb_lo >= 0.2, "64 px {rgb_hi} vs 16 px {rgb_lo}");
    // Chance is 0.25; each reduced input keeps one of the two cues.
    assert!(gray_hi > 0.35 && rgb_lo > 0.35, "gray {gray_hi}, low {rgb_lo}");
}
