//! The fused CPU path: the same network as [`crate::composite::forward`], computed on
//! NHWC activations with fused BatchNorm (+ ReLU6), depthwise and `im2col`
//! kernels (see [`ext`]) so that one conv + BatchNorm + ReLU6 costs three
//! autodiff nodes instead of a dozen. It runs whenever the device is burn's
//! `flex` CPU backend; GPU backends use the composite path.

pub(crate) mod ext;
pub(crate) mod kernels;

use burn::tensor::{Device, Tensor, TensorData};
use danas_core::{Blueprint, ConvLayer, same_padding};

use crate::params::{BN_EPSILON, BatchStats, BnMode, ConvT, NetT, classifier, walk};
use kernels::ConvGeom;

/// An NHWC activation: `[n·h·w, c]` rows with its spatial sizes.
#[derive(Clone, Debug)]
pub(crate) struct Act {
    pub(crate) t: Tensor<2>,
    pub(crate) n: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
}

impl Act {
    /// An NHWC activation from NCHW host data.
    pub(crate) fn from_nchw(images: &[f32], n: usize, c: usize, h: usize, w: usize, device: &Device) -> Self {
        let mut v = vec![0.0f32; images.len()];
        let hw = h * w;
        for img in 0..n {
            for ch in 0..c {
                let src = &images[(img * c + ch) * hw..][..hw];
                for (p, &val) in src.iter().enumerate() {
                    v[(img * hw + p) * c + ch] = val;
                }
            }
        }
        Self { t: Tensor::from_data(TensorData::new(v, [n * hw, c]), device), n, h, w }
    }

    /// An NHWC activation from an NCHW tensor.
    pub(crate) fn from_tensor(x: Tensor<4>) -> Self {
        let [n, c, h, w] = x.dims();
        Self { t: x.permute([0, 2, 3, 1]).reshape([n * h * w, c]), n, h, w }
    }

    fn channels(&self) -> usize {
        self.t.dims()[1]
    }
}

