//! The settings of a search, as a TOML file (`danas search --config FILE`) or
//! command-line flags. Every setting is validated before any work starts, and the
//! whole config is journaled so `danas resume DIR` rebuilds the same search.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use danas_core::{DataConfig, Precision};
use danas_cost::{Limits, Profile};
use danas_optim::OptimizerKind;
use danas_space::{CandidateSpace, MbSpace, SearchSpace};
use serde::{Deserialize, Serialize};

use crate::{Budget, CostModelGate, SearchError};

/// How each data configuration's supernet is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SupernetMode {
    /// The largest network only (the paper).
    Full,
    /// Each step trains the largest network, the smallest and two random
    /// sub-networks, the others distilled in place from the largest. The default:
    /// it ranks candidates across data configurations far better (Kendall τ 0.74
    /// against 0.00 for `full` on the synthetic set at cpu scale, issue 17).
    #[default]
    Sandwich,
}

impl std::fmt::Display for SupernetMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SupernetMode::Full => "full",
            SupernetMode::Sandwich => "sandwich",
        })
    }
}

impl std::str::FromStr for SupernetMode {
    type Err = SearchError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "full" => Ok(SupernetMode::Full),
            "sandwich" => Ok(SupernetMode::Sandwich),
            other => Err(bad("supernet.mode", other, "must be full or sandwich")),
        }
    }
}

/// Supernet training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupernetSettings {
    /// `full` (the paper: train the largest network only) or `sandwich`
    /// (`strategy` in configs written before danas 0.1's typed configs).
    #[serde(alias = "strategy")]
    pub mode: SupernetMode,
    /// Optimiser steps per supernet.
    pub steps: u64,
    /// Images per batch.
    pub batch_size: usize,
    /// Peak learning rate (Adam).
    pub lr: f64,
    /// Linear warm-up steps before the cosine decay.
    pub warmup_steps: u64,
    /// Training augmentation (random resized crop, horizontal flip) for supernet
    /// training, fine-tuning and the final stage. Off suits small, centred images
    /// such as Fashion-MNIST.
    pub augment: bool,
    /// One supernet for every data configuration of the space (elastic resolution,
    /// grayscale served by the rgb weights), trained on all of them in turn for
    /// `steps` × their number, instead of one supernet per configuration.
    pub shared: bool,
    /// Stop a supernet's training once its loss stops improving (`steps` is then
    /// the most it runs): every configuration trained to comparable convergence.
    pub plateau: Option<PlateauSettings>,
    /// Sandwich training: random sub-networks per step, next to the largest and the
    /// smallest (each step costs about the largest network's step plus these).
    pub sandwich_random: usize,
}

/// When a supernet's loss counts as converged (`[supernet.plateau]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlateauSettings {
    /// Steps between checks; the loss is smoothed over about as many steps.
    pub every: u64,
    /// Checks in a row without an improvement before training stops.
    pub patience: u32,
    /// Smallest relative fall of the smoothed loss that counts as an improvement.
    pub min_delta: f64,
}

impl Default for PlateauSettings {
    fn default() -> Self {
        Self { every: 25, patience: 3, min_delta: 0.01 }
    }
}

impl Default for SupernetSettings {
    fn default() -> Self {
        Self {
            mode: SupernetMode::Sandwich,
            steps: 150,
            batch_size: 64,
            lr: 3e-3,
            warmup_steps: 10,
            augment: true,
            shared: false,
            plateau: None,
            sandwich_random: 2,
        }
    }
}

/// How trials are selected: by the proxy alone, or by successive halving above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectionMode {
    /// The supernet's score ranks alone (the paper; the default: with sandwich
    /// supernets it ranks across data configurations at Kendall τ 0.66–0.76).
    #[default]
    Proxy,
    /// Successive halving: the best `fraction` of the proxy's trials fine-tuned,
    /// the best `top_k` of those retrained from scratch briefly. More robust picks,
    /// at a cost: on the demo search its rungs take longer than the search itself.
    Halving,
}

impl std::str::FromStr for SelectionMode {
    type Err = SearchError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "proxy" => Ok(SelectionMode::Proxy),
            "halving" => Ok(SelectionMode::Halving),
            other => Err(bad("selection.mode", other, "must be proxy or halving")),
        }
    }
}

