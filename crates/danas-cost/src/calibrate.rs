//! Least-squares calibration of a profile's latency coefficients from measurements.

use std::path::Path;

use danas_core::{Arch, Candidate, Color, DataConfig, Precision};
use serde::{Deserialize, Serialize};

use crate::{CostError, LatencyFeatures, Profile, latency_features, read_tflite_file};

/// One measurement: a model's latency features and its measured latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationSample {
    /// What was measured (file name or candidate), for reports.
    pub label: String,
    /// The model's features.
    pub features: LatencyFeatures,
    /// Measured latency in ms.
    pub measured_ms: f64,
}

/// The result of [`calibrate`]: the fitted profile and the fit error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The input profile with fitted `cycles_per_mac`, `cycles_per_element` and `per_op_cycles`.
    pub profile: Profile,
    /// Root-mean-square error of the fit, ms.
    pub rmse_ms: f64,
    /// Largest relative error |predicted − measured| / measured.
    pub max_rel_error: f64,
    /// Predicted latency per sample, ms.
    pub predicted_ms: Vec<f64>,
    /// Coefficients left at the profile's values: no sample exercises them (or, in a
    /// tied fit, none enough to tell them from noise), or the fit does not tie them.
    #[serde(default)]
    pub kept: Vec<String>,
}

/// Parses a calibration CSV: a header line `model,ms`, then one measurement per line.
/// `model` is a `.tflite` path (relative to `base_dir`) or a candidate written
/// `RES:COLOUR:ALPHA:D1-D2-D3-D4-D5[:CLASSES]`, e.g. `96:rgb:0.35:3-4-3-3-1:2`.
///
/// # Errors
/// [`CostError::Calibration`] naming the line, or the model's own error.
pub fn parse_calibration_csv(text: &str, origin: &str, base_dir: &Path) -> Result<Vec<CalibrationSample>, CostError> {
    let bad = |line: usize, reason: String| CostError::Calibration { origin: origin.to_string(), line, reason };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (i == 0 && line.to_ascii_lowercase().starts_with("model")) {
            continue;
        }
        let Some((model, ms)) = line.rsplit_once(',') else {
            return Err(bad(line_no, format!("expected `model,ms`, got `{line}`")));
        };
        let ms: f64 = ms.trim().parse().map_err(|_| bad(line_no, format!("`{}` is not a number of ms", ms.trim())))?;
        if !(ms.is_finite() && ms > 0.0) {
            return Err(bad(line_no, format!("measured latency {ms} must be > 0")));
        }
        let model = model.trim();
        let features = if model.ends_with(".tflite") {
            latency_features(&read_tflite_file(&base_dir.join(model))?.graph)?
        } else {
            let (cand, classes) = parse_candidate(model).map_err(|r| bad(line_no, r))?;
            latency_features(&cand.blueprint(classes)?.to_graph(Precision::Int8))?
        };
        out.push(CalibrationSample { label: model.to_string(), features, measured_ms: ms });
    }
    if out.is_empty() {
        return Err(bad(0, "no measurements".into()));
    }
    Ok(out)
}

fn parse_candidate(s: &str) -> Result<(Candidate, u32), String> {
    let parts: Vec<&str> = s.split(':').collect();
    if !(4..=5).contains(&parts.len()) {
        return Err(format!("`{s}` is neither a .tflite path nor RES:COLOUR:ALPHA:D1-D2-D3-D4-D5[:CLASSES]"));
    }
    let res: u32 = parts[0].parse().map_err(|_| format!("resolution `{}` is not a whole number", parts[0]))?;
    let color: Color = parts[1].parse().map_err(|e: danas_core::CoreError| e.to_string())?;
    let alpha: f64 = parts[2].parse().map_err(|_| format!("alpha `{}` is not a number", parts[2]))?;
    let depths: Result<Vec<u32>, _> = parts[3].split('-').map(str::parse).collect();
    let depths = depths.map_err(|_| format!("depths `{}` must be like 3-4-3-3-1", parts[3]))?;
    let classes = match parts.get(4) {
        Some(c) => c.parse().map_err(|_| format!("classes `{c}` is not a whole number"))?,
        None => 2,
    };
    let arch = Arch { depths, ..Arch::mobilenet_v2(alpha, [0; 5]) };
    Ok((Candidate::new(DataConfig::new(res, color), arch), classes))
}

fn row(f: &LatencyFeatures) -> [f64; 6] {
    [f.conv1x1_macs, f.conv_macs, f.depthwise_macs, f.fc_macs, f.elements, f.ops]
}

