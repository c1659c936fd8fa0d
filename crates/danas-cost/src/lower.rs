//! A compact, string-free form of a model: what the planners and the metrics need.
//! Built either from a [`Graph`] or directly from a [`Blueprint`] (fast path); a test
//! proves both give identical results.

use danas_core::{Blueprint, ConvLayer, Graph, OpKind, Padding, Precision, TensorRole, same_padding};

use crate::plan::{Buffer, Timeline, align16, greedy_plan_timeline};
use crate::{CostError, Kernels};

/// What kind of work an op does, for latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpClass {
    Conv1x1,
    Conv,
    Depthwise,
    Fc,
    /// Element-wise / pooling / MEAN / softmax: no MACs, cost per element.
    Elementwise,
    /// Not estimated (MACs and latency unknown).
    Other,
}

/// Per-op facts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpDesc {
    pub class: OpClass,
    pub macs: u64,
    pub params: u64,
    pub elements: u64,
    /// Scratch buffers requested by TFLM reference kernels (raw bytes, 0 = none).
    pub scratch_ref: [u64; 3],
    /// Extra scratch buffers requested by CMSIS-NN kernels.
    pub scratch_cmsis: u64,
}

/// Numbers that feed the flatbuffer size estimate and the arena tail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ModelStats {
    pub const_bytes: u64,
    pub tensors: u64,
    pub quant_params: u64,
    pub ops: u64,
    /// Operators per kind, for the arena tail.
    pub op_kinds: OpKinds,
    /// Output channels of conv and depthwise ops (per-channel runtime data).
    pub channels: u64,
    /// Subgraph inputs and outputs, and how many of them are quantised.
    pub io_tensors: u64,
    pub io_quantized: u64,
}

/// How many operators of each kind a model has: TFLM keeps different runtime data
/// (OpData, builtin options) per kind in the arena tail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OpKinds {
    pub conv: u64,
    pub depthwise: u64,
    pub add: u64,
    pub mean: u64,
    pub fc: u64,
    pub softmax: u64,
    pub other: u64,
}

impl OpKinds {
    /// Tail bytes of the ops' OpData and builtin options for `p`-byte pointers.
    ///
    /// Fitted on the 64-bit host build of TFLM (reference kernels; `cargo xtask repro
    /// arena`, residual under 50 B per model): conv 95 B, depthwise 131 B, add 73 B,
    /// mean 117 B, fully connected 112 B, softmax 97 B. The int32 fields do not change
    /// with the pointer size; conv and depthwise OpData hold two pointers (their
    /// per-channel multiplier and shift arrays). Kinds TFLM was not measured on are
    /// counted like a fully connected op.
    fn tail_bytes(&self, p: u64) -> u64 {
        self.conv * (79 + 2 * p)
            + self.depthwise * (115 + 2 * p)
            + self.add * 73
            + self.mean * 117
            + self.fc * 112
            + self.softmax * 97
            + self.other * 112
    }
}

impl ModelStats {
    /// Estimated size of the `.tflite` flatbuffer in bytes.
    pub fn model_bytes(&self) -> u64 {
        // Constants, quantisation parameters (f32 scale + i64 zero point each), and per
        // tensor ≈ 267 bytes of tables (shape, type, buffer, Keras-style name, quantisation
        // table, buffer alignment, its share of the operator list) plus a fixed part;
        // fitted on converter output to within 2 % (tests/import.rs checks 10 %).
        self.const_bytes + 12 * self.quant_params + 267 * self.tensors + 500
    }

