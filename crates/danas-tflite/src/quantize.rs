//! Post-training int8 quantisation after TFLite's 8-bit specification.

use crate::TfliteError;
use crate::interp::run_float;
use crate::model::{ElemType, Model, OpDef, Quant, TensorDef};

/// Observed (min, max) of every tensor over the calibration inputs; `None` for
/// constants and tensors no op wrote.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ranges {
    /// Per tensor id.
    pub per_tensor: Vec<Option<(f32, f32)>>,
    /// Calibration inputs seen.
    pub samples: usize,
}

/// Runs the float model over `inputs` (NHWC, one image each) and records each
/// activation tensor's range.
///
/// # Errors
/// As [`run_float`]; [`TfliteError::Mismatch`] for no input or a non-finite activation.
pub fn calibrate(model: &Model, inputs: &[Vec<f32>]) -> Result<Ranges, TfliteError> {
    if inputs.is_empty() {
        return Err(TfliteError::mismatch("calibration", "needs at least one input image"));
    }
    let mut per_tensor: Vec<Option<(f32, f32)>> = vec![None; model.tensors.len()];
    for x in inputs {
        let values = run_float(model, x)?;
        for (i, v) in values.iter().enumerate() {
            let Some(v) = v else { continue };
            let (lo, hi) = v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
            if !lo.is_finite() || !hi.is_finite() {
                return Err(TfliteError::mismatch(
                    model.tensors[i].name.as_str(),
                    "non-finite activation during calibration",
                ));
            }
            per_tensor[i] = Some(match per_tensor[i] {
                Some((a, b)) => (a.min(lo), b.max(hi)),
                None => (lo, hi),
            });
        }
    }
    Ok(Ranges { per_tensor, samples: inputs.len() })
}

/// How activations and the input are quantised.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantOptions {
    /// The float range the model's input is normalised to. danas feeds pixels `p`
    /// as `p · 2/255 − 1`, so `[-1, 1]`: the int8 input is then `p − 128` with scale
    /// 2/255 and zero point 0 (off by half a step of the float input, 1/255).
    pub input_range: (f32, f32),
}

impl Default for QuantOptions {
    fn default() -> Self {
        Self { input_range: (-1.0, 1.0) }
    }
}

/// TFLite's asymmetric int8 parameters of a range: `scale = (max − min)/255`,
/// `zero_point = round(−128 − min/scale)`, with the range widened to hold 0.
pub fn activation_quant(lo: f32, hi: f32) -> Quant {
    let lo = f64::from(lo.min(0.0));
    let hi = f64::from(hi.max(0.0));
    let scale = ((hi - lo) / 255.0).max(1e-8);
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i64;
    Quant::per_tensor(scale as f32, zp)
}

fn f32s(t: &TensorDef) -> Vec<f32> {
    t.data
        .as_deref()
        .unwrap_or_default()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Symmetric int8 weights, one scale per slice of `per` consecutive... elements along
/// the output axis: `channels` scales, element `i` belonging to channel `chan(i)`.
fn symmetric(w: &[f32], channels: usize, chan: impl Fn(usize) -> usize) -> (Vec<u8>, Vec<f32>) {
    let mut maxabs = vec![0.0f32; channels];
    for (i, &v) in w.iter().enumerate() {
        let c = chan(i);
        maxabs[c] = maxabs[c].max(v.abs());
    }
    let scales: Vec<f32> = maxabs.iter().map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 }).collect();
    let q = w
        .iter()
        .enumerate()
        .map(|(i, &v)| (f64::from(v) / f64::from(scales[chan(i)])).round().clamp(-127.0, 127.0) as i8 as u8)
        .collect();
    (q, scales)
}

fn bias_q(b: &[f32], s_in: f32, s_w: &[f32]) -> Vec<u8> {
    b.iter()
        .enumerate()
        .flat_map(|(c, &v)| {
            let s = f64::from(s_in) * f64::from(*s_w.get(c).or(s_w.first()).unwrap_or(&1.0));
            let q = (f64::from(v) / s).round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
            q.to_le_bytes()
        })
        .collect()
}

