//! The fused CPU operations as a burn backend extension: forward kernels on
//! burn's `flex` backend and hand-written backward passes on `Autodiff<Flex>`.
//! Other backends (CUDA, wgpu) never reach these operations; they run the
//! composite path of [`crate::composite`].

use std::borrow::Cow;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, ExtensionType, Flex, backend_extension};
use burn::tensor::{Tensor, TensorData};

use super::kernels::{self, ConvGeom};

/// Output of the fused batch-statistics BatchNorm.
#[derive(ExtensionType)]
pub struct BnTrainOut<B: Backend> {
    /// Normalised (and activated) output.
    pub y: FloatTensor<B>,
    /// Batch mean per channel (no gradient).
    pub mean: FloatTensor<B>,
    /// Biased batch variance per channel (no gradient).
    pub var: FloatTensor<B>,
}

/// Fused operations on NHWC activations stored as `[rows, channels]`.
#[backend_extension(Flex, Autodiff)]
pub trait CpuFused: Backend {
    /// BatchNorm with batch statistics over the rows, then ReLU6 when `relu6`.
    fn bn_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        relu6: bool,
    ) -> BnTrainOut<Self>;
    /// BatchNorm with the given (running) statistics, then ReLU6 when `relu6`.
    fn bn_infer(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        eps: f64,
        relu6: bool,
    ) -> FloatTensor<Self>;
    /// Depthwise convolution; weights in burn's `[c, 1, k, k]` layout.
    fn depthwise(x: FloatTensor<Self>, weight: FloatTensor<Self>, geom: ConvGeom) -> FloatTensor<Self>;
    /// Patches `[n·ho·wo, c·k·k]` of a dense convolution.
    fn im2col(x: FloatTensor<Self>, geom: ConvGeom) -> FloatTensor<Self>;
}

/// The `f32` elements of a flex tensor, borrowed when contiguous.
fn host(t: &FlexTensor) -> Cow<'_, [f32]> {
    if let Some(s) = t.as_slice::<f32>() {
        return Cow::Borrowed(s);
    }
    let data = t.clone().into_data().convert::<f32>();
    Cow::Owned(data.try_into_vec::<f32>().unwrap_or_default())
}

fn flex(v: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

fn channels(t: &FlexTensor) -> usize {
    t.layout().shape().as_slice().last().copied().unwrap_or(0)
}

fn shape_of(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().as_slice().to_vec()
}

impl CpuFused for Flex {
    fn bn_train(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, eps: f64, relu6: bool) -> BnTrainOut<Self> {
        let c = channels(&x);
        let f = kernels::bn_train_forward(&host(&x), c, &host(&gamma), &host(&beta), eps, relu6);
        BnTrainOut { y: flex(f.y, shape_of(&x)), mean: flex(f.mean, vec![c]), var: flex(f.var, vec![c]) }
    }

    fn bn_infer(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        var: FlexTensor,
        eps: f64,
        relu6: bool,
    ) -> FlexTensor {
        let c = channels(&x);
        let (scale, bias) = kernels::bn_scale_bias(&host(&gamma), &host(&beta), &host(&mean), &host(&var), eps);
        flex(kernels::affine_act(&host(&x), c, &scale, &bias, relu6), shape_of(&x))
    }

    fn depthwise(x: FlexTensor, weight: FlexTensor, geom: ConvGeom) -> FlexTensor {
        let taps = kernels::depthwise_taps(&host(&weight), geom.c, geom.k);
        flex(kernels::depthwise_forward(&host(&x), &taps, &geom), vec![geom.output_rows(), geom.c])
    }

    fn im2col(x: FlexTensor, geom: ConvGeom) -> FlexTensor {
        flex(kernels::im2col(&host(&x), &geom), vec![geom.output_rows(), geom.c * geom.k * geom.k])
    }
}

/// What a BatchNorm's backward pass keeps: input, γ, β, the mean and variance it
/// normalised with, ε, ReLU6.
type BnState = (FlexTensor, FlexTensor, FlexTensor, FlexTensor, FlexTensor, f64, bool);

/// Calls `f` with the host data of a saved BatchNorm: its input and [`kernels::Bn`].
fn with_bn<R>(state: &BnState, f: impl FnOnce(&[f32], &kernels::Bn<'_>) -> R) -> R {
    let (x, gamma, beta, mean, var, eps, relu6) = state;
    let (gamma, beta, mean, var) = (host(gamma), host(beta), host(mean), host(var));
    let bn =
        kernels::Bn { c: channels(x), gamma: &gamma, beta: &beta, mean: &mean, var: &var, eps: *eps, relu6: *relu6 };
    f(&host(x), &bn)
}

#[derive(Debug)]
struct BnTrainBackward;

impl Backward<Flex, 3> for BnTrainBackward {
    type State = BnState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let b = with_bn(&ops.state, |x, bn| kernels::bn_train_backward(&host(&dy), x, bn));
        let (x, c) = (&ops.state.0, b.dgamma.len());
        for (node, g, shape) in
            [(node_x, b.dx, shape_of(x)), (node_gamma, b.dgamma, vec![c]), (node_beta, b.dbeta, vec![c])]
        {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, flex(g, shape));
            }
        }
    }
}

#[derive(Debug)]
struct BnInferBackward;

