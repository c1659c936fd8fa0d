//! A TFLite model held in plain Rust types, read from and written to the flatbuffer
//! format through the code `flatc` generated from TFLite's `schema.fbs`.

use flatbuffers::{FlatBufferBuilder, WIPOffset};

use crate::TfliteError;
use crate::schema::tflite as fb;

/// Element type of a tensor (the subset of TFLite's `TensorType` danas reads and writes;
/// any other type is kept by its schema code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    /// 32-bit float.
    F32,
    /// 8-bit signed integer.
    I8,
    /// 32-bit signed integer.
    I32,
    /// Any other TFLite tensor type, by its schema code.
    Other(i8),
}

impl ElemType {
    fn from_fb(t: fb::TensorType) -> Self {
        match t {
            fb::TensorType::FLOAT32 => ElemType::F32,
            fb::TensorType::INT8 => ElemType::I8,
            fb::TensorType::INT32 => ElemType::I32,
            other => ElemType::Other(other.0),
        }
    }
    fn to_fb(self) -> fb::TensorType {
        match self {
            ElemType::F32 => fb::TensorType::FLOAT32,
            ElemType::I8 => fb::TensorType::INT8,
            ElemType::I32 => fb::TensorType::INT32,
            ElemType::Other(c) => fb::TensorType(c),
        }
    }
    /// The schema's numeric code of this type.
    pub fn code(self) -> i8 {
        self.to_fb().0
    }
}

/// Affine quantisation: `real = scale[c] · (q − zero_point[c])`, one entry per tensor
/// or one per slice along `dim`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Quant {
    /// Scales.
    pub scale: Vec<f32>,
    /// Zero points (same length as `scale`).
    pub zero_point: Vec<i64>,
    /// The quantised dimension when there is more than one scale.
    pub dim: i32,
}

impl Quant {
    /// One scale and zero point for the whole tensor.
    pub fn per_tensor(scale: f32, zero_point: i64) -> Self {
        Self { scale: vec![scale], zero_point: vec![zero_point], dim: 0 }
    }
}

/// One tensor of the subgraph.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDef {
    /// Name.
    pub name: String,
    /// Shape.
    pub shape: Vec<i32>,
    /// Element type.
    pub ty: ElemType,
    /// Constant data (little-endian bytes), `None` for activations.
    pub data: Option<Vec<u8>>,
    /// Quantisation, if any.
    pub quant: Option<Quant>,
    /// Whether the runtime treats it as a variable (state) tensor.
    pub is_variable: bool,
}

impl TensorDef {
    /// Number of elements.
    pub fn elements(&self) -> usize {
        self.shape.iter().map(|&d| d.max(0) as usize).product()
    }
}

/// Fused activation of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fused {
    /// Linear.
    #[default]
    None,
    /// max(x, 0).
    Relu,
    /// min(max(x, 0), 6).
    Relu6,
    /// Another activation, by schema code (danas evaluates none of them).
    Other(i8),
}

impl Fused {
    fn from_fb(a: fb::ActivationFunctionType) -> Self {
        match a {
            fb::ActivationFunctionType::NONE => Fused::None,
            fb::ActivationFunctionType::RELU => Fused::Relu,
            fb::ActivationFunctionType::RELU6 => Fused::Relu6,
            other => Fused::Other(other.0),
        }
    }
    fn to_fb(self) -> fb::ActivationFunctionType {
        match self {
            Fused::None => fb::ActivationFunctionType::NONE,
            Fused::Relu => fb::ActivationFunctionType::RELU,
            Fused::Relu6 => fb::ActivationFunctionType::RELU6,
            Fused::Other(c) => fb::ActivationFunctionType(c),
        }
    }
}

