//! Metrics, BatchNorm recalibration and candidate evaluation.

use std::time::Instant;

use burn::tensor::Tensor;
use danas_core::{BatchSource, Candidate, Split};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::net::{Network, batch_input, device, forward_input};
use crate::params::{BatchStats, BnMode, to_vec};
use crate::supernet::Supernet;
use crate::train::{Feeder, StepInfo, TrainConfig, TrainReport, train_network};

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Correct predictions of the class / all predictions of it (0 when never predicted).
    pub precision: f64,
    /// Correct predictions of the class / its images (0 when it has none).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Images of the class.
    pub support: u64,
}

/// Classification metrics of a network on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// The split evaluated.
    pub split: Split,
    /// Images evaluated.
    pub images: u64,
    /// Fraction of correct predictions.
    pub accuracy: f64,
    /// Mean recall over the classes present in the split.
    pub balanced_accuracy: f64,
    /// Mean cross-entropy loss.
    pub loss: f64,
    /// Per class, indexed by label.
    pub per_class: Vec<ClassMetrics>,
    /// For binary tasks, the metrics of the positive class (label 1).
    pub positive: Option<ClassMetrics>,
    /// Seconds spent evaluating.
    pub seconds: f64,
}

impl Metrics {
    /// Metrics from a confusion matrix (`confusion[true][predicted]`) and a summed loss.
    pub fn from_confusion(split: Split, confusion: &[Vec<u64>], loss_sum: f64, seconds: f64) -> Self {
        let k = confusion.len();
        let total: u64 = confusion.iter().flatten().sum();
        let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|c| {
                let tp = confusion[c][c];
                let support: u64 = confusion[c].iter().sum();
                let predicted: u64 = (0..k).map(|r| confusion[r][c]).sum();
                let precision = ratio(tp, predicted);
                let recall = ratio(tp, support);
                let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
                ClassMetrics { precision, recall, f1, support }
            })
            .collect();
        let present: Vec<&ClassMetrics> = per_class.iter().filter(|c| c.support > 0).collect();
        let balanced_accuracy =
            if present.is_empty() { 0.0 } else { present.iter().map(|c| c.recall).sum::<f64>() / present.len() as f64 };
        let positive = (k == 2).then(|| per_class[1]);
        Self {
            split,
            images: total,
            accuracy: ratio(correct, total),
            balanced_accuracy,
            loss: if total == 0 { f64::NAN } else { loss_sum / total as f64 },
            per_class,
            positive,
            seconds,
        }
    }
}

/// Evaluates `net` on a whole split (inference mode, no augmentation).
///
/// # Errors
/// [`TrainError::EmptySplit`] when the split yields no image; data errors.
pub fn evaluate(
    net: &Network,
    source: &dyn BatchSource,
    split: Split,
    batch_size: usize,
) -> Result<Metrics, TrainError> {
    if batch_size == 0 {
        return Err(TrainError::setting("batch_size", 0, "must be at least 1"));
    }
    let start = Instant::now();
    let k = net.classes() as usize;
    let mut confusion = vec![vec![0u64; k]; k];
    let mut loss_sum = 0.0f64;
    let device = device();
    for batch in source.batches(split, net.blueprint().data, batch_size, false, 0) {
        let batch = batch.map_err(|source| TrainError::Source { split, source })?;
        let x = batch_input(net.blueprint(), &batch, split, &device)?;
        let logits = to_vec(net.forward_input(x))?;
        for (i, row) in logits.chunks(k).enumerate() {
            let label = batch.labels[i] as usize;
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let lse = f64::from(max) + row.iter().map(|&v| f64::from(v - max).exp()).sum::<f64>().ln();
            loss_sum += lse - f64::from(row[label]);
            let pred = row.iter().enumerate().fold(0, |b, (j, &v)| if v > row[b] { j } else { b });
            confusion[label][pred] += 1;
        }
    }
    if confusion.iter().flatten().sum::<u64>() == 0 {
        return Err(TrainError::EmptySplit { split });
    }
    Ok(Metrics::from_confusion(split, &confusion, loss_sum, start.elapsed().as_secs_f64()))
}

