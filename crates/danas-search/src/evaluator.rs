//! The supernet evaluator: one weight-sharing supernet per data configuration (or
//! one shared by all of them), trained lazily on first use, persisted under
//! `DIR/supernets/`, reused after a restart; candidates are scored on the
//! validation split from an extracted copy, and again at higher fidelities when
//! successive halving promotes them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use danas_core::{BatchSource, Candidate, DataConfig};
use danas_optim::Metrics;
use danas_space::CandidateSpace;
use danas_train::{EvalConfig, ExportConfig, StoragePrecision, Supernet, SupernetTraining, TrainConfig};

use crate::{EvalError, Evaluator, Finalized, Prepared, Promotion};

/// Scores candidates with supernet weights (the paper's accelerated evaluation).
pub struct SupernetEvaluator {
    space: Arc<dyn CandidateSpace>,
    source: Arc<dyn BatchSource>,
    train: TrainConfig,
    training: SupernetTraining,
    eval: EvalConfig,
    storage: StoragePrecision,
    final_train: TrainConfig,
    final_from_supernet: bool,
    export: Option<ExportConfig>,
    int8_eval: bool,
    shared: bool,
    /// Held while the shared supernet is trained or loaded, so that it happens once.
    shared_lock: Mutex<()>,
    finetune: TrainConfig,
    retrain: TrainConfig,
    supernets: RwLock<BTreeMap<DataConfig, Arc<Supernet>>>,
    /// What final checkpoints record about their data (see [`SupernetEvaluator::data_record`]).
    data_record: Option<danas_train::DataRecord>,
}

impl std::fmt::Debug for SupernetEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupernetEvaluator")
            .field("space", &self.space.name())
            .field("train", &self.train)
            .field("training", &self.training)
            .field("eval", &self.eval)
            .finish_non_exhaustive()
    }
}

impl SupernetEvaluator {
    /// An evaluator for `space` on `source`: supernets are trained with `train` and
    /// `training`, candidates scored with `eval`.
    pub fn new(
        space: Arc<dyn CandidateSpace>,
        source: Arc<dyn BatchSource>,
        train: TrainConfig,
        training: SupernetTraining,
        eval: EvalConfig,
    ) -> Self {
        Self {
            space,
            source,
            train,
            training,
            eval,
            storage: StoragePrecision::F16,
            final_train: TrainConfig::default(),
            final_from_supernet: false,
            export: Some(ExportConfig::default()),
            int8_eval: false,
            shared: false,
            shared_lock: Mutex::new(()),
            finetune: TrainConfig { lr: 1e-4, ..TrainConfig::default() },
            retrain: TrainConfig::default(),
            supernets: RwLock::new(BTreeMap::new()),
            data_record: None,
        }
    }

    /// One supernet for every data configuration of the space: built at the largest
    /// resolution (rgb when the space has rgb), trained on every configuration in
    /// turn for `train.steps` × their number (the compute of separate supernets),
    /// serving all of them (default: one supernet per configuration).
    pub fn shared_supernet(mut self, on: bool) -> Self {
        self.shared = on;
        self
    }

    /// The training settings of successive halving's rungs: `finetune` for
    /// [`Promotion::Finetune`] (a copy of the supernet weights), `retrain` for
    /// [`Promotion::Retrain`] (from scratch); their steps come from the promotion.
    pub fn promotion_training(mut self, finetune: TrainConfig, retrain: TrainConfig) -> Self {
        self.finetune = finetune;
        self.retrain = retrain;
        self
    }

    /// Stores supernet checkpoints at this precision (default f16, half the size).
    pub fn storage(mut self, p: StoragePrecision) -> Self {
        self.storage = p;
        self
    }

    /// Training settings of the final stage (default: [`TrainConfig::default`], from
    /// scratch); with `from_supernet`, it starts from the candidate's supernet
    /// weights (loaded from `DIR/supernets/` when not in memory, e.g. after a resume).
    pub fn final_training(mut self, cfg: TrainConfig, from_supernet: bool) -> Self {
        self.final_train = cfg;
        self.final_from_supernet = from_supernet;
        self
    }

    /// How the final stage exports each retrained network as a deployable int8 model
    /// (default: [`ExportConfig::default`]; `None`: no export).
    pub fn export(mut self, cfg: Option<ExportConfig>) -> Self {
        self.export = cfg;
        self
    }

    /// What the final stage's checkpoints record about their data (source spec, split,
    /// limits, class names; the candidate's data configuration, the seed and the
    /// export settings are filled in per checkpoint). With a record, final networks are
    /// saved in `f32`, so that `danas export CKPT` reproduces their int8 model byte
    /// for byte; without one (the default) in the storage precision, unrecorded.
    pub fn data_record(mut self, record: Option<danas_train::DataRecord>) -> Self {
        self.data_record = record;
        self
    }

