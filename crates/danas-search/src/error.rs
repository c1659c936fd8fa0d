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
    #[error(
        "no candidate of the space meets the limits: the smallest RAM (arena) it reaches is {:.1} KiB and the smallest flash {:.1} KiB",
        min_ram_bytes / 1024.0,
        min_flash_bytes / 1024.0
    )]
    Unreachable {
        /// Smallest arena bytes seen.
        min_ram_bytes: f64,
        /// Smallest flash bytes seen.
        min_flash_bytes: f64,
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
