//! Plain-slice CPU kernels of the fused NHWC training path: BatchNorm (+ ReLU6)
//! forward and backward, depthwise convolution forward and backward, and
//! `im2col` / `col2im` for dense convolutions.
//!
//! Activations are NHWC, stored as `[rows, channels]` with `rows = n·h·w`, so
//! every inner loop runs over contiguous channels and vectorises. Work is split
//! over rayon's pool; each task runs inside a [`pulp::Arch`] dispatch so the
//! loops are compiled for the widest SIMD the CPU offers (AVX2/FMA, AVX-512)
//! while the crate itself stays portable.

use rayon::prelude::*;

/// Geometry of a convolution on an NHWC input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    /// Images.
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub c: usize,
    /// Square kernel side.
    pub k: usize,
    /// Stride (both axes).
    pub stride: usize,
    /// Zero rows added above the input (TF SAME puts the odd one below).
    pub pad_top: usize,
    /// Zero columns added left of the input.
    pub pad_left: usize,
    /// Output height.
    pub ho: usize,
    /// Output width.
    pub wo: usize,
}

impl ConvGeom {
    /// Input row (image-major) of output position `(oy, ox)` at tap `(ky, kx)`,
    /// or `None` when the tap falls into the zero padding.
    #[inline(always)]
    fn tap(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let iy = (oy * self.stride + ky).checked_sub(self.pad_top)?;
        let ix = (ox * self.stride + kx).checked_sub(self.pad_left)?;
        (iy < self.h && ix < self.w).then_some((iy, ix))
    }

    /// Elements of the input.
    pub fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }

    /// Output rows (`n · ho · wo`).
    pub fn output_rows(&self) -> usize {
        self.n * self.ho * self.wo
    }
}

/// Runs `f` compiled for the best SIMD level of this CPU.
#[inline(always)]
fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// Rows per parallel task for a `[rows, c]` array (about 64 KiB of data). It
/// depends on the shape only, never on the number of threads, so that sums
/// are added in the same order on every machine: same seed, same result.
fn rows_per_task(c: usize) -> usize {
    (16_384 / c.max(1)).max(1)
}

/// Sums per-task `(Σa, Σb)` partials in task order (deterministic).
fn sum_partials(parts: Vec<(Vec<f64>, Vec<f64>)>, c: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut a, mut b) = (vec![0.0f64; c], vec![0.0f64; c]);
    for (pa, pb) in parts {
        a.iter_mut().zip(&pa).for_each(|(s, v)| *s += v);
        b.iter_mut().zip(&pb).for_each(|(s, v)| *s += v);
    }
    (a, b)
}

/// Adds per-channel sums of a chunk into `f64` totals.
fn add_into(tot: &mut [f64], part: &[f32]) {
    for (t, &p) in tot.iter_mut().zip(part) {
        *t += f64::from(p);
    }
}

/// Per-channel `Σ(x − shift)` and `Σ(x − shift)²` of one chunk of rows.
#[inline(always)]
fn shifted_sums(x: &[f32], c: usize, shift: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let mut t1 = vec![0.0f64; c];
    let mut t2 = vec![0.0f64; c];
    let mut a1 = vec![0.0f32; c];
    let mut a2 = vec![0.0f32; c];
    // f32 accumulators over blocks of 256 rows, flushed into f64.
    for block in x.chunks(256 * c) {
        a1.fill(0.0);
        a2.fill(0.0);
        for row in block.chunks_exact(c) {
            for (((s1, s2), &v), &sh) in a1.iter_mut().zip(a2.iter_mut()).zip(row).zip(shift) {
                let d = v - sh;
                *s1 += d;
                *s2 += d * d;
            }
        }
        add_into(&mut t1, &a1);
        add_into(&mut t2, &a2);
    }
    (t1, t2)
}