/// Fits the latency coefficients of `profile` to `samples` by least squares
/// (cycles = Σ features × coefficients; ms = cycles / clock). Coefficients of features
/// absent from every sample keep the profile's values; negative solutions are clamped
/// to 0 and the rest refitted.
///
/// # Errors
/// [`CostError::Calibration`] when there are no samples.
pub fn calibrate(profile: &Profile, samples: &[CalibrationSample]) -> Result<Calibration, CostError> {
    if samples.is_empty() {
        return Err(CostError::Calibration { origin: "<samples>".into(), line: 0, reason: "no measurements".into() });
    }
    let cyc_per_ms = profile.clock_mhz * 1000.0;
    let c = &profile.cycles_per_mac;
    let mut coef = [c.conv1x1, c.conv, c.depthwise, c.fc, profile.cycles_per_element, profile.per_op_cycles];
    let rows: Vec<[f64; 6]> = samples.iter().map(|s| row(&s.features)).collect();
    let y: Vec<f64> = samples.iter().map(|s| s.measured_ms * cyc_per_ms).collect();
    let active: Vec<usize> = (0..6).filter(|&j| rows.iter().any(|r| r[j] != 0.0)).collect();
    let kept: Vec<String> = (0..6).filter(|j| !active.contains(j)).map(|j| COEFFICIENTS[j].to_string()).collect();
    // Coefficients of no sample's features contribute nothing: the target is the measurement.
    let x: Vec<Vec<f64>> = rows.iter().map(|r| r.to_vec()).collect();
    for (j, v) in nnls(&x, &y, active, true) {
        coef[j] = v;
    }
    Ok(Calibration { kept, ..finish(profile, samples, &rows, coef) })
}

/// Which latency coefficients [`calibrate_with`] fits, and which move together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Every coefficient on its own, by least squares on cycles: [`calibrate`]. Needs
    /// more varied measurements than coefficients (six).
    Free,
    /// One factor over all of the profile's coefficients: keeps the relative costs of
    /// the profile's kernel library and fits the core's speed. For one or a few
    /// measurements.
    Scale,
    /// One cycles-per-MAC shared by every convolution kind (1×1, k×k, depthwise) and
    /// one for fully connected layers; element-wise and per-op cycles keep the
    /// profile's values. Suits the TFLM reference kernels, which run the same plain
    /// loop nest for every convolution kind. Needs at least one measurement per kind.
    ConvFc,
}

/// Fits the latency coefficients of `profile` to `samples` as `fit` says. [`Fit::Free`]
/// is [`calibrate`]; the tied fits minimise the squared *relative* error (so a 10 ms
/// and a 1 s model count alike), keep coefficients to ≥ 0, and leave a tied group
/// that accounts for under 5 % of every sample's cycles (under the profile's
/// coefficients) at the profile's values: it cannot be told from noise.
///
/// # Errors
/// [`CostError::Calibration`] when there are no samples.
pub fn calibrate_with(profile: &Profile, samples: &[CalibrationSample], fit: Fit) -> Result<Calibration, CostError> {
    let groups: Vec<Vec<usize>> = match fit {
        Fit::Free => return calibrate(profile, samples),
        Fit::Scale => vec![(0..6).collect()],
        Fit::ConvFc => vec![vec![0, 1, 2], vec![3]],
    };
    if samples.is_empty() {
        return Err(CostError::Calibration { origin: "<samples>".into(), line: 0, reason: "no measurements".into() });
    }
    let cyc_per_ms = profile.clock_mhz * 1000.0;
    let c = &profile.cycles_per_mac;
    let base = [c.conv1x1, c.conv, c.depthwise, c.fc, profile.cycles_per_element, profile.per_op_cycles];
    // Within a group, Scale keeps the profile's ratios; ConvFc shares one value.
    let weight = |j: usize| if fit == Fit::Scale { base[j] } else { 1.0 };
    let rows: Vec<[f64; 6]> = samples.iter().map(|s| row(&s.features)).collect();
    let y: Vec<f64> = samples.iter().map(|s| s.measured_ms * cyc_per_ms).collect();
    let tied: Vec<usize> = groups.iter().flatten().copied().collect();
    // Columns of the tied groups and what is left of each measurement, both divided
    // by the measurement (relative error).
    let x: Vec<Vec<f64>> = rows
        .iter()
        .zip(&y)
        .map(|(r, &yy)| groups.iter().map(|g| g.iter().map(|&j| r[j] * weight(j)).sum::<f64>() / yy).collect())
        .collect();
    let t: Vec<f64> = rows
        .iter()
        .zip(&y)
        .map(|(r, &yy)| (yy - (0..6).filter(|j| !tied.contains(j)).map(|j| r[j] * base[j]).sum::<f64>()) / yy)
        .collect();
    let mut coef = base;
    // A group must matter somewhere to be told apart from the noise of the others.
    let share = |r: &[f64; 6], g: &[usize]| {
        let total: f64 = (0..6).map(|j| r[j] * base[j]).sum();
        if total > 0.0 { g.iter().map(|&j| r[j] * base[j]).sum::<f64>() / total } else { 0.0 }
    };
    let active: Vec<usize> = (0..groups.len())
        .filter(|&g| x.iter().any(|r| r[g] != 0.0) && rows.iter().any(|r| share(r, &groups[g]) >= MIN_SHARE))
        .collect();
    let kept: Vec<String> = (0..groups.len())
        .filter(|g| !active.contains(g))
        .flat_map(|g| groups[g].iter().map(|&j| COEFFICIENTS[j].to_string()))
        .chain((0..6).filter(|j| !tied.contains(j)).map(|j| COEFFICIENTS[j].to_string()))
        .collect();
    for (g, m) in nnls(&x, &t, active, false) {
        for &j in &groups[g] {
            coef[j] = m * weight(j);
        }
    }
    Ok(Calibration { kept, ..finish(profile, samples, &rows, coef) })
}