    /// Estimated TFLM arena tail (persistent runtime data) for `pointer_bytes`, with
    /// `extra_scratch` scratch buffers beyond the reference kernels' (one handle each).
    ///
    /// Per tensor a `TfLiteEvalTensor` (data and dims pointers, type); per op a node and
    /// its registration (eight pointer-sized fields) and its kind's OpData and options
    /// ([`OpKinds`]); per conv and depthwise output channel a multiplier and a shift
    /// (2 × int32); per subgraph input or output a persistent `TfLiteTensor` (eight
    /// pointer-sized fields) and, when quantised, its quantisation record (four); and a
    /// fixed part (interpreter and subgraph bookkeeping; 506 B on the host, assumed to be
    /// 32 pointers and 250 B of int fields). Checked against TFLM's recorded tail on the
    /// host (`cargo xtask repro arena`); 32-bit targets follow the same structure with
    /// 4-byte pointers, which no TFLM run here checks.
    pub fn tail_bytes(&self, pointer_bytes: u32, extra_scratch: u64) -> u64 {
        let p = u64::from(pointer_bytes);
        let eval_tensor = 2 * p + p.max(4);
        250 + 32 * p
            + self.tensors * eval_tensor
            + self.ops * 8 * p
            + self.op_kinds.tail_bytes(p)
            + self.channels * 8
            + self.io_tensors * 8 * p
            + self.io_quantized * 4 * p
            + extra_scratch * p
    }
}

/// The compact model.
#[derive(Debug, Clone, Default)]
pub(crate) struct Net {
    /// Bytes of each activation tensor (in registration order); constants are omitted.
    pub act_bytes: Vec<u64>,
    /// Flat activation ids of all ops: inputs then outputs.
    pub io: Vec<u32>,
    /// Per op: (start in `io`, activation inputs, activation outputs).
    pub op_io: Vec<(u32, u16, u16)>,
    pub inputs: Vec<u32>,
    pub outputs: Vec<u32>,
    pub descs: Vec<OpDesc>,
    pub stats: ModelStats,
}

impl Net {
    fn push_op(&mut self, ins: &[u32], outs: &[u32], desc: OpDesc) {
        self.op_io.push((self.io.len() as u32, ins.len() as u16, outs.len() as u16));
        self.io.extend_from_slice(ins);
        self.io.extend_from_slice(outs);
        self.descs.push(desc);
    }

    fn op_inputs(&self, i: usize) -> &[u32] {
        let (s, ni, _) = self.op_io[i];
        &self.io[s as usize..s as usize + ni as usize]
    }

    fn op_outputs(&self, i: usize) -> &[u32] {
        let (s, ni, no) = self.op_io[i];
        &self.io[s as usize + ni as usize..s as usize + ni as usize + no as usize]
    }
}

#[allow(clippy::too_many_arguments)]
fn conv_desc(
    k: (u32, u32),
    s: (u32, u32),
    groups: u32,
    cin: u32,
    cout: u32,
    out_hw: (u32, u32),
    pad: (u32, u32),
    params: u64,
) -> OpDesc {
    let depthwise = groups > 1 && groups == cin;
    let macs = [out_hw.1, cout, k.0, k.1, cin / groups.max(1)]
        .iter()
        .fold(u64::from(out_hw.0), |a, &b| a.saturating_mul(u64::from(b)));
    let class = if depthwise {
        OpClass::Depthwise
    } else if k == (1, 1) {
        OpClass::Conv1x1
    } else {
        OpClass::Conv
    };
    let scratch_cmsis = if depthwise {
        if k == (3, 3) && pad.0 <= 1 && pad.1 <= 1 && cin == cout {
            0
        } else {
            u64::from(cin).saturating_mul(u64::from(k.0)).saturating_mul(u64::from(k.1)).saturating_mul(2)
        }
    } else if k == (1, 1) && s == (1, 1) && pad == (0, 0) {
        0
    } else {
        let col = u64::from(k.0).saturating_mul(u64::from(k.1)).saturating_mul(u64::from(cin / groups.max(1)));
        col.div_ceil(4).saturating_mul(16)
    };
    OpDesc { class, macs, params, elements: 0, scratch_ref: [0; 3], scratch_cmsis }
}

fn mean_desc(out_elems: u64, in_elems: u64, rank: u64, axes: u64, integer: bool) -> OpDesc {
    let sum = if integer { out_elems * 4 } else { 0 };
    OpDesc {
        class: OpClass::Elementwise,
        macs: 0,
        params: 0,
        elements: in_elems,
        scratch_ref: [sum, 4 * rank, 4 * axes],
        scratch_cmsis: 0,
    }
}

