//! The MobileNetV2-family network built at run time from a [`Blueprint`].

use burn::module::{Module, Param};
use burn::tensor::activation::relu;
use burn::tensor::module::{batch_norm, batch_norm_train, conv2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use danas_core::{Batch, Blueprint, Candidate, ConvLayer, same_padding};

use crate::TrainError;
use crate::cpu::{Act, is_fused_device};
use crate::weights::{ConvWeights, NetWeights, conv_shape};

/// BatchNorm epsilon (Keras uses 1e-3; PyTorch 1e-5). Folding uses the same value.
pub const BN_EPSILON: f64 = 1e-3;

/// The CPU device (burn's `flex` backend) without autodiff.
pub fn cpu_device() -> Device {
    Device::flex()
}

/// The names [`select_device`] accepts, with the Cargo feature each needs.
pub const DEVICES: [(&str, &str); 3] = [("cpu", "(always)"), ("cuda", "cuda"), ("wgpu", "wgpu")];

static DEVICE: std::sync::OnceLock<Device> = std::sync::OnceLock::new();

/// Parses a device name: `cpu` (burn's `flex` backend, the default), `cuda` (NVIDIA,
/// Cargo feature `cuda`) or `wgpu` (Vulkan / Metal / DX12, Cargo feature `wgpu`).
///
/// # Errors
/// [`TrainError::Setting`] for an unknown name or a backend this build lacks.
pub fn parse_device(name: &str) -> Result<Device, TrainError> {
    #[allow(unused_variables)]
    let missing = |feature: &str| {
        TrainError::setting(
            "device",
            name,
            format!("this build lacks the `{feature}` feature (rebuild with --features {feature})"),
        )
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "" | "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        #[cfg(not(feature = "cuda"))]
        "cuda" => Err(missing("cuda")),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(not(feature = "wgpu"))]
        "wgpu" => Err(missing("wgpu")),
        _ => {
            Err(TrainError::setting("device", name, format!("unknown; known: {}", DEVICES.map(|(n, _)| n).join(", "))))
        }
    }
}

/// Chooses the device every later network, supernet and training uses, from `name`
/// or, when `None`, from the `DANAS_DEVICE` environment variable (default `cpu`).
/// Call it once at start-up to turn a bad setting into an error; afterwards the
/// choice is fixed for the process.
///
/// # Errors
/// As [`parse_device`].
pub fn select_device(name: Option<&str>) -> Result<(), TrainError> {
    let wanted = match name {
        Some(n) => n.to_string(),
        None => std::env::var("DANAS_DEVICE").unwrap_or_default(),
    };
    let d = parse_device(&wanted)?;
    let _ = DEVICE.set(d);
    Ok(())
}

/// The device of this process (see [`select_device`]); when none was selected and
/// `DANAS_DEVICE` does not name a usable one, the CPU, with a warning on stderr
/// (the `danas` binary calls [`select_device`] and stops instead).
pub fn device() -> Device {
    DEVICE
        .get_or_init(|| {
            parse_device(&std::env::var("DANAS_DEVICE").unwrap_or_default()).unwrap_or_else(|e| {
                eprintln!("warning: DANAS_DEVICE: {e}; training on the CPU");
                Device::flex()
            })
        })
        .clone()
}

/// Trainable parameters of one conv + BatchNorm (running statistics are
/// parameters that never receive gradients).
#[derive(Module, Debug)]
pub(crate) struct ConvParams {
    pub(crate) weight: Param<Tensor<4>>,
    pub(crate) gamma: Param<Tensor<1>>,
    pub(crate) beta: Param<Tensor<1>>,
    pub(crate) mean: Param<Tensor<1>>,
    pub(crate) var: Param<Tensor<1>>,
}

/// All parameters of a network.
#[derive(Module, Debug)]
pub(crate) struct NetParams {
    pub(crate) convs: Vec<ConvParams>,
    pub(crate) fc_weight: Param<Tensor<2>>,
    pub(crate) fc_bias: Param<Tensor<1>>,
}

