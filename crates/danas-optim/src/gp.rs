//! A small exact Gaussian process: Matérn-5/2 kernel with one length scale,
//! standardised targets, Cholesky solves, hyperparameters picked on a grid by the
//! log marginal likelihood.

use serde::{Deserialize, Serialize};

/// Kernel hyperparameters (on standardised targets, unit signal variance).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GpHyper {
    /// Length scale in encoding units.
    pub lengthscale: f64,
    /// Noise variance relative to the signal variance.
    pub noise: f64,
}

/// The default hyperparameter grid: 5 length scales × 3 noise levels.
pub fn default_grid() -> Vec<GpHyper> {
    let mut g = Vec::new();
    for &lengthscale in &[0.25, 0.5, 1.0, 2.0, 4.0] {
        for &noise in &[1e-4, 1e-2, 1e-1] {
            g.push(GpHyper { lengthscale, noise });
        }
    }
    g
}

/// A fitted GP.
#[derive(Debug, Clone)]
pub struct Gp {
    d: usize,
    x: Vec<f64>,
    chol: Vec<f64>,
    alpha: Vec<f64>,
    mean: f64,
    scale: f64,
    hyper: GpHyper,
    log_ml: f64,
}

fn matern52(a: &[f64], b: &[f64], ls: f64) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        let d = x - y;
        s += d * d;
    }
    let r = s.sqrt() / ls;
    let t = 5f64.sqrt() * r;
    (1.0 + t + t * t / 3.0) * (-t).exp()
}

/// In-place lower Cholesky factor of a symmetric n×n matrix; false when not positive definite.
fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut s = a[j * n + j];
        for k in 0..j {
            s -= a[j * n + k] * a[j * n + k];
        }
        if s <= 0.0 || !s.is_finite() {
            return false;
        }
        let l = s.sqrt();
        a[j * n + j] = l;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            let (ri, rj) = (&a[i * n..i * n + j], &a[j * n..j * n + j]);
            for k in 0..j {
                s -= ri[k] * rj[k];
            }
            a[i * n + j] = s / l;
        }
        for i in 0..j {
            a[i * n + j] = 0.0;
        }
    }
    true
}

