//! Host-side weights: plain `f32` vectors in burn's layouts, the form in which
//! networks are initialised, sliced out of supernets and stored in checkpoints.

use danas_core::{Blueprint, ConvLayer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// One convolution with its BatchNorm: weights `[out, in / groups, k, k]` and
/// per-output-channel `gamma`, `beta`, running `mean` and `var`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvWeights {
    /// Convolution kernel, `[out, in / groups, k, k]` row-major.
    pub weight: Vec<f32>,
    /// BatchNorm scale.
    pub gamma: Vec<f32>,
    /// BatchNorm shift.
    pub beta: Vec<f32>,
    /// BatchNorm running mean.
    pub mean: Vec<f32>,
    /// BatchNorm running (biased) variance.
    pub var: Vec<f32>,
}

/// All weights of a network, convolutions in [`Blueprint::named_convs`] order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetWeights {
    /// One entry per convolution, in [`Blueprint::named_convs`] order.
    pub convs: Vec<ConvWeights>,
    /// Classifier weights, `[features, classes]` row-major.
    pub fc_weight: Vec<f32>,
    /// Classifier bias, `[classes]`.
    pub fc_bias: Vec<f32>,
}

/// Standard normal sample (Box–Muller) from a seeded generator.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Weight shape `[out, in / groups, k, k]` of a conv.
pub(crate) fn conv_shape(c: &ConvLayer) -> [usize; 4] {
    [c.out_ch as usize, (c.in_ch / c.groups) as usize, c.kernel as usize, c.kernel as usize]
}

impl NetWeights {
    /// Fresh weights for `bp`: He-normal (fan-out) convolutions, BatchNorm at
    /// identity, classifier N(0, 0.01²) with zero bias. Same seed, same weights.
    pub fn init(bp: &Blueprint, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let convs = bp
            .named_convs()
            .iter()
            .map(|(_, c)| {
                let [o, i, k, _] = conv_shape(c);
                let fan_out = (o * k * k) as f64;
                let std = (2.0 / fan_out).sqrt();
                let weight = (0..o * i * k * k).map(|_| (normal(&mut rng) * std) as f32).collect();
                ConvWeights { weight, gamma: vec![1.0; o], beta: vec![0.0; o], mean: vec![0.0; o], var: vec![1.0; o] }
            })
            .collect();
        let (f, n) = (bp.head.features as usize, bp.head.classes as usize);
        let fc_weight = (0..f * n).map(|_| (normal(&mut rng) * 0.01) as f32).collect();
        Self { convs, fc_weight, fc_bias: vec![0.0; n] }
    }

    /// Checks that every buffer has the size `bp` asks for.
    ///
    /// # Errors
    /// [`TrainError::Setting`] naming the first buffer of the wrong size.
    pub fn check(&self, bp: &Blueprint) -> Result<(), TrainError> {
        let convs = bp.named_convs();
        if convs.len() != self.convs.len() {
            return Err(TrainError::setting(
                "weights.convs",
                self.convs.len(),
                format!("blueprint has {}", convs.len()),
            ));
        }
        for ((name, c), w) in convs.iter().zip(&self.convs) {
            let [o, i, k, _] = conv_shape(c);
            let bad = |what: &str, got: usize, want: usize| TrainError::Setting {
                field: "weights",
                value: format!("{name}.{what} has {got} values"),
                reason: format!("expected {want}"),
            };
            if w.weight.len() != o * i * k * k {
                return Err(bad("weight", w.weight.len(), o * i * k * k));
            }
            for (what, v) in [("gamma", &w.gamma), ("beta", &w.beta), ("mean", &w.mean), ("var", &w.var)] {
                if v.len() != o {
                    return Err(bad(what, v.len(), o));
                }
            }
        }
        let (f, n) = (bp.head.features as usize, bp.head.classes as usize);
        if self.fc_weight.len() != f * n || self.fc_bias.len() != n {
            return Err(TrainError::Setting {
                field: "weights",
                value: format!("classifier {} + {} values", self.fc_weight.len(), self.fc_bias.len()),
                reason: format!("expected {} + {n}", f * n),
            });
        }
        Ok(())
    }

    /// Total number of stored values (BatchNorm unfolded, running statistics included).
    pub fn len(&self) -> usize {
        self.convs.iter().map(|c| c.weight.len() + 4 * c.gamma.len()).sum::<usize>()
            + self.fc_weight.len()
            + self.fc_bias.len()
    }

    /// Whether there are no values at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