/// `y = x·scale + bias`, clamped to [0, 6] when `RELU6`.
#[inline(always)]
fn affine<const RELU6: bool>(x: &[f32], y: &mut [f32], c: usize, scale: &[f32], bias: &[f32]) {
    for (yr, xr) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        for (((o, &v), &s), &b) in yr.iter_mut().zip(xr).zip(scale).zip(bias) {
            let z = v * s + b;
            // `clamp` keeps a NaN a NaN (`max`/`min` would hide it, and divergence
            // would go unnoticed).
            *o = if RELU6 { z.clamp(0.0, 6.0) } else { z };
        }
    }
}

/// Applies `y = x·scale + bias` (then ReLU6 if asked) to a `[rows, c]` array.
pub fn affine_act(x: &[f32], c: usize, scale: &[f32], bias: &[f32], relu6: bool) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    if c == 0 || x.is_empty() {
        return y;
    }
    let chunk = rows_per_task(c) * c;
    y.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(yc, xc)| {
        simd(
            #[inline(always)]
            || {
                if relu6 { affine::<true>(xc, yc, c, scale, bias) } else { affine::<false>(xc, yc, c, scale, bias) }
            },
        )
    });
    y
}

/// Output of [`bn_train_forward`].
#[derive(Debug, Clone, PartialEq)]
pub struct BnForward {
    /// Normalised (and activated) output, `[rows, c]`.
    pub y: Vec<f32>,
    /// Batch mean per channel.
    pub mean: Vec<f32>,
    /// Biased batch variance per channel.
    pub var: Vec<f32>,
}

/// Per-channel batch mean and biased variance of a `[rows, c]` array.
pub fn channel_stats(x: &[f32], c: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len().checked_div(c).unwrap_or(0);
    if rows == 0 {
        return (vec![0.0; c], vec![0.0; c]);
    }
    let shift = &x[..c];
    let chunk = rows_per_task(c) * c;
    let parts = x
        .par_chunks(chunk)
        .map(|xc| {
            simd(
                #[inline(always)]
                || shifted_sums(xc, c, shift),
            )
        })
        .collect::<Vec<_>>();
    let (s1, s2) = sum_partials(parts, c);
    let m = rows as f64;
    let mut mean = vec![0.0f32; c];
    let mut var = vec![0.0f32; c];
    for j in 0..c {
        let d = s1[j] / m;
        mean[j] = (f64::from(shift[j]) + d) as f32;
        var[j] = (s2[j] / m - d * d).max(0.0) as f32;
    }
    (mean, var)
}

/// Per-channel `(scale, bias)` of a BatchNorm: `scale = γ/√(σ²+ε)`, `bias = β − μ·scale`.
pub fn bn_scale_bias(gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], eps: f64) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> =
        gamma.iter().zip(var).map(|(&g, &v)| (f64::from(g) / (f64::from(v) + eps).sqrt()) as f32).collect();
    let bias = beta.iter().zip(mean).zip(&scale).map(|((&b, &m), &s)| b - m * s).collect();
    (scale, bias)
}

/// One BatchNorm (+ ReLU6) over a `[rows, c]` array: its parameters, the
/// statistics it normalises with, ε, and whether ReLU6 follows.
#[derive(Debug, Clone, Copy)]
pub struct Bn<'a> {
    /// Channels.
    pub c: usize,
    /// Scale γ.
    pub gamma: &'a [f32],
    /// Shift β.
    pub beta: &'a [f32],
    /// Mean used to normalise (batch or running).
    pub mean: &'a [f32],
    /// Variance used to normalise (batch or running).
    pub var: &'a [f32],
    /// ε added to the variance.
    pub eps: f64,
    /// Whether ReLU6 follows.
    pub relu6: bool,
}

impl Bn<'_> {
    /// Per channel `scale = γ/√(σ²+ε)`, `bias = β − μ·scale` and `1/√(σ²+ε)`.
    fn coefficients(&self) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (scale, bias) = bn_scale_bias(self.gamma, self.beta, self.mean, self.var, self.eps);
        let inv = self.var.iter().map(|&v| (1.0 / (f64::from(v) + self.eps).sqrt()) as f32).collect();
        (scale, bias, inv)
    }
}

/// Whether the gradient passes ReLU6 at pre-activation `z` (strictly inside (0, 6);
/// a NaN blocks it).
#[inline(always)]
fn relu6_passes(z: f32) -> bool {
    (z > 0.0) & (z < 6.0)
}

