//! Bayesian optimisation with the small exact GP of [`crate::gp`].

use std::collections::BTreeSet;

use danas_space::{Genome, GroupWeights};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::gp::{Gp, GpHyper, default_grid, expected_improvement, norm_cdf};
use crate::optimizer::{rng_from, rng_serde};
use crate::{
    AskContext, AskTell, Limits, Objective, OptimError, Outcome, Proposer, Scalarization, SeededProposer, TrialId,
    total_violation,
};

/// What the Bayesian optimiser models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BayesMode {
    /// One scalar fitness; expected improvement of the best feasible score times the
    /// probability of feasibility (a second GP on the violation) once an infeasible
    /// trial has been seen.
    Scalar(Scalarization),
    /// Multi-objective (ParEGO, Knowles 2006): each ask draws random weights and
    /// models the augmented Chebyshev scalarisation of the normalised objectives;
    /// limits as in the scalar mode.
    ParEgo {
        /// The objectives.
        objectives: Vec<Objective>,
        /// Hard limits (none when `None`).
        limits: Option<Limits>,
    },
}

/// Settings of [`Bayesian`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BayesConfig {
    /// What to model (default: maximise accuracy under the paper's hard limits).
    pub mode: BayesMode,
    /// Random proposals before the GP is used (default 10).
    pub initial: usize,
    /// Random candidates scored by the acquisition per ask (default 256).
    pub random_candidates: usize,
    /// Best observed genomes whose mutants are also scored (default 8).
    pub local_parents: usize,
    /// Mutants per local parent (default 12).
    pub local_mutants: usize,
    /// Re-select the hyperparameters on the grid (by marginal likelihood on the 100
    /// most recent observations) at most every this many new observations once 40
    /// are in (default 20); in between the last ones are reused. The GP itself is
    /// refitted on all observations at every ask.
    pub refit_every: usize,
}

impl Default for BayesConfig {
    fn default() -> Self {
        Self {
            mode: BayesMode::Scalar(Scalarization::constrained_paper()),
            initial: 10,
            random_candidates: 256,
            local_parents: 8,
            local_mutants: 12,
            refit_every: 20,
        }
    }
}

