//! The signal library's integer kernels, one function per op, with its arithmetic:
//! widths, shifts, rounding and wrap-around as the C sources do them.

use crate::fft::Cpx;

/// Position of the highest set bit, 1-based; 32 for 0 (as GCC builds of the library).
#[inline]
pub fn msb32(x: u32) -> u32 {
    if x == 0 { 32 } else { 32 - x.leading_zeros() }
}

/// 64-bit [`msb32`]: 64 for 0.
#[inline]
pub fn msb64(x: u64) -> u32 {
    if x == 0 { 64 } else { 64 - x.leading_zeros() }
}

/// Window: `(x · w) >> shift`, saturated to int16.
pub fn window(input: &[i16], weights: &[i16], shift: u32, out: &mut [i16]) {
    for ((o, &x), &w) in out.iter_mut().zip(input).zip(weights) {
        let raw = (i32::from(x) * i32::from(w)) >> shift;
        *o = raw.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
    }
}

/// Auto-scaling before the FFT: shifts left so the largest magnitude uses 15 bits;
/// returns the shift.
pub fn fft_auto_scale(input: &[i16], out: &mut [i16]) -> u32 {
    let mut max: i16 = 0;
    for &v in input {
        if v > max {
            max = v;
        } else if -i32::from(v) > i32::from(max) {
            max = v.wrapping_neg();
        }
    }
    let bits = 16 - msb32(i32::from(max) as u32) as i32 - 1;
    let bits = bits.max(0) as u32;
    for (o, &x) in out.iter_mut().zip(input) {
        *o = (i32::from(x) * (1i32 << bits)) as i16;
    }
    bits
}

/// Energy `re² + im²` of bins `start..end` (others are left as they are).
pub fn energy(spectrum: &[Cpx], start: usize, end: usize, out: &mut [u32]) {
    for k in start..end.min(spectrum.len()).min(out.len()) {
        let (r, i) = (i32::from(spectrum[k].r), i32::from(spectrum[k].i));
        out[k] = (r * r).wrapping_add(i * i) as u32;
    }
}

/// The mel filter bank: triangular channels accumulated in 64 bits (channel 0 of the
/// C code's `channels + 1` is the lower half of the first band and is dropped).
pub fn filter_bank(
    input: &[u32],
    weights: &[i16],
    unweights: &[i16],
    freq_starts: &[i16],
    weight_starts: &[i16],
    widths: &[i16],
    out: &mut [u64],
) {
    let n = freq_starts.len();
    let (mut weighted, mut unweighted) = (0u64, 0u64);
    for i in 0..n {
        let fs = freq_starts[i] as usize;
        let ws = weight_starts[i] as usize;
        for j in 0..widths[i].max(0) as usize {
            let x = u64::from(input.get(fs + j).copied().unwrap_or(0));
            let w = i64::from(weights.get(ws + j).copied().unwrap_or(0)) as u64;
            let u = i64::from(unweights.get(ws + j).copied().unwrap_or(0)) as u64;
            weighted = weighted.wrapping_add(w.wrapping_mul(x));
            unweighted = unweighted.wrapping_add(u.wrapping_mul(x));
        }
        if i >= 1 && i - 1 < out.len() {
            out[i - 1] = weighted;
        }
        weighted = unweighted;
        unweighted = 0;
    }
}

/// Integer square root of a 32-bit value, rounded.
pub fn sqrt32(num: u32) -> u16 {
    // Below 2^32 the result is at most 0xFFFF.
    sqrt_rounded(u64::from(num), 0xFFFF) as u16
}

/// Integer square root of a 64-bit value, rounded.
pub fn sqrt64(num: u64) -> u32 {
    // The signal library takes the 32-bit path below 2^32, whose rounding stops at 0xFFFF.
    let cap = if num >> 32 == 0 { 0xFFFF } else { 0xFFFF_FFFF };
    sqrt_rounded(num, cap) as u32
}