/// Multi-fidelity selection (`[selection]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectionSettings {
    /// `proxy` or `halving`.
    pub mode: SelectionMode,
    /// Rung 1: fine-tuning steps of a copy of the supernet weights (0: no such rung).
    pub finetune_steps: u64,
    /// The best fraction of the proxy's trials fine-tuned (η = 1 / fraction).
    pub fraction: f64,
    /// Rung 2: training steps from scratch (0: no such rung).
    pub retrain_steps: u64,
    /// How many of the best trials of the rung below are retrained.
    pub top_k: usize,
}

impl Default for SelectionSettings {
    fn default() -> Self {
        Self { mode: SelectionMode::Proxy, finetune_steps: 40, fraction: 0.25, retrain_steps: 300, top_k: 3 }
    }
}

impl SelectionSettings {
    /// The rungs of successive halving (none in `proxy` mode).
    pub fn halving(&self) -> crate::Halving {
        use crate::{Promote, Promotion, Rung};
        let mut rungs = Vec::new();
        if self.mode == SelectionMode::Halving {
            if self.finetune_steps > 0 {
                rungs.push(Rung {
                    promotion: Promotion::Finetune { steps: self.finetune_steps },
                    promote: Promote::Fraction(self.fraction),
                });
            }
            if self.retrain_steps > 0 && self.top_k > 0 {
                rungs.push(Rung {
                    promotion: Promotion::Retrain { steps: self.retrain_steps },
                    promote: Promote::Top(self.top_k),
                });
            }
        }
        crate::Halving { rungs }
    }
}

/// Candidate evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSettings {
    /// Training batches used to recalibrate BatchNorm statistics of the extracted network.
    pub calib_batches: usize,
    /// Fine-tuning steps on a copy (0: none; the paper uses 100 = 10 × 10).
    pub finetune_steps: u64,
    /// Fine-tuning learning rate.
    pub finetune_lr: f64,
    /// Images per batch for calibration, fine-tuning and validation.
    pub batch_size: usize,
    /// Score candidates by the validation accuracy of their int8 model (quantised
    /// as for deployment, run by the int8 reference evaluator, which computes what
    /// TFLM computes) instead of the float network's. Slower.
    pub int8: bool,
    /// Training images the int8 activation ranges are calibrated on (for
    /// `int8 = true` and for the models the final stage exports).
    pub int8_calib_images: usize,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            calib_batches: 8,
            finetune_steps: 0,
            finetune_lr: 1e-4,
            batch_size: 64,
            int8: false,
            int8_calib_images: 128,
        }
    }
}

