//! The layer-graph IR: tensors with concrete shapes and ops in execution order.
//!
//! It is deliberately close to a TFLite flatbuffer (NHWC activations, batch 1,
//! constants as tensors), so that a model derived from a [`Blueprint`] and a model
//! imported from a `.tflite` file are estimated by the same code.

use serde::{Deserialize, Serialize};

use crate::{Blueprint, ConvLayer, Precision};

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DType {
    /// 8-bit signed integer.
    I8,
    /// 8-bit unsigned integer.
    U8,
    /// 16-bit signed integer.
    I16,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer.
    I64,
    /// IEEE half precision.
    F16,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
    /// Boolean (one byte).
    Bool,
    /// Any other type, with its byte width.
    Other(u8),
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::I16 | DType::F16 => 2,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
            DType::Other(n) => usize::from(n),
        }
    }
}

/// What a tensor holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TensorRole {
    /// A run-time value (input, activation, output): lives in RAM.
    Activation,
    /// Constant weights of a conv / FC: live in flash.
    Weight,
    /// Constant biases: live in flash.
    Bias,
    /// Any other constant (shapes, axes, lookup tables): lives in flash.
    Constant,
}

/// One tensor of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    /// A readable name.
    pub name: String,
    /// Shape; activations are NHWC with batch 1, conv weights are `[out, kh, kw, in/groups]`
    /// (TFLite layout; depthwise `[1, kh, kw, channels]`).
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// What it holds.
    pub role: TensorRole,
    /// Number of quantisation (scale, zero point) pairs: 0 for float tensors,
    /// 1 per tensor, or one per output channel.
    pub quant_params: usize,
}

impl Tensor {
    /// Number of elements.
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        self.elements() * self.dtype.size()
    }
    /// Whether the tensor is constant (lives in flash, not in the arena).
    pub fn is_constant(&self) -> bool {
        !matches!(self.role, TensorRole::Activation)
    }
}

/// Padding of a convolution or pooling op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Padding {
    /// TensorFlow SAME: `out = ceil(n / s)`, extra padding after.
    Same,
    /// No padding: `out = ceil((n - k + 1) / s)`.
    Valid,
}

/// A fused activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Activation {
    /// Linear.
    #[default]
    None,
    /// max(x, 0).
    Relu,
    /// min(max(x, 0), 6).
    Relu6,
}

/// The kind of an op, with its attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum OpKind {
    /// 2-D convolution (`groups == in_channels` is depthwise).
    /// Inputs: activation, weights, optional bias.
    Conv2d {
        /// (height, width) of the kernel.
        kernel: (u32, u32),
        /// (height, width) stride.
        stride: (u32, u32),
        /// Channel groups.
        groups: u32,
        /// Padding mode.
        padding: Padding,
        /// Fused activation.
        activation: Activation,
    },
    /// Element-wise addition of two activations (residual add).
    Add {
        /// Fused activation.
        activation: Activation,
    },
    /// Global average pooling over height and width (TFLite `MEAN` over axes 1, 2).
    GlobalAvgPool,
    /// Average pooling.
    AvgPool2d {
        /// Window (height, width).
        kernel: (u32, u32),
        /// Stride (height, width).
        stride: (u32, u32),
        /// Padding mode.
        padding: Padding,
    },
    /// Max pooling.
    MaxPool2d {
        /// Window (height, width).
        kernel: (u32, u32),
        /// Stride (height, width).
        stride: (u32, u32),
        /// Padding mode.
        padding: Padding,
    },
    /// Mean over arbitrary axes (not the global pool).
    Mean,
    /// Fully connected layer. Inputs: activation, weights `[out, in]`, optional bias.
    FullyConnected {
        /// Fused activation.
        activation: Activation,
    },
    /// Softmax over the last axis.
    Softmax,
    /// Any other op, by its runtime name (e.g. `RESHAPE`). The memory plan still
    /// covers it; compute estimates list it as not estimated.
    Other {
        /// The op's name as the runtime spells it.
        name: String,
    },
}

impl OpKind {
    /// The TFLite builtin name of this op kind.
    pub fn name(&self) -> &str {
        match self {
            OpKind::Conv2d { groups, .. } if *groups > 1 => "DEPTHWISE_CONV_2D",
            OpKind::Conv2d { .. } => "CONV_2D",
            OpKind::Add { .. } => "ADD",
            OpKind::GlobalAvgPool | OpKind::Mean => "MEAN",
            OpKind::AvgPool2d { .. } => "AVERAGE_POOL_2D",
            OpKind::MaxPool2d { .. } => "MAX_POOL_2D",
            OpKind::FullyConnected { .. } => "FULLY_CONNECTED",
            OpKind::Softmax => "SOFTMAX",
            OpKind::Other { name } => name,
        }
    }
}

