//! NSGA-II: non-dominated sorting, crowding distance, constraint domination.

use danas_space::{Genome, GroupWeights};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::optimizer::{Generation, rng_from, rng_serde};
use crate::pareto::{crowding_distance, ranks};
use crate::{
    AskContext, AskTell, Limits, Objective, OptimError, Outcome, Proposer, SeededProposer, TrialId, total_violation,
};

/// Draws per proposal when looking for a new, feasible genome (and parent pairs drawn).
const TRIES: usize = 64;

/// Stand-in loss of an objective that is unknown (infeasible trial).
const UNKNOWN: f64 = 1e30;

/// Settings of [`Nsga2`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nsga2Config {
    /// The objectives (default: maximise accuracy, minimise RAM and flash).
    pub objectives: Vec<Objective>,
    /// Hard limits checked on told metrics (default: the paper's 512 KiB / 2 MiB).
    pub limits: Option<Limits>,
    /// Population size (default 20).
    pub population: usize,
    /// Probability that a child is a crossover of two parents before mutation (default 0.9).
    pub crossover_prob: f64,
    /// Mutation gene-group weights.
    pub weights: GroupWeights,
    /// Each child gets between 1 and this many single-gene mutations (default 1).
    pub max_mutations: usize,
    /// Children per generation before the next (μ + λ) selection; `None` (default):
    /// `population`, the classic generational NSGA-II; `Some(1)`: steady state.
    pub offspring: Option<usize>,
}

impl Default for Nsga2Config {
    fn default() -> Self {
        Self {
            objectives: Objective::accuracy_ram_flash(),
            limits: Some(Limits::paper()),
            population: 20,
            crossover_prob: 0.9,
            weights: GroupWeights::PAPER,
            max_mutations: 1,
            offspring: None,
        }
    }
}

