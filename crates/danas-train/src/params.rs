//! A network's parameters as burn modules and as plain tensors, and the one walk
//! over a blueprint's convolutions that both forward paths (the composite NCHW
//! path in [`crate::composite`], the fused CPU path in [`crate::cpu`]) share.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use danas_core::{Blueprint, ConvLayer};

use crate::TrainError;
use crate::weights::{ConvWeights, NetWeights, conv_shape};

/// BatchNorm epsilon (Keras uses 1e-3; PyTorch 1e-5). Folding uses the same value.
pub const BN_EPSILON: f64 = 1e-3;

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

pub(crate) fn tensor_data<const D: usize>(v: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    Ok(t.into_data().try_into_vec::<f32>()?)
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

/// The classifier on pooled features `[n, features]`.
pub(crate) fn classifier(pooled: Tensor<2>, fc_weight: Tensor<2>, fc_bias: Tensor<1>) -> Tensor<2> {
    let classes = fc_bias.dims()[0];
    pooled.matmul(fc_weight) + fc_bias.reshape([1, classes])
}
