//! Rows of the trials table as stored, and their reading into typed records
//! (format-2 rows converted on the way).

use serde_json::Value;

use super::{Journal, Val, legacy};
use crate::SearchError;
use crate::record::{TrialRecord, TrialStatus};

impl Journal {
    /// A trial row as a typed record (format 2 rows are converted on the way).
    pub(super) fn record(&self, row: Row) -> Result<TrialRecord, SearchError> {
        let id = row.id;
        let bad = |what: &str, source: serde_json::Error| SearchError::Json {
            path: self.path.clone(),
            what: format!("trial {id} {what}"),
            source,
        };
        let status = TrialStatus::parse(&row.status)
            .ok_or_else(|| bad(&format!("status {:?}", row.status), serde::de::Error::custom("unknown status")))?;
        let mut rec = TrialRecord {
            id: id as u64,
            genome: serde_json::from_str(&row.genome).map_err(|e| bad("genome", e))?,
            candidate: serde_json::from_str(&row.candidate).map_err(|e| bad("candidate", e))?,
            status,
            seed: row.seed as u64,
            costs: None,
            metrics: None,
            final_checkpoint: row.final_checkpoint,
            model_dir: row.model_dir,
            message: row.message,
            started_at: row.started_at,
            finished_at: row.finished_at,
            eval_seconds: row.eval_seconds,
            elapsed_at: row.elapsed_at,
            rungs: Vec::new(),
        };
        if self.format >= 3 {
            rec.costs = row.costs.as_deref().map(serde_json::from_str).transpose().map_err(|e| bad("costs", e))?;
            rec.metrics =
                row.metrics.as_deref().map(serde_json::from_str).transpose().map_err(|e| bad("metrics", e))?;
        } else {
            let value = |text: Option<&str>, what: &str| -> Result<Option<Value>, SearchError> {
                text.map(serde_json::from_str).transpose().map_err(|e| bad(what, e))
            };
            rec.costs = value(row.costs.as_deref(), "costs")?.as_ref().map(legacy::costs);
            if let Some(m) = value(row.metrics.as_deref(), "metrics")? {
                let (metrics, checkpoint, model_dir) = legacy::metrics(&m);
                rec.metrics = Some(metrics);
                rec.final_checkpoint = checkpoint;
                rec.model_dir = model_dir;
            }
        }
        Ok(rec)
    }
}

/// One row of the trials table, as stored.
pub(super) struct Row {
    id: i64,
    genome: String,
    candidate: String,
    status: String,
    seed: i64,
    costs: Option<String>,
    metrics: Option<String>,
    message: Option<String>,
    started_at: f64,
    finished_at: Option<f64>,
    eval_seconds: Option<f64>,
    elapsed_at: Option<f64>,
    final_checkpoint: Option<String>,
    model_dir: Option<String>,
}

impl Row {
    /// The row of `select_trials`' columns.
    pub(super) fn from_vals(v: &[Val]) -> Self {
        let text = |i: usize| v.get(i).and_then(Val::text);
        let real = |i: usize| v.get(i).and_then(Val::real);
        let int = |i: usize| v.get(i).and_then(Val::int).unwrap_or(0);
        Row {
            id: int(0),
            genome: text(1).unwrap_or_default(),
            candidate: text(2).unwrap_or_default(),
            status: text(3).unwrap_or_default(),
            seed: int(4),
            costs: text(5),
            metrics: text(6),
            message: text(7),
            started_at: real(8).unwrap_or(0.0),
            finished_at: real(9),
            eval_seconds: real(10),
            elapsed_at: real(11),
            final_checkpoint: text(12),
            model_dir: text(13),
        }
    }
}