/// An operator with the options danas understands. Operators of any other kind are
/// read as [`OpDef::Other`] (their options are not kept; they cannot be written).
#[derive(Debug, Clone, PartialEq)]
pub enum OpDef {
    /// `CONV_2D`.
    Conv2d {
        /// SAME (true) or VALID padding.
        same: bool,
        /// (height, width) stride.
        stride: (i32, i32),
        /// Fused activation.
        act: Fused,
    },
    /// `DEPTHWISE_CONV_2D`.
    DepthwiseConv2d {
        /// SAME (true) or VALID padding.
        same: bool,
        /// (height, width) stride.
        stride: (i32, i32),
        /// Output channels per input channel.
        multiplier: i32,
        /// Fused activation.
        act: Fused,
    },
    /// `ADD`.
    Add {
        /// Fused activation.
        act: Fused,
    },
    /// `MEAN` (axes in the second input).
    Mean {
        /// Whether reduced axes are kept with size 1.
        keep_dims: bool,
    },
    /// `FULLY_CONNECTED`.
    FullyConnected {
        /// Fused activation.
        act: Fused,
    },
    /// `SOFTMAX`.
    Softmax {
        /// Inverse temperature.
        beta: f32,
    },
    /// `AVERAGE_POOL_2D` or `MAX_POOL_2D`.
    Pool2d {
        /// Max (true) or average pooling.
        max: bool,
        /// SAME (true) or VALID padding.
        same: bool,
        /// (height, width) stride.
        stride: (i32, i32),
        /// (height, width) window.
        filter: (i32, i32),
        /// Fused activation.
        act: Fused,
    },
    /// `QUANTIZE` (requantisation, e.g. int16 to int8, by the tensors' quantisation).
    Quantize,
    /// A custom operator: builtin code `CUSTOM`, `custom_code` = `name`, and its options
    /// (FlexBuffers for TFLM's signal ops) in `custom_options`.
    Custom {
        /// The name the runtime registered the op under, e.g. `SignalWindow`.
        name: String,
        /// The options bytes.
        options: Vec<u8>,
    },
    /// Any other builtin operator, by its runtime name (options not kept).
    Other {
        /// The builtin code (32 for customs).
        code: i32,
        /// The name.
        name: String,
    },
}

impl OpDef {
    /// The runtime's name of the operator, e.g. `CONV_2D`.
    pub fn name(&self) -> String {
        let code = self.code();
        match self {
            OpDef::Other { name, .. } => name.clone(),
            OpDef::Custom { name, .. } => format!("CUSTOM:{name}"),
            _ => fb::BuiltinOperator(code).variant_name().unwrap_or("UNKNOWN").to_string(),
        }
    }
    /// The builtin operator code.
    pub fn code(&self) -> i32 {
        match self {
            OpDef::Conv2d { .. } => fb::BuiltinOperator::CONV_2D.0,
            OpDef::DepthwiseConv2d { .. } => fb::BuiltinOperator::DEPTHWISE_CONV_2D.0,
            OpDef::Add { .. } => fb::BuiltinOperator::ADD.0,
            OpDef::Mean { .. } => fb::BuiltinOperator::MEAN.0,
            OpDef::FullyConnected { .. } => fb::BuiltinOperator::FULLY_CONNECTED.0,
            OpDef::Softmax { .. } => fb::BuiltinOperator::SOFTMAX.0,
            OpDef::Pool2d { max: true, .. } => fb::BuiltinOperator::MAX_POOL_2D.0,
            OpDef::Pool2d { max: false, .. } => fb::BuiltinOperator::AVERAGE_POOL_2D.0,
            OpDef::Quantize => fb::BuiltinOperator::QUANTIZE.0,
            OpDef::Custom { .. } => fb::BuiltinOperator::CUSTOM.0,
            OpDef::Other { code, .. } => *code,
        }
    }
}

/// One operator with its tensor indices (−1 marks an optional input left out).
#[derive(Debug, Clone, PartialEq)]
pub struct Operator {
    /// Kind and options.
    pub op: OpDef,
    /// Input tensor indices.
    pub inputs: Vec<i32>,
    /// Output tensor indices.
    pub outputs: Vec<i32>,
}

/// A single-subgraph TFLite model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Model {
    /// Tensors of subgraph 0; the index is the tensor id.
    pub tensors: Vec<TensorDef>,
    /// Operators in execution order.
    pub operators: Vec<Operator>,
    /// Subgraph input tensor ids.
    pub inputs: Vec<i32>,
    /// Subgraph output tensor ids.
    pub outputs: Vec<i32>,
    /// The model's description string.
    pub description: String,
}

impl Model {
    /// The tensor `id`, or an error naming the operator that referenced it.
    ///
    /// # Errors
    /// [`TfliteError::Invalid`] for an id out of range.
    pub fn tensor(&self, id: i32, what: &str) -> Result<&TensorDef, TfliteError> {
        usize::try_from(id).ok().and_then(|i| self.tensors.get(i)).ok_or_else(|| {
            TfliteError::invalid(format!("{what} references tensor {id}, but the model has {}", self.tensors.len()))
        })
    }

