//! Supernets in one place: how each data configuration's supernet is trained (its
//! mode and settings), what training a mode means for the trainer, and which data
//! configuration a shared supernet is built at. The trainer itself is
//! `danas_train::Supernet`; the search's evaluator (`SupernetEvaluator`) and
//! `danas fidelity` train through here.

use danas_core::{Color, DataConfig};
use serde::{Deserialize, Serialize};

use crate::SearchError;

/// How each data configuration's supernet is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SupernetMode {
    /// The largest network only (the paper).
    Full,
    /// Each step trains the largest network, the smallest and two random
    /// sub-networks, the others distilled in place from the largest. The default:
    /// it ranks candidates across data configurations far better (Kendall τ 0.74
    /// against 0.00 for `full` on the synthetic set at cpu scale, issue 17).
    #[default]
    Sandwich,
}

impl std::fmt::Display for SupernetMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SupernetMode::Full => "full",
            SupernetMode::Sandwich => "sandwich",
        })
    }
}

impl std::str::FromStr for SupernetMode {
    type Err = SearchError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "full" => Ok(SupernetMode::Full),
            "sandwich" => Ok(SupernetMode::Sandwich),
            other => Err(SearchError::Config {
                field: "supernet.mode".into(),
                value: other.to_string(),
                reason: "must be full or sandwich".into(),
            }),
        }
    }
}

/// Supernet training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupernetSettings {
    /// `full` (the paper: train the largest network only) or `sandwich`
    /// (`strategy` in configs written before danas 0.1's typed configs).
    #[serde(alias = "strategy")]
    pub mode: SupernetMode,
    /// Optimiser steps per supernet.
    pub steps: u64,
    /// Images per batch.
    pub batch_size: usize,
    /// Peak learning rate (Adam).
    pub lr: f64,
    /// Linear warm-up steps before the cosine decay.
    pub warmup_steps: u64,
    /// Training augmentation (random resized crop, horizontal flip) for supernet
    /// training, fine-tuning and the final stage. Off suits small, centred images
    /// such as Fashion-MNIST.
    pub augment: bool,
    /// One supernet for every data configuration of the space (elastic resolution,
    /// grayscale served by the rgb weights), trained on all of them in turn for
    /// `steps` × their number, instead of one supernet per configuration.
    pub shared: bool,
    /// Stop a supernet's training once its loss stops improving (`steps` is then
    /// the most it runs): every configuration trained to comparable convergence.
    pub plateau: Option<PlateauSettings>,
    /// Sandwich training: random sub-networks per step, next to the largest and the
    /// smallest (each step costs about the largest network's step plus these).
    pub sandwich_random: usize,
}

/// When a supernet's loss counts as converged (`[supernet.plateau]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlateauSettings {
    /// Steps between checks; the loss is smoothed over about as many steps.
    pub every: u64,
    /// Checks in a row without an improvement before training stops.
    pub patience: u32,
    /// Smallest relative fall of the smoothed loss that counts as an improvement.
    pub min_delta: f64,
}

impl Default for PlateauSettings {
    fn default() -> Self {
        Self { every: 25, patience: 3, min_delta: 0.01 }
    }
}

impl Default for SupernetSettings {
    fn default() -> Self {
        Self {
            mode: SupernetMode::Sandwich,
            steps: 150,
            batch_size: 64,
            lr: 3e-3,
            warmup_steps: 10,
            augment: true,
            shared: false,
            plateau: None,
            sandwich_random: 2,
        }
    }
}

/// The data configuration a supernet shared by `data` is built at: the largest
/// resolution, rgb when any configuration is rgb (it then serves grayscale too).
pub fn shared_data_config(data: &[DataConfig]) -> Option<DataConfig> {
    let res = data.iter().map(|d| d.resolution).max()?;
    let color = if data.iter().any(|d| d.color == Color::Rgb) { Color::Rgb } else { Color::Grayscale };
    Some(DataConfig::new(res, color))
}

/// Trains the supernet built at `at` (the space's largest network there, seeded by
/// `train.seed`) on the data configurations `on` in turn, `train.steps` steps for
/// each. The search's evaluator and `danas fidelity` train every supernet here.
///
/// # Errors
/// The trainer's errors.
#[cfg(feature = "train")]
pub fn train(
    space: &dyn danas_space::CandidateSpace,
    at: DataConfig,
    on: &[DataConfig],
    source: &dyn danas_core::BatchSource,
    train: &danas_train::TrainConfig,
    training: &danas_train::SupernetTraining,
    on_step: &mut dyn FnMut(&danas_train::StepInfo),
) -> Result<(danas_train::Supernet, danas_train::TrainReport), danas_train::TrainError> {
    let max = space.supernet(at);
    let mut sn = danas_train::Supernet::new(at, max.arch, source.classes(), train.seed)?;
    let cfg = danas_train::TrainConfig { steps: train.steps * on.len().max(1) as u64, ..train.clone() };
    let report = sn.train_on(source, &cfg, training, on, on_step)?;
    Ok((sn, report))
}

#[cfg(feature = "train")]
impl SupernetMode {
    /// The trainer's supernet training for this mode over the width multipliers
    /// `alphas`, with `random` random sub-networks per sandwich step.
    pub fn training(self, alphas: Vec<f64>, random: usize) -> danas_train::SupernetTraining {
        match self {
            SupernetMode::Full => danas_train::SupernetTraining::Full,
            SupernetMode::Sandwich => danas_train::SupernetTraining::Sandwich { alphas, min_depths: [0; 5], random },
        }
    }
}
