//! The composite forward path: burn's own tensor operations on NCHW data. GPU
//! devices run it; the CPU runs the fused path of [`crate::cpu`], which is tested
//! against it.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::{batch_norm, batch_norm_train, conv2d};
use burn::tensor::ops::ConvOptions;
use danas_core::{Blueprint, ConvLayer, same_padding};

use crate::params::{BN_EPSILON, BatchStats, BnMode, ConvT, NetT, classifier, walk};

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

/// The forward pass of `bp` with tensors `t`. Returns the logits and, in
/// [`BnMode::Batch`], the batch statistics of every BatchNorm in conv order.
pub(crate) fn forward(bp: &Blueprint, t: &NetT, x: Tensor<4>, mode: BnMode) -> (Tensor<2>, Vec<BatchStats>) {
    let mut stats = Vec::new();
    let x = walk(bp, t, x, |x, layer, ct| conv_bn(x, layer, ct, mode, &mut stats), |y, input| y + input);
    (head(x, t.fc_weight.clone(), t.fc_bias.clone()), stats)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    use crate::params::{tensor_data, to_vec};
    use burn::tensor::Device;

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
        let device = Device::flex();
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
        let device = Device::flex();
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
        let device = Device::flex();
        let x: Vec<f32> = (0..64).map(|i| i as f32 * 0.25 - 4.0).collect();
        let t = tensor_data(&x, [1, 1, 8, 8], &device);
        let got = to_vec(relu6_fast(t)).unwrap();
        for (a, v) in got.iter().zip(&x) {
            assert_eq!(*a, v.clamp(0.0, 6.0));
        }
    }

    #[test]
    fn tf_same_padding_is_asymmetric_for_stride_2_on_even_sizes() {
        let device = Device::flex();
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
