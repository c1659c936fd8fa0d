//! Evolutionary strategies with one scalar fitness: the paper's GA and aging evolution.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use danas_space::{Genome, GroupWeights, SearchSpace};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::optimizer::{propose_with, rng_from, rng_serde};
use crate::{
    Fitness, Ledger, OptimError, Optimizer, Oracle, Outcome, Proposal, Scalarization, TrialId, ensure_nonempty,
};

/// Draws per proposal when looking for a new, feasible genome.
const TRIES: usize = 64;

/// An evaluated individual.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Its genome.
    pub genome: Genome,
    /// Its fitness.
    pub fitness: Fitness,
}

fn best_index(members: &[Member]) -> Option<usize> {
    (0..members.len()).max_by(|&a, &b| members[a].fitness.compare(&members[b].fitness).then(b.cmp(&a)))
}

fn sort_best_first(v: &mut [Member]) {
    v.sort_by(|a, b| b.fitness.compare(&a.fitness));
}

/// Settings of [`PaperGa`]; the defaults are the paper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperGaConfig {
    /// Population size (paper: 10).
    pub population: usize,
    /// Tournaments per generation over the shuffled population; each winner survives (paper: 5).
    pub tournaments: usize,
    /// Mutated children per generation (paper: 4).
    pub mutations: usize,
    /// Crossover children per generation (paper: 1).
    pub crossovers: usize,
    /// Which gene groups mutation picks (paper: data 40 %, depth 40 %, width 20 %).
    pub weights: GroupWeights,
    /// Fitness (paper: the soft-penalty sum).
    pub scalarization: Scalarization,
}

impl Default for PaperGaConfig {
    fn default() -> Self {
        Self {
            population: 10,
            tournaments: 5,
            mutations: 4,
            crossovers: 1,
            weights: GroupWeights::PAPER,
            scalarization: Scalarization::paper(),
        }
    }
}

