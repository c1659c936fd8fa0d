//! Training loops: single networks and supernets (`full` or `sandwich`).

use std::time::Instant;

use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use danas_core::{Arch, Batch, BatchIter, BatchSource, Blueprint, Candidate, DataConfig, Split};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::net::{Network, batch_input, device, forward_input};
use crate::params::{BnMode, NetParams, to_vec};
use crate::supernet::{Supernet, slice_view};

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GradientOptimizer {
    /// Adam (β 0.9/0.999, ε 1e-7), optional L2 weight decay.
    Adam {
        /// L2 penalty added to the gradient (0 for none).
        weight_decay: f64,
    },
    /// AdamW with decoupled weight decay.
    AdamW {
        /// Decoupled weight decay.
        weight_decay: f64,
    },
    /// SGD with (undampened) momentum.
    Sgd {
        /// Momentum (0 for plain SGD).
        momentum: f64,
        /// L2 penalty (0 for none).
        weight_decay: f64,
        /// Nesterov momentum.
        nesterov: bool,
    },
}

impl GradientOptimizer {
    fn build(self) -> ModuleOptimizer {
        use burn::optim::decay::WeightDecayConfig;
        let wd = |w: f64| (w > 0.0).then(|| WeightDecayConfig::new(w as f32));
        match self {
            GradientOptimizer::Adam { weight_decay } => {
                AdamConfig::new().with_epsilon(1e-7).with_weight_decay(wd(weight_decay)).init()
            }
            GradientOptimizer::AdamW { weight_decay } => {
                AdamWConfig::new().with_epsilon(1e-7).with_weight_decay(weight_decay as f32).init()
            }
            GradientOptimizer::Sgd { momentum, weight_decay, nesterov } => {
                let m = (momentum > 0.0)
                    .then(|| MomentumConfig::new().with_momentum(momentum).with_dampening(0.0).with_nesterov(nesterov));
                SgdConfig::new().with_momentum(m).with_weight_decay(wd(weight_decay)).init()
            }
        }
    }
}

/// Settings of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimiser steps (one batch each).
    pub steps: u64,
    /// Images per batch.
    pub batch_size: usize,
    /// The optimiser.
    pub optimizer: GradientOptimizer,
    /// Peak learning rate.
    pub lr: f64,
    /// Steps of linear warm-up from `lr / warmup_steps` to `lr`; then cosine decay to `min_lr`.
    pub warmup_steps: u64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Whether to apply the pipeline's training augmentation.
    pub augment: bool,
    /// Weight of a batch in the running BatchNorm statistics (PyTorch's `momentum`);
    /// during the first `1 / bn_momentum` steps the statistics are the plain average
    /// of the batches seen so far.
    pub bn_momentum: f64,
    /// Seed of batch order, augmentation and sub-network sampling.
    pub seed: u64,
    /// Stop before `steps` once the loss stops improving (`None`: run every step).
    #[serde(default)]
    pub plateau: Option<Plateau>,
}

impl Default for TrainConfig {
    /// Adam 1e-3, batch 64, 100 steps, no warm-up, cosine to 0, augmentation on.
    fn default() -> Self {
        Self {
            steps: 100,
            batch_size: 64,
            optimizer: GradientOptimizer::Adam { weight_decay: 0.0 },
            lr: 1e-3,
            warmup_steps: 0,
            min_lr: 0.0,
            augment: true,
            bn_momentum: 0.1,
            seed: 0,
            plateau: None,
        }
    }
}

