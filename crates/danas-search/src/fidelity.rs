//! How far can the supernet be trusted on your data? Scores the same sampled
//! candidates of one data configuration three ways: from supernet weights (BatchNorm
//! recalibrated), from supernet weights with fine-tuning of a copy, and trained from
//! scratch (the baseline the supernet replaces); reports the seconds each took and
//! the rank correlations (Kendall τ, Spearman ρ) against from-scratch training.
//! `danas fidelity` runs it; `cargo xtask repro supernet-vs-scratch` and
//! `supernet-training` build on it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use danas_core::{BatchSource, Candidate, DataConfig};
use danas_space::{CandidateSpace, MbSpace, SearchSpace};
use danas_train::{EvalConfig, Supernet, SupernetTraining, TrainConfig};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::SearchError;
use crate::config::SearchConfig;
use crate::stats::{kendall_tau, median, spearman_rho};

/// What to compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FidelityPlan {
    /// The data configuration whose supernet is studied.
    pub data: DataConfig,
    /// Distinct candidates sampled (seeded) from the space at that data configuration.
    pub candidates: usize,
    /// Supernet training strategies to compare (`full`, `sandwich`).
    pub strategies: Vec<String>,
    /// Training steps of each from-scratch candidate.
    pub scratch_steps: u64,
    /// Seed of the sample, the supernets and the trainings.
    pub seed: u64,
}

/// One candidate's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FidelityRow {
    /// The candidate, as text.
    pub candidate: String,
    /// Deployable parameters.
    pub params: u64,
    /// Validation accuracy after from-scratch training.
    pub scratch_accuracy: f64,
    /// Seconds of from-scratch training and evaluation.
    pub scratch_seconds: f64,
    /// Per strategy, in [`FidelityPlan::strategies`] order.
    pub supernet: Vec<SupernetScore>,
}

/// A candidate's scores from one supernet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupernetScore {
    /// Validation accuracy from supernet weights (BatchNorm recalibrated).
    pub accuracy: f64,
    /// Seconds of that evaluation.
    pub seconds: f64,
    /// Validation accuracy after fine-tuning a copy.
    pub finetuned_accuracy: Option<f64>,
    /// Seconds of the fine-tuned evaluation.
    pub finetuned_seconds: Option<f64>,
}

/// Rank agreement of one evaluation method with from-scratch training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Supernet strategy.
    pub strategy: String,
    /// `supernet` or `supernet+finetune`.
    pub method: String,
    /// Kendall's τ-b against from-scratch accuracies.
    pub kendall_tau: Option<f64>,
    /// Spearman's ρ against from-scratch accuracies.
    pub spearman_rho: Option<f64>,
    /// Median seconds per candidate.
    pub median_seconds: f64,
    /// Median from-scratch seconds / median seconds of this method.
    pub speedup: f64,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FidelityReport {
    /// The plan.
    pub plan: FidelityPlan,
    /// Seconds to train each supernet, in strategy order.
    pub supernet_seconds: Vec<f64>,
    /// Per candidate.
    pub rows: Vec<FidelityRow>,
    /// Per strategy and method.
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
    let fixed = space.with_fixed_data(data).map_err(|e| SearchError::Config {
        field: "fidelity.data".into(),
        value: data.to_string(),
        reason: e.to_string(),
    })?;
    let want = (n as u128).min(fixed.cardinality()) as usize;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xF1DE_11E7);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut tries = 0;
    while out.len() < want && tries < 100 * want.max(1) {
        tries += 1;
        let g = fixed.sample(&mut rng);
        if seen.insert(g.0.clone()) {
            let c = fixed.candidate(&g).map_err(SearchError::Genome)?;
            out.push(c);
        }
    }
    Ok(out)
}

fn strategy_of(name: &str, space: &MbSpace) -> Result<SupernetTraining, SearchError> {
    match name {
        "full" => Ok(SupernetTraining::Full),
        "sandwich" => {
            Ok(SupernetTraining::Sandwich { alphas: space.config().alphas.clone(), min_depths: [0; 5], random: 2 })
        }
        other => Err(SearchError::Config {
            field: "strategies".into(),
            value: other.into(),
            reason: "must be full or sandwich".into(),
        }),
    }
}