/// Plain tensors of one conv + BatchNorm, possibly slices of a larger layer.
#[derive(Clone, Debug)]
pub(crate) struct ConvT {
    pub(crate) weight: Tensor<4>,
    pub(crate) gamma: Tensor<1>,
    pub(crate) beta: Tensor<1>,
    pub(crate) mean: Tensor<1>,
    pub(crate) var: Tensor<1>,
}

/// Plain tensors of a network, in [`Blueprint::named_convs`] order.
#[derive(Clone, Debug)]
pub(crate) struct NetT {
    pub(crate) convs: Vec<ConvT>,
    pub(crate) fc_weight: Tensor<2>,
    pub(crate) fc_bias: Tensor<1>,
}

/// How BatchNorm normalises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BnMode {
    /// Running statistics (inference).
    Running,
    /// Batch statistics (training, recalibration); they are returned.
    Batch,
}

/// Batch mean and biased variance of one BatchNorm layer.
pub(crate) type BatchStats = (Tensor<1>, Tensor<1>);

fn tensor_data<const D: usize>(v: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    t.into_data().try_into_vec::<f32>().map_err(|e| TrainError::Backend(format!("{e:?}")))
}

impl NetParams {
    pub(crate) fn from_weights(bp: &Blueprint, w: &NetWeights, device: &Device) -> Result<Self, TrainError> {
        w.check(bp)?;
        let stat = |v: &[f32]| Param::from_tensor(tensor_data(v, [v.len()], device)).set_require_grad(false);
        let convs = bp
            .named_convs()
            .iter()
            .zip(&w.convs)
            .map(|((_, c), cw)| ConvParams {
                weight: Param::from_tensor(tensor_data(&cw.weight, conv_shape(c), device)),
                gamma: Param::from_tensor(tensor_data(&cw.gamma, [cw.gamma.len()], device)),
                beta: Param::from_tensor(tensor_data(&cw.beta, [cw.beta.len()], device)),
                mean: stat(&cw.mean),
                var: stat(&cw.var),
            })
            .collect();
        let (f, n) = (bp.head.features as usize, bp.head.classes as usize);
        Ok(Self {
            convs,
            fc_weight: Param::from_tensor(tensor_data(&w.fc_weight, [f, n], device)),
            fc_bias: Param::from_tensor(tensor_data(&w.fc_bias, [n], device)),
        })
    }

    pub(crate) fn to_weights(&self) -> Result<NetWeights, TrainError> {
        let convs = self
            .convs
            .iter()
            .map(|c| {
                Ok(ConvWeights {
                    weight: to_vec(c.weight.val())?,
                    gamma: to_vec(c.gamma.val())?,
                    beta: to_vec(c.beta.val())?,
                    mean: to_vec(c.mean.val())?,
                    var: to_vec(c.var.val())?,
                })
            })
            .collect::<Result<Vec<_>, TrainError>>()?;
        Ok(NetWeights { convs, fc_weight: to_vec(self.fc_weight.val())?, fc_bias: to_vec(self.fc_bias.val())? })
    }

    /// Current values as plain tensors (cheap handles; gradients flow through them).
    pub(crate) fn view(&self) -> NetT {
        NetT {
            convs: self
                .convs
                .iter()
                .map(|c| ConvT {
                    weight: c.weight.val(),
                    gamma: c.gamma.val(),
                    beta: c.beta.val(),
                    mean: c.mean.val(),
                    var: c.var.val(),
                })
                .collect(),
            fc_weight: self.fc_weight.val(),
            fc_bias: self.fc_bias.val(),
        }
    }

    /// Moves running statistics towards the given batch statistics (`momentum` is the weight of the batch).
    pub(crate) fn update_stats(mut self, stats: Vec<BatchStats>, momentum: f64) -> Self {
        self.convs = self
            .convs
            .into_iter()
            .zip(stats)
            .map(|(mut c, (m, v))| {
                c.mean = c.mean.map(|t| t.mul_scalar(1.0 - momentum).add(m.detach().mul_scalar(momentum)).detach());
                c.var = c.var.map(|t| t.mul_scalar(1.0 - momentum).add(v.detach().mul_scalar(momentum)).detach());
                c
            })
            .collect();
        self
    }