/// BatchNorm with batch statistics over the rows of a `[rows, c]` array, then
/// ReLU6 when `relu6`.
pub fn bn_train_forward(x: &[f32], c: usize, gamma: &[f32], beta: &[f32], eps: f64, relu6: bool) -> BnForward {
    let (mean, var) = channel_stats(x, c);
    let (scale, bias) = bn_scale_bias(gamma, beta, &mean, &var, eps);
    BnForward { y: affine_act(x, c, &scale, &bias, relu6), mean, var }
}

/// Gradients of [`bn_train_forward`].
#[derive(Debug, Clone, PartialEq)]
pub struct BnBackward {
    /// Gradient of the input, `[rows, c]`.
    pub dx: Vec<f32>,
    /// Gradient of γ.
    pub dgamma: Vec<f32>,
    /// Gradient of β.
    pub dbeta: Vec<f32>,
}

/// Per-channel `Σg` and `Σg·x̂` of one chunk, with `g` the output gradient
/// masked by ReLU6's active region.
#[inline(always)]
fn bn_grad_sums<const RELU6: bool>(
    dy: &[f32],
    x: &[f32],
    c: usize,
    mean: &[f32],
    inv: &[f32],
    scale: &[f32],
    bias: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    let (mean, inv, scale, bias) = (&mean[..c], &inv[..c], &scale[..c], &bias[..c]);
    let mut t1 = vec![0.0f64; c];
    let mut t2 = vec![0.0f64; c];
    let mut a1 = vec![0.0f32; c];
    let mut a2 = vec![0.0f32; c];
    for (gb, xb) in dy.chunks(256 * c).zip(x.chunks(256 * c)) {
        a1.fill(0.0);
        a2.fill(0.0);
        let (s1, s2) = (&mut a1[..c], &mut a2[..c]);
        for (gr, xr) in gb.chunks_exact(c).zip(xb.chunks_exact(c)) {
            let (gr, xr) = (&gr[..c], &xr[..c]);
            for j in 0..c {
                let v = xr[j];
                let z = v * scale[j] + bias[j];
                let keep = !RELU6 | relu6_passes(z);
                let g = if keep { gr[j] } else { 0.0 };
                s1[j] += g;
                s2[j] += g * ((v - mean[j]) * inv[j]);
            }
        }
        add_into(&mut t1, &a1);
        add_into(&mut t2, &a2);
    }
    (t1, t2)
}

/// `dx = γ·inv·(g − Σg/m − x̂·Σg·x̂/m)` for one chunk.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn bn_grad_input<const RELU6: bool>(
    dy: &[f32],
    x: &[f32],
    dx: &mut [f32],
    c: usize,
    mean: &[f32],
    inv: &[f32],
    scale: &[f32],
    bias: &[f32],
    mg: &[f32],
    mgx: &[f32],
) {
    let (mean, inv, scale, bias, mg, mgx) = (&mean[..c], &inv[..c], &scale[..c], &bias[..c], &mg[..c], &mgx[..c]);
    for ((gr, xr), dr) in dy.chunks_exact(c).zip(x.chunks_exact(c)).zip(dx.chunks_exact_mut(c)) {
        let (gr, xr, dr) = (&gr[..c], &xr[..c], &mut dr[..c]);
        for j in 0..c {
            let v = xr[j];
            let z = v * scale[j] + bias[j];
            let keep = !RELU6 | relu6_passes(z);
            let g = if keep { gr[j] } else { 0.0 };
            let xh = (v - mean[j]) * inv[j];
            dr[j] = scale[j] * (g - mg[j] - xh * mgx[j]);
        }
    }
}

