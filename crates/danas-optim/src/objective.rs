//! Objectives, outcomes, feasibility and scalarisation strategies.

use std::sync::Arc;

use danas_space::Genome;
use serde::{Deserialize, Serialize};

use crate::OptimError;

pub use danas_core::{Feasibility, Limits, Metrics, Violation};

/// The metric names optimisers' objectives use: danas-core's [`danas_core::metric`]
/// names, the ones the search loop tells (any other name works too).
pub mod names {
    use danas_core::metric;
    /// Validation accuracy in [0, 1] (maximise).
    pub const ACCURACY: &str = metric::VAL_ACCURACY;
    /// Validation precision in [0, 1] (maximise).
    pub const PRECISION: &str = metric::VAL_PRECISION;
    /// Validation recall in [0, 1] (maximise).
    pub const RECALL: &str = metric::VAL_RECALL;
    /// The tensor arena (peak RAM) in bytes (minimise).
    pub const RAM: &str = metric::ARENA_BYTES;
    /// Flash in bytes (minimise).
    pub const FLASH: &str = metric::FLASH_BYTES;
    /// Latency in milliseconds (minimise).
    pub const LATENCY: &str = metric::LATENCY_MS;
}

/// Whether larger or smaller values are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Larger is better (accuracy).
    Maximize,
    /// Smaller is better (RAM, flash, latency).
    Minimize,
}

/// A named objective with its direction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Objective {
    /// The metric name.
    pub name: String,
    /// Which way is better.
    pub direction: Direction,
}

impl Objective {
    /// An objective to maximise.
    pub fn maximize(name: impl Into<String>) -> Self {
        Self { name: name.into(), direction: Direction::Maximize }
    }

    /// An objective to minimise.
    pub fn minimize(name: impl Into<String>) -> Self {
        Self { name: name.into(), direction: Direction::Minimize }
    }

    /// The usual danas objectives: maximise accuracy, minimise RAM and flash.
    pub fn accuracy_ram_flash() -> Vec<Objective> {
        vec![Self::maximize(names::ACCURACY), Self::minimize(names::RAM), Self::minimize(names::FLASH)]
    }

    /// The metric's value turned into a quantity to minimise (negated when maximised).
    ///
    /// # Errors
    /// When the metric is missing or not finite.
    pub fn loss(&self, m: &Metrics) -> Result<f64, OptimError> {
        let v = m.get(&self.name)?;
        Ok(match self.direction {
            Direction::Maximize => -v,
            Direction::Minimize => v,
        })
    }
}

/// Total relative violation, at least a small positive number when `v` is not empty.
pub fn total_violation(v: &[Violation]) -> f64 {
    if v.is_empty() { 0.0 } else { v.iter().map(Violation::relative).sum::<f64>().max(1e-9) }
}

/// What happened to a proposed trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Evaluated: the metric values.
    Complete(Metrics),
    /// Not evaluated because it breaks limits (known before training).
    Infeasible(Vec<Violation>),
    /// The evaluation failed (crash, divergence…); the reason.
    Failed(String),
}

/// A cheap check (typically the cost model's limit check) that tells, before any
/// training, whether a genome is feasible. Optimisers use it to avoid proposing
/// infeasible candidates.
pub type Oracle = Arc<dyn Fn(&Genome) -> Feasibility + Send + Sync>;

/// How good a told trial is, as one number plus a constraint violation.
///
/// Ordering (constraint domination): a feasible fitness (violation 0) beats any
/// infeasible one; two infeasible ones compare by violation; two feasible ones by
/// score (larger is better).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fitness {
    /// Total relative violation (0 = feasible).
    pub violation: f64,
    /// Score, larger is better (`f64::MIN` when unknown, so that it stays JSON-serialisable).
    pub score: f64,
}

impl Fitness {
    /// Whether no limit is broken.
    pub fn feasible(&self) -> bool {
        self.violation <= 0.0
    }

    /// Total order: `Greater` means `self` is better.
    pub fn compare(&self, other: &Fitness) -> std::cmp::Ordering {
        other.violation.total_cmp(&self.violation).then(self.score.total_cmp(&other.score))
    }
}