    /// Sets running statistics to the given values.
    pub(crate) fn set_stats(mut self, stats: Vec<BatchStats>) -> Self {
        self.convs = self
            .convs
            .into_iter()
            .zip(stats)
            .map(|(mut c, (m, v))| {
                c.mean = c.mean.map(|_| m.detach());
                c.var = c.var.map(|_| v.detach());
                c
            })
            .collect();
        self
    }
}

/// One convolution (no bias) with TF SAME padding on an NCHW tensor.
pub(crate) fn conv(x: Tensor<4>, layer: &ConvLayer, weight: &Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let k = layer.kernel;
    let s = layer.stride;
    let (_, top, bottom) = same_padding(h as u32, k, s);
    let (_, left, right) = same_padding(w as u32, k, s);
    let opts = ConvOptions::new_with_padding(
        [s as usize, s as usize],
        [(top as usize, bottom as usize), (left as usize, right as usize)],
        [1, 1],
        layer.groups as usize,
    );
    // 1×1, stride-1 convolutions (expand, project, last conv) are one batched matrix
    // product on NCHW data: cheaper than the conv path, forward and backward.
    if k == 1 && s == 1 && layer.groups == 1 {
        let [n, c, h, w] = x.dims();
        let o = weight.dims()[0];
        let wm = weight.clone().reshape([1, o, c]);
        wm.matmul(x.reshape([n, c, h * w])).reshape([n, o, h, w])
    } else {
        conv2d(x, weight.clone(), None, opts)
    }
}

/// Applies one conv + BatchNorm (+ ReLU6 when the layer asks for it) with TF SAME padding.
pub(crate) fn conv_bn(
    x: Tensor<4>,
    layer: &ConvLayer,
    t: &ConvT,
    mode: BnMode,
    stats: &mut Vec<BatchStats>,
) -> Tensor<4> {
    let y = conv(x, layer, &t.weight);
    let y = match mode {
        BnMode::Running => batch_norm(y, t.gamma.clone(), t.beta.clone(), t.mean.clone(), t.var.clone(), BN_EPSILON),
        BnMode::Batch => {
            let out = batch_norm_train(y, t.gamma.clone(), t.beta.clone(), BN_EPSILON);
            stats.push((out.mean, out.variance));
            out.output
        }
    };
    if layer.relu6 { relu6_fast(y) } else { y }
}

/// ReLU6 as `relu(x) − relu(x − 6)`: equal to `clamp(x, 0, 6)` everywhere, with the
/// same gradient except on the two boundary points, and much cheaper on burn's CPU
/// backend than `clamp` (two masked fills forward and backward).
pub(crate) fn relu6_fast(y: Tensor<4>) -> Tensor<4> {
    relu(y.clone()) - relu(y.sub_scalar(6.0))
}

/// Global average pooling + classifier.
pub(crate) fn head(x: Tensor<4>, fc_weight: Tensor<2>, fc_bias: Tensor<1>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    classifier(x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]), fc_weight, fc_bias)
}

/// The classifier on pooled features `[n, features]`.
pub(crate) fn classifier(pooled: Tensor<2>, fc_weight: Tensor<2>, fc_bias: Tensor<1>) -> Tensor<2> {
    let classes = fc_bias.dims()[0];
    pooled.matmul(fc_weight) + fc_bias.reshape([1, classes])
}