/// The int8 model of a float one: per-channel symmetric int8 conv and depthwise weights
/// (`quantized_dimension` 0 and 3), per-tensor symmetric classifier weights, int32 biases
/// at `input scale × weight scale`, per-tensor asymmetric int8 activations from `ranges`,
/// softmax output at scale 1/256 and zero point −128, int8 input and output.
///
/// # Errors
/// [`TfliteError::Mismatch`] when `ranges` misses an activation,
/// [`TfliteError::Unsupported`] for an op outside the exported set.
pub fn quantize(float: &Model, ranges: &Ranges, opts: &QuantOptions) -> Result<Model, TfliteError> {
    let mut m = float.clone();
    // Activations first: every non-constant float tensor.
    for (i, t) in m.tensors.iter_mut().enumerate() {
        if t.data.is_some() || t.ty != ElemType::F32 {
            continue;
        }
        let is_input = float.inputs.contains(&(i as i32));
        let (lo, hi) = if is_input {
            opts.input_range
        } else {
            ranges.per_tensor.get(i).copied().flatten().ok_or_else(|| {
                TfliteError::mismatch(t.name.as_str(), "no calibration range (did the calibration run the model?)")
            })?
        };
        t.quant = Some(activation_quant(lo, hi));
        t.ty = ElemType::I8;
    }
    for op in &float.operators {
        let scale_of = |m: &Model, id: i32| -> Result<f32, TfliteError> {
            let t = m.tensor(id, "quantize")?;
            t.quant.as_ref().and_then(|q| q.scale.first().copied()).ok_or_else(|| TfliteError::invalid("no scale"))
        };
        match &op.op {
            OpDef::Conv2d { .. } | OpDef::DepthwiseConv2d { .. } | OpDef::FullyConnected { .. } => {
                let (&x, &w, b) = match (op.inputs.first(), op.inputs.get(1)) {
                    (Some(x), Some(w)) => (x, w, op.inputs.get(2).copied()),
                    _ => return Err(TfliteError::invalid("conv without weights")),
                };
                let s_in = scale_of(&m, x)?;
                let wt = float.tensor(w, "quantize")?;
                let wf = f32s(wt);
                let (q, scales, dim) = match (&op.op, &wt.shape[..]) {
                    (OpDef::Conv2d { .. }, [o, ..]) => {
                        let per = wf.len() / (*o as usize).max(1);
                        let (q, s) = symmetric(&wf, *o as usize, |i| i / per.max(1));
                        (q, s, 0)
                    }
                    (OpDef::DepthwiseConv2d { .. }, [.., c]) => {
                        let c = *c as usize;
                        let (q, s) = symmetric(&wf, c, |i| i % c.max(1));
                        (q, s, 3)
                    }
                    _ => {
                        let (q, s) = symmetric(&wf, 1, |_| 0);
                        (q, s, 0)
                    }
                };
                let wi = w as usize;
                m.tensors[wi].data = Some(q);
                m.tensors[wi].ty = ElemType::I8;
                m.tensors[wi].quant = Some(Quant { zero_point: vec![0; scales.len()], scale: scales.clone(), dim });
                if let Some(b) = b.filter(|&b| b >= 0) {
                    let bt = float.tensor(b, "quantize")?;
                    let bi = b as usize;
                    m.tensors[bi].data = Some(bias_q(&f32s(bt), s_in, &scales));
                    m.tensors[bi].ty = ElemType::I32;
                    let s: Vec<f32> = scales.iter().map(|&sw| s_in * sw).collect();
                    m.tensors[bi].quant = Some(Quant { zero_point: vec![0; s.len()], scale: s, dim: 0 });
                }
            }
            OpDef::Softmax { .. } => {
                if let Some(&y) = op.outputs.first() {
                    m.tensors[y as usize].quant = Some(Quant::per_tensor(1.0 / 256.0, -128));
                }
            }
            OpDef::Add { .. } | OpDef::Mean { .. } => {}
            other => return Err(TfliteError::Unsupported(format!("quantising {}", other.name()))),
        }
    }
    m.description = format!("{} int8", float.description);
    Ok(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::{FloatNet, float_model, interp};
    use danas_core::{Arch, Candidate, Color, DataConfig};

    fn images(n: usize, len: usize, seed: u32) -> Vec<Vec<f32>> {
        (0..n)
            .map(|k| {
                (0..len)
                    .map(|i| {
                        let v = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed + k as u32 * 97) % 256;
                        v as f32 / 127.5 - 1.0
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn int8_model_tracks_the_float_model() {
        for (res, color, alpha, depths, softmax) in
            [(16, Color::Grayscale, 0.25, [1, 0, 0, 0, 0], false), (20, Color::Rgb, 0.35, [1, 1, 1, 0, 0], true)]
        {
            let cand = Candidate::new(DataConfig::new(res, color), Arch::mobilenet_v2(alpha, depths));
            let bp = cand.blueprint(4).unwrap();
            let float = float_model(&bp, &FloatNet::random(&bp, 3), softmax).unwrap();
            let len = (res * res * color.channels()) as usize;
            let ranges = calibrate(&float, &images(8, len, 1)).unwrap();
            let q = quantize(&float, &ranges, &QuantOptions::default()).unwrap();
            // Weights are int8 with per-channel scales; biases int32; the input at 2/255.
            let input = q.tensor(q.inputs[0], "t").unwrap();
            assert_eq!(input.ty, ElemType::I8);
            assert_eq!(input.quant, Some(Quant::per_tensor(2.0 / 255.0, -1)));
            let out = q.outputs[0];
            let oq = q.tensor(out, "t").unwrap().quant.clone().unwrap();
            let mut worst = 0.0f32;
            let mut range = 0.0f32;
            for x in images(4, len, 9) {
                let f = interp::run_float(&float, &x).unwrap()[out as usize].clone().unwrap();
                let xi: Vec<i8> = x.iter().map(|&v| (((v + 1.0) * 127.5).round() as i32 - 128) as i8).collect();
                let y = interp::run_int8(&q, &xi).unwrap()[out as usize].clone().unwrap();
                for (a, b) in f.iter().zip(&y) {
                    let deq = oq.scale[0] * (f32::from(*b) - oq.zero_point[0] as f32);
                    worst = worst.max((a - deq).abs());
                    range = range.max(a.abs());
                }
            }
            // Within a fifth of the output's magnitude (quantisation noise of a random deep net).
            assert!(worst <= 0.2 * range.max(1e-3) + 2.0 * oq.scale[0], "{cand}: worst {worst}, range {range}");
        }
    }

    #[test]
    fn quantize_needs_calibration_ranges() {
        let cand = Candidate::new(DataConfig::new(16, Color::Grayscale), Arch::mobilenet_v2(0.25, [1, 0, 0, 0, 0]));
        let bp = cand.blueprint(2).unwrap();
        let float = float_model(&bp, &FloatNet::zeros(&bp), true).unwrap();
        let err = quantize(&float, &Ranges::default(), &QuantOptions::default()).unwrap_err();
        assert!(err.to_string().contains("calibration"), "{err}");
        assert!(calibrate(&float, &[]).is_err());
        assert!(calibrate(&float, &[vec![0.0; 3]]).is_err());
    }
}