/// Solves L z = b in place.
fn forward(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let row = &l[i * n..i * n + i];
        let mut s = b[i];
        for (k, v) in row.iter().enumerate() {
            s -= v * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Solves Lᵀ z = b in place.
fn backward(l: &[f64], n: usize, b: &mut [f64]) {
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

impl Gp {
    /// Fits a GP with fixed hyperparameters; `None` when there are no points, the
    /// inputs are ragged or the kernel matrix is not positive definite even with jitter.
    pub fn fit_with(x: &[Vec<f64>], y: &[f64], hyper: GpHyper) -> Option<Gp> {
        let n = x.len();
        if n == 0 || y.len() != n || y.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let d = x[0].len();
        if x.iter().any(|r| r.len() != d) {
            return None;
        }
        let mean = y.iter().sum::<f64>() / n as f64;
        let var = y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        let scale = if var > 1e-24 { var.sqrt() } else { 1.0 };
        let ys: Vec<f64> = y.iter().map(|v| (v - mean) / scale).collect();
        let flat: Vec<f64> = x.iter().flatten().copied().collect();
        let mut base = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let k = matern52(&flat[i * d..(i + 1) * d], &flat[j * d..(j + 1) * d], hyper.lengthscale);
                base[i * n + j] = k;
                base[j * n + i] = k;
            }
        }
        let mut jitter = 0.0;
        for _ in 0..4 {
            let mut a = base.clone();
            for i in 0..n {
                a[i * n + i] += hyper.noise + jitter;
            }
            if cholesky(&mut a, n) {
                let mut alpha = ys.clone();
                forward(&a, n, &mut alpha);
                let quad: f64 = alpha.iter().map(|v| v * v).sum();
                backward(&a, n, &mut alpha);
                let logdet: f64 = (0..n).map(|i| a[i * n + i].ln()).sum();
                let log_ml = -0.5 * quad - logdet - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
                return Some(Gp { d, x: flat, chol: a, alpha, mean, scale, hyper, log_ml });
            }
            jitter = if jitter == 0.0 { 1e-8 } else { jitter * 100.0 };
        }
        None
    }

    /// Fits one GP per grid point and keeps the one with the largest log marginal likelihood.
    pub fn fit(x: &[Vec<f64>], y: &[f64], grid: &[GpHyper]) -> Option<Gp> {
        grid.iter().filter_map(|&h| Gp::fit_with(x, y, h)).max_by(|a, b| a.log_ml.total_cmp(&b.log_ml))
    }

    /// The hyperparameters used.
    pub fn hyper(&self) -> GpHyper {
        self.hyper
    }

    /// Log marginal likelihood of the standardised targets.
    pub fn log_marginal_likelihood(&self) -> f64 {
        self.log_ml
    }

    /// Posterior mean and standard deviation at `x` (in the units of the targets).
    pub fn predict(&self, x: &[f64]) -> (f64, f64) {
        let n = self.alpha.len();
        let mut k: Vec<f64> =
            (0..n).map(|i| matern52(&self.x[i * self.d..(i + 1) * self.d], x, self.hyper.lengthscale)).collect();
        let mu: f64 = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        forward(&self.chol, n, &mut k);
        let var = (1.0 - k.iter().map(|v| v * v).sum::<f64>()).max(1e-12);
        (self.mean + self.scale * mu, self.scale * var.sqrt())
    }
}

/// Standard normal density.
pub fn norm_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal distribution function (erfc approximation, |error| < 1.2e-7).
pub fn norm_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    // Chebyshev fit (Numerical Recipes' erfcc coefficients, a published formula).
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Expected improvement over `best` of a maximised quantity with posterior (mean, sd).
pub fn expected_improvement(mean: f64, sd: f64, best: f64) -> f64 {
    if sd <= 0.0 {
        return (mean - best).max(0.0);
    }
    let z = (mean - best) / sd;
    ((mean - best) * norm_cdf(z) + sd * norm_pdf(z)).max(0.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn interpolates_and_is_uncertain_far_away() {
        let x: Vec<Vec<f64>> = (0..8).map(|i| vec![f64::from(i) / 7.0]).collect();
        let y: Vec<f64> = x.iter().map(|v| (6.0 * v[0]).sin()).collect();
        let gp = Gp::fit(&x, &y, &default_grid()).unwrap();
        for (xi, yi) in x.iter().zip(&y) {
            let (m, s) = gp.predict(xi);
            assert!((m - yi).abs() < 0.1, "mean {m} vs {yi}");
            assert!(s < 0.3);
        }
        let (_, far) = gp.predict(&[5.0]);
        let (_, near) = gp.predict(&[0.5]);
        assert!(far > near);
    }

    #[test]
    fn cdf_and_ei_known_values() {
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((norm_cdf(-1.0) - 0.158_655_3).abs() < 1e-6);
        // EI at mean == best is sd * pdf(0)
        assert!((expected_improvement(1.0, 2.0, 1.0) - 2.0 * norm_pdf(0.0)).abs() < 1e-12);
        assert!(expected_improvement(0.0, 1e-9, 5.0) < 1e-9);
    }

    #[test]
    fn degenerate_inputs_give_none() {
        assert!(Gp::fit(&[], &[], &default_grid()).is_none());
        assert!(Gp::fit(&[vec![0.0], vec![1.0, 2.0]], &[0.0, 1.0], &default_grid()).is_none());
        assert!(Gp::fit(&[vec![0.0]], &[f64::NAN], &default_grid()).is_none());
        // duplicate points with noise still factorise
        assert!(Gp::fit(&[vec![0.0], vec![0.0]], &[1.0, 1.0], &default_grid()).is_some());
    }
}