/// Bit-by-bit integer square root of `num`, rounded up when the remainder exceeds the
/// root, unless the root is already `cap`. Starting from the highest even bit at or
/// below `num`'s top bit, so the 32- and 64-bit forms of the signal library walk the
/// same bits.
fn sqrt_rounded(mut num: u64, cap: u64) -> u64 {
    if num == 0 {
        return 0;
    }
    let mut res: u64 = 0;
    let max_bit = (64 - msb64(num) as i32) | 1;
    let mut bit: u64 = 1u64 << (63 - max_bit);
    let mut iterations = (63 - max_bit) / 2 + 1;
    while iterations > 0 {
        iterations -= 1;
        if num >= res.wrapping_add(bit) {
            num -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    if num > res && res != cap {
        res += 1;
    }
    res
}

/// Square root of each channel, shifted down by the FFT's scaling.
pub fn filter_bank_sqrt(input: &[u64], scale_down_bits: u32, out: &mut [u32]) {
    for (o, &x) in out.iter_mut().zip(input) {
        *o = sqrt64(x).wrapping_shr(scale_down_bits);
    }
}

/// The noise reduction's fixed-point coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpectralSubtraction {
    /// Smoothing of even channels.
    pub smoothing: u32,
    /// 2^bits − smoothing.
    pub one_minus_smoothing: u32,
    /// Smoothing of odd channels.
    pub alternate_smoothing: u32,
    /// 2^bits − alternate smoothing.
    pub alternate_one_minus_smoothing: u32,
    /// Least signal kept.
    pub min_signal_remaining: u32,
    /// Smoothing bits.
    pub smoothing_bits: u32,
    /// Coefficient bits.
    pub spectral_subtraction_bits: u32,
    /// Whether the estimate is clamped to the signal.
    pub clamping: bool,
}

/// Spectral subtraction: updates the running noise estimate and subtracts it.
pub fn spectral_subtraction(c: &SpectralSubtraction, input: &[u32], out: &mut [u32], noise: &mut [u32]) {
    for (i, ((o, &x), n)) in out.iter_mut().zip(input).zip(noise.iter_mut()).enumerate() {
        let (s, oms) = if i & 1 == 0 {
            (c.smoothing, c.one_minus_smoothing)
        } else {
            (c.alternate_smoothing, c.alternate_one_minus_smoothing)
        };
        let up = x.wrapping_shl(c.smoothing_bits);
        *n = ((u64::from(up) * u64::from(s)).wrapping_add(u64::from(*n) * u64::from(oms))
            >> c.spectral_subtraction_bits) as u32;
        let mut est = *n;
        if est > up {
            est = up;
            if c.clamping {
                *n = est;
            }
        }
        let floor = ((u64::from(x) * u64::from(c.min_signal_remaining)) >> c.spectral_subtraction_bits) as u32;
        let sub = (up - est) >> c.smoothing_bits;
        *o = sub.max(floor);
    }
}

const PCAN_SNR_BITS: u32 = 12;
const PCAN_OUTPUT_BITS: u32 = 6;

/// PCAN's piecewise-quadratic gain lookup.
pub fn wide_dynamic_function(x: u32, lut: &[i16]) -> i16 {
    let at = |k: usize| i32::from(lut.get(k).copied().unwrap_or(0));
    if x <= 2 {
        return at(x as usize) as i16;
    }
    let interval = msb32(x) as i32;
    let base = (4 * interval - 6) as usize;
    let frac = (if interval < 11 { x << (11 - interval) } else { x >> (interval - 11) } & 0x3FF) as i32;
    let mut result = (at(base + 2) * frac) >> 5;
    result = result.wrapping_add(((at(base + 1) as u32) << 5) as i32);
    result = result.wrapping_mul(frac);
    result = result.wrapping_add(1 << 14) >> 15;
    result = result.wrapping_add(at(base));
    result as i16
}

/// PCAN's output compression.
pub fn pcan_shrink(x: u32) -> u32 {
    if x < (2 << PCAN_SNR_BITS) {
        x.wrapping_mul(x) >> (2 + 2 * PCAN_SNR_BITS - PCAN_OUTPUT_BITS)
    } else {
        (x >> (PCAN_SNR_BITS - PCAN_OUTPUT_BITS)).wrapping_sub(1 << PCAN_OUTPUT_BITS)
    }
}

/// Per-channel automatic gain control from the noise estimate (in place).
pub fn pcan(lut: &[i16], snr_shift: u32, noise: &[u32], data: &mut [u32]) {
    for (d, &n) in data.iter_mut().zip(noise) {
        let gain = i32::from(wide_dynamic_function(n, lut)) as u32;
        let snr = ((u64::from(*d) * u64::from(gain)) >> snr_shift) as u32;
        *d = pcan_shrink(snr);
    }
}

const LOG_LUT: [u16; 130] = [
    0, 224, 442, 654, 861, 1063, 1259, 1450, 1636, 1817, 1992, 2163, 2329, 2490, 2646, 2797, 2944, 3087, 3224, 3358,
    3487, 3611, 3732, 3848, 3960, 4068, 4172, 4272, 4368, 4460, 4549, 4633, 4714, 4791, 4864, 4934, 5001, 5063, 5123,
    5178, 5231, 5280, 5326, 5368, 5408, 5444, 5477, 5507, 5533, 5557, 5578, 5595, 5610, 5622, 5631, 5637, 5640, 5641,
    5638, 5633, 5626, 5615, 5602, 5586, 5568, 5547, 5524, 5498, 5470, 5439, 5406, 5370, 5332, 5291, 5249, 5203, 5156,
    5106, 5054, 5000, 4944, 4885, 4825, 4762, 4697, 4630, 4561, 4490, 4416, 4341, 4264, 4184, 4103, 4020, 3935, 3848,
    3759, 3668, 3575, 3481, 3384, 3286, 3186, 3084, 2981, 2875, 2768, 2659, 2549, 2437, 2323, 2207, 2090, 1971, 1851,
    1729, 1605, 1480, 1353, 1224, 1094, 963, 830, 695, 559, 421, 282, 142, 0, 0,
];
const LOG_SEGMENTS_LOG2: u32 = 7;
const LOG_SCALE_LOG2: u32 = 16;
const LOG_COEFF: u64 = 45426;

fn log2_fraction(x: u32, log2x: u32) -> u32 {
    let mut frac = (i64::from(x) - (1i64 << log2x)) as i32;
    if log2x < LOG_SCALE_LOG2 {
        frac <<= LOG_SCALE_LOG2 - log2x;
    } else {
        frac >>= log2x - LOG_SCALE_LOG2;
    }
    let base_seg = (frac as u32) >> (LOG_SCALE_LOG2 - LOG_SEGMENTS_LOG2);
    let seg_unit = (1u32 << LOG_SCALE_LOG2) >> LOG_SEGMENTS_LOG2;
    let c0 = i32::from(LOG_LUT[(base_seg as usize).min(128)]);
    let c1 = i32::from(LOG_LUT[(base_seg as usize + 1).min(129)]);
    let seg_base = seg_unit.wrapping_mul(base_seg) as i32;
    let rel = (c1 - c0).wrapping_mul(frac.wrapping_sub(seg_base)) >> LOG_SCALE_LOG2;
    frac.wrapping_add(c0).wrapping_add(rel) as u32
}

/// Fixed-point natural log of `x` (> 1) times `out_scale`.
pub fn log32(x: u32, out_scale: u32) -> u32 {
    let integer = msb32(x) - 1;
    let fraction = log2_fraction(x, integer);
    let log2 = (integer << LOG_SCALE_LOG2).wrapping_add(fraction);
    let round: u32 = 1 << 15;
    let loge = ((LOG_COEFF * u64::from(log2) + u64::from(round)) >> LOG_SCALE_LOG2) as u32;
    out_scale.wrapping_mul(loge).wrapping_add(round) >> LOG_SCALE_LOG2
}

/// The log of each channel, to int16.
pub fn filter_bank_log(input: &[u32], output_scale: u32, correction_bits: u32, out: &mut [i16]) {
    for (o, &x) in out.iter_mut().zip(input) {
        let scaled = x.wrapping_shl(correction_bits);
        *o = if scaled > 1 { log32(scaled, output_scale).min(i16::MAX as u32) as i16 } else { 0 };
    }
}

/// Scale of the int8 model input: one int8 step is 666 / 256 feature units
/// (micro_speech's `feature / 25.6 / 26 · 256`).
pub const INT8_SCALE: f32 = 666.0 / 256.0;
/// Zero point of the int8 model input.
pub const INT8_ZERO_POINT: i32 = -128;

/// The int8 model input of an int16 feature as the device computes it: TFLite's
/// `QUANTIZE` from scale 1 to [`INT8_SCALE`], zero point [`INT8_ZERO_POINT`]
/// (`MultiplyByQuantizedMultiplier`, whose two roundings can give one more than
/// [`micro_speech_int8`]).
pub fn feature_to_int8(f: i16) -> i8 {
    let m = danas_tflite::interp::quantize_multiplier(1.0f64 / f64::from(INT8_SCALE));
    let v = danas_tflite::interp::mul_by_qm(i32::from(f), m) + INT8_ZERO_POINT;
    v.clamp(-128, 127) as i8
}

/// micro_speech's own integer formula, `(f · 256 + 333) / 666 − 128` clamped (one
/// rounding); within 1 of [`feature_to_int8`].
pub fn micro_speech_int8(f: i16) -> i8 {
    let v = (i32::from(f) * 256 + 333) / 666 - 128;
    v.clamp(-128, 127) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_roots_are_rounded() {
        for x in [0u64, 1, 2, 3, 4, 15, 16, 17, 1 << 20, (1 << 32) + 5, u64::MAX / 3] {
            let r = u64::from(sqrt64(x));
            let exact = (x as f64).sqrt();
            assert!((r as f64 - exact).abs() <= 0.5 + 1e-6 * exact, "{x}: {r} vs {exact}");
        }
    }

    #[test]
    fn log_tracks_ln() {
        for x in [2u32, 3, 10, 1000, 65536, 1 << 20, u32::MAX] {
            let got = f64::from(log32(x, 64)) / 64.0;
            assert!((got - f64::from(x).ln()).abs() < 0.02, "{x}: {got}");
        }
    }

    #[test]
    fn int8_scaling_is_micro_speechs_within_one() {
        assert_eq!(micro_speech_int8(0), -128);
        assert_eq!(micro_speech_int8(666), 127);
        assert_eq!(micro_speech_int8(333), 0);
        // 222 · 256 / 666 = 85.33: one rounding gives 85, QUANTIZE's two give 86.
        assert_eq!((micro_speech_int8(222), feature_to_int8(222)), (-43, -42));
        for f in 0..=i16::MAX {
            let (a, b) = (i32::from(micro_speech_int8(f)), i32::from(feature_to_int8(f)));
            assert!((0..=1).contains(&(b - a)), "{f}: {a} vs {b}");
        }
    }
}
