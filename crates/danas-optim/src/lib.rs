//! # danas-optim
//!
//! Optimisers behind one ask/tell trait, [`Optimizer`]: `ask(n)` hands out `n`
//! genomes to evaluate (in parallel if you like), `tell(id, outcome)` reports each
//! [`Outcome`] (`Complete(metrics)`, `Infeasible(violations)` or `Failed(reason)`).
//! Optimisers see genomes and metric values only, never networks, and work with any
//! [`SearchSpace`](danas_space::SearchSpace).
//!
//! - Optimisers ([`OptimizerKind`] names them): [`RandomSearch`], [`PaperGa`] (the
//!   paper's GA), [`AgingEvolution`], [`Nsga2`], [`Bayesian`] (exact GP, expected
//!   improvement, constrained and ParEGO multi-objective variants). Each is a
//!   [`Proposer`] (its proposal step) in the shared ask loop [`AskTell`]; write your
//!   own the same way.
//! - Objectives and scalarisation: [`Objective`], [`Metrics`], [`Scalarization`]
//!   (`paper` soft penalty, `constrained`, `weighted`).
//! - Feasibility: an optional cheap [`Oracle`] (typically the cost model's limit
//!   check) keeps optimisers from proposing candidates known to be infeasible.
//! - Resuming: [`Optimizer::snapshot`] / [`Optimizer::restore`] (serde JSON), or
//!   [`replay`] of a [`Journal`] on a fresh optimiser.
//! - [`pareto`]: non-dominated filter, ranks, crowding, exact 2-D/3-D hypervolume,
//!   attainment surfaces.
//! - [`conformance`] and [`optimizer_conformance!`]: the checks every optimiser passes.
//! - [`synthetic`]: a synthetic NAS landscape for tests and benchmarks.
//!
//! ```
//! use std::sync::Arc;
//! use danas_optim::{AgingEvolution, Optimizer, Outcome, Metrics};
//! use danas_space::{MbSpace, SearchSpace};
//!
//! let mut opt = AgingEvolution::new(Arc::new(MbSpace::paper()), 42);
//! for _ in 0..5 {
//!     for p in opt.ask(4)? {
//!         let metrics = Metrics::new().with("val_accuracy", 0.5).with("arena_bytes", 1e5).with("flash_bytes", 1e6);
//!         opt.tell(p.id, Outcome::Complete(metrics))?;
//!     }
//! }
//! # Ok::<(), danas_optim::OptimError>(())
//! ```

mod ask;
mod bayes;
pub mod conformance;
mod error;
mod evolution;
pub mod gp;
mod nsga2;
mod objective;
mod optimizer;
pub mod pareto;
mod random;
pub mod synthetic;

pub use ask::{AskContext, AskTell, Proposer, SeededProposer};
pub use bayes::{BayesConfig, BayesMode, BayesProposer, Bayesian};
pub use error::OptimError;
pub use evolution::{AgingConfig, AgingEvolution, AgingProposer, Member, PaperGa, PaperGaConfig, PaperGaProposer};
pub use nsga2::{MoMember, Nsga2, Nsga2Config, Nsga2Proposer};
pub use objective::{
    Direction, Feasibility, Fitness, Limits, Metrics, Objective, Oracle, Outcome, Scalarization, Violation, names,
    total_violation,
};
pub use optimizer::{
    Event, Journal, Ledger, Optimizer, Proposal, Trial, TrialId, ensure_nonempty, replay, restore_from, snapshot_of,
};
pub use random::{RandomSearch, Uniform};
/// Re-exported so that optimisers outside this crate can name [`serde_json::Value`]
/// (the snapshot type) without a direct dependency.
pub use serde_json;

/// The built-in optimisers, by name (`random`, `paper-ga`, `aging-evolution`,
/// `nsga2`, `bayesian`): what a config file or a command line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// [`RandomSearch`].
    Random,
    /// [`PaperGa`], the paper's genetic algorithm.
    PaperGa,
    /// [`AgingEvolution`].
    AgingEvolution,
    /// [`Nsga2`].
    Nsga2,
    /// [`Bayesian`].
    Bayesian,
}

impl OptimizerKind {
    /// Every built-in optimiser.
    pub const ALL: [OptimizerKind; 5] = [
        OptimizerKind::Random,
        OptimizerKind::PaperGa,
        OptimizerKind::AgingEvolution,
        OptimizerKind::Nsga2,
        OptimizerKind::Bayesian,
    ];

    /// Its name, e.g. `aging-evolution`.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Random => "random",
            OptimizerKind::PaperGa => "paper-ga",
            OptimizerKind::AgingEvolution => "aging-evolution",
            OptimizerKind::Nsga2 => "nsga2",
            OptimizerKind::Bayesian => "bayesian",
        }
    }

    /// The names of [`OptimizerKind::ALL`], comma separated.
    pub fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    /// Builds the optimiser with default settings, optionally with an oracle.
    pub fn build(
        self,
        space: std::sync::Arc<dyn danas_space::SearchSpace>,
        seed: u64,
        oracle: Option<Oracle>,
    ) -> Box<dyn Optimizer> {
        fn boxed<P: Proposer + 'static>(o: AskTell<P>, oracle: Option<Oracle>) -> Box<dyn Optimizer> {
            match oracle {
                Some(or) => Box::new(o.with_oracle(or)),
                None => Box::new(o),
            }
        }
        match self {
            OptimizerKind::Random => boxed(RandomSearch::new(space, seed), oracle),
            OptimizerKind::PaperGa => boxed(PaperGa::new(space, seed), oracle),
            OptimizerKind::AgingEvolution => boxed(AgingEvolution::new(space, seed), oracle),
            OptimizerKind::Nsga2 => boxed(Nsga2::new(space, seed), oracle),
            OptimizerKind::Bayesian => boxed(Bayesian::new(space, seed), oracle),
        }
    }
}

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = OptimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| OptimError::config("optimizer", s, format!("unknown; known: {}", Self::names())))
    }
}

/// Builds a built-in optimiser by name with default settings, optionally with an oracle.
///
/// # Errors
/// [`OptimError::InvalidConfig`] for an unknown name (listing the known ones).
pub fn by_name(
    name: &str,
    space: std::sync::Arc<dyn danas_space::SearchSpace>,
    seed: u64,
    oracle: Option<Oracle>,
) -> Result<Box<dyn Optimizer>, OptimError> {
    Ok(name.parse::<OptimizerKind>()?.build(space, seed, oracle))
}
