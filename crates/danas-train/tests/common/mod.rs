//! A tiny generated classification task for the trainer's tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use danas_core::{Batch, BatchIter, BatchSource, DataConfig, Split};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Class `c` of `k`: a bright horizontal band at height `c / k`, plus noise; in
/// RGB the band is also tinted by class. Deterministic per (split, index).
pub struct Bands {
    pub classes: u32,
    pub train: usize,
    pub val: usize,
    pub test: usize,
    /// Replace every pixel by NaN (to provoke divergence).
    pub nan: bool,
}

impl Bands {
    pub fn new(classes: u32, train: usize, val: usize) -> Self {
        Self { classes, train, val, test: val, nan: false }
    }

    fn image(&self, split: Split, idx: usize, data: DataConfig) -> (Vec<f32>, u32) {
        let split_seed = match split {
            Split::Train => 1u64,
            Split::Validation => 2,
            Split::Test => 3,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(split_seed * 1_000_003 + idx as u64);
        let label = (idx as u32) % self.classes;
        let (h, w, c) = data.input_hwc();
        let (h, w, c) = (h as usize, w as usize, c as usize);
        let band = |y: usize| {
            let pos = (y as f32 + 0.5) / h as f32;
            let lo = label as f32 / self.classes as f32;
            let hi = (label + 1) as f32 / self.classes as f32;
            pos >= lo && pos < hi
        };
        let mut v = vec![0.0f32; c * h * w];
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let base = if band(y) { 0.6 } else { -0.6 };
                    let tint = if c == 3 && ch as u32 == label % 3 { 0.2 } else { 0.0 };
                    let noise: f32 = rng.random_range(-0.3..0.3);
                    let val = if self.nan { f32::NAN } else { (base + tint + noise).clamp(-1.0, 1.0) };
                    v[(ch * h + y) * w + x] = val;
                }
            }
        }
        (v, label)
    }
}

impl BatchSource for Bands {
    fn classes(&self) -> u32 {
        self.classes
    }
    fn len(&self, split: Split) -> usize {
        match split {
            Split::Train => self.train,
            Split::Validation => self.val,
            Split::Test => self.test,
        }
    }
    fn batches(&self, split: Split, data: DataConfig, batch_size: usize, augment: bool, seed: u64) -> BatchIter<'_> {
        let n = self.len(split);
        let mut order: Vec<usize> = (0..n).collect();
        if augment {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for i in (1..n).rev() {
                let j = rng.random_range(0..=i);
                order.swap(i, j);
            }
        }
        let (h, w, c) = data.input_hwc();
        let bs = batch_size.max(1);
        Box::new((0..n).step_by(bs).map(move |start| {
            let idx = &order[start..(start + bs).min(n)];
            let mut images = Vec::new();
            let mut labels = Vec::new();
            for &i in idx {
                let (im, l) = self.image(split, i, data);
                images.extend(im);
                labels.push(l);
            }
            Ok(Batch { images, labels, n: idx.len(), c: c as usize, h: h as usize, w: w as usize })
        }))
    }
}
