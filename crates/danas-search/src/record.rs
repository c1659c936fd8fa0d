//! What a study stores: its trials, their rung results and its supernets, as plain
//! data. The journal reads and writes them; selection, halving and the report read
//! them.

use danas_core::{Candidate, Costs, Metrics};
use serde::{Deserialize, Serialize};

/// What happened to a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialStatus {
    /// Started and not finished (a crash or Ctrl-C interrupted it if the study is not running).
    Running,
    /// Evaluated.
    Complete,
    /// Rejected by the cost gate before any training.
    Infeasible,
    /// Training or evaluation failed (e.g. divergence).
    Failed,
    /// The optimiser proposed a candidate this study had already evaluated: the
    /// earlier result (named in the message) is reused and told again, and nothing
    /// is trained. Not counted against `max_trials`, not a separate point of the
    /// Pareto set.
    Repeat,
}

impl TrialStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TrialStatus::Running => "running",
            TrialStatus::Complete => "complete",
            TrialStatus::Infeasible => "infeasible",
            TrialStatus::Failed => "failed",
            TrialStatus::Repeat => "repeat",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => TrialStatus::Running,
            "complete" => TrialStatus::Complete,
            "infeasible" => TrialStatus::Infeasible,
            "failed" => TrialStatus::Failed,
            "repeat" => TrialStatus::Repeat,
            _ => return None,
        })
    }
}

/// One trial as stored in the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// Trial id, in the order the optimiser proposed them.
    pub id: u64,
    /// The genome's choice indices.
    pub genome: Vec<u16>,
    /// The decoded candidate.
    pub candidate: Candidate,
    /// Status.
    pub status: TrialStatus,
    /// The seed its evaluation used.
    pub seed: u64,
    /// The cost gate's estimates, when computed.
    pub costs: Option<Costs>,
    /// Evaluation metrics (validation; the final stage adds test metrics), when evaluated.
    pub metrics: Option<Metrics>,
    /// The network the final stage trained, relative to the results directory.
    pub final_checkpoint: Option<String>,
    /// The deployable model folder the final stage wrote, relative to the results directory.
    pub model_dir: Option<String>,
    /// Why it is infeasible or failed.
    pub message: Option<String>,
    /// Unix time it started.
    pub started_at: f64,
    /// Unix time it finished.
    pub finished_at: Option<f64>,
    /// Seconds spent evaluating (training included).
    pub eval_seconds: Option<f64>,
    /// The study's elapsed wall-clock seconds when it finished, counting every
    /// session (the clock the wall-clock budget uses).
    pub elapsed_at: Option<f64>,
    /// Its results at the rungs of successive halving above the proxy, lowest first.
    #[serde(default)]
    pub rungs: Vec<RungRecord>,
}

/// How a trial ended, for [`Journal::finish_trial`](crate::Journal::finish_trial).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialEnd<'a> {
    /// Final status.
    pub status: TrialStatus,
    /// Resource estimates.
    pub costs: Option<&'a Costs>,
    /// Evaluation metrics.
    pub metrics: Option<&'a Metrics>,
    /// Why infeasible or failed.
    pub message: Option<&'a str>,
    /// Seconds spent evaluating.
    pub eval_seconds: Option<f64>,
}

impl<'a> TrialEnd<'a> {
    /// A failed trial's end: why, with the costs when the gate got that far.
    pub fn failed(costs: Option<&'a Costs>, message: &'a str, eval_seconds: Option<f64>) -> Self {
        Self { status: TrialStatus::Failed, costs, metrics: None, message: Some(message), eval_seconds }
    }
}

/// A trained supernet, by data configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupernetRecord {
    /// The data configuration key, e.g. `96-rgb`.
    pub data_key: String,
    /// Checkpoint path, relative to the study directory.
    pub path: String,
    /// Seconds spent training it.
    pub train_seconds: f64,
    /// Unix time it was stored.
    pub created_at: f64,
}

/// What a higher rung does to a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Promotion {
    /// Fine-tune a copy of the candidate's supernet weights for `steps` steps.
    Finetune {
        /// Optimiser steps.
        steps: u64,
    },
    /// Train the candidate from scratch for `steps` steps.
    Retrain {
        /// Optimiser steps.
        steps: u64,
    },
}

impl std::fmt::Display for Promotion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Promotion::Finetune { steps } => write!(f, "fine-tune {steps}"),
            Promotion::Retrain { steps } => write!(f, "retrain {steps}"),
        }
    }
}

/// A trial scored at a rung above the proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RungRecord {
    /// The trial.
    pub trial: u64,
    /// The rung (1 for the first above the proxy).
    pub rung: u32,
    /// What the rung did.
    pub promotion: Promotion,
    /// Its validation metrics (`val_accuracy`, …).
    pub metrics: danas_core::Metrics,
    /// Seconds it took.
    pub eval_seconds: f64,
    /// Unix time it finished.
    pub finished_at: f64,
    /// Study seconds (all sessions) when it finished.
    pub elapsed_at: f64,
}

/// The key under which a study remembers a candidate (its repeats, its jobs in a
/// shared study's queue): its exact description.
pub(crate) fn candidate_key(c: &Candidate) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| c.to_string())
}