/// Everything a search needs. Defaults: the `demo` space on the built-in
/// `synthetic` data, under the paper's limits (512 KiB RAM, 2 MiB flash on an
/// STM32H743-class board), for 4 minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// A preset (`paper`, `extended`, `demo`) or the path of a TOML space file.
    pub space: String,
    /// The original code's grayscale base width (0.33), for faithful reproductions.
    pub mono_base_width: Option<f64>,
    /// Fix the data configuration (the hardware-aware baseline), e.g. `96,rgb`.
    pub fixed_data: Option<String>,
    /// Optimiser: `random`, `paper-ga`, `aging-evolution`, `nsga2`, `bayesian`
    /// (`strategy` in configs written before danas 0.1's typed configs).
    #[serde(alias = "strategy")]
    pub optimizer: OptimizerKind,
    /// Data source: `synthetic`, `idx:DIR`, `folder:DIR`, `wake-vision:DIR`.
    pub data: String,
    /// Use at most this many training images.
    pub train_limit: Option<usize>,
    /// Use at most this many validation (and test) images.
    pub eval_limit: Option<usize>,
    /// For a source without a test split: carve this fraction of the training
    /// images (stratified, seeded by `seed`) as the test split of the final stage.
    pub split_test: Option<f64>,
    /// Dataset cache directory (default `$DANAS_CACHE` or `.cache/danas`).
    pub cache_dir: Option<PathBuf>,
    /// A built-in MCU name (`danas mcus`) or the path of a TOML profile.
    pub mcu: String,
    /// RAM limit for the arena in KiB (default: the board's arena budget, see
    /// [`Profile::arena_budget`]; 512 on the default nucleo-h743, the paper's).
    pub ram_kib: Option<f64>,
    /// Flash limit in KiB (default: the board's flash; 2048 on the default nucleo-h743).
    pub flash_kib: Option<f64>,
    /// Optional latency limit in ms.
    pub latency_ms: Option<f64>,
    /// Deployed precision: `int8`, `f16` or `f32`.
    pub precision: Precision,
    /// Wall-clock budget, e.g. `30m` (supernet training counts); `none` for no
    /// wall-clock limit. When neither `budget` nor `max_trials` is set, the search
    /// stops after [`DEFAULT_BUDGET`] or [`DEFAULT_MAX_TRIALS`] trials, whichever
    /// comes first; when only one is set, only that one applies.
    pub budget: Option<String>,
    /// Largest number of evaluated candidates (see `budget`).
    pub max_trials: Option<u64>,
    /// Seed of everything.
    pub seed: u64,
    /// Evaluations in parallel.
    pub parallel: usize,
    /// Supernet training.
    pub supernet: SupernetSettings,
    /// Candidate evaluation.
    pub evaluation: EvalSettings,
    /// Multi-fidelity selection.
    pub selection: SelectionSettings,
    /// Retrain the top-k Pareto candidates after the search (from scratch unless
    /// `final_from_supernet`) and report their test metrics (0: skip).
    pub final_top_k: usize,
    /// Training steps of each final retraining.
    pub final_steps: u64,
    /// Start the final retraining from the candidate's supernet weights instead of
    /// from scratch.
    pub final_from_supernet: bool,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            space: "demo".into(),
            mono_base_width: None,
            fixed_data: None,
            optimizer: OptimizerKind::AgingEvolution,
            data: "synthetic:n=2000,size=48".into(),
            train_limit: None,
            eval_limit: None,
            split_test: None,
            cache_dir: None,
            mcu: "nucleo-h743".into(),
            ram_kib: None,
            flash_kib: None,
            latency_ms: None,
            precision: Precision::Int8,
            budget: None,
            max_trials: None,
            seed: 0,
            parallel: 2,
            supernet: SupernetSettings::default(),
            evaluation: EvalSettings::default(),
            selection: SelectionSettings::default(),
            final_top_k: 3,
            final_steps: 300,
            final_from_supernet: false,
        }
    }
}

/// The wall-clock budget when neither `budget` nor `max_trials` is set.
pub const DEFAULT_BUDGET: &str = "4m";
/// The trial budget when neither `budget` nor `max_trials` is set.
pub const DEFAULT_MAX_TRIALS: u64 = 60;

fn bad(field: &str, value: impl std::fmt::Display, reason: impl Into<String>) -> SearchError {
    SearchError::Config { field: field.into(), value: value.to_string(), reason: reason.into() }
}

