//! Studies in PostgreSQL: one schema per study (`danas_<name>`) holding the journal's
//! tables, a job queue that workers on any machine claim from (`FOR UPDATE SKIP
//! LOCKED`, heartbeats, re-queueing of jobs whose worker went silent), an audit of
//! every attempt, and the supernet checkpoints as blobs, so no shared file system is
//! needed.

use std::sync::Mutex;

use serde_json::Value;

use super::db::{Db, lock, pg_err};
use super::{Journal, STUDY_FORMAT};
use crate::SearchError;

/// Where a shared study lives: a PostgreSQL URL and the study's name.
#[derive(Clone, PartialEq, Eq)]
pub struct Storage {
    url: String,
    study: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.describe())
    }
}

impl Storage {
    /// A study `study` in the database at `url` (`postgres://user[:password]@host[:port]/db`
    /// or a libpq key=value string). Study names are 1–40 characters of `a-z`, `0-9`, `_`.
    ///
    /// # Errors
    /// [`SearchError::Storage`] for another URL scheme or an unusable name.
    pub fn new(url: &str, study: &str) -> Result<Self, SearchError> {
        let s = Self { url: url.trim().to_string(), study: study.trim().to_string() };
        let bad = |reason: &str| SearchError::Storage { url: s.describe(), reason: reason.to_string() };
        if !(s.url.starts_with("postgres://") || s.url.starts_with("postgresql://") || s.url.contains("host=")) {
            return Err(bad("not a PostgreSQL URL (postgres://user@host/db)"));
        }
        let ok = !s.study.is_empty()
            && s.study.len() <= 40
            && s.study.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(bad("--study must be 1-40 characters of a-z, 0-9 and _"));
        }
        Ok(s)
    }

    /// The study's name.
    pub fn study(&self) -> &str {
        &self.study
    }

    /// The URL without its password, and the study: what messages name.
    pub fn describe(&self) -> String {
        let url = match (self.url.find("://"), self.url.rfind('@')) {
            (Some(i), Some(at)) if at > i => {
                let user = &self.url[i + 3..at];
                let user = user.split(':').next().unwrap_or("");
                format!("{}{user}{}", &self.url[..i + 3], &self.url[at..])
            }
            _ => self.url.clone(),
        };
        format!("{url} study {}", self.study)
    }

    fn schema(&self) -> String {
        format!("danas_{}", self.study)
    }

    /// A new connection with the study's schema as its search path.
    pub(crate) fn connect(&self) -> Result<postgres::Client, SearchError> {
        let mut c = postgres::Client::connect(&self.url, postgres::NoTls).map_err(|e| pg_err(&self.describe(), e))?;
        c.batch_execute(&format!("SET search_path TO {}", self.schema())).map_err(|e| pg_err(&self.describe(), e))?;
        Ok(c)
    }

    pub(crate) fn schema_exists(&self, c: &mut postgres::Client) -> Result<bool, SearchError> {
        let rows = c
            .query("SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", &[&self.schema()])
            .map_err(|e| pg_err(&self.describe(), e))?;
        Ok(!rows.is_empty())
    }

    /// Takes the study's coordinator lock (a session advisory lock).
    fn take_lock(&self, c: &mut postgres::Client) -> Result<(), SearchError> {
        let row = c
            .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&self.schema()])
            .map_err(|e| pg_err(&self.describe(), e))?;
        if row.get::<_, bool>(0) {
            Ok(())
        } else {
            Err(SearchError::Storage {
                url: self.describe(),
                reason: "another danas search or resume is running this study".into(),
            })
        }
    }
}

