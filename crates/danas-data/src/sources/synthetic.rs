//! A generated data set. **Not real data**: it exists so that the search, the demo and the
//! tests have a colour image task with known properties on machines without data sets.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::DataError;
use crate::source::{Catalog, Fnv, RawImage, Record, Sink, Source};
use crate::transform::RgbImage;

/// Class names of the synthetic set, in label order: colour family × stripe orientation.
pub const SYNTHETIC_CLASSES: [&str; 4] = ["warm_vertical", "warm_horizontal", "cool_vertical", "cool_horizontal"];

/// **A generated (synthetic) data set, not real images.**
///
/// Each image (rendered directly at `size × size`, default 96) shows a noisy grey background
/// with a smooth brightness gradient and one elliptical object. The label (4 classes, see
/// [`SYNTHETIC_CLASSES`]) is determined by
/// - the object's **colour family**, warm (reddish) or cool (greenish); the two families have
///   *exactly the same BT.601 luminance*, so a grayscale input cannot tell them apart, and
/// - the **orientation of fine stripes** (period 2–4 pixels at the native size) on the
///   object, vertical or horizontal; downscaling to a third of the native size or less
///   averages them away, so a low resolution cannot tell them apart.
///
/// Hence grayscale alone caps accuracy at about 50 %, and so does a low resolution alone;
/// both at once about 25 %. Object position, size, brightness, colour magnitude, stripe
/// period, phase and contrast, and the background vary randomly. Image `i` depends only on
/// (`seed`, `i`, `size`), so any subset can be generated in any order, and the set is
/// deterministic. Labels cycle `i mod 4`, so classes are balanced. There are no source splits;
/// the pipeline carves stratified train/validation/test splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticSource {
    /// Number of images.
    pub n: usize,
    /// Side of the square images in pixels.
    pub size: u32,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for SyntheticSource {
    fn default() -> Self {
        Self { n: 2000, size: 96, seed: 0 }
    }
}

impl SyntheticSource {
    /// Renders image `i` (label `i mod 4`).
    pub fn render(&self, i: usize) -> RgbImage {
        self.render_as(i, i % 4)
    }

    /// Renders the random draws of image `i` with the class `label` (`0..4`): the images
    /// of one `i` differ only in the object's chroma sign and stripe orientation.
    pub fn render_as(&self, i: usize, label: usize) -> RgbImage {
        let warm = label < 2;
        let vertical = label.is_multiple_of(2);
        let s = self.size as usize;
        let sf = self.size as f32;
        let mut rng = ChaCha8Rng::seed_from_u64(Fnv::default().str("synthetic").u64(self.seed).u64(i as u64).finish());
        // Background: grey level, gradient, a very faint random tint (no label information).
        let g0: f32 = rng.random_range(0.3..0.7);
        let (gx, gy): (f32, f32) = (rng.random_range(-0.1..0.1), rng.random_range(-0.1..0.1));
        let tint: [f32; 3] =
            [rng.random_range(-0.01..0.01), rng.random_range(-0.01..0.01), rng.random_range(-0.01..0.01)];
        // Object.
        let cx = rng.random_range(0.3..0.7) * sf;
        let cy = rng.random_range(0.3..0.7) * sf;
        let rx = rng.random_range(0.2..0.36) * sf;
        let ry = rng.random_range(0.2..0.36) * sf;
        let y0: f32 = rng.random_range(0.35..0.65);
        // A chroma direction with zero BT.601 luminance: 0.299 a + 0.587 b + 0.114 c = 0.
        let c: f32 = rng.random_range(-0.5..0.5);
        let dir = [1.0, -(0.299 + 0.114 * c) / 0.587, c];
        let mag = rng.random_range(0.1..0.2) * if warm { 1.0 } else { -1.0 };
        let colour = [y0 + mag * dir[0], y0 + mag * dir[1], y0 + mag * dir[2]];
        let period = rng.random_range(2..=4usize);
        let phase = rng.random_range(0..period);
        let amp: f32 = rng.random_range(0.06..0.12);
        let mut data = Vec::with_capacity(s * s * 3);
        for y in 0..s {
            for x in 0..s {
                let noise: f32 = rng.random_range(-0.04..0.04);
                let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                let (dx, dy) = ((fx - cx) / rx, (fy - cy) / ry);
                let px = if dx * dx + dy * dy <= 1.0 {
                    let t = if vertical { x } else { y };
                    let stripe = if ((t + phase) % period) * 2 < period { amp } else { -amp };
                    [colour[0] + stripe + noise, colour[1] + stripe + noise, colour[2] + stripe + noise]
                } else {
                    let v = g0 + gx * (fx / sf - 0.5) * 2.0 + gy * (fy / sf - 0.5) * 2.0 + noise;
                    [v + tint[0], v + tint[1], v + tint[2]]
                };
                data.extend(px.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8));
            }
        }
        RgbImage { width: self.size, height: self.size, data }
    }
}