/// Runs the convolutions of `bp` on `x` in [`Blueprint::named_convs`] order:
/// stem, then each block's expand, depthwise and project convs with its residual
/// add, then the last conv. `conv` applies one conv + BatchNorm (+ ReLU6) with its
/// tensors; `add` is the residual add. Both forward paths (NCHW here, NHWC in
/// [`crate::cpu`]) walk the network through this one function.
pub(crate) fn walk<A: Clone>(
    bp: &Blueprint,
    t: &NetT,
    x: A,
    mut conv: impl FnMut(A, &ConvLayer, &ConvT) -> A,
    add: impl Fn(A, A) -> A,
) -> A {
    let mut convs = t.convs.iter();
    let mut next = |x: A, layer: &ConvLayer| match convs.next() {
        Some(c) => conv(x, layer, c),
        // `NetParams::from_weights` checks one tensor set per conv of the blueprint.
        None => unreachable!("fewer conv tensors than the blueprint has convs"),
    };
    let mut x = next(x, &bp.stem);
    for b in &bp.blocks {
        let input = x.clone();
        let mut y = x;
        if let Some(e) = b.expand() {
            y = next(y, &e);
        }
        y = next(y, &b.depthwise());
        y = next(y, &b.project());
        x = if b.residual { add(y, input) } else { y };
    }
    if let Some(l) = &bp.last_conv {
        x = next(x, l);
    }
    x
}

/// The forward pass of `bp` with tensors `t`. Returns the logits and, in
/// [`BnMode::Batch`], the batch statistics of every BatchNorm in conv order.
pub(crate) fn forward(bp: &Blueprint, t: &NetT, x: Tensor<4>, mode: BnMode) -> (Tensor<2>, Vec<BatchStats>) {
    let mut stats = Vec::new();
    let x = walk(bp, t, x, |x, layer, ct| conv_bn(x, layer, ct, mode, &mut stats), |y, input| y + input);
    (head(x, t.fc_weight.clone(), t.fc_bias.clone()), stats)
}

/// Checks a batch against a blueprint's input.
fn check_batch(bp: &Blueprint, batch: &Batch, split: danas_core::Split) -> Result<(), TrainError> {
    let (h, w, c) = bp.data.input_hwc();
    let bad = |field: &str, value: usize, expected: String| TrainError::BadBatch {
        split,
        field: field.to_string(),
        value: value.to_string(),
        expected,
    };
    for (field, got, want) in [("c", batch.c, c), ("h", batch.h, h), ("w", batch.w, w)] {
        if got != want as usize {
            return Err(bad(field, got, format!("{want} for data configuration {}", bp.data)));
        }
    }
    if batch.n == 0 {
        return Err(bad("n", 0, "at least 1 image".into()));
    }
    batch.validate().map_err(|e| bad("images.len", batch.images.len(), e.to_string()))?;
    for (i, &l) in batch.labels.iter().enumerate() {
        if l >= bp.head.classes {
            return Err(TrainError::BadBatch {
                split,
                field: format!("labels[{i}]"),
                value: l.to_string(),
                expected: format!("a class below {}", bp.head.classes),
            });
        }
    }
    Ok(())
}

/// Checks a batch against a blueprint's input and returns it as an NCHW tensor.
pub(crate) fn batch_tensor(
    bp: &Blueprint,
    batch: &Batch,
    split: danas_core::Split,
    device: &Device,
) -> Result<Tensor<4>, TrainError> {
    check_batch(bp, batch, split)?;
    Ok(Tensor::from_data(TensorData::new(batch.images.clone(), [batch.n, batch.c, batch.h, batch.w]), device))
}

/// A network input in the layout the device's path wants: NHWC for the fused
/// CPU path, NCHW for the composite (GPU) path.
#[derive(Clone, Debug)]
pub(crate) enum NetInput {
    /// NCHW, for [`forward`].
    Nchw(Tensor<4>),
    /// NHWC rows, for [`crate::cpu::forward`].
    Nhwc(Act),
}

/// Checks a batch against a blueprint's input and lays it out for `device`.
pub(crate) fn batch_input(
    bp: &Blueprint,
    batch: &Batch,
    split: danas_core::Split,
    device: &Device,
) -> Result<NetInput, TrainError> {
    if is_fused_device(device) {
        check_batch(bp, batch, split)?;
        Ok(NetInput::Nhwc(Act::from_nchw(&batch.images, batch.n, batch.c, batch.h, batch.w, device)))
    } else {
        batch_tensor(bp, batch, split, device).map(NetInput::Nchw)
    }
}

