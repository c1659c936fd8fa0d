//! What `danas search`, `danas resume` and `danas fidelity` share: the flags that
//! override a search config ([`Overrides`]), where a study lives ([`StudyArgs`]),
//! and which search errors are the user's to fix.

use std::path::{Path, PathBuf};

use danas_search::config::{PlateauSettings, SearchConfig, SelectionMode, SupernetMode};
use danas_search::{SearchError, StudyLocation};

use crate::InputError;

/// A search error as the CLI reports it: bad input (exit code 2) when it is the
/// user's to fix ([`SearchError::is_input`]), a failure of the work otherwise.
pub fn input(e: SearchError) -> anyhow::Error {
    if e.is_input() { anyhow::Error::new(InputError(e.to_string())) } else { anyhow::Error::new(e) }
}

/// Search settings from a TOML file and flags; each flag given overrides the file
/// (or the defaults).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Overrides {
    /// A TOML file with the search settings (see `docs/search.md`); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Search space: `paper`, `extended`, `demo` or a TOML space file.
    #[arg(long)]
    pub space: Option<String>,
    /// Optimiser: random, paper-ga, aging-evolution, nsga2, bayesian.
    #[arg(long, alias = "strategy")]
    pub optimizer: Option<danas_optim::OptimizerKind>,
    /// Data source: `synthetic`, `idx:DIR`, `folder:DIR`, `wake-vision:DIR`.
    #[arg(long)]
    pub data: Option<String>,
    /// MCU profile name (`danas mcus`) or TOML file.
    #[arg(long)]
    pub mcu: Option<String>,
    /// RAM (arena) limit in KiB.
    #[arg(long)]
    pub ram_kib: Option<f64>,
    /// Flash limit in KiB.
    #[arg(long)]
    pub flash_kib: Option<f64>,
    /// Latency limit in ms.
    #[arg(long)]
    pub latency_ms: Option<f64>,
    /// Wall-clock budget such as `30m` or `2h` (supernet training counts).
    #[arg(long)]
    pub budget: Option<String>,
    /// Largest number of evaluated candidates.
    #[arg(long)]
    pub max_trials: Option<u64>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Evaluations (for `danas fidelity`: candidates trained or evaluated) in parallel.
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Fix the data configuration (the hardware-aware baseline), e.g. `96,rgb`.
    #[arg(long)]
    pub fixed_data: Option<String>,
    /// Optimiser steps per supernet.
    #[arg(long)]
    pub supernet_steps: Option<u64>,
    /// Fine-tuning steps per candidate (0: none).
    #[arg(long)]
    pub finetune_steps: Option<u64>,
    /// Use at most this many training images.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use at most this many validation images.
    #[arg(long)]
    pub eval_limit: Option<usize>,
    /// For a data source without a test split: carve this fraction of the training
    /// images (stratified, seeded) as the test split of the final stage, e.g. 0.1.
    #[arg(long, value_name = "FRACTION")]
    pub split_test: Option<f64>,
    /// After the search, retrain the k most accurate Pareto candidates and report their test metrics.
    #[arg(long)]
    pub final_top_k: Option<usize>,
    /// Training steps of each final retraining.
    #[arg(long)]
    pub final_steps: Option<u64>,
    /// No training augmentation (random crop, flip): for small centred images such as Fashion-MNIST.
    #[arg(long)]
    pub no_augment: bool,
    /// Score candidates by the accuracy of their int8 model (as deployed) instead of the float network's.
    #[arg(long)]
    pub int8_eval: bool,
    /// Supernet training: sandwich (the default: ranks across data configurations) or full (the paper).
    #[arg(long, alias = "supernet-strategy")]
    pub supernet_mode: Option<SupernetMode>,
    /// One supernet for every data configuration, trained on all of them in turn.
    #[arg(long)]
    pub shared_supernet: Option<bool>,
    /// Stop each supernet's training once its loss stops improving (default plateau
    /// settings; `--supernet-steps` is then the most it runs).
    #[arg(long)]
    pub plateau: bool,
    /// Selection: `proxy` (the default: the supernet's score alone, as the paper) or `halving` (successive halving above it).
    #[arg(long)]
    pub selection: Option<SelectionMode>,
}

/// Sets `$field` to the flag's value when the flag is given.
macro_rules! set {
    ($($flag:expr => $field:expr),* $(,)?) => {
        $(if let Some(v) = &$flag { $field = v.clone().into(); })*
    };
}

impl Overrides {
    /// The settings: the config file (or the defaults) with every given flag applied,
    /// paths resolved against the working directory.
    ///
    /// # Errors
    /// The config file's errors, as bad input.
    pub fn settings(&self) -> anyhow::Result<SearchConfig> {
        let mut c = match &self.config {
            Some(p) => SearchConfig::from_toml_file(p).map_err(input)?,
            None => SearchConfig::default(),
        };
        self.apply(&mut c);
        // Flags are relative to the working directory; the journal keeps absolute paths.
        c.resolve_paths(Path::new("."));
        Ok(c)
    }

