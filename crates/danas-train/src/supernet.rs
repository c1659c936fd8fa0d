//! Weight-sharing supernets at the space's maximum width and depth; any candidate
//! is taken out of one as a standalone [`Network`]. A supernet is usually trained
//! for one data configuration; the network is fully convolutional, so the same
//! weights also serve other resolutions, and an rgb supernet serves grayscale
//! candidates (its stem's colour weights summed, which is exact for a gray image
//! seen as three equal channels): one supernet can be trained on every data
//! configuration of a space at once ([`Supernet::train_on`]).

use burn::tensor::{Tensor, TensorData};
use danas_core::{Arch, Blueprint, Candidate, ConvLayer, DataConfig};

use crate::TrainError;
use crate::composite::{conv_bn, head};
use crate::net::{Network, device};
use crate::params::{BnMode, ConvT, NetParams, NetT};
use crate::weights::NetWeights;

/// Where a convolution sits in the MobileNetV2 family, independent of width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Stem,
    Expand(usize, usize),
    Depthwise(usize, usize),
    Project(usize, usize),
    Last,
}

fn roles(bp: &Blueprint) -> Vec<(Role, ConvLayer)> {
    let mut v = vec![(Role::Stem, bp.stem)];
    for b in &bp.blocks {
        if let Some(e) = b.expand() {
            v.push((Role::Expand(b.stage, b.index), e));
        }
        v.push((Role::Depthwise(b.stage, b.index), b.depthwise()));
        v.push((Role::Project(b.stage, b.index), b.project()));
    }
    if let Some(l) = bp.last_conv {
        v.push((Role::Last, l));
    }
    v
}

/// For each conv of `sub`, the index of the supernet conv it is cut from; checks
/// sizes. The data configurations may differ (layers do not depend on the
/// resolution), but an rgb candidate cannot come from a grayscale supernet.
fn conv_map(sup: &Blueprint, sub: &Blueprint, err: &dyn Fn(String) -> TrainError) -> Result<Vec<usize>, TrainError> {
    if sub.data.color.channels() > sup.data.color.channels() {
        return Err(err(format!("a {} candidate cannot be cut from a {} supernet", sub.data.color, sup.data.color)));
    }
    if sup.head.classes != sub.head.classes {
        return Err(err(format!("{} classes, the supernet has {}", sub.head.classes, sup.head.classes)));
    }
    if sub.head.features > sup.head.features {
        return Err(err(format!("{} pooled features exceed the supernet's {}", sub.head.features, sup.head.features)));
    }
    let sup_roles = roles(sup);
    roles(sub)
        .into_iter()
        .map(|(role, c)| {
            let (j, s) = sup_roles
                .iter()
                .enumerate()
                .find(|(_, (r, _))| *r == role)
                .map(|(j, (_, s))| (j, s))
                .ok_or_else(|| err(format!("the supernet has no layer {role:?}")))?;
            if c.out_ch > s.out_ch || c.in_ch > s.in_ch {
                return Err(err(format!(
                    "layer {role:?} has {}→{} channels, the supernet only {}→{}",
                    c.in_ch, c.out_ch, s.in_ch, s.out_ch
                )));
            }
            if c.stride != s.stride || c.is_depthwise() != s.is_depthwise() {
                return Err(err(format!("layer {role:?} differs in stride or kind from the supernet's")));
            }
            if c.kernel > s.kernel || (s.kernel - c.kernel) % 2 != 0 {
                return Err(err(format!(
                    "layer {role:?} has a {}×{} kernel, the supernet {}×{}",
                    c.kernel, c.kernel, s.kernel, s.kernel
                )));
            }
            Ok(j)
        })
        .collect()
}

