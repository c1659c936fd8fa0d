//! Where a study lives, and opening it there: callers name a [`StudyLocation`] and
//! never match on the backend.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Journal;
#[cfg(feature = "postgres")]
use super::postgres::Storage;
use crate::SearchError;

/// Name of the study journal inside a results directory.
pub const STUDY_FILE: &str = "study.sqlite";

/// Where a study lives: a study file (SQLite, one process at a time) or, with the
/// `postgres` feature, a study in a PostgreSQL database that workers on other
/// machines share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StudyLocation {
    /// A study file, usually `DIR/study.sqlite`.
    File(PathBuf),
    /// A study in PostgreSQL: the database URL and the study's name.
    #[cfg(feature = "postgres")]
    Postgres(Storage),
}

impl StudyLocation {
    /// The study file of results directory `dir`: `dir/study.sqlite`.
    pub fn in_dir(dir: &Path) -> Self {
        StudyLocation::File(dir.join(STUDY_FILE))
    }

    /// What messages name: the file, or the URL (without its password) and the study.
    pub fn describe(&self) -> String {
        match self {
            StudyLocation::File(path) => path.display().to_string(),
            #[cfg(feature = "postgres")]
            StudyLocation::Postgres(storage) => storage.describe(),
        }
    }

    /// Whether processes on other machines share the study (its workers).
    pub fn is_shared(&self) -> bool {
        !matches!(self, StudyLocation::File(_))
    }

    /// The PostgreSQL study, when it is one.
    #[cfg(feature = "postgres")]
    pub fn storage(&self) -> Option<&Storage> {
        match self {
            StudyLocation::Postgres(storage) => Some(storage),
            StudyLocation::File(_) => None,
        }
    }
}

#[cfg(feature = "postgres")]
impl From<Storage> for StudyLocation {
    fn from(storage: Storage) -> Self {
        StudyLocation::Postgres(storage)
    }
}

impl Journal {
    /// Creates a new study at `at` with its settings (any JSON object, stored as `config`).
    ///
    /// # Errors
    /// As [`Journal::create`] (or `Journal::create_postgres`).
    pub fn create_at(at: &StudyLocation, config: &Value) -> Result<Self, SearchError> {
        match at {
            StudyLocation::File(path) => Journal::create(path, config),
            #[cfg(feature = "postgres")]
            StudyLocation::Postgres(storage) => Journal::create_postgres(storage, config),
        }
    }

    /// Opens the study at `at` for running it (holding its lock).
    ///
    /// # Errors
    /// As [`Journal::open`] (or `Journal::open_postgres`).
    pub fn open_at(at: &StudyLocation) -> Result<Self, SearchError> {
        match at {
            StudyLocation::File(path) => Journal::open(path),
            #[cfg(feature = "postgres")]
            StudyLocation::Postgres(storage) => Journal::open_postgres(storage),
        }
    }

    /// Opens the study at `at` for reading, without its lock (reports, monitoring).
    ///
    /// # Errors
    /// As [`Journal::open_read_only`] (or `Journal::open_postgres_read_only`).
    pub fn open_read_only_at(at: &StudyLocation) -> Result<Self, SearchError> {
        match at {
            StudyLocation::File(path) => Journal::open_read_only(path),
            #[cfg(feature = "postgres")]
            StudyLocation::Postgres(storage) => Journal::open_postgres_read_only(storage),
        }
    }

    /// The settings the study at `at` was created with, as journaled.
    ///
    /// # Errors
    /// As [`Journal::open_read_only_at`] and [`Journal::config`].
    pub fn config_at(at: &StudyLocation) -> Result<Value, SearchError> {
        Journal::open_read_only_at(at)?.config()
    }
}
