//! The original paper code's resource formulas, kept for comparison (`cargo xtask
//! repro cost-model`) and for faithful reproductions. They do **not** describe the
//! deployed model; use [`crate::estimate_candidate`] for that.

use danas_core::{Arch, Candidate};
use serde::{Deserialize, Serialize};

use crate::CostError;

/// RAM and flash as the paper's code estimated them (1 byte per value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaperEstimate {
    /// max over layers of (input + output activation elements) of the base-width
    /// network, times α; or the input image, if larger.
    pub ram_bytes: u64,
    /// Weights of the base-width network (BatchNorm's four values per channel
    /// included, no biases), times α.
    pub flash_bytes: u64,
}

/// The paper's formulas for `cand` with `classes` outputs: the candidate's depths at
/// the base width (`base_width`: 1.0, or the original code's 0.33 for grayscale),
/// scaled linearly by the candidate's α.
///
/// ```
/// use danas_core::{Arch, Candidate, Color, DataConfig};
/// let c = Candidate::new(DataConfig::new(96, Color::Rgb), Arch::mobilenet_v2(0.5, [3, 4, 3, 3, 1]));
/// let p = danas_cost::paper_estimate(&c, 2, 1.0)?;
/// let full = danas_cost::paper_estimate(&Candidate { arch: Arch::mobilenet_v2(1.0, [3, 4, 3, 3, 1]), ..c.clone() }, 2, 1.0)?;
/// assert_eq!(p.flash_bytes, full.flash_bytes / 2); // linear in α, unlike the real model
/// # Ok::<(), danas_cost::CostError>(())
/// ```
///
/// # Errors
/// [`CostError::Candidate`] for an invalid candidate or base width.
pub fn paper_estimate(cand: &Candidate, classes: u32, base_width: f64) -> Result<PaperEstimate, CostError> {
    let base = Candidate { arch: Arch { alpha: base_width, ..cand.arch.clone() }, ..cand.clone() };
    let bp = base.blueprint(classes)?;
    let alpha = cand.arch.alpha / base_width;
    let (h, w, c) = cand.data.input_hwc();
    let image = u64::from(h) * u64::from(w) * u64::from(c);
    let mut weights = 0u64;
    let mut peak = 0u64;
    for (_, l) in bp.named_convs() {
        weights += l.weight_count() + 4 * u64::from(l.out_ch);
        let inp = u64::from(l.in_hw.0) * u64::from(l.in_hw.1) * u64::from(l.in_ch);
        let out = u64::from(l.out_hw.0) * u64::from(l.out_hw.1) * u64::from(l.out_ch);
        peak = peak.max(inp + out);
    }
    weights += u64::from(bp.head.features) * u64::from(bp.head.classes) + u64::from(bp.head.classes);
    let scaled = |v: u64| (v as f64 * alpha).round() as u64;
    Ok(PaperEstimate { ram_bytes: scaled(peak).max(image), flash_bytes: scaled(weights) })
}