impl Backward<Flex, 5> for BnInferBackward {
    type State = BnState;

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta, node_mean, node_var] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (dx, dgamma, dbeta, dmean, dvar) =
            with_bn(&ops.state, |x, bn| kernels::bn_infer_backward(&host(&dy), x, bn));
        let (x, c) = (&ops.state.0, dgamma.len());
        for (node, g, shape) in [
            (node_x, dx, shape_of(x)),
            (node_gamma, dgamma, vec![c]),
            (node_beta, dbeta, vec![c]),
            (node_mean, dmean, vec![c]),
            (node_var, dvar, vec![c]),
        ] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, flex(g, shape));
            }
        }
    }
}

#[derive(Debug)]
struct DepthwiseBackward;

impl Backward<Flex, 2> for DepthwiseBackward {
    /// Input, weights, geometry.
    type State = (FlexTensor, FlexTensor, ConvGeom);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, weight, g) = ops.state;
        let taps = kernels::depthwise_taps(&host(&weight), g.c, g.k);
        let (dx, dtaps) = kernels::depthwise_backward(&host(&dy), &host(&x), &taps, &g, node_x.is_some());
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, flex(dx, shape_of(&x)));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, flex(kernels::depthwise_untaps(&dtaps, g.c, g.k), shape_of(&weight)));
        }
    }
}

#[derive(Debug)]
struct Im2colBackward;

impl Backward<Flex, 1> for Im2colBackward {
    /// Geometry.
    type State = ConvGeom;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dcols = grads.consume::<Flex>(&ops.node);
        let g = ops.state;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex(kernels::col2im(&host(&dcols), &g), vec![g.n * g.h * g.w, g.c]));
        }
    }
}

type AdTensor = FloatTensor<Autodiff<Flex>>;

impl<C: CheckpointStrategy> CpuFused for Autodiff<Flex, C> {
    fn bn_train(x: AdTensor, gamma: AdTensor, beta: AdTensor, eps: f64, relu6: bool) -> BnTrainOut<Self> {
        let (xp, gp, bp) = (x.primitive().clone(), gamma.primitive().clone(), beta.primitive().clone());
        let out = <Flex as CpuFused>::bn_train(xp.clone(), gp.clone(), bp.clone(), eps, relu6);
        let (mean, var) = (out.mean.clone(), out.var.clone());
        let y = match BnTrainBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((xp, gp, bp, mean, var, eps, relu6), out.y),
            OpsKind::UnTracked(prep) => prep.finish(out.y),
        };
        BnTrainOut { y, mean: AdTensor::new(out.mean), var: AdTensor::new(out.var) }
    }

    fn bn_infer(
        x: AdTensor,
        gamma: AdTensor,
        beta: AdTensor,
        mean: AdTensor,
        var: AdTensor,
        eps: f64,
        relu6: bool,
    ) -> AdTensor {
        let p =
            [x.primitive(), gamma.primitive(), beta.primitive(), mean.primitive(), var.primitive()].map(Clone::clone);
        let y = <Flex as CpuFused>::bn_infer(
            p[0].clone(),
            p[1].clone(),
            p[2].clone(),
            p[3].clone(),
            p[4].clone(),
            eps,
            relu6,
        );
        match BnInferBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node(), mean.node(), var.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let [px, pg, pb, pm, pv] = p;
                prep.finish((px, pg, pb, pm, pv, eps, relu6), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn depthwise(x: AdTensor, weight: AdTensor, geom: ConvGeom) -> AdTensor {
        let (xp, wp) = (x.primitive().clone(), weight.primitive().clone());
        let y = <Flex as CpuFused>::depthwise(xp.clone(), wp.clone(), geom);
        match DepthwiseBackward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((xp, wp, geom), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn im2col(x: AdTensor, geom: ConvGeom) -> AdTensor {
        let cols = <Flex as CpuFused>::im2col(x.primitive().clone(), geom);
        match Im2colBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(geom, cols),
            OpsKind::UnTracked(prep) => prep.finish(cols),
        }
    }
}

/// [`CpuFused::bn_train`] on tensors: `(y, mean, var)`.
pub(crate) fn bn_train(
    x: Tensor<2>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
    relu6: bool,
) -> (Tensor<2>, Tensor<1>, Tensor<1>) {
    let out =
        <Dispatch as CpuFused>::bn_train(x.into_dispatch(), gamma.into_dispatch(), beta.into_dispatch(), eps, relu6);
    (Tensor::from_dispatch(out.y), Tensor::from_dispatch(out.mean), Tensor::from_dispatch(out.var))
}

/// [`CpuFused::bn_infer`] on tensors.
pub(crate) fn bn_infer(
    x: Tensor<2>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    mean: Tensor<1>,
    var: Tensor<1>,
    eps: f64,
    relu6: bool,
) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as CpuFused>::bn_infer(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        mean.into_dispatch(),
        var.into_dispatch(),
        eps,
        relu6,
    ))
}

/// [`CpuFused::depthwise`] on tensors.
pub(crate) fn depthwise(x: Tensor<2>, weight: Tensor<4>, geom: ConvGeom) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as CpuFused>::depthwise(x.into_dispatch(), weight.into_dispatch(), geom))
}

/// [`CpuFused::im2col`] on tensors.
pub(crate) fn im2col(x: Tensor<2>, geom: ConvGeom) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as CpuFused>::im2col(x.into_dispatch(), geom))
}
