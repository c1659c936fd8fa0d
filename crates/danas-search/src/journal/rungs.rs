//! The rungs of successive halving in the study file: one row per (trial, rung).

use rusqlite::{OptionalExtension, params};

use super::{Journal, now, to_json};
use crate::SearchError;
use crate::halving::{Promotion, RungRecord};

/// The table (created by new studies and by the migration of old ones).
pub(super) const RUNGS_TABLE: &str = "CREATE TABLE IF NOT EXISTS rungs (
    trial INTEGER NOT NULL,
    rung INTEGER NOT NULL,
    promotion TEXT NOT NULL,
    metrics TEXT NOT NULL,
    eval_seconds REAL NOT NULL,
    finished_at REAL NOT NULL,
    elapsed_at REAL NOT NULL,
    PRIMARY KEY (trial, rung)
);";

impl Journal {
    /// Records a trial's result at a rung above the proxy (replacing an earlier one
    /// of the same rung), and the study clock.
    ///
    /// # Errors
    /// [`SearchError::UnknownTrial`]; database errors.
    pub fn record_rung(
        &mut self,
        trial: u64,
        rung: u32,
        promotion: Promotion,
        metrics: &danas_core::Metrics,
        eval_seconds: f64,
        elapsed_seconds: f64,
    ) -> Result<RungRecord, SearchError> {
        if self.trial(trial)?.is_none() {
            return Err(SearchError::UnknownTrial(trial));
        }
        let path = self.path.clone();
        let db = |source| SearchError::Db { path: path.clone(), source };
        let finished_at = now();
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute(
            "INSERT OR REPLACE INTO rungs (trial, rung, promotion, metrics, eval_seconds, finished_at, elapsed_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                trial as i64,
                i64::from(rung),
                to_json(&promotion),
                to_json(metrics),
                eval_seconds,
                finished_at,
                elapsed_seconds
            ],
        )
        .map_err(db)?;
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'elapsed_seconds'", [elapsed_seconds.to_string()])
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(RungRecord {
            trial,
            rung,
            promotion,
            metrics: metrics.clone(),
            eval_seconds,
            finished_at,
            elapsed_at: elapsed_seconds,
        })
    }

    /// Every rung result, in the order they finished (none in a study without the table).
    ///
    /// # Errors
    /// Database errors; [`SearchError::Json`] for a malformed stored value.
    pub fn rungs(&self) -> Result<Vec<RungRecord>, SearchError> {
        let exists: Option<String> = self
            .conn
            .query_row("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'rungs'", [], |r| r.get(0))
            .optional()
            .map_err(self.db())?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT trial, rung, promotion, metrics, eval_seconds, finished_at, elapsed_at FROM rungs ORDER BY rowid",
            )
            .map_err(self.db())?;
        type Row = (i64, i64, String, String, f64, f64, f64);
        let rows: Vec<Row> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
            .map_err(self.db())?
            .collect::<Result<_, _>>()
            .map_err(self.db())?;
        rows.into_iter()
            .map(|(trial, rung, promotion, metrics, eval_seconds, finished_at, elapsed_at)| {
                let bad = |what: &str, source| SearchError::Json {
                    path: self.path.clone(),
                    what: format!("rung {rung} of trial {trial}: {what}"),
                    source,
                };
                Ok(RungRecord {
                    trial: trial as u64,
                    rung: rung as u32,
                    promotion: serde_json::from_str(&promotion).map_err(|e| bad("promotion", e))?,
                    metrics: serde_json::from_str(&metrics).map_err(|e| bad("metrics", e))?,
                    eval_seconds,
                    finished_at,
                    elapsed_at,
                })
            })
            .collect()
    }
}