    /// Score candidates by the accuracy of their int8 model (quantised with the
    /// export settings, run by the int8 reference evaluator) instead of the float
    /// network's: `val_accuracy` is then the int8 accuracy, and the float one is kept
    /// as `float_val_accuracy`. Slower; off by default.
    pub fn int8_evaluation(mut self, on: bool) -> Self {
        self.int8_eval = on;
        self
    }

    /// Where a data configuration's supernet checkpoint lives, relative to the results directory.
    fn checkpoint_path(&self, data: DataConfig) -> String {
        if self.shared { "supernets/shared.ckpt".into() } else { format!("supernets/{}.ckpt", data.key()) }
    }

    /// The data configuration the supernet serving `data` is built at.
    fn supernet_data(&self, data: DataConfig) -> DataConfig {
        if self.shared { crate::supernet::shared_data_config(&self.space.data_configs()).unwrap_or(data) } else { data }
    }

    /// Makes `sn` the supernet of `data` (of every data configuration when shared).
    fn keep(&self, data: DataConfig, sn: Arc<Supernet>) {
        if let Ok(mut m) = self.supernets.write() {
            if self.shared {
                for d in self.space.data_configs() {
                    m.insert(d, Arc::clone(&sn));
                }
            }
            m.insert(data, sn);
        }
    }

    fn get(&self, data: DataConfig) -> Option<Arc<Supernet>> {
        self.supernets.read().ok().and_then(|m| m.get(&data).cloned())
    }
}

/// Validation metrics of a trained network, under the names the search journals.
pub fn metrics_of(m: &danas_train::Metrics, params: u64) -> Metrics {
    let mut out = Metrics::new()
        .with("val_accuracy", m.accuracy)
        .with("val_balanced_accuracy", m.balanced_accuracy)
        .with("val_loss", m.loss)
        .with("params", params as f64);
    let (p, r, f1) = match m.positive {
        Some(c) => (c.precision, c.recall, c.f1),
        None => {
            let n = m.per_class.len().max(1) as f64;
            let sum = |f: fn(&danas_train::ClassMetrics) -> f64| m.per_class.iter().map(f).sum::<f64>() / n;
            (sum(|c| c.precision), sum(|c| c.recall), sum(|c| c.f1))
        }
    };
    out.insert("val_precision", p);
    out.insert("val_recall", r);
    out.insert("val_f1", f1);
    out
}

impl Evaluator for SupernetEvaluator {
    /// Supernets are seeded per data configuration: training one early changes nothing.
    fn prepare_ahead(&self) -> bool {
        true
    }

    fn prepare(
        &self,
        data: DataConfig,
        dir: &Path,
        existing: Option<&str>,
        status: &dyn Fn(&str),
    ) -> Result<Prepared, EvalError> {
        let rel = self.checkpoint_path(data);
        // one thread trains or loads a shared supernet; the others wait and find it
        let _guard = if self.shared { self.shared_lock.lock().ok() } else { None };
        if self.get(data).is_some() {
            return Ok(Prepared { checkpoint: Some(existing.map_or(rel, str::to_string)), seconds: 0.0 });
        }
        let start = std::time::Instant::now();
        if let Some(rel) = existing {
            let path = dir.join(rel);
            if path.is_file() {
                status(&format!("loading supernet {data} from {}", path.display()));
                self.keep(data, Arc::new(Supernet::load(&path)?));
                return Ok(Prepared { checkpoint: Some(rel.to_string()), seconds: start.elapsed().as_secs_f64() });
            }
        }
        let at = self.supernet_data(data);
        let on = if self.shared { self.space.data_configs() } else { vec![data] };
        let total = self.train.steps * on.len().max(1) as u64;
        let label = if self.shared {
            format!("training the shared supernet ({at})")
        } else {
            format!("training supernet {data}")
        };
        let source = self.source.as_ref();
        let (sn, _) =
            crate::supernet::train(self.space.as_ref(), at, &on, source, &self.train, &self.training, &mut |s| {
                if s.step.is_multiple_of(10) || s.step + 1 == total {
                    status(&format!("{label}: step {}/{total}, loss {:.3}", s.step + 1, s.loss));
                }
            })?;
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        sn.save(&path, self.storage)?;
        self.keep(data, Arc::new(sn));
        Ok(Prepared { checkpoint: Some(rel), seconds: start.elapsed().as_secs_f64() })
    }