/// Whether `device` runs the fused CPU path.
pub(crate) fn is_fused_device(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

fn geometry(x: &Act, layer: &ConvLayer) -> ConvGeom {
    let (ho, pad_top, _) = same_padding(x.h as u32, layer.kernel, layer.stride);
    let (wo, pad_left, _) = same_padding(x.w as u32, layer.kernel, layer.stride);
    ConvGeom {
        n: x.n,
        h: x.h,
        w: x.w,
        c: x.channels(),
        k: layer.kernel as usize,
        stride: layer.stride as usize,
        pad_top: pad_top as usize,
        pad_left: pad_left as usize,
        ho: ho as usize,
        wo: wo as usize,
    }
}

/// One conv + BatchNorm (+ ReLU6) on an NHWC activation, TF SAME padding.
pub(crate) fn conv_bn(x: Act, layer: &ConvLayer, t: &ConvT, mode: BnMode, stats: &mut Vec<BatchStats>) -> Act {
    let g = geometry(&x, layer);
    let [o, per_group, k, _] = t.weight.dims();
    let y = if layer.groups > 1 && per_group == 1 && o == g.c {
        ext::depthwise(x.t, t.weight.clone(), g)
    } else if layer.groups == 1 {
        let wm = t.weight.clone().reshape([o, per_group * k * k]).transpose();
        let cols = if k == 1 && g.stride == 1 { x.t } else { ext::im2col(x.t, g) };
        cols.matmul(wm)
    } else {
        // Grouped convolutions (not in the MobileNetV2 family) take burn's conv.
        let nchw = x.t.reshape([g.n, g.h, g.w, g.c]).permute([0, 3, 1, 2]);
        let y = crate::composite::conv(nchw, layer, &t.weight);
        Act::from_tensor(y).t
    };
    let y = match mode {
        BnMode::Running => {
            ext::bn_infer(y, t.gamma.clone(), t.beta.clone(), t.mean.clone(), t.var.clone(), BN_EPSILON, layer.relu6)
        }
        BnMode::Batch => {
            let (y, mean, var) = ext::bn_train(y, t.gamma.clone(), t.beta.clone(), BN_EPSILON, layer.relu6);
            stats.push((mean, var));
            y
        }
    };
    Act { t: y, n: g.n, h: g.ho, w: g.wo }
}

/// The forward pass of `bp` with tensors `t` on an NHWC input; as
/// [`crate::composite::forward`].
pub(crate) fn forward(bp: &Blueprint, t: &NetT, x: Act, mode: BnMode) -> (Tensor<2>, Vec<BatchStats>) {
    let mut stats = Vec::new();
    let x = walk(
        bp,
        t,
        x,
        |x, layer, ct| conv_bn(x, layer, ct, mode, &mut stats),
        |y, input| Act { t: y.t + input.t, ..y },
    );
    let c = x.channels();
    let pooled = x.t.reshape([x.n, x.h * x.w, c]).mean_dim(1).reshape([x.n, c]);
    (classifier(pooled, t.fc_weight.clone(), t.fc_bias.clone()), stats)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::composite::forward as composite_forward;
    use crate::params::{NetParams, to_vec};
    use crate::supernet::slice_view;
    use crate::train::soft_cross_entropy;
    use crate::weights::NetWeights;
    use burn::optim::GradientsParams;
    use danas_core::{Arch, Candidate, Color, DataConfig, LastConv, StageKnobs};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn cands() -> Vec<Candidate> {
        let mut knobs = vec![StageKnobs::default(); 7];
        knobs[3].kernel = Some(5);
        knobs[4].expansion = Some(4);
        vec![
            Candidate::new(DataConfig::new(17, Color::Rgb), Arch::mobilenet_v2(0.35, [2, 1, 1, 1, 1])),
            Candidate::new(DataConfig::new(24, Color::Grayscale), Arch::mobilenet_v2(0.5, [1, 2, 0, 0, 0])),
            Candidate::new(
                DataConfig::new(20, Color::Rgb),
                Arch { stages: knobs, last_conv: LastConv::Channels(40), ..Arch::mobilenet_v2(0.25, [2, 1, 1, 0, 0]) },
            ),
        ]
    }

    /// Weights with random BatchNorm parameters and statistics.
    fn weights(bp: &Blueprint, seed: u64) -> NetWeights {
        let mut w = NetWeights::init(bp, seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for c in &mut w.convs {
            c.gamma.iter_mut().for_each(|v| *v = rng.random_range(0.5..1.5));
            c.beta.iter_mut().for_each(|v| *v = rng.random_range(-0.5..0.5));
            c.mean.iter_mut().for_each(|v| *v = rng.random_range(-0.2..0.2));
            c.var.iter_mut().for_each(|v| *v = rng.random_range(0.5..2.0));
        }
        w.fc_weight.iter_mut().for_each(|v| *v = rng.random_range(-0.5..0.5));
        w
    }

    fn input(bp: &Blueprint, n: usize, seed: u64) -> Vec<f32> {
        let (h, w, c) = bp.data.input_hwc();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * (h * w * c) as usize).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-3);
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * scale, "{what}[{i}]: fused {x} vs composite {y} (scale {scale})");
        }
    }

    fn both_inputs(bp: &Blueprint, x: &[f32], n: usize, device: &Device) -> (Tensor<4>, Act) {
        let (h, w, c) = bp.data.input_hwc();
        let (h, w, c) = (h as usize, w as usize, c as usize);
        let nchw = Tensor::from_data(TensorData::new(x.to_vec(), [n, c, h, w]), device);
        (nchw, Act::from_nchw(x, n, c, h, w, device))
    }

    #[test]
    fn fused_forward_equals_composite_forward() {
        let device = Device::flex();
        for (k, cand) in cands().iter().enumerate() {
            let bp = cand.blueprint(3).unwrap();
            let params = NetParams::from_weights(&bp, &weights(&bp, k as u64), &device).unwrap();
            let n = 5;
            let x = input(&bp, n, 10 + k as u64);
            for mode in [BnMode::Running, BnMode::Batch] {
                let (nchw, nhwc) = both_inputs(&bp, &x, n, &device);
                let (want, want_stats) = composite_forward(&bp, &params.view(), nchw, mode);
                let (got, got_stats) = forward(&bp, &params.view(), nhwc, mode);
                assert_close(&to_vec(got).unwrap(), &to_vec(want).unwrap(), 1e-4, &format!("{cand} {mode:?} logits"));
                assert_eq!(got_stats.len(), want_stats.len());
                for (i, ((gm, gv), (wm, wv))) in got_stats.into_iter().zip(want_stats).enumerate() {
                    assert_close(&to_vec(gm).unwrap(), &to_vec(wm).unwrap(), 1e-4, &format!("{cand} mean {i}"));
                    assert_close(&to_vec(gv).unwrap(), &to_vec(wv).unwrap(), 1e-3, &format!("{cand} var {i}"));
                }
            }
        }
    }

    /// Gradients of every parameter of the supernet after one loss through a
    /// (possibly sliced) sub-network, by one path.
    fn grads(
        sup: &Blueprint,
        sub: &Blueprint,
        w: &NetWeights,
        x: &[f32],
        labels: &[u32],
        fused: bool,
    ) -> Vec<Vec<f32>> {
        let device = Device::flex().autodiff();
        let params = NetParams::from_weights(sup, w, &device).unwrap();
        let t = slice_view(sup, &params.view(), sub, "sup").unwrap();
        let n = labels.len();
        let (nchw, nhwc) = both_inputs(sub, x, n, &device);
        let logits = if fused {
            forward(sub, &t, nhwc, BnMode::Batch).0
        } else {
            composite_forward(sub, &t, nchw, BnMode::Batch).0
        };
        let k = sub.head.classes as usize;
        let mut onehot = vec![0.0f32; n * k];
        for (i, &l) in labels.iter().enumerate() {
            onehot[i * k + l as usize] = 1.0;
        }
        let targets = Tensor::from_data(TensorData::new(onehot, [n, k]), &device);
        let g = GradientsParams::from_grads(soft_cross_entropy(logits, targets).backward(), &params);
        let mut out = Vec::new();
        for c in &params.convs {
            out.push(g.get::<4>(c.weight.id).map(|t| to_vec(t).unwrap()).unwrap_or_default());
            out.push(g.get::<1>(c.gamma.id).map(|t| to_vec(t).unwrap()).unwrap_or_default());
            out.push(g.get::<1>(c.beta.id).map(|t| to_vec(t).unwrap()).unwrap_or_default());
        }
        out.push(g.get::<2>(params.fc_weight.id).map(|t| to_vec(t).unwrap()).unwrap_or_default());
        out.push(g.get::<1>(params.fc_bias.id).map(|t| to_vec(t).unwrap()).unwrap_or_default());
        out
    }

    #[test]
    fn fused_gradients_equal_composite_gradients() {
        for (k, cand) in cands().iter().enumerate() {
            let sup = cand.blueprint(3).unwrap();
            let w = weights(&sup, 20 + k as u64);
            let n = 6;
            let x = input(&sup, n, 30 + k as u64);
            let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
            // The network itself, and a narrower, shallower sub-network sliced out of it.
            let sub_arch = Arch { alpha: cand.arch.alpha * 0.5, depths: vec![1, 1, 0, 0, 0], ..cand.arch.clone() };
            for sub in [sup.clone(), Candidate::new(cand.data, sub_arch).blueprint(3).unwrap()] {
                let want = grads(&sup, &sub, &w, &x, &labels, false);
                let got = grads(&sup, &sub, &w, &x, &labels, true);
                assert_eq!(got.len(), want.len());
                let mut nonzero = 0;
                // Some gradients are zero in exact arithmetic (a BatchNorm shift
                // feeding a 1×1 conv and another BatchNorm) and rounding noise in
                // both paths; compare against the largest gradient of the network.
                let top = want.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()));
                for (i, (g, wv)) in got.iter().zip(&want).enumerate() {
                    let local = wv.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    assert_close(g, wv, 2e-3 * top.max(1e-3) / local.max(1e-3), &format!("{cand} grad {i}"));
                    nonzero += usize::from(wv.iter().any(|v| *v != 0.0));
                }
                assert!(nonzero > want.len() / 2, "most parameters get a gradient");
            }
        }
    }
}

