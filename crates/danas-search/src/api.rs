//! What the search loop is built from: the cost gate, the evaluator and observers
//! (traits a user can implement), and what they exchange with it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use danas_core::{Candidate, Costs, DataConfig, Feasibility, Limits, Metrics};

use crate::report::Outputs;
use crate::{Budget, TrialRecord};

/// The cost model's verdict on a candidate, before any training.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Every estimate (journaled and reported; [`Costs::metrics`] are what the
    /// optimiser sees of them).
    pub costs: Costs,
    /// Whether the candidate fits the gate's limits.
    pub feasibility: Feasibility,
}

/// Estimates a candidate's resources and checks them against the limits.
///
/// ```
/// use danas_core::{Candidate, Costs, Feasibility, Violation};
/// use danas_search::{Assessment, CostGate, EvalError};
///
/// /// Feasible when the parameters fit in 100 k (a stand-in for RAM and flash).
/// struct ParamGate;
/// impl CostGate for ParamGate {
///     fn assess(&self, c: &Candidate) -> Result<Assessment, EvalError> {
///         let params = c.blueprint(2)?.param_count() as u64;
///         let costs = Costs { params: Some(params), ..Costs::new(4 * params, 4 * params) };
///         let broken = (params > 100_000).then(|| Violation { metric: "params".into(), value: params as f64, limit: 1e5 });
///         Ok(Assessment { costs, feasibility: Feasibility::from_violations(broken.into_iter().collect()) })
///     }
/// }
/// # let c = Candidate::new(danas_core::DataConfig::new(32, danas_core::Color::Rgb), danas_core::Arch::full(0.35));
/// assert!(!ParamGate.assess(&c)?.feasibility.is_feasible());
/// # Ok::<(), danas_search::EvalError>(())
/// ```
pub trait CostGate: Send + Sync {
    /// Assesses a candidate.
    ///
    /// # Errors
    /// Any failure to estimate it; the trial is recorded as failed.
    fn assess(&self, candidate: &Candidate) -> Result<Assessment, EvalError>;

    /// The limits it checks, for reports (the feasible region, the best system per
    /// limit). The default, `None`, reports no limits.
    fn limits(&self) -> Option<Limits> {
        None
    }

    /// The board the deployed models are planned for: the final stage estimates each
    /// exported model file on it (`DIR/models/*/manifest.json`, `kTensorArenaSize`).
    /// The default, `None`, plans for the `host` profile.
    fn deploy_profile(&self) -> Option<danas_cost::Profile> {
        None
    }
}

/// Error type of evaluators.
pub type EvalError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What [`Evaluator::prepare`] did for a data configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prepared {
    /// Checkpoint written (or reused), relative to the results directory, to be journaled.
    pub checkpoint: Option<String>,
    /// Seconds spent (supernet training).
    pub seconds: f64,
}

/// Scores candidates: typically a supernet trainer, or a synthetic landscape in tests.
///
/// ```
/// use danas_core::{Candidate, DataConfig};
/// use danas_optim::Metrics;
/// use danas_search::{EvalError, Evaluator, Prepared};
///
/// /// Wider is better; nothing to prepare.
/// struct Width;
/// impl Evaluator for Width {
///     fn prepare(&self, _d: DataConfig, _dir: &std::path::Path, _existing: Option<&str>, _s: &dyn Fn(&str)) -> Result<Prepared, EvalError> {
///         Ok(Prepared::default())
///     }
///     fn evaluate(&self, c: &Candidate, _seed: u64) -> Result<Metrics, EvalError> {
///         Ok(Metrics::new().with("val_accuracy", c.arch.alpha.min(1.0)))
///     }
/// }
/// # let c = Candidate::new(DataConfig::new(32, danas_core::Color::Rgb), danas_core::Arch::full(0.5));
/// assert_eq!(Width.evaluate(&c, 0)?.get("val_accuracy")?, 0.5);
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
pub trait Evaluator: Send + Sync {
    /// Makes the evaluator ready for candidates of `data`, e.g. trains or loads the
    /// supernet. `dir` is the results directory; `existing` is the checkpoint a
    /// previous session journaled for this data configuration, if any; `status`
    /// reports the current phase to the user.
    ///
    /// # Errors
    /// Any failure; every trial of this data configuration is then recorded as failed.
    fn prepare(
        &self,
        data: DataConfig,
        dir: &Path,
        existing: Option<&str>,
        status: &dyn Fn(&str),
    ) -> Result<Prepared, EvalError>;

    /// Whether the search may prepare data configurations of the space that no
    /// batch needs yet, on threads that would otherwise idle while a batch's
    /// supernets are prepared. Sensible when preparing is independent per data
    /// configuration and the same whenever it happens (as for seeded supernets);
    /// the default, `false`, prepares only what a batch needs.
    fn prepare_ahead(&self) -> bool {
        false
    }

