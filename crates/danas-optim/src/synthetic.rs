//! A synthetic NAS landscape for testing and benchmarking optimisers without
//! training: a deterministic accuracy model over MobileNetV2-family candidates,
//! combined with a cost function (the real cost model, supplied by the caller) and
//! limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use danas_core::{Candidate, Color};
use danas_space::{CandidateSpace, Genome, SearchSpace};

use crate::{Feasibility, Limits, Metrics, OptimError, Oracle, Outcome, Violation, names};

/// A deterministic accuracy model: accuracy rises with resolution, width (α) and
/// depth with diminishing returns, colour helps more at higher resolutions, plus
/// seeded noise of ±0.005. Precision and recall are accuracy with their own small
/// seeded offsets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Landscape {
    /// Noise seed.
    pub seed: u64,
    /// Noise amplitude (default 0.005).
    pub noise: f64,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Landscape {
    /// The accuracy of guessing on this landscape's (binary) task: the floor of
    /// [`Landscape::clean_accuracy`], and the `chance_accuracy` to pass to
    /// [`summarize_run`] and [`compare_strategies`].
    pub const CHANCE_ACCURACY: f64 = 0.5;

    /// The landscape with noise seed `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed, noise: 0.005 }
    }

    fn unit_noise(&self, cand: &Candidate, salt: u64) -> f64 {
        let mut h = splitmix(self.seed ^ salt.wrapping_mul(0xA24B_AED4_963E_E407));
        h = splitmix(h ^ u64::from(cand.data.resolution));
        h = splitmix(h ^ u64::from(cand.data.color.channels()));
        h = splitmix(h ^ cand.arch.alpha.to_bits());
        for &d in &cand.arch.depths {
            h = splitmix(h ^ u64::from(d));
        }
        // uniform in [-1, 1]
        (h >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// The noiseless accuracy of a candidate.
    pub fn clean_accuracy(&self, cand: &Candidate) -> f64 {
        let r = f64::from(cand.data.resolution);
        let cap_res = 1.0 - (-r / 64.0).exp();
        let cap_w = 1.0 - (-cand.arch.alpha / 0.25).exp();
        let w = [1.0, 1.0, 0.8, 0.6, 0.4];
        let eff: f64 = cand.arch.depths.iter().zip(w).map(|(&d, w)| f64::from(d) * w).sum();
        let cap_d = 1.0 - (-eff / 4.0).exp();
        let colour = match cand.data.color {
            Color::Rgb => 0.03 * cap_res,
            _ => 0.0,
        };
        Self::CHANCE_ACCURACY + 0.45 * cap_res.powf(0.7) * cap_w.powf(0.5) * (0.3 + 0.7 * cap_d) + colour
    }

    /// Accuracy, precision and recall of a candidate.
    pub fn metrics(&self, cand: &Candidate) -> Metrics {
        let acc = (self.clean_accuracy(cand) + self.noise * self.unit_noise(cand, 1)).clamp(0.0, 1.0);
        let prec = (acc + 2.0 * self.noise * self.unit_noise(cand, 2)).clamp(0.0, 1.0);
        let rec = (acc - self.noise + 2.0 * self.noise * self.unit_noise(cand, 3)).clamp(0.0, 1.0);
        Metrics::new().with(names::ACCURACY, acc).with(names::PRECISION, prec).with(names::RECALL, rec)
    }
}

/// RAM and flash in bytes of a candidate, or why it cannot be costed.
pub type CostFn = Arc<dyn Fn(&Candidate) -> Result<(f64, f64), String> + Send + Sync>;

/// **Stand-in** cost, for tests that must not depend on the cost-model crate: flash =
/// deployable parameter count (int8, 1 byte each), RAM = the largest input + output
/// activation of any convolution (int8), or the input image if larger. This is the
/// paper's rough rule, not the real cost model; benches use `danas-cost`.
pub fn stand_in_cost() -> CostFn {
    Arc::new(|cand: &Candidate| {
        let bp = cand.blueprint(2).map_err(|e| e.to_string())?;
        let input = cand.data.input_elements();
        let act = bp
            .named_convs()
            .iter()
            .map(|(_, c)| {
                u64::from(c.in_hw.0) * u64::from(c.in_hw.1) * u64::from(c.in_ch)
                    + u64::from(c.out_hw.0) * u64::from(c.out_hw.1) * u64::from(c.out_ch)
            })
            .max()
            .unwrap_or(0);
        Ok((act.max(input) as f64, bp.param_count() as f64))
    })
}

/// A space, a cost function and limits: evaluates genomes on a [`Landscape`] the
/// way a search loop would (cost gate first: over-limit candidates come back as
/// [`Outcome::Infeasible`] without "training") and provides the matching oracle.
/// Costs are memoised per genome.
pub struct SyntheticProblem<S> {
    space: Arc<S>,
    cost: CostFn,
    limits: Limits,
    cache: Mutex<HashMap<Genome, CostResult>>,
}

/// A memoised cost: (RAM, flash) in bytes, or why it cannot be costed.
type CostResult = Result<(f64, f64), String>;

impl<S: CandidateSpace + 'static> SyntheticProblem<S> {
    /// A problem over `space` with `cost` under `limits` (on `ram_bytes` / `flash_bytes`).
    pub fn new(space: S, cost: CostFn, limits: Limits) -> Self {
        Self { space: Arc::new(space), cost, limits, cache: Mutex::new(HashMap::new()) }
    }

    /// The space, shareable with optimisers.
    pub fn space(&self) -> Arc<dyn SearchSpace> {
        self.space.clone()
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// RAM and flash of a genome (memoised).
    ///
    /// # Errors
    /// [`OptimError::Space`] when the genome is not in the space; [`OptimError::InvalidConfig`]
    /// when the cost function fails.
    pub fn cost(&self, g: &Genome) -> Result<(f64, f64), OptimError> {
        if let Ok(cache) = self.cache.lock()
            && let Some(r) = cache.get(g)
        {
            return r.clone().map_err(|e| OptimError::config("cost", g, e));
        }
        let cand = self.space.candidate(g)?;
        let r = (self.cost)(&cand);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(g.clone(), r.clone());
        }
        r.map_err(|e| OptimError::config("cost", g, e))
    }

    fn violations(&self, ram: f64, flash: f64) -> Vec<Violation> {
        self.limits.check_values(ram, flash, None).violations().to_vec()
    }

    /// Whether a genome is within the limits.
    pub fn feasibility(&self, g: &Genome) -> Feasibility {
        match self.cost(g) {
            Ok((ram, flash)) => {
                let v = self.violations(ram, flash);
                if v.is_empty() { Feasibility::Feasible } else { Feasibility::Infeasible(v) }
            }
            Err(e) => {
                Feasibility::Infeasible(vec![Violation { metric: format!("cost ({e})"), value: f64::MAX, limit: 0.0 }])
            }
        }
    }

    /// The evaluation a search loop would make: infeasible without training, else
    /// accuracy / precision / recall from `landscape` plus RAM and flash; `Failed`
    /// when the genome cannot be costed.
    pub fn evaluate(&self, landscape: &Landscape, g: &Genome) -> Outcome {
        let (ram, flash) = match self.cost(g) {
            Ok(c) => c,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let v = self.violations(ram, flash);
        if !v.is_empty() {
            return Outcome::Infeasible(v);
        }
        match self.space.candidate(g) {
            Ok(cand) => {
                let mut m = landscape.metrics(&cand);
                m.insert(names::RAM, ram);
                m.insert(names::FLASH, flash);
                Outcome::Complete(m)
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    /// The oracle an optimiser can use (shares this problem's cost cache).
    pub fn oracle(self: &Arc<Self>) -> Oracle {
        let me = self.clone();
        Arc::new(move |g: &Genome| me.feasibility(g))
    }
}

/// Figures of one finished run on a [`SyntheticProblem`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    /// Best accuracy among feasible complete trials (`None` when there was none).
    pub best_feasible: Option<f64>,
    /// Hypervolume of feasible trials in ((1 − accuracy) / (1 − chance accuracy),
    /// RAM / RAM limit, flash / flash limit) with reference (1, 1, 1).
    pub hypervolume: f64,
    /// Trials told.
    pub trials: usize,
    /// Of which infeasible.
    pub infeasible: usize,
}

/// Summarises told trials: best feasible accuracy and the (accuracy, RAM, flash)
/// hypervolume, each objective normalised so that the reference point is the worst
/// acceptable value: chance accuracy (0.5 for two balanced classes), the RAM limit
/// and the flash limit; the reference point is (1, 1, 1) in these units.
///
/// # Errors
/// [`OptimError::InvalidConfig`] when `ram_limit` or `flash_limit` is not positive.
pub fn summarize_run(
    trials: &[crate::Trial],
    ram_limit: f64,
    flash_limit: f64,
    chance_accuracy: f64,
) -> Result<RunSummary, OptimError> {
    if !(ram_limit > 0.0 && flash_limit > 0.0 && ram_limit.is_finite() && flash_limit.is_finite()) {
        return Err(OptimError::config("limits", format!("{ram_limit}/{flash_limit}"), "must be > 0"));
    }
    if !(0.0..1.0).contains(&chance_accuracy) {
        return Err(OptimError::config("chance_accuracy", chance_accuracy, "must be in [0, 1)"));
    }
    let mut best: Option<f64> = None;
    let mut pts = Vec::new();
    let mut infeasible = 0;
    for t in trials {
        match &t.outcome {
            Outcome::Complete(m) => {
                let (Ok(acc), Ok(ram), Ok(flash)) = (m.get(names::ACCURACY), m.get(names::RAM), m.get(names::FLASH))
                else {
                    continue;
                };
                if ram <= ram_limit && flash <= flash_limit {
                    best = Some(best.map_or(acc, |b: f64| b.max(acc)));
                    pts.push(vec![(1.0 - acc) / (1.0 - chance_accuracy), ram / ram_limit, flash / flash_limit]);
                } else {
                    infeasible += 1;
                }
            }
            Outcome::Infeasible(_) => infeasible += 1,
            Outcome::Failed(_) => {}
        }
    }
    let hypervolume = crate::pareto::hypervolume_3d(&pts, &[1.0, 1.0, 1.0])?;
    Ok(RunSummary { best_feasible: best, hypervolume, trials: trials.len(), infeasible })
}

/// Runs `opt` on `problem` for `budget` told trials, asking `batch` at a time, and
/// returns the told trials in order.
///
/// # Errors
/// Any ask/tell error, or [`OptimError::InvalidConfig`] when `batch` is 0.
pub fn run_search<S: CandidateSpace + 'static>(
    problem: &SyntheticProblem<S>,
    landscape: &Landscape,
    opt: &mut dyn crate::Optimizer,
    budget: usize,
    batch: usize,
) -> Result<Vec<crate::Trial>, OptimError> {
    if batch == 0 {
        return Err(OptimError::config("batch", 0, "must be at least 1"));
    }
    let mut trials = Vec::with_capacity(budget);
    while trials.len() < budget {
        let props = opt.ask(batch.min(budget - trials.len()))?;
        for p in props {
            let outcome = problem.evaluate(landscape, &p.genome);
            opt.tell(p.id, outcome.clone())?;
            trials.push(crate::Trial { id: p.id, genome: p.genome, outcome });
        }
    }
    Ok(trials)
}

/// One strategy's figures over seeds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StrategyReport {
    /// Strategy name.
    pub strategy: String,
    /// Median over seeds of the best feasible accuracy (runs without a feasible trial count as 0).
    pub median_best_feasible: f64,
    /// Median over seeds of the final hypervolume.
    pub median_hypervolume: f64,
    /// Quartiles of the best feasible accuracy.
    pub best_feasible: crate::pareto::Summary,
    /// Quartiles of the hypervolume.
    pub hypervolume: crate::pareto::Summary,
    /// Mean number of infeasible trials per run.
    pub mean_infeasible: f64,
    /// Seeds run.
    pub seeds: usize,
    /// Told trials per run.
    pub budget: usize,
}

/// Runs every strategy of `strategies` (names of [`crate::by_name`]) for each seed
/// (landscape noise seed = optimiser seed) at `budget` evaluations, with the
/// problem's oracle when `use_oracle`, and summarises (see [`summarize_run`] for
/// `chance_accuracy`).
///
/// # Errors
/// An unknown strategy, an empty seed list, or any ask/tell error.
pub fn compare_strategies<S: CandidateSpace + 'static>(
    problem: &Arc<SyntheticProblem<S>>,
    strategies: &[&str],
    seeds: &[u64],
    budget: usize,
    batch: usize,
    use_oracle: bool,
    chance_accuracy: f64,
) -> Result<Vec<StrategyReport>, OptimError> {
    if seeds.is_empty() {
        return Err(OptimError::config("seeds", "[]", "needs at least one seed"));
    }
    let (ram_limit, flash_limit) = limit_pair(problem.limits());
    let mut out = Vec::new();
    for &name in strategies {
        let mut best = Vec::new();
        let mut hv = Vec::new();
        let mut infeasible = 0usize;
        for &seed in seeds {
            let oracle = use_oracle.then(|| problem.oracle());
            let mut opt = crate::by_name(name, problem.space(), seed, oracle)?;
            let trials = run_search(problem, &Landscape::new(seed), opt.as_mut(), budget, batch)?;
            let s = summarize_run(&trials, ram_limit, flash_limit, chance_accuracy)?;
            best.push(s.best_feasible.unwrap_or(0.0));
            hv.push(s.hypervolume);
            infeasible += s.infeasible;
        }
        let zero = crate::pareto::Summary { min: 0.0, q1: 0.0, median: 0.0, q3: 0.0, max: 0.0 };
        let bs = crate::pareto::summarize(&best).unwrap_or(zero);
        let hs = crate::pareto::summarize(&hv).unwrap_or(zero);
        out.push(StrategyReport {
            strategy: name.to_string(),
            median_best_feasible: bs.median,
            median_hypervolume: hs.median,
            best_feasible: bs,
            hypervolume: hs,
            mean_infeasible: infeasible as f64 / seeds.len() as f64,
            seeds: seeds.len(),
            budget,
        });
    }
    Ok(out)
}