impl TrainConfig {
    /// Learning rate at zero-based `step`: linear warm-up, then cosine decay.
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let p = ((step - self.warmup_steps) as f64 / span).min(1.0);
        self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * p).cos())
    }

    /// Steps for `epochs` passes over `images` training images.
    pub fn steps_for_epochs(images: usize, batch_size: usize, epochs: u64) -> u64 {
        images.div_ceil(batch_size.max(1)) as u64 * epochs
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`TrainError::Setting`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.batch_size == 0 {
            return Err(TrainError::setting("batch_size", 0, "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::setting("lr", self.lr, "must be a finite number > 0"));
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return Err(TrainError::setting("min_lr", self.min_lr, "must be between 0 and lr"));
        }
        if !(0.0..=1.0).contains(&self.bn_momentum) {
            return Err(TrainError::setting("bn_momentum", self.bn_momentum, "must be between 0 and 1"));
        }
        let wd = match self.optimizer {
            GradientOptimizer::Adam { weight_decay } | GradientOptimizer::AdamW { weight_decay } => weight_decay,
            GradientOptimizer::Sgd { momentum, weight_decay, .. } => {
                if !(0.0..1.0).contains(&momentum) {
                    return Err(TrainError::setting("optimizer.momentum", momentum, "must be in [0, 1)"));
                }
                weight_decay
            }
        };
        if !(wd.is_finite() && wd >= 0.0) {
            return Err(TrainError::setting("optimizer.weight_decay", wd, "must be a finite number >= 0"));
        }
        Ok(())
    }
}

/// How a supernet is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SupernetTraining {
    /// Train the full network only (the paper's setting).
    Full,
    /// Each step trains the largest network, the smallest and `random` random
    /// sub-networks; the others learn from the largest's outputs (in-place distillation).
    Sandwich {
        /// Width multipliers to sample sub-networks from (each at most the supernet's).
        alphas: Vec<f64>,
        /// Smallest depth of each searchable stage.
        min_depths: [u32; 5],
        /// Random sub-networks per step (2 in the usual sandwich rule).
        random: usize,
    },
}

/// Progress of one step, given to the progress callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// Zero-based step.
    pub step: u64,
    /// Total steps.
    pub steps: u64,
    /// Loss of the step (sum over the sub-networks trained in it).
    pub loss: f32,
    /// Learning rate used.
    pub lr: f64,
    /// Seconds since training started.
    pub seconds: f64,
}

/// Summary of a finished training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Steps done.
    pub steps: u64,
    /// Images seen (per network).
    pub images: u64,
    /// Mean loss of the last 10 % of steps.
    pub final_loss: f32,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Endless, epoch after epoch, batches of the training split.
pub(crate) struct Feeder<'a> {
    source: &'a dyn BatchSource,
    data: danas_core::DataConfig,
    batch_size: usize,
    augment: bool,
    seed: u64,
    epoch: u64,
    iter: Option<BatchIter<'a>>,
    fresh: bool,
}

impl<'a> Feeder<'a> {
    pub(crate) fn new(
        source: &'a dyn BatchSource,
        data: danas_core::DataConfig,
        batch_size: usize,
        augment: bool,
        seed: u64,
    ) -> Self {
        Self { source, data, batch_size, augment, seed, epoch: 0, iter: None, fresh: true }
    }

    pub(crate) fn next_batch(&mut self) -> Result<Batch, TrainError> {
        loop {
            if self.iter.is_none() {
                let seed = self.seed.wrapping_add(self.epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                self.iter = Some(self.source.batches(Split::Train, self.data, self.batch_size, self.augment, seed));
                self.epoch += 1;
                self.fresh = true;
            }
            match self.iter.as_mut().and_then(Iterator::next) {
                Some(Ok(b)) => {
                    self.fresh = false;
                    return Ok(b);
                }
                Some(Err(source)) => return Err(TrainError::Source { split: Split::Train, source }),
                None => {
                    if self.fresh {
                        return Err(TrainError::EmptySplit { split: Split::Train });
                    }
                    self.iter = None;
                }
            }
        }
    }
}

/// A single-channel batch as `c` equal channels.
fn replicate_channels(batch: &Batch, c: usize) -> Batch {
    let plane = batch.h * batch.w;
    let mut images = Vec::with_capacity(batch.n * c * plane);
    for img in batch.images.chunks(plane * batch.c.max(1)) {
        for _ in 0..c {
            images.extend_from_slice(&img[..plane.min(img.len())]);
        }
    }
    Batch { images, c, ..batch.clone() }
}

fn one_hot(labels: &[u32], classes: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0.0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        v[i * classes + l as usize] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [labels.len(), classes]), device)
}