    /// Scores one candidate (validation metrics, never test). Called from up to
    /// [`Search::parallel`](crate::Search::parallel) threads at once.
    ///
    /// # Errors
    /// Any failure (e.g. divergence); the trial is recorded as failed.
    fn evaluate(&self, candidate: &Candidate, seed: u64) -> Result<Metrics, EvalError>;

    /// Final stage: trains a chosen candidate fully, saves the network under `dir`,
    /// and reports its metrics including the **test** split (keys such as
    /// `test_accuracy`). The default does nothing (`Ok(None)`).
    ///
    /// # Errors
    /// Any failure; it is logged and the search result is kept.
    fn finalize(
        &self,
        _candidate: &Candidate,
        _seed: u64,
        _dir: &Path,
        _name: &str,
    ) -> Result<Option<Finalized>, EvalError> {
        Ok(None)
    }

    /// The classes' names by label, for the model packages of the final stage. The
    /// default, empty, means unknown (the manifest then names classes by index).
    fn class_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// Successive halving: scores a candidate the proxy ranked high again, at a
    /// higher fidelity (validation metrics, never test). The default, `Ok(None)`,
    /// has no higher fidelity: the search then keeps the proxy's ranking.
    ///
    /// # Errors
    /// Any failure; it is journaled and the trial keeps its lower rung.
    fn promote(
        &self,
        _candidate: &Candidate,
        _promotion: crate::Promotion,
        _seed: u64,
    ) -> Result<Option<Metrics>, EvalError> {
        Ok(None)
    }
}

/// What [`Evaluator::finalize`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Finalized {
    /// Metrics of the finally trained network (`test_accuracy`, `final_val_accuracy`, …).
    pub metrics: Metrics,
    /// The saved network, relative to the results directory.
    pub checkpoint: Option<String>,
    /// The deployable int8 model of the network, when the evaluator exports one; the
    /// final stage writes it to `DIR/models/<trial>/`.
    pub int8: Option<danas_tflite::Model>,
    /// Calibration images of the int8 model's quantisation.
    pub calib_images: usize,
}

/// Where a search stands, for observers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    /// Trials evaluated or failed (these count against `max_trials`).
    pub evaluated: u64,
    /// Trials rejected by the cost gate (free).
    pub infeasible: u64,
    /// Trials that failed.
    pub failed: u64,
    /// Proposals of candidates already evaluated, answered from the journal (free).
    pub repeats: u64,
    /// Scores at the rungs of successive halving above the proxy.
    pub promotions: u64,
    /// Best validation accuracy of an evaluated (hence feasible) trial.
    pub best_feasible: Option<f64>,
    /// Wall-clock time spent, over all sessions of the study.
    pub elapsed: Duration,
    /// The budget.
    pub budget: Budget,
}

/// Something that happened during a search.
#[derive(Debug)]
#[non_exhaustive]
pub enum SearchEvent<'a> {
    /// The search (re)started.
    Started {
        /// Whether it resumed a study.
        resumed: bool,
        /// Progress so far.
        progress: &'a Progress,
    },
    /// A new phase, e.g. `training supernet 96/rgb`.
    Phase(&'a str),
    /// A trial ended and was committed to the journal.
    Trial {
        /// The trial as journaled.
        record: &'a TrialRecord,
        /// Progress after it.
        progress: &'a Progress,
    },
    /// A trial was scored again at a higher rung of successive halving.
    Promoted {
        /// The result, as journaled.
        record: &'a crate::RungRecord,
        /// Progress after it.
        progress: &'a Progress,
    },
    /// The loop ended; outputs are written next.
    Finished {
        /// Final progress.
        progress: &'a Progress,
    },
}

/// What an observer wants the loop to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after the current batch (early stopping).
    Stop,
}

/// Watches a search: progress bars, logging, early stopping.
///
/// ```
/// use danas_search::{Control, Observer, SearchEvent};
///
/// /// Stops once any candidate reaches 90 % validation accuracy.
/// struct GoodEnough;
/// impl Observer for GoodEnough {
///     fn on_event(&mut self, e: &SearchEvent<'_>) -> Control {
///         match e {
///             SearchEvent::Trial { progress, .. } if progress.best_feasible.unwrap_or(0.0) >= 0.9 => Control::Stop,
///             _ => Control::Continue,
///         }
///     }
/// }
/// ```
pub trait Observer: Send {
    /// Called for each event.
    fn on_event(&mut self, event: &SearchEvent<'_>) -> Control;
}

/// What a finished search returns.
#[derive(Debug, Clone)]
pub struct SearchSummary {
    /// The results directory.
    pub dir: PathBuf,
    /// Final progress.
    pub progress: Progress,
    /// Every trial as journaled.
    pub trials: Vec<TrialRecord>,
    /// The outputs written (files, Pareto set).
    pub outputs: Outputs,
}