/// Re-estimates every BatchNorm's running statistics as the average batch
/// statistics over `batches` training batches (augmented, shuffled by `seed`).
///
/// # Errors
/// Data errors; [`TrainError::Setting`] for 0 batches or a batch size of 0.
pub fn recalibrate_bn(
    net: Network,
    source: &dyn BatchSource,
    batches: usize,
    batch_size: usize,
    seed: u64,
) -> Result<Network, TrainError> {
    if batches == 0 || batch_size == 0 {
        return Err(TrainError::setting(
            "calibration",
            format!("{batches} × {batch_size}"),
            "needs ≥ 1 batch of ≥ 1 image",
        ));
    }
    let device = device();
    let mut feeder = Feeder::new(source, net.blueprint().data, batch_size, true, seed);
    let t = net.params.view();
    let mut sums: Option<Vec<BatchStats>> = None;
    for _ in 0..batches {
        let batch = feeder.next_batch()?;
        let x = batch_input(net.blueprint(), &batch, Split::Train, &device)?;
        let (_, stats) = forward_input(net.blueprint(), &t, x, BnMode::Batch);
        sums = Some(match sums {
            None => stats,
            Some(s) => s.into_iter().zip(stats).map(|((am, av), (bm, bv))| (am + bm, av + bv)).collect(),
        });
    }
    let n = batches as f64;
    let avg: Vec<(Tensor<1>, Tensor<1>)> =
        sums.unwrap_or_default().into_iter().map(|(m, v)| (m.div_scalar(n), v.div_scalar(n))).collect();
    let (cand, bp) = (net.candidate().clone(), net.blueprint().clone());
    Ok(Network::from_params(cand, bp, net.params.set_stats(avg)))
}

/// How candidates are scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Training batches used to recalibrate BatchNorm statistics (0: keep the supernet's).
    pub calib_batches: usize,
    /// Images per calibration batch.
    pub calib_batch_size: usize,
    /// Fine-tuning of the extracted copy (`None`: none). The paper fine-tunes 10 × 10 steps.
    pub finetune: Option<TrainConfig>,
    /// Images per validation batch.
    pub eval_batch_size: usize,
    /// Seed of calibration batches.
    pub seed: u64,
}

impl Default for EvalConfig {
    /// 20 calibration batches of 64, no fine-tuning, validation batches of 128.
    fn default() -> Self {
        Self { calib_batches: 20, calib_batch_size: 64, finetune: None, eval_batch_size: 128, seed: 0 }
    }
}

impl EvalConfig {
    /// The paper's setting: fine-tune the copy 10 × 10 steps of batch 128 (Adam 1e-4),
    /// then recalibrate its BatchNorm statistics.
    pub fn paper() -> Self {
        Self {
            finetune: Some(TrainConfig { steps: 100, lr: 1e-4, batch_size: 128, ..TrainConfig::default() }),
            ..Self::default()
        }
    }
}

/// The score of one candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateEval {
    /// The candidate scored.
    pub candidate: Candidate,
    /// Validation metrics of the network handed over.
    pub metrics: Metrics,
    /// Deployable parameters (BatchNorm folded).
    pub params: u64,
    /// Training done for this score (fine-tuning or from scratch), if any.
    pub training: Option<TrainReport>,
    /// Wall-clock seconds of the whole evaluation.
    pub seconds: f64,
}

