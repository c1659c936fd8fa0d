use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use danas_core::{Candidate, Metrics};
use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;

use crate::SearchError;
use crate::record::{SupernetRecord, TrialEnd, TrialRecord, TrialStatus};

/// Version of the study file layout; stored in the file, checked on open. Format 2
/// studies (danas before typed trials: costs and metrics as free JSON, the final
/// stage's checkpoint and model folder inside the metrics) are migrated on
/// [`Journal::open`] and read as they are by [`Journal::open_read_only`].
pub const STUDY_FORMAT: i64 = 3;

/// The oldest study format this danas reads (and migrates).
const OLDEST_FORMAT: i64 = 2;

/// The journal of one study: a SQLite file (WAL mode) holding the study's
/// settings, every trial, the supernets and an event log. Each trial is
/// committed in its own transaction, so a crash or `kill -9` loses at most the
/// trial that was running, which [`Journal::interrupted`] finds for re-queueing.
///
/// The journal holds an exclusive lock on `<file>.lock` while open: a second
/// process opening the same study gets [`SearchError::Locked`].
#[derive(Debug)]
pub struct Journal {
    db: Db,
    path: PathBuf,
    /// What errors name: the study file, or the storage URL (without password) and study.
    at: String,
    _lock: Option<File>,
    /// The study format of the file as opened.
    format: i64,
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
    elapsed_at REAL,
    final_checkpoint TEXT,
    model_dir TEXT
);
CREATE TABLE supernets (data_key TEXT PRIMARY KEY, path TEXT NOT NULL, train_seconds REAL NOT NULL, created_at REAL NOT NULL);
CREATE TABLE optimizer_events (seq INTEGER PRIMARY KEY, event TEXT NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL);
";

mod db;
mod legacy;
mod location;
#[cfg(feature = "postgres")]
pub mod postgres;
mod rows;
mod rungs;

pub(crate) use db::{Db, Val};
#[cfg(feature = "postgres")]
pub(crate) use db::{lock, pg_err, pg_params};
pub use location::{STUDY_FILE, StudyLocation};
#[cfg(feature = "postgres")]
pub use postgres::Storage;
use rows::Row;

impl Journal {
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

    fn sqlite(conn: Connection, path: &Path, lock: Option<File>) -> Self {
        Self {
            db: Db::Sqlite(conn),
            path: path.to_path_buf(),
            at: path.display().to_string(),
            _lock: lock,
            format: STUDY_FORMAT,
        }
    }

    /// A new study's meta values.
    fn initial_meta(config: &Value) -> [(&'static str, String); 5] {
        [
            ("format", STUDY_FORMAT.to_string()),
            ("created_at", now().to_string()),
            ("danas_version", env!("CARGO_PKG_VERSION").to_string()),
            ("config", config.to_string()),
            ("elapsed_seconds", "0".to_string()),
        ]
    }

    /// Writes a new study's meta values.
    fn init_meta(&self, config: &Value) -> Result<(), SearchError> {
        for (k, v) in Self::initial_meta(config) {
            self.set_meta(k, &v)?;
        }
        Ok(())
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
        let j = Self::sqlite(Self::connect(path)?, path, Some(lock));
        j.db.batch(SCHEMA, &j.at)?;
        j.db.batch(rungs::RUNGS_TABLE, &j.at)?;
        j.init_meta(config)?;
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
        let mut j = Self::sqlite(Self::connect(path)?, path, Some(lock));
        if j.check_format()? < STUDY_FORMAT {
            j.migrate()?;
        }
        Ok(j)
    }

    /// Rewrites a format-2 study as format 3, in one transaction: typed costs and
    /// metrics, the final stage's checkpoint and model folder in their own columns.
    fn migrate(&mut self) -> Result<(), SearchError> {
        let rows = self.select_trials(None)?;
        let mut stmts: Vec<db::Stmt<'_>> = vec![
            ("ALTER TABLE trials ADD COLUMN final_checkpoint TEXT", vec![]),
            ("ALTER TABLE trials ADD COLUMN model_dir TEXT", vec![]),
            (rungs::RUNGS_TABLE, vec![]),
        ];
        for t in &rows {
            stmts.push((
                "UPDATE trials SET costs = ?2, metrics = ?3, final_checkpoint = ?4, model_dir = ?5 WHERE id = ?1",
                vec![
                    (t.id as i64).into(),
                    t.costs.as_ref().map(to_json).into(),
                    t.metrics.as_ref().map(to_json).into(),
                    t.final_checkpoint.clone().into(),
                    t.model_dir.clone().into(),
                ],
            ));
        }
        stmts.push(("UPDATE meta SET value = ?1 WHERE key = 'format'", vec![STUDY_FORMAT.to_string().into()]));
        stmts.push((
            "INSERT INTO events (time, kind, message) VALUES (?1, 'migrate', ?2)",
            vec![now().into(), format!("study format {OLDEST_FORMAT} -> {STUDY_FORMAT}, {} trials", rows.len()).into()],
        ));
        let at = self.at.clone();
        self.db.transaction(&stmts, false, &at)?;
        self.format = STUDY_FORMAT;
        Ok(())
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
        let mut j = Self::sqlite(conn, path, None);
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

    /// Checks the study format and remembers it; returns it.
    fn check_format(&mut self) -> Result<i64, SearchError> {
        let not = |reason: String| SearchError::NotAStudy { path: self.path.clone(), reason };
        let format = match self.db.query_one("SELECT value FROM meta WHERE key = 'format'", &[], &self.at) {
            Ok(row) => row.and_then(|r| r.first().and_then(Val::text)),
            Err(e) => return Err(not(format!("no danas meta table ({e})"))),
        };
        match format.as_deref().map(str::parse::<i64>) {
            Some(Ok(v)) if (OLDEST_FORMAT..=STUDY_FORMAT).contains(&v) => {
                self.format = v;
                Ok(v)
            }
            Some(Ok(v)) => {
                Err(not(format!("study format {v}, this danas reads formats {OLDEST_FORMAT} to {STUDY_FORMAT}")))
            }
            _ => Err(not("no study format in its meta table".into())),
        }
    }

    /// The study file (for a PostgreSQL study, its storage URL and name as a path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the study lives in PostgreSQL (shared with workers) rather than a file.
    pub fn is_postgres(&self) -> bool {
        self.db.is_postgres()
    }

    /// Whether processes on other machines share the study (its workers).
    pub fn is_shared(&self) -> bool {
        self.db.is_postgres()
    }

    /// Sets a meta value.
    ///
    /// # Errors
    /// Database errors.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), SearchError> {
        self.db.exec(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
            &[key.into(), value.into()],
            &self.at,
        )?;
        Ok(())
    }

