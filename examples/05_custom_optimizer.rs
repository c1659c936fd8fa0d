//! A user-defined optimiser, written outside `danas-optim` against its public
//! [`Optimizer`] trait, checked by the conformance suite and then run in an
//! ask/tell loop on the synthetic NAS landscape with the real cost model
//! (`danas-cost`) under the paper's limits (512 KiB RAM, 2 MiB flash).
//!
//! The search-loop crate (`danas-search`: ask → decode → cost gate → evaluate →
//! tell, with journal and budgets) does not exist yet; the loop below is a
//! hand-written stand-in ([`danas::optim::synthetic::run_search`]).
//!
//! Run: `cargo run --example 05_custom_optimizer [-- --budget 60]`

use std::sync::Arc;

use danas::optim::synthetic::{CostFn, Landscape, SyntheticProblem, run_search, summarize_run};
use danas::optim::{
    Ledger, Limit, OptimError, Optimizer, Oracle, Outcome, Proposal, RandomSearch, Scalarization, TrialId, conformance,
    ensure_nonempty, restore_from, snapshot_of,
};
use danas::space::{Genome, GroupWeights, MbSpace, SearchSpace};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Local search with restarts: mutates the best feasible genome seen so far, or
/// samples a fresh genome with probability `restart` (and always until something
/// feasible has been told).
struct HillClimber {
    space: Arc<dyn SearchSpace>,
    oracle: Option<Oracle>,
    seed: u64,
    restart: f64,
    ledger: Ledger,
    best: Option<(Genome, f64)>,
}

impl HillClimber {
    fn new(space: Arc<dyn SearchSpace>, seed: u64) -> Self {
        Self { space, oracle: None, seed, restart: 0.2, ledger: Ledger::new(), best: None }
    }

    /// One RNG per trial id: deterministic without serialising an RNG.
    fn rng_for(&self, id: TrialId) -> StdRng {
        StdRng::seed_from_u64(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ id.0)
    }
}

impl Optimizer for HillClimber {
    fn name(&self) -> &str {
        "hill-climber"
    }

    fn space(&self) -> &dyn SearchSpace {
        self.space.as_ref()
    }

    fn ask(&mut self, n: usize) -> Result<Vec<Proposal>, OptimError> {
        ensure_nonempty(self.space.as_ref())?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mut rng = self.rng_for(self.ledger.next_id());
            let mut pick = None;
            for _ in 0..64 {
                let g = match &self.best {
                    Some((g, _)) if rng.random::<f64>() >= self.restart => {
                        self.space.mutate_weighted(g, &mut rng, &GroupWeights::PAPER)
                    }
                    _ => self.space.sample(&mut rng),
                };
                let feasible = self.oracle.as_ref().is_none_or(|o| o(&g).is_feasible());
                let fresh = !self.ledger.seen(&g) && !out.iter().any(|p: &Proposal| p.genome == g);
                pick = Some(g);
                if feasible && fresh {
                    break;
                }
            }
            let g = pick.unwrap_or_else(|| self.space.sample(&mut rng));
            out.push(self.ledger.issue(g));
        }
        Ok(out)
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), OptimError> {
        self.ledger.check_pending(id)?;
        let fitness = Scalarization::constrained_paper().outcome_fitness(&outcome)?;
        let genome = self.ledger.settle(id, outcome)?.genome.clone();
        if let Some(f) = fitness
            && f.feasible()
            && self.best.as_ref().is_none_or(|(_, s)| f.score > *s)
        {
            self.best = Some((genome, f.score));
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<danas::optim::serde_json::Value, OptimError> {
        snapshot_of("hill-climber", self.space.as_ref(), &(self.seed, self.restart, &self.ledger, &self.best))
    }

    fn restore(&mut self, snapshot: danas::optim::serde_json::Value) -> Result<(), OptimError> {
        (self.seed, self.restart, self.ledger, self.best) =
            restore_from("hill-climber", self.space.as_ref(), snapshot)?;
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

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let budget = match args.iter().position(|a| a == "--budget") {
        Some(i) => args.get(i + 1).ok_or_else(|| anyhow::anyhow!("--budget needs a value"))?.parse::<usize>()?,
        None => 60,
    };

    // 1. the conformance suite, called as plain functions
    conformance::run_all(&|space, seed| HillClimber::new(space, seed)).map_err(anyhow::Error::msg)?;
    println!("conformance suite: all checks pass for hill-climber");

    // 2. an ask/tell loop on the synthetic landscape, real cost model, paper limits
    let problem = Arc::new(SyntheticProblem::new(MbSpace::paper(), real_cost(), Limit::paper()));
    println!("{:<14} {:>6} {:>14} {:>12}", "strategy", "seed", "best feasible", "hypervolume");
    for seed in 0..3u64 {
        let mut mine = HillClimber::new(problem.space(), seed);
        mine.oracle = Some(problem.oracle());
        let mut random = RandomSearch::new(problem.space(), seed).with_oracle(problem.oracle());
        for opt in [&mut mine as &mut dyn Optimizer, &mut random] {
            let trials = run_search(&problem, &Landscape::new(seed), opt, budget, 4)?;
            let s = summarize_run(&trials, 512.0 * 1024.0, 2.0 * 1024.0 * 1024.0, 0.5)?;
            println!("{:<14} {:>6} {:>14.4} {:>12.4}", opt.name(), seed, s.best_feasible.unwrap_or(0.0), s.hypervolume);
        }
    }
    Ok(())
}