fn simple_desc(class: OpClass, elements: u64) -> OpDesc {
    OpDesc { class, macs: 0, params: 0, elements, scratch_ref: [0; 3], scratch_cmsis: 0 }
}

fn hw_of(shape: &[usize]) -> (u32, u32, u32) {
    match shape {
        [_, h, w, c] => (*h as u32, *w as u32, *c as u32),
        [_, c] => (1, 1, *c as u32),
        _ => (1, 1, shape.last().copied().unwrap_or(1) as u32),
    }
}

/// Lowers a graph. Fails on dangling tensor ids.
pub(crate) fn from_graph(g: &Graph) -> Result<Net, CostError> {
    g.check_ids().map_err(|reason| CostError::InvalidGraph { reason })?;
    let mut net = Net::default();
    // activation index per tensor
    let mut act_id = vec![u32::MAX; g.tensors.len()];
    let mut st = ModelStats::default();
    for (i, t) in g.tensors.iter().enumerate() {
        st.tensors += 1;
        st.quant_params += t.quant_params as u64;
        if t.is_constant() {
            st.const_bytes += t.bytes() as u64;
        } else {
            act_id[i] = net.act_bytes.len() as u32;
            net.act_bytes.push(t.bytes() as u64);
        }
    }
    let acts = |ids: &[usize]| -> Vec<u32> { ids.iter().map(|&i| act_id[i]).filter(|&a| a != u32::MAX).collect() };
    for op in &g.ops {
        st.ops += 1;
        let x = op.inputs.first().map(|&i| &g.tensors[i]);
        let y = op.outputs.first().map(|&i| &g.tensors[i]);
        let params: u64 = op
            .inputs
            .iter()
            .map(|&i| &g.tensors[i])
            .filter(|t| matches!(t.role, TensorRole::Weight | TensorRole::Bias))
            .map(|t| t.elements() as u64)
            .sum();
        let in_elems = x.map_or(0, |t| t.elements() as u64);
        let out_elems = y.map_or(0, |t| t.elements() as u64);
        let desc = match (&op.kind, x, y) {
            (OpKind::Conv2d { kernel, stride, groups, padding, .. }, Some(x), Some(y)) => {
                let (h, w, cin) = hw_of(&x.shape);
                let (ho, wo, cout) = hw_of(&y.shape);
                let pad = match padding {
                    Padding::Same => (same_padding(h, kernel.0, stride.0).1, same_padding(w, kernel.1, stride.1).1),
                    Padding::Valid => (0, 0),
                };
                st.channels += u64::from(cout);
                if *groups > 1 && *groups == cin {
                    st.op_kinds.depthwise += 1;
                } else {
                    st.op_kinds.conv += 1;
                }
                conv_desc(*kernel, *stride, *groups, cin, cout, (ho, wo), pad, params)
            }
            (OpKind::FullyConnected { .. }, Some(_), Some(_)) => {
                st.op_kinds.fc += 1;
                let weights: u64 = op
                    .inputs
                    .iter()
                    .map(|&i| &g.tensors[i])
                    .filter(|t| t.role == TensorRole::Weight)
                    .map(|t| t.elements() as u64)
                    .sum();
                OpDesc { class: OpClass::Fc, macs: weights, params, elements: 0, scratch_ref: [0; 3], scratch_cmsis: 0 }
            }
            (OpKind::GlobalAvgPool, Some(x), Some(_)) => {
                st.op_kinds.mean += 1;
                mean_desc(out_elems, in_elems, x.shape.len() as u64, 2, x.dtype.size() <= 2 && x.quant_params > 0)
            }
            (OpKind::Mean, Some(x), Some(_)) => {
                st.op_kinds.mean += 1;
                let axes = op
                    .inputs
                    .get(1)
                    .map(|&i| &g.tensors[i])
                    .filter(|t| t.is_constant())
                    .map_or(1, |t| t.elements() as u64);
                mean_desc(out_elems, in_elems, x.shape.len() as u64, axes, x.dtype.size() <= 2 && x.quant_params > 0)
            }
            (OpKind::Add { .. } | OpKind::AvgPool2d { .. } | OpKind::MaxPool2d { .. } | OpKind::Softmax, _, _) => {
                match op.kind {
                    OpKind::Add { .. } => st.op_kinds.add += 1,
                    OpKind::Softmax => st.op_kinds.softmax += 1,
                    _ => st.op_kinds.other += 1,
                }
                simple_desc(OpClass::Elementwise, in_elems.max(out_elems))
            }
            _ => {
                st.op_kinds.other += 1;
                simple_desc(OpClass::Other, 0)
            }
        };
        net.push_op(&acts(&op.inputs), &acts(&op.outputs), desc);
    }
    net.inputs = acts(&g.inputs);
    net.outputs = acts(&g.outputs);
    for &i in g.inputs.iter().chain(&g.outputs) {
        st.io_tensors += 1;
        st.io_quantized += u64::from(g.tensors[i].quant_params > 0);
    }
    net.stats = st;
    Ok(net)
}