/// The forward pass on an input of either layout (see [`forward`]).
pub(crate) fn forward_input(bp: &Blueprint, t: &NetT, x: NetInput, mode: BnMode) -> (Tensor<2>, Vec<BatchStats>) {
    match x {
        NetInput::Nchw(x) => forward(bp, t, x, mode),
        NetInput::Nhwc(x) => crate::cpu::forward(bp, t, x, mode),
    }
}

/// A MobileNetV2-family network built from a candidate's [`Blueprint`], with
/// its BatchNorm layers and running statistics.
#[derive(Debug)]
pub struct Network {
    candidate: Candidate,
    blueprint: Blueprint,
    pub(crate) params: NetParams,
}

impl Clone for Network {
    /// A deep copy: the copy's parameters are independent tensors.
    fn clone(&self) -> Self {
        // Tensors are immutable values; updates replace them, so sharing handles is a deep copy in effect.
        Self { candidate: self.candidate.clone(), blueprint: self.blueprint.clone(), params: self.params.clone() }
    }
}

impl Network {
    /// A freshly initialised network for `candidate` with `classes` outputs, on the CPU.
    ///
    /// # Errors
    /// [`TrainError::Core`] when the candidate or `classes` is invalid.
    pub fn new(candidate: &Candidate, classes: u32, seed: u64) -> Result<Self, TrainError> {
        let bp = candidate.blueprint(classes)?;
        let w = NetWeights::init(&bp, seed);
        Self::from_weights(candidate, classes, &w)
    }

    /// A network for `candidate` with the given weights, on the CPU.
    ///
    /// # Errors
    /// [`TrainError::Core`] for an invalid candidate, [`TrainError::Setting`] when a
    /// weight buffer has the wrong size.
    pub fn from_weights(candidate: &Candidate, classes: u32, weights: &NetWeights) -> Result<Self, TrainError> {
        let bp = candidate.blueprint(classes)?;
        let params = NetParams::from_weights(&bp, weights, &device())?;
        Ok(Self { candidate: candidate.clone(), blueprint: bp, params })
    }

    pub(crate) fn from_params(candidate: Candidate, blueprint: Blueprint, params: NetParams) -> Self {
        Self { candidate, blueprint, params }
    }

    /// The candidate this network implements.
    pub fn candidate(&self) -> &Candidate {
        &self.candidate
    }

    /// The blueprint the network was built from.
    pub fn blueprint(&self) -> &Blueprint {
        &self.blueprint
    }

    /// Number of classes.
    pub fn classes(&self) -> u32 {
        self.blueprint.head.classes
    }

    /// Copies the weights out to host memory.
    ///
    /// # Errors
    /// [`TrainError::Backend`] if the backend returns unexpected data.
    pub fn weights(&self) -> Result<NetWeights, TrainError> {
        self.params.to_weights()
    }

    /// Deployable parameter count with BatchNorm folded, read from the actual
    /// tensors: every conv's weights plus one bias per output channel (the folded
    /// BatchNorm), and the classifier's weights and bias.
    pub fn param_count_folded(&self) -> u64 {
        let convs: u64 = self
            .params
            .convs
            .iter()
            .map(|c| c.weight.val().shape().num_elements() as u64 + c.gamma.val().dims()[0] as u64)
            .sum();
        convs + self.params.fc_weight.val().shape().num_elements() as u64 + self.params.fc_bias.val().dims()[0] as u64
    }

    /// Inference logits (running BatchNorm statistics) for a batch, `n × classes` row-major.
    ///
    /// # Errors
    /// [`TrainError::BadBatch`] when the batch does not match the network's input or classes.
    pub fn logits(&self, batch: &Batch) -> Result<Vec<f32>, TrainError> {
        let x = batch_input(&self.blueprint, batch, danas_core::Split::Validation, &device())?;
        to_vec(self.forward_input(x))
    }

