//! The ask/tell trait, trial bookkeeping, journals and replay.

use std::collections::{BTreeMap, BTreeSet};

use danas_space::{Genome, SearchSpace};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{OptimError, Outcome};

/// Identifies one proposal of one optimiser (0, 1, 2, … in proposal order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrialId(pub u64);

impl std::fmt::Display for TrialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A genome to evaluate, with the id to report its outcome under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The trial id to pass to [`Optimizer::tell`].
    pub id: TrialId,
    /// The genome to evaluate.
    pub genome: Genome,
}

/// A told trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Its id.
    pub id: TrialId,
    /// The genome.
    pub genome: Genome,
    /// What happened.
    pub outcome: Outcome,
}

/// An optimiser over genomes of a [`SearchSpace`], driven by ask/tell.
///
/// `ask(n)` hands out `n` proposals at once (evaluate them in parallel), `tell`
/// reports each outcome, in any order. Implementations must be deterministic
/// given their seed and the sequence of calls, so a search resumes exactly either
/// from [`snapshot`](Optimizer::snapshot) / [`restore`](Optimizer::restore) or by
/// [`replay`]ing a [`Journal`]. Run [`crate::conformance`] (or the
/// [`optimizer_conformance!`](crate::optimizer_conformance) macro) on every new
/// implementation.
///
/// Most optimisers need only their proposal step: implement
/// [`Proposer`](crate::Proposer) and wrap it in [`AskTell`](crate::AskTell), which
/// owns the ask loop (ids, repeats, the oracle, tells, snapshots); all built-in
/// optimisers are made that way. Implement this trait directly for full control,
/// e.g. with [`Ledger`] for the bookkeeping:
///
/// ```
/// use std::sync::Arc;
/// use danas_optim::{Ledger, OptimError, Optimizer, Outcome, Proposal, TrialId, ensure_nonempty};
/// use danas_space::{MbSpace, SearchSpace};
/// use rand::SeedableRng;
///
/// /// Proposes uniform samples; keeps nothing but the ledger and a seed.
/// struct Dice { space: Arc<dyn SearchSpace>, seed: u64, ledger: Ledger }
///
/// impl Optimizer for Dice {
///     fn name(&self) -> &str { "dice" }
///     fn space(&self) -> &dyn SearchSpace { self.space.as_ref() }
///     fn ask(&mut self, n: usize) -> Result<Vec<Proposal>, OptimError> {
///         ensure_nonempty(self.space.as_ref())?;
///         let mut out = Vec::new();
///         for _ in 0..n {
///             // one RNG per trial id keeps the state trivially serialisable
///             let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed ^ self.ledger.next_id().0);
///             let g = self.space.sample(&mut rng);
///             out.push(self.ledger.issue(g));
///         }
///         Ok(out)
///     }
///     fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), OptimError> {
///         self.ledger.settle(id, outcome).map(|_| ())
///     }
///     fn snapshot(&self) -> Result<serde_json::Value, OptimError> {
///         danas_optim::snapshot_of("dice", self.space.as_ref(), &(self.seed, &self.ledger))
///     }
///     fn restore(&mut self, s: serde_json::Value) -> Result<(), OptimError> {
///         (self.seed, self.ledger) = danas_optim::restore_from("dice", self.space.as_ref(), s)?;
///         Ok(())
///     }
/// }
///
/// let mut opt = Dice { space: Arc::new(MbSpace::demo()), seed: 3, ledger: Ledger::new() };
/// let p = opt.ask(2)?;
/// opt.tell(p[0].id, Outcome::Failed("out of memory".into()))?;
/// assert!(matches!(opt.tell(p[0].id, Outcome::Failed("again".into())), Err(OptimError::AlreadyTold { .. })));
/// danas_optim::conformance::run_all(&|space, seed| Dice { space, seed, ledger: Ledger::new() })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Optimizer: Send {
    /// Short name, e.g. `paper-ga`.
    fn name(&self) -> &str;

    /// The space it searches.
    fn space(&self) -> &dyn SearchSpace;

    /// Proposes `n` genomes to evaluate.
    ///
    /// # Errors
    /// [`OptimError::EmptySpace`] when the space has no member.
    fn ask(&mut self, n: usize) -> Result<Vec<Proposal>, OptimError>;

    /// Reports the outcome of a proposed trial.
    ///
    /// # Errors
    /// [`OptimError::UnknownTrial`], [`OptimError::AlreadyTold`], or a metric error.
    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), OptimError>;

    /// The whole state (without the space and oracle) as JSON.
    ///
    /// # Errors
    /// [`OptimError::Snapshot`] when it cannot be serialised.
    fn snapshot(&self) -> Result<serde_json::Value, OptimError>;

    /// Replaces the state by a snapshot taken from an optimiser of the same kind over
    /// the same space.
    ///
    /// # Errors
    /// [`OptimError::Snapshot`] when the snapshot is of another kind, space or malformed.
    fn restore(&mut self, snapshot: serde_json::Value) -> Result<(), OptimError>;
}