fn score(
    net: Network,
    source: &dyn BatchSource,
    cfg: &EvalConfig,
    mut training: Option<TrainReport>,
    start: Instant,
    on_step: &mut dyn FnMut(&StepInfo),
) -> Result<(Network, CandidateEval), TrainError> {
    let mut net = net;
    // Fine-tune first (training uses batch statistics), then recalibrate the running
    // statistics for the weights that are actually scored: the trainer's running
    // averages restart from the first fine-tuning batches and would otherwise
    // replace a calibration done before it.
    if let Some(ft) = &cfg.finetune {
        let (n, rep) = train_network(net, source, ft, on_step)?;
        net = n;
        training = Some(rep);
    }
    if cfg.calib_batches > 0 {
        net = recalibrate_bn(net, source, cfg.calib_batches, cfg.calib_batch_size, cfg.seed)?;
    }
    let metrics = evaluate(&net, source, Split::Validation, cfg.eval_batch_size)?;
    let eval = CandidateEval {
        candidate: net.candidate().clone(),
        metrics,
        params: net.param_count_folded(),
        training,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((net, eval))
}

impl Supernet {
    /// Scores `cand` with supernet weights: extract a copy, optionally fine-tune the
    /// copy, recalibrate its BatchNorm, evaluate on the validation split.
    /// The supernet itself never changes.
    ///
    /// # Errors
    /// [`TrainError::NotASubnet`], data errors, [`TrainError::Diverged`] when fine-tuning diverges.
    pub fn evaluate(
        &self,
        cand: &Candidate,
        source: &dyn BatchSource,
        cfg: &EvalConfig,
    ) -> Result<CandidateEval, TrainError> {
        let start = Instant::now();
        let net = self.extract(cand)?;
        Ok(score(net, source, cfg, None, start, &mut |_| {})?.1)
    }

    /// Like [`Supernet::evaluate`], also returning the scored network.
    ///
    /// # Errors
    /// As [`Supernet::evaluate`].
    pub fn evaluate_keep(
        &self,
        cand: &Candidate,
        source: &dyn BatchSource,
        cfg: &EvalConfig,
    ) -> Result<(Network, CandidateEval), TrainError> {
        let start = Instant::now();
        let net = self.extract(cand)?;
        score(net, source, cfg, None, start, &mut |_| {})
    }
}

/// Scores `cand` trained from scratch with `train` (the baseline a supernet
/// replaces), then as [`Supernet::evaluate`] (optional fine-tuning, recalibration, validation).
///
/// # Errors
/// As [`train_network`] and [`evaluate`].
pub fn evaluate_from_scratch(
    cand: &Candidate,
    source: &dyn BatchSource,
    train: &TrainConfig,
    cfg: &EvalConfig,
) -> Result<CandidateEval, TrainError> {
    let start = Instant::now();
    let net = Network::new(cand, source.classes(), train.seed)?;
    let (net, rep) = train_network(net, source, train, &mut |_| {})?;
    let cfg = EvalConfig { calib_batches: 0, ..cfg.clone() };
    Ok(score(net, source, &cfg, Some(rep), start, &mut |_| {})?.1)
}

/// Report of a final training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalReport {
    /// The training run.
    pub training: TrainReport,
    /// Validation metrics.
    pub validation: Metrics,
    /// Test metrics, when asked for.
    pub test: Option<Metrics>,
    /// Deployable parameters (BatchNorm folded).
    pub params: u64,
}

/// Final training of a chosen candidate, from scratch or starting from
/// supernet weights (`from`), then validation and (with `test`) test metrics.
///
/// # Errors
/// As [`train_network`], [`Supernet::extract`] and [`evaluate`].
pub fn final_train(
    cand: &Candidate,
    source: &dyn BatchSource,
    cfg: &TrainConfig,
    from: Option<&Supernet>,
    test: bool,
    on_step: &mut dyn FnMut(&StepInfo),
) -> Result<(Network, FinalReport), TrainError> {
    let net = match from {
        Some(s) => s.extract(cand)?,
        None => Network::new(cand, source.classes(), cfg.seed)?,
    };
    let (net, training) = train_network(net, source, cfg, on_step)?;
    let bs = cfg.batch_size.max(1);
    let validation = evaluate(&net, source, Split::Validation, bs)?;
    let test = if test { Some(evaluate(&net, source, Split::Test, bs)?) } else { None };
    let params = net.param_count_folded();
    Ok((net, FinalReport { training, validation, test, params }))
}