    fn evaluate(&self, cand: &Candidate, seed: u64) -> Result<Metrics, EvalError> {
        let sn = self.get(cand.data).ok_or_else(|| format!("no supernet prepared for {}", cand.data))?;
        let mut cfg = self.eval.clone();
        cfg.seed = seed;
        if let Some(ft) = cfg.finetune.as_mut() {
            ft.seed = seed;
        }
        if !self.int8_eval {
            let e = sn.evaluate(cand, self.source.as_ref(), &cfg)?;
            return Ok(metrics_of(&e.metrics, e.params));
        }
        let (net, e) = sn.evaluate_keep(cand, self.source.as_ref(), &cfg)?;
        let mut m = metrics_of(&e.metrics, e.params);
        let export = ExportConfig { seed, ..self.export.clone().unwrap_or_default() };
        let exported = danas_train::export_int8(&net, self.source.as_ref(), &export)?;
        let q =
            danas_train::evaluate_int8(&exported.int8, self.source.as_ref(), cand.data, danas_core::Split::Validation)?;
        m.insert("float_val_accuracy", e.metrics.accuracy);
        m.insert("val_accuracy", q.accuracy);
        m.insert("val_balanced_accuracy", q.balanced_accuracy);
        m.insert("val_loss", q.loss);
        Ok(m)
    }

    /// Fine-tunes a copy of the candidate's supernet weights, or trains it from
    /// scratch, for the promotion's steps; validation metrics.
    fn promote(&self, cand: &Candidate, promotion: Promotion, seed: u64) -> Result<Option<Metrics>, EvalError> {
        let e = match promotion {
            Promotion::Finetune { steps } => {
                let sn = self.get(cand.data).ok_or_else(|| format!("no supernet prepared for {}", cand.data))?;
                let finetune = TrainConfig { steps, seed, ..self.finetune.clone() };
                let cfg = EvalConfig { finetune: Some(finetune), seed, ..self.eval.clone() };
                sn.evaluate(cand, self.source.as_ref(), &cfg)?
            }
            Promotion::Retrain { steps } => {
                let train = TrainConfig { steps, seed, plateau: None, ..self.retrain.clone() };
                let cfg = EvalConfig { finetune: None, seed, ..self.eval.clone() };
                danas_train::evaluate_from_scratch(cand, self.source.as_ref(), &train, &cfg)?
            }
        };
        Ok(Some(metrics_of(&e.metrics, e.params)))
    }

    /// Trains the candidate with the final-stage settings (from scratch, or from its
    /// supernet weights when so configured), reports validation and test metrics,
    /// and saves the network under `dir/final/`.
    fn class_names(&self) -> Vec<String> {
        self.source.class_names()
    }

    fn finalize(&self, cand: &Candidate, seed: u64, dir: &Path, name: &str) -> Result<Option<Finalized>, EvalError> {
        let sn = if self.final_from_supernet {
            match self.get(cand.data) {
                Some(sn) => Some(sn),
                None => Some(Arc::new(Supernet::load(dir.join(self.checkpoint_path(cand.data)))?)),
            }
        } else {
            None
        };
        let mut cfg = self.final_train.clone();
        cfg.seed = seed;
        let (net, rep) = danas_train::final_train(cand, self.source.as_ref(), &cfg, sn.as_deref(), true, &mut |_| {})?;
        let rel = format!("final/{name}.ckpt");
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match &self.data_record {
            // Exact weights, so that `danas export CKPT` reproduces the model below.
            Some(r) => net.save_with_record(
                &path,
                StoragePrecision::F32,
                &danas_train::DataRecord {
                    data: cand.data,
                    seed,
                    export: self.export.clone().map(|e| ExportConfig { seed, ..e }),
                    ..r.clone()
                },
            )?,
            None => net.save(&path, self.storage)?,
        }
        let mut m = Metrics::new()
            .with("final_val_accuracy", rep.validation.accuracy)
            .with("final_train_seconds", rep.training.seconds);
        if let Some(t) = &rep.test {
            m.insert("test_accuracy", t.accuracy);
            m.insert("test_balanced_accuracy", t.balanced_accuracy);
            m.insert("test_loss", t.loss);
        }
        let (mut int8, mut calib_images) = (None, 0);
        if let Some(export) = &self.export {
            let export = ExportConfig { seed, ..export.clone() };
            let exported = danas_train::export_int8(&net, self.source.as_ref(), &export)?;
            for (split, key) in
                [(danas_core::Split::Validation, "int8_val_accuracy"), (danas_core::Split::Test, "int8_test_accuracy")]
            {
                let q = danas_train::evaluate_int8(&exported.int8, self.source.as_ref(), cand.data, split)?;
                m.insert(key, q.accuracy);
            }
            calib_images = exported.calib_images;
            int8 = Some(exported.int8);
        }
        Ok(Some(Finalized { metrics: m, checkpoint: Some(rel), int8, calib_images }))
    }
}
