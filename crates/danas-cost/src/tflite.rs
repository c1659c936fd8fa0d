//! `.tflite` import: the flatbuffer is read by `danas-tflite` (code generated from
//! TFLite's schema) and turned into the layer-graph IR the cost model plans: tensors
//! (shape, type, constness, quantisation), operators (kind, inputs, outputs, the few
//! options the cost model needs) of subgraph 0.

use std::path::Path;

use danas_core::{Activation, DType, Graph, Op, OpKind, Padding, Tensor, TensorRole};
use danas_tflite::{ElemType, Fused, Model, OpDef, TfliteError};

use crate::CostError;

/// An imported `.tflite` model.
#[derive(Debug, Clone, PartialEq)]
pub struct TfliteModel {
    /// The model as layer-graph IR.
    pub graph: Graph,
    /// Size of the file in bytes (the exact model flash size).
    pub file_bytes: u64,
}

fn dtype(t: ElemType) -> DType {
    match t {
        ElemType::F32 => DType::F32,
        ElemType::I8 => DType::I8,
        ElemType::I32 => DType::I32,
        ElemType::Other(code) => match code {
            1 => DType::F16,
            3 => DType::U8,
            4 => DType::I64,
            6 => DType::Bool,
            7 => DType::I16,
            10 => DType::F64,
            8 | 12 => DType::Other(8),
            11 => DType::Other(16),
            15 => DType::Other(4),
            16 => DType::Other(2),
            _ => DType::Other(1),
        },
    }
}

fn activation(a: Fused) -> Activation {
    match a {
        Fused::Relu => Activation::Relu,
        Fused::Relu6 => Activation::Relu6,
        _ => Activation::None,
    }
}

fn padding(same: bool) -> Padding {
    if same { Padding::Same } else { Padding::Valid }
}

fn stride(s: (i32, i32)) -> (u32, u32) {
    (s.0.max(1) as u32, s.1.max(1) as u32)
}

/// The layer-graph IR of a TFLite model (subgraph 0).
///
/// # Errors
/// [`CostError::InvalidTflite`] when an operator references a tensor that is not there.
pub fn graph_of(model: &Model, origin: &str) -> Result<Graph, CostError> {
    let bad = |reason: String| CostError::InvalidTflite { origin: origin.to_string(), reason };
    let mut g = Graph::default();
    for t in &model.tensors {
        let shape: Vec<usize> = t.shape.iter().map(|&d| d.max(0) as usize).collect();
        let constant = !t.is_variable && t.data.as_ref().is_some_and(|d| !d.is_empty());
        g.tensors.push(Tensor {
            name: t.name.clone(),
            shape,
            dtype: dtype(t.ty),
            role: if constant { TensorRole::Constant } else { TensorRole::Activation },
            quant_params: t.quant.as_ref().map_or(0, |q| q.scale.len()),
        });
    }
    let n = g.tensors.len();
    let ids = |v: &[i32], what: &str| -> Result<Vec<usize>, CostError> {
        let mut out = Vec::with_capacity(v.len());
        for &id in v {
            if id < 0 {
                continue; // optional input left out
            }
            let id = id as usize;
            if id >= n {
                return Err(bad(format!("{what} references tensor {id}, but the subgraph has {n} tensors")));
            }
            out.push(id);
        }
        Ok(out)
    };
    g.inputs = ids(&model.inputs, "SubGraph.inputs")?;
    g.outputs = ids(&model.outputs, "SubGraph.outputs")?;
    for (i, o) in model.operators.iter().enumerate() {
        let what = format!("operator {i}");
        let inputs = ids(&o.inputs, &what)?;
        let outputs = ids(&o.outputs, &what)?;
        let kernel = match inputs.get(1).map(|&w| &g.tensors[w].shape[..]) {
            Some([_, kh, kw, _]) => (*kh as u32, *kw as u32),
            _ => (1, 1),
        };
        let in_ch = inputs.first().and_then(|&x| g.tensors[x].shape.last().copied()).unwrap_or(1) as u32;
        let kind = match &o.op {
            OpDef::Conv2d { same, stride: s, act } => OpKind::Conv2d {
                kernel,
                stride: stride(*s),
                groups: 1,
                padding: padding(*same),
                activation: activation(*act),
            },
            OpDef::DepthwiseConv2d { same, stride: s, act, .. } => OpKind::Conv2d {
                kernel,
                stride: stride(*s),
                groups: in_ch,
                padding: padding(*same),
                activation: activation(*act),
            },
            OpDef::Add { act } => OpKind::Add { activation: activation(*act) },
            OpDef::Pool2d { max, same, stride: s, filter, .. } => {
                let (kernel, stride, padding) = (stride(*filter), stride(*s), padding(*same));
                if *max {
                    OpKind::MaxPool2d { kernel, stride, padding }
                } else {
                    OpKind::AvgPool2d { kernel, stride, padding }
                }
            }
            OpDef::FullyConnected { act } => OpKind::FullyConnected { activation: activation(*act) },
            OpDef::Softmax { .. } => OpKind::Softmax,
            OpDef::Mean { .. } => OpKind::Mean,
            other => OpKind::Other { name: other.name() },
        };
        // Constant inputs of conv / FC are their weights (1) and bias (2).
        if matches!(kind, OpKind::Conv2d { .. } | OpKind::FullyConnected { .. }) {
            for (k, &id) in inputs.iter().enumerate().skip(1).take(2) {
                if g.tensors[id].role == TensorRole::Constant {
                    g.tensors[id].role = if k == 1 { TensorRole::Weight } else { TensorRole::Bias };
                }
            }
        }
        let op_name = outputs.first().map_or_else(|| format!("op{i}"), |&y| g.tensors[y].name.clone());
        g.ops.push(Op { name: format!("{i}:{}:{op_name}", o.op.name()), kind, inputs, outputs });
    }
    Ok(g)
}

/// Reads a TFLite flatbuffer from memory. `origin` names it in errors.
///
/// # Errors
/// [`CostError::InvalidTflite`] for truncated, corrupt or non-TFLite data (never panics).
pub fn read_tflite(bytes: &[u8], origin: &str) -> Result<TfliteModel, CostError> {
    let model = Model::from_bytes(bytes, origin).map_err(|e| match e {
        TfliteError::Invalid { origin, reason } => CostError::InvalidTflite { origin, reason },
        other => CostError::InvalidTflite { origin: origin.to_string(), reason: other.to_string() },
    })?;
    Ok(TfliteModel { graph: graph_of(&model, origin)?, file_bytes: bytes.len() as u64 })
}

/// Reads a `.tflite` file.
///
/// # Errors
/// [`CostError::Io`] or [`CostError::InvalidTflite`].
pub fn read_tflite_file(path: &Path) -> Result<TfliteModel, CostError> {
    let bytes = std::fs::read(path).map_err(|source| CostError::Io { path: path.to_path_buf(), source })?;
    read_tflite(&bytes, &path.display().to_string())
}