/// Runs the comparison with the data, space, supernet and evaluation settings of
/// `cfg` (fine-tuned scores use `cfg.evaluation.finetune_steps`, or 100 when 0).
/// `progress` receives one line per phase.
///
/// # Errors
/// Settings, data and training errors.
pub fn run(
    cfg: &SearchConfig,
    plan: &FidelityPlan,
    progress: &mut dyn FnMut(&str),
) -> Result<FidelityReport, SearchError> {
    cfg.validate()?;
    if plan.candidates < 2 {
        return Err(SearchError::Config {
            field: "candidates".into(),
            value: plan.candidates.to_string(),
            reason: "needs at least 2 to rank".into(),
        });
    }
    if plan.scratch_steps == 0 || plan.strategies.is_empty() {
        return Err(SearchError::Config {
            field: "scratch_steps / strategies".into(),
            value: format!("{} / {:?}", plan.scratch_steps, plan.strategies),
            reason: "need at least one step and one strategy".into(),
        });
    }
    let space = cfg.build_space()?;
    let strategies: Vec<SupernetTraining> =
        plan.strategies.iter().map(|s| strategy_of(s, &space)).collect::<Result<_, _>>()?;
    let data = cfg.open_data()?;
    let source: Arc<dyn BatchSource> = data;
    let train_err = |source| SearchError::Train { what: "fidelity".into(), source };
    let cands = sample_candidates(&space, plan.data, plan.candidates, plan.seed)?;

    let mut train = cfg.train_config();
    train.seed = plan.seed;
    let eval = EvalConfig { seed: plan.seed, ..cfg.eval_config() };
    let plain = EvalConfig { finetune: None, ..eval.clone() };
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

    let mut supernet_seconds = Vec::new();
    let mut scores: Vec<Vec<SupernetScore>> = vec![Vec::new(); cands.len()];
    for (name, strategy) in plan.strategies.iter().zip(&strategies) {
        progress(&format!("training the {name} supernet for {}", plan.data));
        let t0 = Instant::now();
        let max = space.supernet(plan.data);
        let mut sn = Supernet::new(plan.data, max.arch, source.classes(), plan.seed).map_err(train_err)?;
        sn.train(source.as_ref(), &train, strategy, &mut |_| {}).map_err(train_err)?;
        supernet_seconds.push(t0.elapsed().as_secs_f64());
        for (i, c) in cands.iter().enumerate() {
            progress(&format!("{name} supernet: candidate {}/{} {c}", i + 1, cands.len()));
            let a = sn.evaluate(c, source.as_ref(), &plain).map_err(train_err)?;
            let b = sn.evaluate(c, source.as_ref(), &tuned).map_err(train_err)?;
            scores[i].push(SupernetScore {
                accuracy: a.metrics.accuracy,
                seconds: a.seconds,
                finetuned_accuracy: Some(b.metrics.accuracy),
                finetuned_seconds: Some(b.seconds),
            });
        }
    }
    let scratch_cfg = TrainConfig { steps: plan.scratch_steps, ..train.clone() };
    let mut rows = Vec::new();
    for (i, (c, sc)) in cands.iter().zip(scores).enumerate() {
        progress(&format!("from scratch: candidate {}/{} {c}", i + 1, cands.len()));
        let e = danas_train::evaluate_from_scratch(c, source.as_ref(), &scratch_cfg, &plain).map_err(train_err)?;
        rows.push(FidelityRow {
            candidate: c.to_string(),
            params: e.params,
            scratch_accuracy: e.metrics.accuracy,
            scratch_seconds: e.seconds,
            supernet: sc,
        });
    }
    let scratch: Vec<f64> = rows.iter().map(|r| r.scratch_accuracy).collect();
    let median_scratch_seconds = median(&rows.iter().map(|r| r.scratch_seconds).collect::<Vec<_>>());
    let mut agreement = Vec::new();
    for (k, name) in plan.strategies.iter().enumerate() {
        for tuned in [false, true] {
            let acc: Vec<f64> =
                rows.iter()
                    .map(|r| {
                        if tuned {
                            r.supernet[k].finetuned_accuracy.unwrap_or(f64::NAN)
                        } else {
                            r.supernet[k].accuracy
                        }
                    })
                    .collect();
            let secs: Vec<f64> = rows
                .iter()
                .map(
                    |r| if tuned { r.supernet[k].finetuned_seconds.unwrap_or(f64::NAN) } else { r.supernet[k].seconds },
                )
                .collect();
            let m = median(&secs);
            agreement.push(Agreement {
                strategy: name.clone(),
                method: if tuned { "supernet+finetune".into() } else { "supernet".into() },
                kendall_tau: kendall_tau(&acc, &scratch),
                spearman_rho: spearman_rho(&acc, &scratch),
                median_seconds: m,
                speedup: median_scratch_seconds / m,
            });
        }
    }
    Ok(FidelityReport { plan: plan.clone(), supernet_seconds, rows, agreement, median_scratch_seconds })
}
