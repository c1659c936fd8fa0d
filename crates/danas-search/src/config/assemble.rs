//! Assembly: what a checked search config builds. The translation of the settings
//! into the trainer's configs, the supernet evaluator, and the whole [`Search`]
//! (cost gate, feasibility oracle, optimiser, evaluator, local or shared study).
//! Everything is built from a [`CheckedConfig`], so the settings are checked once.

use std::path::Path;
use std::sync::Arc;

use danas_space::{CandidateSpace, SearchSpace};

use super::{CheckedConfig, SearchConfig, bad};
use crate::{Search, SearchError, StudyLocation, SupernetEvaluator};

impl SearchConfig {
    /// Opens the data source (cataloguing it; images are decoded lazily into the cache).
    ///
    /// # Errors
    /// [`SearchError::Data`] naming the source and what is wrong with it.
    pub fn open_data(&self) -> Result<Arc<danas_data::Dataset>, SearchError> {
        let mut options = danas_data::DataOptions::default();
        options.split_seed = self.seed;
        options.train_limit = self.train_limit;
        options.eval_limit = self.eval_limit;
        options.split_test = self.split_test;
        if let Some(dir) = &self.cache_dir {
            options.cache_dir = dir.clone();
        }
        danas_data::Dataset::from_spec(&self.data, options)
            .map(Arc::new)
            .map_err(|e| SearchError::Data { spec: self.data.clone(), source: Box::new(e) })
    }

    /// What the final stage's checkpoints record about the data ([`open_data`]'s
    /// source, split and limits, the class names); the data configuration, seed and
    /// export are filled in per checkpoint.
    ///
    /// [`open_data`]: SearchConfig::open_data
    pub fn data_record(&self, data: &danas_data::Dataset) -> danas_train::DataRecord {
        danas_train::DataRecord {
            source: self.data.clone(),
            split_seed: self.seed,
            train_limit: self.train_limit,
            eval_limit: self.eval_limit,
            split_test: self.split_test,
            data: danas_core::DataConfig::new(0, danas_core::Color::Rgb),
            class_names: danas_core::BatchSource::class_names(data),
            seed: self.seed,
            export: None,
        }
    }

    /// The supernet training settings.
    pub fn train_config(&self) -> danas_train::TrainConfig {
        danas_train::TrainConfig {
            steps: self.supernet.steps,
            batch_size: self.supernet.batch_size,
            lr: self.supernet.lr,
            warmup_steps: self.supernet.warmup_steps.min(self.supernet.steps),
            augment: self.supernet.augment,
            seed: self.seed,
            plateau: self.supernet.plateau.map(|p| danas_train::Plateau {
                every: p.every,
                patience: p.patience,
                min_delta: p.min_delta,
            }),
            ..danas_train::TrainConfig::default()
        }
    }

    /// The candidate evaluation settings.
    pub fn eval_config(&self) -> danas_train::EvalConfig {
        let e = &self.evaluation;
        danas_train::EvalConfig {
            calib_batches: e.calib_batches,
            calib_batch_size: e.batch_size,
            finetune: (e.finetune_steps > 0).then(|| danas_train::TrainConfig {
                steps: e.finetune_steps,
                batch_size: e.batch_size,
                lr: e.finetune_lr,
                augment: self.supernet.augment,
                seed: self.seed,
                ..danas_train::TrainConfig::default()
            }),
            eval_batch_size: e.batch_size.max(128),
            seed: self.seed,
        }
    }

    /// Builds the whole search into results directory `dir` ([`CheckedConfig::build`]).
    ///
    /// # Errors
    /// The first invalid setting, or a data error.
    pub fn build(&self, dir: &Path) -> Result<Search, SearchError> {
        self.check()?.build(dir, &StudyLocation::in_dir(dir))
    }

    /// As [`SearchConfig::build`], with the study in PostgreSQL when `storage` is given.
    ///
    /// # Errors
    /// The first invalid setting, a data error, or no connection to the database.
    #[cfg(feature = "postgres")]
    pub fn build_with_storage(&self, dir: &Path, storage: Option<&crate::Storage>) -> Result<Search, SearchError> {
        let at = storage.map_or_else(|| StudyLocation::in_dir(dir), |s| StudyLocation::Postgres(s.clone()));
        self.check()?.build(dir, &at)
    }

