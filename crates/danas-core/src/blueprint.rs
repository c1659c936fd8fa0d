use serde::{Deserialize, Serialize};

use crate::arch::{LastConv, MBV2_STAGES};
use crate::{Arch, Candidate, CoreError, DataConfig, make_divisible, same_padding};

/// One 2-D convolution of the blueprint, with its spatial sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvLayer {
    /// Input channels.
    pub in_ch: u32,
    /// Output channels.
    pub out_ch: u32,
    /// Square kernel side.
    pub kernel: u32,
    /// Stride (both axes).
    pub stride: u32,
    /// Groups: 1 for a dense conv, `in_ch` for a depthwise conv.
    pub groups: u32,
    /// Input (height, width).
    pub in_hw: (u32, u32),
    /// Output (height, width), TensorFlow SAME padding.
    pub out_hw: (u32, u32),
    /// Whether ReLU6 follows (fused); `false` for the linear projection.
    pub relu6: bool,
}

impl ConvLayer {
    fn new(in_ch: u32, out_ch: u32, kernel: u32, stride: u32, groups: u32, in_hw: (u32, u32), relu6: bool) -> Self {
        let out_hw = (same_padding(in_hw.0, kernel, stride).0, same_padding(in_hw.1, kernel, stride).0);
        Self { in_ch, out_ch, kernel, stride, groups, in_hw, out_hw, relu6 }
    }

    /// Whether this is a depthwise convolution.
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.in_ch
    }

    /// Weight elements (`k·k·in/groups·out`).
    pub fn weight_count(&self) -> u64 {
        u64::from(self.kernel) * u64::from(self.kernel) * u64::from(self.in_ch / self.groups) * u64::from(self.out_ch)
    }

    /// Multiply-accumulates: `H_out·W_out·C_out·k·k·C_in/groups`.
    pub fn macs(&self) -> u64 {
        u64::from(self.out_hw.0) * u64::from(self.out_hw.1) * self.weight_count()
    }
}

/// One inverted-residual block: `[1×1 expand + ReLU6] → k×k depthwise + ReLU6 → 1×1 project`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Stage index in [`MBV2_STAGES`] (0..7).
    pub stage: usize,
    /// Position inside the stage (0 = first block, which carries the stride).
    pub index: usize,
    /// Input channels.
    pub in_ch: u32,
    /// Expansion channels (`t · in_ch`), `None` when the block has no expand conv (block 0).
    pub expand_ch: Option<u32>,
    /// Output channels.
    pub out_ch: u32,
    /// Depthwise kernel side.
    pub kernel: u32,
    /// Depthwise stride.
    pub stride: u32,
    /// Input (height, width).
    pub in_hw: (u32, u32),
    /// Output (height, width).
    pub out_hw: (u32, u32),
    /// Whether the block input is added to its output (stride 1 and `in_ch == out_ch`).
    pub residual: bool,
}

impl Block {
    /// Channels seen by the depthwise conv.
    pub fn mid_ch(&self) -> u32 {
        self.expand_ch.unwrap_or(self.in_ch)
    }
    /// The optional expand conv.
    pub fn expand(&self) -> Option<ConvLayer> {
        self.expand_ch.map(|e| ConvLayer::new(self.in_ch, e, 1, 1, 1, self.in_hw, true))
    }
    /// The depthwise conv.
    pub fn depthwise(&self) -> ConvLayer {
        let m = self.mid_ch();
        ConvLayer::new(m, m, self.kernel, self.stride, m, self.in_hw, true)
    }
    /// The linear 1×1 projection.
    pub fn project(&self) -> ConvLayer {
        ConvLayer::new(self.mid_ch(), self.out_ch, 1, 1, 1, self.out_hw, false)
    }
    /// The block's convolutions in execution order.
    pub fn convs(&self) -> Vec<ConvLayer> {
        self.expand().into_iter().chain([self.depthwise(), self.project()]).collect()
    }
    /// A readable name such as `block5` (global index) is given by the blueprint; this is
    /// the (stage, index) pair as `s3.1`.
    pub fn label(&self) -> String {
        format!("s{}.{}", self.stage + 1, self.index)
    }
}

/// The classifier head: global average pooling, a fully connected layer, softmax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Channels entering global pooling.
    pub features: u32,
    /// Number of classes.
    pub classes: u32,
}