/// Backward pass of [`bn_train_forward`] given the output gradient `dy`, the
/// forward input `x` and the BatchNorm with the batch statistics the forward pass used.
pub fn bn_train_backward(dy: &[f32], x: &[f32], bn: &Bn<'_>) -> BnBackward {
    let (c, mean, relu6) = (bn.c, bn.mean, bn.relu6);
    let rows = x.len().checked_div(c).unwrap_or(0);
    if rows == 0 {
        return BnBackward { dx: vec![0.0; x.len()], dgamma: vec![0.0; c], dbeta: vec![0.0; c] };
    }
    let (scale, bias, inv) = bn.coefficients();
    let chunk = rows_per_task(c) * c;
    let parts = dy
        .par_chunks(chunk)
        .zip(x.par_chunks(chunk))
        .map(|(gc, xc)| {
            simd(
                #[inline(always)]
                || {
                    if relu6 {
                        bn_grad_sums::<true>(gc, xc, c, mean, &inv, &scale, &bias)
                    } else {
                        bn_grad_sums::<false>(gc, xc, c, mean, &inv, &scale, &bias)
                    }
                },
            )
        })
        .collect::<Vec<_>>();
    let (sg, sgx) = sum_partials(parts, c);
    let m = rows as f64;
    let mg: Vec<f32> = sg.iter().map(|&s| (s / m) as f32).collect();
    let mgx: Vec<f32> = sgx.iter().map(|&s| (s / m) as f32).collect();
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(chunk).zip(dy.par_chunks(chunk).zip(x.par_chunks(chunk))).for_each(|(dc, (gc, xc))| {
        simd(
            #[inline(always)]
            || {
                if relu6 {
                    bn_grad_input::<true>(gc, xc, dc, c, mean, &inv, &scale, &bias, &mg, &mgx)
                } else {
                    bn_grad_input::<false>(gc, xc, dc, c, mean, &inv, &scale, &bias, &mg, &mgx)
                }
            },
        )
    });
    BnBackward { dx, dgamma: sgx.iter().map(|&s| s as f32).collect(), dbeta: sg.iter().map(|&s| s as f32).collect() }
}

/// Gradients of an affine BatchNorm with fixed (running) statistics:
/// `(dx, dγ, dβ, dμ, dσ²)`.
#[allow(clippy::type_complexity)]
pub fn bn_infer_backward(dy: &[f32], x: &[f32], bn: &Bn<'_>) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let Bn { c, gamma, mean, var, eps, relu6, .. } = *bn;
    let (scale, bias, inv) = bn.coefficients();
    let mut dx = vec![0.0f32; x.len()];
    let mut sg = vec![0.0f64; c];
    let mut sgx = vec![0.0f64; c];
    if c > 0 {
        for ((gr, xr), dr) in dy.chunks_exact(c).zip(x.chunks_exact(c)).zip(dx.chunks_exact_mut(c)) {
            for j in 0..c {
                let z = xr[j] * scale[j] + bias[j];
                let g = if !relu6 || relu6_passes(z) { gr[j] } else { 0.0 };
                dr[j] = g * scale[j];
                sg[j] += f64::from(g);
                sgx[j] += f64::from(g * (xr[j] - mean[j]) * inv[j]);
            }
        }
    }
    let dgamma: Vec<f32> = sgx.iter().map(|&s| s as f32).collect();
    let dbeta: Vec<f32> = sg.iter().map(|&s| s as f32).collect();
    let dmean = (0..c).map(|j| (-sg[j] * f64::from(scale[j])) as f32).collect();
    // ∂y/∂σ² = γ·(x−μ)·(−½)(σ²+ε)^(−3/2) = −½·x̂·γ/(σ²+ε).
    let dvar = (0..c).map(|j| (-0.5 * sgx[j] * f64::from(gamma[j]) / (f64::from(var[j]) + eps)) as f32).collect();
    (dx, dgamma, dbeta, dmean, dvar)
}

/// Depthwise weights `[c, 1, k, k]` (burn's layout) as `[k·k, c]`.
pub fn depthwise_taps(w: &[f32], c: usize, k: usize) -> Vec<f32> {
    let kk = k * k;
    let mut t = vec![0.0f32; kk * c];
    for ch in 0..c {
        for p in 0..kk {
            t[p * c + ch] = w[ch * kk + p];
        }
    }
    t
}

/// `[k·k, c]` tap gradients back to burn's `[c, 1, k, k]`.
pub fn depthwise_untaps(t: &[f32], c: usize, k: usize) -> Vec<f32> {
    let kk = k * k;
    let mut w = vec![0.0f32; kk * c];
    for ch in 0..c {
        for p in 0..kk {
            w[ch * kk + p] = t[p * c + ch];
        }
    }
    w
}