    /// Serialises the model as a TFLite flatbuffer (schema version 3, buffer 0 the empty
    /// sentinel, one buffer per constant tensor).
    ///
    /// # Errors
    /// [`TfliteError::Unsupported`] for an [`OpDef::Other`] operator (its options were not kept).
    pub fn to_bytes(&self) -> Result<Vec<u8>, TfliteError> {
        let mut b = FlatBufferBuilder::with_capacity(1024 + self.tensors.iter().map(|t| t.elements()).sum::<usize>());
        // Operator codes, in first-use order (a custom op's code is its name).
        let code_key = |op: &OpDef| match op {
            OpDef::Custom { name, .. } => (op.code(), Some(name.clone())),
            _ => (op.code(), None),
        };
        let mut codes: Vec<(i32, Option<String>)> = Vec::new();
        for o in &self.operators {
            if let OpDef::Other { name, .. } = &o.op {
                return Err(TfliteError::Unsupported(format!("cannot write operator {name}")));
            }
            if !codes.contains(&code_key(&o.op)) {
                codes.push(code_key(&o.op));
            }
        }
        // Buffers: 0 is the empty sentinel, then one per constant tensor.
        let mut buffers = vec![fb::Buffer::create(&mut b, &fb::BufferArgs::default())];
        let mut tensor_buffer = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            match &t.data {
                Some(d) => {
                    // A byte vector's data follows its 4-byte length, so int32 data is aligned.
                    let data = b.create_vector(d);
                    buffers.push(fb::Buffer::create(&mut b, &fb::BufferArgs { data: Some(data) }));
                    tensor_buffer.push((buffers.len() - 1) as u32);
                }
                None => tensor_buffer.push(0),
            }
        }
        let mut tensors = Vec::with_capacity(self.tensors.len());
        for (t, &buf) in self.tensors.iter().zip(&tensor_buffer) {
            let shape = b.create_vector(&t.shape);
            let name = b.create_string(&t.name);
            let quantization = t.quant.as_ref().map(|q| {
                let scale = b.create_vector(&q.scale);
                let zero_point = b.create_vector(&q.zero_point);
                fb::QuantizationParameters::create(
                    &mut b,
                    &fb::QuantizationParametersArgs {
                        scale: Some(scale),
                        zero_point: Some(zero_point),
                        quantized_dimension: q.dim,
                        ..Default::default()
                    },
                )
            });
            tensors.push(fb::Tensor::create(
                &mut b,
                &fb::TensorArgs {
                    shape: Some(shape),
                    type_: t.ty.to_fb(),
                    buffer: buf,
                    name: Some(name),
                    quantization,
                    is_variable: t.is_variable,
                    ..Default::default()
                },
            ));
        }
        let mut ops = Vec::with_capacity(self.operators.len());
        for o in &self.operators {
            let (options_type, options) = write_options(&mut b, &o.op);
            let inputs = b.create_vector(&o.inputs);
            let outputs = b.create_vector(&o.outputs);
            let key = code_key(&o.op);
            let opcode_index = codes.iter().position(|c| *c == key).unwrap_or(0) as u32;
            let custom_options = match &o.op {
                OpDef::Custom { options, .. } => Some(b.create_vector(options)),
                _ => None,
            };
            ops.push(fb::Operator::create(
                &mut b,
                &fb::OperatorArgs {
                    opcode_index,
                    inputs: Some(inputs),
                    outputs: Some(outputs),
                    builtin_options_type: options_type,
                    builtin_options: options,
                    custom_options,
                    custom_options_format: fb::CustomOptionsFormat::FLEXBUFFERS,
                    ..Default::default()
                },
            ));
        }
        let tensors = b.create_vector(&tensors);
        let inputs = b.create_vector(&self.inputs);
        let outputs = b.create_vector(&self.outputs);
        let operators = b.create_vector(&ops);
        let sg_name = b.create_string("main");
        let subgraph = fb::SubGraph::create(
            &mut b,
            &fb::SubGraphArgs {
                tensors: Some(tensors),
                inputs: Some(inputs),
                outputs: Some(outputs),
                operators: Some(operators),
                name: Some(sg_name),
            },
        );
        let code_tables: Vec<_> = codes
            .iter()
            .map(|(c, custom)| {
                let custom_code = custom.as_deref().map(|n| b.create_string(n));
                fb::OperatorCode::create(
                    &mut b,
                    &fb::OperatorCodeArgs {
                        // Codes below 127 go in both fields (older runtimes read the first).
                        deprecated_builtin_code: i8::try_from(*c).unwrap_or(127),
                        builtin_code: fb::BuiltinOperator(*c),
                        custom_code,
                        version: 1,
                    },
                )
            })
            .collect();
        let operator_codes = b.create_vector(&code_tables);
        let subgraphs = b.create_vector(&[subgraph]);
        let buffers = b.create_vector(&buffers);
        let description = b.create_string(&self.description);
        let model = fb::Model::create(
            &mut b,
            &fb::ModelArgs {
                version: 3,
                operator_codes: Some(operator_codes),
                subgraphs: Some(subgraphs),
                description: Some(description),
                buffers: Some(buffers),
                ..Default::default()
            },
        );
        fb::finish_model_buffer(&mut b, model);
        Ok(b.finished_data().to_vec())
    }

    /// Reads a TFLite flatbuffer (subgraph 0). `origin` names the data in errors.
    ///
    /// # Errors
    /// [`TfliteError::Invalid`] for truncated, corrupt or non-TFLite data (never panics).
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, TfliteError> {
        let bad = |reason: String| TfliteError::Invalid { origin: origin.to_string(), reason };
        if bytes.len() < 8 {
            return Err(bad(format!("only {} bytes; too short for a flatbuffer", bytes.len())));
        }
        if !fb::model_buffer_has_identifier(bytes) {
            return Err(bad("missing the TFL3 file identifier at bytes 4..8".into()));
        }
        let opts =
            flatbuffers::VerifierOptions { max_tables: 10_000_000, max_apparent_size: 1 << 32, ..Default::default() };
        let m = fb::root_as_model_with_opts(&opts, bytes).map_err(|e| bad(format!("not a valid flatbuffer: {e}")))?;
        let buffers: Vec<Option<Vec<u8>>> = m
            .buffers()
            .map(|bs| bs.iter().map(|buf| buf.data().filter(|d| !d.is_empty()).map(|d| d.bytes().to_vec())).collect())
            .unwrap_or_default();
        let codes: Vec<(i32, String)> = m
            .operator_codes()
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        let code = c.builtin_code().0.max(i32::from(c.deprecated_builtin_code()));
                        if code == fb::BuiltinOperator::CUSTOM.0 {
                            (code, format!("CUSTOM:{}", c.custom_code().unwrap_or("")))
                        } else {
                            let name = fb::BuiltinOperator(code)
                                .variant_name()
                                .map_or_else(|| format!("BUILTIN_{code}"), str::to_string);
                            (code, name)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let sg = m.subgraphs().and_then(|s| s.iter().next()).ok_or_else(|| bad("the model has no subgraph".into()))?;
        let mut model = Model { description: m.description().unwrap_or("").to_string(), ..Default::default() };
        for (i, t) in sg.tensors().into_iter().flatten().enumerate() {
            let shape: Vec<i32> = t.shape().map(|s| s.iter().collect()).unwrap_or_default();
            if let Some(d) = shape.iter().find(|&&d| !(0..=1 << 28).contains(&d)) {
                return Err(bad(format!("tensor {i}: invalid dimension {d}")));
            }
            let elems = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d as usize));
            if elems.is_none_or(|e| e > 1 << 31) {
                return Err(bad(format!("tensor {i}: shape {shape:?} is too large")));
            }
            let data = buffers.get(t.buffer() as usize).cloned().flatten();
            let quant = t.quantization().and_then(|q| {
                let scale: Vec<f32> = q.scale().map(|s| s.iter().collect()).unwrap_or_default();
                if scale.is_empty() {
                    return None;
                }
                let zero_point: Vec<i64> = q.zero_point().map(|z| z.iter().collect()).unwrap_or_default();
                Some(Quant { scale, zero_point, dim: q.quantized_dimension() })
            });
            model.tensors.push(TensorDef {
                name: t.name().unwrap_or("").to_string(),
                shape,
                ty: ElemType::from_fb(t.type_()),
                data: if t.is_variable() { None } else { data },
                quant,
                is_variable: t.is_variable(),
            });
        }
        let n = model.tensors.len() as i32;
        let check = |ids: Vec<i32>, what: &str| -> Result<Vec<i32>, TfliteError> {
            match ids.iter().find(|&&id| id >= n || id < -1) {
                Some(id) => Err(bad(format!("{what} references tensor {id}, but the subgraph has {n} tensors"))),
                None => Ok(ids),
            }
        };
        model.inputs = check(sg.inputs().map(|v| v.iter().collect()).unwrap_or_default(), "SubGraph.inputs")?;
        model.outputs = check(sg.outputs().map(|v| v.iter().collect()).unwrap_or_default(), "SubGraph.outputs")?;
        for (i, o) in sg.operators().into_iter().flatten().enumerate() {
            let what = format!("operator {i}");
            let idx = o.opcode_index() as usize;
            let Some((code, name)) = codes.get(idx).cloned() else {
                return Err(bad(format!("{what}: opcode index {idx} out of range ({} codes)", codes.len())));
            };
            let op = read_options(&o, code, name);
            let inputs = check(o.inputs().map(|v| v.iter().collect()).unwrap_or_default(), &what)?;
            let outputs = check(o.outputs().map(|v| v.iter().collect()).unwrap_or_default(), &what)?;
            model.operators.push(Operator { op, inputs, outputs });
        }
        Ok(model)
    }
}