/// Cuts the sub-network `sub` out of supernet tensors `t` (of blueprint `sup`):
/// first channels of every layer, centre of every kernel. Gradients flow back.
pub(crate) fn slice_view(sup: &Blueprint, t: &NetT, sub: &Blueprint, sup_name: &str) -> Result<NetT, TrainError> {
    let err = |reason: String| TrainError::NotASubnet {
        candidate: format!("{}", sub.data),
        supernet: sup_name.to_string(),
        reason,
    };
    let map = conv_map(sup, sub, &err)?;
    let sub_convs = roles(sub);
    let sup_convs = roles(sup);
    let convs = map
        .iter()
        .zip(&sub_convs)
        .map(|(&j, (role, c))| {
            let s = &sup_convs[j].1;
            let st = &t.convs[j];
            let o = c.out_ch as usize;
            let i = (c.in_ch / c.groups) as usize;
            let off = ((s.kernel - c.kernel) / 2) as usize;
            let k = c.kernel as usize;
            let weight = if *role == Role::Stem && c.in_ch < s.in_ch {
                // a grayscale stem from an rgb one: x·(w_r + w_g + w_b) is the rgb stem on (x, x, x)
                let si = s.in_ch as usize;
                st.weight.clone().slice([0..o, 0..si, off..off + k, off..off + k]).sum_dim(1)
            } else {
                st.weight.clone().slice([0..o, 0..i, off..off + k, off..off + k])
            };
            ConvT {
                weight,
                gamma: st.gamma.clone().narrow(0, 0, o),
                beta: st.beta.clone().narrow(0, 0, o),
                mean: st.mean.clone().narrow(0, 0, o),
                var: st.var.clone().narrow(0, 0, o),
            }
        })
        .collect();
    let f = sub.head.features as usize;
    let n = sub.head.classes as usize;
    Ok(NetT { convs, fc_weight: t.fc_weight.clone().slice([0..f, 0..n]), fc_bias: t.fc_bias.clone() })
}

/// A weight-sharing supernet.
#[derive(Debug, Clone)]
pub struct Supernet {
    pub(crate) net: Network,
}

impl Supernet {
    /// A freshly initialised supernet for data configuration `data` with the
    /// largest architecture of the space `max_arch` (maximum width and depths).
    ///
    /// # Errors
    /// [`TrainError::Core`] when the data configuration, architecture or classes are invalid.
    pub fn new(data: DataConfig, max_arch: Arch, classes: u32, seed: u64) -> Result<Self, TrainError> {
        Ok(Self { net: Network::new(&Candidate::new(data, max_arch), classes, seed)? })
    }

    /// Wraps a network as a supernet (e.g. one loaded from a checkpoint).
    pub fn from_network(net: Network) -> Self {
        Self { net }
    }

    /// The supernet as a network (its largest sub-network).
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// The supernet's own candidate (data configuration and largest architecture).
    pub fn candidate(&self) -> &Candidate {
        self.net.candidate()
    }

    /// The supernet's blueprint.
    pub fn blueprint(&self) -> &Blueprint {
        self.net.blueprint()
    }

    /// Number of classes.
    pub fn classes(&self) -> u32 {
        self.net.classes()
    }

    /// The blueprint of `cand` if it can be cut out of this supernet.
    ///
    /// # Errors
    /// [`TrainError::Core`] for an invalid candidate, [`TrainError::NotASubnet`]
    /// when a layer exceeds the supernet.
    pub fn sub_blueprint(&self, cand: &Candidate) -> Result<Blueprint, TrainError> {
        let bp = cand.blueprint(self.classes())?;
        let err = |reason: String| self.not_a_subnet(cand, reason);
        conv_map(self.blueprint(), &bp, &err)?;
        Ok(bp)
    }

    fn not_a_subnet(&self, cand: &Candidate, reason: String) -> TrainError {
        TrainError::NotASubnet { candidate: cand.to_string(), supernet: self.candidate().to_string(), reason }
    }

    /// A standalone network for `cand`: the first channels of every layer (stem,
    /// expand, depthwise, project, last conv, BatchNorm parameters and running
    /// statistics, the classifier's first input features), the kept blocks (first
    /// blocks of each stage) and the candidate's residuals. Its tensors are copies:
    /// changing the result never changes the supernet.
    ///
    /// # Errors
    /// As [`Supernet::sub_blueprint`].
    pub fn extract(&self, cand: &Candidate) -> Result<Network, TrainError> {
        let sub = self.sub_blueprint(cand)?;
        let view = slice_view(self.blueprint(), &self.net.params.view(), &sub, &self.candidate().to_string())?;
        let device = device();
        // Copy through host memory: the result shares nothing with the supernet.
        let host = |t: Tensor<1>| crate::params::to_vec(t);
        let mut w = NetWeights { convs: Vec::new(), fc_weight: Vec::new(), fc_bias: Vec::new() };
        for c in view.convs {
            w.convs.push(crate::weights::ConvWeights {
                weight: crate::params::to_vec(c.weight)?,
                gamma: host(c.gamma)?,
                beta: host(c.beta)?,
                mean: host(c.mean)?,
                var: host(c.var)?,
            });
        }
        w.fc_weight = crate::params::to_vec(view.fc_weight)?;
        w.fc_bias = host(view.fc_bias)?;
        let params = NetParams::from_weights(&sub, &w, &device)?;
        Ok(Network::from_params(cand.clone(), sub, params))
    }

