//! The job queue of a PostgreSQL study: the search submits typed jobs ([`Work`]),
//! workers on any machine claim them (`FOR UPDATE SKIP LOCKED`), send heartbeats
//! and deliver each [`JobOutcome`]; jobs whose worker went silent are re-queued, and
//! every attempt is audited.

use std::sync::Mutex;

use danas_core::{Candidate, DataConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::journal::{Storage, Val, lock, pg_err, pg_params};
use crate::record::candidate_key;
use crate::{Promotion, SearchError};

/// The database clock (seconds since the epoch), so that heartbeats from machines
/// with skewed clocks compare correctly.
const DB_NOW: &str = "extract(epoch from clock_timestamp())::double precision";

/// What a job asks a worker to do. Stored as its kind (`prepare`, `evaluate`,
/// `promote`) and its fields as a JSON payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "lowercase")]
pub enum Work {
    /// Train (or load) the supernet of a data configuration.
    Prepare {
        /// The data configuration.
        data: DataConfig,
    },
    /// Score a candidate from its supernet.
    Evaluate {
        /// The candidate.
        candidate: Candidate,
        /// Its evaluation seed.
        seed: u64,
    },
    /// Score a candidate at a higher rung of successive halving.
    Promote {
        /// The candidate.
        candidate: Candidate,
        /// Its evaluation seed.
        seed: u64,
        /// What the rung does.
        promotion: Promotion,
    },
}

impl Work {
    /// Its kind as stored: `prepare`, `evaluate` or `promote`.
    pub fn kind(&self) -> &'static str {
        match self {
            Work::Prepare { .. } => "prepare",
            Work::Evaluate { .. } => "evaluate",
            Work::Promote { .. } => "promote",
        }
    }

    /// The key it is submitted under: the same work asked twice (by a resumed
    /// search) is one job. With `shared_supernet`, every `prepare` is the one job
    /// of the shared supernet.
    pub fn key(&self, shared_supernet: bool) -> String {
        match self {
            Work::Prepare { .. } if shared_supernet => "prepare:shared".into(),
            Work::Prepare { data } => format!("prepare:{}", data.key()),
            Work::Evaluate { candidate, seed } => format!("evaluate:{seed}:{}", candidate_key(candidate)),
            Work::Promote { candidate, seed, promotion } => {
                let p = serde_json::to_string(promotion).unwrap_or_default();
                format!("promote:{seed}:{p}:{}", candidate_key(candidate))
            }
        }
    }

    /// The stored payload (the fields, without the kind).
    fn payload(&self) -> Value {
        serde_json::to_value(self).ok().and_then(|mut v| v.get_mut("payload").map(Value::take)).unwrap_or(Value::Null)
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

impl Job {
    /// What the job asks for.
    ///
    /// # Errors
    /// An unknown kind or a malformed payload.
    pub fn work(&self) -> Result<Work, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "kind": self.kind, "payload": self.payload }))
    }
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

/// How a job ended, as the submitter sees it (not to be confused with
/// [`danas_optim::Outcome`], what the optimiser is told).
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
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

    /// Submits `work` under a unique `key` ([`Work::key`]; a job already submitted
    /// under it is kept: a resumed search finds the results its workers already
    /// delivered); returns its id.
    ///
    /// # Errors
    /// Database errors.
    pub fn submit(&self, work: &Work, key: &str) -> Result<i64, SearchError> {
        let (kind, payload) = (work.kind(), work.payload());
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
    pub fn outcome(&self, id: i64) -> Result<Option<JobOutcome>, SearchError> {
        let rows = self.run("SELECT status, result, error FROM jobs WHERE id = $1", &[id.into()])?;
        let Some(r) = rows.first() else { return Ok(Some(JobOutcome::Failed(format!("job {id} vanished")))) };
        let status: String = r.get(0);
        Ok(match status.as_str() {
            "done" => {
                let text: Option<String> = r.get(1);
                Some(JobOutcome::Done(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)))
            }
            "failed" => Some(JobOutcome::Failed(r.get::<_, Option<String>>(2).unwrap_or_default())),
            _ => None,
        })
    }

    /// Waits for job `id`'s outcome, polling at most every `poll`.
    ///
    /// # Errors
    /// Database errors.
    pub fn wait(&self, id: i64, poll: std::time::Duration) -> Result<JobOutcome, SearchError> {
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
    pub fn finish(&self, id: i64, worker: &str, outcome: &JobOutcome) -> Result<bool, SearchError> {
        let (status, result, error) = match outcome {
            JobOutcome::Done(v) => ("done", Some(v.to_string()), None),
            JobOutcome::Failed(e) => ("failed", None, Some(e.clone())),
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
            &[Work::Prepare { data }.key(false).into()],
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
