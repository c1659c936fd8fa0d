//! How far can the supernet be trusted on your data? Scores the same sampled
//! candidates of one or more data configurations several ways (from a supernet per
//! data configuration, from one supernet shared by all of them, with and without
//! fine-tuning a copy, by a short training from scratch) and against training each
//! from scratch (the baseline every proxy stands in for); reports the seconds each
//! took and the rank correlations: pooled over every candidate, over pairs of
//! candidates from *different* data configurations only (what a data-aware search
//! needs to get right), and within each configuration. `danas fidelity` runs it;
//! `cargo xtask repro supernet-vs-scratch` and `supernet-training` build on it.

use std::collections::BTreeSet;

use danas_core::{Candidate, DataConfig};
use danas_space::{CandidateSpace, MbSpace, SearchSpace};
use rand::SeedableRng;
use serde::{Deserialize, Deserializer, Serialize};

use crate::SearchError;
use crate::stats::{kendall_tau, kendall_tau_between, median, spearman_rho};
use crate::supernet::SupernetMode;
pub use crate::supernet::shared_data_config;
#[cfg(feature = "train")]
pub use training::{run, supernet_training, supernet_training_with};

/// What to compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FidelityPlan {
    /// The data configurations studied; candidates are sampled at each.
    #[serde(deserialize_with = "one_or_many")]
    pub data: Vec<DataConfig>,
    /// Distinct candidates sampled (seeded) at each data configuration.
    pub candidates: usize,
    /// Supernet training modes compared (`strategies` in reports before typed configs).
    #[serde(alias = "strategies")]
    pub modes: Vec<SupernetMode>,
    /// Also score from one supernet trained on every data configuration in turn,
    /// for `supernet.steps` × the number of configurations (the compute of the
    /// separate supernets together).
    #[serde(default)]
    pub shared: bool,
    /// Training steps of each from-scratch candidate.
    pub scratch_steps: u64,
    /// Also score by a short training from scratch of this many steps.
    #[serde(default)]
    pub short_steps: Option<u64>,
    /// Seed of the sample, the supernets and the trainings.
    pub seed: u64,
    /// Candidates trained or evaluated at once.
    #[serde(default = "two")]
    pub parallel: usize,
    /// Sample only candidates within the search config's limits (on its board):
    /// the ranking a search under those limits depends on.
    #[serde(default)]
    pub feasible_only: bool,
}

fn two() -> usize {
    2
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DataConfig>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(DataConfig),
        Many(Vec<DataConfig>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(x) => vec![x],
        OneOrMany::Many(v) => v,
    })
}

/// One candidate's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FidelityRow {
    /// The candidate, as text.
    pub candidate: String,
    /// Its data configuration.
    pub data: DataConfig,
    /// Deployable parameters.
    pub params: u64,
    /// Validation accuracy after from-scratch training.
    pub scratch_accuracy: f64,
    /// Seconds of from-scratch training and evaluation.
    pub scratch_seconds: f64,
    /// Per method, in [`FidelityReport::methods`] order.
    pub scores: Vec<Score>,
}

/// A candidate's score by one method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Validation accuracy.
    pub accuracy: f64,
    /// Seconds of the evaluation (supernet training not included).
    pub seconds: f64,
}

/// Rank agreement within one data configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigAgreement {
    /// The data configuration.
    pub data: DataConfig,
    /// Kendall's τ-b against from-scratch accuracies.
    pub kendall_tau: Option<f64>,
    /// Spearman's ρ against from-scratch accuracies.
    pub spearman_rho: Option<f64>,
}

