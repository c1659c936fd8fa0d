//! The search, configured with a builder: ask → decode → cost gate → (supernet) →
//! evaluate → tell → journal. The loop itself is in `drive.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use danas_optim::Optimizer;
use danas_space::CandidateSpace;
use serde_json::Value;

use crate::{
    Budget, Control, CostGate, Evaluator, Journal, Observer, SearchError, SearchEvent, SearchSummary, StudyLocation,
};

/// A search, configured with a builder and run with [`Search::run`] or [`Search::resume`].
pub struct Search {
    pub(crate) space: Arc<dyn CandidateSpace>,
    pub(crate) optimizer: Box<dyn Optimizer>,
    pub(crate) cost: Arc<dyn CostGate>,
    pub(crate) evaluator: Arc<dyn Evaluator>,
    pub(crate) budget: Budget,
    pub(crate) seed: u64,
    pub(crate) parallel: usize,
    pub(crate) dir: PathBuf,
    config: Value,
    pub(crate) observers: Vec<Box<dyn Observer>>,
    pub(crate) accuracy: String,
    pub(crate) final_top_k: usize,
    pub(crate) halving: crate::Halving,
    /// Where the study lives (`None`: `dir/study.sqlite`).
    study: Option<StudyLocation>,
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
            observers: Vec::new(),
            accuracy: "val_accuracy".into(),
            final_top_k: 0,
            halving: crate::Halving::default(),
            study: None,
        }
    }
    /// After the search, trains the `k` most accurate Pareto candidates fully and
    /// reports their test metrics ([`Evaluator::finalize`]); 0 (default) skips it.
    pub fn final_top_k(mut self, k: usize) -> Self {
        self.final_top_k = k;
        self
    }
    /// Multi-fidelity selection: the rungs of successive halving above the proxy
    /// (default: none; the proxy alone ranks). Needs an evaluator that implements
    /// [`Evaluator::promote`](crate::Evaluator::promote).
    pub fn halving(mut self, halving: crate::Halving) -> Self {
        self.halving = halving;
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
        let journal = Journal::create_at(&self.location(), &self.config)?;
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
        let journal = Journal::open_at(&self.location())?;
        self.drive(journal, true)
    }

    /// Keeps the study at `at` instead of `DIR/study.sqlite`: in PostgreSQL, workers
    /// (`danas worker`) can join it; the results directory still receives the
    /// reports, supernets and models. Pair a shared study with a
    /// `scale::RemoteEvaluator` to have the workers do the training.
    #[must_use]
    pub fn study(mut self, at: StudyLocation) -> Self {
        self.study = Some(at);
        self
    }

    /// Keeps the study in PostgreSQL ([`Search::study`]).
    #[cfg(feature = "postgres")]
    #[must_use]
    pub fn storage(self, storage: crate::Storage) -> Self {
        self.study(StudyLocation::Postgres(storage))
    }

    /// Where the study lives.
    pub fn location(&self) -> StudyLocation {
        self.study.clone().unwrap_or_else(|| StudyLocation::in_dir(&self.dir))
    }

    pub(crate) fn emit(&mut self, e: &SearchEvent<'_>) -> Control {
        let mut c = Control::Continue;
        for o in &mut self.observers {
            if o.on_event(e) == Control::Stop {
                c = Control::Stop;
            }
        }
        c
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
    let mut min_latency: Option<f64> = None;
    for g in genomes {
        let Ok(c) = space.candidate(&g) else { continue };
        let Ok(a) = cost.assess(&c) else { continue };
        if a.feasibility.is_feasible() {
            return Ok(());
        }
        min_ram = min_ram.min(a.costs.arena_bytes as f64);
        min_flash = min_flash.min(a.costs.flash_bytes as f64);
        if let Some(l) = a.costs.latency_ms {
            min_latency = Some(min_latency.map_or(l, |m: f64| m.min(l)));
        }
    }
    Err(SearchError::Unreachable {
        min_ram_bytes: min_ram,
        min_flash_bytes: min_flash,
        min_latency_ms: min_latency,
        limits: cost.limits(),
        runtime_flash_bytes: cost.deploy_profile().map(|p| p.runtime_flash_bytes),
    })
}
