//! # danas-optim
//!
//! Optimisers behind one ask/tell trait, [`Optimizer`]: `ask(n)` hands out `n`
//! genomes to evaluate (in parallel if you like), `tell(id, outcome)` reports each
//! [`Outcome`] (`Complete(metrics)`, `Infeasible(violations)` or `Failed(reason)`).
//! Optimisers see genomes and metric values only, never networks, and work with any
//! [`SearchSpace`](danas_space::SearchSpace).
//!
//! - Strategies: [`RandomSearch`], [`PaperGa`] (the paper's GA), [`AgingEvolution`],
//!   [`Nsga2`], [`Bayesian`] (exact GP, expected improvement, constrained and
//!   ParEGO multi-objective variants).
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

pub use bayes::{BayesConfig, BayesMode, Bayesian};
pub use error::OptimError;
pub use evolution::{AgingConfig, AgingEvolution, Member, PaperGa, PaperGaConfig};
pub use nsga2::{MoMember, Nsga2, Nsga2Config};
pub use objective::{
    Direction, Feasibility, Fitness, Limits, Metrics, Objective, Oracle, Outcome, Scalarization, Violation, names,
    total_violation,
};
pub use optimizer::{
    Event, Journal, Ledger, Optimizer, Proposal, Trial, TrialId, ensure_nonempty, replay, restore_from, snapshot_of,
};
pub use random::RandomSearch;
/// Re-exported so that optimisers outside this crate can name [`serde_json::Value`]
/// (the snapshot type) without a direct dependency.
pub use serde_json;

/// The built-in strategies by name, for CLIs and benches.
pub const STRATEGIES: [&str; 5] = ["random", "paper-ga", "aging-evolution", "nsga2", "bayesian"];

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
    Ok(match (name, oracle) {
        ("random", None) => Box::new(RandomSearch::new(space, seed)),
        ("random", Some(o)) => Box::new(RandomSearch::new(space, seed).with_oracle(o)),
        ("paper-ga", None) => Box::new(PaperGa::new(space, seed)),
        ("paper-ga", Some(o)) => Box::new(PaperGa::new(space, seed).with_oracle(o)),
        ("aging-evolution", None) => Box::new(AgingEvolution::new(space, seed)),
        ("aging-evolution", Some(o)) => Box::new(AgingEvolution::new(space, seed).with_oracle(o)),
        ("nsga2", None) => Box::new(Nsga2::new(space, seed)),
        ("nsga2", Some(o)) => Box::new(Nsga2::new(space, seed).with_oracle(o)),
        ("bayesian", None) => Box::new(Bayesian::new(space, seed)),
        ("bayesian", Some(o)) => Box::new(Bayesian::new(space, seed).with_oracle(o)),
        (other, _) => {
            return Err(OptimError::config("strategy", other, format!("unknown; known: {}", STRATEGIES.join(", "))));
        }
    })
}