/// One output row `(n, oy)` of a depthwise convolution.
#[inline(always)]
fn dw_row(x: &[f32], taps: &[f32], g: &ConvGeom, n: usize, oy: usize, out: &mut [f32]) {
    let c = g.c;
    out.fill(0.0);
    for (ox, o) in out.chunks_exact_mut(c).enumerate() {
        for ky in 0..g.k {
            for kx in 0..g.k {
                let Some((iy, ix)) = g.tap(oy, ox, ky, kx) else { continue };
                let xr = &x[((n * g.h + iy) * g.w + ix) * c..][..c];
                let wr = &taps[(ky * g.k + kx) * c..][..c];
                for ((a, &xv), &wv) in o.iter_mut().zip(xr).zip(wr) {
                    *a += xv * wv;
                }
            }
        }
    }
}

/// Depthwise convolution of an NHWC input with `[k·k, c]` taps; output
/// `[n·ho·wo, c]`.
pub fn depthwise_forward(x: &[f32], taps: &[f32], g: &ConvGeom) -> Vec<f32> {
    let c = g.c;
    let mut y = vec![0.0f32; g.output_rows() * c];
    let row = g.wo * c;
    if row == 0 {
        return y;
    }
    y.par_chunks_mut(row).enumerate().for_each(|(r, out)| {
        let (n, oy) = (r / g.ho, r % g.ho);
        simd(
            #[inline(always)]
            || dw_row(x, taps, g, n, oy, out),
        )
    });
    y
}

/// Backward of one image of a depthwise convolution: adds into `dx_img` and `dtaps`.
#[inline(always)]
fn dw_backward_image(
    dy: &[f32],
    x: &[f32],
    taps: &[f32],
    g: &ConvGeom,
    n: usize,
    dx_img: Option<&mut [f32]>,
    dtaps: &mut [f32],
) {
    let c = g.c;
    let img = g.h * g.w * c;
    let xi = &x[n * img..][..img];
    let dyi = &dy[n * g.ho * g.wo * c..][..g.ho * g.wo * c];
    let mut dx_img = dx_img;
    for oy in 0..g.ho {
        for ox in 0..g.wo {
            let gr = &dyi[(oy * g.wo + ox) * c..][..c];
            for ky in 0..g.k {
                for kx in 0..g.k {
                    let Some((iy, ix)) = g.tap(oy, ox, ky, kx) else { continue };
                    let p = ky * g.k + kx;
                    let off = (iy * g.w + ix) * c;
                    let xr = &xi[off..][..c];
                    let dwr = &mut dtaps[p * c..][..c];
                    for ((d, &gv), &xv) in dwr.iter_mut().zip(gr).zip(xr) {
                        *d += gv * xv;
                    }
                    if let Some(dx) = dx_img.as_deref_mut() {
                        let wr = &taps[p * c..][..c];
                        let dxr = &mut dx[off..][..c];
                        for ((d, &gv), &wv) in dxr.iter_mut().zip(gr).zip(wr) {
                            *d += gv * wv;
                        }
                    }
                }
            }
        }
    }
}

/// Gradients of [`depthwise_forward`]: the input gradient (when `need_dx`)
/// and the `[k·k, c]` tap gradient.
pub fn depthwise_backward(
    dy: &[f32],
    x: &[f32],
    taps: &[f32],
    g: &ConvGeom,
    need_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let c = g.c;
    let kk = g.k * g.k;
    let img = g.h * g.w * c;
    let zero = || vec![0.0f32; kk * c];
    // Per-image partials, added in image order (deterministic).
    let add = |parts: Vec<Vec<f32>>| {
        let mut a = zero();
        for p in parts {
            a.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
        }
        a
    };
    if img == 0 || g.n == 0 {
        return (need_dx.then(|| vec![0.0; g.input_len()]), zero());
    }
    if need_dx {
        let mut dx = vec![0.0f32; g.input_len()];
        let dtaps = dx
            .par_chunks_mut(img)
            .enumerate()
            .map(|(n, dxi)| {
                let mut dt = zero();
                simd(
                    #[inline(always)]
                    || dw_backward_image(dy, x, taps, g, n, Some(dxi), &mut dt),
                );
                dt
            })
            .collect::<Vec<_>>();
        (Some(dx), add(dtaps))
    } else {
        let dtaps = (0..g.n)
            .into_par_iter()
            .map(|n| {
                let mut dt = zero();
                simd(
                    #[inline(always)]
                    || dw_backward_image(dy, x, taps, g, n, None, &mut dt),
                );
                dt
            })
            .collect::<Vec<_>>();
        (None, add(dtaps))
    }
}