/// Mean cross-entropy between logits and target distributions (one-hot or soft).
pub(crate) fn soft_cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let n = logits.dims()[0] as f64;
    (log_softmax(logits, 1) * targets).sum().neg().div_scalar(n)
}

/// Sampler of sandwich sub-networks.
struct SubnetSampler {
    base: Candidate,
    alphas: Vec<f64>,
    min_depths: [u32; 5],
    max_depths: Vec<u32>,
    random: usize,
    rng: ChaCha8Rng,
}

impl SubnetSampler {
    fn arch(&self, alpha: f64, depths: Vec<u32>) -> Candidate {
        Candidate::new(self.base.data, Arch { alpha, depths, ..self.base.arch.clone() })
    }
    fn smallest(&self) -> Candidate {
        let a = self.alphas.iter().copied().fold(f64::INFINITY, f64::min);
        self.arch(a, self.min_depths.to_vec())
    }
    /// The sub-networks of one sandwich step: the smallest, then `random` samples.
    fn step_subnets(&mut self) -> Vec<Candidate> {
        let mut subs = vec![self.smallest()];
        for _ in 0..self.random {
            subs.push(self.sample());
        }
        subs
    }
    fn sample(&mut self) -> Candidate {
        let a = self.alphas[self.rng.random_range(0..self.alphas.len())];
        let d = (0..5)
            .map(|i| {
                let lo = self.min_depths[i].min(self.max_depths[i]);
                self.rng.random_range(lo..=self.max_depths[i])
            })
            .collect();
        self.arch(a, d)
    }
}

/// A training run in progress: parameters on the autodiff device, the optimiser
/// state and the step counter. [`Trainer::step`] does one forward, backward and
/// optimiser step on a batch.
pub struct Trainer {
    candidate: Candidate,
    blueprint: Blueprint,
    params: NetParams,
    optim: ModuleOptimizer,
    cfg: TrainConfig,
    sampler: Option<SubnetSampler>,
    device: Device,
    step: u64,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer").field("candidate", &self.candidate.to_string()).field("step", &self.step).finish()
    }
}

impl Trainer {
    /// Starts training a copy of `net` with `cfg` (training [`SupernetTraining::Full`]).
    ///
    /// # Errors
    /// [`TrainError::Setting`] for bad settings.
    pub fn new(net: &Network, cfg: &TrainConfig) -> Result<Self, TrainError> {
        Self::with_training(net, cfg, &SupernetTraining::Full)
    }

