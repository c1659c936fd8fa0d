//! The search loop: ask → decode → cost gate → (supernet) → evaluate → tell → journal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use danas_core::{Candidate, DataConfig};
use danas_optim::{Event, Metrics, Optimizer, Outcome, Proposal, TrialId, Violation};
use danas_space::CandidateSpace;
use serde_json::Value;

use crate::report::{Outputs, ReportLimits, write_outputs};
use crate::{Budget, Journal, SearchError, TrialEnd, TrialRecord, TrialStatus};

/// Name of the study journal inside a results directory.
pub const STUDY_FILE: &str = "study.sqlite";

/// The cost model's verdict on a candidate, before any training.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Every estimate, as a JSON object (journaled and reported; keys such as
    /// `arena_bytes`, `flash_bytes`, `latency_ms`, `macs`, `params`, `peak_op`).
    pub costs: Value,
    /// The estimates the optimiser may use as objectives (e.g. `arena_bytes`).
    pub metrics: Metrics,
    /// Limits broken; empty when feasible.
    pub violations: Vec<Violation>,
}

/// Estimates a candidate's resources and checks them against the limits.
///
/// ```
/// use danas_core::Candidate;
/// use danas_optim::Metrics;
/// use danas_search::{Assessment, CostGate};
///
/// /// Feasible when the parameters fit in 100 k.
/// struct ParamGate;
/// impl CostGate for ParamGate {
///     fn assess(&self, c: &Candidate) -> Result<Assessment, String> {
///         let params = c.blueprint(2).map_err(|e| e.to_string())?.param_count() as f64;
///         let violations = if params > 1e5 {
///             vec![danas_optim::Violation { metric: "params".into(), value: params, limit: 1e5 }]
///         } else { vec![] };
///         Ok(Assessment { costs: serde_json::json!({ "params": params }), metrics: Metrics::new().with("params", params), violations })
///     }
/// }
/// # let c = Candidate::new(danas_core::DataConfig::new(32, danas_core::Color::Rgb), danas_core::Arch::full(0.35));
/// assert!(!ParamGate.assess(&c)?.violations.is_empty());
/// # Ok::<(), String>(())
/// ```
pub trait CostGate: Send + Sync {
    /// Assesses a candidate.
    ///
    /// # Errors
    /// A message when the candidate cannot be estimated; the trial is recorded as failed.
    fn assess(&self, candidate: &Candidate) -> Result<Assessment, String>;

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

    /// Scores one candidate (validation metrics, never test). Called from up to
    /// [`Search::parallel`] threads at once.
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

/// Safety net: at most this many cost-gate rejections per allowed evaluation
/// before the loop gives up on an optimiser that keeps proposing infeasible candidates.
const MAX_INFEASIBLE_PER_EVAL: u64 = 50;

/// The loop stops when the optimiser proposes this many candidates in a row that
/// were all evaluated before: the space (or the optimiser) is exhausted.
const MAX_REPEATS_IN_A_ROW: u64 = 500;

/// The key under which a candidate's result is remembered: its exact description.
fn candidate_key(c: &Candidate) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| c.to_string())
}

/// A search, configured with a builder and run with [`Search::run`] or [`Search::resume`].
pub struct Search {
    space: Arc<dyn CandidateSpace>,
    optimizer: Box<dyn Optimizer>,
    cost: Arc<dyn CostGate>,
    evaluator: Arc<dyn Evaluator>,
    budget: Budget,
    seed: u64,
    parallel: usize,
    dir: PathBuf,
    config: Value,
    limits: ReportLimits,
    observers: Vec<Box<dyn Observer>>,
    accuracy: String,
    final_top_k: usize,
}

