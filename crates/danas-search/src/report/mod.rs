//! Outputs of a study: `trials.csv`, `pareto.csv`, `pareto.json`, plots (SVG and
//! PNG) and `report.md`, all rendered from the journal alone, so `danas report DIR`
//! can re-render them at any time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use danas_core::{Limits, metric};

use crate::selection::Standing;
use crate::{SearchError, TrialRecord, TrialStatus};

mod markdown;
#[cfg(feature = "plot")]
mod plot;

#[cfg(feature = "plot")]
pub use plot::PALETTE;

/// One trial flattened for tables and plots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRow {
    /// Trial id.
    pub id: u64,
    /// Status.
    pub status: TrialStatus,
    /// Input resolution.
    pub resolution: u32,
    /// Colour encoding.
    pub color: String,
    /// Width multiplier.
    pub alpha: f64,
    /// Stage depths, e.g. `3,4,3,3,1`.
    pub depths: String,
    /// The whole architecture as text.
    pub arch: String,
    /// Validation accuracy.
    pub val_accuracy: Option<f64>,
    /// Validation balanced accuracy.
    pub val_balanced_accuracy: Option<f64>,
    /// Test accuracy (final stage only).
    pub test_accuracy: Option<f64>,
    /// Test accuracy of the exported int8 model (final stage only).
    pub int8_test_accuracy: Option<f64>,
    /// The exported model's directory, relative to the results directory (final stage only).
    pub model_dir: Option<String>,
    /// Arena bytes (TFLM head + tail + scratch).
    pub arena_bytes: Option<f64>,
    /// Flash bytes (model + runtime).
    pub flash_bytes: Option<f64>,
    /// Estimated latency.
    pub latency_ms: Option<f64>,
    /// Multiply-accumulates.
    pub macs: Option<f64>,
    /// Parameters.
    pub params: Option<f64>,
    /// The op that sets the peak RAM.
    pub peak_op: Option<String>,
    /// Seconds of evaluation.
    pub eval_seconds: Option<f64>,
    /// Unix time it finished.
    pub finished_at: Option<f64>,
    /// Study seconds (all sessions) when it finished.
    pub elapsed_at: Option<f64>,
    /// Why infeasible or failed.
    pub message: Option<String>,
    /// The highest rung of successive halving above the proxy it reached (none:
    /// scored by the proxy only); selection ranks by it first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<u32>,
    /// What that rung did, e.g. `retrain 300`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung_promotion: Option<String>,
    /// Validation accuracy at that rung.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung_val_accuracy: Option<f64>,
}

impl TrialRow {
    /// Flattens a journal record.
    pub fn from_record(t: &TrialRecord) -> Self {
        let c = &t.candidate;
        let costs = t.costs.as_ref();
        let m = |key: &str| t.metrics.as_ref().and_then(|m| m.value(key));
        let top = t.rungs.iter().filter(|r| r.metrics.value(metric::VAL_ACCURACY).is_some()).max_by_key(|r| r.rung);
        Self {
            id: t.id,
            status: t.status,
            resolution: c.data.resolution,
            color: c.data.color.to_string(),
            alpha: c.arch.alpha,
            depths: c.arch.depths.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
            arch: c.arch.to_string(),
            val_accuracy: m(metric::VAL_ACCURACY),
            val_balanced_accuracy: m("val_balanced_accuracy"),
            test_accuracy: m(metric::TEST_ACCURACY),
            int8_test_accuracy: m(metric::INT8_TEST_ACCURACY),
            model_dir: t.model_dir.clone(),
            arena_bytes: costs.map(|c| c.arena_bytes as f64),
            flash_bytes: costs.map(|c| c.flash_bytes as f64),
            latency_ms: costs.and_then(|c| c.latency_ms),
            macs: costs.and_then(|c| c.macs).map(|x| x as f64),
            params: costs.and_then(|c| c.params).map(|x| x as f64),
            peak_op: costs.and_then(|c| c.peak_op.clone()),
            eval_seconds: t.eval_seconds,
            finished_at: t.finished_at,
            elapsed_at: t.elapsed_at,
            message: t.message.clone(),
            rung: top.map(|r| r.rung),
            rung_promotion: top.map(|r| r.promotion.to_string()),
            rung_val_accuracy: top.and_then(|r| r.metrics.value(metric::VAL_ACCURACY)),
        }
    }

    /// The data configuration as `96/rgb`.
    pub fn data_key(&self) -> String {
        format!("{}/{}", self.resolution, self.color)
    }

    /// How selection ranks it: the highest rung of successive halving reached, then
    /// the validation accuracy there (the proxy's when never promoted).
    pub fn selection_key(&self) -> f64 {
        let standing = match (self.rung, self.rung_val_accuracy) {
            (Some(rung), Some(accuracy)) => Standing { rung, accuracy },
            _ => Standing { rung: 0, accuracy: self.val_accuracy.unwrap_or(0.0) },
        };
        standing.key()
    }

    /// Whether the cost gate passed it and it was evaluated.
    fn feasible(&self) -> bool {
        self.status == TrialStatus::Complete
    }
}

/// The limits as the plots and tables show them (`None`: not limited).
struct LimitsShown {
    ram_bytes: Option<f64>,
    flash_bytes: Option<f64>,
    latency_ms: Option<f64>,
}