impl BayesConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`OptimError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), OptimError> {
        if self.random_candidates + self.local_parents * self.local_mutants == 0 {
            return Err(OptimError::config("random_candidates", self.random_candidates, "no candidates to score"));
        }
        if self.refit_every == 0 {
            return Err(OptimError::config("refit_every", 0, "must be at least 1"));
        }
        match &self.mode {
            BayesMode::Scalar(s) => s.validate(),
            BayesMode::ParEgo { objectives, .. } if objectives.is_empty() => {
                Err(OptimError::config("mode.objectives", "[]", "needs at least one objective"))
            }
            BayesMode::ParEgo { .. } => Ok(()),
        }
    }
}

/// Hyperparameters are selected on at most this many (most recent) observations.
const HYPER_SUBSET: usize = 100;

/// An observation: encoding, objective losses or score, violation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Obs {
    genome: Genome,
    /// Scalar mode: [score] (`None` when unknown); ParEGO: losses.
    values: Option<Vec<f64>>,
    violation: f64,
}

/// Bayesian optimisation over the space's numeric encoding (ordinal genes scaled
/// to [0, 1], categorical genes one-hot) with an exact GP ([`Gp`]: Matérn 5/2,
/// hyperparameters by marginal likelihood on a grid). Acquisition: expected
/// improvement × probability of feasibility, maximised over random (oracle-feasible)
/// samples plus mutants of the best observations. A batch of `n` takes the `n` best
/// distinct candidates.
pub type Bayesian = AskTell<BayesProposer>;

/// The proposal step of [`Bayesian`]: its settings, observations and GP hyperparameters.
#[derive(Clone, Serialize, Deserialize)]
pub struct BayesProposer {
    cfg: BayesConfig,
    #[serde(with = "rng_serde")]
    rng: ChaCha8Rng,
    obs: Vec<Obs>,
    random_issued: usize,
    hyper: Option<GpHyper>,
    hyper_at: usize,
    cons_hyper: Option<GpHyper>,
    /// Observations of the constraint model when its hyperparameters were last selected.
    #[serde(default)]
    cons_hyper_at: usize,
}

impl SeededProposer for BayesProposer {
    type Config = BayesConfig;

    fn validate(cfg: &BayesConfig) -> Result<(), OptimError> {
        cfg.validate()
    }

    fn seeded(cfg: BayesConfig, seed: u64) -> Self {
        Self {
            cfg,
            rng: rng_from(seed),
            obs: Vec::new(),
            random_issued: 0,
            hyper: None,
            hyper_at: 0,
            cons_hyper: None,
            cons_hyper_at: 0,
        }
    }
}

impl BayesProposer {
    fn observe(&self, genome: Genome, outcome: &Outcome) -> Result<Option<Obs>, OptimError> {
        let limits_violation = |limits: &Option<Limits>, m: &crate::Metrics| -> Result<f64, OptimError> {
            Ok(match limits {
                Some(l) => total_violation(l.check_metrics(m)?.violations()),
                None => 0.0,
            })
        };
        Ok(match (outcome, &self.cfg.mode) {
            (Outcome::Failed(_), _) => None,
            (Outcome::Infeasible(v), _) => Some(Obs { genome, values: None, violation: total_violation(v).max(1e-9) }),
            (Outcome::Complete(m), BayesMode::Scalar(s)) => {
                let f = s.fitness(m)?;
                Some(Obs { genome, values: Some(vec![f.score]), violation: f.violation })
            }
            (Outcome::Complete(m), BayesMode::ParEgo { objectives, limits }) => {
                let losses = objectives.iter().map(|o| o.loss(m)).collect::<Result<Vec<_>, _>>()?;
                Some(Obs { genome, values: Some(losses), violation: limits_violation(limits, m)? })
            }
        })
    }

    /// Targets to maximise for the objective GP (indices into obs and values).
    fn targets(&mut self) -> (Vec<usize>, Vec<f64>) {
        let idx: Vec<usize> = (0..self.obs.len()).filter(|&i| self.obs[i].values.is_some()).collect();
        let y = match &self.cfg.mode {
            BayesMode::Scalar(_) => idx.iter().map(|&i| self.obs[i].values.as_ref().map_or(0.0, |v| v[0])).collect(),
            BayesMode::ParEgo { objectives, .. } => {
                let m = objectives.len();
                let vals: Vec<&Vec<f64>> = idx.iter().filter_map(|&i| self.obs[i].values.as_ref()).collect();
                let lo: Vec<f64> = (0..m).map(|k| vals.iter().map(|v| v[k]).fold(f64::INFINITY, f64::min)).collect();
                let hi: Vec<f64> =
                    (0..m).map(|k| vals.iter().map(|v| v[k]).fold(f64::NEG_INFINITY, f64::max)).collect();
                // weights uniform on the simplex
                let mut cuts: Vec<f64> = (0..m.saturating_sub(1)).map(|_| self.rng.random::<f64>()).collect();
                cuts.sort_by(f64::total_cmp);
                let mut w = Vec::with_capacity(m);
                let mut prev = 0.0;
                for c in cuts.iter().chain(std::iter::once(&1.0)) {
                    w.push(c - prev);
                    prev = *c;
                }
                vals.iter()
                    .map(|v| {
                        let f: Vec<f64> = (0..m)
                            .map(|k| if hi[k] > lo[k] { (v[k] - lo[k]) / (hi[k] - lo[k]) } else { 0.0 })
                            .collect();
                        let cheb = (0..m).map(|k| w[k] * f[k]).fold(f64::NEG_INFINITY, f64::max);
                        let sum: f64 = (0..m).map(|k| w[k] * f[k]).sum();
                        -(cheb + 0.05 * sum)
                    })
                    .collect()
            }
        };
        (idx, y)
    }

    fn fit(&mut self, x: &[Vec<f64>], y: &[f64], constraint: bool) -> Option<Gp> {
        let n = y.len();
        let cached = if constraint { self.cons_hyper } else { self.hyper };
        let last = if constraint { self.cons_hyper_at } else { self.hyper_at };
        let due = n <= 40 || n >= last + self.cfg.refit_every || cached.is_none();
        let hyper = if due {
            // select hyperparameters on the most recent HYPER_SUBSET points (cheap), then fit on all
            let m = n.min(HYPER_SUBSET);
            Gp::fit(&x[n - m..], &y[n - m..], &default_grid()).map(|g| g.hyper()).or(cached)
        } else {
            cached
        };
        let gp = hyper.and_then(|h| Gp::fit_with(x, y, h)).or_else(|| Gp::fit(x, y, &default_grid()))?;
        if constraint {
            self.cons_hyper = Some(gp.hyper());
            if due {
                self.cons_hyper_at = n;
            }
        } else {
            self.hyper = Some(gp.hyper());
            if due {
                self.hyper_at = n;
            }
        }
        Some(gp)
    }

    fn candidates(&mut self, cx: &AskContext<'_>) -> Vec<Genome> {
        let space = cx.space();
        let mut set: BTreeSet<Genome> = BTreeSet::new();
        let ok = |g: &Genome| cx.is_new(g) && cx.is_feasible(g);
        for _ in 0..self.cfg.random_candidates {
            let g = space.sample(&mut self.rng);
            if !set.contains(&g) && ok(&g) {
                set.insert(g);
            }
        }
        // parents: best feasible-first observations
        let mut order: Vec<usize> = (0..self.obs.len()).filter(|&i| self.obs[i].values.is_some()).collect();
        let key = |o: &Obs| (o.violation, o.values.as_ref().map_or(0.0, |v| -v.iter().sum::<f64>()));
        order.sort_by(|&a, &b| {
            let (va, sa) = key(&self.obs[a]);
            let (vb, sb) = key(&self.obs[b]);
            va.total_cmp(&vb).then(sa.total_cmp(&sb))
        });
        if matches!(self.cfg.mode, BayesMode::ParEgo { .. }) {
            // any observed point is a reasonable parent in the multi-objective case
            order.shuffle(&mut self.rng);
        }
        for &i in order.iter().take(self.cfg.local_parents) {
            let parent = self.obs[i].genome.clone();
            for _ in 0..self.cfg.local_mutants {
                let g = space.mutate_weighted(&parent, &mut self.rng, &GroupWeights::UNIFORM);
                if !set.contains(&g) && ok(&g) {
                    set.insert(g);
                }
            }
        }
        set.into_iter().collect()
    }
}

impl Proposer for BayesProposer {
    fn name(&self) -> &str {
        "bayesian"
    }

    fn propose_batch(&mut self, n: usize, cx: &AskContext<'_>) -> Vec<Genome> {
        let mut chosen: Vec<Genome> = Vec::new();
        let (idx, y) = self.targets();
        if n > 0 && self.random_issued >= self.cfg.initial && idx.len() >= 2 {
            let space = cx.space();
            let x: Vec<Vec<f64>> = idx.iter().map(|&i| space.encode(&self.obs[i].genome)).collect();
            let best = idx
                .iter()
                .zip(&y)
                .filter(|(i, _)| self.obs[**i].violation <= 0.0)
                .map(|(_, v)| *v)
                .fold(f64::NEG_INFINITY, f64::max);
            let gp = self.fit(&x, &y, false);
            let any_infeasible = self.obs.iter().any(|o| o.violation > 0.0);
            let cons = if any_infeasible {
                let xc: Vec<Vec<f64>> = self.obs.iter().map(|o| space.encode(&o.genome)).collect();
                let yc: Vec<f64> = self.obs.iter().map(|o| o.violation.min(10.0)).collect();
                self.fit(&xc, &yc, true)
            } else {
                None
            };
            let cands = self.candidates(cx);
            let mut scored: Vec<(f64, usize)> = cands
                .iter()
                .enumerate()
                .map(|(k, g)| {
                    let e = space.encode(g);
                    let pof = cons.as_ref().map_or(1.0, |c| {
                        let (m, s) = c.predict(&e);
                        norm_cdf((1e-3 - m) / s.max(1e-9))
                    });
                    let a = match &gp {
                        Some(gp) if best.is_finite() => {
                            let (m, s) = gp.predict(&e);
                            expected_improvement(m, s, best) * pof
                        }
                        Some(gp) => {
                            // no feasible point yet: feasibility first, mean as a tie-break
                            let (m, _) = gp.predict(&e);
                            pof + 1e-6 * m.tanh()
                        }
                        None => pof,
                    };
                    (if a.is_finite() { a } else { 0.0 }, k)
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            chosen = scored.into_iter().take(n).map(|(_, k)| cands[k].clone()).collect();
        }
        chosen
    }

    fn propose(&mut self, cx: &AskContext<'_>) -> Genome {
        self.random_issued += 1;
        let rng = &mut self.rng;
        cx.pick(64, || cx.space().sample(rng))
    }

    fn told(&mut self, _id: TrialId, genome: &Genome, outcome: &Outcome) -> Result<(), OptimError> {
        if let Some(o) = self.observe(genome.clone(), outcome)? {
            self.obs.push(o);
        }
        Ok(())
    }
}
