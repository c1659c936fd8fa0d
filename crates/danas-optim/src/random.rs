//! Uniform random search.

use std::collections::BTreeSet;
use std::sync::Arc;

use danas_space::SearchSpace;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::optimizer::{propose_with, rng_from, rng_serde};
use crate::{Ledger, OptimError, Optimizer, Oracle, Outcome, Proposal, TrialId, ensure_nonempty};

/// Uniform sampling over the space, or over its feasible part when an oracle is
/// given (rejection sampling). Avoids proposing a genome twice while the space has
/// unseen members.
pub struct RandomSearch {
    space: Arc<dyn SearchSpace>,
    oracle: Option<Oracle>,
    st: RandomState,
}

#[derive(Clone, Serialize, Deserialize)]
struct RandomState {
    ledger: Ledger,
    #[serde(with = "rng_serde")]
    rng: ChaCha8Rng,
}

impl RandomSearch {
    /// Uniform over `space`, seeded.
    pub fn new(space: Arc<dyn SearchSpace>, seed: u64) -> Self {
        Self { space, oracle: None, st: RandomState { ledger: Ledger::new(), rng: rng_from(seed) } }
    }

    /// Samples only genomes the oracle calls feasible (up to 256 draws each).
    pub fn with_oracle(mut self, oracle: Oracle) -> Self {
        self.oracle = Some(oracle);
        self
    }

    /// The trial ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.st.ledger
    }
}

impl Optimizer for RandomSearch {
    fn name(&self) -> &str {
        "random"
    }

    fn space(&self) -> &dyn SearchSpace {
        self.space.as_ref()
    }

    fn ask(&mut self, n: usize) -> Result<Vec<Proposal>, OptimError> {
        ensure_nonempty(self.space.as_ref())?;
        let mut batch = BTreeSet::new();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let st = &mut self.st;
            let space = &self.space;
            let g = propose_with(&st.ledger, self.oracle.as_ref(), 256, &batch, || space.sample(&mut st.rng));
            batch.insert(g.clone());
            out.push(st.ledger.issue(g));
        }
        Ok(out)
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), OptimError> {
        self.st.ledger.settle(id, outcome).map(|_| ())
    }

    fn snapshot(&self) -> Result<serde_json::Value, OptimError> {
        crate::snapshot_of("random", self.space.as_ref(), &self.st)
    }

    fn restore(&mut self, snapshot: serde_json::Value) -> Result<(), OptimError> {
        self.st = crate::restore_from("random", self.space.as_ref(), snapshot)?;
        Ok(())
    }
}
