#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
//! Helpers shared by the integration tests: small files written into temp dirs.

use std::io::Write;
use std::path::Path;

use danas_core::{Batch, BatchSource, DataConfig, Split};
use danas_data::{DataOptions, Dataset};

/// A `w × h` image: a flat colour with a small gradient so it is not trivially compressible.
pub fn picture(w: u32, h: u32, rgb: [u8; 3]) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        let d = ((x * 7 + y * 3) % 9) as u8;
        image::Rgb([rgb[0].saturating_add(d), rgb[1].saturating_add(d), rgb[2].saturating_add(d)])
    })
}

pub fn jpeg_bytes(img: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

pub fn save(path: &Path, img: &image::RgbImage) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(path).unwrap().write_all(bytes).unwrap();
}

pub fn options(cache: &Path) -> DataOptions {
    let mut o = DataOptions::default();
    o.cache_dir = cache.to_path_buf();
    o
}

pub fn all_batches(ds: &Dataset, split: Split, dc: DataConfig, bs: usize, augment: bool, seed: u64) -> Vec<Batch> {
    ds.batches(split, dc, bs, augment, seed).map(|b| b.unwrap()).collect()
}

/// Flattens batches into (image, label) pairs.
pub fn samples(batches: &[Batch]) -> Vec<(Vec<f32>, u32)> {
    batches.iter().flat_map(|b| (0..b.n).map(move |i| (b.image(i).to_vec(), b.labels[i]))).collect()
}