/// Rank agreement of one evaluation method with from-scratch training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// The method, e.g. `separate sandwich supernet+finetune` or `short retrain 60`.
    pub method: String,
    /// Kendall's τ-b over every candidate (all data configurations pooled).
    pub kendall_tau: Option<f64>,
    /// Spearman's ρ over every candidate.
    pub spearman_rho: Option<f64>,
    /// Kendall's τ-b over pairs of candidates of different data configurations.
    pub between_tau: Option<f64>,
    /// Per data configuration.
    pub per_config: Vec<ConfigAgreement>,
    /// From-scratch accuracy of the best candidate minus that of the method's pick.
    pub pick_regret: f64,
    /// Median seconds per candidate.
    pub median_seconds: f64,
    /// Median from-scratch seconds / median seconds of this method.
    pub speedup: f64,
}

/// A supernet the comparison trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupernetRun {
    /// `separate full 32/rgb`, `shared sandwich`, …
    pub name: String,
    /// Steps run.
    pub steps: u64,
    /// Seconds of training.
    pub seconds: f64,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FidelityReport {
    /// The plan.
    pub plan: FidelityPlan,
    /// The methods compared, in the order of [`FidelityRow::scores`].
    pub methods: Vec<String>,
    /// Every supernet trained.
    pub supernets: Vec<SupernetRun>,
    /// Per candidate.
    pub rows: Vec<FidelityRow>,
    /// Per method.
    pub agreement: Vec<Agreement>,
    /// Median from-scratch seconds per candidate.
    pub median_scratch_seconds: f64,
}

/// Samples `n` distinct candidates of `space` at `data` (fewer when the space has fewer).
///
/// # Errors
/// [`SearchError::Config`] when the data configuration is not in the space.
pub fn sample_candidates(
    space: &MbSpace,
    data: DataConfig,
    n: usize,
    seed: u64,
) -> Result<Vec<Candidate>, SearchError> {
    sample_candidates_where(space, data, n, seed, &|_| true)
}