/// One op: its kind, and its input and output tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// A readable name, e.g. `b3.dw` (the blueprint layer it comes from).
    pub name: String,
    /// Kind and attributes.
    pub kind: OpKind,
    /// Input tensors, in the runtime's order (activation first, then constants).
    pub inputs: Vec<TensorId>,
    /// Output tensors.
    pub outputs: Vec<TensorId>,
}

/// A model as a list of tensors and ops in execution order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Graph {
    /// All tensors; the index is the [`TensorId`]. The order matters for the
    /// TFLM memory planner's tie rule.
    pub tensors: Vec<Tensor>,
    /// Ops in execution order.
    pub ops: Vec<Op>,
    /// Graph inputs.
    pub inputs: Vec<TensorId>,
    /// Graph outputs.
    pub outputs: Vec<TensorId>,
}

impl Graph {
    /// Adds a tensor and returns its id.
    pub fn add_tensor(&mut self, t: Tensor) -> TensorId {
        self.tensors.push(t);
        self.tensors.len() - 1
    }

    /// Number of constant elements (weights, biases, other constants).
    pub fn constant_elements(&self) -> u64 {
        self.tensors.iter().filter(|t| t.is_constant()).map(|t| t.elements() as u64).sum()
    }

    /// Number of weight and bias elements: the deployable parameter count.
    pub fn param_count(&self) -> u64 {
        self.tensors
            .iter()
            .filter(|t| matches!(t.role, TensorRole::Weight | TensorRole::Bias))
            .map(|t| t.elements() as u64)
            .sum()
    }

    /// Checks that every tensor id referenced by an op, input or output exists.
    pub fn check_ids(&self) -> Result<(), String> {
        let n = self.tensors.len();
        let bad = |id: &TensorId| *id >= n;
        for (i, op) in self.ops.iter().enumerate() {
            if let Some(id) = op.inputs.iter().chain(&op.outputs).find(|id| bad(id)) {
                return Err(format!("op {i} ({}) references tensor {id}, but the graph has {n} tensors", op.name));
            }
        }
        if let Some(id) = self.inputs.iter().chain(&self.outputs).find(|id| bad(id)) {
            return Err(format!("graph input/output references tensor {id}, but the graph has {n} tensors"));
        }
        Ok(())
    }
}

/// TensorFlow SAME padding along one axis: returns (output size, padding before,
/// padding after) for input size `n`, kernel `k` and stride `s`.
///
/// ```
/// // stride 2, kernel 3, even input: pad 0 before and 1 after
/// assert_eq!(danas_core::same_padding(96, 3, 2), (48, 0, 1));
/// assert_eq!(danas_core::same_padding(7, 3, 1), (7, 1, 1));
/// ```
pub fn same_padding(n: u32, k: u32, s: u32) -> (u32, u32, u32) {
    let s = s.max(1);
    let out = n.div_ceil(s);
    let total = ((out.saturating_sub(1)) * s + k).saturating_sub(n);
    (out, total / 2, total - total / 2)
}