/// Non-negative least squares over the `active` columns of `x` (one row per sample)
/// against `t` by the normal equations, with a tiny ridge (relative to the diagonal)
/// when `ridge`; a column solved negative is set to 0 and the rest refitted. Returns
/// each initially active column with its value.
fn nnls(x: &[Vec<f64>], t: &[f64], mut active: Vec<usize>, ridge: bool) -> Vec<(usize, f64)> {
    let mut out: Vec<(usize, f64)> = Vec::new();
    while !active.is_empty() {
        let k = active.len();
        let mut a = vec![vec![0.0; k + 1]; k];
        for (r, &tt) in x.iter().zip(t) {
            for (p, &jp) in active.iter().enumerate() {
                for (q, &jq) in active.iter().enumerate() {
                    a[p][q] += r[jp] * r[jq];
                }
                a[p][k] += r[jp] * tt;
            }
        }
        if ridge {
            for (p, row) in a.iter_mut().enumerate() {
                row[p] += row[p].abs() * 1e-9 + 1e-12;
            }
        }
        let sol = solve(a);
        if sol.iter().all(|v| *v >= 0.0) {
            out.extend(active.iter().copied().zip(sol));
            break;
        }
        let neg: Vec<usize> = active.iter().zip(&sol).filter(|(_, v)| **v < 0.0).map(|(&j, _)| j).collect();
        out.extend(neg.iter().map(|&j| (j, 0.0)));
        active.retain(|j| !neg.contains(j));
    }
    out
}

/// The calibration result of coefficients `coef` (in [`row`] order).
fn finish(profile: &Profile, samples: &[CalibrationSample], rows: &[[f64; 6]], coef: [f64; 6]) -> Calibration {
    let cyc_per_ms = profile.clock_mhz * 1000.0;
    let predicted: Vec<f64> =
        rows.iter().map(|r| r.iter().zip(&coef).map(|(x, c)| x * c).sum::<f64>() / cyc_per_ms).collect();
    let n = samples.len().max(1) as f64;
    let rmse = (samples.iter().zip(&predicted).map(|(s, p)| (p - s.measured_ms).powi(2)).sum::<f64>() / n).sqrt();
    let max_rel =
        samples.iter().zip(&predicted).map(|(s, p)| (p - s.measured_ms).abs() / s.measured_ms).fold(0.0, f64::max);
    let mut p = profile.clone();
    p.cycles_per_mac.conv1x1 = coef[0];
    p.cycles_per_mac.conv = coef[1];
    p.cycles_per_mac.depthwise = coef[2];
    p.cycles_per_mac.fc = coef[3];
    p.cycles_per_element = coef[4];
    p.per_op_cycles = coef[5];
    Calibration { profile: p, rmse_ms: rmse, max_rel_error: max_rel, predicted_ms: predicted, kept: Vec::new() }
}

/// The coefficients in [`row`] order, by their profile names.
const COEFFICIENTS: [&str; 6] = [
    "cycles_per_mac.conv1x1",
    "cycles_per_mac.conv",
    "cycles_per_mac.depthwise",
    "cycles_per_mac.fc",
    "cycles_per_element",
    "per_op_cycles",
];

/// The least share of a sample's cycles (under the profile's coefficients) a tied
/// group must have in some sample to be fitted.
const MIN_SHARE: f64 = 0.05;

/// Gaussian elimination with partial pivoting on an augmented k × (k+1) matrix.
fn solve(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let k = a.len();
    for col in 0..k {
        let piv = (col..k).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs())).unwrap_or(col);
        a.swap(col, piv);
        let d = a[col][col];
        if d.abs() < 1e-300 {
            continue;
        }
        let pivot = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / d;
                if f != 0.0 {
                    for (x, p) in row[col..].iter_mut().zip(&pivot[col..]) {
                        *x -= f * p;
                    }
                }
            }
        }
    }
    (0..k).map(|i| if a[i][i].abs() < 1e-300 { 0.0 } else { a[i][k] / a[i][i] }).collect()
}
