//! Studies in PostgreSQL: one schema per study (`danas_<name>`) holding the journal's
//! tables, a job queue that workers on any machine claim from (`FOR UPDATE SKIP
//! LOCKED`, heartbeats, re-queueing of jobs whose worker went silent), an audit of
//! every attempt, and the supernet checkpoints as blobs, so no shared file system is
//! needed.

use std::sync::Mutex;

use serde_json::Value;

use super::db::{Db, Val, lock, pg_err, pg_params};
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

    fn schema_exists(&self, c: &mut postgres::Client) -> Result<bool, SearchError> {
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

/// The database clock (seconds since the epoch), so that heartbeats from machines
/// with skewed clocks compare correctly.
const DB_NOW: &str = "extract(epoch from clock_timestamp())::double precision";

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

/// A claimed job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its id.
    pub id: i64,
    /// `prepare` or `evaluate` or `promote`.
    pub kind: String,
    /// What to do, as JSON.
    pub payload: Value,
}

/// One worker's attempt at a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The job's key (`prepare:32-rgb`, `evaluate:SEED:CANDIDATE`, …).
    pub key: String,
    /// `prepare`, `evaluate` or `promote`.
    pub kind: String,
    /// The worker's name.
    pub worker: String,
    /// `done`, `failed`, `lost` (taken over by another worker), or `None` while
    /// running or when the worker died.
    pub outcome: Option<String>,
}

/// How a job ended, as the submitter sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Its result, as JSON.
    Done(Value),
    /// Its error message.
    Failed(String),
}

/// The job queue of a PostgreSQL study, for the search (submitting) and for workers
/// (claiming). One connection, used by one thread at a time.
pub struct Queue {
    client: Mutex<postgres::Client>,
    at: String,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Queue({})", self.at)
    }
}

impl Queue {
    /// Connects to the queue of an existing study.
    ///
    /// # Errors
    /// [`SearchError::NotAStudy`] when there is no such study; connection errors.
    pub fn connect(storage: &Storage) -> Result<Self, SearchError> {
        let mut c = storage.connect()?;
        if !storage.schema_exists(&mut c)? {
            return Err(SearchError::NotAStudy { path: storage.describe().into(), reason: "no such study".into() });
        }
        Ok(Self { client: Mutex::new(c), at: storage.describe() })
    }

    fn run(&self, sql: &str, params: &[Val]) -> Result<Vec<postgres::Row>, SearchError> {
        let p = pg_params(params);
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = p.iter().map(|b| b.as_ref()).collect();
        lock(&self.client).query(sql, &refs).map_err(|e| pg_err(&self.at, e))
    }