impl Blueprint {
    /// Lowers the blueprint to the layer-graph IR of the deployed model at `precision`:
    /// fused conv + ReLU6 (BatchNorm folded), SAME padding, residual `ADD`s, `MEAN`
    /// global pooling, `FULLY_CONNECTED`, `SOFTMAX`.
    pub fn to_graph(&self, precision: Precision) -> Graph {
        let mut g = Graph::default();
        let act = precision.activation_dtype();
        let q = |n: usize| if precision.quantized() { n } else { 0 };
        let activation = |g: &mut Graph, name: String, shape: Vec<usize>| {
            g.add_tensor(Tensor { name, shape, dtype: act, role: TensorRole::Activation, quant_params: q(1) })
        };
        let nhwc = |hw: (u32, u32), c: u32| vec![1, hw.0 as usize, hw.1 as usize, c as usize];

        let (h, w, c) = self.data.input_hwc();
        let input = activation(&mut g, "input".into(), nhwc((h, w), c));
        g.inputs.push(input);

        let conv = |g: &mut Graph, name: &str, layer: &ConvLayer, x: TensorId| -> TensorId {
            let depthwise = layer.is_depthwise();
            let k = layer.kernel as usize;
            let wshape = if depthwise {
                vec![1, k, k, layer.out_ch as usize]
            } else {
                vec![layer.out_ch as usize, k, k, (layer.in_ch / layer.groups) as usize]
            };
            let wt = g.add_tensor(Tensor {
                name: format!("{name}/weights"),
                shape: wshape,
                dtype: precision.weight_dtype(),
                role: TensorRole::Weight,
                quant_params: q(layer.out_ch as usize),
            });
            let bt = g.add_tensor(Tensor {
                name: format!("{name}/bias"),
                shape: vec![layer.out_ch as usize],
                dtype: precision.bias_dtype(),
                role: TensorRole::Bias,
                quant_params: q(layer.out_ch as usize),
            });
            let y = activation(g, name.to_string(), nhwc(layer.out_hw, layer.out_ch));
            g.ops.push(Op {
                name: name.to_string(),
                kind: OpKind::Conv2d {
                    kernel: (layer.kernel, layer.kernel),
                    stride: (layer.stride, layer.stride),
                    groups: layer.groups,
                    padding: Padding::Same,
                    activation: if layer.relu6 { Activation::Relu6 } else { Activation::None },
                },
                inputs: vec![x, wt, bt],
                outputs: vec![y],
            });
            y
        };

        let mut x = conv(&mut g, "stem", &self.stem, input);
        for (i, b) in self.blocks.iter().enumerate() {
            let block_in = x;
            if let Some(e) = b.expand() {
                x = conv(&mut g, &format!("b{i}.expand"), &e, x);
            }
            x = conv(&mut g, &format!("b{i}.dw"), &b.depthwise(), x);
            x = conv(&mut g, &format!("b{i}.project"), &b.project(), x);
            if b.residual {
                let y = activation(&mut g, format!("b{i}.add"), nhwc(b.out_hw, b.out_ch));
                g.ops.push(Op {
                    name: format!("b{i}.add"),
                    kind: OpKind::Add { activation: Activation::None },
                    inputs: vec![block_in, x],
                    outputs: vec![y],
                });
                x = y;
            }
        }
        if let Some(l) = &self.last_conv {
            x = conv(&mut g, "last_conv", l, x);
        }
        let feat = self.head.features as usize;
        let classes = self.head.classes as usize;
        let pooled = activation(&mut g, "pool".into(), vec![1, feat]);
        g.ops.push(Op { name: "pool".into(), kind: OpKind::GlobalAvgPool, inputs: vec![x], outputs: vec![pooled] });
        let wt = g.add_tensor(Tensor {
            name: "fc/weights".into(),
            shape: vec![classes, feat],
            dtype: precision.weight_dtype(),
            role: TensorRole::Weight,
            quant_params: q(1),
        });
        let bt = g.add_tensor(Tensor {
            name: "fc/bias".into(),
            shape: vec![classes],
            dtype: precision.bias_dtype(),
            role: TensorRole::Bias,
            quant_params: q(1),
        });
        let logits = activation(&mut g, "fc".into(), vec![1, classes]);
        g.ops.push(Op {
            name: "fc".into(),
            kind: OpKind::FullyConnected { activation: Activation::None },
            inputs: vec![pooled, wt, bt],
            outputs: vec![logits],
        });
        let probs = activation(&mut g, "softmax".into(), vec![1, classes]);
        g.ops.push(Op { name: "softmax".into(), kind: OpKind::Softmax, inputs: vec![logits], outputs: vec![probs] });
        g.outputs.push(probs);
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Arch, Candidate, Color, DataConfig};

    #[test]
    fn graph_params_equal_blueprint_params() {
        for (alpha, depths) in [(0.35, [3, 4, 3, 3, 1]), (1.0, [1, 0, 0, 0, 0]), (0.25, [3, 2, 1, 0, 0])] {
            let c = Candidate::new(DataConfig::new(64, Color::Grayscale), Arch::mobilenet_v2(alpha, depths));
            let bp = c.blueprint(2).map_err(|e| e.to_string());
            let Ok(bp) = bp else { panic!("{bp:?}") };
            let g = bp.to_graph(Precision::Int8);
            assert_eq!(g.param_count(), bp.param_count());
            assert!(g.check_ids().is_ok());
            assert_eq!(g.tensors[g.inputs[0]].shape, vec![1, 64, 64, 1]);
            assert_eq!(g.tensors[g.outputs[0]].shape, vec![1, 2]);
            let adds = g.ops.iter().filter(|o| matches!(o.kind, OpKind::Add { .. })).count();
            assert_eq!(adds, bp.blocks.iter().filter(|b| b.residual).count());
        }
    }

    #[test]
    fn precision_byte_widths() {
        let c = Candidate::new(DataConfig::new(32, Color::Rgb), Arch::full(0.5));
        let Ok(bp) = c.blueprint(10) else { panic!("blueprint") };
        let i8g = bp.to_graph(Precision::Int8);
        let f32g = bp.to_graph(Precision::F32);
        let bytes = |g: &Graph| g.tensors.iter().map(Tensor::bytes).sum::<usize>();
        assert!(bytes(&f32g) > 3 * bytes(&i8g));
        assert_eq!(i8g.tensors[0].dtype, DType::I8);
        assert_eq!(f32g.tensors[0].quant_params, 0);
    }
}
