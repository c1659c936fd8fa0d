//! The float TFLite model of a blueprint, from BatchNorm-folded weights.

use danas_core::{Activation, Blueprint, OpKind, Precision, TensorRole};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::TfliteError;
use crate::model::{ElemType, Fused, Model, OpDef, Operator, TensorDef};

/// Float weights of a network with BatchNorm folded into the conv biases (the layout of
/// `danas_train::FoldedWeights`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FloatNet {
    /// Per conv, in [`Blueprint::named_convs`] order: weights `[out, in/groups, k, k]`
    /// row-major, and the bias `[out]`.
    pub convs: Vec<(Vec<f32>, Vec<f32>)>,
    /// Classifier weights `[features, classes]` row-major.
    pub fc_weight: Vec<f32>,
    /// Classifier bias `[classes]`.
    pub fc_bias: Vec<f32>,
}

impl FloatNet {
    /// All-zero weights of the right sizes (for tests and documentation).
    pub fn zeros(bp: &Blueprint) -> Self {
        Self::filled(bp, |_| 0.0)
    }

    /// He-initialised weights and small random biases, seeded (for tests of the
    /// quantiser and the interpreters without training).
    pub fn random(bp: &Blueprint, seed: u64) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut net = Self::zeros(bp);
        for ((_, layer), (w, b)) in bp.named_convs().iter().zip(&mut net.convs) {
            let fan_in = (layer.kernel * layer.kernel * (layer.in_ch / layer.groups)).max(1) as f32;
            let bound = (6.0 / fan_in).sqrt();
            w.iter_mut().for_each(|v| *v = rng.random_range(-bound..bound));
            b.iter_mut().for_each(|v| *v = rng.random_range(-0.2..0.2));
        }
        let bound = (6.0 / bp.head.features.max(1) as f32).sqrt();
        net.fc_weight.iter_mut().for_each(|v| *v = rng.random_range(-bound..bound));
        net.fc_bias.iter_mut().for_each(|v| *v = rng.random_range(-0.1..0.1));
        net
    }

    fn filled(bp: &Blueprint, f: impl Fn(usize) -> f32) -> Self {
        let convs = bp
            .named_convs()
            .iter()
            .map(|(_, c)| ((0..c.weight_count() as usize).map(&f).collect(), vec![0.0; c.out_ch as usize]))
            .collect();
        let (feat, classes) = (bp.head.features as usize, bp.head.classes as usize);
        Self { convs, fc_weight: (0..feat * classes).map(&f).collect(), fc_bias: vec![0.0; classes] }
    }

    /// Checks every size against the blueprint.
    ///
    /// # Errors
    /// [`TfliteError::Mismatch`] naming the first layer whose size differs.
    pub fn check(&self, bp: &Blueprint) -> Result<(), TfliteError> {
        let named = bp.named_convs();
        if named.len() != self.convs.len() {
            return Err(TfliteError::mismatch(
                "weights",
                format!("{} convolutions, but the network has {}", self.convs.len(), named.len()),
            ));
        }
        for ((name, layer), (w, b)) in named.iter().zip(&self.convs) {
            if w.len() as u64 != layer.weight_count() || b.len() != layer.out_ch as usize {
                return Err(TfliteError::mismatch(
                    name.as_str(),
                    format!(
                        "{} weights and {} biases, expected {} and {}",
                        w.len(),
                        b.len(),
                        layer.weight_count(),
                        layer.out_ch
                    ),
                ));
            }
        }
        let (feat, classes) = (bp.head.features as usize, bp.head.classes as usize);
        if self.fc_weight.len() != feat * classes || self.fc_bias.len() != classes {
            return Err(TfliteError::mismatch(
                "fc",
                format!(
                    "{} weights and {} biases, expected {} and {classes}",
                    self.fc_weight.len(),
                    self.fc_bias.len(),
                    feat * classes
                ),
            ));
        }
        if let Some(bad) =
            self.convs.iter().flat_map(|(w, b)| w.iter().chain(b)).chain(&self.fc_weight).find(|v| !v.is_finite())
        {
            return Err(TfliteError::mismatch("weights", format!("non-finite value {bad}")));
        }
        Ok(())
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn fused(a: Activation) -> Fused {
    match a {
        Activation::None => Fused::None,
        Activation::Relu => Fused::Relu,
        Activation::Relu6 => Fused::Relu6,
    }
}

/// The float TFLite model of `bp` with weights `net`: the ops and activation tensors of
/// [`Blueprint::to_graph`] in the same order (so the memory plan is the one the cost
/// model computed), TFLite layouts (OHWI conv weights, `1·H·W·C` depthwise weights,
/// `[classes, features]` classifier), a constant `[1, 2]` axis tensor for `MEAN`, and
/// a final `SOFTMAX` when `softmax` is true (else the logits are the output).
///
/// # Errors
/// [`TfliteError::Mismatch`] when `net` does not fit `bp`.
pub fn float_model(bp: &Blueprint, net: &FloatNet, softmax: bool) -> Result<Model, TfliteError> {
    net.check(bp)?;
    let mut g = bp.to_graph(Precision::F32);
    if !softmax && let Some(op) = g.ops.pop() {
        let probs = op.outputs.first().copied().unwrap_or(usize::MAX);
        let logits = op.inputs.first().copied().unwrap_or(0);
        if probs + 1 == g.tensors.len() {
            g.tensors.pop();
        }
        g.outputs = vec![logits];
    }
    let named = bp.named_convs();
    let mut tensors: Vec<TensorDef> = g
        .tensors
        .iter()
        .map(|t| TensorDef {
            name: t.name.clone(),
            shape: t.shape.iter().map(|&d| d as i32).collect(),
            ty: ElemType::F32,
            data: None,
            quant: None,
            is_variable: false,
        })
        .collect();
    let axis = tensors.len() as i32;
    tensors.push(TensorDef {
        name: "pool/axis".into(),
        shape: vec![2],
        ty: ElemType::I32,
        data: Some([1i32, 2].iter().flat_map(|v| v.to_le_bytes()).collect()),
        quant: None,
        is_variable: false,
    });
    let mut conv_i = 0;
    let mut operators = Vec::with_capacity(g.ops.len());
    for op in &g.ops {
        let ids: Vec<i32> = op.inputs.iter().map(|&i| i as i32).collect();
        let outs: Vec<i32> = op.outputs.iter().map(|&i| i as i32).collect();
        let def = match &op.kind {
            OpKind::Conv2d { stride, groups, activation, .. } => {
                let (Some((name, layer)), Some((w, b))) = (named.get(conv_i), net.convs.get(conv_i)) else {
                    return Err(TfliteError::mismatch("weights", "fewer convolutions than the graph"));
                };
                conv_i += 1;
                let (o, k, cin) = (layer.out_ch as usize, layer.kernel as usize, (layer.in_ch / layer.groups) as usize);
                let mut tw = vec![0.0f32; w.len()];
                if layer.is_depthwise() {
                    // [C, 1, k, k] → [1, k, k, C]
                    for c in 0..o {
                        for p in 0..k * k {
                            tw[p * o + c] = w[c * k * k + p];
                        }
                    }
                } else {
                    // [O, I, k, k] → [O, k, k, I]
                    for oc in 0..o {
                        for ic in 0..cin {
                            for p in 0..k * k {
                                tw[(oc * k * k + p) * cin + ic] = w[(oc * cin + ic) * k * k + p];
                            }
                        }
                    }
                }
                if let (Some(&wi), Some(&bi)) = (op.inputs.get(1), op.inputs.get(2)) {
                    tensors[wi].data = Some(f32_bytes(&tw));
                    tensors[bi].data = Some(f32_bytes(b));
                } else {
                    return Err(TfliteError::mismatch(name.as_str(), "the graph's conv has no weight or bias tensor"));
                }
                let stride = (stride.0 as i32, stride.1 as i32);
                if *groups > 1 {
                    OpDef::DepthwiseConv2d { same: true, stride, multiplier: 1, act: fused(*activation) }
                } else {
                    OpDef::Conv2d { same: true, stride, act: fused(*activation) }
                }
            }
            OpKind::Add { activation } => OpDef::Add { act: fused(*activation) },
            OpKind::GlobalAvgPool => {
                operators.push(Operator {
                    op: OpDef::Mean { keep_dims: false },
                    inputs: vec![ids[0], axis],
                    outputs: outs,
                });
                continue;
            }
            OpKind::FullyConnected { activation } => {
                let (f, n) = (bp.head.features as usize, bp.head.classes as usize);
                let mut tw = vec![0.0f32; f * n];
                for fi in 0..f {
                    for ni in 0..n {
                        tw[ni * f + fi] = net.fc_weight[fi * n + ni];
                    }
                }
                if let (Some(&wi), Some(&bi)) = (op.inputs.get(1), op.inputs.get(2)) {
                    tensors[wi].data = Some(f32_bytes(&tw));
                    tensors[bi].data = Some(f32_bytes(&net.fc_bias));
                }
                OpDef::FullyConnected { act: fused(*activation) }
            }
            OpKind::Softmax => OpDef::Softmax { beta: 1.0 },
            other => return Err(TfliteError::Unsupported(format!("op {} in a blueprint graph", other.name()))),
        };
        operators.push(Operator { op: def, inputs: ids, outputs: outs });
    }
    // Roles the graph gave: every weight and bias now holds data.
    if let Some(t) = g
        .tensors
        .iter()
        .zip(&tensors)
        .find(|(gt, t)| matches!(gt.role, TensorRole::Weight | TensorRole::Bias) && t.data.is_none())
    {
        return Err(TfliteError::mismatch(t.0.name.as_str(), "no weights for this tensor"));
    }
    Ok(Model {
        tensors,
        operators,
        inputs: g.inputs.iter().map(|&i| i as i32).collect(),
        outputs: g.outputs.iter().map(|&i| i as i32).collect(),
        description: format!("danas {}", bp.data),
    })
}