/// Turns metric values into one [`Fitness`]. Swappable: the same optimiser can run
/// with any of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scalarization {
    /// The paper's soft-penalty fitness: accuracy + precision + recall + ram_score +
    /// flash_score with `score = 1 − max(usage − limit, 0) / limit`. Never infeasible
    /// by itself (over-budget candidates are only penalised).
    Paper {
        /// RAM limit in bytes.
        ram_limit: f64,
        /// Flash limit in bytes.
        flash_limit: f64,
    },
    /// Hard limits: the objective's value when every limit holds, infeasible otherwise.
    Constrained {
        /// The objective (usually maximise accuracy).
        objective: Objective,
        /// The limits (none when `None`).
        limits: Option<Limits>,
    },
    /// A weighted sum of objectives (maximised ones add, minimised ones subtract),
    /// with optional hard limits.
    Weighted {
        /// Objectives and their non-negative weights.
        terms: Vec<(Objective, f64)>,
        /// Hard limits (none when `None`).
        limits: Option<Limits>,
    },
}

fn check_limits(l: &Limits) -> Result<(), OptimError> {
    let pos = |field: &str, v: f64| {
        if v.is_finite() && v > 0.0 { Ok(()) } else { Err(OptimError::config(field, v, "must be finite and > 0")) }
    };
    pos("limits.ram_bytes", l.ram_bytes as f64)?;
    pos("limits.flash_bytes", l.flash_bytes as f64)?;
    l.latency_ms.map_or(Ok(()), |v| pos("limits.latency_ms", v))
}

impl Scalarization {
    /// The paper's fitness at its limits (512 KiB RAM, 2 MiB flash).
    pub fn paper() -> Self {
        Scalarization::Paper { ram_limit: 512.0 * 1024.0, flash_limit: 2.0 * 1024.0 * 1024.0 }
    }