/// Returns an error when `space` has no member.
///
/// # Errors
/// [`OptimError::EmptySpace`].
pub fn ensure_nonempty(space: &dyn SearchSpace) -> Result<(), OptimError> {
    if space.cardinality() == 0 || space.genes().iter().any(|g| g.choices == 0) {
        Err(OptimError::EmptySpace { space: space.name().to_string() })
    } else {
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    kind: String,
    space: String,
    genes: usize,
    state: T,
}

/// Wraps `state` in a JSON snapshot tagged with the optimiser kind and the space.
///
/// # Errors
/// [`OptimError::Snapshot`] when serialisation fails.
pub fn snapshot_of<T: Serialize>(
    kind: &str,
    space: &dyn SearchSpace,
    state: &T,
) -> Result<serde_json::Value, OptimError> {
    let env = Envelope { kind: kind.to_string(), space: space.name().to_string(), genes: space.genes().len(), state };
    serde_json::to_value(&env).map_err(|e| OptimError::Snapshot { optimizer: kind.to_string(), message: e.to_string() })
}

/// Reads a state written by [`snapshot_of`], checking kind and space.
///
/// # Errors
/// [`OptimError::Snapshot`] naming the mismatch or the malformed field.
pub fn restore_from<T: DeserializeOwned>(
    kind: &str,
    space: &dyn SearchSpace,
    value: serde_json::Value,
) -> Result<T, OptimError> {
    let err = |message: String| OptimError::Snapshot { optimizer: kind.to_string(), message };
    let env: Envelope<T> = serde_json::from_value(value).map_err(|e| err(format!("malformed snapshot: {e}")))?;
    if env.kind != kind {
        return Err(err(format!("snapshot is of optimiser {:?}", env.kind)));
    }
    if env.space != space.name() || env.genes != space.genes().len() {
        return Err(err(format!(
            "snapshot is of space {:?} ({} genes), this optimiser searches {:?} ({} genes)",
            env.space,
            env.genes,
            space.name(),
            space.genes().len()
        )));
    }
    Ok(env.state)
}

/// Trial bookkeeping shared by the built-in optimisers and usable by custom ones:
/// ids, pending proposals, told trials, typed errors for unknown ids and double tells,
/// and the set of genomes already proposed (to avoid wasting evaluations).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    next_id: u64,
    pending: BTreeMap<TrialId, Genome>,
    trials: Vec<Trial>,
    told: BTreeMap<TrialId, usize>,
    seen: BTreeSet<Genome>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id the next [`issue`](Ledger::issue) will use.
    pub fn next_id(&self) -> TrialId {
        TrialId(self.next_id)
    }

    /// Records a proposal and gives it the next id.
    pub fn issue(&mut self, genome: Genome) -> Proposal {
        let id = TrialId(self.next_id);
        self.next_id += 1;
        self.seen.insert(genome.clone());
        self.pending.insert(id, genome.clone());
        Proposal { id, genome }
    }

    /// Records an outcome and returns the told trial.
    ///
    /// # Errors
    /// [`OptimError::AlreadyTold`] or [`OptimError::UnknownTrial`].
    pub fn settle(&mut self, id: TrialId, outcome: Outcome) -> Result<&Trial, OptimError> {
        self.check_pending(id)?;
        let genome = self.pending.remove(&id).ok_or(OptimError::UnknownTrial { id, next: self.next_id() })?;
        self.told.insert(id, self.trials.len());
        self.trials.push(Trial { id, genome, outcome });
        Ok(&self.trials[self.trials.len() - 1])
    }

    /// Checks that `id` may be told now (without recording anything).
    ///
    /// # Errors
    /// [`OptimError::AlreadyTold`] or [`OptimError::UnknownTrial`].
    pub fn check_pending(&self, id: TrialId) -> Result<&Genome, OptimError> {
        if self.told.contains_key(&id) {
            return Err(OptimError::AlreadyTold { id });
        }
        self.pending.get(&id).ok_or(OptimError::UnknownTrial { id, next: self.next_id() })
    }

    /// Whether the genome was ever proposed.
    pub fn seen(&self, g: &Genome) -> bool {
        self.seen.contains(g)
    }

    /// Number of distinct genomes ever proposed.
    pub fn distinct(&self) -> usize {
        self.seen.len()
    }

    /// Told trials in telling order.
    pub fn trials(&self) -> &[Trial] {
        &self.trials
    }

    /// Proposals not told yet.
    pub fn pending(&self) -> &BTreeMap<TrialId, Genome> {
        &self.pending
    }
}

/// One recorded ask or tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// `ask(n)` and what it returned.
    Ask {
        /// The batch size.
        n: usize,
        /// The proposals returned.
        proposals: Vec<Proposal>,
    },
    /// `tell(id, outcome)`.
    Tell {
        /// The trial.
        id: TrialId,
        /// Its outcome.
        outcome: Outcome,
    },
}

