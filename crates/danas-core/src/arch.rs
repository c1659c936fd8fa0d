use serde::{Deserialize, Serialize};

use crate::CoreError;

/// One stage of the MobileNetV2 table: expansion `t`, base channels `c`,
/// repeats `n`, first stride `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageDef {
    /// Expansion factor of the inverted residual blocks.
    pub expansion: u32,
    /// Output channels at width multiplier 1.0 (before rounding).
    pub channels: u32,
    /// Number of blocks in the full network.
    pub repeats: u32,
    /// Stride of the first block.
    pub stride: u32,
}

/// The seven stages of MobileNetV2 (Sandler et al. 2018, Keras applications).
pub const MBV2_STAGES: [StageDef; 7] = [
    StageDef { expansion: 1, channels: 16, repeats: 1, stride: 1 },
    StageDef { expansion: 6, channels: 24, repeats: 2, stride: 2 },
    StageDef { expansion: 6, channels: 32, repeats: 3, stride: 2 },
    StageDef { expansion: 6, channels: 64, repeats: 4, stride: 2 },
    StageDef { expansion: 6, channels: 96, repeats: 3, stride: 1 },
    StageDef { expansion: 6, channels: 160, repeats: 3, stride: 2 },
    StageDef { expansion: 6, channels: 320, repeats: 1, stride: 1 },
];

/// Index into [`MBV2_STAGES`] of the first stage whose depth is searched.
/// Stages before it (stem block 0 and the two 24-channel blocks) are always kept.
pub const SEARCHABLE_STAGES: std::ops::Range<usize> = 2..7;

/// Rounds `v` to a multiple of 8, at least 8, never more than 10 % below `v`
/// (the Keras / TF-slim `_make_divisible` rule).
///
/// ```
/// assert_eq!(danas_core::make_divisible(32.0 * 0.35), 16);
/// assert_eq!(danas_core::make_divisible(16.0 * 0.35), 8);
/// assert_eq!(danas_core::make_divisible(24.0 * 0.75), 24);
/// ```
pub fn make_divisible(v: f64) -> u32 {
    let divisor = 8.0;
    let mut new_v = (divisor * ((v + divisor / 2.0) / divisor).floor()).max(divisor);
    if new_v < 0.9 * v {
        new_v += divisor;
    }
    new_v as u32
}

/// Per-stage knobs of the extended space. Defaults reproduce MobileNetV2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageKnobs {
    /// Width multiplier applied on top of the global α for this stage.
    #[serde(default = "one")]
    pub width: f64,
    /// Expansion factor `t`; `None` keeps the table's value.
    #[serde(default)]
    pub expansion: Option<u32>,
    /// Depthwise kernel size (odd); `None` keeps 3.
    #[serde(default)]
    pub kernel: Option<u32>,
}

fn one() -> f64 {
    1.0
}

impl Default for StageKnobs {
    fn default() -> Self {
        Self { width: 1.0, expansion: None, kernel: None }
    }
}

/// The final 1×1 convolution before global pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LastConv {
    /// The paper's rule: present (1280 channels for α ≤ 1, make_divisible(1280·α)
    /// above) only when the last stage (320 channels) is kept.
    #[default]
    Auto,
    /// Always present with the Keras channel count, whatever the depths.
    Always,
    /// Never present: global pooling reads the last block's output.
    None,
    /// Present with exactly this many output channels.
    Channels(u32),
}

/// A MobileNetV2-family architecture: global width α, the depth of each
/// searchable stage, and optional per-stage knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arch {
    /// Global width multiplier α (> 0). Channel counts are `make_divisible(c · α · width)`.
    pub alpha: f64,
    /// Number of blocks kept in each searchable stage (stages 3–7 of MobileNetV2),
    /// first blocks first. Length 5; stage `i` allows `0..=MBV2_STAGES[i + 2].repeats`.
    pub depths: Vec<u32>,
    /// Per-stage knobs for all seven stages, or empty for the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageKnobs>,
    /// The final 1×1 convolution.
    #[serde(default)]
    pub last_conv: LastConv,
}

impl Arch {
    /// A plain MobileNetV2 with global width `alpha` and the given searchable depths.
    pub fn mobilenet_v2(alpha: f64, depths: [u32; 5]) -> Self {
        Self { alpha, depths: depths.to_vec(), stages: Vec::new(), last_conv: LastConv::Auto }
    }

    /// The full-depth network `[3, 4, 3, 3, 1]` at width `alpha`.
    pub fn full(alpha: f64) -> Self {
        Self::mobilenet_v2(alpha, Self::max_depths())
    }

    /// The largest depth per searchable stage.
    pub fn max_depths() -> [u32; 5] {
        let mut d = [0; 5];
        for (slot, st) in d.iter_mut().zip(&MBV2_STAGES[SEARCHABLE_STAGES]) {
            *slot = st.repeats;
        }
        d
    }

    /// The knobs of stage `stage` (0..7), defaults if none are set.
    pub fn knobs(&self, stage: usize) -> StageKnobs {
        self.stages.get(stage).copied().unwrap_or_default()
    }