    /// Maximise accuracy under the paper's hard limits.
    pub fn constrained_paper() -> Self {
        Scalarization::Constrained { objective: Objective::maximize(names::ACCURACY), limits: Some(Limits::paper()) }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`OptimError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), OptimError> {
        let pos = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 { Ok(()) } else { Err(OptimError::config(field, v, "must be finite and > 0")) }
        };
        match self {
            Scalarization::Paper { ram_limit, flash_limit } => {
                pos("ram_limit", *ram_limit)?;
                pos("flash_limit", *flash_limit)
            }
            Scalarization::Constrained { limits, .. } => limits.as_ref().map_or(Ok(()), check_limits),
            Scalarization::Weighted { terms, limits } => {
                if terms.is_empty() {
                    return Err(OptimError::config("terms", "[]", "needs at least one objective"));
                }
                for (i, (_, w)) in terms.iter().enumerate() {
                    if !(w.is_finite() && *w >= 0.0) {
                        return Err(OptimError::config(format!("terms[{i}].weight"), w, "must be finite and >= 0"));
                    }
                }
                limits.as_ref().map_or(Ok(()), check_limits)
            }
        }
    }

    /// The fitness of metric values.
    ///
    /// # Errors
    /// When a needed metric is missing or not finite.
    pub fn fitness(&self, m: &Metrics) -> Result<Fitness, OptimError> {
        let violation = |limits: Option<&Limits>| -> Result<f64, OptimError> {
            match limits {
                Some(l) => Ok(total_violation(l.check_metrics(m)?.violations())),
                None => Ok(0.0),
            }
        };
        match self {
            Scalarization::Paper { ram_limit, flash_limit } => {
                let soft = |usage: f64, limit: f64| 1.0 - (usage - limit).max(0.0) / limit;
                let score = m.get(names::ACCURACY)?
                    + m.get(names::PRECISION)?
                    + m.get(names::RECALL)?
                    + soft(m.get(names::RAM)?, *ram_limit)
                    + soft(m.get(names::FLASH)?, *flash_limit);
                Ok(Fitness { violation: 0.0, score })
            }
            Scalarization::Constrained { objective, limits } => {
                let score = -objective.loss(m)?;
                Ok(Fitness { violation: violation(limits.as_ref())?, score })
            }
            Scalarization::Weighted { terms, limits } => {
                let mut score = 0.0;
                for (o, w) in terms {
                    score -= w * o.loss(m)?;
                }
                Ok(Fitness { violation: violation(limits.as_ref())?, score })
            }
        }
    }

    /// The fitness of an outcome: `None` for a failed trial, infeasible (score `f64::MIN`)
    /// for an infeasible one.
    ///
    /// # Errors
    /// When a complete outcome lacks a needed metric.
    pub fn outcome_fitness(&self, o: &Outcome) -> Result<Option<Fitness>, OptimError> {
        match o {
            Outcome::Complete(m) => self.fitness(m).map(Some),
            Outcome::Infeasible(v) => Ok(Some(Fitness { violation: total_violation(v).max(1e-9), score: f64::MIN })),
            Outcome::Failed(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn m(acc: f64, ram: f64, flash: f64) -> Metrics {
        Metrics::new()
            .with(names::ACCURACY, acc)
            .with(names::PRECISION, acc)
            .with(names::RECALL, acc)
            .with(names::RAM, ram)
            .with(names::FLASH, flash)
    }

    #[test]
    fn paper_soft_penalty_matches_formula() {
        let s = Scalarization::Paper { ram_limit: 100.0, flash_limit: 1000.0 };
        // within limits: 3 * 0.5 + 1 + 1
        assert!((s.fitness(&m(0.5, 50.0, 900.0)).unwrap().score - 3.5).abs() < 1e-12);
        // ram 150 of 100: ram_score = 1 - 50/100 = 0.5
        assert!((s.fitness(&m(0.5, 150.0, 900.0)).unwrap().score - 3.0).abs() < 1e-12);
        // 3x over: score = 1 - 2 = -1
        assert!((s.fitness(&m(0.5, 300.0, 900.0)).unwrap().score - 1.5).abs() < 1e-12);
    }

    #[test]
    fn constrained_marks_over_limit_infeasible_and_orders() {
        let s = Scalarization::Constrained {
            objective: Objective::maximize(names::ACCURACY),
            limits: Some(Limits { ram_bytes: 100, flash_bytes: 1 << 40, latency_ms: None }),
        };
        let ok = s.fitness(&m(0.6, 90.0, 0.0)).unwrap();
        let bad = s.fitness(&m(0.9, 120.0, 0.0)).unwrap();
        let worse = s.fitness(&m(0.9, 200.0, 0.0)).unwrap();
        assert!(ok.feasible() && !bad.feasible());
        assert!((bad.violation - 0.2).abs() < 1e-12);
        assert_eq!(ok.compare(&bad), std::cmp::Ordering::Greater);
        assert_eq!(bad.compare(&worse), std::cmp::Ordering::Greater);
    }

    #[test]
    fn weighted_sums_signed_terms() {
        let s = Scalarization::Weighted {
            terms: vec![(Objective::maximize(names::ACCURACY), 2.0), (Objective::minimize(names::RAM), 0.5)],
            limits: None,
        };
        assert!((s.fitness(&m(0.5, 2.0, 0.0)).unwrap().score - 0.0).abs() < 1e-12);
        assert!(s.validate().is_ok());
        let bad = Scalarization::Weighted { terms: vec![], limits: None };
        assert!(matches!(bad.validate(), Err(OptimError::InvalidConfig { .. })));
    }

    #[test]
    fn missing_metric_is_a_typed_error() {
        let s = Scalarization::paper();
        let e = s.fitness(&Metrics::new().with(names::ACCURACY, 0.3)).unwrap_err();
        assert!(matches!(e, OptimError::MissingMetric { ref metric, .. } if metric == names::PRECISION), "{e}");
        let e = s.fitness(&m(f64::NAN, 1.0, 1.0)).unwrap_err();
        assert!(matches!(e, OptimError::NonFiniteMetric { .. }));
    }

    #[test]
    fn outcomes_map_to_fitness() {
        let s = Scalarization::constrained_paper();
        assert_eq!(s.outcome_fitness(&Outcome::Failed("boom".into())).unwrap(), None);
        let inf = s
            .outcome_fitness(&Outcome::Infeasible(vec![Violation {
                metric: names::RAM.into(),
                value: 2.0,
                limit: 1.0,
            }]))
            .unwrap()
            .unwrap();
        assert!(!inf.feasible());
    }
}