    /// Inference forward pass on an NCHW tensor (running BatchNorm statistics).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = if is_fused_device(&x.device()) { NetInput::Nhwc(Act::from_tensor(x)) } else { NetInput::Nchw(x) };
        self.forward_input(x)
    }

    /// Inference forward pass on a prepared input.
    pub(crate) fn forward_input(&self, x: NetInput) -> Tensor<2> {
        forward_input(&self.blueprint, &self.params.view(), x, BnMode::Running).0
    }

    /// BatchNorm folded into the convolutions: per conv, `(weight, bias)` with
    /// `w' = w·γ/√(σ²+ε)` and `b' = β − μ·γ/√(σ²+ε)`; then the classifier.
    ///
    /// # Errors
    /// [`TrainError::Backend`] if the backend returns unexpected data.
    pub fn folded(&self) -> Result<FoldedWeights, TrainError> {
        let w = self.weights()?;
        let convs = w
            .convs
            .iter()
            .map(|c| {
                let o = c.gamma.len();
                let per = c.weight.len() / o.max(1);
                let scale: Vec<f32> =
                    (0..o).map(|j| c.gamma[j] / (f64::from(c.var[j]) + BN_EPSILON).sqrt() as f32).collect();
                let weight = c.weight.iter().enumerate().map(|(i, &v)| v * scale[i / per]).collect();
                let bias = (0..o).map(|j| c.beta[j] - c.mean[j] * scale[j]).collect();
                (weight, bias)
            })
            .collect();
        Ok(FoldedWeights { convs, fc_weight: w.fc_weight, fc_bias: w.fc_bias })
    }
}

/// Deployable weights with BatchNorm folded into conv biases.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedWeights {
    /// Per conv (in [`Blueprint::named_convs`] order): weights `[out, in/groups, k, k]` and bias `[out]`.
    pub convs: Vec<(Vec<f32>, Vec<f32>)>,
    /// Classifier weights `[features, classes]`.
    pub fc_weight: Vec<f32>,
    /// Classifier bias.
    pub fc_bias: Vec<f32>,
}