impl Nsga2Config {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`OptimError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), OptimError> {
        if self.objectives.is_empty() {
            return Err(OptimError::config("objectives", "[]", "needs at least one objective"));
        }
        if self.population < 2 {
            return Err(OptimError::config("population", self.population, "must be at least 2"));
        }
        if !(0.0..=1.0).contains(&self.crossover_prob) {
            return Err(OptimError::config("crossover_prob", self.crossover_prob, "must be in [0, 1]"));
        }
        if self.offspring == Some(0) {
            return Err(OptimError::config("offspring", 0, "must be at least 1"));
        }
        if self.max_mutations == 0 {
            return Err(OptimError::config("max_mutations", 0, "must be at least 1"));
        }
        if let Some(l) = &self.limits
            && (l.ram_bytes == 0 || l.flash_bytes == 0 || l.latency_ms.is_some_and(|v| !(v.is_finite() && v > 0.0)))
        {
            return Err(OptimError::config("limits", format!("{l:?}"), "every limit must be > 0"));
        }
        Ok(())
    }
}

/// A member of a multi-objective population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoMember {
    /// Its genome.
    pub genome: Genome,
    /// Objective losses (minimised; maximised objectives negated).
    pub losses: Vec<f64>,
    /// Total relative constraint violation (0 = feasible).
    pub violation: f64,
}

/// NSGA-II (Deb et al. 2002) with constraint domination: a random initial
/// population; each generation breeds `population` children by binary tournaments
/// on (rank, crowding), uniform crossover (repaired) and one mutation, and keeps
/// the best `population` of parents ∪ children by non-dominated sorting and
/// crowding distance. Failed trials are dropped; infeasible ones rank behind all
/// feasible ones by violation.
pub type Nsga2 = AskTell<Nsga2Proposer>;

/// The proposal step of [`Nsga2`]: its settings and generations.
#[derive(Clone, Serialize, Deserialize)]
pub struct Nsga2Proposer {
    cfg: Nsga2Config,
    #[serde(with = "rng_serde")]
    rng: ChaCha8Rng,
    generation: u64,
    population: Vec<MoMember>,
    rank: Vec<usize>,
    crowd: Vec<f64>,
    core: Generation,
    results: Vec<MoMember>,
}

impl Nsga2 {
    /// The current parent population.
    pub fn population(&self) -> &[MoMember] {
        &self.proposer().population
    }
}

impl SeededProposer for Nsga2Proposer {
    type Config = Nsga2Config;

    fn validate(cfg: &Nsga2Config) -> Result<(), OptimError> {
        cfg.validate()
    }

    fn seeded(cfg: Nsga2Config, seed: u64) -> Self {
        let population = cfg.population;
        Self {
            cfg,
            rng: rng_from(seed),
            generation: 0,
            population: Vec::new(),
            rank: Vec::new(),
            crowd: Vec::new(),
            core: Generation::new(population),
            results: Vec::new(),
        }
    }
}

impl Nsga2Proposer {
    fn member(&self, genome: Genome, outcome: &Outcome) -> Result<Option<MoMember>, OptimError> {
        match outcome {
            Outcome::Complete(m) => {
                let losses = self.cfg.objectives.iter().map(|o| o.loss(m)).collect::<Result<Vec<_>, _>>()?;
                let violation = match &self.cfg.limits {
                    Some(l) => total_violation(l.check_metrics(m)?.violations()),
                    None => 0.0,
                };
                Ok(Some(MoMember { genome, losses, violation }))
            }
            Outcome::Infeasible(v) => Ok(Some(MoMember {
                genome,
                losses: vec![UNKNOWN; self.cfg.objectives.len()],
                violation: total_violation(v).max(1e-9),
            })),
            Outcome::Failed(_) => Ok(None),
        }
    }

    fn advance(&mut self) {
        let n = self.cfg.population;
        let had_parents = self.population.len() >= n;
        let mut pool = std::mem::take(&mut self.population);
        pool.append(&mut self.results);
        let (sel, rank, crowd) = select(&pool, n);
        self.population = sel.iter().map(|&i| pool[i].clone()).collect();
        self.rank = rank;
        self.crowd = crowd;
        if had_parents {
            self.generation += 1;
        }
        self.core = Generation::new(if self.population.len() < n {
            n - self.population.len()
        } else {
            self.cfg.offspring.unwrap_or(n)
        });
    }

    fn tournament(&mut self) -> usize {
        let len = self.population.len();
        let a = self.rng.random_range(0..len);
        let b = self.rng.random_range(0..len);
        let better = |x: usize, y: usize| {
            self.rank[x] < self.rank[y] || (self.rank[x] == self.rank[y] && self.crowd[x] > self.crowd[y])
        };
        if better(b, a) { b } else { a }
    }
}

/// Picks `n` of `pool` by (rank, crowding); returns the chosen indices and their
/// rank and crowding distance within the chosen set.
fn select(pool: &[MoMember], n: usize) -> (Vec<usize>, Vec<usize>, Vec<f64>) {
    let pts: Vec<Vec<f64>> = pool.iter().map(|m| m.losses.clone()).collect();
    let viol: Vec<f64> = pool.iter().map(|m| m.violation).collect();
    let rank = ranks(&pts, Some(&viol));
    let max_rank = rank.iter().copied().max().unwrap_or(0);
    let mut chosen: Vec<usize> = Vec::new();
    let mut chosen_rank = Vec::new();
    let mut chosen_crowd = Vec::new();
    for r in 0..=max_rank {
        if chosen.len() >= n {
            break;
        }
        let front: Vec<usize> = (0..pool.len()).filter(|&i| rank[i] == r).collect();
        let fpts: Vec<Vec<f64>> = front.iter().map(|&i| pts[i].clone()).collect();
        let cd = crowding_distance(&fpts);
        let mut order: Vec<usize> = (0..front.len()).collect();
        // infeasible fronts: least violation first; feasible: largest crowding first
        order.sort_by(|&a, &b| {
            viol[front[a]].total_cmp(&viol[front[b]]).then(cd[b].total_cmp(&cd[a])).then(front[a].cmp(&front[b]))
        });
        for k in order {
            if chosen.len() >= n {
                break;
            }
            chosen.push(front[k]);
            chosen_rank.push(r);
            // finite, so that the state stays JSON-serialisable
            chosen_crowd.push(cd[k].min(f64::MAX));
        }
    }
    (chosen, chosen_rank, chosen_crowd)
}

impl Proposer for Nsga2Proposer {
    fn name(&self) -> &str {
        "nsga2"
    }

    fn propose(&mut self, cx: &AskContext<'_>) -> Genome {
        let space = cx.space();
        if self.population.len() < self.cfg.population || self.population.len() < 2 {
            let rng = &mut self.rng;
            return cx.pick(TRIES, || space.sample(rng));
        }
        let cx_prob = self.cfg.crossover_prob;
        let weights = self.cfg.weights;
        let max_mut = self.cfg.max_mutations.max(1);
        let mut parents = Vec::new();
        for _ in 0..TRIES {
            let a = self.tournament();
            let b = self.tournament();
            parents.push((a, b, self.rng.random_bool(cx_prob)));
        }
        let mut k = 0;
        let pop = &self.population;
        let rng = &mut self.rng;
        cx.pick(TRIES, || {
            let (a, b, do_cx) = parents[k % parents.len()];
            k += 1;
            let base = if do_cx { space.crossover(&pop[a].genome, &pop[b].genome, rng) } else { pop[a].genome.clone() };
            let times = rng.random_range(1..=max_mut);
            let mut g = base;
            for _ in 0..times {
                g = space.mutate_weighted(&g, rng, &weights);
            }
            g
        })
    }

    fn issued(&mut self, id: TrialId) {
        self.core.issued(id);
    }

    fn told(&mut self, id: TrialId, genome: &Genome, outcome: &Outcome) -> Result<(), OptimError> {
        if let Some(m) = self.member(genome.clone(), outcome)? {
            self.results.push(m);
        }
        if self.core.told(id) {
            self.advance();
        }
        Ok(())
    }
}
