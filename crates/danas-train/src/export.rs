//! Deployable int8 models of trained networks: BatchNorm folded, exported as a float
//! TFLite model, calibrated on seeded training images, quantised to int8
//! (`danas-tflite`), and scored with the int8 reference evaluator, whose outputs are
//! TFLM's.

use std::time::Instant;

use danas_core::{Batch, BatchSource, Split};
use danas_tflite::{FloatNet, Model, QuantOptions, calibrate, float_model, interp, quantize};
use rayon::prelude::*;

use crate::eval::Metrics;
use crate::{Network, TrainError};

/// Settings of an int8 export.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExportConfig {
    /// Training images the activation ranges are calibrated on.
    pub calib_images: usize,
    /// Seed of which training images are picked.
    pub seed: u64,
    /// End the model with `SOFTMAX` (probabilities out) instead of logits.
    pub softmax: bool,
}

impl Default for ExportConfig {
    /// 128 calibration images, seed 0, with softmax.
    fn default() -> Self {
        Self { calib_images: 128, seed: 0, softmax: true }
    }
}

/// An exported network: its float and int8 TFLite models.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// The float model (BatchNorm folded) the int8 one was calibrated from.
    pub float: Model,
    /// The deployable int8 model.
    pub int8: Model,
    /// Calibration images used.
    pub calib_images: usize,
}

/// The folded weights of `net` in `danas-tflite`'s layout.
///
/// # Errors
/// [`TrainError::Backend`] if the backend returns unexpected data.
pub fn float_net(net: &Network) -> Result<FloatNet, TrainError> {
    let f = net.folded()?;
    Ok(FloatNet { convs: f.convs, fc_weight: f.fc_weight, fc_bias: f.fc_bias })
}

/// Image `i` of an NCHW batch as an NHWC float input (empty when the batch holds no
/// image `i`, which a model then rejects as an input of the wrong size).
pub fn nhwc(batch: &Batch, i: usize) -> Vec<f32> {
    let (c, hw) = (batch.c, batch.h * batch.w);
    let Some(img) = batch.images.get(i * c * hw..(i + 1) * c * hw) else { return Vec::new() };
    let mut out = vec![0.0f32; c * hw];
    for ch in 0..c {
        for p in 0..hw {
            out[p * c + ch] = img[ch * hw + p];
        }
    }
    out
}

/// Image `i` of an NCHW batch as the int8 input of an exported model: danas feeds
/// pixels `p` as `p · 2/255 − 1`, the int8 model takes `p − 128` (scale 2/255, zero
/// point −1).
pub fn int8_input(batch: &Batch, i: usize) -> Vec<i8> {
    nhwc(batch, i).iter().map(|&x| (((x + 1.0) * 127.5).round().clamp(0.0, 255.0) as i32 - 128) as i8).collect()
}

/// Picks `min(n, training images)` training images, a seeded uniform choice
/// (evaluation transform, no augmentation), as NHWC inputs.
fn calibration_images(
    net: &Network,
    source: &dyn BatchSource,
    n: usize,
    seed: u64,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let total = source.len(Split::Train);
    // A seeded partial Fisher-Yates shuffle of 0..total, then the chosen indices in order.
    let mut order: Vec<usize> = (0..total).collect();
    let k = n.min(total);
    let mut state = seed;
    for i in 0..k {
        state = splitmix(state);
        let j = i + (state % (total - i) as u64) as usize;
        order.swap(i, j);
    }
    let mut chosen = order[..k].to_vec();
    chosen.sort_unstable();
    let mut picked = Vec::with_capacity(k);
    let mut next = chosen.iter().copied().peekable();
    let mut index = 0usize;
    for batch in source.batches(Split::Train, net.blueprint().data, 64, false, 0) {
        if next.peek().is_none() {
            break;
        }
        let batch = batch.map_err(|source| TrainError::Source { split: Split::Train, source })?;
        batch.validate()?;
        for i in 0..batch.n {
            if next.peek() == Some(&(index + i)) {
                picked.push(nhwc(&batch, i));
                next.next();
            }
        }
        index += batch.n;
    }
    if picked.is_empty() {
        return Err(TrainError::EmptySplit { split: Split::Train });
    }
    Ok(picked)
}

/// SplitMix64's output function.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Exports `net` as float and int8 TFLite models, calibrating the int8 activation
/// ranges on `cfg.calib_images` seeded training images of `source`.
///
/// # Errors
/// [`TrainError::Tflite`] when the network cannot be expressed or quantised,
/// [`TrainError::Source`] / [`TrainError::EmptySplit`] for the data.
pub fn export_int8(net: &Network, source: &dyn BatchSource, cfg: &ExportConfig) -> Result<Exported, TrainError> {
    if cfg.calib_images == 0 {
        return Err(TrainError::setting("calib_images", 0, "must be at least 1"));
    }
    let float = float_model(net.blueprint(), &float_net(net)?, cfg.softmax)?;
    let images = calibration_images(net, source, cfg.calib_images, cfg.seed)?;
    let ranges = calibrate(&float, &images)?;
    let int8 = quantize(&float, &ranges, &QuantOptions::default())?;
    Ok(Exported { float, int8, calib_images: images.len() })
}