/// Patches of a dense convolution: `[n·ho·wo, c·k·k]`, columns ordered
/// `(channel, ky, kx)` to match burn's `[out, c, k, k]` weights; zero padding.
pub fn im2col(x: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (c, k) = (g.c, g.k);
    let width = c * k * k;
    let mut cols = vec![0.0f32; g.output_rows() * width];
    let row_len = g.wo * width;
    if row_len == 0 {
        return cols;
    }
    cols.par_chunks_mut(row_len).enumerate().for_each(|(r, out)| {
        let (n, oy) = (r / g.ho, r % g.ho);
        for (ox, o) in out.chunks_exact_mut(width).enumerate() {
            for ky in 0..k {
                for kx in 0..k {
                    let Some((iy, ix)) = g.tap(oy, ox, ky, kx) else { continue };
                    let xr = &x[((n * g.h + iy) * g.w + ix) * c..][..c];
                    for (ch, &v) in xr.iter().enumerate() {
                        o[ch * k * k + ky * k + kx] = v;
                    }
                }
            }
        }
    });
    cols
}

/// Adjoint of [`im2col`]: sums patch gradients back into an NHWC input gradient.
pub fn col2im(dcols: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (c, k) = (g.c, g.k);
    let width = c * k * k;
    let img = g.h * g.w * c;
    let mut dx = vec![0.0f32; g.input_len()];
    if img == 0 {
        return dx;
    }
    dx.par_chunks_mut(img).enumerate().for_each(|(n, dxi)| {
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                let row = &dcols[((n * g.ho + oy) * g.wo + ox) * width..][..width];
                for ky in 0..k {
                    for kx in 0..k {
                        let Some((iy, ix)) = g.tap(oy, ox, ky, kx) else { continue };
                        let d = &mut dxi[(iy * g.w + ix) * c..][..c];
                        for (ch, v) in d.iter_mut().enumerate() {
                            *v += row[ch * k * k + ky * k + kx];
                        }
                    }
                }
            }
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use danas_core::same_padding;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed)) % 1000) as f32 / 250.0 - 2.0)
            .collect()
    }

    fn geom(n: usize, h: usize, w: usize, c: usize, k: usize, s: usize) -> ConvGeom {
        let (ho, pt, _) = same_padding(h as u32, k as u32, s as u32);
        let (wo, pl, _) = same_padding(w as u32, k as u32, s as u32);
        ConvGeom {
            n,
            h,
            w,
            c,
            k,
            stride: s,
            pad_top: pt as usize,
            pad_left: pl as usize,
            ho: ho as usize,
            wo: wo as usize,
        }
    }

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "element {i}: {x} vs {y}");
        }
    }

    /// Naive depthwise conv on NHWC data with burn-layout weights.
    fn naive_dw(x: &[f32], w: &[f32], g: &ConvGeom) -> Vec<f32> {
        let mut y = vec![0.0; g.output_rows() * g.c];
        for n in 0..g.n {
            for oy in 0..g.ho {
                for ox in 0..g.wo {
                    for ch in 0..g.c {
                        let mut acc = 0.0f64;
                        for ky in 0..g.k {
                            for kx in 0..g.k {
                                let iy = (oy * g.stride + ky) as i64 - g.pad_top as i64;
                                let ix = (ox * g.stride + kx) as i64 - g.pad_left as i64;
                                if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                    let xv = x[((n * g.h + iy as usize) * g.w + ix as usize) * g.c + ch];
                                    acc += f64::from(xv) * f64::from(w[ch * g.k * g.k + ky * g.k + kx]);
                                }
                            }
                        }
                        y[((n * g.ho + oy) * g.wo + ox) * g.c + ch] = acc as f32;
                    }
                }
            }
        }
        y
    }

    #[test]
    fn depthwise_matches_naive_and_its_adjoint() {
        for &(n, h, w, c, k, s) in
            &[(2, 6, 6, 5, 3, 1), (3, 7, 5, 16, 3, 2), (1, 8, 8, 8, 5, 2), (2, 3, 3, 20, 5, 1), (1, 1, 1, 3, 3, 2)]
        {
            let g = geom(n, h, w, c, k, s);
            let x = data(g.input_len(), 1);
            let wt = data(c * k * k, 2);
            let taps = depthwise_taps(&wt, c, k);
            assert_eq!(depthwise_untaps(&taps, c, k), wt);
            let y = depthwise_forward(&x, &taps, &g);
            close(&y, &naive_dw(&x, &wt, &g), 1e-5);
            // Adjoint identities: <dy, f(x)> = <df/dx·dy, x> (linear in x) and in w.
            let dy = data(y.len(), 3);
            let (dx, dtaps) = depthwise_backward(&dy, &x, &taps, &g, true);
            let dx = dx.unwrap();
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>();
            let lhs = dot(&dy, &y);
            assert!((lhs - dot(&dx, &x)).abs() < 1e-3 * (1.0 + lhs.abs()), "dx adjoint {n} {h} {w} {c} {k} {s}");
            assert!((lhs - dot(&dtaps, &taps)).abs() < 1e-3 * (1.0 + lhs.abs()), "dw adjoint");
            let (none, dt2) = depthwise_backward(&dy, &x, &taps, &g, false);
            assert!(none.is_none());
            close(&dt2, &dtaps, 1e-6);
        }
    }

    #[test]
    fn im2col_times_weights_is_a_dense_conv_and_col2im_its_adjoint() {
        let g = geom(2, 7, 6, 3, 3, 2);
        let o = 4;
        let x = data(g.input_len(), 5);
        let w = data(o * g.c * 9, 6);
        let cols = im2col(&x, &g);
        let width = g.c * 9;
        for r in 0..g.output_rows() {
            let (n, rest) = (r / (g.ho * g.wo), r % (g.ho * g.wo));
            let (oy, ox) = (rest / g.wo, rest % g.wo);
            for oc in 0..o {
                let got: f32 = (0..width).map(|j| cols[r * width + j] * w[oc * width + j]).sum();
                let mut want = 0.0f32;
                for ch in 0..g.c {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let iy = (oy * 2 + ky) as i64 - g.pad_top as i64;
                            let ix = (ox * 2 + kx) as i64 - g.pad_left as i64;
                            if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                want += x[((n * g.h + iy as usize) * g.w + ix as usize) * g.c + ch]
                                    * w[oc * width + ch * 9 + ky * 3 + kx];
                            }
                        }
                    }
                }
                assert!((got - want).abs() < 1e-4, "row {r} out {oc}");
            }
        }
        let dcols = data(cols.len(), 7);
        let dx = col2im(&dcols, &g);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>();
        assert!((dot(&dcols, &cols) - dot(&dx, &x)).abs() < 1e-3);
    }

    #[test]
    fn batchnorm_statistics_output_and_gradients() {
        let (rows, c) = (3000, 7);
        let x: Vec<f32> = data(rows * c, 8).iter().map(|v| v * 3.0 + 100.0).collect();
        let gamma = data(c, 9).iter().map(|v| v + 3.0).collect::<Vec<_>>();
        let beta = data(c, 10);
        let eps = 1e-3;
        for relu6 in [false, true] {
            let f = bn_train_forward(&x, c, &gamma, &beta, eps, relu6);
            for j in 0..c {
                let col: Vec<f64> = (0..rows).map(|r| f64::from(x[r * c + j])).collect();
                let m = col.iter().sum::<f64>() / rows as f64;
                let v = col.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / rows as f64;
                assert!((f64::from(f.mean[j]) - m).abs() < 1e-3, "mean {j}");
                assert!((f64::from(f.var[j]) - v).abs() < 1e-3 * v, "var {j}");
                for r in [0, 17, rows - 1] {
                    let z = f64::from(gamma[j]) * (f64::from(x[r * c + j]) - m) / (v + eps).sqrt() + f64::from(beta[j]);
                    let z = if relu6 { z.clamp(0.0, 6.0) } else { z };
                    assert!((f64::from(f.y[r * c + j]) - z).abs() < 1e-3, "y {r} {j}");
                }
            }
        }
        // Gradients by central differences of L = Σ dy·y, on a smaller, centred
        // input so that f32 rounding stays far below the differences.
        let (rows, c) = (300, 5);
        let x: Vec<f32> = data(rows * c, 12).iter().map(|v| v * 2.0 + 0.5).collect();
        let gamma = &gamma[..c];
        let beta = &beta[..c];
        // Output gradients unrelated to x (a near-affine relation makes L flat and the
        // differences all rounding).
        let dy: Vec<f32> = (0..rows * c).map(|i| (i as f32 * 0.7311).sin()).collect();
        for relu6 in [false, true] {
            let f = bn_train_forward(&x, c, gamma, beta, eps, relu6);
            let bn = Bn { c, gamma, beta, mean: &f.mean, var: &f.var, eps, relu6 };
            let b = bn_train_backward(&dy, &x, &bn);
            let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| {
                let f = bn_train_forward(x, c, gamma, beta, eps, relu6);
                f.y.iter().zip(&dy).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>()
            };
            let h = 1e-2f32;
            for &i in &[3usize, 100, 201 * c + 4] {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[i] += h;
                xm[i] -= h;
                let num = (loss(&xp, gamma, beta) - loss(&xm, gamma, beta)) / (2.0 * f64::from(h));
                assert!((num - f64::from(b.dx[i])).abs() < 1e-2 * (1.0 + num.abs()), "dx[{i}] {num} vs {}", b.dx[i]);
            }
            for j in [0, c - 1] {
                let (mut gp, mut gm) = (gamma.to_vec(), gamma.to_vec());
                gp[j] += h;
                gm[j] -= h;
                let num = (loss(&x, &gp, beta) - loss(&x, &gm, beta)) / (2.0 * f64::from(h));
                assert!((num - f64::from(b.dgamma[j])).abs() < 1e-2 * (1.0 + num.abs()), "dgamma {j}");
                let (mut bp, mut bm) = (beta.to_vec(), beta.to_vec());
                bp[j] += h;
                bm[j] -= h;
                let num = (loss(&x, gamma, &bp) - loss(&x, gamma, &bm)) / (2.0 * f64::from(h));
                assert!((num - f64::from(b.dbeta[j])).abs() < 1e-2 * (1.0 + num.abs()), "dbeta {j}");
            }
        }
    }

    #[test]
    fn nan_stays_nan_through_batchnorm_and_relu6() {
        let mut x = data(40, 3);
        x[5] = f32::NAN;
        for relu6 in [false, true] {
            let f = bn_train_forward(&x, 4, &[1.0; 4], &[0.0; 4], 1e-3, relu6);
            assert!(f.y[1].is_nan() && f.y[5].is_nan(), "the NaN channel stays NaN");
            assert!(f.y[0].is_finite(), "other channels are untouched");
            let y = affine_act(&[f32::NAN, 1.0], 2, &[1.0, 1.0], &[0.0, 0.0], relu6);
            assert!(y[0].is_nan() && y[1] == 1.0);
        }
    }

    #[test]
    fn empty_inputs_do_not_panic() {
        let g = geom(0, 4, 4, 3, 3, 1);
        assert!(depthwise_forward(&[], &[0.0; 27], &g).is_empty());
        assert!(im2col(&[], &g).is_empty());
        let f = bn_train_forward(&[], 3, &[1.0; 3], &[0.0; 3], 1e-3, true);
        assert_eq!(f.mean, vec![0.0; 3]);
    }
}
