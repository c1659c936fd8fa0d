//! NSGA-II: non-dominated sorting, crowding distance, constraint domination.

use std::collections::BTreeSet;
use std::sync::Arc;

use danas_space::{Genome, GroupWeights, SearchSpace};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::optimizer::{propose_with, rng_from, rng_serde};
use crate::pareto::{crowding_distance, ranks};
use crate::{
    Ledger, Limits, Objective, OptimError, Optimizer, Oracle, Outcome, Proposal, TrialId, ensure_nonempty,
    total_violation,
};

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
pub struct Nsga2 {
    space: Arc<dyn SearchSpace>,
    oracle: Option<Oracle>,
    cfg: Nsga2Config,
    st: NsgaState,
}

#[derive(Clone, Serialize, Deserialize)]
struct NsgaState {
    ledger: Ledger,
    #[serde(with = "rng_serde")]
    rng: ChaCha8Rng,
    generation: u64,
    population: Vec<MoMember>,
    rank: Vec<usize>,
    crowd: Vec<f64>,
    core: BTreeSet<TrialId>,
    core_target: usize,
    core_issued: usize,
    results: Vec<MoMember>,
}

impl Nsga2 {
    /// NSGA-II with default settings.
    pub fn new(space: Arc<dyn SearchSpace>, seed: u64) -> Self {
        let cfg = Nsga2Config::default();
        let st = NsgaState::new(seed, cfg.population);
        Self { space, oracle: None, cfg, st }
    }

    /// With checked settings.
    ///
    /// # Errors
    /// [`OptimError::InvalidConfig`] when the settings are invalid.
    pub fn with_config(space: Arc<dyn SearchSpace>, cfg: Nsga2Config, seed: u64) -> Result<Self, OptimError> {
        cfg.validate()?;
        let st = NsgaState::new(seed, cfg.population);
        Ok(Self { space, oracle: None, cfg, st })
    }

    /// Avoids proposing candidates the oracle calls infeasible.
    pub fn with_oracle(mut self, oracle: Oracle) -> Self {
        self.oracle = Some(oracle);
        self
    }

    /// The current parent population.
    pub fn population(&self) -> &[MoMember] {
        &self.st.population
    }

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
        let st = &mut self.st;
        let n = self.cfg.population;
        let had_parents = st.population.len() >= n;
        let mut pool = std::mem::take(&mut st.population);
        pool.append(&mut st.results);
        let (sel, rank, crowd) = select(&pool, n);
        st.population = sel.iter().map(|&i| pool[i].clone()).collect();
        st.rank = rank;
        st.crowd = crowd;
        if had_parents {
            st.generation += 1;
        }
        st.core.clear();
        st.core_issued = 0;
        st.core_target =
            if st.population.len() < n { n - st.population.len() } else { self.cfg.offspring.unwrap_or(n) };
    }

    fn tournament(st: &mut NsgaState) -> usize {
        let len = st.population.len();
        let a = st.rng.random_range(0..len);
        let b = st.rng.random_range(0..len);
        let better =
            |x: usize, y: usize| st.rank[x] < st.rank[y] || (st.rank[x] == st.rank[y] && st.crowd[x] > st.crowd[y]);
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

impl NsgaState {
    fn new(seed: u64, population: usize) -> Self {
        Self {
            ledger: Ledger::new(),
            rng: rng_from(seed),
            generation: 0,
            population: Vec::new(),
            rank: Vec::new(),
            crowd: Vec::new(),
            core: BTreeSet::new(),
            core_target: population,
            core_issued: 0,
            results: Vec::new(),
        }
    }
}

impl Optimizer for Nsga2 {
    fn name(&self) -> &str {
        "nsga2"
    }

    fn space(&self) -> &dyn SearchSpace {
        self.space.as_ref()
    }

    fn ask(&mut self, n: usize) -> Result<Vec<Proposal>, OptimError> {
        ensure_nonempty(self.space.as_ref())?;
        let mut batch = BTreeSet::new();
        let mut out = Vec::with_capacity(n);
        let initialising = self.st.population.len() < self.cfg.population;
        for _ in 0..n {
            let space = &self.space;
            let oracle = self.oracle.as_ref();
            let st = &mut self.st;
            let g = if initialising || st.population.len() < 2 {
                let rng = &mut st.rng;
                propose_with(&st.ledger, oracle, 64, &batch, || space.sample(rng))
            } else {
                let cx = self.cfg.crossover_prob;
                let weights = self.cfg.weights;
                let max_mut = self.cfg.max_mutations.max(1);
                let mut parents = Vec::new();
                for _ in 0..64 {
                    let a = Self::tournament(st);
                    let b = Self::tournament(st);
                    parents.push((a, b, st.rng.random_bool(cx)));
                }
                let mut k = 0;
                let pop = &st.population;
                let rng = &mut st.rng;
                propose_with(&st.ledger, oracle, 64, &batch, || {
                    let (a, b, do_cx) = parents[k % parents.len()];
                    k += 1;
                    let base = if do_cx {
                        space.crossover(&pop[a].genome, &pop[b].genome, rng)
                    } else {
                        pop[a].genome.clone()
                    };
                    let times = rng.random_range(1..=max_mut);
                    let mut g = base;
                    for _ in 0..times {
                        g = space.mutate_weighted(&g, rng, &weights);
                    }
                    g
                })
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
        let genome = self.st.ledger.check_pending(id)?.clone();
        let member = self.member(genome, &outcome)?;
        self.st.ledger.settle(id, outcome)?;
        if let Some(m) = member {
            self.st.results.push(m);
        }
        self.st.core.remove(&id);
        if self.st.core.is_empty() && self.st.core_issued >= self.st.core_target {
            self.advance();
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<serde_json::Value, OptimError> {
        crate::snapshot_of("nsga2", self.space.as_ref(), &(&self.cfg, &self.st))
    }

    fn restore(&mut self, snapshot: serde_json::Value) -> Result<(), OptimError> {
        (self.cfg, self.st) = crate::restore_from("nsga2", self.space.as_ref(), snapshot)?;
        Ok(())
    }
}