/// Samples up to `n` distinct candidates of `space` at `data` that `keep` accepts:
/// all of them when the space at `data` has at most 4,096 members, else seeded draws.
///
/// # Errors
/// [`SearchError::Config`] when the data configuration is not in the space.
pub fn sample_candidates_where(
    space: &MbSpace,
    data: DataConfig,
    n: usize,
    seed: u64,
    keep: &dyn Fn(&Candidate) -> bool,
) -> Result<Vec<Candidate>, SearchError> {
    let fixed = space.with_fixed_data(data).map_err(|e| SearchError::Config {
        field: "fidelity.data".into(),
        value: data.to_string(),
        reason: e.to_string(),
    })?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    if let Some(all) = fixed.enumerate(4096) {
        // small: every accepted member, then a seeded pick of n
        let mut ok = Vec::new();
        for g in all {
            let c = fixed.candidate(&g).map_err(SearchError::Genome)?;
            if keep(&c) {
                ok.push(c);
            }
        }
        let pick = rand::seq::index::sample(&mut rng, ok.len(), n.min(ok.len()));
        let mut idx: Vec<usize> = pick.into_iter().collect();
        idx.sort_unstable();
        return Ok(idx.into_iter().map(|i| ok[i].clone()).collect());
    }
    let want = (n as u128).min(fixed.cardinality()) as usize;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut tries = 0;
    while out.len() < want && tries < 1000 * n.max(1) {
        tries += 1;
        let g = fixed.sample(&mut rng);
        if seen.insert(g.0.clone()) {
            let c = fixed.candidate(&g).map_err(SearchError::Genome)?;
            if keep(&c) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

#[cfg_attr(not(feature = "train"), allow(dead_code))]
pub(crate) fn check_plan(plan: &FidelityPlan) -> Result<(), SearchError> {
    let bad = |field: &str, value: String, reason: &str| {
        Err(SearchError::Config { field: field.into(), value, reason: reason.into() })
    };
    if plan.data.is_empty() {
        return bad("data", "[]".into(), "needs at least one data configuration");
    }
    if plan.candidates * plan.data.len() < 2 {
        return bad("candidates", plan.candidates.to_string(), "needs at least 2 candidates in all to rank");
    }
    if plan.scratch_steps == 0 {
        return bad("scratch_steps", "0".into(), "needs at least one step");
    }
    if plan.modes.is_empty() && plan.short_steps.is_none() {
        return bad("modes", "[]".into(), "needs a supernet mode or short_steps");
    }
    if plan.short_steps == Some(0) {
        return bad("short_steps", "0".into(), "needs at least one step");
    }
    Ok(())
}

/// How method `k` ranks `rows` against from-scratch training.
#[cfg_attr(not(feature = "train"), allow(dead_code))]
pub(crate) fn agreement(
    method: &str,
    rows: &[FidelityRow],
    k: usize,
    data: &[DataConfig],
    scratch_secs: f64,
) -> Agreement {
    let acc: Vec<f64> = rows.iter().map(|r| r.scores[k].accuracy).collect();
    let truth: Vec<f64> = rows.iter().map(|r| r.scratch_accuracy).collect();
    let group: Vec<usize> = rows.iter().map(|r| data.iter().position(|&d| d == r.data).unwrap_or(0)).collect();
    let per_config = data
        .iter()
        .map(|&d| {
            let (a, t): (Vec<f64>, Vec<f64>) =
                rows.iter().zip(&acc).filter(|(r, _)| r.data == d).map(|(r, a)| (*a, r.scratch_accuracy)).unzip();
            ConfigAgreement { data: d, kendall_tau: kendall_tau(&a, &t), spearman_rho: spearman_rho(&a, &t) }
        })
        .collect();
    let best = truth.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pick = (0..rows.len()).max_by(|&a, &b| acc[a].total_cmp(&acc[b]).then(b.cmp(&a)));
    let m = median(&rows.iter().map(|r| r.scores[k].seconds).collect::<Vec<_>>());
    Agreement {
        method: method.to_string(),
        kendall_tau: kendall_tau(&acc, &truth),
        spearman_rho: spearman_rho(&acc, &truth),
        between_tau: kendall_tau_between(&acc, &truth, &group),
        per_config,
        pick_regret: pick.map_or(f64::NAN, |p| best - truth[p]),
        median_seconds: m,
        speedup: scratch_secs / m,
    }
}

/// Training and scoring (the `train` feature).
#[cfg(feature = "train")]
mod training {
    use std::sync::Arc;
    use std::time::Instant;

    use danas_core::{BatchSource, Candidate, DataConfig};
    use danas_space::MbSpace;
    use danas_train::{EvalConfig, SupernetTraining, TrainConfig};

    use super::{
        FidelityPlan, FidelityReport, FidelityRow, Score, SupernetRun, agreement, check_plan, sample_candidates_where,
        shared_data_config,
    };
    use crate::SearchError;
    use crate::config::CheckedConfig;
    use crate::stats::median;
    use crate::supernet::SupernetMode;

    /// The training of supernets of `mode` over `space`, with the default two random
    /// sub-networks per sandwich step.
    pub fn supernet_training(mode: SupernetMode, space: &MbSpace) -> SupernetTraining {
        mode.training(space.config().alphas.clone(), 2)
    }

    /// The training of supernets of `mode` over the width multipliers `alphas`, with
    /// `random` random sub-networks per sandwich step ([`SupernetMode::training`]).
    pub fn supernet_training_with(mode: SupernetMode, alphas: Vec<f64>, random: usize) -> SupernetTraining {
        mode.training(alphas, random)
    }

    /// Applies `f` to every item, `n` at a time, keeping the order; a panic is an error.
    fn par_map<T: Sync, R: Send>(
        items: &[T],
        n: usize,
        what: &str,
        f: impl Fn(&T) -> Result<R, SearchError> + Sync,
    ) -> Result<Vec<R>, SearchError> {
        crate::pool::fan_out(items, n, f)
            .into_iter()
            .map(|r| r.unwrap_or_else(|message| Err(SearchError::Panicked { what: what.to_string(), message })))
            .collect()
    }

    /// Everything the scoring needs.
    struct Bench<'a> {
        plan: &'a FidelityPlan,
        space: MbSpace,
        source: Arc<dyn BatchSource>,
        train: TrainConfig,
        plain: EvalConfig,
        tuned: EvalConfig,
        /// Random sub-networks per sandwich step.
        random: usize,
    }

    impl Bench<'_> {
        fn train_err(source: danas_train::TrainError) -> SearchError {
            SearchError::Train { what: "fidelity".into(), source }
        }

        /// Trains one supernet (on `on`, in turn) and scores every candidate from it,
        /// plain and fine-tuned.
        fn supernet_scores(
            &self,
            name: &str,
            at: DataConfig,
            on: &[DataConfig],
            mode: SupernetMode,
            cands: &[Candidate],
        ) -> Result<(SupernetRun, Vec<[Score; 2]>), SearchError> {
            let t0 = Instant::now();
            let training = mode.training(self.space.config().alphas.clone(), self.random);
            let source = self.source.as_ref();
            let (sn, rep) = crate::supernet::train(&self.space, at, on, source, &self.train, &training, &mut |_| {})
                .map_err(Self::train_err)?;
            let run = SupernetRun { name: name.to_string(), steps: rep.steps, seconds: t0.elapsed().as_secs_f64() };
            let scored = par_map(cands, self.plan.parallel, "scoring from a supernet", |c| {
                let a = sn.evaluate(c, self.source.as_ref(), &self.plain).map_err(Self::train_err)?;
                let b = sn.evaluate(c, self.source.as_ref(), &self.tuned).map_err(Self::train_err)?;
                Ok([
                    Score { accuracy: a.metrics.accuracy, seconds: a.seconds },
                    Score { accuracy: b.metrics.accuracy, seconds: b.seconds },
                ])
            });
            Ok((run, scored?))
        }

        /// Trains every candidate from scratch for `steps`: (accuracy, seconds, params).
        fn scratch(&self, cands: &[Candidate], steps: u64) -> Result<Vec<(Score, u64)>, SearchError> {
            let cfg = TrainConfig { steps, plateau: None, ..self.train.clone() };
            par_map(cands, self.plan.parallel, "training from scratch", |c| {
                let e = danas_train::evaluate_from_scratch(c, self.source.as_ref(), &cfg, &self.plain)
                    .map_err(Self::train_err)?;
                Ok((Score { accuracy: e.metrics.accuracy, seconds: e.seconds }, e.params))
            })
        }
    }

    /// Runs the comparison with the data, space, supernet and evaluation settings of
    /// `checked` (fine-tuned scores use `evaluation.finetune_steps`, or 100 when 0;
    /// supernets train for `supernet.steps`, stopping early on `supernet.plateau`).
    /// `progress` receives one line per phase.
    ///
    /// # Errors
    /// Settings, data and training errors.
    pub fn run(
        checked: &CheckedConfig,
        plan: &FidelityPlan,
        progress: &mut dyn FnMut(&str),
    ) -> Result<FidelityReport, SearchError> {
        check_plan(plan)?;
        let cfg = &checked.settings;
        let space = checked.space.clone();
        let source = cfg.open_data()?;
        let gate = checked.gate(source.classes());
        let keep = |c: &Candidate| {
            !plan.feasible_only || crate::CostGate::assess(&gate, c).is_ok_and(|a| a.feasibility.is_feasible())
        };
        let mut cands = Vec::new();
        for (i, &d) in plan.data.iter().enumerate() {
            let seed = plan.seed.wrapping_add(i as u64);
            cands.extend(sample_candidates_where(&space, d, plan.candidates, seed, &keep)?);
        }
        if cands.len() < 2 {
            return Err(SearchError::Config {
                field: "candidates".into(),
                value: cands.len().to_string(),
                reason: "fewer than 2 candidates to rank (none within the limits?)".into(),
            });
        }
        let train = TrainConfig { seed: plan.seed, ..cfg.train_config() };
        let eval = EvalConfig { seed: plan.seed, ..cfg.eval_config() };
        let ft_steps = if cfg.evaluation.finetune_steps > 0 { cfg.evaluation.finetune_steps } else { 100 };
        let tuned = EvalConfig {
            finetune: Some(TrainConfig {
                steps: ft_steps,
                batch_size: cfg.evaluation.batch_size,
                lr: cfg.evaluation.finetune_lr,
                augment: cfg.supernet.augment,
                seed: plan.seed,
                ..TrainConfig::default()
            }),
            ..eval.clone()
        };
        let plain = EvalConfig { finetune: None, ..eval };
        let b = Bench { plan, space, source, train, plain, tuned, random: cfg.supernet.sandwich_random };
        let mut methods = Vec::new();
        let mut columns: Vec<Vec<Score>> = Vec::new();
        let mut supernets = Vec::new();
        let mut add = |name: String, scores: Vec<Score>| {
            methods.push(name);
            columns.push(scores);
        };
        for &mode in &plan.modes {
            let mut plain = vec![Score { accuracy: f64::NAN, seconds: f64::NAN }; cands.len()];
            let mut tuned = plain.clone();
            for &d in &plan.data {
                let idx: Vec<usize> = (0..cands.len()).filter(|&i| cands[i].data == d).collect();
                let of: Vec<Candidate> = idx.iter().map(|&i| cands[i].clone()).collect();
                let name = format!("separate {mode} {d}");
                progress(&format!("training and scoring: {name}"));
                let (run, scores) = b.supernet_scores(&name, d, &[d], mode, &of)?;
                supernets.push(run);
                for (k, [p, t]) in idx.into_iter().zip(scores) {
                    (plain[k], tuned[k]) = (p, t);
                }
            }
            add(format!("separate {mode} supernet"), plain);
            add(format!("separate {mode} supernet+finetune"), tuned);
        }
        if plan.shared
            && let Some(at) = shared_data_config(&plan.data)
        {
            for &mode in &plan.modes {
                let name = format!("shared {mode}");
                progress(&format!("training and scoring: {name} (at {at}, on {} configurations)", plan.data.len()));
                let (run, scores) = b.supernet_scores(&name, at, &plan.data, mode, &cands)?;
                supernets.push(run);
                add(format!("shared {mode} supernet"), scores.iter().map(|s| s[0]).collect());
                add(format!("shared {mode} supernet+finetune"), scores.iter().map(|s| s[1]).collect());
            }
        }
        if let Some(steps) = plan.short_steps {
            progress(&format!("short retraining: {} candidates, {steps} steps each", cands.len()));
            add(format!("short retrain {steps}"), b.scratch(&cands, steps)?.into_iter().map(|s| s.0).collect());
        }
        progress(&format!("from scratch: {} candidates, {} steps each", cands.len(), plan.scratch_steps));
        let scratch = b.scratch(&cands, plan.scratch_steps)?;
        let rows: Vec<FidelityRow> = cands
            .iter()
            .zip(&scratch)
            .enumerate()
            .map(|(i, (c, (s, params)))| FidelityRow {
                candidate: c.to_string(),
                data: c.data,
                params: *params,
                scratch_accuracy: s.accuracy,
                scratch_seconds: s.seconds,
                scores: columns.iter().map(|col| col[i]).collect(),
            })
            .collect();
        let median_scratch_seconds = median(&rows.iter().map(|r| r.scratch_seconds).collect::<Vec<_>>());
        let agreement = methods
            .iter()
            .enumerate()
            .map(|(k, m)| agreement(m, &rows, k, &plan.data, median_scratch_seconds))
            .collect();
        Ok(FidelityReport { plan: plan.clone(), methods, supernets, rows, agreement, median_scratch_seconds })
    }
}