impl std::fmt::Debug for Search {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Search")
            .field("space", &self.space.name())
            .field("optimizer", &self.optimizer.name())
            .field("budget", &self.budget)
            .field("seed", &self.seed)
            .field("parallel", &self.parallel)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Search {
    /// A search over `space` driven by `optimizer`, gated by `cost`, scored by `evaluator`.
    /// Defaults: 20 evaluations, seed 0, 2 parallel evaluations, results in `results/study`.
    pub fn new(
        space: Arc<dyn CandidateSpace>,
        optimizer: Box<dyn Optimizer>,
        cost: Arc<dyn CostGate>,
        evaluator: Arc<dyn Evaluator>,
    ) -> Self {
        Self {
            space,
            optimizer,
            cost,
            evaluator,
            budget: Budget { wall: None, max_trials: Some(20) },
            seed: 0,
            parallel: 2,
            dir: PathBuf::from("results/study"),
            config: Value::Null,
            limits: ReportLimits::default(),
            observers: Vec::new(),
            accuracy: "val_accuracy".into(),
            final_top_k: 0,
        }
    }
    /// After the search, trains the `k` most accurate Pareto candidates fully and
    /// reports their test metrics ([`Evaluator::finalize`]); 0 (default) skips it.
    pub fn final_top_k(mut self, k: usize) -> Self {
        self.final_top_k = k;
        self
    }
    /// Sets the budget.
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }
    /// Sets the seed from which each trial's evaluation seed is derived.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Sets how many evaluations run at once (at least 1).
    pub fn parallel(mut self, n: usize) -> Self {
        self.parallel = n.max(1);
        self
    }
    /// Sets the results directory (it holds `study.sqlite` and the outputs).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }
    /// Stores the settings the search was made from (journaled, so `resume` can rebuild it).
    pub fn config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }
    /// The limits, for reports.
    pub fn limits(mut self, limits: ReportLimits) -> Self {
        self.limits = limits;
        self
    }
    /// Adds an observer.
    pub fn observer(mut self, o: Box<dyn Observer>) -> Self {
        self.observers.push(o);
        self
    }
    /// The metric that is the accuracy in reports and progress (default `val_accuracy`).
    pub fn accuracy_metric(mut self, name: impl Into<String>) -> Self {
        self.accuracy = name.into();
        self
    }

    /// The evaluation seed of a trial: a fixed mix of the search seed and the trial id.
    pub fn trial_seed(seed: u64, id: u64) -> u64 {
        let mut z = seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Checks that at least one candidate of the space meets the limits, scanning the
    /// whole space when it has at most `scan` members and `scan` seeded samples
    /// otherwise.
    ///
    /// # Errors
    /// [`SearchError::Unreachable`] with the smallest RAM and flash seen.
    pub fn preflight(&self, scan: usize) -> Result<(), SearchError> {
        preflight(self.space.as_ref(), self.cost.as_ref(), scan, self.seed)
    }

    /// Starts a new study in the results directory and runs it to its budget.
    ///
    /// # Errors
    /// [`SearchError::Exists`] when the directory already holds a study; journal
    /// and optimiser errors.
    pub fn run(self) -> Result<SearchSummary, SearchError> {
        let path = self.dir.join(STUDY_FILE);
        let journal = Journal::create(&path, &self.config)?;
        self.drive(journal, false)
    }

    /// Continues the study in the results directory: completed trials are kept, the
    /// optimiser is rebuilt by replaying the journal, interrupted trials are re-run.
    /// The search must be built with the same space, optimiser (kind and seed) and
    /// settings as the original; `danas resume` rebuilds them from the journaled config.
    ///
    /// # Errors
    /// [`SearchError::NotAStudy`], [`SearchError::Locked`], replay errors.
    pub fn resume(self) -> Result<SearchSummary, SearchError> {
        let path = self.dir.join(STUDY_FILE);
        let journal = Journal::open(&path)?;
        self.drive(journal, true)
    }

    fn emit(&mut self, e: &SearchEvent<'_>) -> Control {
        let mut c = Control::Continue;
        for o in &mut self.observers {
            if o.on_event(e) == Control::Stop {
                c = Control::Stop;
            }
        }
        c
    }

    fn drive(mut self, mut journal: Journal, resumed: bool) -> Result<SearchSummary, SearchError> {
        let opt_err = |e: danas_optim::OptimError| SearchError::Optimizer(e.to_string());
        let started = Instant::now();
        let prior = journal.elapsed_seconds()?;
        let elapsed = move || Duration::from_secs_f64(prior) + started.elapsed();

        // Rebuild the optimiser by replay; asked-but-untold trials are re-queued.
        let mut queue: Vec<Proposal> = Vec::new();
        // The outcome told for each trial, for answering repeats (below).
        let mut outcomes: BTreeMap<u64, Outcome> = BTreeMap::new();
        if resumed {
            let events: Vec<Event> = journal
                .optimizer_events()?
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    serde_json::from_value(v).map_err(|source| SearchError::Json {
                        path: journal.path().to_path_buf(),
                        what: format!("optimizer event {i}"),
                        source,
                    })
                })
                .collect::<Result<_, _>>()?;
            let mut told = BTreeSet::new();
            let mut asked = Vec::new();
            for e in &events {
                match e {
                    Event::Ask { proposals, .. } => asked.extend(proposals.iter().cloned()),
                    Event::Tell { id, outcome } => {
                        told.insert(*id);
                        outcomes.insert(id.0, outcome.clone());
                    }
                }
            }
            danas_optim::replay(self.optimizer.as_mut(), &danas_optim::Journal { events })
                .map_err(|e| SearchError::Optimizer(format!("cannot rebuild the optimiser by replay: {e}")))?;
            for t in journal.interrupted()? {
                journal.forget_running(t.id)?;
            }
            queue = asked.into_iter().filter(|p| !told.contains(&p.id)).collect();
            journal.event("resume", &format!("{} trials re-queued", queue.len()))?;
        } else {
            journal.event("start", &format!("space {}, optimizer {}", self.space.name(), self.optimizer.name()))?;
        }

        // Results of evaluated candidates by candidate, for answering repeats: the
        // first completed trial of each candidate, with the outcome it was told.
        let mut memo: BTreeMap<String, (u64, Outcome)> = BTreeMap::new();
        let mut progress = Progress { budget: self.budget, ..Progress::default() };
        for t in journal.trials()? {
            tally(&mut progress, &t, &self.accuracy);
            if t.status == TrialStatus::Complete
                && let Some(o) = outcomes.remove(&t.id)
            {
                memo.entry(candidate_key(&t.candidate)).or_insert((t.id, o));
            }
        }
        let mut repeats_in_a_row = 0u64;
        progress.elapsed = elapsed();
        let mut stop = self.emit(&SearchEvent::Started { resumed, progress: &progress }) == Control::Stop;
        let mut ready: BTreeSet<DataConfig> = BTreeSet::new();
        // Supernets that failed in this run: their candidates fail without retraining.
        let mut broken: BTreeMap<DataConfig, String> = BTreeMap::new();
        let infeasible_cap =
            self.budget.max_trials.map(|m| m.saturating_mul(MAX_INFEASIBLE_PER_EVAL).saturating_add(1000));

        while !stop && !self.budget.exhausted(progress.evaluated, elapsed()) {
            if infeasible_cap.is_some_and(|cap| progress.infeasible >= cap) {
                journal.event("stop", "the optimiser keeps proposing infeasible candidates")?;
                break;
            }
            if repeats_in_a_row >= MAX_REPEATS_IN_A_ROW {
                journal.event(
                    "stop",
                    &format!(
                        "the optimiser proposed {repeats_in_a_row} candidates in a row that were already evaluated \
                         (the space looks exhausted)"
                    ),
                )?;
                break;
            }
            let batch: Vec<Proposal> = if queue.is_empty() {
                let left = self.budget.max_trials.map_or(u64::MAX, |m| m.saturating_sub(progress.evaluated));
                let n = (self.parallel as u64).min(left).max(1) as usize;
                let props = self.optimizer.ask(n).map_err(opt_err)?;
                let ev = serde_json::to_value(Event::Ask { n, proposals: props.clone() }).unwrap_or(Value::Null);
                journal.record_optimizer_event(&ev)?;
                props
            } else {
                let k = self.parallel.min(queue.len());
                queue.drain(..k).collect()
            };

            // Decode; answer repeats from the journal; gate on cost: infeasible
            // candidates cost no training.
            let mut to_eval: Vec<(TrialId, Candidate, Assessment, u64)> = Vec::new();
            // Repeats of a candidate evaluated in this same batch, answered after it.
            let mut deferred: Vec<(TrialId, String, TrialId)> = Vec::new();
            // Candidates of this batch that will be evaluated, by key.
            let mut pending: BTreeMap<String, TrialId> = BTreeMap::new();
            for p in batch {
                let cand = self
                    .space
                    .candidate(&p.genome)
                    .map_err(|e| SearchError::Optimizer(format!("optimizer proposed an invalid genome: {e}")))?;
                let seed = Self::trial_seed(self.seed, p.id.0);
                journal.begin_trial(p.id.0, &p.genome.0, &cand, seed)?;
                let key = candidate_key(&cand);
                if let Some((orig, outcome)) = memo.get(&key).cloned() {
                    repeats_in_a_row += 1;
                    if self.repeat(&mut journal, &mut progress, p.id, orig, outcome, &elapsed)? == Control::Stop {
                        stop = true;
                    }
                    continue;
                }
                if let Some(&first) = pending.get(&key) {
                    deferred.push((p.id, key, first));
                    continue;
                }
                match self.cost.assess(&cand) {
                    Err(msg) => {
                        let end = TrialEnd {
                            status: TrialStatus::Failed,
                            costs: None,
                            metrics: None,
                            message: Some(&msg),
                            eval_seconds: None,
                        };
                        if self.finish(
                            &mut journal,
                            &mut progress,
                            p.id,
                            &end,
                            Outcome::Failed(msg.clone()),
                            &elapsed,
                        )? == Control::Stop
                        {
                            stop = true;
                        }
                    }
                    Ok(a) if !a.violations.is_empty() => {
                        let msg = a
                            .violations
                            .iter()
                            .map(|v| format!("{} {:.0} > {:.0}", v.metric, v.value, v.limit))
                            .collect::<Vec<_>>()
                            .join("; ");
                        let end = TrialEnd {
                            status: TrialStatus::Infeasible,
                            costs: Some(&a.costs),
                            metrics: None,
                            message: Some(&msg),
                            eval_seconds: Some(0.0),
                        };
                        let outcome = Outcome::Infeasible(a.violations);
                        repeats_in_a_row = 0;
                        if self.finish(&mut journal, &mut progress, p.id, &end, outcome, &elapsed)? == Control::Stop {
                            stop = true;
                        }
                    }
                    Ok(a) => {
                        pending.insert(key, p.id);
                        to_eval.push((p.id, cand, a, seed));
                    }
                }
            }

            // Prepare (train or load) the supernets this batch needs, up to `parallel` at once.
            let datas: BTreeSet<DataConfig> = to_eval.iter().map(|t| t.1.data).collect();
            let mut todo: Vec<(DataConfig, Option<String>)> = Vec::new();
            for data in datas {
                if ready.contains(&data) || broken.contains_key(&data) {
                    continue;
                }
                let existing = journal.supernet(&data.key())?.map(|r| r.path);
                let phase = if existing.is_some() {
                    format!("loading supernet {data}")
                } else {
                    format!("training supernet {data}")
                };
                if self.emit(&SearchEvent::Phase(&phase)) == Control::Stop {
                    stop = true;
                }
                todo.push((data, existing));
            }
            for chunk in todo.chunks(self.parallel.max(1)) {
                let observers = std::sync::Mutex::new(&mut self.observers);
                let status = |msg: &str| {
                    if let Ok(mut obs) = observers.lock() {
                        for o in obs.iter_mut() {
                            o.on_event(&SearchEvent::Phase(msg));
                        }
                    }
                };
                let evaluator = &self.evaluator;
                let dir = &self.dir;
                let prepared: Vec<Result<Prepared, String>> = std::thread::scope(|s| {
                    let handles: Vec<_> = chunk
                        .iter()
                        .map(|(data, existing)| {
                            let status = &status;
                            s.spawn(move || {
                                evaluator.prepare(*data, dir, existing.as_deref(), status).map_err(|e| e.to_string())
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|_| Err("supernet preparation panicked".to_string())))
                        .collect()
                });
                for ((data, existing), result) in chunk.iter().zip(prepared) {
                    match result {
                        Ok(prep) => {
                            if let Some(ck) = &prep.checkpoint
                                && existing.as_deref() != Some(ck.as_str())
                            {
                                journal.record_supernet(&data.key(), ck, prep.seconds)?;
                            }
                            journal.event("supernet", &format!("{data} ready after {:.1} s", prep.seconds))?;
                            ready.insert(*data);
                        }
                        Err(e) => {
                            journal.event("supernet-failed", &format!("{data}: {e}"))?;
                            broken.insert(*data, format!("supernet for {data} failed: {e}"));
                        }
                    }
                }
                // Supernet training counts against the wall-clock budget, also after a crash.
                journal.set_meta("elapsed_seconds", &elapsed().as_secs_f64().to_string())?;
            }

            // Evaluate in parallel. A panicking evaluation fails its trial, not the search.
            let keys: BTreeMap<TrialId, String> = pending.into_iter().map(|(k, id)| (id, k)).collect();
            let evaluator = Arc::clone(&self.evaluator);
            let results: Vec<Evaluated> = std::thread::scope(|s| {
                let handles: Vec<_> = to_eval
                    .into_iter()
                    .map(|(id, cand, a, seed)| {
                        let evaluator = Arc::clone(&evaluator);
                        let broken = broken.get(&cand.data).cloned();
                        let handle = s.spawn(move || {
                            let t0 = Instant::now();
                            let r = match broken {
                                Some(msg) => Err(msg),
                                None => evaluator.evaluate(&cand, seed).map_err(|e| e.to_string()),
                            };
                            (r, t0.elapsed().as_secs_f64())
                        });
                        (id, a, handle)
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|(id, a, h)| {
                        let (r, secs) = h.join().unwrap_or_else(|panic| {
                            let what = panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "unknown panic".into());
                            (Err(format!("the evaluation panicked: {what}")), 0.0)
                        });
                        let r = r.and_then(|m| match m.0.iter().find(|(_, v)| !v.is_finite()) {
                            Some((k, v)) => Err(format!("the evaluation returned a non-finite {k} ({v})")),
                            None => Ok(m),
                        });
                        (id, a, r, secs)
                    })
                    .collect()
            });
            for (id, a, r, secs) in results {
                repeats_in_a_row = 0;
                match r {
                    Ok(m) => {
                        let mut all = a.metrics.clone();
                        for (k, v) in &m.0 {
                            all.insert(k.clone(), *v);
                        }
                        add_optimizer_aliases(&mut all);
                        if let Some(key) = keys.get(&id) {
                            memo.entry(key.clone()).or_insert((id.0, Outcome::Complete(all.clone())));
                        }
                        let metrics_json = serde_json::to_value(&m.0).unwrap_or(Value::Null);
                        let end = TrialEnd {
                            status: TrialStatus::Complete,
                            costs: Some(&a.costs),
                            metrics: Some(&metrics_json),
                            message: None,
                            eval_seconds: Some(secs),
                        };
                        if self.finish(&mut journal, &mut progress, id, &end, Outcome::Complete(all), &elapsed)?
                            == Control::Stop
                        {
                            stop = true;
                        }
                    }
                    Err(msg) => {
                        let end = TrialEnd {
                            status: TrialStatus::Failed,
                            costs: Some(&a.costs),
                            metrics: None,
                            message: Some(&msg),
                            eval_seconds: Some(secs),
                        };
                        if self.finish(&mut journal, &mut progress, id, &end, Outcome::Failed(msg.clone()), &elapsed)?
                            == Control::Stop
                        {
                            stop = true;
                        }
                    }
                }
            }
            for (id, key, first) in deferred {
                let control = match memo.get(&key).cloned() {
                    Some((orig, outcome)) => self.repeat(&mut journal, &mut progress, id, orig, outcome, &elapsed)?,
                    None => {
                        // Its twin in this batch failed: so does the repeat, without a second try.
                        let msg = format!("repeat of trial {}, which failed", first.0);
                        let end = TrialEnd {
                            status: TrialStatus::Failed,
                            costs: None,
                            metrics: None,
                            message: Some(&msg),
                            eval_seconds: Some(0.0),
                        };
                        self.finish(&mut journal, &mut progress, id, &end, Outcome::Failed(msg.clone()), &elapsed)?
                    }
                };
                if control == Control::Stop {
                    stop = true;
                }
            }
        }

        progress.elapsed = elapsed();
        journal.set_meta("elapsed_seconds", &progress.elapsed.as_secs_f64().to_string())?;
        self.emit(&SearchEvent::Finished { progress: &progress });
        journal.event("finish", &format!("{} evaluated, {} infeasible", progress.evaluated, progress.infeasible))?;
        if self.final_top_k > 0 {
            self.final_stage(&mut journal)?;
        }
        let trials = journal.trials()?;
        let outputs = write_outputs(&self.dir, &trials, &self.limits)?;
        Ok(SearchSummary { dir: self.dir.clone(), progress, trials, outputs })
    }
}