impl PaperGaConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`OptimError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), OptimError> {
        if self.population < 2 {
            return Err(OptimError::config("population", self.population, "must be at least 2"));
        }
        if self.tournaments == 0 || self.tournaments > self.population {
            return Err(OptimError::config("tournaments", self.tournaments, "must be between 1 and population"));
        }
        if self.mutations + self.crossovers == 0 {
            return Err(OptimError::config("mutations", self.mutations, "mutations + crossovers must be > 0"));
        }
        self.scalarization.validate()
    }
}

/// The genetic algorithm of Njor et al.: a random initial population of 10; each
/// generation shuffles the population into 5 tournaments of ≈2, keeps the winners,
/// and breeds 4 mutants (one gene, group-weighted data 40 / depth 40 / width 20,
/// neighbour step) and 1 uniform crossover (repaired, unlike the original) from
/// them; the next population is winners + children. When two near-identical
/// winners can only give back a known genome, the crossover child is also mutated.
///
/// Asking more than a generation's children (for parallel evaluation) breeds extra
/// mutants from the same winners; the next population then keeps the best children.
/// Children are kept new (not proposed before) and, with an oracle, feasible, when
/// possible within 64 draws.
pub struct PaperGa {
    space: Arc<dyn SearchSpace>,
    oracle: Option<Oracle>,
    cfg: PaperGaConfig,
    st: GaState,
}

#[derive(Clone, Serialize, Deserialize)]
struct GaState {
    ledger: Ledger,
    #[serde(with = "rng_serde")]
    rng: ChaCha8Rng,
    generation: u64,
    population: Vec<Member>,
    winners: Vec<Member>,
    /// Operators still to apply this generation: true = crossover.
    plan: VecDeque<bool>,
    /// The trials that make up the current generation; it ends when all are told.
    core: BTreeSet<TrialId>,
    core_target: usize,
    core_issued: usize,
    results: Vec<Member>,
}

impl PaperGa {
    /// The paper's GA (defaults of [`PaperGaConfig`]).
    pub fn new(space: Arc<dyn SearchSpace>, seed: u64) -> Self {
        match Self::with_config(space.clone(), PaperGaConfig::default(), seed) {
            Ok(s) => s,
            // The default configuration is valid (checked by tests).
            Err(_) => Self { space, oracle: None, cfg: PaperGaConfig::default(), st: GaState::new(seed, 10) },
        }
    }

    /// A GA with checked settings.
    ///
    /// # Errors
    /// [`OptimError::InvalidConfig`] when the settings are invalid.
    pub fn with_config(space: Arc<dyn SearchSpace>, cfg: PaperGaConfig, seed: u64) -> Result<Self, OptimError> {
        cfg.validate()?;
        let st = GaState::new(seed, cfg.population);
        Ok(Self { space, oracle: None, cfg, st })
    }

    /// Avoids proposing candidates the oracle calls infeasible.
    pub fn with_oracle(mut self, oracle: Oracle) -> Self {
        self.oracle = Some(oracle);
        self
    }

    /// The current population (evaluated members).
    pub fn population(&self) -> &[Member] {
        &self.st.population
    }

    /// Completed generations.
    pub fn generation(&self) -> u64 {
        self.st.generation
    }

    /// The trial ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.st.ledger
    }

    fn initialising(&self) -> bool {
        self.st.winners.is_empty()
    }

    fn advance(&mut self) {
        let st = &mut self.st;
        let cap = self.cfg.population;
        let mut pool = std::mem::take(&mut st.results);
        if st.winners.is_empty() {
            pool.append(&mut st.population);
        } else {
            sort_best_first(&mut pool);
            pool.truncate(cap.saturating_sub(st.winners.len()));
            let mut next = std::mem::take(&mut st.winners);
            next.append(&mut pool);
            pool = next;
            st.generation += 1;
        }
        sort_best_first(&mut pool);
        pool.truncate(cap);
        st.population = pool;
        st.core.clear();
        st.core_issued = 0;
        st.plan.clear();
        if st.population.len() < cap {
            // still building the initial population
            st.core_target = cap - st.population.len();
            return;
        }
        // selection: shuffled population in `tournaments` groups, the best of each survives
        let mut order: Vec<usize> = (0..st.population.len()).collect();
        order.shuffle(&mut st.rng);
        let t = self.cfg.tournaments;
        let mut winners = Vec::with_capacity(t);
        for k in 0..t {
            let group: Vec<Member> = order[k * order.len() / t..(k + 1) * order.len() / t]
                .iter()
                .map(|&i| st.population[i].clone())
                .collect();
            if let Some(b) = best_index(&group) {
                winners.push(group[b].clone());
            }
        }
        st.winners = winners;
        st.plan = std::iter::repeat_n(false, self.cfg.mutations)
            .chain(std::iter::repeat_n(true, self.cfg.crossovers))
            .collect();
        st.core_target = st.plan.len();
    }

    fn breed(&mut self, crossover: bool, batch: &BTreeSet<Genome>) -> Genome {
        let st = &mut self.st;
        let space = &self.space;
        let winners = &st.winners;
        let weights = self.cfg.weights;
        let rng = &mut st.rng;
        let ledger = &st.ledger;
        propose_with(ledger, self.oracle.as_ref(), TRIES, batch, || {
            let i = rng.random_range(0..winners.len());
            let a = &winners[i];
            if crossover && winners.len() > 1 {
                let mut j = rng.random_range(0..winners.len() - 1);
                if j >= i {
                    j += 1;
                }
                let child = space.crossover(&a.genome, &winners[j].genome, rng);
                // near-identical parents can only give back a known genome: mutate it then
                if ledger.seen(&child) || batch.contains(&child) {
                    space.mutate_weighted(&child, rng, &weights)
                } else {
                    child
                }
            } else {
                space.mutate_weighted(&a.genome, rng, &weights)
            }
        })
    }
}

impl GaState {
    fn new(seed: u64, population: usize) -> Self {
        Self {
            ledger: Ledger::new(),
            rng: rng_from(seed),
            generation: 0,
            population: Vec::new(),
            winners: Vec::new(),
            plan: VecDeque::new(),
            core: BTreeSet::new(),
            core_target: population,
            core_issued: 0,
            results: Vec::new(),
        }
    }
}

impl Optimizer for PaperGa {
    fn name(&self) -> &str {
        "paper-ga"
    }

    fn space(&self) -> &dyn SearchSpace {
        self.space.as_ref()
    }

    fn ask(&mut self, n: usize) -> Result<Vec<Proposal>, OptimError> {
        ensure_nonempty(self.space.as_ref())?;
        let mut batch = BTreeSet::new();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let g = if self.initialising() {
                let st = &mut self.st;
                let space = &self.space;
                propose_with(&st.ledger, self.oracle.as_ref(), TRIES, &batch, || space.sample(&mut st.rng))
            } else {
                let crossover = self.st.plan.pop_front().unwrap_or(false);
                self.breed(crossover, &batch)
            };
            batch.insert(g.clone());
            let p = self.st.ledger.issue(g);
            if self.st.core_issued < self.st.core_target {
                self.st.core.insert(p.id);
                self.st.core_issued += 1;
            }
            out.push(p);
        }
        Ok(out)
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), OptimError> {
        self.st.ledger.check_pending(id)?;
        let fit = self.cfg.scalarization.outcome_fitness(&outcome)?;
        let genome = self.st.ledger.settle(id, outcome)?.genome.clone();
        if let Some(fitness) = fit {
            self.st.results.push(Member { genome, fitness });
        }
        self.st.core.remove(&id);
        if self.st.core.is_empty() && self.st.core_issued >= self.st.core_target {
            self.advance();
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<serde_json::Value, OptimError> {
        crate::snapshot_of("paper-ga", self.space.as_ref(), &(&self.cfg, &self.st))
    }

    fn restore(&mut self, snapshot: serde_json::Value) -> Result<(), OptimError> {
        (self.cfg, self.st) = crate::restore_from("paper-ga", self.space.as_ref(), snapshot)?;
        Ok(())
    }
}

/// Settings of [`AgingEvolution`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgingConfig {
    /// Population size (oldest member dies when a child is added).
    pub population: usize,
    /// Tournament sample size.
    pub sample_size: usize,
    /// Mutation gene-group weights.
    pub weights: GroupWeights,
    /// Fitness.
    pub scalarization: Scalarization,
}

impl Default for AgingConfig {
    fn default() -> Self {
        Self {
            population: 20,
            sample_size: 5,
            weights: GroupWeights::PAPER,
            scalarization: Scalarization::constrained_paper(),
        }
    }
}

impl AgingConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`OptimError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), OptimError> {
        if self.population < 2 {
            return Err(OptimError::config("population", self.population, "must be at least 2"));
        }
        if self.sample_size == 0 || self.sample_size > self.population {
            return Err(OptimError::config("sample_size", self.sample_size, "must be between 1 and population"));
        }
        self.scalarization.validate()
    }
}