    /// Starts training a copy of `net` (a supernet for [`SupernetTraining::Sandwich`]).
    ///
    /// # Errors
    /// [`TrainError::Setting`] for bad settings, [`TrainError::NotASubnet`] when the
    /// smallest sandwich sub-network does not fit.
    pub fn with_training(net: &Network, cfg: &TrainConfig, training: &SupernetTraining) -> Result<Self, TrainError> {
        cfg.validate()?;
        let device = device().autodiff();
        let bp = net.blueprint().clone();
        let cand = net.candidate().clone();
        let params = NetParams::from_weights(&bp, &net.params.to_weights()?, &device)?;
        let sampler = match training {
            SupernetTraining::Full => None,
            SupernetTraining::Sandwich { alphas, min_depths, random } => {
                if alphas.is_empty() {
                    return Err(TrainError::setting("training.alphas", "[]", "needs at least one width"));
                }
                let s = SubnetSampler {
                    base: cand.clone(),
                    alphas: alphas.clone(),
                    min_depths: *min_depths,
                    max_depths: cand.arch.depths.clone(),
                    random: *random,
                    rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5A4D_5749_4348),
                };
                // Fail early when a sub-network does not fit.
                for a in alphas {
                    let c = s.arch(*a, s.min_depths.to_vec());
                    slice_view(&bp, &params.view(), &c.blueprint(bp.head.classes)?, &cand.to_string())?;
                }
                Some(s)
            }
        };
        Ok(Self {
            candidate: cand,
            blueprint: bp,
            params,
            optim: cfg.optimizer.build(),
            cfg: cfg.clone(),
            sampler,
            device,
            step: 0,
        })
    }

    /// Steps done so far.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// One training step on `batch`; returns the loss (summed over the
    /// sub-networks trained in the step).
    ///
    /// # Errors
    /// [`TrainError::BadBatch`] for a batch that does not fit the network,
    /// [`TrainError::Diverged`] when the loss is NaN or infinite (the parameters
    /// are then left as they were before the step).
    pub fn step(&mut self, batch: &Batch) -> Result<f32, TrainError> {
        let bp = self.blueprint.clone();
        self.step_with(&bp, batch)
    }

    /// One training step on `batch` of data configuration `data`, which may differ
    /// from the network's own: the network is fully convolutional, so its weights
    /// run at any resolution, and a grayscale batch is fed to an rgb network as
    /// three equal channels (what a grayscale network cut out of it computes).
    ///
    /// # Errors
    /// As [`Trainer::step`]; [`TrainError::BadBatch`] for an rgb batch on a grayscale network.
    pub fn step_on(&mut self, data: DataConfig, batch: &Batch) -> Result<f32, TrainError> {
        if data == self.blueprint.data {
            return self.step(batch);
        }
        let own = self.blueprint.data.color;
        if data.color.channels() > own.channels() {
            return Err(TrainError::BadBatch {
                split: Split::Train,
                field: "c".into(),
                value: batch.c.to_string(),
                expected: format!("a {own} batch for a {own} network"),
            });
        }
        let at = DataConfig::new(data.resolution, own);
        let bp = Candidate::new(at, self.candidate.arch.clone()).blueprint(self.blueprint.head.classes)?;
        if batch.c < own.channels() as usize {
            self.step_with(&bp, &replicate_channels(batch, own.channels() as usize))
        } else {
            self.step_with(&bp, batch)
        }
    }

    fn step_with(&mut self, bp: &Blueprint, batch: &Batch) -> Result<f32, TrainError> {
        let x = batch_input(bp, batch, Split::Train, &self.device)?;
        let classes = bp.head.classes as usize;
        let targets = one_hot(&batch.labels, classes, &self.device);
        // Each network of the step is forwarded and back-propagated on its own and the
        // gradients summed, so only one autodiff graph is alive at a time (summing the
        // losses first would hold the graphs of every sandwich sub-network at once).
        let mut acc: GradientsAccumulator<NetParams> = GradientsAccumulator::new();
        let subs = self.sampler.as_mut().map(SubnetSampler::step_subnets).unwrap_or_default();
        let (loss, stats, detached) = {
            let t = self.params.view();
            let (logits, stats) = forward_input(bp, &t, x.clone(), BnMode::Batch);
            let detached = logits.clone().detach();
            (soft_cross_entropy(logits, targets), stats, detached)
        };
        let mut lv = self.backward_into(loss, &mut acc)?;
        if !subs.is_empty() {
            let teacher = softmax(detached, 1);
            let name = self.candidate.to_string();
            for sub in subs {
                let sbp = Candidate::new(bp.data, sub.arch).blueprint(bp.head.classes)?;
                let l = {
                    let t = self.params.view();
                    let st = slice_view(bp, &t, &sbp, &name)?;
                    let (l, _) = forward_input(&sbp, &st, x.clone(), BnMode::Batch);
                    soft_cross_entropy(l, teacher.clone())
                };
                lv += self.backward_into(l, &mut acc)?;
            }
        }
        let lr = self.cfg.lr_at(self.step);
        let grads = acc.grads();
        let params = std::mem::replace(&mut self.params, placeholder(&self.device));
        let params = self.optim.step(lr, params, grads);
        // Early steps average all batches seen so far (no bias towards the initial 0/1 statistics).
        let momentum = self.cfg.bn_momentum.max(1.0 / (self.step + 1) as f64);
        self.params = params.update_stats(stats, momentum);
        self.step += 1;
        Ok(lv)
    }

    /// Back-propagates one loss and adds its gradients to `acc`; returns the loss.
    /// A NaN or infinite loss is [`TrainError::Diverged`] before anything is changed.
    fn backward_into(&self, loss: Tensor<1>, acc: &mut GradientsAccumulator<NetParams>) -> Result<f32, TrainError> {
        let lv = to_vec(loss.clone())?.first().copied().unwrap_or(f32::NAN);
        if !lv.is_finite() {
            return Err(TrainError::Diverged { step: self.step, loss: lv });
        }
        acc.accumulate(&self.params, GradientsParams::from_grads(loss.backward(), &self.params));
        Ok(lv)
    }

    /// The trained network, on the plain CPU device.
    ///
    /// # Errors
    /// [`TrainError::Backend`] if the backend returns unexpected data.
    pub fn into_network(self) -> Result<Network, TrainError> {
        let params = NetParams::from_weights(&self.blueprint, &self.params.to_weights()?, &device())?;
        Ok(Network::from_params(self.candidate, self.blueprint, params))
    }
}