/// Lowers a blueprint directly, mirroring [`Blueprint::to_graph`] without building
/// strings. Tensor registration order (activations) is the same as `to_graph`'s.
pub(crate) fn from_blueprint(bp: &Blueprint, precision: Precision, net: &mut Net) {
    net.act_bytes.clear();
    net.io.clear();
    net.op_io.clear();
    net.inputs.clear();
    net.outputs.clear();
    net.descs.clear();
    let a = precision.activation_dtype().size() as u64;
    let wsz = precision.weight_dtype().size() as u64;
    let bsz = precision.bias_dtype().size() as u64;
    let qz = precision.quantized();
    let q = |n: u64| if qz { n } else { 0 };
    let mut st = ModelStats::default();
    let (h, w, c) = bp.data.input_hwc();
    let mut add_act = |net: &mut Net, st: &mut ModelStats, elems: u64, _rank: u64| -> u32 {
        net.act_bytes.push(elems * a);
        st.tensors += 1;
        st.quant_params += q(1);
        (net.act_bytes.len() - 1) as u32
    };
    let input = add_act(net, &mut st, u64::from(h) * u64::from(w) * u64::from(c), 4);
    net.inputs.push(input);
    let conv = |net: &mut Net,
                st: &mut ModelStats,
                l: &ConvLayer,
                x: u32,
                add_act: &mut dyn FnMut(&mut Net, &mut ModelStats, u64, u64) -> u32|
     -> u32 {
        let wc = l.weight_count();
        let co = u64::from(l.out_ch);
        st.tensors += 2;
        st.const_bytes += wc * wsz + co * bsz;
        st.quant_params += 2 * q(co);
        st.ops += 1;
        st.channels += co;
        if l.groups > 1 {
            st.op_kinds.depthwise += 1;
        } else {
            st.op_kinds.conv += 1;
        }
        let y = add_act(net, st, u64::from(l.out_hw.0) * u64::from(l.out_hw.1) * co, 4);
        let pad = (same_padding(l.in_hw.0, l.kernel, l.stride).1, same_padding(l.in_hw.1, l.kernel, l.stride).1);
        let d =
            conv_desc((l.kernel, l.kernel), (l.stride, l.stride), l.groups, l.in_ch, l.out_ch, l.out_hw, pad, wc + co);
        net.push_op(&[x], &[y], d);
        y
    };
    let mut x = conv(net, &mut st, &bp.stem, input, &mut add_act);
    for b in &bp.blocks {
        let block_in = x;
        if let Some(e) = b.expand() {
            x = conv(net, &mut st, &e, x, &mut add_act);
        }
        x = conv(net, &mut st, &b.depthwise(), x, &mut add_act);
        x = conv(net, &mut st, &b.project(), x, &mut add_act);
        if b.residual {
            let elems = u64::from(b.out_hw.0) * u64::from(b.out_hw.1) * u64::from(b.out_ch);
            let y = add_act(net, &mut st, elems, 4);
            st.ops += 1;
            st.op_kinds.add += 1;
            net.push_op(&[block_in, x], &[y], simple_desc(OpClass::Elementwise, elems));
            x = y;
        }
    }
    if let Some(l) = &bp.last_conv {
        x = conv(net, &mut st, l, x, &mut add_act);
    }
    let feat = u64::from(bp.head.features);
    let classes = u64::from(bp.head.classes);
    let last_elems = net.act_bytes[x as usize] / a;
    let pooled = add_act(net, &mut st, feat, 2);
    st.ops += 1;
    st.op_kinds.mean += 1;
    net.push_op(&[x], &[pooled], mean_desc(feat, last_elems, 4, 2, qz));
    // FC weights and bias
    st.tensors += 2;
    st.const_bytes += feat * classes * wsz + classes * bsz;
    st.quant_params += 2 * q(1);
    let logits = add_act(net, &mut st, classes, 2);
    st.ops += 1;
    st.op_kinds.fc += 1;
    net.push_op(
        &[pooled],
        &[logits],
        OpDesc {
            class: OpClass::Fc,
            macs: feat * classes,
            params: feat * classes + classes,
            elements: 0,
            scratch_ref: [0; 3],
            scratch_cmsis: 0,
        },
    );
    let probs = add_act(net, &mut st, classes, 2);
    st.ops += 1;
    st.op_kinds.softmax += 1;
    st.io_tensors = 2;
    st.io_quantized = if qz { 2 } else { 0 };
    net.push_op(&[logits], &[probs], simple_desc(OpClass::Elementwise, classes));
    net.outputs.push(probs);
    net.stats = st;
}

