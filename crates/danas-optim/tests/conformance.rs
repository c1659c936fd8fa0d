//! Every built-in optimiser runs the conformance suite, with and without an oracle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use danas_optim::{
    AgingEvolution, BayesConfig, BayesMode, Bayesian, Feasibility, Limits, Nsga2, Objective, Oracle, PaperGa,
    RandomSearch, optimizer_conformance,
};
use danas_space::Genome;

/// Rejects about a third of any space.
fn oracle() -> Oracle {
    Arc::new(|g: &Genome| {
        if g.0.iter().map(|&v| u32::from(v)).sum::<u32>() % 3 == 0 {
            Feasibility::Infeasible(vec![])
        } else {
            Feasibility::Feasible
        }
    })
}

optimizer_conformance!(random, |space, seed| RandomSearch::new(space, seed));
optimizer_conformance!(random_oracle, |space, seed| RandomSearch::new(space, seed).with_oracle(oracle()));
optimizer_conformance!(paper_ga, |space, seed| PaperGa::new(space, seed));
optimizer_conformance!(paper_ga_oracle, |space, seed| PaperGa::new(space, seed).with_oracle(oracle()));
optimizer_conformance!(aging, |space, seed| AgingEvolution::new(space, seed));
optimizer_conformance!(aging_oracle, |space, seed| AgingEvolution::new(space, seed).with_oracle(oracle()));
optimizer_conformance!(nsga2, |space, seed| Nsga2::new(space, seed));
optimizer_conformance!(nsga2_oracle, |space, seed| Nsga2::new(space, seed).with_oracle(oracle()));
optimizer_conformance!(bayesian, |space, seed| Bayesian::new(space, seed));
optimizer_conformance!(bayesian_oracle, |space, seed| Bayesian::new(space, seed).with_oracle(oracle()));
optimizer_conformance!(bayesian_parego, |space, seed| {
    let cfg = BayesConfig {
        mode: BayesMode::ParEgo { objectives: Objective::accuracy_ram_flash(), limits: Some(Limits::paper()) },
        ..BayesConfig::default()
    };
    Bayesian::with_config(space, cfg, seed).unwrap()
});