    /// Reference forward pass of the supernet restricted to `cand` by masking,
    /// without slicing any weight: every supernet layer runs at full width, its
    /// output channels beyond the candidate's are zeroed after the activation,
    /// kernel taps outside the candidate's kernel are zeroed, blocks the candidate
    /// drops are skipped, and residuals follow the candidate. Inference mode
    /// (running statistics). Used to check [`Supernet::extract`].
    ///
    /// # Errors
    /// As [`Supernet::sub_blueprint`], or [`TrainError::BadBatch`] for a wrong input shape.
    pub fn forward_masked(&self, cand: &Candidate, x: Tensor<4>) -> Result<Tensor<2>, TrainError> {
        let sub = self.sub_blueprint(cand)?;
        if sub.data != self.blueprint().data {
            let reason = "the masked reference runs only at the supernet's own data configuration".to_string();
            return Err(self.not_a_subnet(cand, reason));
        }
        let sup = self.blueprint();
        let t = self.net.params.view();
        let sup_roles = roles(sup);
        let sub_roles = roles(&sub);
        let device = x.device();
        let find = |r: Role| sub_roles.iter().find(|(rr, _)| *rr == r).map(|(_, c)| *c);
        let mut stats = Vec::new();
        // Zero-pads or narrows the channel axis to `c` (dropped channels are zeros).
        let fit = |x: Tensor<4>, c: usize| {
            let [n, cx, h, w] = x.dims();
            if cx == c {
                x
            } else if cx > c {
                x.slice([0..n, 0..c, 0..h, 0..w])
            } else {
                Tensor::cat(vec![x, Tensor::zeros([n, c - cx, h, w], &device)], 1)
            }
        };
        let mask = |x: Tensor<4>, keep: u32| {
            let c = x.dims()[1];
            let m: Vec<f32> = (0..c).map(|i| if i < keep as usize { 1.0 } else { 0.0 }).collect();
            x * Tensor::<4>::from_data(TensorData::new(m, [1, c, 1, 1]), &device)
        };
        let masked_conv = |j: usize, sub_layer: &ConvLayer| -> ConvT {
            let s = &sup_roles[j].1;
            let mut ct = t.convs[j].clone();
            if sub_layer.kernel < s.kernel {
                let k = s.kernel as usize;
                let off = ((s.kernel - sub_layer.kernel) / 2) as usize;
                let m: Vec<f32> = (0..k * k)
                    .map(|p| {
                        let (r, c) = (p / k, p % k);
                        let inside = |v: usize| v >= off && v < off + sub_layer.kernel as usize;
                        if inside(r) && inside(c) { 1.0 } else { 0.0 }
                    })
                    .collect();
                ct.weight = ct.weight * Tensor::<4>::from_data(TensorData::new(m, [1, 1, k, k]), &device);
            }
            ct
        };
        let mut j = 0;
        let stem = find(Role::Stem).ok_or_else(|| self.not_a_subnet(cand, "no stem".into()))?;
        let mut x = mask(conv_bn(x, &sup.stem, &masked_conv(j, &stem), BnMode::Running, &mut stats), stem.out_ch);
        j += 1;
        for b in &sup.blocks {
            let n_convs = if b.expand_ch.is_some() { 3 } else { 2 };
            let kept = sub.blocks.iter().find(|sb| sb.stage == b.stage && sb.index == b.index);
            let Some(sb) = kept else {
                j += n_convs;
                continue;
            };
            let input = x.clone();
            let mut y = fit(x, b.in_ch as usize);
            if let Some(e) = b.expand() {
                let se = sb.expand().ok_or_else(|| self.not_a_subnet(cand, "expand conv missing".into()))?;
                y = mask(conv_bn(y, &e, &masked_conv(j, &se), BnMode::Running, &mut stats), se.out_ch);
                j += 1;
            }
            let sd = sb.depthwise();
            y = mask(conv_bn(y, &b.depthwise(), &masked_conv(j, &sd), BnMode::Running, &mut stats), sd.out_ch);
            j += 1;
            let sp = sb.project();
            y = mask(conv_bn(y, &b.project(), &masked_conv(j, &sp), BnMode::Running, &mut stats), sp.out_ch);
            j += 1;
            x = if sb.residual {
                let c = y.dims()[1];
                y + fit(input, c)
            } else {
                y
            };
        }
        if let (Some(l), Some(sl)) = (&sup.last_conv, &sub.last_conv) {
            x = mask(conv_bn(fit(x, l.in_ch as usize), l, &masked_conv(j, sl), BnMode::Running, &mut stats), sl.out_ch);
        }
        let x = fit(x, sup.head.features as usize);
        Ok(head(x, t.fc_weight, t.fc_bias))
    }
}
