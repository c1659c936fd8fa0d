//! A user-defined optimiser, written outside `danas-optim` against its public
//! [`Proposer`] trait (its proposal step; the shared ask loop [`AskTell`] makes it an
//! [`Optimizer`]), checked by the conformance suite (also as a test:
//! `crates/danas-optim/tests/conformance.rs` runs the same suite through the
//! `optimizer_conformance!` macro) and then run
//!
//! 1. in danas's real search loop (`danas::search::Search`: ask → decode → cost gate
//!    → evaluate → tell → journal, with budgets and reports), with the real cost
//!    model under the paper's limits (512 KiB RAM, 2 MiB flash) and the synthetic
//!    NAS landscape standing in for training, so it runs in seconds;
//! 2. against random search in a plain ask/tell loop over 3 seeds.
//!
//! Run: `cargo run --example 05_custom_optimizer [-- --budget 60]`

use std::sync::Arc;

use danas::optim::synthetic::{CostFn, Landscape, SyntheticProblem, run_search, summarize_run};
use danas::optim::{
    AskContext, AskTell, Limits, OptimError, Optimizer, Outcome, Proposer, RandomSearch, Scalarization, TrialId,
    conformance,
};
use danas::search::{CostModelGate, EvalError, Evaluator, Prepared, Search};
use danas::space::{CandidateSpace, Genome, GroupWeights, MbSpace, SearchSpace};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Local search with restarts: mutates the best feasible genome seen so far, or
/// samples a fresh genome with probability `restart` (and always until something
/// feasible has been told). Only the proposal step is written here; [`AskTell`]
/// runs the ask loop around it (trial ids, no repeats within a batch or the study,
/// the cost model's feasibility oracle, checked tells, snapshots).
#[derive(serde::Serialize, serde::Deserialize)]
struct HillClimber {
    seed: u64,
    restart: f64,
    best: Option<(Genome, f64)>,
}

impl HillClimber {
    fn optimizer(space: Arc<dyn SearchSpace>, seed: u64) -> AskTell<HillClimber> {
        AskTell::from_proposer(space, HillClimber { seed, restart: 0.2, best: None })
    }
}

impl Proposer for HillClimber {
    fn name(&self) -> &str {
        "hill-climber"
    }

    fn propose(&mut self, cx: &AskContext<'_>) -> Genome {
        // one RNG per trial id: deterministic without serialising an RNG
        let id = cx.ledger().next_id().0;
        let mut rng = StdRng::seed_from_u64(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ id);
        let space = cx.space();
        cx.pick(64, || match &self.best {
            Some((g, _)) if rng.random::<f64>() >= self.restart => {
                space.mutate_weighted(g, &mut rng, &GroupWeights::PAPER)
            }
            _ => space.sample(&mut rng),
        })
    }

    fn told(&mut self, _id: TrialId, genome: &Genome, outcome: &Outcome) -> Result<(), OptimError> {
        if let Some(f) = Scalarization::constrained_paper().outcome_fitness(outcome)?
            && f.feasible()
            && self.best.as_ref().is_none_or(|(_, s)| f.score > *s)
        {
            self.best = Some((genome.clone(), f.score));
        }
        Ok(())
    }
}

fn real_cost() -> CostFn {
    let profile = danas::cost::Profile::default_mcu();
    Arc::new(move |cand| {
        let bp = cand.blueprint(2).map_err(|e| e.to_string())?;
        let c = danas::cost::estimate_blueprint(&bp, &profile, danas::core::Precision::Int8);
        Ok((c.arena_bytes as f64, c.flash_bytes as f64))
    })
}

/// The synthetic landscape as an [`Evaluator`]: no supernet to prepare, accuracy
/// from a deterministic function of the candidate.
struct LandscapeEvaluator(Landscape);

impl Evaluator for LandscapeEvaluator {
    fn prepare(
        &self,
        _data: danas::core::DataConfig,
        _dir: &std::path::Path,
        _existing: Option<&str>,
        _status: &dyn Fn(&str),
    ) -> Result<Prepared, EvalError> {
        Ok(Prepared::default())
    }

    fn evaluate(&self, c: &danas::core::Candidate, _seed: u64) -> Result<danas::optim::Metrics, EvalError> {
        let m = self.0.metrics(c);
        let acc = m.get(danas::optim::names::ACCURACY)?;
        Ok(danas::optim::Metrics::new().with("val_accuracy", acc))
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let budget = match args.iter().position(|a| a == "--budget") {
        Some(i) => args.get(i + 1).ok_or_else(|| anyhow::anyhow!("--budget needs a value"))?.parse::<usize>()?,
        None => 60,
    };

    // 1. the conformance suite, called as plain functions
    conformance::run_all(&|space, seed| HillClimber::optimizer(space, seed)).map_err(anyhow::Error::msg)?;
    println!("conformance suite: all checks pass for hill-climber");

    // 2. the custom optimiser in danas's search loop, with the real cost gate
    let space = Arc::new(MbSpace::paper());
    let gate = Arc::new(CostModelGate::new(
        danas::cost::Profile::default_mcu(),
        danas::cost::Limits::paper(),
        danas::core::Precision::Int8,
        2,
    ));
    let mine =
        HillClimber::optimizer(space.clone(), 7).with_oracle(gate.oracle(space.clone() as Arc<dyn CandidateSpace>));
    let dir = std::env::temp_dir().join(format!("danas-example-05-{}", std::process::id()));
    let summary = Search::new(space, Box::new(mine), gate, Arc::new(LandscapeEvaluator(Landscape::new(7))))
        .budget(danas::search::Budget { wall: None, max_trials: Some(budget as u64) })
        .parallel(2)
        .seed(7)
        .out_dir(&dir)
        .run()?;
    println!(
        "search loop: {} evaluated, {} rejected by the cost gate, best feasible {:.4}, Pareto set of {} (outputs in {})",
        summary.progress.evaluated,
        summary.progress.infeasible,
        summary.progress.best_feasible.unwrap_or(0.0),
        summary.outputs.pareto.len(),
        dir.display()
    );
    std::fs::remove_dir_all(&dir).ok();

    // 3. an ask/tell loop on the synthetic landscape, real cost model, paper limits
    let problem = Arc::new(SyntheticProblem::new(MbSpace::paper(), real_cost(), Limits::paper()));
    println!("{:<14} {:>6} {:>14} {:>12}", "strategy", "seed", "best feasible", "hypervolume");
    for seed in 0..3u64 {
        let mut mine = HillClimber::optimizer(problem.space(), seed).with_oracle(problem.oracle());
        let mut random = RandomSearch::new(problem.space(), seed).with_oracle(problem.oracle());
        for opt in [&mut mine as &mut dyn Optimizer, &mut random] {
            let trials = run_search(&problem, &Landscape::new(seed), opt, budget, 4)?;
            let s = summarize_run(&trials, 512.0 * 1024.0, 2.0 * 1024.0 * 1024.0, 0.5)?;
            println!("{:<14} {:>6} {:>14.4} {:>12.4}", opt.name(), seed, s.best_feasible.unwrap_or(0.0), s.hypervolume);
        }
    }
    Ok(())
}