fn padding(same: bool) -> fb::Padding {
    if same { fb::Padding::SAME } else { fb::Padding::VALID }
}

fn write_options<'a>(
    b: &mut FlatBufferBuilder<'a>,
    op: &OpDef,
) -> (fb::BuiltinOptions, Option<WIPOffset<flatbuffers::UnionWIPOffset>>) {
    match *op {
        OpDef::Conv2d { same, stride, act } => {
            let o = fb::Conv2DOptions::create(
                b,
                &fb::Conv2DOptionsArgs {
                    padding: padding(same),
                    stride_h: stride.0,
                    stride_w: stride.1,
                    fused_activation_function: act.to_fb(),
                    dilation_h_factor: 1,
                    dilation_w_factor: 1,
                },
            );
            (fb::BuiltinOptions::Conv2DOptions, Some(o.as_union_value()))
        }
        OpDef::DepthwiseConv2d { same, stride, multiplier, act } => {
            let o = fb::DepthwiseConv2DOptions::create(
                b,
                &fb::DepthwiseConv2DOptionsArgs {
                    padding: padding(same),
                    stride_h: stride.0,
                    stride_w: stride.1,
                    depth_multiplier: multiplier,
                    fused_activation_function: act.to_fb(),
                    dilation_h_factor: 1,
                    dilation_w_factor: 1,
                },
            );
            (fb::BuiltinOptions::DepthwiseConv2DOptions, Some(o.as_union_value()))
        }
        OpDef::Add { act } => {
            let o = fb::AddOptions::create(
                b,
                &fb::AddOptionsArgs { fused_activation_function: act.to_fb(), ..Default::default() },
            );
            (fb::BuiltinOptions::AddOptions, Some(o.as_union_value()))
        }
        OpDef::Mean { keep_dims } => {
            let o = fb::ReducerOptions::create(b, &fb::ReducerOptionsArgs { keep_dims });
            (fb::BuiltinOptions::ReducerOptions, Some(o.as_union_value()))
        }
        OpDef::FullyConnected { act } => {
            let o = fb::FullyConnectedOptions::create(
                b,
                &fb::FullyConnectedOptionsArgs { fused_activation_function: act.to_fb(), ..Default::default() },
            );
            (fb::BuiltinOptions::FullyConnectedOptions, Some(o.as_union_value()))
        }
        OpDef::Softmax { beta } => {
            let o = fb::SoftmaxOptions::create(b, &fb::SoftmaxOptionsArgs { beta });
            (fb::BuiltinOptions::SoftmaxOptions, Some(o.as_union_value()))
        }
        OpDef::Pool2d { same, stride, filter, act, .. } => {
            let o = fb::Pool2DOptions::create(
                b,
                &fb::Pool2DOptionsArgs {
                    padding: padding(same),
                    stride_h: stride.0,
                    stride_w: stride.1,
                    filter_height: filter.0,
                    filter_width: filter.1,
                    fused_activation_function: act.to_fb(),
                },
            );
            (fb::BuiltinOptions::Pool2DOptions, Some(o.as_union_value()))
        }
        OpDef::Quantize => {
            let o = fb::QuantizeOptions::create(b, &fb::QuantizeOptionsArgs {});
            (fb::BuiltinOptions::QuantizeOptions, Some(o.as_union_value()))
        }
        OpDef::Custom { .. } | OpDef::Other { .. } => (fb::BuiltinOptions::NONE, None),
    }
}