    /// A meta value.
    ///
    /// # Errors
    /// Database errors.
    pub fn meta(&self, key: &str) -> Result<Option<String>, SearchError> {
        let row = self.db.query_one("SELECT value FROM meta WHERE key = ?1", &[key.into()], &self.at)?;
        Ok(row.and_then(|r| r.first().and_then(Val::text)))
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
        self.db.exec(
            "INSERT INTO trials (id, genome, candidate, status, seed, started_at) VALUES (?1, ?2, ?3, 'running', ?4, ?5)",
            &[(id as i64).into(), to_json(genome).into(), to_json(candidate).into(), (seed as i64).into(), now().into()],
            &self.at,
        )?;
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
        let mut stmts: Vec<db::Stmt<'_>> = vec![
            (
                "UPDATE trials SET status = ?2, costs = ?3, metrics = ?4, message = ?5, finished_at = ?6, eval_seconds = ?7, elapsed_at = ?8 WHERE id = ?1",
                vec![
                    (id as i64).into(),
                    end.status.as_str().into(),
                    end.costs.map(to_json).into(),
                    end.metrics.map(to_json).into(),
                    end.message.into(),
                    now().into(),
                    end.eval_seconds.into(),
                    elapsed_seconds.into(),
                ],
            ),
            ("UPDATE meta SET value = ?1 WHERE key = 'elapsed_seconds'", vec![elapsed_seconds.to_string().into()]),
        ];
        if let Some(ev) = optimizer_event {
            stmts.push(("INSERT INTO optimizer_events (event) VALUES (?1)", vec![ev.to_string().into()]));
        }
        let at = self.at.clone();
        // The update of an unknown id changes nothing: then nothing else is committed.
        if self.db.transaction(&stmts, true, &at)?.first() == Some(&0) {
            return Err(SearchError::UnknownTrial(id));
        }
        Ok(())
    }

    /// Appends an optimiser event (an ask or a tell) for replay on resume.
    ///
    /// # Errors
    /// Database errors.
    pub fn record_optimizer_event(&self, event: &Value) -> Result<(), SearchError> {
        self.db.exec("INSERT INTO optimizer_events (event) VALUES (?1)", &[event.to_string().into()], &self.at)?;
        Ok(())
    }

    /// The optimiser events in order.
    ///
    /// # Errors
    /// Database errors, or [`SearchError::Json`] for a malformed event.
    pub fn optimizer_events(&self) -> Result<Vec<Value>, SearchError> {
        let rows = self.db.query("SELECT seq, event FROM optimizer_events ORDER BY seq", &[], &self.at)?;
        rows.into_iter()
            .map(|r| {
                let seq = r.first().and_then(Val::int).unwrap_or(0);
                let text = r.get(1).and_then(Val::text).unwrap_or_default();
                serde_json::from_str(&text).map_err(|source| SearchError::Json {
                    path: self.path.clone(),
                    what: format!("optimizer event {seq}"),
                    source,
                })
            })
            .collect()
    }

    /// Records the final stage of a finished trial: its metrics with the test
    /// metrics added, the trained network and the exported model folder.
    ///
    /// # Errors
    /// [`SearchError::UnknownTrial`]; database errors.
    pub fn record_final(
        &self,
        id: u64,
        metrics: &Metrics,
        checkpoint: Option<&str>,
        model_dir: Option<&str>,
    ) -> Result<(), SearchError> {
        let n = self.db.exec(
            "UPDATE trials SET metrics = ?2, final_checkpoint = ?3, model_dir = ?4 WHERE id = ?1",
            &[(id as i64).into(), to_json(metrics).into(), checkpoint.into(), model_dir.into()],
            &self.at,
        )?;
        if n == 0 { Err(SearchError::UnknownTrial(id)) } else { Ok(()) }
    }

    /// Removes an interrupted (`running`) trial so it can be re-queued.
    ///
    /// # Errors
    /// Database errors.
    pub fn forget_running(&self, id: u64) -> Result<(), SearchError> {
        self.db.exec("DELETE FROM trials WHERE id = ?1 AND status = 'running'", &[(id as i64).into()], &self.at)?;
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
        let finals = if self.format >= 3 { "final_checkpoint, model_dir" } else { "NULL, NULL" };
        let columns = format!(
            "SELECT id, genome, candidate, status, seed, costs, metrics, message, started_at, finished_at, eval_seconds, elapsed_at, {finals} FROM trials"
        );
        let sql = match only {
            Some(_) => format!("{columns} WHERE id = ?1"),
            None => format!("{columns} ORDER BY id"),
        };
        let params: Vec<Val> = only.map(|id| Val::from(id as i64)).into_iter().collect();
        let rows = self.db.query(&sql, &params, &self.at)?;
        let mut out: Vec<TrialRecord> =
            rows.iter().map(|r| self.record(Row::from_vals(r))).collect::<Result<_, _>>()?;
        let mut rungs = self.rungs()?;
        rungs.sort_by_key(|r| (r.trial, r.rung));
        for r in rungs {
            if let Some(t) = out.iter_mut().find(|t| t.id == r.trial) {
                t.rungs.push(r);
            }
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
        self.db.exec(
            "INSERT INTO supernets (data_key, path, train_seconds, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(data_key) DO UPDATE SET path = ?2, train_seconds = ?3, created_at = ?4",
            &[data_key.into(), path.into(), train_seconds.into(), now().into()],
            &self.at,
        )?;
        Ok(())
    }

    /// The stored supernet of a data configuration.
    ///
    /// # Errors
    /// Database errors.
    pub fn supernet(&self, data_key: &str) -> Result<Option<SupernetRecord>, SearchError> {
        let row = self.db.query_one(
            "SELECT data_key, path, train_seconds, created_at FROM supernets WHERE data_key = ?1",
            &[data_key.into()],
            &self.at,
        )?;
        Ok(row.map(|r| SupernetRecord {
            data_key: r.first().and_then(Val::text).unwrap_or_default(),
            path: r.get(1).and_then(Val::text).unwrap_or_default(),
            train_seconds: r.get(2).and_then(Val::real).unwrap_or(0.0),
            created_at: r.get(3).and_then(Val::real).unwrap_or(0.0),
        }))
    }

    /// Appends an event (e.g. `resume`, `supernet`, `budget`) to the log.
    ///
    /// # Errors
    /// Database errors.
    pub fn event(&self, kind: &str, message: &str) -> Result<(), SearchError> {
        self.db.exec(
            "INSERT INTO events (time, kind, message) VALUES (?1, ?2, ?3)",
            &[now().into(), kind.into(), message.into()],
            &self.at,
        )?;
        Ok(())
    }

    /// The event log as (unix time, kind, message).
    ///
    /// # Errors
    /// Database errors.
    pub fn events(&self) -> Result<Vec<(f64, String, String)>, SearchError> {
        let rows = self.db.query("SELECT time, kind, message FROM events ORDER BY id", &[], &self.at)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.first().and_then(Val::real).unwrap_or(0.0),
                    r.get(1).and_then(Val::text).unwrap_or_default(),
                    r.get(2).and_then(Val::text).unwrap_or_default(),
                )
            })
            .collect())
    }
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