/// Reusable buffers for planning many models.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    pub net: Net,
    first: Vec<i64>,
    last: Vec<i64>,
    buf_of: Vec<u32>,
    pub buffers: Vec<Buffer>,
    /// For each buffer: Some(op) when it is a scratch buffer of that op.
    pub scratch_of: Vec<u32>,
    order: Vec<u32>,
    offsets: Vec<u64>,
    timeline: Timeline,
    delta: Vec<i128>,
    pub live_at: Vec<u64>,
    inplace: Vec<Buffer>,
    live_inplace: Vec<u64>,
}

/// Result of the planners.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Planned {
    pub head: u64,
    pub live_bound: u64,
    /// Time step where the live bound is first reached.
    pub live_time: u32,
    pub inplace_head: u64,
    pub inplace_live_bound: u64,
    pub scratch_max: u64,
    pub scratch_buffers: u64,
}

fn live_into(buffers: &[Buffer], end: u32, delta: &mut Vec<i128>, live_at: &mut Vec<u64>) -> (u64, u32) {
    delta.clear();
    delta.resize(end as usize + 2, 0);
    for b in buffers {
        delta[b.first as usize] += i128::from(b.size);
        delta[b.last as usize + 1] -= i128::from(b.size);
    }
    live_at.clear();
    let (mut cur, mut best, mut at) = (0i128, 0i128, 0u32);
    for (t, d) in delta.iter().enumerate().take(end as usize + 1) {
        cur += d;
        live_at.push(cur as u64);
        if cur > best {
            best = cur;
            at = t as u32;
        }
    }
    (best as u64, at)
}