impl FoldedWeights {
    /// Number of parameters.
    pub fn param_count(&self) -> u64 {
        self.convs.iter().map(|(w, b)| (w.len() + b.len()) as u64).sum::<u64>()
            + (self.fc_weight.len() + self.fc_bias.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Host reference: TF SAME conv, one input channel, one output channel.
    fn reference(x: &[f32], n: usize, w: &[f32], k: usize, s: usize) -> Vec<f32> {
        let (out, before, _) = same_padding(n as u32, k as u32, s as u32);
        let (out, before) = (out as usize, before as i64);
        let mut y = vec![0.0; out * out];
        for oy in 0..out {
            for ox in 0..out {
                let mut acc = 0.0;
                for ky in 0..k {
                    for kx in 0..k {
                        let iy = (oy * s + ky) as i64 - before;
                        let ix = (ox * s + kx) as i64 - before;
                        if iy >= 0 && ix >= 0 && (iy as usize) < n && (ix as usize) < n {
                            acc += x[iy as usize * n + ix as usize] * w[ky * k + kx];
                        }
                    }
                }
                y[oy * out + ox] = acc;
            }
        }
        y
    }

    fn unit_bn(c: usize, w: &[f32], shape: [usize; 4], device: &Device) -> ConvT {
        ConvT {
            weight: tensor_data(w, shape, device),
            gamma: tensor_data(&vec![1.0; c], [c], device),
            beta: tensor_data(&vec![0.0; c], [c], device),
            mean: tensor_data(&vec![0.0; c], [c], device),
            var: tensor_data(&vec![1.0 - BN_EPSILON as f32; c], [c], device),
        }
    }

    #[test]
    fn depthwise_conv_is_a_per_channel_same_conv() {
        let device = cpu_device();
        for (n, k, s) in [(4usize, 3usize, 2usize), (5, 3, 2), (6, 5, 2), (7, 3, 1), (6, 5, 1)] {
            let c = 3;
            let x: Vec<f32> = (0..c * n * n).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.1).collect();
            let w: Vec<f32> = (0..c * k * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let layer = ConvLayer {
                in_ch: c as u32,
                out_ch: c as u32,
                kernel: k as u32,
                stride: s as u32,
                groups: c as u32,
                in_hw: (n as u32, n as u32),
                out_hw: (0, 0),
                relu6: false,
            };
            let t = unit_bn(c, &w, [c, 1, k, k], &device);
            let y = conv_bn(tensor_data(&x, [1, c, n, n], &device), &layer, &t, BnMode::Running, &mut Vec::new());
            let got = to_vec(y).unwrap();
            let per = got.len() / c;
            for ch in 0..c {
                let want = reference(&x[ch * n * n..(ch + 1) * n * n], n, &w[ch * k * k..(ch + 1) * k * k], k, s);
                for (a, b) in got[ch * per..(ch + 1) * per].iter().zip(&want) {
                    assert!((a - b).abs() < 1e-4, "n {n} k {k} s {s} channel {ch}");
                }
            }
        }
    }

    #[test]
    fn pointwise_matmul_path_equals_conv2d() {
        let device = cpu_device();
        let (n, c, o, h) = (2usize, 5usize, 4usize, 3usize);
        let x: Vec<f32> = (0..n * c * h * h).map(|i| ((i * 13 % 17) as f32 - 8.0) * 0.1).collect();
        let w: Vec<f32> = (0..o * c).map(|i| (i as f32 * 0.61).cos()).collect();
        let layer = ConvLayer {
            in_ch: c as u32,
            out_ch: o as u32,
            kernel: 1,
            stride: 1,
            groups: 1,
            in_hw: (h as u32, h as u32),
            out_hw: (h as u32, h as u32),
            relu6: false,
        };
        let t = unit_bn(o, &w, [o, c, 1, 1], &device);
        let xt = tensor_data(&x, [n, c, h, h], &device);
        let got = to_vec(conv_bn(xt.clone(), &layer, &t, BnMode::Running, &mut Vec::new())).unwrap();
        let opts = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let want = to_vec(conv2d(xt, t.weight.clone(), None, opts)).unwrap();
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    #[test]
    fn relu6_fast_equals_clamp() {
        let device = cpu_device();
        let x: Vec<f32> = (0..64).map(|i| i as f32 * 0.25 - 4.0).collect();
        let t = tensor_data(&x, [1, 1, 8, 8], &device);
        let got = to_vec(relu6_fast(t)).unwrap();
        for (a, v) in got.iter().zip(&x) {
            assert_eq!(*a, v.clamp(0.0, 6.0));
        }
    }

    #[test]
    fn tf_same_padding_is_asymmetric_for_stride_2_on_even_sizes() {
        let device = cpu_device();
        for (n, k, s) in [(4usize, 3usize, 2usize), (5, 3, 2), (6, 5, 2), (4, 3, 1), (7, 5, 1)] {
            let x: Vec<f32> = (0..n * n).map(|i| i as f32 * 0.1 - 0.7).collect();
            let w: Vec<f32> = (0..k * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let layer = ConvLayer {
                in_ch: 1,
                out_ch: 1,
                kernel: k as u32,
                stride: s as u32,
                groups: 1,
                in_hw: (n as u32, n as u32),
                out_hw: (0, 0),
                relu6: false,
            };
            let t = ConvT {
                weight: tensor_data(&w, [1, 1, k, k], &device),
                gamma: tensor_data(&[1.0], [1], &device),
                beta: tensor_data(&[0.0], [1], &device),
                mean: tensor_data(&[0.0], [1], &device),
                var: tensor_data(&[1.0 - BN_EPSILON as f32], [1], &device),
            };
            let y = conv_bn(tensor_data(&x, [1, 1, n, n], &device), &layer, &t, BnMode::Running, &mut Vec::new());
            let got = to_vec(y).unwrap();
            let want = reference(&x, n, &w, k, s);
            assert_eq!(got.len(), want.len(), "n {n} k {k} s {s}");
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "n {n} k {k} s {s}: {got:?} vs {want:?}");
            }
        }
    }
}