impl Search {
    /// Commits a trial's end (with the optimiser's tell event, in one transaction),
    /// tells the optimiser, updates progress and notifies observers.
    fn finish(
        &mut self,
        journal: &mut Journal,
        progress: &mut Progress,
        id: TrialId,
        end: &TrialEnd<'_>,
        outcome: Outcome,
        elapsed: &dyn Fn() -> Duration,
    ) -> Result<Control, SearchError> {
        let tell = serde_json::to_value(Event::Tell { id, outcome: outcome.clone() }).unwrap_or(Value::Null);
        journal.finish_trial(id.0, end, elapsed().as_secs_f64(), Some(&tell))?;
        self.optimizer.tell(id, outcome).map_err(|e| SearchError::Optimizer(e.to_string()))?;
        let record = journal.trial(id.0)?.ok_or(SearchError::UnknownTrial(id.0))?;
        tally(progress, &record, &self.accuracy);
        progress.elapsed = elapsed();
        Ok(self.emit(&SearchEvent::Trial { record: &record, progress }))
    }
}

impl Search {
    /// Ends trial `id`, a repeat of the evaluated trial `orig`: journals the earlier
    /// costs and metrics under status [`TrialStatus::Repeat`] and tells the optimiser
    /// the earlier outcome again. Nothing is trained.
    fn repeat(
        &mut self,
        journal: &mut Journal,
        progress: &mut Progress,
        id: TrialId,
        orig: u64,
        outcome: Outcome,
        elapsed: &dyn Fn() -> Duration,
    ) -> Result<Control, SearchError> {
        let rec = journal.trial(orig)?.ok_or(SearchError::UnknownTrial(orig))?;
        let msg = format!("repeat of trial {orig}: its result is reused");
        let end = TrialEnd {
            status: TrialStatus::Repeat,
            costs: rec.costs.as_ref(),
            metrics: rec.metrics.as_ref(),
            message: Some(&msg),
            eval_seconds: Some(0.0),
        };
        self.finish(journal, progress, id, &end, outcome, elapsed)
    }
}