#[cfg(test)]
mod thread_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use crate::{Network, TrainConfig, Trainer};
    use danas_core::{Arch, Batch, Candidate, Color, DataConfig};

    /// Weights after a few steps inside a rayon pool of `threads` threads.
    fn train_in_pool(threads: usize) -> Vec<f32> {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let cand = Candidate::new(DataConfig::new(40, Color::Rgb), Arch::mobilenet_v2(0.5, [2, 1, 1, 0, 0]));
            let net = Network::new(&cand, 2, 3).unwrap();
            let cfg = TrainConfig { steps: 100, batch_size: 16, lr: 3e-3, ..TrainConfig::default() };
            let mut t = Trainer::new(&net, &cfg).unwrap();
            let (n, res) = (16, 40);
            let images = (0..n * 3 * res * res).map(|i| ((i * 7919 % 2003) as f32 / 1001.5) - 1.0).collect();
            let b = Batch { images, labels: (0..n as u32).map(|i| i % 2).collect(), n, c: 3, h: res, w: res };
            for _ in 0..3 {
                t.step(&b).unwrap();
            }
            let w = t.into_network().unwrap().weights().unwrap();
            w.convs.iter().flat_map(|c| c.weight.iter().chain(&c.mean).chain(&c.var).copied()).collect()
        })
    }

    #[test]
    fn results_do_not_depend_on_the_number_of_threads() {
        let one = train_in_pool(1);
        assert_eq!(one, train_in_pool(3), "bitwise equal weights with 1 and 3 threads");
    }
}
