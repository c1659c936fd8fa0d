//! Reference interpreters of the ops danas exports (`CONV_2D`, `DEPTHWISE_CONV_2D`,
//! `ADD`, `MEAN` over height and width, `FULLY_CONNECTED`, `SOFTMAX`), batch size 1,
//! NHWC.
//!
//! [`run_float`] runs a float model and returns every tensor's values (the quantiser
//! calibrates on them). [`run_int8`] runs an int8 model with the integer arithmetic of
//! TensorFlow Lite Micro's reference kernels (Q31 multipliers with a saturating rounding
//! doubling high multiply and a rounding right shift; ADD's 20-bit left shift; MEAN's
//! requantised sum; softmax's fixed-point exponent), so its outputs equal TFLM's.

use crate::TfliteError;
use crate::model::{ElemType, Fused, Model, OpDef, Operator, TensorDef};

/// Values of every tensor after a run: `None` for tensors never written or read.
pub type Values<T> = Vec<Option<Vec<T>>>;

fn dims4(t: &TensorDef, what: &str) -> Result<[usize; 4], TfliteError> {
    match t.shape[..] {
        [1, h, w, c] => Ok([1, h as usize, w as usize, c as usize]),
        _ => Err(TfliteError::Unsupported(format!("{what}: shape {:?} is not [1, H, W, C]", t.shape))),
    }
}

/// SAME / VALID geometry along one axis: (padding before).
fn pad_before(same: bool, input: usize, out: usize, k: usize, s: usize) -> usize {
    if !same {
        return 0;
    }
    let total = ((out.saturating_sub(1)) * s + k).saturating_sub(input);
    total / 2
}