/// One finished evaluation: trial, its cost assessment, metrics or failure, seconds.
type Evaluated = (TrialId, Assessment, Result<Metrics, String>, f64);

/// Names the optimisers' objectives use (see `danas_optim::names`) for the
/// metrics the evaluators and the cost model report.
const OPTIMIZER_ALIASES: [(&str, &str); 4] = [
    ("val_accuracy", danas_optim::names::ACCURACY),
    ("val_precision", danas_optim::names::PRECISION),
    ("val_recall", danas_optim::names::RECALL),
    ("arena_bytes", danas_optim::names::RAM),
];

fn add_optimizer_aliases(m: &mut Metrics) {
    for (from, to) in OPTIMIZER_ALIASES {
        if m.get(to).is_err()
            && let Ok(v) = m.get(from)
        {
            m.insert(to, v);
        }
    }
}

impl Search {
    /// Trains the top-k Pareto candidates fully and merges their final metrics
    /// (test included) into their journaled metrics. Already finalised trials are skipped.
    fn final_stage(&mut self, journal: &mut Journal) -> Result<(), SearchError> {
        let trials = journal.trials()?;
        let rows: Vec<crate::report::TrialRow> = trials.iter().map(crate::report::TrialRow::from_record).collect();
        let pareto = crate::report::pareto_indices(&rows, &self.limits);
        for &i in pareto.iter().take(self.final_top_k) {
            let t = &trials[i];
            if t.metrics.as_ref().is_some_and(|m| m.get("test_accuracy").is_some()) {
                continue;
            }
            let phase = format!("final training of trial {} ({})", t.id, t.candidate);
            self.emit(&SearchEvent::Phase(&phase));
            match self.evaluator.finalize(&t.candidate, t.seed, &self.dir, &format!("trial-{}", t.id)) {
                Ok(Some(f)) => {
                    let mut m = t.metrics.clone().unwrap_or_else(|| Value::Object(Default::default()));
                    if let Some(obj) = m.as_object_mut() {
                        for (k, v) in &f.metrics.0 {
                            obj.insert(k.clone(), serde_json::json!(v));
                        }
                        if let Some(ck) = &f.checkpoint {
                            obj.insert("final_checkpoint".into(), Value::String(ck.clone()));
                        }
                    }
                    if let Some(model) = &f.int8 {
                        let rel = format!("models/trial-{}", t.id);
                        let profile = match self.cost.deploy_profile() {
                            Some(p) => p,
                            None => {
                                danas_cost::Profile::builtin("host").map_err(|e| SearchError::Export(e.to_string()))?
                            }
                        };
                        let info = crate::deploy::ModelInfo {
                            candidate: &t.candidate,
                            classes: model
                                .outputs
                                .first()
                                .and_then(|&o| model.tensors.get(o as usize))
                                .map_or(0, |o| o.elements() as u32),
                            metrics: serde_json::to_value(&f.metrics.0).unwrap_or(Value::Null),
                            calib_images: f.calib_images,
                        };
                        match crate::deploy::write_model_dir(&self.dir.join(&rel), model, &profile, &info) {
                            Ok(_) => {
                                if let Some(obj) = m.as_object_mut() {
                                    obj.insert("model_dir".into(), Value::String(rel));
                                }
                            }
                            Err(e) => journal.event("export-failed", &format!("trial {}: {e}", t.id))?,
                        }
                    }
                    journal.update_metrics(t.id, &m)?;
                    journal.event("final", &format!("trial {} finalised", t.id))?;
                }
                Ok(None) => break,
                Err(e) => journal.event("final-failed", &format!("trial {}: {e}", t.id))?,
            }
        }
        Ok(())
    }
}

