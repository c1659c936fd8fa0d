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

pub use crate::supernet::{PlateauSettings, SupernetMode, SupernetSettings};
use crate::{Budget, CostModelGate, Journal, SearchError, StudyLocation};

#[cfg(feature = "train")]
mod assemble;

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
        crate::sanity::check_absurd(self)?;
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
/// from it (`CheckedConfig::build`, feature `train`) without checking anything again.
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

/// Reading the settings back from a study.
impl SearchConfig {
    /// The settings of the study at `at`, as journaled (read without its lock).
    ///
    /// # Errors
    /// [`SearchError::NotAStudy`], connection errors, or an invalid stored config.
    pub fn from_location(at: &StudyLocation) -> Result<Self, SearchError> {
        let value = Journal::config_at(at)?;
        serde_json::from_value(value).map_err(|source| SearchError::Json {
            path: at.describe().into(),
            what: "config".into(),
            source,
        })
    }

    /// The settings of the study in results directory `dir` ([`SearchConfig::from_location`]).
    ///
    /// # Errors
    /// [`SearchError::NotAStudy`], or an invalid stored config.
    pub fn from_study(dir: &Path) -> Result<Self, SearchError> {
        Self::from_location(&StudyLocation::in_dir(dir))
    }

    /// The settings of a PostgreSQL study ([`SearchConfig::from_location`]).
    ///
    /// # Errors
    /// [`SearchError::NotAStudy`], connection errors, or an invalid stored config.
    #[cfg(feature = "postgres")]
    pub fn from_storage(storage: &crate::Storage) -> Result<Self, SearchError> {
        Self::from_location(&StudyLocation::Postgres(storage.clone()))
    }
}

#[cfg(test)]
mod tests;