impl Source for SyntheticSource {
    fn describe(&self) -> String {
        format!("synthetic:n={},size={},seed={}", self.n, self.size, self.seed)
    }

    fn catalog(&self) -> Result<Catalog, DataError> {
        if self.n == 0 {
            return Err(DataError::option("synthetic n", 0, "must be at least 1"));
        }
        if !(8..=1024).contains(&self.size) {
            return Err(DataError::option("synthetic size", self.size, "must be between 8 and 1024 pixels"));
        }
        let records = (0..self.n)
            .map(|i| Record { key: format!("synthetic#{i}"), label: (i % 4) as u32, split: None, flags: vec![] })
            .collect();
        Ok(Catalog {
            class_names: SYNTHETIC_CLASSES.iter().map(|s| s.to_string()).collect(),
            records,
            fingerprint: Fnv::default()
                .str("synthetic-v1")
                .u64(self.n as u64)
                .u64(u64::from(self.size))
                .u64(self.seed)
                .finish(),
            ..Default::default()
        })
    }

    fn fetch(&self, catalog: &Catalog, wanted: &[usize], sink: &mut Sink<'_>) -> Result<(), DataError> {
        for &w in wanted {
            if w >= catalog.records.len() {
                sink(w, Err("no such record".into()))?;
            } else {
                sink(w, Ok(RawImage::Rgb(self.render(w))))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::BT601;

    #[test]
    fn deterministic_and_colour_families_share_luminance() {
        let s = SyntheticSource { n: 8, size: 32, seed: 5 };
        assert_eq!(s.render(3), s.render(3));
        assert_ne!(s.render(3), SyntheticSource { seed: 6, ..s }.render(3));
        // Mean chroma (r - g) differs in sign between warm and cool objects.
        let rg = |img: &RgbImage| -> f32 {
            img.data.chunks_exact(3).map(|p| f32::from(p[0]) - f32::from(p[1])).sum::<f32>() / (32.0 * 32.0)
        };
        for i in 0..8 {
            let img = s.render(i);
            assert_eq!(img.data.len(), 32 * 32 * 3);
            if i % 4 < 2 { assert!(rg(&img) > 1.0, "{i}") } else { assert!(rg(&img) < -1.0, "{i}") }
        }
        // The same draws as warm and as cool: grayscale luminance equal up to rounding.
        let y = |p: &[u8]| BT601[0] * f32::from(p[0]) + BT601[1] * f32::from(p[1]) + BT601[2] * f32::from(p[2]);
        for i in 0..4 {
            let (warm, cool) = (s.render_as(i, 0), s.render_as(i, 2));
            assert_ne!(warm, cool);
            for (a, b) in warm.data.chunks_exact(3).zip(cool.data.chunks_exact(3)) {
                assert!((y(a) - y(b)).abs() <= 1.0, "{a:?} vs {b:?}");
            }
        }
    }
}
