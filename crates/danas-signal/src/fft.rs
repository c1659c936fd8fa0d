//! The signal library's int16 real FFT: KISS FFT (v1.3.0) in 16-bit fixed point, a
//! complex FFT of half the length over even/odd sample pairs followed by the real-FFT
//! split, with the same rounding, per-stage scaling and int16 wrap-around.

/// A complex int16 value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cpx {
    /// Real part.
    pub r: i16,
    /// Imaginary part.
    pub i: i16,
}

const FRACBITS: u32 = 15;
const SAMP_MAX: i32 = 32767;

/// Rounds a Q30 product sum back to Q15 and keeps the low 16 bits.
#[inline]
fn sround(x: i32) -> i16 {
    (x.wrapping_add(1 << (FRACBITS - 1)) >> FRACBITS) as i16
}

#[inline]
fn smul(a: i16, b: i16) -> i32 {
    i32::from(a) * i32::from(b)
}

#[inline]
fn fixdiv(c: Cpx, div: i32) -> Cpx {
    let k = (SAMP_MAX / div) as i16;
    Cpx { r: sround(smul(c.r, k)), i: sround(smul(c.i, k)) }
}

#[inline]
fn cmul(a: Cpx, b: Cpx) -> Cpx {
    Cpx {
        r: sround(smul(a.r, b.r).wrapping_sub(smul(a.i, b.i))),
        i: sround(smul(a.r, b.i).wrapping_add(smul(a.i, b.r))),
    }
}

#[inline]
fn cadd(a: Cpx, b: Cpx) -> Cpx {
    Cpx { r: a.r.wrapping_add(b.r), i: a.i.wrapping_add(b.i) }
}

#[inline]
fn csub(a: Cpx, b: Cpx) -> Cpx {
    Cpx { r: a.r.wrapping_sub(b.r), i: a.i.wrapping_sub(b.i) }
}

/// `floor(0.5 + 32767 · cos/sin(phase))`, as KISS FFT's fixed-point twiddles.
fn cexp(phase: f64) -> Cpx {
    let q = |v: f64| (0.5 + f64::from(SAMP_MAX) * v).floor() as i16;
    Cpx { r: q(phase.cos()), i: q(phase.sin()) }
}

/// A real FFT of a power-of-two length (64 to 2048).
#[derive(Debug, Clone)]
pub struct Rfft {
    n: usize,
    twiddles: Vec<Cpx>,
    super_twiddles: Vec<Cpx>,
    /// (radix, remaining length) per stage.
    factors: Vec<(usize, usize)>,
}

impl Rfft {
    /// The FFT of `n` real samples; `n` must be an even power of two ≥ 4.
    pub fn new(n: usize) -> Self {
        let ncfft = n / 2;
        let pi = std::f64::consts::PI;
        let twiddles = (0..ncfft).map(|i| cexp(-2.0 * pi * i as f64 / ncfft as f64)).collect();
        let super_twiddles = (0..ncfft / 2).map(|i| cexp(-pi * ((i + 1) as f64 / ncfft as f64 + 0.5))).collect();
        // Radix 4 first, then 2 (the lengths are powers of two).
        let mut factors = Vec::new();
        let mut m = ncfft;
        while m > 1 {
            let p = if m.is_multiple_of(4) { 4 } else { 2 };
            m /= p;
            factors.push((p, m));
        }
        Self { n, twiddles, super_twiddles, factors }
    }