impl LimitsShown {
    fn of(l: Option<&Limits>) -> Self {
        Self {
            ram_bytes: l.map(|l| l.ram_bytes as f64),
            flash_bytes: l.map(|l| l.flash_bytes as f64),
            latency_ms: l.and_then(|l| l.latency_ms),
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SearchError + '_ {
    move |source| SearchError::Io { path: path.to_path_buf(), source }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| if x.fract() == 0.0 && x.abs() < 1e15 { format!("{x:.0}") } else { format!("{x:.6}") })
        .unwrap_or_default()
}

fn write_csv(path: &Path, rows: &[&TrialRow]) -> Result<(), SearchError> {
    let mut s = String::from(
        "id,status,resolution,color,alpha,depths,arch,val_accuracy,val_balanced_accuracy,test_accuracy,arena_bytes,flash_bytes,latency_ms,macs,params,peak_op,eval_seconds,elapsed_s,message\n",
    );
    for r in rows {
        let status =
            serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.id,
            status,
            r.resolution,
            r.color,
            r.alpha,
            csv_field(&r.depths),
            csv_field(&r.arch),
            opt(r.val_accuracy),
            opt(r.val_balanced_accuracy),
            opt(r.test_accuracy),
            opt(r.arena_bytes),
            opt(r.flash_bytes),
            opt(r.latency_ms),
            opt(r.macs),
            opt(r.params),
            csv_field(r.peak_op.as_deref().unwrap_or("")),
            opt(r.eval_seconds),
            opt(r.elapsed_at),
            csv_field(r.message.as_deref().unwrap_or("")),
        );
    }
    std::fs::write(path, s).map_err(io(path))
}

/// What [`write_outputs`] wrote.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// Every file written.
    pub files: Vec<PathBuf>,
    /// The Pareto set, best validation accuracy first.
    pub pareto: Vec<TrialRow>,
}

/// Renders every output of a study into `dir` from its trial records.
///
/// # Errors
/// [`SearchError::Io`] naming the file that could not be written.
pub fn write_outputs(dir: &Path, trials: &[TrialRecord], limits: Option<&Limits>) -> Result<Outputs, SearchError> {
    write_outputs_on(dir, trials, limits, None)
}

/// [`write_outputs`] for a study on `board`: report.md names the board, its kernel
/// library and where the limits come from.
///
/// # Errors
/// [`SearchError::Io`] naming the file that could not be written.
pub fn write_outputs_on(
    dir: &Path,
    trials: &[TrialRecord],
    limits: Option<&Limits>,
    board: Option<&danas_cost::Profile>,
) -> Result<Outputs, SearchError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let rows: Vec<TrialRow> = trials.iter().map(TrialRow::from_record).collect();
    let pareto = crate::selection::pareto_front(trials);
    let lim = LimitsShown::of(limits);
    let limits = &lim;
    let mut files = Vec::new();

    let p = dir.join("trials.csv");
    write_csv(&p, &rows.iter().collect::<Vec<_>>())?;
    files.push(p);
    if trials.iter().any(|t| !t.rungs.is_empty()) {
        let p = dir.join("rungs.csv");
        std::fs::write(&p, markdown::rungs_csv(trials)).map_err(io(&p))?;
        files.push(p);
    }
    let pareto_rows: Vec<&TrialRow> = pareto.iter().map(|&i| &rows[i]).collect();
    let p = dir.join("pareto.csv");
    write_csv(&p, &pareto_rows)?;
    files.push(p);
    let p = dir.join("pareto.json");
    let json: Vec<Value> = pareto_rows
        .iter()
        .map(|r| {
            let mut v = serde_json::json!({
                "id": r.id,
                "resolution": r.resolution,
                "color": r.color,
                "alpha": r.alpha,
                "depths": r.depths.split(',').filter_map(|d| d.parse::<u32>().ok()).collect::<Vec<_>>(),
                "arch": r.arch,
                "val_accuracy": r.val_accuracy,
                "val_balanced_accuracy": r.val_balanced_accuracy,
                "test_accuracy": r.test_accuracy,
                "arena_bytes": r.arena_bytes,
                "flash_bytes": r.flash_bytes,
                "latency_ms": r.latency_ms,
                "macs": r.macs,
                "params": r.params,
                "peak_op": r.peak_op,
            });
            if let (Some(rung), Some(obj)) = (r.rung, v.as_object_mut()) {
                obj.insert(
                    "selection".into(),
                    serde_json::json!({"rung": rung, "promotion": r.rung_promotion, "val_accuracy": r.rung_val_accuracy}),
                );
            }
            v
        })
        .collect();
    let text = serde_json::to_string_pretty(&json).unwrap_or_else(|_| "[]".into());
    std::fs::write(&p, text).map_err(io(&p))?;
    files.push(p);

    #[cfg(feature = "plot")]
    plot::draw(dir, trials, &rows, limits, &mut files)?;

    let md = markdown::board_line(markdown::markdown(&rows, &pareto, limits), board);
    let p = dir.join("report.md");
    std::fs::write(&p, &md).map_err(io(&p))?;
    files.push(p);
    // Without the `plot` feature the page has the tables only.
    let mut plots = Vec::new();
    let stems = ["accuracy_vs_ram", "accuracy_vs_flash", "accuracy_vs_latency", "best_over_time"];
    for stem in if cfg!(feature = "plot") { &stems[..] } else { &[] } {
        let svg = dir.join(format!("{stem}.svg"));
        plots.push((stem.replace('_', " "), std::fs::read_to_string(&svg).map_err(io(&svg))?));
    }
    let p = dir.join("report.html");
    std::fs::write(&p, crate::html::page(&md, &plots)).map_err(io(&p))?;
    files.push(p);
    Ok(Outputs { files, pareto: pareto.iter().map(|&i| rows[i].clone()).collect() })
}