/// An empty parameter set, used while the real one is moved through the optimiser.
fn placeholder(device: &Device) -> NetParams {
    use burn::module::Param;
    NetParams {
        convs: Vec::new(),
        fc_weight: Param::from_tensor(Tensor::zeros([1, 1], device)),
        fc_bias: Param::from_tensor(Tensor::zeros([1], device)),
    }
}

/// Trains `net` for `cfg.steps` steps (fewer when `cfg.plateau` stops it) and
/// returns the result. Step `k` trains on data configuration `data[k % data.len()]`
/// (the network's own when `data` is empty).
pub(crate) fn run_training(
    net: &Network,
    source: &dyn BatchSource,
    cfg: &TrainConfig,
    training: &SupernetTraining,
    data: &[DataConfig],
    on_step: &mut dyn FnMut(&StepInfo),
) -> Result<(Network, TrainReport), TrainError> {
    let bp = net.blueprint();
    if source.classes() != bp.head.classes {
        return Err(TrainError::setting(
            "classes",
            source.classes(),
            format!("the data source has {} classes, the network {}", source.classes(), bp.head.classes),
        ));
    }
    let start = Instant::now();
    let mut trainer = Trainer::with_training(net, cfg, training)?;
    let own = [bp.data];
    let data = if data.is_empty() { &own[..] } else { data };
    let mut feeders: Vec<Feeder<'_>> = data
        .iter()
        .enumerate()
        .map(|(i, &d)| Feeder::new(source, d, cfg.batch_size, cfg.augment, cfg.seed.wrapping_add(i as u64)))
        .collect();
    let mut plateau = cfg.plateau.map(PlateauWatch::new);
    let mut images = 0u64;
    let mut losses = Vec::new();
    for step in 0..cfg.steps {
        let k = (step % data.len() as u64) as usize;
        let batch = feeders[k].next_batch()?;
        images += batch.n as u64;
        let loss = trainer.step_on(data[k], &batch)?;
        losses.push(loss);
        on_step(&StepInfo {
            step,
            steps: cfg.steps,
            loss,
            lr: cfg.lr_at(step),
            seconds: start.elapsed().as_secs_f64(),
        });
        if plateau.as_mut().is_some_and(|p| p.stalled(loss)) {
            break;
        }
    }
    let steps = losses.len() as u64;
    // the final loss: the mean over the last tenth of the steps run
    let tail = &losses[losses.len() - (losses.len() / 10 + 1).min(losses.len())..];
    let net = trainer.into_network()?;
    let final_loss = if tail.is_empty() { f32::NAN } else { tail.iter().sum::<f32>() / tail.len() as f32 };
    Ok((net, TrainReport { steps, images, final_loss, seconds: start.elapsed().as_secs_f64() }))
}

