//! The ask loop every optimiser shares: a [`Proposer`] writes only its proposal
//! step; [`AskTell`] owns the rest (trial ids and the [`Ledger`], keeping a batch
//! and the whole study free of repeats, the feasibility [`Oracle`], typed errors
//! for unknown ids and double tells, snapshots).

use std::collections::BTreeSet;
use std::sync::Arc;

use danas_space::{Genome, SearchSpace};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Ledger, OptimError, Optimizer, Oracle, Outcome, Proposal, TrialId, ensure_nonempty};

/// What a [`Proposer`] sees while it proposes: the space, the feasibility oracle
/// and what has been proposed already (in the study and in the batch being asked).
pub struct AskContext<'a> {
    space: &'a dyn SearchSpace,
    oracle: Option<&'a Oracle>,
    ledger: &'a Ledger,
    batch: &'a BTreeSet<Genome>,
}

impl AskContext<'_> {
    /// The space searched.
    pub fn space(&self) -> &dyn SearchSpace {
        self.space
    }

    /// Whether `g` was never proposed, in the study nor in this batch.
    pub fn is_new(&self, g: &Genome) -> bool {
        !self.ledger.seen(g) && !self.batch.contains(g)
    }

    /// Whether the oracle (if any) calls `g` feasible.
    pub fn is_feasible(&self, g: &Genome) -> bool {
        self.oracle.is_none_or(|o| o(g).is_feasible())
    }

    /// The trials proposed and told so far.
    pub fn ledger(&self) -> &Ledger {
        self.ledger
    }

    /// Draws from `generate` until it yields a genome that is new and feasible;
    /// after `tries` draws falls back to the first feasible repeat, then to the
    /// last draw. The usual body of [`Proposer::propose`].
    pub fn pick(&self, tries: usize, mut generate: impl FnMut() -> Genome) -> Genome {
        let mut feasible_repeat = None;
        let mut last = None;
        for _ in 0..tries.max(1) {
            let g = generate();
            let feasible = self.is_feasible(&g);
            if feasible && self.is_new(&g) {
                return g;
            }
            if feasible && feasible_repeat.is_none() {
                feasible_repeat = Some(g.clone());
            }
            last = Some(g);
        }
        feasible_repeat.or(last).unwrap_or_else(generate)
    }
}

/// The proposal step of an optimiser. Wrapped in [`AskTell`] it is an
/// [`Optimizer`]: the wrapper issues trial ids, keeps batches free of repeats,
/// checks tells and snapshots the proposer (with serde) together with the ledger.
///
/// ```
/// use std::sync::Arc;
/// use danas_optim::{AskContext, AskTell, OptimError, Optimizer, Outcome, Proposer, TrialId};
/// use danas_space::{Genome, MbSpace};
/// use rand::SeedableRng;
///
/// /// Uniform samples from one RNG per proposal; remembers how many it told.
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Dice { seed: u64, drawn: u64, told: u64 }
///
/// impl Proposer for Dice {
///     fn name(&self) -> &str { "dice" }
///     fn propose(&mut self, cx: &AskContext<'_>) -> Genome {
///         self.drawn += 1;
///         let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed ^ self.drawn);
///         cx.pick(64, || cx.space().sample(&mut rng))
///     }
///     fn told(&mut self, _id: TrialId, _g: &Genome, _o: &Outcome) -> Result<(), OptimError> {
///         self.told += 1;
///         Ok(())
///     }
/// }
///
/// let mut opt = AskTell::from_proposer(Arc::new(MbSpace::demo()), Dice { seed: 3, drawn: 0, told: 0 });
/// let p = opt.ask(2)?;
/// assert_ne!(p[0].genome, p[1].genome);
/// opt.tell(p[0].id, Outcome::Failed("out of memory".into()))?;
/// assert!(matches!(opt.tell(p[0].id, Outcome::Failed("again".into())), Err(OptimError::AlreadyTold { .. })));
/// danas_optim::conformance::run_all(&|space, seed| AskTell::from_proposer(space, Dice { seed, drawn: 0, told: 0 }))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Proposer: Send + Serialize + DeserializeOwned {
    /// Short name, e.g. `aging-evolution` (also the snapshot's kind).
    fn name(&self) -> &str;

    /// Model-based optimisers choose up to `n` genomes of a batch at once here;
    /// the rest of the batch is filled by [`Proposer::propose`]. The default
    /// chooses none.
    fn propose_batch(&mut self, _n: usize, _cx: &AskContext<'_>) -> Vec<Genome> {
        Vec::new()
    }

    /// One genome to evaluate (usually through [`AskContext::pick`]).
    fn propose(&mut self, cx: &AskContext<'_>) -> Genome;

    /// The genome just proposed was issued as trial `id`.
    fn issued(&mut self, _id: TrialId) {}

    /// Trial `id` (genome `genome`) ended with `outcome`. On an error nothing
    /// may have changed: the tell is refused and can be repeated.
    ///
    /// # Errors
    /// A metric the proposer needs is missing or not finite.
    fn told(&mut self, id: TrialId, genome: &Genome, outcome: &Outcome) -> Result<(), OptimError>;
}