/// The concrete per-layer description of a candidate: the single source of truth
/// that the cost model (through [`Blueprint::to_graph`]) and the trainer both read.
///
/// It follows the Keras MobileNetV2 conventions: `make_divisible(c·α)` channels,
/// expansion `t·C_in` unrounded, no expand conv in block 0, residual when stride 1
/// and channel counts agree, last conv 1280 channels for α ≤ 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blueprint {
    /// The data configuration it was built for.
    pub data: DataConfig,
    /// Stem conv: 3×3, stride 2.
    pub stem: ConvLayer,
    /// Inverted residual blocks in execution order.
    pub blocks: Vec<Block>,
    /// Optional final 1×1 conv.
    pub last_conv: Option<ConvLayer>,
    /// Classifier head.
    pub head: Head,
}

impl Blueprint {
    /// Builds the blueprint of `cand` for `classes` outputs.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] when the data configuration or architecture is
    /// invalid or `classes` is 0.
    pub fn new(cand: &Candidate, classes: u32) -> Result<Self, CoreError> {
        cand.data.validate()?;
        cand.arch.validate()?;
        if classes == 0 || classes > 100_000 {
            return Err(CoreError::field("classes", classes, "must be between 1 and 100000"));
        }
        let arch: &Arch = &cand.arch;
        let alpha = arch.alpha;
        let (h, w, c) = cand.data.input_hwc();
        let stem = ConvLayer::new(c, make_divisible(32.0 * alpha), 3, 2, 1, (h, w), true);
        let mut blocks = Vec::new();
        let mut in_ch = stem.out_ch;
        let mut hw = stem.out_hw;
        for (s, def) in MBV2_STAGES.iter().enumerate() {
            let knobs = arch.knobs(s);
            let out_ch = make_divisible(f64::from(def.channels) * alpha * knobs.width);
            let t = knobs.expansion.unwrap_or(def.expansion);
            let kernel = knobs.kernel.unwrap_or(3);
            for i in 0..arch.stage_depth(s) as usize {
                let stride = if i == 0 { def.stride } else { 1 };
                let out_hw = (same_padding(hw.0, kernel, stride).0, same_padding(hw.1, kernel, stride).0);
                let expand_ch = if s == 0 { None } else { Some(t * in_ch) };
                blocks.push(Block {
                    stage: s,
                    index: i,
                    in_ch,
                    expand_ch,
                    out_ch,
                    kernel,
                    stride,
                    in_hw: hw,
                    out_hw,
                    residual: stride == 1 && in_ch == out_ch,
                });
                in_ch = out_ch;
                hw = out_hw;
            }
        }
        let keras_last = if alpha > 1.0 { make_divisible(1280.0 * alpha) } else { 1280 };
        let last_ch = match arch.last_conv {
            LastConv::Auto => (arch.stage_depth(MBV2_STAGES.len() - 1) > 0).then_some(keras_last),
            LastConv::Always => Some(keras_last),
            LastConv::None => None,
            LastConv::Channels(n) => Some(n),
        };
        let last_conv = last_ch.map(|n| ConvLayer::new(in_ch, n, 1, 1, 1, hw, true));
        let features = last_ch.unwrap_or(in_ch);
        Ok(Self { data: cand.data, stem, blocks, last_conv, head: Head { features, classes } })
    }

    /// Every convolution in execution order, each with a stable name
    /// (`stem`, `b3.expand`, `b3.dw`, `b3.project`, `last_conv`).
    pub fn named_convs(&self) -> Vec<(String, ConvLayer)> {
        let mut v = vec![("stem".to_string(), self.stem)];
        for (i, b) in self.blocks.iter().enumerate() {
            if let Some(e) = b.expand() {
                v.push((format!("b{i}.expand"), e));
            }
            v.push((format!("b{i}.dw"), b.depthwise()));
            v.push((format!("b{i}.project"), b.project()));
        }
        if let Some(l) = self.last_conv {
            v.push(("last_conv".to_string(), l));
        }
        v
    }

    /// Deployable parameters with BatchNorm folded: every conv's weights plus one
    /// bias per output channel, and the classifier's weights and biases.
    pub fn param_count(&self) -> u64 {
        let convs: u64 = self.named_convs().iter().map(|(_, c)| c.weight_count() + u64::from(c.out_ch)).sum();
        convs + u64::from(self.head.features) * u64::from(self.head.classes) + u64::from(self.head.classes)
    }

