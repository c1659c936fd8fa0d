//! The MobileNetV2-family network built at run time from a [`Blueprint`].

use burn::tensor::{Device, Tensor, TensorData};
use danas_core::{Batch, Blueprint, Candidate};

use crate::TrainError;
use crate::composite::forward;
use crate::cpu::{Act, is_fused_device};
use crate::params::{BN_EPSILON, BatchStats, BnMode, NetParams, NetT, to_vec};
use crate::weights::NetWeights;

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
