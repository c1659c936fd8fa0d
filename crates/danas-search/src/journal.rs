use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use danas_core::Candidate;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::SearchError;

/// Version of the study file layout; stored in the file, checked on open.
pub const STUDY_FORMAT: i64 = 2;

/// What happened to a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialStatus {
    /// Started and not finished (a crash or Ctrl-C interrupted it if the study is not running).
    Running,
    /// Evaluated.
    Complete,
    /// Rejected by the cost gate before any training.
    Infeasible,
    /// Training or evaluation failed (e.g. divergence).
    Failed,
    /// The optimiser proposed a candidate this study had already evaluated: the
    /// earlier result (named in the message) is reused and told again, and nothing
    /// is trained. Not counted against `max_trials`, not a separate point of the
    /// Pareto set.
    Repeat,
}

impl TrialStatus {
    fn as_str(self) -> &'static str {
        match self {
            TrialStatus::Running => "running",
            TrialStatus::Complete => "complete",
            TrialStatus::Infeasible => "infeasible",
            TrialStatus::Failed => "failed",
            TrialStatus::Repeat => "repeat",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => TrialStatus::Running,
            "complete" => TrialStatus::Complete,
            "infeasible" => TrialStatus::Infeasible,
            "failed" => TrialStatus::Failed,
            "repeat" => TrialStatus::Repeat,
            _ => return None,
        })
    }
}

/// One trial as stored in the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// Trial id, in the order the optimiser proposed them.
    pub id: u64,
    /// The genome's choice indices.
    pub genome: Vec<u16>,
    /// The decoded candidate.
    pub candidate: Candidate,
    /// Status.
    pub status: TrialStatus,
    /// The seed its evaluation used.
    pub seed: u64,
    /// Resource estimates (JSON object), when computed.
    pub costs: Option<Value>,
    /// Evaluation metrics (JSON object), when evaluated.
    pub metrics: Option<Value>,
    /// Why it is infeasible or failed.
    pub message: Option<String>,
    /// Unix time it started.
    pub started_at: f64,
    /// Unix time it finished.
    pub finished_at: Option<f64>,
    /// Seconds spent evaluating (training included).
    pub eval_seconds: Option<f64>,
    /// The study's elapsed wall-clock seconds when it finished, counting every
    /// session (the clock the wall-clock budget uses).
    pub elapsed_at: Option<f64>,
}

/// How a trial ended, for [`Journal::finish_trial`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialEnd<'a> {
    /// Final status.
    pub status: TrialStatus,
    /// Resource estimates.
    pub costs: Option<&'a Value>,
    /// Evaluation metrics.
    pub metrics: Option<&'a Value>,
    /// Why infeasible or failed.
    pub message: Option<&'a str>,
    /// Seconds spent evaluating.
    pub eval_seconds: Option<f64>,
}

/// A trained supernet, by data configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupernetRecord {
    /// The data configuration key, e.g. `96-rgb`.
    pub data_key: String,
    /// Checkpoint path, relative to the study directory.
    pub path: String,
    /// Seconds spent training it.
    pub train_seconds: f64,
    /// Unix time it was stored.
    pub created_at: f64,
}

/// The journal of one study: a SQLite file (WAL mode) holding the study's
/// settings, every trial, the supernets and an event log. Each trial is
/// committed in its own transaction, so a crash or `kill -9` loses at most the
/// trial that was running, which [`Journal::interrupted`] finds for re-queueing.
///
/// The journal holds an exclusive lock on `<file>.lock` while open: a second
/// process opening the same study gets [`SearchError::Locked`].
#[derive(Debug)]
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    _lock: Option<File>,
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY,
    genome TEXT NOT NULL,
    candidate TEXT NOT NULL,
    status TEXT NOT NULL,
    seed INTEGER NOT NULL,
    costs TEXT,
    metrics TEXT,
    message TEXT,
    started_at REAL NOT NULL,
    finished_at REAL,
    eval_seconds REAL,
    elapsed_at REAL
);
CREATE TABLE supernets (data_key TEXT PRIMARY KEY, path TEXT NOT NULL, train_seconds REAL NOT NULL, created_at REAL NOT NULL);
CREATE TABLE optimizer_events (seq INTEGER PRIMARY KEY, event TEXT NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL);
";