/// The RAM and flash limits.
fn limit_pair(limits: &Limits) -> (f64, f64) {
    (limits.ram_bytes as f64, limits.flash_bytes as f64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use danas_core::{Arch, DataConfig};
    use danas_space::MbSpace;

    use super::*;

    fn cand(res: u32, color: Color, alpha: f64, depths: [u32; 5]) -> Candidate {
        Candidate::new(DataConfig::new(res, color), Arch::mobilenet_v2(alpha, depths))
    }

    #[test]
    fn accuracy_rises_with_resolution_width_depth_and_colour() {
        let l = Landscape::new(0);
        let a = |c: &Candidate| l.clean_accuracy(c);
        let base = cand(96, Color::Grayscale, 0.35, [1, 1, 1, 0, 0]);
        assert!(a(&cand(128, Color::Grayscale, 0.35, [1, 1, 1, 0, 0])) > a(&base));
        assert!(a(&cand(96, Color::Grayscale, 0.5, [1, 1, 1, 0, 0])) > a(&base));
        assert!(a(&cand(96, Color::Grayscale, 0.35, [2, 1, 1, 0, 0])) > a(&base));
        assert!(a(&cand(96, Color::Rgb, 0.35, [1, 1, 1, 0, 0])) > a(&base));
        // diminishing returns: 32->64 gains more than 160->192
        let g1 = a(&cand(64, Color::Rgb, 0.5, [2, 2, 2, 1, 1])) - a(&cand(32, Color::Rgb, 0.5, [2, 2, 2, 1, 1]));
        let g2 = a(&cand(192, Color::Rgb, 0.5, [2, 2, 2, 1, 1])) - a(&cand(160, Color::Rgb, 0.5, [2, 2, 2, 1, 1]));
        assert!(g1 > g2 && g2 > 0.0);
    }

    #[test]
    fn metrics_are_deterministic_and_seeded() {
        let c = cand(96, Color::Rgb, 0.35, [1, 1, 1, 0, 0]);
        let m1 = Landscape::new(3).metrics(&c);
        assert_eq!(m1, Landscape::new(3).metrics(&c));
        assert_ne!(m1, Landscape::new(4).metrics(&c));
        let acc = m1.get(names::ACCURACY).unwrap();
        assert!((acc - Landscape::new(3).clean_accuracy(&c)).abs() <= 0.005 + 1e-12);
    }

    #[test]
    fn problem_gates_on_limits_and_oracle_agrees() {
        let p = Arc::new(SyntheticProblem::new(MbSpace::paper(), stand_in_cost(), Limits::paper()));
        let space = p.space();
        let oracle = p.oracle();
        let l = Landscape::new(1);
        let (mut feas, mut inf) = (0, 0);
        let mut rng = crate::optimizer::rng_from(5);
        for _ in 0..200 {
            let g = space.sample(&mut rng);
            let o = p.evaluate(&l, &g);
            match (&o, oracle(&g)) {
                (Outcome::Complete(m), Feasibility::Feasible) => {
                    feas += 1;
                    assert!(m.get(names::RAM).unwrap() <= 512.0 * 1024.0);
                }
                (Outcome::Infeasible(v), Feasibility::Infeasible(w)) => {
                    inf += 1;
                    assert_eq!(v, &w);
                }
                other => panic!("oracle and evaluation disagree: {other:?}"),
            }
        }
        assert!(feas > 20 && inf > 20, "feasible {feas}, infeasible {inf}");
    }

    #[test]
    fn run_summary_counts_and_hypervolume() {
        let t = |id: u64, o: Outcome| crate::Trial { id: crate::TrialId(id), genome: Genome(vec![]), outcome: o };
        let m = |acc: f64, ram: f64, flash: f64| {
            Outcome::Complete(Metrics::new().with(names::ACCURACY, acc).with(names::RAM, ram).with(names::FLASH, flash))
        };
        let trials = vec![t(0, m(0.8, 50.0, 50.0)), t(1, m(0.9, 150.0, 10.0)), t(2, Outcome::Failed("x".into()))];
        let s = summarize_run(&trials, 100.0, 100.0, 0.0).unwrap();
        assert_eq!(s.best_feasible, Some(0.8));
        assert_eq!(s.infeasible, 1);
        assert!((s.hypervolume - 0.8 * 0.5 * 0.5).abs() < 1e-12);
        // with chance accuracy 0.5: (1 - 0.8) / 0.5 = 0.4, box 0.6 * 0.5 * 0.5
        let s = summarize_run(&trials, 100.0, 100.0, 0.5).unwrap();
        assert!((s.hypervolume - 0.6 * 0.5 * 0.5).abs() < 1e-12);
        assert!(summarize_run(&trials, 0.0, 1.0, 0.5).is_err());
        assert!(summarize_run(&trials, 1.0, 1.0, 1.0).is_err());
    }

    #[test]
    fn compare_runs_every_strategy_and_reports() {
        let p = Arc::new(SyntheticProblem::new(MbSpace::demo(), stand_in_cost(), Limits::paper()));
        let r = compare_strategies(
            &p,
            &crate::OptimizerKind::ALL.map(crate::OptimizerKind::name),
            &[1, 2],
            15,
            3,
            true,
            0.5,
        )
        .unwrap();
        assert_eq!(r.len(), 5);
        for s in &r {
            assert!(s.median_best_feasible > 0.5 && s.median_best_feasible <= 1.0, "{s:?}");
            assert!(s.median_hypervolume > 0.0 && s.median_hypervolume < 1.0, "{s:?}");
            assert_eq!((s.seeds, s.budget), (2, 15));
        }
        assert!(compare_strategies(&p, &["nope"], &[1], 5, 1, true, 0.5).is_err());
        assert!(compare_strategies(&p, &["random"], &[], 5, 1, true, 0.5).is_err());
    }
}
