//! A small, bounds-checked reader of the TFLite flatbuffer format, enough to rebuild
//! the layer-graph IR: tensors (shape, type, constness, quantisation), operators
//! (code, inputs, outputs, the few options the cost model needs) of subgraph 0.

use std::path::Path;

use danas_core::{Activation, DType, Graph, Op, OpKind, Padding, Tensor, TensorRole};

use crate::CostError;

/// An imported `.tflite` model.
#[derive(Debug, Clone, PartialEq)]
pub struct TfliteModel {
    /// The model as layer-graph IR.
    pub graph: Graph,
    /// Size of the file in bytes (the exact model flash size).
    pub file_bytes: u64,
}

struct Fb<'a> {
    b: &'a [u8],
    origin: &'a str,
}

type R<T> = Result<T, CostError>;

#[derive(Clone, Copy)]
struct Table {
    pos: usize,
    vt: usize,
    vt_len: usize,
}

impl<'a> Fb<'a> {
    fn err<T>(&self, reason: impl Into<String>) -> R<T> {
        Err(CostError::InvalidTflite { origin: self.origin.to_string(), reason: reason.into() })
    }
    fn bytes(&self, pos: usize, n: usize, what: &str) -> R<&'a [u8]> {
        match pos.checked_add(n).and_then(|end| self.b.get(pos..end)) {
            Some(s) => Ok(s),
            None => self.err(format!("{what} at byte {pos} runs past the end of the file ({} bytes)", self.b.len())),
        }
    }
    fn u8(&self, pos: usize, what: &str) -> R<u8> {
        Ok(self.bytes(pos, 1, what)?[0])
    }
    fn u16(&self, pos: usize, what: &str) -> R<u16> {
        let s = self.bytes(pos, 2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&self, pos: usize, what: &str) -> R<u32> {
        let s = self.bytes(pos, 4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn i32(&self, pos: usize, what: &str) -> R<i32> {
        Ok(self.u32(pos, what)? as i32)
    }
    fn table(&self, pos: usize, what: &str) -> R<Table> {
        let soff = self.i32(pos, what)? as i64;
        let vt = pos as i64 - soff;
        if vt < 0 || vt as usize >= self.b.len() {
            return self.err(format!("{what}: vtable offset out of range"));
        }
        let vt = vt as usize;
        let vt_len = usize::from(self.u16(vt, what)?);
        if vt_len < 4 || vt_len % 2 != 0 {
            return self.err(format!("{what}: bad vtable size {vt_len}"));
        }
        self.bytes(vt, vt_len, what)?;
        Ok(Table { pos, vt, vt_len })
    }
    /// Absolute position of field `idx` or None when absent.
    fn field(&self, t: Table, idx: usize, what: &str) -> R<Option<usize>> {
        let slot = 4 + 2 * idx;
        if slot + 2 > t.vt_len {
            return Ok(None);
        }
        let off = usize::from(self.u16(t.vt + slot, what)?);
        Ok(if off == 0 { None } else { Some(t.pos + off) })
    }
    fn deref(&self, pos: usize, what: &str) -> R<usize> {
        let off = self.u32(pos, what)? as usize;
        match pos.checked_add(off) {
            Some(p) if p < self.b.len() => Ok(p),
            _ => self.err(format!("{what}: offset points past the end of the file")),
        }
    }
    fn sub_table(&self, t: Table, idx: usize, what: &str) -> R<Option<Table>> {
        match self.field(t, idx, what)? {
            None => Ok(None),
            Some(p) => {
                let q = self.deref(p, what)?;
                Ok(Some(self.table(q, what)?))
            }
        }
    }
    /// (start of elements, length) of a vector field.
    fn vector(&self, t: Table, idx: usize, elem: usize, what: &str) -> R<Option<(usize, usize)>> {
        match self.field(t, idx, what)? {
            None => Ok(None),
            Some(p) => {
                let v = self.deref(p, what)?;
                let n = self.u32(v, what)? as usize;
                let bytes = n.checked_mul(elem).map_or(usize::MAX, |x| x);
                self.bytes(v + 4, bytes, what)?;
                Ok(Some((v + 4, n)))
            }
        }
    }
    fn i32_vec(&self, t: Table, idx: usize, what: &str) -> R<Vec<i32>> {
        let Some((s, n)) = self.vector(t, idx, 4, what)? else { return Ok(Vec::new()) };
        (0..n).map(|i| self.i32(s + 4 * i, what)).collect()
    }
    fn tables(&self, t: Table, idx: usize, what: &str) -> R<Vec<Table>> {
        let Some((s, n)) = self.vector(t, idx, 4, what)? else { return Ok(Vec::new()) };
        (0..n)
            .map(|i| {
                let p = self.deref(s + 4 * i, what)?;
                self.table(p, what)
            })
            .collect()
    }
    fn string(&self, t: Table, idx: usize, what: &str) -> R<String> {
        let Some((s, n)) = self.vector(t, idx, 1, what)? else { return Ok(String::new()) };
        Ok(String::from_utf8_lossy(self.bytes(s, n, what)?).into_owned())
    }
    fn scalar_u8(&self, t: Table, idx: usize, default: u8, what: &str) -> R<u8> {
        match self.field(t, idx, what)? {
            None => Ok(default),
            Some(p) => self.u8(p, what),
        }
    }
    fn scalar_i32(&self, t: Table, idx: usize, default: i32, what: &str) -> R<i32> {
        match self.field(t, idx, what)? {
            None => Ok(default),
            Some(p) => self.i32(p, what),
        }
    }
}

const BUILTIN_NAMES: [&str; 127] = [
    "ADD",
    "AVERAGE_POOL_2D",
    "CONCATENATION",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "DEPTH_TO_SPACE",
    "DEQUANTIZE",
    "EMBEDDING_LOOKUP",
    "FLOOR",
    "FULLY_CONNECTED",
    "HASHTABLE_LOOKUP",
    "L2_NORMALIZATION",
    "L2_POOL_2D",
    "LOCAL_RESPONSE_NORMALIZATION",
    "LOGISTIC",
    "LSH_PROJECTION",
    "LSTM",
    "MAX_POOL_2D",
    "MUL",
    "RELU",
    "RELU_N1_TO_1",
    "RELU6",
    "RESHAPE",
    "RESIZE_BILINEAR",
    "RNN",
    "SOFTMAX",
    "SPACE_TO_DEPTH",
    "SVDF",
    "TANH",
    "CONCAT_EMBEDDINGS",
    "SKIP_GRAM",
    "CALL",
    "CUSTOM",
    "EMBEDDING_LOOKUP_SPARSE",
    "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN",
    "GATHER",
    "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND",
    "TRANSPOSE",
    "MEAN",
    "SUB",
    "DIV",
    "SQUEEZE",
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "STRIDED_SLICE",
    "BIDIRECTIONAL_SEQUENCE_RNN",
    "EXP",
    "TOPK_V2",
    "SPLIT",
    "LOG_SOFTMAX",
    "DELEGATE",
    "BIDIRECTIONAL_SEQUENCE_LSTM",
    "CAST",
    "PRELU",
    "MAXIMUM",
    "ARG_MAX",
    "MINIMUM",
    "LESS",
    "NEG",
    "PADV2",
    "GREATER",
    "GREATER_EQUAL",
    "LESS_EQUAL",
    "SELECT",
    "SLICE",
    "SIN",
    "TRANSPOSE_CONV",
    "SPARSE_TO_DENSE",
    "TILE",
    "EXPAND_DIMS",
    "EQUAL",
    "NOT_EQUAL",
    "LOG",
    "SUM",
    "SQRT",
    "RSQRT",
    "SHAPE",
    "POW",
    "ARG_MIN",
    "FAKE_QUANT",
    "REDUCE_PROD",
    "REDUCE_MAX",
    "PACK",
    "LOGICAL_OR",
    "ONE_HOT",
    "LOGICAL_AND",
    "LOGICAL_NOT",
    "UNPACK",
    "REDUCE_MIN",
    "FLOOR_DIV",
    "REDUCE_ANY",
    "SQUARE",
    "ZEROS_LIKE",
    "FILL",
    "FLOOR_MOD",
    "RANGE",
    "RESIZE_NEAREST_NEIGHBOR",
    "LEAKY_RELU",
    "SQUARED_DIFFERENCE",
    "MIRROR_PAD",
    "ABS",
    "SPLIT_V",
    "UNIQUE",
    "CEIL",
    "REVERSE_V2",
    "ADD_N",
    "GATHER_ND",
    "COS",
    "WHERE",
    "RANK",
    "ELU",
    "REVERSE_SEQUENCE",
    "MATRIX_DIAG",
    "QUANTIZE",
    "MATRIX_SET_DIAG",
    "ROUND",
    "HARD_SWISH",
    "IF",
    "WHILE",
    "NON_MAX_SUPPRESSION_V4",
    "NON_MAX_SUPPRESSION_V5",
    "SCATTER_ND",
    "SELECT_V2",
    "DENSIFY",
    "SEGMENT_SUM",
    "BATCH_MATMUL",
];

fn builtin_name(code: i32) -> String {
    usize::try_from(code)
        .ok()
        .and_then(|c| BUILTIN_NAMES.get(c))
        .map_or_else(|| format!("BUILTIN_{code}"), |s| s.to_string())
}

fn dtype(code: u8) -> DType {
    match code {
        0 => DType::F32,
        1 => DType::F16,
        2 => DType::I32,
        3 => DType::U8,
        4 => DType::I64,
        6 => DType::Bool,
        7 => DType::I16,
        9 => DType::I8,
        10 => DType::F64,
        8 | 12 => DType::Other(8),
        11 => DType::Other(16),
        15 => DType::Other(4),
        16 => DType::Other(2),
        _ => DType::Other(1),
    }
}

fn activation(code: u8) -> Activation {
    match code {
        1 => Activation::Relu,
        3 => Activation::Relu6,
        _ => Activation::None,
    }
}

fn padding(code: u8) -> Padding {
    if code == 1 { Padding::Valid } else { Padding::Same }
}

/// Reads a TFLite flatbuffer from memory. `origin` names it in errors.
///
/// # Errors
/// [`CostError::InvalidTflite`] for truncated, corrupt or non-TFLite data (never panics).
pub fn read_tflite(bytes: &[u8], origin: &str) -> Result<TfliteModel, CostError> {
    let fb = Fb { b: bytes, origin };
    if bytes.len() < 8 {
        return fb.err(format!("only {} bytes; too short for a flatbuffer", bytes.len()));
    }
    if &bytes[4..8] != b"TFL3" {
        return fb.err("missing the TFL3 file identifier at bytes 4..8");
    }
    let root = fb.deref(0, "Model")?;
    let model = fb.table(root, "Model")?;
    // Buffers: which hold data (constants).
    let buffers = fb.tables(model, 4, "Model.buffers")?;
    let mut buffer_has_data = Vec::with_capacity(buffers.len());
    for b in &buffers {
        let data = fb.vector(*b, 0, 1, "Buffer.data")?.is_some_and(|(_, n)| n > 0);
        // Large models keep data outside the flatbuffer (offset/size fields).
        let ext = match fb.field(*b, 2, "Buffer.size")? {
            Some(p) => fb.u32(p, "Buffer.size")? > 0,
            None => false,
        };
        buffer_has_data.push(data || ext);
    }
    let codes = fb.tables(model, 1, "Model.operator_codes")?;
    let mut code_names = Vec::with_capacity(codes.len());
    for c in &codes {
        let dep = i32::from(fb.scalar_u8(*c, 0, 0, "OperatorCode.deprecated_builtin_code")? as i8);
        let code = fb.scalar_i32(*c, 3, 0, "OperatorCode.builtin_code")?.max(dep);
        if code == 32 {
            let custom = fb.string(*c, 1, "OperatorCode.custom_code")?;
            code_names.push((code, format!("CUSTOM:{custom}")));
        } else {
            code_names.push((code, builtin_name(code)));
        }
    }
    let subgraphs = fb.tables(model, 2, "Model.subgraphs")?;
    let Some(&sg) = subgraphs.first() else { return fb.err("the model has no subgraph") };
    let tensors_t = fb.tables(sg, 0, "SubGraph.tensors")?;
    let mut g = Graph::default();
    for (i, t) in tensors_t.iter().enumerate() {
        let what = format!("tensor {i}");
        let shape_i = fb.i32_vec(*t, 0, &what)?;
        let mut shape = Vec::with_capacity(shape_i.len());
        for d in shape_i {
            match usize::try_from(d) {
                Ok(d) if d <= 1 << 28 => shape.push(d),
                _ => return fb.err(format!("{what}: invalid dimension {d}")),
            }
        }
        let ty = fb.scalar_u8(*t, 1, 0, &what)?;
        let buffer = fb.scalar_i32(*t, 2, 0, &what)? as u32 as usize;
        let name = fb.string(*t, 3, &what)?;
        let quant = match fb.sub_table(*t, 4, &what)? {
            Some(q) => fb.vector(q, 2, 4, &what)?.map_or(0, |(_, n)| n),
            None => 0,
        };
        let is_variable = fb.scalar_u8(*t, 5, 0, &what)? != 0;
        let constant = !is_variable && buffer_has_data.get(buffer).copied().unwrap_or(false);
        let elems = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if elems.is_none_or(|e| e > 1 << 31) {
            return fb.err(format!("{what}: shape {shape:?} is too large"));
        }
        g.tensors.push(Tensor {
            name,
            shape,
            dtype: dtype(ty),
            role: if constant { TensorRole::Constant } else { TensorRole::Activation },
            quant_params: quant,
        });
    }
    let n = g.tensors.len();
    let ids = |v: Vec<i32>, what: &str| -> R<Vec<usize>> {
        let mut out = Vec::with_capacity(v.len());
        for id in v {
            if id < 0 {
                continue; // optional input left out
            }
            let id = id as usize;
            if id >= n {
                return fb.err(format!("{what} references tensor {id}, but the subgraph has {n} tensors"));
            }
            out.push(id);
        }
        Ok(out)
    };
    g.inputs = ids(fb.i32_vec(sg, 1, "SubGraph.inputs")?, "SubGraph.inputs")?;
    g.outputs = ids(fb.i32_vec(sg, 2, "SubGraph.outputs")?, "SubGraph.outputs")?;
    let ops_t = fb.tables(sg, 3, "SubGraph.operators")?;
    for (i, o) in ops_t.iter().enumerate() {
        let what = format!("operator {i}");
        let opcode = fb.scalar_i32(*o, 0, 0, &what)? as u32 as usize;
        let Some((code, name)) = code_names.get(opcode).cloned() else {
            return fb.err(format!("{what}: opcode index {opcode} out of range ({} codes)", code_names.len()));
        };
        let inputs = ids(fb.i32_vec(*o, 1, &what)?, &what)?;
        let outputs = ids(fb.i32_vec(*o, 2, &what)?, &what)?;
        let opts = fb.sub_table(*o, 4, &what)?;
        let opt_u8 = |idx: usize, d: u8| -> R<u8> { opts.map_or(Ok(d), |t| fb.scalar_u8(t, idx, d, &what)) };
        let opt_i32 = |idx: usize, d: i32| -> R<i32> { opts.map_or(Ok(d), |t| fb.scalar_i32(t, idx, d, &what)) };
        let pos = |v: i32| v.max(1) as u32;
        let kernel_of = |w: Option<&usize>| -> (u32, u32) {
            match w.map(|&w| &g.tensors[w].shape[..]) {
                Some([_, kh, kw, _]) => (*kh as u32, *kw as u32),
                _ => (1, 1),
            }
        };
        let in_ch =
            |g: &Graph| -> u32 { inputs.first().and_then(|&x| g.tensors[x].shape.last().copied()).unwrap_or(1) as u32 };
        let kind = match code {
            3 => OpKind::Conv2d {
                kernel: kernel_of(inputs.get(1)),
                stride: (pos(opt_i32(2, 1)?), pos(opt_i32(1, 1)?)),
                groups: 1,
                padding: padding(opt_u8(0, 0)?),
                activation: activation(opt_u8(3, 0)?),
            },
            4 => OpKind::Conv2d {
                kernel: kernel_of(inputs.get(1)),
                stride: (pos(opt_i32(2, 1)?), pos(opt_i32(1, 1)?)),
                groups: in_ch(&g),
                padding: padding(opt_u8(0, 0)?),
                activation: activation(opt_u8(4, 0)?),
            },
            0 => OpKind::Add { activation: activation(opt_u8(0, 0)?) },
            1 | 17 => {
                let kernel = (pos(opt_i32(4, 1)?), pos(opt_i32(3, 1)?));
                let stride = (pos(opt_i32(2, 1)?), pos(opt_i32(1, 1)?));
                let padding = padding(opt_u8(0, 0)?);
                if code == 1 {
                    OpKind::AvgPool2d { kernel, stride, padding }
                } else {
                    OpKind::MaxPool2d { kernel, stride, padding }
                }
            }
            9 => OpKind::FullyConnected { activation: activation(opt_u8(0, 0)?) },
            25 => OpKind::Softmax,
            40 => OpKind::Mean,
            _ => OpKind::Other { name: name.clone() },
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
        g.ops.push(Op { name: format!("{i}:{name}:{op_name}"), kind, inputs, outputs });
    }
    Ok(TfliteModel { graph: g, file_bytes: bytes.len() as u64 })
}

/// Reads a `.tflite` file.
///
/// # Errors
/// [`CostError::Io`] or [`CostError::InvalidTflite`].
pub fn read_tflite_file(path: &Path) -> Result<TfliteModel, CostError> {
    let bytes = std::fs::read(path).map_err(|source| CostError::Io { path: path.to_path_buf(), source })?;
    read_tflite(&bytes, &path.display().to_string())
}