/// The tables of a PostgreSQL study.
const PG_SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (
    id BIGINT PRIMARY KEY,
    genome TEXT NOT NULL,
    candidate TEXT NOT NULL,
    status TEXT NOT NULL,
    seed BIGINT NOT NULL,
    costs TEXT,
    metrics TEXT,
    message TEXT,
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    eval_seconds DOUBLE PRECISION,
    elapsed_at DOUBLE PRECISION,
    final_checkpoint TEXT,
    model_dir TEXT
);
CREATE TABLE supernets (data_key TEXT PRIMARY KEY, path TEXT NOT NULL, train_seconds DOUBLE PRECISION NOT NULL, created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE optimizer_events (seq BIGSERIAL PRIMARY KEY, event TEXT NOT NULL);
CREATE TABLE events (id BIGSERIAL PRIMARY KEY, time DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE rungs (
    trial BIGINT NOT NULL,
    rung BIGINT NOT NULL,
    promotion TEXT NOT NULL,
    metrics TEXT NOT NULL,
    eval_seconds DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION NOT NULL,
    elapsed_at DOUBLE PRECISION NOT NULL,
    seq BIGSERIAL,
    PRIMARY KEY (trial, rung)
);
CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    worker TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    heartbeat DOUBLE PRECISION,
    result TEXT,
    error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION
);
CREATE TABLE attempts (
    job BIGINT NOT NULL,
    worker TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    outcome TEXT
);
CREATE TABLE blobs (name TEXT PRIMARY KEY, data BYTEA NOT NULL);
";

impl Journal {
    fn postgres(client: postgres::Client, storage: &Storage) -> Self {
        Self {
            db: Db::Postgres(Mutex::new(client)),
            path: std::path::PathBuf::from(storage.describe()),
            at: storage.describe(),
            _lock: None,
            format: STUDY_FORMAT,
        }
    }

    /// Creates a study in PostgreSQL (its own schema) with its settings, and holds
    /// its coordinator lock while open.
    ///
    /// # Errors
    /// [`SearchError::Exists`] when the study exists; connection and database errors.
    pub fn create_postgres(storage: &Storage, config: &Value) -> Result<Self, SearchError> {
        let mut c = storage.connect()?;
        if storage.schema_exists(&mut c)? {
            return Err(SearchError::Exists { path: storage.describe().into() });
        }
        // One transaction: workers waiting for the study see all of it or nothing.
        let at = storage.describe();
        let mut tx = c.transaction().map_err(|e| pg_err(&at, e))?;
        tx.batch_execute(&format!("CREATE SCHEMA {}; {PG_SCHEMA}", storage.schema())).map_err(|e| pg_err(&at, e))?;
        for (k, v) in Self::initial_meta(config) {
            tx.execute("INSERT INTO meta (key, value) VALUES ($1, $2)", &[&k, &v]).map_err(|e| pg_err(&at, e))?;
        }
        tx.commit().map_err(|e| pg_err(&at, e))?;
        storage.take_lock(&mut c)?;
        Ok(Self::postgres(c, storage))
    }

    /// Opens an existing PostgreSQL study and takes its coordinator lock.
    ///
    /// # Errors
    /// [`SearchError::NotAStudy`]; [`SearchError::Storage`] when another process
    /// coordinates it; connection and database errors.
    pub fn open_postgres(storage: &Storage) -> Result<Self, SearchError> {
        let mut j = Self::open_postgres_read_only(storage)?;
        if let Db::Postgres(m) = &j.db {
            storage.take_lock(&mut lock(m))?;
        }
        j.check_format()?;
        Ok(j)
    }

    /// Opens a PostgreSQL study without its lock, for reports and monitoring.
    ///
    /// # Errors
    /// [`SearchError::NotAStudy`] when there is no such study.
    pub fn open_postgres_read_only(storage: &Storage) -> Result<Self, SearchError> {
        let mut c = storage.connect()?;
        if !storage.schema_exists(&mut c)? {
            return Err(SearchError::NotAStudy { path: storage.describe().into(), reason: "no such study".into() });
        }
        let mut j = Self::postgres(c, storage);
        j.check_format()?;
        Ok(j)
    }
}