/// Adds a journaled trial to the progress counters.
fn tally(progress: &mut Progress, t: &TrialRecord, accuracy: &str) {
    match t.status {
        TrialStatus::Complete => {
            progress.evaluated += 1;
            if let Some(a) = t.metrics.as_ref().and_then(|m| m.get(accuracy)).and_then(Value::as_f64) {
                progress.best_feasible = Some(progress.best_feasible.map_or(a, |b| b.max(a)));
            }
        }
        TrialStatus::Failed => {
            progress.evaluated += 1;
            progress.failed += 1;
        }
        TrialStatus::Infeasible => progress.infeasible += 1,
        TrialStatus::Repeat => progress.repeats += 1,
        TrialStatus::Running => {}
    }
}

fn preflight(space: &dyn CandidateSpace, cost: &dyn CostGate, scan: usize, seed: u64) -> Result<(), SearchError> {
    use rand::SeedableRng;
    let genomes = match space.enumerate(scan) {
        Some(all) => all,
        None => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            (0..scan).map(|_| space.sample(&mut rng)).collect()
        }
    };
    let mut min_ram = f64::INFINITY;
    let mut min_flash = f64::INFINITY;
    for g in genomes {
        let Ok(c) = space.candidate(&g) else { continue };
        let Ok(a) = cost.assess(&c) else { continue };
        if a.violations.is_empty() {
            return Ok(());
        }
        if let Ok(r) = a.metrics.get("arena_bytes") {
            min_ram = min_ram.min(r);
        }
        if let Ok(f) = a.metrics.get("flash_bytes") {
            min_flash = min_flash.min(f);
        }
    }
    Err(SearchError::Unreachable { min_ram_bytes: min_ram, min_flash_bytes: min_flash })
}