impl SearchConfig {
    /// Parses a TOML config; unknown keys and wrong types are errors naming the key.
    ///
    /// # Errors
    /// [`SearchError::ConfigFile`] naming the file and the key.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self, SearchError> {
        toml::from_str(text).map_err(|e| SearchError::ConfigFile {
            path: origin.to_path_buf(),
            message: e.to_string().trim().to_string(),
        })
    }

    /// Reads a TOML config file. Relative paths in it (a space or profile file, a
    /// data directory, the cache directory) are taken relative to the file's folder
    /// when they exist there, else to the working directory.
    ///
    /// # Errors
    /// [`SearchError::ConfigFile`].
    pub fn from_toml_file(path: &Path) -> Result<Self, SearchError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SearchError::ConfigFile { path: path.to_path_buf(), message: format!("cannot read: {e}") })?;
        let mut c = Self::from_toml_str(&text, path)?;
        if let Some(dir) = path.parent() {
            c.resolve_paths(dir);
        }
        Ok(c)
    }

    /// Makes every relative path of the config absolute: first relative to `base`
    /// (when the path exists there), else to the working directory. The journaled
    /// config then rebuilds the same search from any directory (`danas resume`).
    pub fn resolve_paths(&mut self, base: &Path) {
        fn absolute(p: &Path, base: &Path) -> PathBuf {
            if p.is_absolute() {
                return p.to_path_buf();
            }
            let under_base = base.join(p);
            let chosen = if under_base.exists() { under_base } else { p.to_path_buf() };
            std::path::absolute(&chosen).unwrap_or(chosen)
        }
        let is_file_like = |s: &str| s.ends_with(".toml") || Path::new(s).is_file() || base.join(s).is_file();
        if MbSpace::by_name(&self.space).is_err() && is_file_like(&self.space) {
            self.space = absolute(Path::new(&self.space), base).display().to_string();
        }
        if !danas_cost::catalogue().iter().any(|p| p.name == self.mcu) && is_file_like(&self.mcu) {
            self.mcu = absolute(Path::new(&self.mcu), base).display().to_string();
        }
        if let Some((kind, rest)) = self.data.split_once(':') {
            let k = kind.trim().to_ascii_lowercase();
            let dir_kind = ["idx", "mnist", "folder", "dir", "vww", "wake-vision", "wake_vision", "wakevision", "wv"];
            if dir_kind.contains(&k.as_str()) && !rest.trim().is_empty() {
                self.data = format!("{kind}:{}", absolute(Path::new(rest.trim()), base).display());
            }
        }
        if let Some(c) = &self.cache_dir {
            self.cache_dir = Some(absolute(c, base));
        }
    }

    /// The search space, with `fixed_data` and `mono_base_width` applied.
    ///
    /// # Errors
    /// [`SearchError::Config`] naming `space`, `fixed_data` or `mono_base_width`.
    pub fn build_space(&self) -> Result<MbSpace, SearchError> {
        let mut space = match MbSpace::by_name(&self.space) {
            Ok(s) => s,
            Err(_) if Path::new(&self.space).is_file() => {
                MbSpace::from_toml_file(Path::new(&self.space)).map_err(|e| bad("space", &self.space, e.to_string()))?
            }
            Err(_) => {
                return Err(bad(
                    "space",
                    &self.space,
                    "neither a preset (paper, extended, demo) nor an existing TOML file",
                ));
            }
        };
        if let Some(m) = self.mono_base_width {
            let mut c = space.config().clone();
            c.mono_base_width = Some(m);
            space = MbSpace::new(c).map_err(|e| bad("mono_base_width", m, e.to_string()))?;
        }
        if let Some(fd) = &self.fixed_data {
            let d: DataConfig = fd.parse().map_err(|e: danas_core::CoreError| bad("fixed_data", fd, e.to_string()))?;
            space = space.with_fixed_data(d).map_err(|e| bad("fixed_data", fd, e.to_string()))?;
        }
        Ok(space)
    }

    /// The MCU profile.
    ///
    /// # Errors
    /// [`SearchError::Config`] naming `mcu` and listing the known names.
    pub fn build_profile(&self) -> Result<Profile, SearchError> {
        if let Some(p) = danas_cost::catalogue().into_iter().find(|p| p.name == self.mcu) {
            return Ok(p);
        }
        if Path::new(&self.mcu).is_file() {
            return Profile::from_toml_file(Path::new(&self.mcu)).map_err(|e| bad("mcu", &self.mcu, e.to_string()));
        }
        let known: Vec<String> = danas_cost::catalogue().into_iter().map(|p| p.name).collect();
        Err(bad("mcu", &self.mcu, format!("unknown MCU; known: {} (or a TOML profile file)", known.join(", "))))
    }

    /// The limits: the board's ([`Profile::limits`]: its arena budget, flash and
    /// latency limit) unless `ram_kib` / `flash_kib` / `latency_ms` say otherwise.
    ///
    /// # Errors
    /// [`SearchError::Config`] for a non-positive limit or an unknown board.
    pub fn limits(&self) -> Result<Limits, SearchError> {
        let board = self.build_profile()?.limits();
        let kib = |field: &str, v: Option<f64>, default: u64| -> Result<u64, SearchError> {
            let Some(v) = v else { return Ok(default) };
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(field, v, "must be a number of KiB > 0"));
            }
            Ok((v * 1024.0).round() as u64)
        };
        if let Some(l) = self.latency_ms
            && !(l.is_finite() && l > 0.0)
        {
            return Err(bad("latency_ms", l, "must be > 0"));
        }
        Ok(Limits {
            ram_bytes: kib("ram_kib", self.ram_kib, board.ram_bytes)?,
            flash_bytes: kib("flash_kib", self.flash_kib, board.flash_bytes)?,
            latency_ms: self.latency_ms.or(board.latency_ms),
        })
    }

    /// The budget.
    ///
    /// # Errors
    /// [`SearchError::Config`] for an unparsable duration, or no limit at all.
    pub fn budget(&self) -> Result<Budget, SearchError> {
        if self.budget.is_none() && self.max_trials.is_none() {
            let wall = Budget::parse_duration(DEFAULT_BUDGET)?;
            return Ok(Budget { wall: Some(wall), max_trials: Some(DEFAULT_MAX_TRIALS) });
        }
        let wall = match self.budget.as_deref() {
            Some(b) if b.trim().eq_ignore_ascii_case("none") => None,
            Some(b) => Some(Budget::parse_duration(b).map_err(|e| bad("budget", b, e.to_string()))?),
            None => None,
        };
        if self.max_trials == Some(0) {
            return Err(bad("max_trials", 0, "must be at least 1"));
        }
        let b = Budget { wall, max_trials: self.max_trials };
        if !b.is_bounded() {
            return Err(bad("budget", "none", "set a wall-clock budget (e.g. 30m) or max_trials, or both"));
        }
        Ok(b)
    }

    /// Checks every setting that needs no data (space, optimiser, MCU, limits,
    /// budget, parallelism, training settings) and keeps what the checks built.
    ///
    /// # Errors
    /// The first [`SearchError::Config`] found, naming the setting.
    pub fn check(&self) -> Result<CheckedConfig, SearchError> {
        let space = self.build_space()?;
        if space.cardinality() == 0 {
            return Err(bad("space", &self.space, "has no candidate"));
        }
        let profile = self.build_profile()?;
        let limits = self.limits()?;
        let budget = self.budget()?;
        if self.parallel == 0 || self.parallel > 64 {
            return Err(bad("parallel", self.parallel, "must be between 1 and 64"));
        }
        if self.supernet.mode == SupernetMode::Sandwich && self.mono_base_width.is_some() {
            return Err(bad(
                "supernet.mode",
                "sandwich",
                "cannot be combined with mono_base_width (set [supernet] mode = \"full\", the paper's training)",
            ));
        }
        if self.supernet.sandwich_random > 16 {
            return Err(bad("supernet.sandwich_random", self.supernet.sandwich_random, "must be at most 16"));
        }
        if self.supernet.steps == 0 {
            return Err(bad("supernet.steps", 0, "must be at least 1"));
        }
        if self.supernet.shared && self.mono_base_width.is_some() {
            return Err(bad("supernet.shared", true, "cannot be combined with mono_base_width"));
        }
        if let Some(p) = &self.supernet.plateau {
            if p.every == 0 || p.patience == 0 {
                return Err(bad("supernet.plateau", format!("{p:?}"), "every and patience must be at least 1"));
            }
            if !(p.min_delta.is_finite() && (0.0..1.0).contains(&p.min_delta)) {
                return Err(bad("supernet.plateau.min_delta", p.min_delta, "must be in [0, 1)"));
            }
        }
        let sel = &self.selection;
        if !(sel.fraction.is_finite() && sel.fraction > 0.0 && sel.fraction <= 1.0) {
            return Err(bad("selection.fraction", sel.fraction, "must be in (0, 1]"));
        }
        if sel.mode == SelectionMode::Halving && sel.finetune_steps == 0 && (sel.retrain_steps == 0 || sel.top_k == 0) {
            return Err(bad("selection", "halving", "needs finetune_steps, or retrain_steps and top_k"));
        }
        for (f, v) in [
            ("supernet.batch_size", self.supernet.batch_size),
            ("evaluation.batch_size", self.evaluation.batch_size),
            ("evaluation.int8_calib_images", self.evaluation.int8_calib_images),
        ] {
            if v == 0 {
                return Err(bad(f, v, "must be at least 1"));
            }
        }
        for (f, v) in [("supernet.lr", self.supernet.lr), ("evaluation.finetune_lr", self.evaluation.finetune_lr)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(f, v, "must be > 0"));
            }
        }
        if self.train_limit == Some(0) {
            return Err(bad("train_limit", 0, "must be at least 1"));
        }
        if self.eval_limit == Some(0) {
            return Err(bad("eval_limit", 0, "must be at least 1"));
        }
        if let Some(t) = self.split_test
            && !(t > 0.0 && t <= 0.5)
        {
            return Err(bad("split_test", t, "must be a fraction in (0, 0.5]"));
        }
        Ok(CheckedConfig { settings: self.clone(), space, profile, limits, budget })
    }

    /// Checks every setting that needs no data ([`SearchConfig::check`]).
    ///
    /// # Errors
    /// The first [`SearchError::Config`] found.
    pub fn validate(&self) -> Result<(), SearchError> {
        self.check().map(|_| ())
    }

    /// The space as a shared trait object.
    ///
    /// # Errors
    /// As [`SearchConfig::build_space`].
    pub fn space_arc(&self) -> Result<Arc<dyn CandidateSpace>, SearchError> {
        Ok(Arc::new(self.build_space()?))
    }
}

