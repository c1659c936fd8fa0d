use std::path::PathBuf;

use thiserror::Error;

/// Errors of the search crate.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The file exists but is not a danas study.
    #[error("{}: not a danas study ({reason})", path.display())]
    NotAStudy {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// Another process holds the study.
    #[error("{}: the study is in use by another danas process (lock file {})", path.display(), lock.display())]
    Locked {
        /// The study file.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// A study already exists where a new one was to be created.
    #[error("{}: a study already exists here; use `danas resume` or choose another --out", path.display())]
    Exists {
        /// The study file.
        path: PathBuf,
    },
    /// A budget string could not be parsed.
    #[error("invalid budget {input:?}: {reason}")]
    Budget {
        /// The input.
        input: String,
        /// Why.
        reason: String,
    },
    /// A search setting is invalid.
    #[error("invalid setting {field} = {value}: {reason}")]
    Config {
        /// The setting, e.g. `mcu` or `supernet.steps`.
        field: String,
        /// The value given.
        value: String,
        /// The rule broken.
        reason: String,
    },
    /// A config file could not be read or parsed.
    #[error("{}: {message}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// The data source could not be opened.
    #[error("data {spec}: {source}")]
    Data {
        /// The data source as given (`idx:DIR`, …).
        spec: String,
        /// What is wrong with it (danas-data's error).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No candidate of the space meets the limits.
    #[error("{}", crate::error::unreachable_message(*min_ram_bytes, *min_flash_bytes, *min_latency_ms, limits.as_ref(), *runtime_flash_bytes))]
    Unreachable {
        /// Smallest arena bytes seen.
        min_ram_bytes: f64,
        /// Smallest flash bytes seen.
        min_flash_bytes: f64,
        /// Smallest latency seen, when the cost model estimates it.
        min_latency_ms: Option<f64>,
        /// The limits checked, when the gate reports them.
        limits: Option<danas_core::Limits>,
        /// Flash the runtime takes on the board, included in every flash figure.
        runtime_flash_bytes: Option<u64>,
    },
    /// The final stage could not train, test or export a chosen system. The search's
    /// results (journal, report, Pareto set) are written; its `models/` are not.
    #[error("the final stage failed for {failed} of {tried} chosen systems: {reason}\n{fix}")]
    FinalStage {
        /// Systems that failed.
        failed: usize,
        /// Systems the final stage tried.
        tried: usize,
        /// The first failure.
        reason: String,
        /// What to do about it.
        fix: String,
    },
    /// The optimiser failed.
    #[error("optimiser ({during}): {source}")]
    Optimizer {
        /// What the loop asked of it (`ask`, `tell`, `replay of the journal`).
        during: &'static str,
        /// Its error.
        source: danas_optim::OptimError,
    },
    /// A genome (proposed by the optimiser, or sampled) is not a candidate of the space.
    #[error("invalid genome: {0}")]
    Genome(#[source] danas_space::SpaceError),
    /// A trial id the journal does not know.
    #[error("unknown trial {0}")]
    UnknownTrial(u64),
    /// A database error, with the study file.
    #[error("{}: database error: {source}", path.display())]
    Db {
        /// The study file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A PostgreSQL error, with the study (`postgres://…` and its name).
    #[cfg(feature = "postgres")]
    #[error("{study}: PostgreSQL error: {source}")]
    Postgres {
        /// The storage URL (password removed) and study.
        study: String,
        /// The client's error.
        source: postgres::Error,
    },
    /// A storage URL or study name is not usable.
    #[error("storage {url}: {reason}")]
    Storage {
        /// The URL or study as given (password removed).
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A stored value could not be (de)serialised.
    #[error("{}: stored value {what} is malformed: {source}", path.display())]
    Json {
        /// The study file.
        path: PathBuf,
        /// Which value.
        what: String,
        /// The serde error.
        source: serde_json::Error,
    },
    /// The cost model cannot plan an exported model, or its board is unknown.
    #[error("{what}: {source}")]
    Cost {
        /// What was being planned.
        what: String,
        /// The cost model's error.
        source: danas_cost::CostError,
    },
    /// A model could not be serialised as a TFLite file.
    #[error("{what}: {source}")]
    Tflite {
        /// The model.
        what: String,
        /// The writer's error.
        source: danas_tflite::TfliteError,
    },
    /// Training or evaluating a network failed.
    #[cfg(feature = "train")]
    #[error("{what}: {source}")]
    Train {
        /// What was being trained.
        what: String,
        /// The trainer's error.
        source: danas_train::TrainError,
    },
    /// A job of a parallel phase panicked (a bug, reported rather than spread).
    #[error("{what} panicked: {message}")]
    Panicked {
        /// What the job was doing.
        what: String,
        /// The panic's message.
        message: String,
    },
    /// An I/O error on a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl SearchError {
    /// Whether the error is the user's to fix (a setting, a file, a data source, a
    /// study that is missing, in use or already there, limits no candidate meets),
    /// rather than a failure of the work itself. The CLI exits 2 for these.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            SearchError::Config { .. }
                | SearchError::ConfigFile { .. }
                | SearchError::Data { .. }
                | SearchError::Unreachable { .. }
                | SearchError::NotAStudy { .. }
                | SearchError::Locked { .. }
                | SearchError::Exists { .. }
                | SearchError::Storage { .. }
                | SearchError::Budget { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::SearchError;

    #[test]
    fn settings_and_studies_are_input_failures_of_the_work_are_not() {
        let config = SearchError::Config { field: "parallel".into(), value: "0".into(), reason: "x".into() };
        assert!(config.is_input());
        assert!(SearchError::Exists { path: "s".into() }.is_input());
        assert!(!SearchError::UnknownTrial(3).is_input());
        assert!(!SearchError::Panicked { what: "a job".into(), message: "boom".into() }.is_input());
    }
}

/// The message of [`SearchError::Unreachable`]: which limits bind, with the smallest
/// value the space reaches for each, and what the flash figure includes.
pub(crate) fn unreachable_message(
    min_ram: f64,
    min_flash: f64,
    min_latency: Option<f64>,
    limits: Option<&danas_core::Limits>,
    runtime_flash: Option<u64>,
) -> String {
    let mut binding = Vec::new();
    let mut free = Vec::new();
    let mut judge = |name: &str, min: f64, limit: Option<f64>, unit: &str, scale: f64| {
        let reach = format!("the smallest {name} it reaches is {:.1} {unit}", min / scale);
        match limit {
            Some(l) if min > l => binding.push(format!("{reach}, over the limit of {:.1} {unit}", l / scale)),
            Some(l) => free.push(format!("{reach} (limit {:.1} {unit})", l / scale)),
            None => free.push(reach),
        }
    };
    judge("RAM (arena)", min_ram, limits.map(|l| l.ram_bytes as f64), "KiB", 1024.0);
    judge("flash", min_flash, limits.map(|l| l.flash_bytes as f64), "KiB", 1024.0);
    if let Some(lat) = min_latency {
        judge("latency", lat, limits.and_then(|l| l.latency_ms), "ms", 1.0);
    }
    let mut s = String::from("no candidate of the space meets the limits: ");
    if binding.is_empty() {
        s.push_str("each limit alone is reachable, but not all at once: ");
        s.push_str(&free.join("; "));
    } else {
        s.push_str(&binding.join("; "));
        if !free.is_empty() {
            s.push_str(" (");
            s.push_str(&free.join("; "));
            s.push(')');
        }
    }
    if let Some(rt) = runtime_flash.filter(|&b| b > 0) {
        s.push_str(&format!(
            ". Flash counts the model plus the TFLM runtime and application ({:.0} KiB on this board)",
            rt as f64 / 1024.0
        ));
    }
    s.push_str(". Loosen the binding limit(s), pick a larger board (--mcu) or a smaller space.");
    s
}

#[cfg(test)]
mod unreachable_tests {
    use super::unreachable_message;
    use danas_core::Limits;

    #[test]
    fn names_the_binding_limit_and_the_runtime() {
        let l = Limits { ram_bytes: 512 * 1024, flash_bytes: 2048 * 1024, latency_ms: Some(0.5) };
        let m = unreachable_message(40_000.0, 200_000.0, Some(3.25), Some(&l), Some(93 * 1024));
        assert!(m.contains("the smallest latency it reaches is 3.2 ms, over the limit of 0.5 ms"), "{m}");
        assert!(!m.contains("RAM (arena) it reaches is 39.1 KiB, over"), "{m}");
        assert!(m.contains("93 KiB"), "{m}");
        let l = Limits { ram_bytes: 512 * 1024, flash_bytes: 64 * 1024, latency_ms: None };
        let m = unreachable_message(40_000.0, 100.0 * 1024.0, None, Some(&l), Some(93 * 1024));
        assert!(m.contains("smallest flash it reaches is 100.0 KiB, over the limit of 64.0 KiB"), "{m}");
        assert!(m.contains("TFLM runtime"), "{m}");
    }
}