    /// Multiply-accumulates of all convolutions and the classifier.
    pub fn macs(&self) -> u64 {
        let convs: u64 = self.named_convs().iter().map(|(_, c)| c.macs()).sum();
        convs + u64::from(self.head.features) * u64::from(self.head.classes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Color;

    fn bp(alpha: f64, depths: [u32; 5], res: u32, classes: u32) -> Blueprint {
        let c = Candidate::new(DataConfig::new(res, Color::Rgb), Arch::mobilenet_v2(alpha, depths));
        match c.blueprint(classes) {
            Ok(b) => b,
            Err(e) => panic!("blueprint failed: {e}"),
        }
    }

    /// TF-slim weights-only count: convs without biases, FC without bias.
    fn slim_weights(b: &Blueprint) -> u64 {
        b.named_convs().iter().map(|(_, c)| c.weight_count()).sum::<u64>()
            + u64::from(b.head.features) * u64::from(b.head.classes)
    }

    #[test]
    fn keras_channel_rules() {
        let b = bp(0.35, [3, 4, 3, 3, 1], 224, 1000);
        assert_eq!(b.stem.out_ch, 16);
        assert_eq!(b.blocks[0].out_ch, 8);
        assert!(!b.blocks[0].residual, "0.35: stem 16 != block0 8");
        assert_eq!(b.blocks[0].expand_ch, None);
        assert_eq!(b.blocks[1].expand_ch, Some(48));
        assert_eq!(b.last_conv.map(|l| l.out_ch), Some(1280));
        assert_eq!(b.blocks.len(), 17);

        let b = bp(0.25, [3, 4, 3, 3, 1], 224, 1000);
        assert_eq!(b.stem.out_ch, 8);
        assert_eq!(b.blocks[0].out_ch, 8);
        assert!(b.blocks[0].residual, "0.25: stem 8 == block0 8 gives a residual");

        let b = bp(1.4, [3, 4, 3, 3, 1], 224, 1000);
        assert_eq!(b.last_conv.map(|l| l.out_ch), Some(1792));
    }

    #[test]
    fn tf_slim_fixtures() {
        // TF-slim table, 1001 classes, weights only, MACs truncated to millions.
        let cases = [(1.0, 300, 3_471_040u64), (0.35, 59, 1_663_328), (0.5, 97, 1_950_416)];
        for (alpha, mmacs, weights) in cases {
            let b = bp(alpha, [3, 4, 3, 3, 1], 224, 1001);
            assert_eq!(slim_weights(&b), weights, "weights at alpha {alpha}");
            assert_eq!(b.macs() / 1_000_000, mmacs, "MACs at alpha {alpha}");
        }
        assert_eq!(slim_weights(&bp(1.4, [3, 4, 3, 3, 1], 224, 1001)), 6_061_632);
    }

    #[test]
    fn keras_summary_total() {
        // Keras: weights + BN (4 per channel) + FC bias = 3,538,984 for alpha 1, 1000 classes.
        let b = bp(1.0, [3, 4, 3, 3, 1], 224, 1000);
        let bn: u64 = b.named_convs().iter().map(|(_, c)| 4 * u64::from(c.out_ch)).sum();
        assert_eq!(slim_weights(&b) + bn + 1000, 3_538_984);
    }

    #[test]
    fn truncated_depths_and_last_conv() {
        let b = bp(0.5, [2, 0, 0, 0, 0], 96, 2);
        assert_eq!(b.blocks.len(), 1 + 2 + 2);
        assert_eq!(b.last_conv, None, "paper rule: no last conv without stage 7");
        assert_eq!(b.head.features, make_divisible(32.0 * 0.5));
        // spatial sizes: 96 -> 48 (stem) -> 48 -> 24 -> 12
        assert_eq!(b.blocks.last().map(|x| x.out_hw), Some((12, 12)));
    }

    #[test]
    fn odd_resolution_same_padding() {
        let b = bp(0.35, [3, 4, 3, 3, 1], 33, 2);
        assert_eq!(b.stem.out_hw, (17, 17));
        assert_eq!(b.blocks.last().map(|x| x.out_hw), Some((2, 2)));
    }
}
