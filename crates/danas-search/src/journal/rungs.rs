//! The rungs of successive halving in the study file: one row per (trial, rung).

use super::{Journal, Val, now, to_json};
use crate::SearchError;
use crate::record::{Promotion, RungRecord};

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
        let finished_at = now();
        let key = vec![Val::from(trial as i64), Val::from(i64::from(rung))];
        let at = self.at.clone();
        // Delete and insert (rather than an upsert) so the row moves to the end of the
        // finishing order on both backends.
        self.db.transaction(
            &[
                ("DELETE FROM rungs WHERE trial = ?1 AND rung = ?2", key.clone()),
                (
                    "INSERT INTO rungs (trial, rung, promotion, metrics, eval_seconds, finished_at, elapsed_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    vec![
                        key[0].clone(),
                        key[1].clone(),
                        to_json(&promotion).into(),
                        to_json(metrics).into(),
                        eval_seconds.into(),
                        finished_at.into(),
                        elapsed_seconds.into(),
                    ],
                ),
                ("UPDATE meta SET value = ?1 WHERE key = 'elapsed_seconds'", vec![elapsed_seconds.to_string().into()]),
            ],
            false,
            &at,
        )?;
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
        if !self.db.has_table("rungs", &self.at)? {
            return Ok(Vec::new());
        }
        let order = if self.db.is_postgres() { "seq" } else { "rowid" };
        let sql = format!(
            "SELECT trial, rung, promotion, metrics, eval_seconds, finished_at, elapsed_at FROM rungs ORDER BY {order}"
        );
        let rows: Vec<(i64, i64, String, String, f64, f64, f64)> = self
            .db
            .query(&sql, &[], &self.at)?
            .into_iter()
            .map(|r| {
                let int = |i: usize| r.get(i).and_then(Val::int).unwrap_or(0);
                let real = |i: usize| r.get(i).and_then(Val::real).unwrap_or(0.0);
                let text = |i: usize| r.get(i).and_then(Val::text).unwrap_or_default();
                (int(0), int(1), text(2), text(3), real(4), real(5), real(6))
            })
            .collect();
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