fn read_options(o: &fb::Operator<'_>, code: i32, name: String) -> OpDef {
    let same = |p: fb::Padding| p != fb::Padding::VALID;
    match fb::BuiltinOperator(code) {
        fb::BuiltinOperator::CONV_2D => {
            let c = o.builtin_options_as_conv_2_doptions();
            OpDef::Conv2d {
                same: c.is_none_or(|c| same(c.padding())),
                stride: c.map_or((1, 1), |c| (c.stride_h().max(1), c.stride_w().max(1))),
                act: c.map_or(Fused::None, |c| Fused::from_fb(c.fused_activation_function())),
            }
        }
        fb::BuiltinOperator::DEPTHWISE_CONV_2D => {
            let c = o.builtin_options_as_depthwise_conv_2_doptions();
            OpDef::DepthwiseConv2d {
                same: c.is_none_or(|c| same(c.padding())),
                stride: c.map_or((1, 1), |c| (c.stride_h().max(1), c.stride_w().max(1))),
                multiplier: c.map_or(1, |c| c.depth_multiplier().max(1)),
                act: c.map_or(Fused::None, |c| Fused::from_fb(c.fused_activation_function())),
            }
        }
        fb::BuiltinOperator::ADD => OpDef::Add {
            act: o
                .builtin_options_as_add_options()
                .map_or(Fused::None, |c| Fused::from_fb(c.fused_activation_function())),
        },
        fb::BuiltinOperator::MEAN => {
            OpDef::Mean { keep_dims: o.builtin_options_as_reducer_options().is_some_and(|c| c.keep_dims()) }
        }
        fb::BuiltinOperator::FULLY_CONNECTED => OpDef::FullyConnected {
            act: o
                .builtin_options_as_fully_connected_options()
                .map_or(Fused::None, |c| Fused::from_fb(c.fused_activation_function())),
        },
        fb::BuiltinOperator::SOFTMAX => {
            OpDef::Softmax { beta: o.builtin_options_as_softmax_options().map_or(1.0, |c| c.beta()) }
        }
        fb::BuiltinOperator::AVERAGE_POOL_2D | fb::BuiltinOperator::MAX_POOL_2D => {
            let c = o.builtin_options_as_pool_2_doptions();
            OpDef::Pool2d {
                max: code == fb::BuiltinOperator::MAX_POOL_2D.0,
                same: c.is_none_or(|c| same(c.padding())),
                stride: c.map_or((1, 1), |c| (c.stride_h().max(1), c.stride_w().max(1))),
                filter: c.map_or((1, 1), |c| (c.filter_height().max(1), c.filter_width().max(1))),
                act: c.map_or(Fused::None, |c| Fused::from_fb(c.fused_activation_function())),
            }
        }
        fb::BuiltinOperator::QUANTIZE => OpDef::Quantize,
        fb::BuiltinOperator::CUSTOM => OpDef::Custom {
            name: name.strip_prefix("CUSTOM:").unwrap_or(&name).to_string(),
            options: o.custom_options().map(|v| v.bytes().to_vec()).unwrap_or_default(),
        },
        _ => OpDef::Other { code, name },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::{FloatNet, float_model};
    use danas_core::{Arch, Candidate, Color, DataConfig};
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let cand = Candidate::new(DataConfig::new(16, Color::Rgb), Arch::mobilenet_v2(0.25, [1, 1, 0, 0, 0]));
        let bp = cand.blueprint(3).unwrap();
        float_model(&bp, &FloatNet::random(&bp, 1), true).unwrap().to_bytes().unwrap()
    }

    #[test]
    fn round_trips_and_rejects_non_models() {
        let bytes = sample();
        let m = Model::from_bytes(&bytes, "m").unwrap();
        assert_eq!(m.to_bytes().unwrap(), bytes);
        assert!(matches!(Model::from_bytes(b"abc", "x.tflite"), Err(TfliteError::Invalid { .. })));
        let mut wrong_id = bytes.clone();
        wrong_id[4..8].copy_from_slice(b"XXXX");
        let e = Model::from_bytes(&wrong_id, "x.tflite").unwrap_err().to_string();
        assert!(e.contains("x.tflite") && e.contains("TFL3"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Corrupt or truncated files give an error, never a panic.
        #[test]
        fn corrupt_bytes_never_panic(cut in 0usize..4000, flips in proptest::collection::vec((0usize..4000, any::<u8>()), 0..8)) {
            let mut bytes = sample();
            for (i, b) in flips {
                let n = bytes.len();
                bytes[i % n] ^= b;
            }
            bytes.truncate(cut.max(8).min(bytes.len()));
            let _ = Model::from_bytes(&bytes, "fuzz");
        }
    }
}