/// Regularized (aging) evolution, Real et al. 2019: a random initial population;
/// then each proposal mutates the best of `sample_size` members drawn at random,
/// and each told child replaces the oldest member.
pub struct AgingEvolution {
    space: Arc<dyn SearchSpace>,
    oracle: Option<Oracle>,
    cfg: AgingConfig,
    st: AgingState,
}

#[derive(Clone, Serialize, Deserialize)]
struct AgingState {
    ledger: Ledger,
    #[serde(with = "rng_serde")]
    rng: ChaCha8Rng,
    population: VecDeque<Member>,
    random_issued: usize,
}

impl AgingEvolution {
    /// Aging evolution with default settings (population 20, sample 5).
    pub fn new(space: Arc<dyn SearchSpace>, seed: u64) -> Self {
        let cfg = AgingConfig::default();
        Self { space, oracle: None, cfg, st: AgingState::new(seed) }
    }

    /// With checked settings.
    ///
    /// # Errors
    /// [`OptimError::InvalidConfig`] when the settings are invalid.
    pub fn with_config(space: Arc<dyn SearchSpace>, cfg: AgingConfig, seed: u64) -> Result<Self, OptimError> {
        cfg.validate()?;
        Ok(Self { space, oracle: None, cfg, st: AgingState::new(seed) })
    }

    /// Avoids proposing candidates the oracle calls infeasible.
    pub fn with_oracle(mut self, oracle: Oracle) -> Self {
        self.oracle = Some(oracle);
        self
    }

    /// The current population, oldest first.
    pub fn population(&self) -> impl Iterator<Item = &Member> {
        self.st.population.iter()
    }
}

impl AgingState {
    fn new(seed: u64) -> Self {
        Self { ledger: Ledger::new(), rng: rng_from(seed), population: VecDeque::new(), random_issued: 0 }
    }
}

impl Optimizer for AgingEvolution {
    fn name(&self) -> &str {
        "aging-evolution"
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
            let oracle = self.oracle.as_ref();
            let g = if st.random_issued < self.cfg.population || st.population.is_empty() {
                st.random_issued += 1;
                propose_with(&st.ledger, oracle, TRIES, &batch, || space.sample(&mut st.rng))
            } else {
                let pop = &st.population;
                let rng = &mut st.rng;
                let k = self.cfg.sample_size.min(pop.len());
                let weights = self.cfg.weights;
                propose_with(&st.ledger, oracle, TRIES, &batch, || {
                    let sample: Vec<Member> =
                        rand::seq::index::sample(rng, pop.len(), k).into_iter().map(|i| pop[i].clone()).collect();
                    let parent = best_index(&sample).map_or(&pop[0], |b| &sample[b]).genome.clone();
                    space.mutate_weighted(&parent, rng, &weights)
                })
            };
            batch.insert(g.clone());
            out.push(st.ledger.issue(g));
        }
        Ok(out)
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), OptimError> {
        self.st.ledger.check_pending(id)?;
        let fit = self.cfg.scalarization.outcome_fitness(&outcome)?;
        let genome = self.st.ledger.settle(id, outcome)?.genome.clone();
        if let Some(fitness) = fit {
            self.st.population.push_back(Member { genome, fitness });
            while self.st.population.len() > self.cfg.population {
                self.st.population.pop_front();
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<serde_json::Value, OptimError> {
        crate::snapshot_of("aging-evolution", self.space.as_ref(), &(&self.cfg, &self.st))
    }

    fn restore(&mut self, snapshot: serde_json::Value) -> Result<(), OptimError> {
        (self.cfg, self.st) = crate::restore_from("aging-evolution", self.space.as_ref(), snapshot)?;
        Ok(())
    }
}