/// The calls made on an optimiser, for resuming a search by [`replay`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// The events in call order.
    pub events: Vec<Event>,
}

impl Journal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `opt.ask(n)` and records it.
    ///
    /// # Errors
    /// Whatever `ask` returns.
    pub fn ask(&mut self, opt: &mut dyn Optimizer, n: usize) -> Result<Vec<Proposal>, OptimError> {
        let proposals = opt.ask(n)?;
        self.events.push(Event::Ask { n, proposals: proposals.clone() });
        Ok(proposals)
    }

    /// The outcome told for each trial, in tell order.
    pub fn told(&self) -> BTreeMap<TrialId, Outcome> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Tell { id, outcome } => Some((*id, outcome.clone())),
                Event::Ask { .. } => None,
            })
            .collect()
    }

    /// Proposals asked for and never told: what a resumed search must evaluate first.
    pub fn untold(&self) -> Vec<Proposal> {
        let told = self.told();
        self.events
            .iter()
            .flat_map(|e| match e {
                Event::Ask { proposals, .. } => proposals.as_slice(),
                Event::Tell { .. } => &[],
            })
            .filter(|p| !told.contains_key(&p.id))
            .cloned()
            .collect()
    }

    /// Calls `opt.tell(id, outcome)` and records it when it succeeds.
    ///
    /// # Errors
    /// Whatever `tell` returns.
    pub fn tell(&mut self, opt: &mut dyn Optimizer, id: TrialId, outcome: Outcome) -> Result<(), OptimError> {
        opt.tell(id, outcome.clone())?;
        self.events.push(Event::Tell { id, outcome });
        Ok(())
    }
}

/// Rebuilds an optimiser's state by re-playing a journal on a fresh optimiser built
/// with the same seed and settings; checks that every ask returns what was recorded.
///
/// # Errors
/// [`OptimError::ReplayMismatch`] when a replayed ask differs; any ask/tell error.
pub fn replay(opt: &mut dyn Optimizer, journal: &Journal) -> Result<(), OptimError> {
    for (i, e) in journal.events.iter().enumerate() {
        match e {
            Event::Ask { n, proposals } => {
                let got = opt.ask(*n)?;
                if &got != proposals {
                    return Err(OptimError::ReplayMismatch {
                        event: i,
                        message: format!(
                            "ask({n}) returned {:?}, the journal has {:?}",
                            got.iter().map(|p| (p.id.0, p.genome.to_string())).collect::<Vec<_>>(),
                            proposals.iter().map(|p| (p.id.0, p.genome.to_string())).collect::<Vec<_>>()
                        ),
                    });
                }
            }
            Event::Tell { id, outcome } => opt.tell(*id, outcome.clone())?,
        }
    }
    Ok(())
}

/// Serde for [`ChaCha8Rng`] as seed, stream and word position, so a restored RNG
/// continues exactly.
pub(crate) mod rng_serde {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct RngState {
        seed: Vec<u8>,
        stream: u64,
        word_pos_hi: u64,
        word_pos_lo: u64,
    }

    pub(crate) fn serialize<S: serde::Serializer>(rng: &ChaCha8Rng, s: S) -> Result<S::Ok, S::Error> {
        let pos = rng.get_word_pos();
        RngState {
            seed: rng.get_seed().to_vec(),
            stream: rng.get_stream(),
            word_pos_hi: (pos >> 64) as u64,
            word_pos_lo: pos as u64,
        }
        .serialize(s)
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ChaCha8Rng, D::Error> {
        let st = RngState::deserialize(d)?;
        let seed: [u8; 32] = st
            .seed
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::custom(format!("rng seed has {} bytes, expected 32", st.seed.len())))?;
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(st.stream);
        rng.set_word_pos((u128::from(st.word_pos_hi) << 64) | u128::from(st.word_pos_lo));
        Ok(rng)
    }
}

/// The trials that make up one generation of a generational optimiser: the first
/// `target` proposals issued after it starts; it ends when all of them are told.
/// Proposals beyond the target (for parallel evaluation) do not hold it up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Generation {
    members: BTreeSet<TrialId>,
    target: usize,
    issued: usize,
}

impl Generation {
    /// A generation of `target` trials, none issued yet.
    pub(crate) fn new(target: usize) -> Self {
        Self { members: BTreeSet::new(), target, issued: 0 }
    }

    /// Trial `id` was issued: a member while the generation is not yet full.
    pub(crate) fn issued(&mut self, id: TrialId) {
        if self.issued < self.target {
            self.members.insert(id);
            self.issued += 1;
        }
    }

    /// Trial `id` was told; whether that ended the generation.
    pub(crate) fn told(&mut self, id: TrialId) -> bool {
        self.members.remove(&id);
        self.members.is_empty() && self.issued >= self.target
    }
}

/// The seeded RNG used by the built-in optimisers.
pub(crate) fn rng_from(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}