    /// FFT length.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the length is 0 (never, for a built FFT).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn work(&self, out: &mut [Cpx], o: usize, input: &[Cpx], i: usize, fstride: usize, stage: usize) {
        let (p, m) = self.factors[stage];
        if m == 1 {
            for k in 0..p {
                out[o + k] = input[i + k * fstride];
            }
        } else {
            for k in 0..p {
                self.work(out, o + k * m, input, i + k * fstride, fstride * p, stage + 1);
            }
        }
        let f = &mut out[o..o + p * m];
        match p {
            2 => {
                for k in 0..m {
                    let a = fixdiv(f[k], 2);
                    let b = fixdiv(f[k + m], 2);
                    let t = cmul(b, self.twiddles[k * fstride]);
                    f[k + m] = csub(a, t);
                    f[k] = cadd(a, t);
                }
            }
            _ => {
                let (m2, m3) = (2 * m, 3 * m);
                for k in 0..m {
                    let f0 = fixdiv(f[k], 4);
                    let f1 = fixdiv(f[k + m], 4);
                    let f2 = fixdiv(f[k + m2], 4);
                    let f3 = fixdiv(f[k + m3], 4);
                    let s0 = cmul(f1, self.twiddles[k * fstride]);
                    let s1 = cmul(f2, self.twiddles[2 * k * fstride]);
                    let s2 = cmul(f3, self.twiddles[3 * k * fstride]);
                    let s5 = csub(f0, s1);
                    let f0 = cadd(f0, s1);
                    let s3 = cadd(s0, s2);
                    let s4 = csub(s0, s2);
                    f[k + m2] = csub(f0, s3);
                    f[k] = cadd(f0, s3);
                    f[k + m] = Cpx { r: s5.r.wrapping_add(s4.i), i: s5.i.wrapping_sub(s4.r) };
                    f[k + m3] = Cpx { r: s5.r.wrapping_sub(s4.i), i: s5.i.wrapping_add(s4.r) };
                }
            }
        }
    }

    /// Transforms `input` (zero-padded to the FFT length) into `len / 2 + 1` bins.
    pub fn apply(&self, input: &[i16]) -> Vec<Cpx> {
        let ncfft = self.n / 2;
        let mut packed = vec![Cpx::default(); ncfft];
        for (k, c) in packed.iter_mut().enumerate() {
            c.r = input.get(2 * k).copied().unwrap_or(0);
            c.i = input.get(2 * k + 1).copied().unwrap_or(0);
        }
        let mut tmp = vec![Cpx::default(); ncfft];
        if ncfft == 1 {
            tmp[0] = packed[0];
        } else {
            self.work(&mut tmp, 0, &packed, 0, 1, 0);
        }
        let mut out = vec![Cpx::default(); ncfft + 1];
        let tdc = fixdiv(tmp[0], 2);
        out[0] = Cpx { r: tdc.r.wrapping_add(tdc.i), i: 0 };
        out[ncfft] = Cpx { r: tdc.r.wrapping_sub(tdc.i), i: 0 };
        let half = |a: i16, b: i32| ((i32::from(a) + b) >> 1) as i16;
        for k in 1..=ncfft / 2 {
            let fpk = fixdiv(tmp[k], 2);
            let fpnk = fixdiv(Cpx { r: tmp[ncfft - k].r, i: tmp[ncfft - k].i.wrapping_neg() }, 2);
            let f1k = cadd(fpk, fpnk);
            let f2k = csub(fpk, fpnk);
            let tw = cmul(f2k, self.super_twiddles[k - 1]);
            out[k] = Cpx { r: half(f1k.r, i32::from(tw.r)), i: half(f1k.i, i32::from(tw.i)) };
            out[ncfft - k] = Cpx { r: half(f1k.r, -i32::from(tw.r)), i: half(tw.i, -i32::from(f1k.i)) };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cosine_lands_in_its_bin() {
        let n = 256;
        let fft = Rfft::new(n);
        let x: Vec<i16> =
            (0..n).map(|t| (8000.0 * (2.0 * std::f64::consts::PI * 10.0 * t as f64 / n as f64).cos()) as i16).collect();
        let y = fft.apply(&x);
        assert_eq!(y.len(), n / 2 + 1);
        let mag = |c: Cpx| i32::from(c.r).pow(2) + i32::from(c.i).pow(2);
        let best = (0..y.len()).max_by_key(|&k| mag(y[k])).unwrap_or(0);
        assert_eq!(best, 10);
        // KISS FFT scales by 1/n: 8000 · n/2 / n = 4000.
        assert!((i32::from(y[10].r) - 4000).abs() < 40, "{:?}", y[10]);
    }
}