/// A [`Proposer`] driven by the shared ask loop: an [`Optimizer`].
pub struct AskTell<P> {
    space: Arc<dyn SearchSpace>,
    oracle: Option<Oracle>,
    ledger: Ledger,
    proposer: P,
}

/// A [`Proposer`] built from settings and a seed: [`AskTell::new`] and
/// [`AskTell::with_config`] then build its optimiser.
pub trait SeededProposer: Proposer + Sized {
    /// Its settings (`()` when it has none).
    type Config: Default;

    /// Checks the settings.
    ///
    /// # Errors
    /// [`OptimError::InvalidConfig`] naming the setting.
    fn validate(cfg: &Self::Config) -> Result<(), OptimError>;

    /// The proposer with checked settings, seeded.
    fn seeded(cfg: Self::Config, seed: u64) -> Self;
}

impl<P: SeededProposer> AskTell<P> {
    /// The optimiser with default settings over `space`, seeded.
    pub fn new(space: Arc<dyn SearchSpace>, seed: u64) -> Self {
        Self::from_proposer(space, P::seeded(P::Config::default(), seed))
    }

    /// The optimiser with checked settings.
    ///
    /// # Errors
    /// [`OptimError::InvalidConfig`] when the settings are invalid.
    pub fn with_config(space: Arc<dyn SearchSpace>, cfg: P::Config, seed: u64) -> Result<Self, OptimError> {
        P::validate(&cfg)?;
        Ok(Self::from_proposer(space, P::seeded(cfg, seed)))
    }
}

impl<P: Proposer> AskTell<P> {
    /// `proposer` over `space`, with no oracle.
    pub fn from_proposer(space: Arc<dyn SearchSpace>, proposer: P) -> Self {
        Self { space, oracle: None, ledger: Ledger::new(), proposer }
    }

    /// Avoids proposing candidates the oracle calls infeasible.
    pub fn with_oracle(mut self, oracle: Oracle) -> Self {
        self.oracle = Some(oracle);
        self
    }

    /// The trial ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The proposer and its state.
    pub fn proposer(&self) -> &P {
        &self.proposer
    }
}

impl<P: Proposer> Optimizer for AskTell<P> {
    fn name(&self) -> &str {
        self.proposer.name()
    }

    fn space(&self) -> &dyn SearchSpace {
        self.space.as_ref()
    }

    fn ask(&mut self, n: usize) -> Result<Vec<Proposal>, OptimError> {
        ensure_nonempty(self.space.as_ref())?;
        let Self { space, oracle, ledger, proposer } = self;
        let mut batch = BTreeSet::new();
        let mut out = Vec::with_capacity(n);
        let mut chosen = {
            let cx = AskContext { space: space.as_ref(), oracle: oracle.as_ref(), ledger, batch: &batch };
            proposer.propose_batch(n, &cx).into_iter().take(n)
        };
        while out.len() < n {
            let g = match chosen.next() {
                Some(g) => g,
                None => {
                    let cx = AskContext { space: space.as_ref(), oracle: oracle.as_ref(), ledger, batch: &batch };
                    proposer.propose(&cx)
                }
            };
            batch.insert(g.clone());
            let p = ledger.issue(g);
            proposer.issued(p.id);
            out.push(p);
        }
        Ok(out)
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), OptimError> {
        let genome = self.ledger.check_pending(id)?.clone();
        self.proposer.told(id, &genome, &outcome)?;
        self.ledger.settle(id, outcome).map(|_| ())
    }

    fn snapshot(&self) -> Result<serde_json::Value, OptimError> {
        crate::snapshot_of(self.proposer.name(), self.space.as_ref(), &(&self.ledger, &self.proposer))
    }

    fn restore(&mut self, snapshot: serde_json::Value) -> Result<(), OptimError> {
        let kind = self.proposer.name().to_string();
        (self.ledger, self.proposer) = crate::restore_from(&kind, self.space.as_ref(), snapshot)?;
        Ok(())
    }
}
