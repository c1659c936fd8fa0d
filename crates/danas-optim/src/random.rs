//! Uniform random search.

use danas_space::Genome;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::optimizer::{rng_from, rng_serde};
use crate::{AskContext, AskTell, OptimError, Outcome, Proposer, SeededProposer, TrialId};

/// Uniform sampling over the space, or over its feasible part when an oracle is
/// given (rejection sampling, up to 256 draws a proposal). Avoids proposing a
/// genome twice while the space has unseen members.
pub type RandomSearch = AskTell<Uniform>;

/// The proposal step of [`RandomSearch`]: one seeded RNG.
#[derive(Clone, Serialize, Deserialize)]
pub struct Uniform {
    #[serde(with = "rng_serde")]
    rng: ChaCha8Rng,
}

impl SeededProposer for Uniform {
    type Config = ();

    fn validate(_cfg: &()) -> Result<(), OptimError> {
        Ok(())
    }

    fn seeded(_cfg: (), seed: u64) -> Self {
        Uniform { rng: rng_from(seed) }
    }
}

impl Proposer for Uniform {
    fn name(&self) -> &str {
        "random"
    }

    fn propose(&mut self, cx: &AskContext<'_>) -> Genome {
        let rng = &mut self.rng;
        cx.pick(256, || cx.space().sample(rng))
    }

    fn told(&mut self, _id: TrialId, _genome: &Genome, _outcome: &Outcome) -> Result<(), OptimError> {
        Ok(())
    }
}