    /// Number of blocks kept in stage `stage` (0..7).
    pub fn stage_depth(&self, stage: usize) -> u32 {
        if stage < SEARCHABLE_STAGES.start {
            MBV2_STAGES[stage].repeats
        } else {
            self.depths.get(stage - SEARCHABLE_STAGES.start).copied().unwrap_or(0)
        }
    }

    /// Checks every field against the family's rules.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] naming the field and the value.
    pub fn validate(&self) -> Result<(), CoreError> {
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(CoreError::field("alpha", self.alpha, "must be a finite number > 0"));
        }
        if self.alpha > 8.0 {
            return Err(CoreError::field("alpha", self.alpha, "must be at most 8"));
        }
        let n = SEARCHABLE_STAGES.len();
        if self.depths.len() != n {
            return Err(CoreError::field(
                "depths",
                format!("{:?}", self.depths),
                format!("needs exactly {n} values, one per searchable stage"),
            ));
        }
        for (i, (&d, st)) in self.depths.iter().zip(&MBV2_STAGES[SEARCHABLE_STAGES]).enumerate() {
            if d > st.repeats {
                return Err(CoreError::field(
                    format!("depths[{i}]"),
                    d,
                    format!(
                        "stage {} ({} channels) has at most {} blocks",
                        i + SEARCHABLE_STAGES.start + 1,
                        st.channels,
                        st.repeats
                    ),
                ));
            }
        }
        if !self.stages.is_empty() && self.stages.len() != MBV2_STAGES.len() {
            return Err(CoreError::field(
                "stages",
                format!("{} entries", self.stages.len()),
                format!("must be empty or hold exactly {} entries", MBV2_STAGES.len()),
            ));
        }
        for (i, k) in self.stages.iter().enumerate() {
            if !(k.width.is_finite() && k.width > 0.0) {
                return Err(CoreError::field(format!("stages[{i}].width"), k.width, "must be a finite number > 0"));
            }
            if let Some(e) = k.expansion {
                if e == 0 || e > 16 {
                    return Err(CoreError::field(format!("stages[{i}].expansion"), e, "must be between 1 and 16"));
                }
                if i == 0 && e != 1 {
                    return Err(CoreError::field(
                        format!("stages[{i}].expansion"),
                        e,
                        "block 0 has no expansion conv; only 1 is allowed",
                    ));
                }
            }
            if let Some(kk) = k.kernel
                && (kk == 0 || kk % 2 == 0 || kk > 9)
            {
                return Err(CoreError::field(format!("stages[{i}].kernel"), kk, "must be odd and between 1 and 9"));
            }
        }
        if let LastConv::Channels(c) = self.last_conv
            && (c == 0 || c > 8192)
        {
            return Err(CoreError::field("last_conv", c, "must be between 1 and 8192 channels"));
        }
        Ok(())
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d: Vec<String> = self.depths.iter().map(u32::to_string).collect();
        write!(f, "a{} d{}", trim_float(self.alpha), d.join(","))?;
        if !self.stages.is_empty() {
            let e: Vec<String> =
                self.stages.iter().map(|k| k.expansion.map_or("-".into(), |e| e.to_string())).collect();
            let k: Vec<String> = self.stages.iter().map(|k| k.kernel.map_or("-".into(), |e| e.to_string())).collect();
            write!(f, " e{} k{}", e.join(","), k.join(","))?;
        }
        match self.last_conv {
            LastConv::Auto => Ok(()),
            LastConv::Always => write!(f, " last=always"),
            LastConv::None => write!(f, " last=none"),
            LastConv::Channels(c) => write!(f, " last={c}"),
        }
    }
}

/// Formats a float without trailing zeros (0.35, 1, 0.1).
pub(crate) fn trim_float(v: f64) -> String {
    let s = format!("{:.4}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divisible_rule() {
        assert_eq!(make_divisible(32.0), 32);
        assert_eq!(make_divisible(32.0 * 0.35), 16);
        assert_eq!(make_divisible(16.0 * 0.25), 8);
        assert_eq!(make_divisible(1.0), 8);
        assert_eq!(make_divisible(96.0 * 0.35), 32);
        assert_eq!(make_divisible(320.0 * 1.4), 448);
        // 0.9 rule: 20 -> 24 (round half up gives 24 anyway); 12 -> 16
        assert_eq!(make_divisible(12.0), 16);
        assert_eq!(make_divisible(11.0), 8 + 8); // 8 < 0.9*11 = 9.9 -> 16
    }

    #[test]
    fn validate_rejects() {
        assert!(Arch::mobilenet_v2(0.0, [1, 1, 1, 1, 1]).validate().is_err());
        assert!(Arch::mobilenet_v2(f64::NAN, [1, 1, 1, 1, 1]).validate().is_err());
        let err = Arch::mobilenet_v2(0.5, [1, 5, 1, 1, 1]).validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("depths[1]") && err.contains('5'), "{err}");
        assert!(Arch { depths: vec![1, 1], ..Arch::full(1.0) }.validate().is_err());
        assert!(Arch::full(0.35).validate().is_ok());
    }

    #[test]
    fn display() {
        assert_eq!(Arch::mobilenet_v2(0.35, [3, 4, 3, 3, 1]).to_string(), "a0.35 d3,4,3,3,1");
    }
}