    /// The evaluator a worker of a study with these settings runs
    /// ([`CheckedConfig::worker_evaluator`]).
    ///
    /// # Errors
    /// The first invalid setting, or a data error.
    pub fn worker_evaluator(&self) -> Result<SupernetEvaluator, SearchError> {
        self.check()?.worker_evaluator()
    }
}

impl CheckedConfig {
    /// The supernet evaluator of these settings over `data`.
    fn evaluator(&self, space: Arc<dyn CandidateSpace>, data: Arc<danas_data::Dataset>) -> SupernetEvaluator {
        let s = &self.settings;
        let alphas = self.space.config().alphas.clone();
        let training = s.supernet.mode.training(alphas, s.supernet.sandwich_random);
        let record = s.data_record(data.as_ref());
        let source: Arc<dyn danas_core::BatchSource> = data;
        let final_train = danas_train::TrainConfig { steps: s.final_steps, plateau: None, ..s.train_config() };
        SupernetEvaluator::new(space, source, s.train_config(), training, s.eval_config())
            .data_record(Some(record))
            .final_training(final_train, s.final_from_supernet)
            .export(Some(danas_train::ExportConfig {
                calib_images: s.evaluation.int8_calib_images,
                seed: s.seed,
                softmax: true,
            }))
            .int8_evaluation(s.evaluation.int8)
            .shared_supernet(s.supernet.shared)
            .promotion_training(
                danas_train::TrainConfig {
                    batch_size: s.evaluation.batch_size,
                    lr: s.evaluation.finetune_lr,
                    augment: s.supernet.augment,
                    ..danas_train::TrainConfig::default()
                },
                danas_train::TrainConfig { plateau: None, ..s.train_config() },
            )
    }

    /// Builds the whole search into results directory `dir`, its study at `at`:
    /// opens the data, and wires the cost gate (also given to the optimiser as its
    /// feasibility oracle), the optimiser and the supernet evaluator. For a study
    /// shared in PostgreSQL, supernet training, evaluations and promotions are done
    /// by workers (`danas worker`, `scale::run_worker`) and only the final stage here.
    ///
    /// # Errors
    /// A data error, or no connection to the database.
    pub fn build(&self, dir: &Path, at: &StudyLocation) -> Result<Search, SearchError> {
        let s = &self.settings;
        let data = s.open_data()?;
        let classes = danas_core::BatchSource::classes(data.as_ref());
        let gate = Arc::new(self.gate(classes));
        let space: Arc<dyn CandidateSpace> = Arc::new(self.space.clone());
        let oracle = gate.oracle(Arc::clone(&space));
        let search_space: Arc<dyn SearchSpace> = Arc::clone(&space) as Arc<dyn SearchSpace>;
        let opt = s.optimizer.build(search_space, s.seed, Some(oracle));
        let local: Arc<dyn crate::Evaluator> = Arc::new(self.evaluator(Arc::clone(&space), data));
        let config = serde_json::to_value(s).map_err(|e| bad("config", "?", e.to_string()))?;
        let search = match at {
            #[cfg(feature = "postgres")]
            StudyLocation::Postgres(storage) => {
                // The space's data configurations: their supernets are trained up front.
                let remote = crate::scale::RemoteEvaluator::new(storage, local, s.supernet.shared)
                    .prefetch(space.data_configs());
                Search::new(Arc::clone(&space), opt, gate, Arc::new(remote))
            }
            StudyLocation::File(_) => Search::new(space, opt, gate, local),
        };
        Ok(search
            .study(at.clone())
            .budget(self.budget)
            .seed(s.seed)
            .parallel(s.parallel)
            .out_dir(dir)
            .final_top_k(s.final_top_k)
            .halving(s.selection.halving())
            .config(config))
    }

    /// The evaluator a worker of a study with these settings runs.
    ///
    /// # Errors
    /// A data error (the worker needs the data at the same path, or the same synthetic spec).
    pub fn worker_evaluator(&self) -> Result<SupernetEvaluator, SearchError> {
        let data = self.settings.open_data()?;
        let space: Arc<dyn CandidateSpace> = Arc::new(self.space.clone());
        Ok(self.evaluator(space, data))
    }
}
