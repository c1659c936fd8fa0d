//! Evolutionary strategies with one scalar fitness: the paper's GA and aging evolution.

use std::collections::VecDeque;

use danas_space::{Genome, GroupWeights};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::optimizer::{Generation, rng_from, rng_serde};
use crate::{AskContext, AskTell, Fitness, OptimError, Outcome, Proposer, Scalarization, SeededProposer, TrialId};

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
pub type PaperGa = AskTell<PaperGaProposer>;

/// The proposal step of [`PaperGa`]: its settings and generations.
#[derive(Clone, Serialize, Deserialize)]
pub struct PaperGaProposer {
    cfg: PaperGaConfig,
    #[serde(with = "rng_serde")]
    rng: ChaCha8Rng,
    generation: u64,
    population: Vec<Member>,
    winners: Vec<Member>,
    /// Operators still to apply this generation: true = crossover.
    plan: VecDeque<bool>,
    /// The trials that make up the current generation; it ends when all are told.
    core: Generation,
    results: Vec<Member>,
}

impl PaperGa {
    /// The current population (evaluated members).
    pub fn population(&self) -> &[Member] {
        &self.proposer().population
    }

    /// Completed generations.
    pub fn generation(&self) -> u64 {
        self.proposer().generation
    }
}

impl SeededProposer for PaperGaProposer {
    type Config = PaperGaConfig;

    fn validate(cfg: &PaperGaConfig) -> Result<(), OptimError> {
        cfg.validate()
    }

    fn seeded(cfg: PaperGaConfig, seed: u64) -> Self {
        let population = cfg.population;
        Self {
            cfg,
            rng: rng_from(seed),
            generation: 0,
            population: Vec::new(),
            winners: Vec::new(),
            plan: VecDeque::new(),
            core: Generation::new(population),
            results: Vec::new(),
        }
    }
}

impl PaperGaProposer {
    fn advance(&mut self) {
        let cap = self.cfg.population;
        let mut pool = std::mem::take(&mut self.results);
        if self.winners.is_empty() {
            pool.append(&mut self.population);
        } else {
            sort_best_first(&mut pool);
            pool.truncate(cap.saturating_sub(self.winners.len()));
            let mut next = std::mem::take(&mut self.winners);
            next.append(&mut pool);
            pool = next;
            self.generation += 1;
        }
        sort_best_first(&mut pool);
        pool.truncate(cap);
        self.population = pool;
        self.plan.clear();
        if self.population.len() < cap {
            // still building the initial population
            self.core = Generation::new(cap - self.population.len());
            return;
        }
        // selection: shuffled population in `tournaments` groups, the best of each survives
        let mut order: Vec<usize> = (0..self.population.len()).collect();
        order.shuffle(&mut self.rng);
        let t = self.cfg.tournaments;
        let mut winners = Vec::with_capacity(t);
        for k in 0..t {
            let group: Vec<Member> = order[k * order.len() / t..(k + 1) * order.len() / t]
                .iter()
                .map(|&i| self.population[i].clone())
                .collect();
            if let Some(b) = best_index(&group) {
                winners.push(group[b].clone());
            }
        }
        self.winners = winners;
        self.plan = std::iter::repeat_n(false, self.cfg.mutations)
            .chain(std::iter::repeat_n(true, self.cfg.crossovers))
            .collect();
        self.core = Generation::new(self.plan.len());
    }
}

impl Proposer for PaperGaProposer {
    fn name(&self) -> &str {
        "paper-ga"
    }

    fn propose(&mut self, cx: &AskContext<'_>) -> Genome {
        let space = cx.space();
        let rng = &mut self.rng;
        if self.winners.is_empty() {
            return cx.pick(TRIES, || space.sample(rng));
        }
        let crossover = self.plan.pop_front().unwrap_or(false);
        let winners = &self.winners;
        let weights = self.cfg.weights;
        cx.pick(TRIES, || {
            let i = rng.random_range(0..winners.len());
            let a = &winners[i];
            if crossover && winners.len() > 1 {
                let mut j = rng.random_range(0..winners.len() - 1);
                if j >= i {
                    j += 1;
                }
                let child = space.crossover(&a.genome, &winners[j].genome, rng);
                // near-identical parents can only give back a known genome: mutate it then
                if cx.is_new(&child) { child } else { space.mutate_weighted(&child, rng, &weights) }
            } else {
                space.mutate_weighted(&a.genome, rng, &weights)
            }
        })
    }

    fn issued(&mut self, id: TrialId) {
        self.core.issued(id);
    }

    fn told(&mut self, id: TrialId, genome: &Genome, outcome: &Outcome) -> Result<(), OptimError> {
        if let Some(fitness) = self.cfg.scalarization.outcome_fitness(outcome)? {
            self.results.push(Member { genome: genome.clone(), fitness });
        }
        if self.core.told(id) {
            self.advance();
        }
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
pub type AgingEvolution = AskTell<AgingProposer>;

/// The proposal step of [`AgingEvolution`]: its settings and population.
#[derive(Clone, Serialize, Deserialize)]
pub struct AgingProposer {
    cfg: AgingConfig,
    #[serde(with = "rng_serde")]
    rng: ChaCha8Rng,
    population: VecDeque<Member>,
    random_issued: usize,
}

impl AgingEvolution {
    /// The current population, oldest first.
    pub fn population(&self) -> impl Iterator<Item = &Member> {
        self.proposer().population.iter()
    }
}

impl SeededProposer for AgingProposer {
    type Config = AgingConfig;

    fn validate(cfg: &AgingConfig) -> Result<(), OptimError> {
        cfg.validate()
    }

    fn seeded(cfg: AgingConfig, seed: u64) -> Self {
        Self { cfg, rng: rng_from(seed), population: VecDeque::new(), random_issued: 0 }
    }
}

impl Proposer for AgingProposer {
    fn name(&self) -> &str {
        "aging-evolution"
    }

    fn propose(&mut self, cx: &AskContext<'_>) -> Genome {
        let space = cx.space();
        let rng = &mut self.rng;
        if self.random_issued < self.cfg.population || self.population.is_empty() {
            self.random_issued += 1;
            return cx.pick(TRIES, || space.sample(rng));
        }
        let pop = &self.population;
        let k = self.cfg.sample_size.min(pop.len());
        let weights = self.cfg.weights;
        cx.pick(TRIES, || {
            let sample: Vec<Member> =
                rand::seq::index::sample(rng, pop.len(), k).into_iter().map(|i| pop[i].clone()).collect();
            let parent = best_index(&sample).map_or(&pop[0], |b| &sample[b]).genome.clone();
            space.mutate_weighted(&parent, rng, &weights)
        })
    }

    fn told(&mut self, _id: TrialId, genome: &Genome, outcome: &Outcome) -> Result<(), OptimError> {
        if let Some(fitness) = self.cfg.scalarization.outcome_fitness(outcome)? {
            self.population.push_back(Member { genome: genome.clone(), fitness });
            while self.population.len() > self.cfg.population {
                self.population.pop_front();
            }
        }
        Ok(())
    }
}