/// Runs TFLM's lifetime rules, the greedy planner, the live bound and the in-place
/// planner on `ws.net`.
pub(crate) fn plan(ws: &mut Workspace, kernels: Kernels) -> Planned {
    let net = &ws.net;
    let n_ops = net.op_io.len();
    let n = net.act_bytes.len();
    ws.first.clear();
    ws.first.resize(n, -1);
    ws.last.clear();
    ws.last.resize(n, -1);
    for &i in &net.inputs {
        let i = i as usize;
        if ws.first[i] < 0 {
            ws.first[i] = 0;
        }
        ws.last[i] = ws.last[i].max(0);
    }
    for op in 0..n_ops {
        let t = op as i64 + 1;
        for &o in net.op_outputs(op) {
            if ws.first[o as usize] < 0 {
                ws.first[o as usize] = t;
            }
        }
        for &i in net.op_inputs(op) {
            ws.last[i as usize] = ws.last[i as usize].max(t);
        }
        for &o in net.op_outputs(op) {
            ws.last[o as usize] = ws.last[o as usize].max(t);
        }
    }
    for &o in &net.outputs {
        ws.last[o as usize] = ws.last[o as usize].max(n_ops as i64);
    }
    ws.buffers.clear();
    ws.scratch_of.clear();
    ws.buf_of.clear();
    ws.buf_of.resize(n, u32::MAX);
    for i in 0..n {
        let (f, l) = (ws.first[i], ws.last[i]);
        if net.act_bytes[i] == 0 || f < 0 || l < 0 {
            continue;
        }
        ws.buf_of[i] = ws.buffers.len() as u32;
        ws.buffers.push(Buffer { size: align16(net.act_bytes[i]), first: f as u32, last: l as u32 });
        ws.scratch_of.push(u32::MAX);
    }
    let (mut scratch_max, mut scratch_buffers) = (0u64, 0u64);
    for (op, d) in net.descs.iter().enumerate() {
        let t = op as u32 + 1;
        let mut total = 0;
        let cmsis = if matches!(kernels, Kernels::CmsisNn | Kernels::InPlace) { d.scratch_cmsis } else { 0 };
        for s in d.scratch_ref.iter().copied().chain(std::iter::once(cmsis)) {
            if s > 0 {
                ws.buffers.push(Buffer { size: align16(s), first: t, last: t });
                ws.scratch_of.push(op as u32);
                total += align16(s);
                scratch_buffers += 1;
            }
        }
        scratch_max = scratch_max.max(total);
    }
    let end = n_ops as u32;
    let head = greedy_plan_timeline(&ws.buffers, end, &mut ws.order, &mut ws.offsets, &mut ws.timeline);
    let (live_bound, live_time) = live_into(&ws.buffers, end, &mut ws.delta, &mut ws.live_at);

    // In-place depthwise: the output is written over the input when the depthwise op is
    // the input's last user and the output is not larger: the output's lifetime starts
    // after the op, so during the op only max(in, out) is held.
    let mut inplace = std::mem::take(&mut ws.inplace);
    inplace.clear();
    inplace.extend_from_slice(&ws.buffers);
    let mut changed = false;
    for (op, d) in net.descs.iter().enumerate() {
        if d.class != OpClass::Depthwise {
            continue;
        }
        let t = op as i64 + 1;
        let (Some(&x), Some(&y)) = (net.op_inputs(op).first(), net.op_outputs(op).first()) else { continue };
        let (bx, by) = (ws.buf_of[x as usize], ws.buf_of[y as usize]);
        if bx == u32::MAX || by == u32::MAX || net.outputs.contains(&x) {
            continue;
        }
        if ws.last[x as usize] == t && net.act_bytes[y as usize] <= net.act_bytes[x as usize] && ws.last[y as usize] > t
        {
            inplace[by as usize].first = t as u32 + 1;
            changed = true;
        }
    }
    let (inplace_head, inplace_live_bound) = if changed {
        let h = greedy_plan_timeline(&inplace, end, &mut ws.order, &mut ws.offsets, &mut ws.timeline);
        let (lb, _) = live_into(&inplace, end, &mut ws.delta, &mut ws.live_inplace);
        (h, lb)
    } else {
        (head, live_bound)
    };
    ws.inplace = inplace;
    Planned { head, live_bound, live_time, inplace_head, inplace_live_bound, scratch_max, scratch_buffers }
}

impl Workspace {
    /// Live bytes at each time step of the last plan (index = time).
    pub fn live_at(&self) -> &[u64] {
        &self.live_at
    }
}