/// The int8 outputs of a model for every image of a batch (the int8 reference
/// evaluator, images in parallel).
///
/// # Errors
/// [`TrainError::Core`] for a batch whose buffers disagree with its shape,
/// [`TrainError::Export`] when the model does not run on the batch's images.
pub fn run_int8_batch(model: &Model, batch: &Batch) -> Result<Vec<Vec<i8>>, TrainError> {
    batch.validate()?;
    let out_id =
        *model.outputs.first().ok_or_else(|| TrainError::Export { reason: "the model has no output".into() })?;
    (0..batch.n)
        .into_par_iter()
        .map(|i| {
            let mut values = interp::run_int8(model, &int8_input(batch, i))?;
            values
                .get_mut(out_id as usize)
                .and_then(Option::take)
                .ok_or_else(|| TrainError::Export { reason: "the model did not write its output".into() })
        })
        .collect()
}

/// Accuracy (and the other metrics) of an int8 model on `split`, computed by the int8
/// reference evaluator, images in parallel. The loss is the cross-entropy of the
/// dequantised outputs (softmax applied when the model ends with logits).
///
/// # Errors
/// [`TrainError::Export`] when the model does not run on the batches,
/// [`TrainError::Source`] / [`TrainError::EmptySplit`] for the data.
pub fn evaluate_int8(
    model: &Model,
    source: &dyn BatchSource,
    data: danas_core::DataConfig,
    split: Split,
) -> Result<Metrics, TrainError> {
    let start = Instant::now();
    let out_id =
        *model.outputs.first().ok_or_else(|| TrainError::Export { reason: "the model has no output".into() })?;
    let out_t = model.tensor(out_id, "model output")?;
    let (scale, zp) = out_t.quant.as_ref().map_or((1.0, 0), |q| {
        (f64::from(q.scale.first().copied().unwrap_or(1.0)), q.zero_point.first().copied().unwrap_or(0))
    });
    let is_prob = model.operators.last().is_some_and(|o| matches!(o.op, danas_tflite::OpDef::Softmax { .. }));
    let k = source.classes() as usize;
    if out_t.elements() != k {
        return Err(TrainError::Export {
            reason: format!("the model has {} outputs but the data {k} classes", out_t.elements()),
        });
    }
    let mut confusion = vec![vec![0u64; k]; k];
    let mut loss_sum = 0.0f64;
    for batch in source.batches(split, data, 64, false, 0) {
        let batch = batch.map_err(|source| TrainError::Source { split, source })?;
        let rows = run_int8_batch(model, &batch)?;
        for (i, row) in rows.into_iter().enumerate() {
            let label = batch.labels[i] as usize;
            let real: Vec<f64> = row.iter().map(|&q| scale * (f64::from(q) - zp as f64)).collect();
            let pred = real.iter().enumerate().fold(0, |b, (j, &v)| if v > real[b] { j } else { b });
            loss_sum += if is_prob {
                -real[label].max(1e-4).ln()
            } else {
                let max = real.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                max + real.iter().map(|v| (v - max).exp()).sum::<f64>().ln() - real[label]
            };
            if label < k {
                confusion[label][pred] += 1;
            }
        }
    }
    if confusion.iter().flatten().sum::<u64>() == 0 {
        return Err(TrainError::EmptySplit { split });
    }
    Ok(Metrics::from_confusion(split, &confusion, loss_sum, start.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn inputs_are_nhwc_pixels_minus_128_and_never_panic() {
        // 2 channels, 1 × 2 pixels: channel 0 = [-1, 1], channel 1 = [0, 0.5].
        let batch = Batch { images: vec![-1.0, 1.0, 0.0, 0.5], labels: vec![0], n: 1, c: 2, h: 1, w: 2 };
        assert_eq!(nhwc(&batch, 0), vec![-1.0, 0.0, 1.0, 0.5]);
        // p = round((x + 1) · 127.5): 0, 128, 255, 191; minus 128.
        assert_eq!(int8_input(&batch, 0), vec![-128, 0, 127, 63]);
        assert!(nhwc(&batch, 1).is_empty() && int8_input(&batch, 5).is_empty());
        let bad = Batch { images: vec![0.0; 3], ..batch };
        assert!(matches!(run_int8_batch(&Model::default(), &bad), Err(TrainError::Core(_))));
    }
}