/// Stop training once the loss stops improving: the settings of [`TrainConfig::plateau`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Plateau {
    /// Steps between checks; the loss is smoothed over about as many steps.
    pub every: u64,
    /// Checks in a row without an improvement before training stops.
    pub patience: u32,
    /// Smallest relative fall of the smoothed loss that counts as an improvement.
    pub min_delta: f64,
}

impl Default for Plateau {
    fn default() -> Self {
        Self { every: 25, patience: 3, min_delta: 0.01 }
    }
}

/// Watches the smoothed loss for [`Plateau`].
struct PlateauWatch {
    cfg: Plateau,
    ema: Option<f64>,
    best: f64,
    seen: u64,
    bad: u32,
}

impl PlateauWatch {
    fn new(cfg: Plateau) -> Self {
        Self { cfg, ema: None, best: f64::INFINITY, seen: 0, bad: 0 }
    }

    /// Adds a step's loss; whether training should stop now.
    fn stalled(&mut self, loss: f32) -> bool {
        let every = self.cfg.every.max(1);
        let alpha = 2.0 / (every as f64 + 1.0);
        let l = f64::from(loss);
        let ema = self.ema.map_or(l, |e| e + alpha * (l - e));
        self.ema = Some(ema);
        self.seen += 1;
        if !self.seen.is_multiple_of(every) {
            return false;
        }
        if ema < self.best * (1.0 - self.cfg.min_delta) {
            self.best = ema;
            self.bad = 0;
        } else {
            self.bad += 1;
        }
        self.bad >= self.cfg.patience
    }
}

/// Trains a network (from scratch or from given weights) and returns it.
///
/// # Errors
/// [`TrainError::Diverged`] on a NaN/inf loss, [`TrainError::Setting`] for bad
/// settings, data errors as [`TrainError::BadBatch`] / [`TrainError::Source`].
pub fn train_network(
    net: Network,
    source: &dyn BatchSource,
    cfg: &TrainConfig,
    on_step: &mut dyn FnMut(&StepInfo),
) -> Result<(Network, TrainReport), TrainError> {
    run_training(&net, source, cfg, &SupernetTraining::Full, &[], on_step)
}

impl Supernet {
    /// Trains the supernet in place with the given training mode.
    ///
    /// # Errors
    /// As [`train_network`]; [`TrainError::NotASubnet`] when a sandwich width or
    /// depth exceeds the supernet. On error the supernet is unchanged.
    pub fn train(
        &mut self,
        source: &dyn BatchSource,
        cfg: &TrainConfig,
        training: &SupernetTraining,
        on_step: &mut dyn FnMut(&StepInfo),
    ) -> Result<TrainReport, TrainError> {
        self.train_on(source, cfg, training, &[], on_step)
    }

    /// Trains the supernet in place on several data configurations, in turn (step
    /// `k` on `data[k % data.len()]`; the supernet's own when `data` is empty). An
    /// rgb supernet trained on every configuration of a space serves all of them:
    /// [`Supernet::extract`] cuts candidates of any resolution and colour out of it,
    /// and their BatchNorm statistics are recalibrated at their own configuration
    /// when they are evaluated.
    ///
    /// # Errors
    /// As [`Supernet::train`]; [`TrainError::BadBatch`] for an rgb configuration on a
    /// grayscale supernet. On error the supernet is unchanged.
    pub fn train_on(
        &mut self,
        source: &dyn BatchSource,
        cfg: &TrainConfig,
        training: &SupernetTraining,
        data: &[DataConfig],
        on_step: &mut dyn FnMut(&StepInfo),
    ) -> Result<TrainReport, TrainError> {
        let (net, report) = run_training(&self.net, source, cfg, training, data, on_step)?;
        self.net = net;
        Ok(report)
    }
}