/// A [`SearchConfig`] whose every setting has been checked, with what the checks
/// built: the space, the board, the limits and the budget. The search is built
/// from it ([`SearchConfig::build`]) without parsing anything again.
#[derive(Debug, Clone)]
pub struct CheckedConfig {
    /// The settings as given (journaled, so that `danas resume` rebuilds the search).
    pub settings: SearchConfig,
    /// The search space, `fixed_data` and `mono_base_width` applied.
    pub space: MbSpace,
    /// The board.
    pub profile: Profile,
    /// The limits candidates must meet.
    pub limits: Limits,
    /// When the search stops.
    pub budget: Budget,
}

impl CheckedConfig {
    /// The cost gate for `classes`-way models.
    pub fn gate(&self, classes: u32) -> CostModelGate {
        CostModelGate::new(self.profile.clone(), self.limits, self.settings.precision, classes)
    }
}

#[cfg(feature = "train")]
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

    /// The supernet evaluator of these settings over `space` and `data`.
    fn evaluator(
        &self,
        space: Arc<dyn CandidateSpace>,
        data: Arc<danas_data::Dataset>,
        alphas: Vec<f64>,
    ) -> crate::SupernetEvaluator {
        let training =
            crate::fidelity::supernet_training_with(self.supernet.mode, alphas, self.supernet.sandwich_random);
        let record = self.data_record(data.as_ref());
        let source: Arc<dyn danas_core::BatchSource> = data;
        let final_train = danas_train::TrainConfig { steps: self.final_steps, plateau: None, ..self.train_config() };
        crate::SupernetEvaluator::new(space, source, self.train_config(), training, self.eval_config())
            .data_record(Some(record))
            .final_training(final_train, self.final_from_supernet)
            .export(Some(danas_train::ExportConfig {
                calib_images: self.evaluation.int8_calib_images,
                seed: self.seed,
                softmax: true,
            }))
            .int8_evaluation(self.evaluation.int8)
            .shared_supernet(self.supernet.shared)
            .promotion_training(
                danas_train::TrainConfig {
                    batch_size: self.evaluation.batch_size,
                    lr: self.evaluation.finetune_lr,
                    augment: self.supernet.augment,
                    ..danas_train::TrainConfig::default()
                },
                danas_train::TrainConfig { plateau: None, ..self.train_config() },
            )
    }

    /// Builds the whole search into results directory `dir`: validates every
    /// setting, opens the data, and wires the cost gate (also given to the
    /// optimiser as its feasibility oracle), the optimiser and the supernet evaluator.
    ///
    /// # Errors
    /// The first invalid setting, or a data error.
    pub fn build(&self, dir: &Path) -> Result<crate::Search, SearchError> {
        self.build_with_storage(dir, None)
    }

    /// As [`SearchConfig::build`], with the study in PostgreSQL when `storage` is
    /// given: supernet training, evaluations and promotions are then done by workers
    /// (`danas worker`, [`crate::scale::run_worker`]) and only the final stage here.
    ///
    /// # Errors
    /// The first invalid setting, a data error, or no connection to the database.
    pub fn build_with_storage(
        &self,
        dir: &Path,
        storage: Option<&crate::Storage>,
    ) -> Result<crate::Search, SearchError> {
        let checked = self.check()?;
        let data = self.open_data()?;
        let classes = danas_core::BatchSource::classes(data.as_ref());
        let alphas = checked.space.config().alphas.clone();
        let gate = Arc::new(checked.gate(classes));
        let space: Arc<dyn CandidateSpace> = Arc::new(checked.space);
        let oracle = gate.oracle(Arc::clone(&space));
        let search_space: Arc<dyn SearchSpace> = Arc::clone(&space) as Arc<dyn SearchSpace>;
        let opt = self.optimizer.build(search_space, self.seed, Some(oracle));
        let local: Arc<dyn crate::Evaluator> = Arc::new(self.evaluator(Arc::clone(&space), data, alphas));
        let config = serde_json::to_value(self).map_err(|e| bad("config", "?", e.to_string()))?;
        let search = match storage {
            Some(storage) => {
                let remote = crate::scale::RemoteEvaluator::new(storage, local, self.supernet.shared)
                    .prefetch(self.prefetch_configs(space.as_ref()));
                crate::Search::new(Arc::clone(&space), opt, gate, Arc::new(remote)).storage(storage.clone())
            }
            None => crate::Search::new(space, opt, gate, local),
        };
        Ok(search
            .budget(checked.budget)
            .seed(self.seed)
            .parallel(self.parallel)
            .out_dir(dir)
            .final_top_k(self.final_top_k)
            .halving(self.selection.halving())
            .config(config))
    }

    /// The data configurations a shared study trains supernets for up front: the
    /// space's (a fixed data configuration is the space's only one).
    fn prefetch_configs(&self, space: &dyn CandidateSpace) -> Vec<danas_core::DataConfig> {
        space.data_configs()
    }

    /// The evaluator a worker of a study with these settings runs.
    ///
    /// # Errors
    /// The first invalid setting, or a data error (the worker needs the data at
    /// the same path, or the same synthetic spec).
    pub fn worker_evaluator(&self) -> Result<crate::SupernetEvaluator, SearchError> {
        let checked = self.check()?;
        let data = self.open_data()?;
        let alphas = checked.space.config().alphas.clone();
        let space: Arc<dyn CandidateSpace> = Arc::new(checked.space);
        Ok(self.evaluator(space, data, alphas))
    }

    /// The settings of a PostgreSQL study, as journaled.
    ///
    /// # Errors
    /// [`SearchError::NotAStudy`], connection errors, or an invalid stored config.
    pub fn from_storage(storage: &crate::Storage) -> Result<Self, SearchError> {
        let journal = crate::Journal::open_postgres_read_only(storage)?;
        let value = journal.config()?;
        serde_json::from_value(value).map_err(|source| SearchError::Json {
            path: storage.describe().into(),
            what: "config".into(),
            source,
        })
    }

    /// Rebuilds the search of an existing study from its journaled config.
    ///
    /// # Errors
    /// [`SearchError::NotAStudy`], [`SearchError::Locked`], or an invalid stored config.
    pub fn from_study(dir: &Path) -> Result<Self, SearchError> {
        let path = dir.join(crate::STUDY_FILE);
        let journal = crate::Journal::open_read_only(&path)?;
        let value = journal.config()?;
        drop(journal);
        serde_json::from_value(value).map_err(|source| SearchError::Json { path, what: "config".into(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match SearchConfig::from_toml_str(text, Path::new("search.toml")).and_then(|c| c.validate().map(|_| c)) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert!(SearchConfig::default().validate().is_ok());
        let c = SearchConfig::from_toml_str("", Path::new("x.toml"));
        assert_eq!(c.ok(), Some(SearchConfig::default()));
    }

    #[test]
    fn bad_settings_name_field_and_value() {
        let e = err("mcu = \"nucleo-h9000\"");
        assert!(e.contains("mcu") && e.contains("nucleo-h9000") && e.contains("nucleo-h743"), "{e}");
        let e = err("max_trials = \"ten\"");
        assert!(e.contains("search.toml") && e.contains("max_trials"), "{e}");
        let e = err("budget = \"10 minutes\"");
        assert!(e.contains("budget"), "{e}");
        let e = err("strategy = \"annealing\"");
        assert!(e.contains("strategy") && e.contains("annealing"), "{e}");
        let e = err("ram_kib = -5");
        assert!(e.contains("ram_kib") && e.contains("-5"), "{e}");
        let e = err("fixed_data = \"96,purple\"");
        assert!(e.contains("fixed_data"), "{e}");
        let e = err("colour = 3");
        assert!(e.contains("colour"), "{e}");
        let e = err("[supernet]\nsteps = 0");
        assert!(e.contains("supernet.steps"), "{e}");
        let e = err("space = \"nope\"");
        assert!(e.contains("space") && e.contains("nope"), "{e}");
        let e = err("budget = \"30m\"\nmax_trials = 0");
        assert!(e.contains("max_trials"), "{e}");
    }

    #[test]
    fn typed_settings_and_their_old_names() {
        let c = SearchConfig::from_toml_str(
            "optimizer = \"nsga2\"\nprecision = \"f16\"\n[supernet]\nmode = \"sandwich\"",
            Path::new("x.toml"),
        );
        let c = c.map_err(|e| e.to_string());
        assert_eq!(
            c.as_ref().map(|c| (c.optimizer, c.precision, c.supernet.mode)),
            Ok((OptimizerKind::Nsga2, Precision::F16, SupernetMode::Sandwich))
        );
        // configs (and journaled studies) written before the rename still read
        let old = SearchConfig::from_toml_str(
            "strategy = \"random\"\n[supernet]\nstrategy = \"sandwich\"",
            Path::new("x.toml"),
        );
        let old = old.map_err(|e| e.to_string());
        assert_eq!(old.map(|c| (c.optimizer, c.supernet.mode)), Ok((OptimizerKind::Random, SupernetMode::Sandwich)));
        let e = err("[supernet]\nmode = \"half\"");
        assert!(e.contains("mode") && e.contains("half"), "{e}");
        let e = err("precision = \"int4\"");
        assert!(e.contains("precision") && e.contains("int4"), "{e}");
        let e = err("mono_base_width = 0.33\n[supernet]\nmode = \"sandwich\"");
        assert!(e.contains("supernet.mode"), "{e}");
        // the checked config keeps what the checks built
        let checked =
            SearchConfig { ram_kib: Some(64.0), ..SearchConfig::default() }.check().map_err(|e| e.to_string());
        assert_eq!(checked.map(|c| (c.limits.ram_bytes, c.space.cardinality() > 0)), Ok((65536, true)));
    }

    #[test]
    fn fixed_data_and_limits() {
        let c = SearchConfig {
            space: "paper".into(),
            fixed_data: Some("96,rgb".into()),
            ram_kib: Some(64.0),
            flash_kib: Some(256.0),
            ..SearchConfig::default()
        };
        let s = c.build_space().map_err(|e| e.to_string());
        assert_eq!(s.map(|s| s.cardinality()), Ok(2680));
        let l = c.limits().map_err(|e| e.to_string());
        assert_eq!(l.map(|l| (l.ram_bytes, l.flash_bytes)), Ok((65536, 262144)));
    }

    #[test]
    fn the_board_sets_the_limits_unless_overridden() {
        let nano = SearchConfig { mcu: "nano33-ble".into(), ..SearchConfig::default() };
        let l = nano.limits().map_err(|e| e.to_string());
        assert_eq!(l.map(|l| (l.ram_bytes, l.flash_bytes)), Ok((224 * 1024, 1024 * 1024)));
        let over = SearchConfig { ram_kib: Some(100.0), ..nano.clone() }.limits().map_err(|e| e.to_string());
        assert_eq!(over.map(|l| (l.ram_bytes, l.flash_bytes)), Ok((100 * 1024, 1024 * 1024)));
        // A board TOML is honoured the same way, its latency limit too.
        let dir = std::env::temp_dir().join(format!("danas-board-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = danas_cost::Profile::builtin("rpi-pico").unwrap();
        p.name = "my-board".into();
        p.arena_bytes = Some(100 * 1024);
        p.max_latency_ms = Some(250.0);
        let file = dir.join("board.toml");
        std::fs::write(&file, p.to_template()).unwrap();
        let c = SearchConfig { mcu: file.display().to_string(), ..SearchConfig::default() };
        let l = c.check().map(|c| c.limits).map_err(|e| e.to_string());
        assert_eq!(l, Ok(Limits { ram_bytes: 100 * 1024, flash_bytes: 2048 * 1024, latency_ms: Some(250.0) }));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