    /// Submits a job under a unique `key` (a job already submitted under it is kept:
    /// a resumed search finds the results its workers already delivered); returns its id.
    ///
    /// # Errors
    /// Database errors.
    pub fn submit(&self, kind: &str, key: &str, payload: &Value) -> Result<i64, SearchError> {
        let sql = format!(
            "INSERT INTO jobs (kind, key, payload, status, created_at) VALUES ($1, $2, $3, 'queued', {DB_NOW}) \
             ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING id"
        );
        let rows = self.run(&sql, &[kind.into(), key.into(), payload.to_string().into()])?;
        Ok(rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0))
    }

    /// The outcome of job `id`, once it has one.
    ///
    /// # Errors
    /// Database errors.
    pub fn outcome(&self, id: i64) -> Result<Option<Outcome>, SearchError> {
        let rows = self.run("SELECT status, result, error FROM jobs WHERE id = $1", &[id.into()])?;
        let Some(r) = rows.first() else { return Ok(Some(Outcome::Failed(format!("job {id} vanished")))) };
        let status: String = r.get(0);
        Ok(match status.as_str() {
            "done" => {
                let text: Option<String> = r.get(1);
                Some(Outcome::Done(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)))
            }
            "failed" => Some(Outcome::Failed(r.get::<_, Option<String>>(2).unwrap_or_default())),
            _ => None,
        })
    }

    /// Waits for job `id`'s outcome, polling at most every `poll`.
    ///
    /// # Errors
    /// Database errors.
    pub fn wait(&self, id: i64, poll: std::time::Duration) -> Result<Outcome, SearchError> {
        // short waits first: most evaluations take a fraction of a second
        let mut wait = std::time::Duration::from_millis(5).min(poll);
        loop {
            if let Some(o) = self.outcome(id)? {
                return Ok(o);
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(poll);
        }
    }

    /// Claims the oldest queued job, or a running one whose worker has not sent a
    /// heartbeat for `stale_after_s` seconds (it is re-queued to this worker).
    ///
    /// # Errors
    /// Database errors.
    pub fn claim(&self, worker: &str, stale_after_s: f64) -> Result<Option<Job>, SearchError> {
        let sql = format!(
            "UPDATE jobs SET status = 'running', worker = $1, attempts = attempts + 1, heartbeat = {DB_NOW} \
             WHERE id = (SELECT id FROM jobs WHERE status = 'queued' OR (status = 'running' AND heartbeat < {DB_NOW} - $2) \
                         ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) \
             RETURNING id, kind, payload"
        );
        let rows = self.run(&sql, &[worker.into(), stale_after_s.into()])?;
        let Some(r) = rows.first() else { return Ok(None) };
        let id: i64 = r.get(0);
        self.run(
            &format!("INSERT INTO attempts (job, worker, started_at) VALUES ($1, $2, {DB_NOW})"),
            &[id.into(), worker.into()],
        )?;
        let payload: String = r.get(2);
        Ok(Some(Job { id, kind: r.get(1), payload: serde_json::from_str(&payload).unwrap_or(Value::Null) }))
    }

    /// Refreshes the heartbeat of a job this worker holds; false when it no longer
    /// holds it (it was re-queued and claimed by another).
    ///
    /// # Errors
    /// Database errors.
    pub fn heartbeat(&self, id: i64, worker: &str) -> Result<bool, SearchError> {
        let sql = format!(
            "UPDATE jobs SET heartbeat = {DB_NOW} WHERE id = $1 AND worker = $2 AND status = 'running' RETURNING id"
        );
        Ok(!self.run(&sql, &[id.into(), worker.into()])?.is_empty())
    }

    /// Delivers a job's outcome; false (and nothing written) when this worker no
    /// longer holds the job, so no job is ever counted twice.
    ///
    /// # Errors
    /// Database errors.
    pub fn finish(&self, id: i64, worker: &str, outcome: &Outcome) -> Result<bool, SearchError> {
        let (status, result, error) = match outcome {
            Outcome::Done(v) => ("done", Some(v.to_string()), None),
            Outcome::Failed(e) => ("failed", None, Some(e.clone())),
        };
        let sql = format!(
            "UPDATE jobs SET status = $3, result = $4, error = $5, finished_at = {DB_NOW} \
             WHERE id = $1 AND worker = $2 AND status = 'running' RETURNING id"
        );
        let held = !self.run(&sql, &[id.into(), worker.into(), status.into(), result.into(), error.into()])?.is_empty();
        let outcome = if held { status } else { "lost" };
        self.run(
            &format!(
                "UPDATE attempts SET finished_at = {DB_NOW}, outcome = $3 WHERE job = $1 AND worker = $2 AND finished_at IS NULL"
            ),
            &[id.into(), worker.into(), outcome.into()],
        )?;
        Ok(held)
    }

    /// The checkpoint a finished `prepare` job stored for `data` (or the shared supernet's).
    ///
    /// # Errors
    /// Database errors.
    pub fn prepared(&self, data: danas_core::DataConfig) -> Result<Option<String>, SearchError> {
        let rows = self.run(
            "SELECT result FROM jobs WHERE kind = 'prepare' AND status = 'done' AND (key = $1 OR key = 'prepare:shared') ORDER BY id",
            &[format!("prepare:{}", data.key()).into()],
        )?;
        Ok(rows.first().and_then(|r| r.get::<_, Option<String>>(0)).and_then(|t| {
            serde_json::from_str::<Value>(&t).ok().and_then(|v| v["checkpoint"].as_str().map(str::to_string))
        }))
    }

    /// Stores a blob (a supernet checkpoint) under `name`.
    ///
    /// # Errors
    /// Database errors.
    pub fn put_blob(&self, name: &str, data: &[u8]) -> Result<(), SearchError> {
        lock(&self.client)
            .execute(
                "INSERT INTO blobs (name, data) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET data = EXCLUDED.data",
                &[&name, &data],
            )
            .map_err(|e| pg_err(&self.at, e))?;
        Ok(())
    }

    /// A stored blob.
    ///
    /// # Errors
    /// Database errors.
    pub fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, SearchError> {
        let rows = lock(&self.client)
            .query("SELECT data FROM blobs WHERE name = $1", &[&name])
            .map_err(|e| pg_err(&self.at, e))?;
        Ok(rows.first().map(|r| r.get::<_, Vec<u8>>(0)))
    }

    /// Whether the search has finished (workers then stop).
    ///
    /// # Errors
    /// Database errors.
    pub fn finished(&self) -> Result<bool, SearchError> {
        let rows = self.run("SELECT value FROM meta WHERE key = 'finished'", &[])?;
        Ok(rows.first().is_some_and(|r| r.get::<_, String>(0) == "1"))
    }

    /// The study's settings (what workers build their evaluator from).
    ///
    /// # Errors
    /// Database errors; [`SearchError::Json`] when malformed.
    pub fn config(&self) -> Result<Value, SearchError> {
        let rows = self.run("SELECT value FROM meta WHERE key = 'config'", &[])?;
        let text: String = rows.first().map(|r| r.get(0)).unwrap_or_else(|| "null".into());
        serde_json::from_str(&text).map_err(|source| SearchError::Json {
            path: self.at.clone().into(),
            what: "config".into(),
            source,
        })
    }

    /// Every attempt, oldest first: the audit trail (a job `done` more than once
    /// would show here).
    ///
    /// # Errors
    /// Database errors.
    pub fn attempts(&self) -> Result<Vec<Attempt>, SearchError> {
        let rows = self.run(
            "SELECT j.key, j.kind, a.worker, a.outcome FROM attempts a JOIN jobs j ON j.id = a.job ORDER BY a.started_at",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| Attempt { key: r.get(0), kind: r.get(1), worker: r.get(2), outcome: r.get(3) })
            .collect())
    }
}