    /// Applies every given flag onto `c`.
    pub fn apply(&self, c: &mut SearchConfig) {
        set!(self.space => c.space, self.data => c.data, self.mcu => c.mcu);
        set!(self.optimizer => c.optimizer, self.seed => c.seed, self.parallel => c.parallel);
        set!(self.ram_kib => c.ram_kib, self.flash_kib => c.flash_kib, self.latency_ms => c.latency_ms);
        set!(self.budget => c.budget, self.max_trials => c.max_trials, self.fixed_data => c.fixed_data);
        set!(self.supernet_steps => c.supernet.steps, self.supernet_mode => c.supernet.mode);
        set!(self.shared_supernet => c.supernet.shared, self.selection => c.selection.mode);
        set!(self.finetune_steps => c.evaluation.finetune_steps);
        set!(self.final_top_k => c.final_top_k, self.final_steps => c.final_steps);
        set!(self.train_limit => c.train_limit, self.eval_limit => c.eval_limit);
        if self.split_test.is_some() {
            c.split_test = self.split_test;
        }
        if self.no_augment {
            c.supernet.augment = false;
        }
        if self.int8_eval {
            c.evaluation.int8 = true;
        }
        if self.plateau && c.supernet.plateau.is_none() {
            c.supernet.plateau = Some(PlateauSettings::default());
        }
    }

    /// The first flag given that would make a resumed study a different study (all
    /// but `--budget`, `--max-trials`, `--final-top-k` and `--final-steps`).
    pub fn changes_the_study(&self) -> Option<&'static str> {
        let given = [
            ("--config", self.config.is_some()),
            ("--space", self.space.is_some()),
            ("--optimizer", self.optimizer.is_some()),
            ("--data", self.data.is_some()),
            ("--mcu", self.mcu.is_some()),
            ("--ram-kib", self.ram_kib.is_some()),
            ("--flash-kib", self.flash_kib.is_some()),
            ("--latency-ms", self.latency_ms.is_some()),
            ("--seed", self.seed.is_some()),
            ("--parallel", self.parallel.is_some()),
            ("--fixed-data", self.fixed_data.is_some()),
            ("--supernet-steps", self.supernet_steps.is_some()),
            ("--finetune-steps", self.finetune_steps.is_some()),
            ("--train-limit", self.train_limit.is_some()),
            ("--eval-limit", self.eval_limit.is_some()),
            ("--split-test", self.split_test.is_some()),
            ("--no-augment", self.no_augment),
            ("--int8-eval", self.int8_eval),
            ("--supernet-mode", self.supernet_mode.is_some()),
            ("--shared-supernet", self.shared_supernet.is_some()),
            ("--plateau", self.plateau),
            ("--selection", self.selection.is_some()),
        ];
        given.into_iter().find(|(_, on)| *on).map(|(flag, _)| flag)
    }
}

/// Where a study lives (`--storage postgres://… --study NAME`); without them the
/// study is `DIR/study.sqlite`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StudyArgs {
    /// A PostgreSQL database (`postgres://user@host[:port]/db`) holding the study, so that
    /// workers (`danas worker`) on any machine do its training and evaluations.
    #[arg(long, requires = "study")]
    pub storage: Option<String>,
    /// The study's name in the database (a-z, 0-9, _).
    #[arg(long, requires = "storage")]
    pub study: Option<String>,
}

impl StudyArgs {
    /// The PostgreSQL study, when both flags are given.
    ///
    /// # Errors
    /// An unusable URL or study name, as bad input.
    pub fn storage(&self) -> anyhow::Result<Option<danas_search::Storage>> {
        match (&self.storage, &self.study) {
            (Some(url), Some(study)) => Ok(Some(danas_search::Storage::new(url, study).map_err(input)?)),
            _ => Ok(None),
        }
    }

    /// Where the study of results directory `dir` lives.
    ///
    /// # Errors
    /// As [`StudyArgs::storage`].
    pub fn location(&self, dir: &Path) -> anyhow::Result<StudyLocation> {
        Ok(self.storage()?.map_or_else(|| StudyLocation::in_dir(dir), StudyLocation::Postgres))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_flags_override_the_settings_and_the_rest_keep_theirs() {
        let o = Overrides {
            space: Some("demo".into()),
            ram_kib: Some(64.0),
            seed: Some(7),
            supernet_steps: Some(3),
            no_augment: true,
            plateau: true,
            ..Overrides::default()
        };
        let mut c = SearchConfig::default();
        o.apply(&mut c);
        let d = SearchConfig::default();
        assert_eq!((c.space.as_str(), c.ram_kib, c.seed, c.supernet.steps), ("demo", Some(64.0), 7, 3));
        assert!(!c.supernet.augment && c.supernet.plateau.is_some());
        assert_eq!((c.mcu, c.flash_kib, c.budget, c.parallel), (d.mcu, d.flash_kib, d.budget, d.parallel));
        assert_eq!(o.changes_the_study(), Some("--space"));
        let more = Overrides { budget: Some("5m".into()), max_trials: Some(3), ..Overrides::default() };
        assert_eq!(more.changes_the_study(), None);
    }
}