fn f32s(t: &TensorDef, what: &str) -> Result<Vec<f32>, TfliteError> {
    let d = t.data.as_ref().ok_or_else(|| TfliteError::invalid(format!("{what}: constant has no data")))?;
    if t.ty != ElemType::F32 || d.len() != 4 * t.elements() {
        return Err(TfliteError::invalid(format!("{what}: expected {} float32 values", t.elements())));
    }
    Ok(d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn i8s(t: &TensorDef, what: &str) -> Result<Vec<i8>, TfliteError> {
    let d = t.data.as_ref().ok_or_else(|| TfliteError::invalid(format!("{what}: constant has no data")))?;
    if t.ty != ElemType::I8 || d.len() != t.elements() {
        return Err(TfliteError::invalid(format!("{what}: expected {} int8 values", t.elements())));
    }
    Ok(d.iter().map(|&b| b as i8).collect())
}

fn i32s(t: &TensorDef, what: &str) -> Result<Vec<i32>, TfliteError> {
    let d = t.data.as_ref().ok_or_else(|| TfliteError::invalid(format!("{what}: constant has no data")))?;
    if t.ty != ElemType::I32 || d.len() != 4 * t.elements() {
        return Err(TfliteError::invalid(format!("{what}: expected {} int32 values", t.elements())));
    }
    Ok(d.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

struct Io<'a> {
    model: &'a Model,
    op: &'a Operator,
    index: usize,
}

impl<'a> Io<'a> {
    fn what(&self) -> String {
        format!("operator {} ({})", self.index, self.op.op.name())
    }
    fn input(&self, k: usize) -> Result<(usize, &'a TensorDef), TfliteError> {
        let id =
            *self.op.inputs.get(k).ok_or_else(|| TfliteError::invalid(format!("{}: no input {k}", self.what())))?;
        Ok((id as usize, self.model.tensor(id, &self.what())?))
    }
    fn output(&self) -> Result<(usize, &'a TensorDef), TfliteError> {
        let id = *self.op.outputs.first().ok_or_else(|| TfliteError::invalid(format!("{}: no output", self.what())))?;
        Ok((id as usize, self.model.tensor(id, &self.what())?))
    }
}

fn take<T: Clone>(values: &Values<T>, id: usize, what: &str) -> Result<Vec<T>, TfliteError> {
    values
        .get(id)
        .and_then(Option::as_ref)
        .cloned()
        .ok_or_else(|| TfliteError::invalid(format!("{what}: reads tensor {id} before any op wrote it")))
}

fn input_vec<T: Clone>(model: &Model, input: &[T]) -> Result<(usize, Values<T>), TfliteError> {
    let [id] = model.inputs[..] else {
        return Err(TfliteError::Unsupported(format!("{} model inputs (one supported)", model.inputs.len())));
    };
    let t = model.tensor(id, "model input")?;
    if input.len() != t.elements() {
        return Err(TfliteError::mismatch(
            "input",
            format!("{} values, but the model's input {:?} holds {}", input.len(), t.shape, t.elements()),
        ));
    }
    let mut values: Values<T> = vec![None; model.tensors.len()];
    values[id as usize] = Some(input.to_vec());
    Ok((id as usize, values))
}

/// The geometry of a `CONV_2D` or `DEPTHWISE_CONV_2D` (NHWC, batch 1), checked
/// against its weights.
struct ConvGeom {
    ih: usize,
    iw: usize,
    ic: usize,
    oh: usize,
    ow: usize,
    oc: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    pt: usize,
    pl: usize,
    dw: bool,
}

impl ConvGeom {
    fn new(io: &Io<'_>, xt: &TensorDef, yt: &TensorDef) -> Result<Self, TfliteError> {
        let what = io.what();
        let (same, stride, dw) = match io.op.op {
            OpDef::Conv2d { same, stride, .. } => (same, stride, false),
            OpDef::DepthwiseConv2d { same, stride, .. } => (same, stride, true),
            _ => return Err(TfliteError::invalid(format!("{what}: not a convolution"))),
        };
        let [_, ih, iw, ic] = dims4(xt, &what)?;
        let [_, oh, ow, oc] = dims4(yt, &what)?;
        let (_, wt) = io.input(1)?;
        let [wo, kh, kw, wi] = match wt.shape[..] {
            [a, b, c, d] => [a as usize, b as usize, c as usize, d as usize],
            _ => return Err(TfliteError::invalid(format!("{what}: weights are not 4-D"))),
        };
        if (dw && (wi != oc || ic != oc)) || (!dw && (wo != oc || wi != ic)) {
            return Err(TfliteError::invalid(format!("{what}: weight shape {:?} does not fit", wt.shape)));
        }
        let (sh, sw) = (stride.0.max(1) as usize, stride.1.max(1) as usize);
        let (pt, pl) = (pad_before(same, ih, oh, kh, sh), pad_before(same, iw, ow, kw, sw));
        Ok(Self { ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl, dw })
    }

    /// The output: per position and output channel `c`, `out(c, acc)` where `acc`
    /// starts at `start(c)` and adds, per kernel tap inside the input, `mac(x, w)` (a
    /// depthwise tap) or the sum of `mac` over the input channels (a full tap). `x` and
    /// `w` are NHWC input and TFLite-layout weights.
    fn run<X: Copy, W: Copy, A: Copy + Default + std::ops::Add<Output = A>, Y: Clone + Default>(
        &self,
        x: &[X],
        w: &[W],
        start: impl Fn(usize) -> A,
        mac: impl Fn(X, W) -> A,
        out: impl Fn(usize, A) -> Y,
    ) -> Vec<Y> {
        let Self { ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl, dw } = *self;
        let mut y = vec![Y::default(); oh * ow * oc];
        for oy in 0..oh {
            for ox in 0..ow {
                for c in 0..oc {
                    let mut acc = start(c);
                    for ky in 0..kh {
                        let Some(iy) = (oy * sh + ky).checked_sub(pt).filter(|&v| v < ih) else { continue };
                        for kx in 0..kw {
                            let Some(ix) = (ox * sw + kx).checked_sub(pl).filter(|&v| v < iw) else { continue };
                            let xp = (iy * iw + ix) * ic;
                            if dw {
                                acc = acc + mac(x[xp + c], w[(ky * kw + kx) * oc + c]);
                            } else {
                                let wp = ((c * kh + ky) * kw + kx) * ic;
                                let tap = x[xp..xp + ic]
                                    .iter()
                                    .zip(&w[wp..wp + ic])
                                    .fold(A::default(), |s, (a, b)| s + mac(*a, *b));
                                acc = acc + tap;
                            }
                        }
                    }
                    y[(oy * ow + ox) * oc + c] = out(c, acc);
                }
            }
        }
        y
    }
}

/// Runs `model`'s operators in order on one input: `op` computes an operator's output
/// from its `Io`, the values so far, its first input's values and the input and output
/// tensors; every output is checked against its tensor's size.
fn run_ops<T: Clone>(
    model: &Model,
    input: &[T],
    mut op: impl FnMut(&Io<'_>, &Values<T>, Vec<T>, &TensorDef, &TensorDef) -> Result<Vec<T>, TfliteError>,
) -> Result<Values<T>, TfliteError> {
    let (_, mut values) = input_vec(model, input)?;
    for (index, o) in model.operators.iter().enumerate() {
        let io = Io { model, op: o, index };
        let what = io.what();
        let (xi, xt) = io.input(0)?;
        let x = take(&values, xi, &what)?;
        let (yi, yt) = io.output()?;
        let y = op(&io, &values, x, xt, yt)?;
        if y.len() != yt.elements() {
            return Err(TfliteError::invalid(format!(
                "{what}: output holds {} values, computed {}",
                yt.elements(),
                y.len()
            )));
        }
        values[yi] = Some(y);
    }
    Ok(values)
}

/// Runs a float model on one NHWC input; returns every tensor's values.
///
/// # Errors
/// [`TfliteError::Unsupported`] for an op or shape outside the exported set,
/// [`TfliteError::Mismatch`] for an input of the wrong size.
pub fn run_float(model: &Model, input: &[f32]) -> Result<Values<f32>, TfliteError> {
    run_ops(model, input, |io, values, x, xt, yt| {
        let what = io.what();
        Ok(match &io.op.op {
            OpDef::Conv2d { act, .. } | OpDef::DepthwiseConv2d { act, .. } => {
                let g = ConvGeom::new(io, xt, yt)?;
                let (_, wt) = io.input(1)?;
                let w = f32s(wt, &what)?;
                let bias = match io.input(2) {
                    Ok((_, bt)) => f32s(bt, &what)?,
                    Err(_) => vec![0.0; g.oc],
                };
                if bias.len() != g.oc {
                    return Err(TfliteError::invalid(format!("{what}: weight shape {:?} does not fit", wt.shape)));
                }
                g.run(&x, &w, |c| bias[c], |a, b| a * b, |_, acc| act_f32(acc, *act))
            }
            OpDef::Add { act } => {
                let (bi, _) = io.input(1)?;
                let b = take(values, bi, &what)?;
                if b.len() != x.len() {
                    return Err(TfliteError::Unsupported(format!("{what}: broadcasting ADD")));
                }
                x.iter().zip(&b).map(|(p, q)| act_f32(p + q, *act)).collect()
            }
            OpDef::Mean { .. } => {
                let [_, h, w, c] = dims4(xt, &what)?;
                check_mean_axes(io)?;
                let mut y = vec![0.0f32; c];
                for p in 0..h * w {
                    for (ch, v) in y.iter_mut().enumerate() {
                        *v += x[p * c + ch];
                    }
                }
                y.iter().map(|v| v / (h * w) as f32).collect()
            }
            OpDef::FullyConnected { act } => {
                let (_, wt) = io.input(1)?;
                let w = f32s(wt, &what)?;
                let n = yt.elements();
                let f = x.len();
                let bias = match io.input(2) {
                    Ok((_, bt)) => f32s(bt, &what)?,
                    Err(_) => vec![0.0; n],
                };
                if w.len() != n * f || bias.len() != n {
                    return Err(TfliteError::invalid(format!("{what}: weight shape {:?} does not fit", wt.shape)));
                }
                (0..n)
                    .map(|j| {
                        act_f32(bias[j] + w[j * f..(j + 1) * f].iter().zip(&x).map(|(a, b)| a * b).sum::<f32>(), *act)
                    })
                    .collect()
            }
            OpDef::Softmax { beta } => {
                let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = x.iter().map(|v| ((v - m) * beta).exp()).collect();
                let s: f32 = e.iter().sum();
                e.iter().map(|v| v / s).collect()
            }
            other => return Err(TfliteError::Unsupported(format!("{what}: op {}", other.name()))),
        })
    })
}

fn act_f32(v: f32, act: Fused) -> f32 {
    match act {
        Fused::Relu => v.max(0.0),
        Fused::Relu6 => v.clamp(0.0, 6.0),
        _ => v,
    }
}

fn check_mean_axes(io: &Io<'_>) -> Result<(), TfliteError> {
    let (_, at) = io.input(1)?;
    let axes = i32s(at, &io.what())?;
    let mut sorted = axes.clone();
    sorted.sort_unstable();
    if sorted != [1, 2] {
        return Err(TfliteError::Unsupported(format!("{}: MEAN over axes {axes:?} (only [1, 2])", io.what())));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// TFLM's integer arithmetic.

/// A real multiplier as TFLM stores it: a Q31 fraction and a power-of-two shift
/// (positive: left), `real ≈ multiplier · 2^(shift − 31)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QMul {
    /// Q31 fraction in [2^30, 2^31) (or 0).
    pub multiplier: i32,
    /// Power-of-two exponent.
    pub shift: i32,
}

/// `frexp`: `x = f · 2^e` with `|f|` in [0.5, 1).
fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let mut e = x.abs().log2().floor() as i32 + 1;
    let mut f = x / 2f64.powi(e);
    // Correct for rounding in log2 near powers of two.
    while f.abs() >= 1.0 {
        f /= 2.0;
        e += 1;
    }
    while f.abs() < 0.5 {
        f *= 2.0;
        e -= 1;
    }
    (f, e)
}

/// TFLite's `QuantizeMultiplier`.
pub fn quantize_multiplier(real: f64) -> QMul {
    if real == 0.0 {
        return QMul { multiplier: 0, shift: 0 };
    }
    let (q, mut shift) = frexp(real);
    let mut q_fixed = (q * (1i64 << 31) as f64).round() as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    QMul { multiplier: q_fixed as i32, shift }
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul`.
pub fn srdhm(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Division truncating toward zero, as C++ does.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT` (round half away from zero).
pub fn rdbpot(x: i32, exponent: i32) -> i32 {
    if exponent <= 0 {
        return x;
    }
    // In i64 so that exponents past 31 (which gemmlowp never passes) cannot overflow.
    let e = exponent.min(62);
    let mask = (1i64 << e) - 1;
    let remainder = i64::from(x) & mask;
    let threshold = (mask >> 1) + i64::from(x < 0);
    ((i64::from(x) >> e) + i64::from(remainder > threshold)) as i32
}

/// TFLite's `MultiplyByQuantizedMultiplier` (double rounding, the reference build's).
pub fn mul_by_qm(x: i32, m: QMul) -> i32 {
    let left = m.shift.max(0);
    let right = (-m.shift).max(0);
    rdbpot(srdhm(x.wrapping_mul(1i32.wrapping_shl(left as u32)), m.multiplier), right)
}

fn quant1(t: &TensorDef, what: &str) -> Result<(f64, i32), TfliteError> {
    match &t.quant {
        Some(q) if !q.scale.is_empty() => {
            Ok((f64::from(q.scale[0]), q.zero_point.first().copied().unwrap_or(0) as i32))
        }
        _ => Err(TfliteError::invalid(format!("{what}: tensor {:?} has no quantisation", t.name))),
    }
}

/// TFLite's `CalculateActivationRangeQuantized` for int8 (in `f32`, as TFLite does).
fn act_range(act: Fused, scale: f64, zp: i32) -> (i32, i32) {
    let scale = scale as f32;
    let q = |v: f32| zp + (v / scale).round() as i32;
    match act {
        Fused::Relu => (q(0.0).max(-128), 127),
        Fused::Relu6 => (q(0.0).max(-128), q(6.0).min(127)),
        _ => (-128, 127),
    }
}

/// Runs an int8 model on one NHWC int8 input; returns every tensor's values.
///
/// # Errors
/// [`TfliteError::Unsupported`] for an op, type or shape outside the exported set,
/// [`TfliteError::Mismatch`] for an input of the wrong size.
pub fn run_int8(model: &Model, input: &[i8]) -> Result<Values<i8>, TfliteError> {
    run_ops(model, input, |io, values, x, xt, yt| {
        let what = io.what();
        if xt.ty != ElemType::I8 || yt.ty != ElemType::I8 {
            return Err(TfliteError::Unsupported(format!("{what}: a tensor that is not int8")));
        }
        let (sx, zx) = quant1(xt, &what)?;
        let (sy, zy) = quant1(yt, &what)?;
        Ok(match &io.op.op {
            OpDef::Conv2d { act, .. } | OpDef::DepthwiseConv2d { act, .. } => {
                let g = ConvGeom::new(io, xt, yt)?;
                let (_, wt) = io.input(1)?;
                let w = i8s(wt, &what)?;
                let bias = match io.input(2) {
                    Ok((_, bt)) => i32s(bt, &what)?,
                    Err(_) => vec![0; g.oc],
                };
                let wq =
                    wt.quant.as_ref().ok_or_else(|| TfliteError::invalid(format!("{what}: weights unquantised")))?;
                let mults: Vec<QMul> = (0..g.oc)
                    .map(|c| {
                        let sw = f64::from(*wq.scale.get(c).or(wq.scale.first()).unwrap_or(&0.0));
                        quantize_multiplier(sx * sw / sy)
                    })
                    .collect();
                let (lo, hi) = act_range(*act, sy, zy);
                g.run(
                    &x,
                    &w,
                    |_| 0i32,
                    |a: i8, b: i8| (i32::from(a) - zx) * i32::from(b),
                    |c, acc| {
                        let acc = acc + bias.get(c).copied().unwrap_or(0);
                        (mul_by_qm(acc, mults[c]) + zy).clamp(lo, hi) as i8
                    },
                )
            }
            OpDef::Add { act } => {
                let (bi, bt) = io.input(1)?;
                let b = take(values, bi, &what)?;
                if b.len() != x.len() {
                    return Err(TfliteError::Unsupported(format!("{what}: broadcasting ADD")));
                }
                let (sb, zb) = quant1(bt, &what)?;
                let p = AddParams::new(sx, zx, sb, zb, sy, zy, *act);
                x.iter().zip(&b).map(|(&p1, &p2)| p.add(p1, p2)).collect()
            }
            OpDef::Mean { .. } => {
                let [_, h, w, c] = dims4(xt, &what)?;
                check_mean_axes(io)?;
                mean_int8(&x, h * w, c, (sx, zx), (sy, zy))
            }
            OpDef::FullyConnected { act } => {
                let (_, wt) = io.input(1)?;
                let w = i8s(wt, &what)?;
                let n = yt.elements();
                let f = x.len();
                if w.len() != n * f {
                    return Err(TfliteError::invalid(format!("{what}: weight shape {:?} does not fit", wt.shape)));
                }
                let bias = match io.input(2) {
                    Ok((_, bt)) => i32s(bt, &what)?,
                    Err(_) => vec![0; n],
                };
                let wq =
                    wt.quant.as_ref().ok_or_else(|| TfliteError::invalid(format!("{what}: weights unquantised")))?;
                let w_off = -(wq.zero_point.first().copied().unwrap_or(0) as i32);
                let (lo, hi) = act_range(*act, sy, zy);
                (0..n)
                    .map(|j| {
                        // TFLite's GetQuantizedConvolutionMultipler: the input × weight
                        // scale product in f32, the division in f64.
                        let sw = *wq.scale.get(j).or(wq.scale.first()).unwrap_or(&0.0);
                        let m = quantize_multiplier(f64::from(sx as f32 * sw) / sy);
                        let mut acc: i32 = 0;
                        for (a, b) in x.iter().zip(&w[j * f..(j + 1) * f]) {
                            acc += (i32::from(*a) - zx) * (i32::from(*b) + w_off);
                        }
                        acc += bias.get(j).copied().unwrap_or(0);
                        (mul_by_qm(acc, m) + zy).clamp(lo, hi) as i8
                    })
                    .collect()
            }
            OpDef::Softmax { beta } => softmax_int8(&x, sx, f64::from(*beta), (sy, zy))?,
            other => return Err(TfliteError::Unsupported(format!("{what}: op {}", other.name()))),
        })
    })
}

/// The integer parameters of an int8 `ADD` (TFLite's `PrepareGeneralSubOp` style).
struct AddParams {
    off1: i32,
    off2: i32,
    m1: QMul,
    m2: QMul,
    mo: QMul,
    zy: i32,
    lo: i32,
    hi: i32,
}

impl AddParams {
    const LEFT_SHIFT: i32 = 20;
    fn new(s1: f64, z1: i32, s2: f64, z2: i32, sy: f64, zy: i32, act: Fused) -> Self {
        let twice_max = 2.0 * s1.max(s2);
        let (lo, hi) = act_range(act, sy, zy);
        Self {
            off1: -z1,
            off2: -z2,
            m1: quantize_multiplier(s1 / twice_max),
            m2: quantize_multiplier(s2 / twice_max),
            mo: quantize_multiplier(twice_max / ((1i64 << Self::LEFT_SHIFT) as f64 * sy)),
            zy,
            lo,
            hi,
        }
    }
    fn add(&self, a: i8, b: i8) -> i8 {
        let a = (i32::from(a) + self.off1) << Self::LEFT_SHIFT;
        let b = (i32::from(b) + self.off2) << Self::LEFT_SHIFT;
        let sa = mul_by_qm(a, self.m1);
        let sb = mul_by_qm(b, self.m2);
        let out = mul_by_qm(sa + sb, self.mo) + self.zy;
        out.clamp(self.lo, self.hi) as i8
    }
}

/// int8 `MEAN` over `count` positions of `c` channels: TFLite's
/// `QuantizedMeanOrSum`, which folds the division by `count` into the multiplier.
fn mean_int8(x: &[i8], count: usize, c: usize, (sx, zx): (f64, i32), (sy, zy): (f64, i32)) -> Vec<i8> {
    let QMul { mut multiplier, mut shift } = quantize_multiplier(sx / sy);
    let n = count as i64;
    if n > 0 {
        let s = (63 - (n as u64).leading_zeros() as i32).min(32).min(31 + shift);
        multiplier = ((i64::from(multiplier) << s) / n) as i32;
        shift -= s;
    }
    let m = QMul { multiplier, shift };
    (0..c)
        .map(|ch| {
            let sum: i32 = (0..count).map(|p| i32::from(x[p * c + ch])).sum();
            let shifted = sum.wrapping_sub(zx.wrapping_mul(count as i32));
            (mul_by_qm(shifted, m) + zy).clamp(-128, 127) as i8
        })
        .collect()
}

// gemmlowp's fixed-point helpers, on raw `i32` values.

/// `SaturatingRoundingMultiplyByPOT<exponent>`.
fn srmbpot(x: i32, exponent: i32) -> i32 {
    if exponent < 0 {
        return rdbpot(x, -exponent);
    }
    if exponent == 0 {
        return x;
    }
    let threshold = (1i32 << (31 - exponent)) - 1;
    if x > threshold {
        i32::MAX
    } else if x < -threshold {
        i32::MIN
    } else {
        x << exponent
    }
}

/// `exp_on_interval_between_negative_one_quarter_and_0_excl` (Q0.31 in and out).
fn exp_quarter(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8)
    const ONE_THIRD: i32 = 715_827_883;
    let x = a.wrapping_add(1 << 28);
    let x2 = srdhm(x, x);
    let x3 = srdhm(x2, x);
    let x4 = srdhm(x2, x2);
    let x4_over_4 = srmbpot(x4, -2);
    let poly = srmbpot(srdhm(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2), -1);
    CONSTANT_TERM.wrapping_add(srdhm(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// `exp_on_negative_values` of a Q5.26 value, as Q0.31.
fn exp_on_negative_values(a: i32) -> i32 {
    const FRACTIONAL_BITS: i32 = 26;
    let one_quarter = 1i32 << (FRACTIONAL_BITS - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_quarter(srmbpot(a_mod_quarter_minus_quarter, 5));
    let remainder = a_mod_quarter_minus_quarter.wrapping_sub(a);
    // exp(-2^e) in Q0.31 for e = -2 ..= 4.
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for (e, m) in BARREL {
        if remainder & (1 << (FRACTIONAL_BITS + e)) != 0 {
            result = srdhm(result, m);
        }
    }
    if a == 0 { i32::MAX } else { result }
}

/// `one_over_one_plus_x_for_x_in_0_1` (Q0.31 in and out).
fn one_over_one_plus_x(a: i32) -> i32 {
    let half_denominator = ((i64::from(a) + i64::from(i32::MAX) + 1) / 2) as i32; // RoundingHalfSum
    const C48_17: i32 = 1_515_870_810; // Q2.29
    const CNEG32_17: i32 = -1_010_580_540;
    let mut x = C48_17.wrapping_add(srdhm(half_denominator, CNEG32_17));
    for _ in 0..3 {
        let hdx = srdhm(half_denominator, x);
        let one_minus = (1i32 << 29).wrapping_sub(hdx);
        x = x.wrapping_add(srmbpot(srdhm(x, one_minus), 2));
    }
    srmbpot(x, 1)
}

/// TFLite's `GetReciprocal`: `(Q0.31 reciprocal, bits over unit)` of a value with
/// `integer_digits` integer bits.
fn reciprocal(x: i32, integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let num_bits_over_unit = integer_digits - headroom_plus_one;
    let shifted_minus_one = ((x as u32).wrapping_shl(headroom_plus_one as u32)).wrapping_sub(1 << 31) as i32;
    (one_over_one_plus_x(shifted_minus_one), num_bits_over_unit)
}

/// int8 `SOFTMAX` with TFLite's fixed-point arithmetic (`reference_ops::Softmax`):
/// the input differences scaled to Q5.26, `exp` in fixed point, the sum in Q12.19, and
/// a fixed-point reciprocal. The output must be at scale 1/256, zero point −128.
fn softmax_int8(x: &[i8], sx: f64, beta: f64, (sy, zy): (f64, i32)) -> Result<Vec<i8>, TfliteError> {
    if (sy as f32) != 1.0 / 256.0 || zy != -128 {
        return Err(TfliteError::Unsupported(format!(
            "int8 SOFTMAX with output scale {sy} and zero point {zy} (TFLM requires 1/256 and -128)"
        )));
    }
    const SCALED_DIFF_INTEGER_BITS: i32 = 5;
    const ACCUMULATION_INTEGER_BITS: i32 = 12;
    let real = (beta * sx * f64::from(1i32 << (31 - SCALED_DIFF_INTEGER_BITS))).min(f64::from(i32::MAX));
    let QMul { multiplier, shift: left_shift } = quantize_multiplier(real);
    if left_shift < 0 {
        return Err(TfliteError::Unsupported(format!("int8 SOFTMAX with input scale {sx} (too small)")));
    }
    let radius = (f64::from((1i32 << SCALED_DIFF_INTEGER_BITS) - 1) * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64
        / (1i64 << left_shift) as f64)
        .floor() as i32;
    let diff_min = -radius;
    let max = x.iter().copied().max().unwrap_or(0);
    let scaled = |v: i8| {
        let diff = i32::from(v) - i32::from(max);
        (diff >= diff_min).then(|| srdhm(diff.wrapping_mul(1i32.wrapping_shl(left_shift as u32)), multiplier))
    };
    let mut sum: i32 = 0;
    for &v in x {
        if let Some(d) = scaled(v) {
            sum = sum.wrapping_add(srmbpot(exp_on_negative_values(d), -ACCUMULATION_INTEGER_BITS));
        }
    }
    let (scale, bits_over_unit) = reciprocal(sum, ACCUMULATION_INTEGER_BITS);
    Ok(x.iter()
        .map(|&v| match scaled(v) {
            Some(d) => {
                let e = exp_on_negative_values(d);
                let unsat = rdbpot(srdhm(scale, e), bits_over_unit + 31 - 8);
                (unsat - 128).clamp(-128, 127) as i8
            }
            None => -128,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn quantize_multiplier_matches_tflite() {
        assert_eq!(quantize_multiplier(0.5), QMul { multiplier: 1 << 30, shift: 0 });
        assert_eq!(quantize_multiplier(0.25), QMul { multiplier: 1 << 30, shift: -1 });
        assert_eq!(quantize_multiplier(1.0), QMul { multiplier: 1 << 30, shift: 1 });
        assert_eq!(quantize_multiplier(0.0), QMul { multiplier: 0, shift: 0 });
        // Rounds up to 2^31: halved, shift one more.
        assert_eq!(quantize_multiplier(1.0 - 1e-12), QMul { multiplier: 1 << 30, shift: 1 });
        // Too small: zero.
        assert_eq!(quantize_multiplier(1e-12), QMul { multiplier: 0, shift: 0 });
        let m = quantize_multiplier(0.1);
        assert!((f64::from(m.multiplier) * 2f64.powi(m.shift - 31) - 0.1).abs() < 1e-9);
    }

    #[test]
    fn rounding_primitives_round_half_away_from_zero() {
        assert_eq!(rdbpot(5, 1), 3);
        assert_eq!(rdbpot(-5, 1), -3);
        assert_eq!(rdbpot(4, 1), 2);
        assert_eq!(rdbpot(-7, 2), -2);
        assert_eq!(rdbpot(i32::MIN, 31), -1);
        assert_eq!(srdhm(i32::MIN, i32::MIN), i32::MAX);
        assert_eq!(srdhm(1 << 30, 1 << 30), 1 << 29);
        assert_eq!(mul_by_qm(1000, quantize_multiplier(0.5)), 500);
        // SRDHM rounds an exact half of a negative product toward zero.
        assert_eq!(mul_by_qm(-1001, quantize_multiplier(0.5)), -500);
        assert_eq!(mul_by_qm(-1001, quantize_multiplier(0.25)), -250);
        assert_eq!(mul_by_qm(3, quantize_multiplier(4.0)), 12);
    }

    #[test]
    fn fixed_point_exp_and_reciprocal_are_accurate() {
        assert_eq!(exp_on_negative_values(0), i32::MAX);
        for x in [-0.01f64, -0.2, -1.0, -2.5, -7.0, -20.0] {
            let raw = (x * f64::from(1 << 26)).round() as i32;
            let got = f64::from(exp_on_negative_values(raw)) / 2f64.powi(31);
            assert!((got - x.exp()).abs() < 2e-7, "exp({x}) = {got}");
        }
        for x in [0.0f64, 0.25, 0.5, 0.9] {
            let raw = ((x * 2f64.powi(31)).round() as i64).min(i64::from(i32::MAX)) as i32;
            let got = f64::from(one_over_one_plus_x(raw)) / 2f64.powi(31);
            assert!((got - 1.0 / (1.0 + x)).abs() < 1e-6, "1/(1+{x}) = {got}");
        }
    }

    #[test]
    fn int8_softmax_and_mean_follow_the_real_valued_ops() {
        let x: Vec<i8> = vec![-128, -20, 0, 17, 90, 127, 64, -64, 5, 5];
        let sx = 0.07;
        let y = softmax_int8(&x, sx, 1.0, (1.0 / 256.0, -128)).unwrap();
        let m = x.iter().map(|&v| f64::from(v)).fold(f64::MIN, f64::max);
        let e: Vec<f64> = x.iter().map(|&v| ((f64::from(v) - m) * sx).exp()).collect();
        let s: f64 = e.iter().sum();
        for (q, p) in y.iter().zip(&e) {
            let want = (p / s * 256.0).round() - 128.0;
            assert!((f64::from(*q) - want.min(127.0)).abs() <= 1.0, "{q} vs {want}");
        }
        assert!(softmax_int8(&x, sx, 1.0, (0.1, 0)).is_err());

        // MEAN of 3 channels over 7 positions, input (0.05, 3), output (0.02, -5).
        let x: Vec<i8> = (0..21).map(|i| ((i * 37) % 255 - 127) as i8).collect();
        let y = mean_int8(&x, 7, 3, (0.05, 3), (0.02, -5));
        for ch in 0..3 {
            let real: f64 = (0..7).map(|p| 0.05 * (f64::from(x[p * 3 + ch]) - 3.0)).sum::<f64>() / 7.0;
            let want = (real / 0.02).round() - 5.0;
            assert!((f64::from(y[ch]) - want.clamp(-128.0, 127.0)).abs() <= 1.0, "{} vs {want}", y[ch]);
        }
    }
}