impl Journal {
    fn db(&self) -> impl Fn(rusqlite::Error) -> SearchError + '_ {
        move |source| SearchError::Db { path: self.path.clone(), source }
    }

    fn lock(path: &Path) -> Result<File, SearchError> {
        let lock_path = lock_path(path);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| SearchError::Io { path: lock_path.clone(), source })?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(_) => Err(SearchError::Locked { path: path.to_path_buf(), lock: lock_path }),
        }
    }

    fn connect(path: &Path) -> Result<Connection, SearchError> {
        let db = |source| SearchError::Db { path: path.to_path_buf(), source };
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db)?;
        Ok(conn)
    }

    /// Creates a new study file with its settings (any JSON object, stored as `config`).
    ///
    /// # Errors
    /// [`SearchError::Exists`] when the file exists; database and I/O errors.
    pub fn create(path: &Path, config: &Value) -> Result<Self, SearchError> {
        if path.exists() {
            return Err(SearchError::Exists { path: path.to_path_buf() });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| SearchError::Io { path: dir.to_path_buf(), source })?;
        }
        let lock = Self::lock(path)?;
        let conn = Self::connect(path)?;
        let j = Self { conn, path: path.to_path_buf(), _lock: Some(lock) };
        j.conn.execute_batch(SCHEMA).map_err(j.db())?;
        j.set_meta("format", &STUDY_FORMAT.to_string())?;
        j.set_meta("created_at", &now().to_string())?;
        j.set_meta("danas_version", env!("CARGO_PKG_VERSION"))?;
        j.set_meta("config", &config.to_string())?;
        j.set_meta("elapsed_seconds", "0")?;
        Ok(j)
    }

    /// Opens an existing study, checking that it is one.
    ///
    /// # Errors
    /// [`SearchError::NotAStudy`] when the file is missing or is not a danas study
    /// (of this format); [`SearchError::Locked`] when another process has it open.
    pub fn open(path: &Path) -> Result<Self, SearchError> {
        Self::check_header(path)?;
        let lock = Self::lock(path)?;
        let conn = Self::connect(path)?;
        let j = Self { conn, path: path.to_path_buf(), _lock: Some(lock) };
        j.check_format()?;
        Ok(j)
    }

    /// Opens a study for reading only, without taking its lock: safe while another
    /// process runs the study (SQLite WAL readers never block the writer). For
    /// monitoring; writes through it fail.
    ///
    /// # Errors
    /// As [`Journal::open`], without [`SearchError::Locked`].
    pub fn open_read_only(path: &Path) -> Result<Self, SearchError> {
        Self::check_header(path)?;
        let db = |source| SearchError::Db { path: path.to_path_buf(), source };
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db)?;
        let j = Self { conn, path: path.to_path_buf(), _lock: None };
        j.check_format()?;
        Ok(j)
    }

    fn check_header(path: &Path) -> Result<(), SearchError> {
        use std::io::Read;
        let not = |reason: &str| SearchError::NotAStudy { path: path.to_path_buf(), reason: reason.to_string() };
        if !path.is_file() {
            return Err(not("no such file"));
        }
        let mut head = [0u8; 16];
        let mut f = File::open(path).map_err(|source| SearchError::Io { path: path.to_path_buf(), source })?;
        let n = f.read(&mut head).map_err(|source| SearchError::Io { path: path.to_path_buf(), source })?;
        if n < 16 || &head != b"SQLite format 3\0" {
            return Err(not("not an SQLite database"));
        }
        Ok(())
    }

    fn check_format(&self) -> Result<(), SearchError> {
        let not = |reason: String| SearchError::NotAStudy { path: self.path.clone(), reason };
        let format: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| r.get(0))
            .optional()
            .map_err(|e| not(format!("no danas meta table ({e})")))?;
        match format.as_deref().map(str::parse::<i64>) {
            Some(Ok(STUDY_FORMAT)) => Ok(()),
            Some(Ok(v)) => Err(not(format!("study format {v}, this danas reads format {STUDY_FORMAT}"))),
            _ => Err(not("no study format in its meta table".into())),
        }
    }

    /// The study file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets a meta value.
    ///
    /// # Errors
    /// Database errors.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), SearchError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
                params![key, value],
            )
            .map_err(self.db())?;
        Ok(())
    }

    /// A meta value.
    ///
    /// # Errors
    /// Database errors.
    pub fn meta(&self, key: &str) -> Result<Option<String>, SearchError> {
        self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(self.db())
    }

    /// The study's settings as given to [`Journal::create`].
    ///
    /// # Errors
    /// Database errors, or [`SearchError::Json`] when the stored value is malformed.
    pub fn config(&self) -> Result<Value, SearchError> {
        let text = self.meta("config")?.unwrap_or_else(|| "null".into());
        serde_json::from_str(&text).map_err(|source| SearchError::Json {
            path: self.path.clone(),
            what: "config".into(),
            source,
        })
    }

    /// Records that a trial started (status `running`), in its own transaction.
    ///
    /// # Errors
    /// Database errors (including a duplicate id).
    pub fn begin_trial(&self, id: u64, genome: &[u16], candidate: &Candidate, seed: u64) -> Result<(), SearchError> {
        let genome = to_json(genome);
        let cand = to_json(candidate);
        self.conn
            .execute(
                "INSERT INTO trials (id, genome, candidate, status, seed, started_at) VALUES (?1, ?2, ?3, 'running', ?4, ?5)",
                params![id as i64, genome, cand, seed as i64, now()],
            )
            .map_err(self.db())?;
        Ok(())
    }

    /// Records a trial's end, in one transaction together with the study's
    /// elapsed time (so a resumed search continues its wall-clock budget) and the
    /// optimiser's tell event (so replay sees exactly the committed trials).
    ///
    /// # Errors
    /// [`SearchError::UnknownTrial`]; database errors.
    pub fn finish_trial(
        &mut self,
        id: u64,
        end: &TrialEnd<'_>,
        elapsed_seconds: f64,
        optimizer_event: Option<&Value>,
    ) -> Result<(), SearchError> {
        let path = self.path.clone();
        let db = |source| SearchError::Db { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(db)?;
        let n = tx
            .execute(
                "UPDATE trials SET status = ?2, costs = ?3, metrics = ?4, message = ?5, finished_at = ?6, eval_seconds = ?7, elapsed_at = ?8 WHERE id = ?1",
                params![
                    id as i64,
                    end.status.as_str(),
                    end.costs.map(Value::to_string),
                    end.metrics.map(Value::to_string),
                    end.message,
                    now(),
                    end.eval_seconds,
                    elapsed_seconds
                ],
            )
            .map_err(db)?;
        if n == 0 {
            return Err(SearchError::UnknownTrial(id));
        }
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'elapsed_seconds'", [elapsed_seconds.to_string()])
            .map_err(db)?;
        if let Some(ev) = optimizer_event {
            tx.execute("INSERT INTO optimizer_events (event) VALUES (?1)", [ev.to_string()]).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(())
    }

    /// Appends an optimiser event (an ask or a tell) for replay on resume.
    ///
    /// # Errors
    /// Database errors.
    pub fn record_optimizer_event(&self, event: &Value) -> Result<(), SearchError> {
        self.conn
            .execute("INSERT INTO optimizer_events (event) VALUES (?1)", [event.to_string()])
            .map_err(self.db())?;
        Ok(())
    }

    /// The optimiser events in order.
    ///
    /// # Errors
    /// Database errors, or [`SearchError::Json`] for a malformed event.
    pub fn optimizer_events(&self) -> Result<Vec<Value>, SearchError> {
        let mut stmt = self.conn.prepare("SELECT seq, event FROM optimizer_events ORDER BY seq").map_err(self.db())?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.db())?
            .collect::<Result<_, _>>()
            .map_err(self.db())?;
        rows.into_iter()
            .map(|(seq, text)| {
                serde_json::from_str(&text).map_err(|source| SearchError::Json {
                    path: self.path.clone(),
                    what: format!("optimizer event {seq}"),
                    source,
                })
            })
            .collect()
    }

    /// Replaces a finished trial's metrics (the final stage adds test metrics).
    ///
    /// # Errors
    /// [`SearchError::UnknownTrial`]; database errors.
    pub fn update_metrics(&self, id: u64, metrics: &Value) -> Result<(), SearchError> {
        let n = self
            .conn
            .execute("UPDATE trials SET metrics = ?2 WHERE id = ?1", params![id as i64, metrics.to_string()])
            .map_err(self.db())?;
        if n == 0 { Err(SearchError::UnknownTrial(id)) } else { Ok(()) }
    }

    /// Removes an interrupted (`running`) trial so it can be re-queued.
    ///
    /// # Errors
    /// Database errors.
    pub fn forget_running(&self, id: u64) -> Result<(), SearchError> {
        self.conn.execute("DELETE FROM trials WHERE id = ?1 AND status = 'running'", [id as i64]).map_err(self.db())?;
        Ok(())
    }

    /// Every trial, by id.
    ///
    /// # Errors
    /// Database errors, or [`SearchError::Json`] for a malformed row.
    pub fn trials(&self) -> Result<Vec<TrialRecord>, SearchError> {
        self.select_trials(None)
    }

    /// One trial by id, if it is in the journal.
    ///
    /// # Errors
    /// As [`Journal::trials`].
    pub fn trial(&self, id: u64) -> Result<Option<TrialRecord>, SearchError> {
        Ok(self.select_trials(Some(id))?.into_iter().next())
    }

    fn select_trials(&self, only: Option<u64>) -> Result<Vec<TrialRecord>, SearchError> {
        const COLUMNS: &str = "SELECT id, genome, candidate, status, seed, costs, metrics, message, started_at, finished_at, eval_seconds, elapsed_at FROM trials";
        let sql = match only {
            Some(_) => format!("{COLUMNS} WHERE id = ?1"),
            None => format!("{COLUMNS} ORDER BY id"),
        };
        let mut stmt = self.conn.prepare(&sql).map_err(self.db())?;
        let params: Vec<i64> = only.map(|id| id as i64).into_iter().collect();
        type Row = (
            i64,
            String,
            String,
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            f64,
            Option<f64>,
            Option<f64>,
            Option<f64>,
        );
        let rows: Vec<Row> = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ))
            })
            .map_err(self.db())?
            .collect::<Result<_, _>>()
            .map_err(self.db())?;
        let json = |what: String, text: &str| -> Result<Value, SearchError> {
            serde_json::from_str(text).map_err(|source| SearchError::Json { path: self.path.clone(), what, source })
        };
        let mut out = Vec::with_capacity(rows.len());
        for (id, genome, cand, status, seed, costs, metrics, message, started, finished, secs, elapsed_at) in rows {
            let parse = |what: &str, text: &str| json(format!("trial {id} {what}"), text);
            let status = TrialStatus::parse(&status).ok_or_else(|| SearchError::Json {
                path: self.path.clone(),
                what: format!("trial {id} status {status:?}"),
                source: serde::de::Error::custom("unknown status"),
            })?;
            out.push(TrialRecord {
                id: id as u64,
                genome: from_value(&self.path, id, "genome", parse("genome", &genome)?)?,
                candidate: from_value(&self.path, id, "candidate", parse("candidate", &cand)?)?,
                status,
                seed: seed as u64,
                costs: costs.as_deref().map(|c| parse("costs", c)).transpose()?,
                metrics: metrics.as_deref().map(|m| parse("metrics", m)).transpose()?,
                message,
                started_at: started,
                finished_at: finished,
                eval_seconds: secs,
                elapsed_at,
            });
        }
        Ok(out)
    }

    /// Trials left `running` by an interrupted process.
    ///
    /// # Errors
    /// As [`Journal::trials`].
    pub fn interrupted(&self) -> Result<Vec<TrialRecord>, SearchError> {
        Ok(self.trials()?.into_iter().filter(|t| t.status == TrialStatus::Running).collect())
    }

    /// Wall-clock seconds the study has run so far, over all its sessions.
    ///
    /// # Errors
    /// Database errors.
    pub fn elapsed_seconds(&self) -> Result<f64, SearchError> {
        Ok(self.meta("elapsed_seconds")?.and_then(|s| s.parse().ok()).unwrap_or(0.0))
    }

    /// Stores (or replaces) the supernet of a data configuration.
    ///
    /// # Errors
    /// Database errors.
    pub fn record_supernet(&self, data_key: &str, path: &str, train_seconds: f64) -> Result<(), SearchError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO supernets (data_key, path, train_seconds, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![data_key, path, train_seconds, now()],
            )
            .map_err(self.db())?;
        Ok(())
    }

    /// The stored supernet of a data configuration.
    ///
    /// # Errors
    /// Database errors.
    pub fn supernet(&self, data_key: &str) -> Result<Option<SupernetRecord>, SearchError> {
        self.conn
            .query_row(
                "SELECT data_key, path, train_seconds, created_at FROM supernets WHERE data_key = ?1",
                [data_key],
                |r| {
                    Ok(SupernetRecord {
                        data_key: r.get(0)?,
                        path: r.get(1)?,
                        train_seconds: r.get(2)?,
                        created_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(self.db())
    }

    /// Appends an event (e.g. `resume`, `supernet`, `budget`) to the log.
    ///
    /// # Errors
    /// Database errors.
    pub fn event(&self, kind: &str, message: &str) -> Result<(), SearchError> {
        self.conn
            .execute("INSERT INTO events (time, kind, message) VALUES (?1, ?2, ?3)", params![now(), kind, message])
            .map_err(self.db())?;
        Ok(())
    }

    /// The event log as (unix time, kind, message).
    ///
    /// # Errors
    /// Database errors.
    pub fn events(&self) -> Result<Vec<(f64, String, String)>, SearchError> {
        let mut stmt = self.conn.prepare("SELECT time, kind, message FROM events ORDER BY id").map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(self.db())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.db())?;
        Ok(rows)
    }
}

fn from_value<T: serde::de::DeserializeOwned>(path: &Path, id: i64, what: &str, v: Value) -> Result<T, SearchError> {
    serde_json::from_value(v).map_err(|source| SearchError::Json {
        path: path.to_path_buf(),
        what: format!("trial {id} {what}"),
        source,
    })
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> String {
    // Serialising plain data structures to a string cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}
