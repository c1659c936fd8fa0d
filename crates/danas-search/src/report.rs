//! Outputs of a study: `trials.csv`, `pareto.csv`, `pareto.json`, plots (SVG and
//! PNG) and `report.md`, all rendered from the journal alone, so `danas report DIR`
//! can re-render them at any time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use danas_core::{Limits, metric};

use crate::{SearchError, TrialRecord, TrialStatus};

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
        match (self.rung, self.rung_val_accuracy) {
            (Some(r), Some(a)) => f64::from(r) * 10.0 + a,
            _ => self.val_accuracy.unwrap_or(0.0),
        }
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
    let pareto = crate::pareto::pareto_front(trials);
    let lim = LimitsShown::of(limits);
    let limits = &lim;
    let mut files = Vec::new();

    let p = dir.join("trials.csv");
    write_csv(&p, &rows.iter().collect::<Vec<_>>())?;
    files.push(p);
    if trials.iter().any(|t| !t.rungs.is_empty()) {
        let p = dir.join("rungs.csv");
        std::fs::write(&p, crate::halving::csv(trials)).map_err(io(&p))?;
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

    let complete: Vec<&TrialRow> =
        rows.iter().filter(|r| r.status == TrialStatus::Complete && r.val_accuracy.is_some()).collect();
    for (stem, label, get, lim, scale) in [
        (
            "accuracy_vs_ram",
            "arena (KiB)",
            (|r: &TrialRow| r.arena_bytes) as fn(&TrialRow) -> Option<f64>,
            limits.ram_bytes,
            1024.0,
        ),
        ("accuracy_vs_flash", "flash (KiB)", |r: &TrialRow| r.flash_bytes, limits.flash_bytes, 1024.0),
        ("accuracy_vs_latency", "latency (ms)", |r: &TrialRow| r.latency_ms, limits.latency_ms, 1.0),
    ] {
        let pts: Vec<(String, f64, f64, bool)> = complete
            .iter()
            .filter_map(|r| Some((r.data_key(), get(r)? / scale, r.val_accuracy?, r.feasible())))
            .collect();
        let svg = dir.join(format!("{stem}.svg"));
        let png = dir.join(format!("{stem}.png"));
        scatter(SVGBackend::new(&svg, (800, 560)).into_drawing_area(), label, &pts, lim.map(|l| l / scale))
            .map_err(|e| plot_err(&svg, e))?;
        scatter(BitMapBackend::new(&png, (800, 560)).into_drawing_area(), label, &pts, lim.map(|l| l / scale))
            .map_err(|e| plot_err(&png, e))?;
        files.push(svg);
        files.push(png);
    }

    // Best feasible validation accuracy over time.
    let start = trials.iter().map(|t| t.started_at).fold(f64::INFINITY, f64::min);
    let mut done: Vec<&TrialRow> = rows.iter().filter(|r| r.feasible() && r.val_accuracy.is_some()).collect();
    // Study time (all sessions) where journaled, else wall time since the first trial.
    let minutes = |r: &TrialRow| r.elapsed_at.or_else(|| Some((r.finished_at? - start).max(0.0))).map(|s| s / 60.0);
    done.sort_by(|a, b| minutes(a).unwrap_or(0.0).total_cmp(&minutes(b).unwrap_or(0.0)));
    let mut best = f64::NEG_INFINITY;
    let curve: Vec<(f64, f64)> = done
        .iter()
        .filter_map(|r| {
            best = best.max(r.val_accuracy?);
            Some((minutes(r)?, best))
        })
        .collect();
    let svg = dir.join("best_over_time.svg");
    let png = dir.join("best_over_time.png");
    line(SVGBackend::new(&svg, (800, 480)).into_drawing_area(), &curve).map_err(|e| plot_err(&svg, e))?;
    line(BitMapBackend::new(&png, (800, 480)).into_drawing_area(), &curve).map_err(|e| plot_err(&png, e))?;
    files.push(svg);
    files.push(png);

    let md = board_line(markdown(&rows, &pareto, limits), board);
    let p = dir.join("report.md");
    std::fs::write(&p, &md).map_err(io(&p))?;
    files.push(p);
    let mut plots = Vec::new();
    for stem in ["accuracy_vs_ram", "accuracy_vs_flash", "accuracy_vs_latency", "best_over_time"] {
        let svg = dir.join(format!("{stem}.svg"));
        plots.push((stem.replace('_', " "), std::fs::read_to_string(&svg).map_err(io(&svg))?));
    }
    let p = dir.join("report.html");
    std::fs::write(&p, crate::html::page(&md, &plots)).map_err(io(&p))?;
    files.push(p);
    Ok(Outputs { files, pareto: pareto.iter().map(|&i| rows[i].clone()).collect() })
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> SearchError {
    SearchError::Io { path: path.to_path_buf(), source: std::io::Error::other(format!("cannot draw plot: {e}")) }
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// The colours of the plots' series (matplotlib's `tab10`), in the order the
/// series are drawn; a plot with more series starts again at the first colour.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The 2-D Pareto front of `(x, accuracy)` points: lowest `x` for each accuracy
/// level, in increasing `x` (and accuracy).
fn front_2d(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted = pts.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for p in sorted {
        if out.last().is_none_or(|l| p.1 > l.1) {
            out.push(p);
        }
    }
    out
}

/// Accuracy against one resource: points coloured by data configuration, the
/// feasible region shaded, the 2-D Pareto front (accuracy vs this resource, among the
/// trials feasible under every limit) marked
/// with rings and a step line. Axes are zoomed to the data; `x` is logarithmic when
/// the points span more than a decade; a limit far beyond the points is noted in the
/// caption instead of stretching the axis.
fn scatter<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    xlabel: &str,
    pts: &[(String, f64, f64, bool)],
    limit: Option<f64>,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let (mut lo, mut hi) = pts.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if pts.is_empty() || !(lo.is_finite() && hi > 0.0) {
        (lo, hi) = (0.1, limit.unwrap_or(1.0).max(0.2));
    }
    lo = lo.max(1e-6);
    // Show the limit when it is near the data; otherwise everything shown is feasible.
    let limit_shown = limit.filter(|&l| l <= hi * 1.6);
    if let Some(l) = limit_shown {
        hi = hi.max(l);
    }
    let log = hi / lo > 10.0;
    let (x0, x1) = if log {
        (lo / 1.25, hi * 1.25)
    } else {
        let pad = ((hi - lo) * 0.08).max(hi * 0.02).max(1e-6);
        ((lo - pad).max(0.0), hi + pad)
    };
    let (ymin, ymax) = pts.iter().fold((1.0f64, 0.0f64), |(a, b), p| (a.min(p.2), b.max(p.2)));
    let (ymin, ymax) = if pts.is_empty() {
        (0.0, 1.0)
    } else {
        let pad = ((ymax - ymin) * 0.08).max(0.01);
        ((ymin - pad).max(0.0), (ymax + pad).min(1.0))
    };
    let caption = match (limit, limit_shown) {
        (Some(l), None) => format!("validation accuracy vs {xlabel} (limit {l:.0}, beyond the axis)"),
        _ => format!("validation accuracy vs {xlabel}"),
    };
    let feasible_to = limit.map(|l| l.min(x1));
    let mut chart = ChartBuilder::on(&area);
    chart.caption(caption, ("sans-serif", 20)).margin(12).x_label_area_size(40).y_label_area_size(56);
    if log {
        let c = chart.build_cartesian_2d((x0..x1).log_scale(), ymin..ymax)?;
        scatter_body(c, xlabel, pts, feasible_to, (x0, ymin, ymax))
    } else {
        let c = chart.build_cartesian_2d(x0..x1, ymin..ymax)?;
        scatter_body(c, xlabel, pts, feasible_to, (x0, ymin, ymax))
    }?;
    area.present()?;
    Ok(())
}

fn scatter_body<'a, DB, X>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    xlabel: &str,
    pts: &[(String, f64, f64, bool)],
    feasible_to: Option<f64>,
    (x0, ymin, ymax): (f64, f64, f64),
) -> PlotResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    chart.configure_mesh().x_desc(xlabel).y_desc("validation accuracy").draw()?;
    if let Some(l) = feasible_to {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, ymin), (l, ymax)],
                RGBColor(44, 160, 44).mix(0.12).filled(),
            )))?
            .label("feasible")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], RGBColor(44, 160, 44).mix(0.3).filled()));
    }
    let mut groups: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for (k, x, y, _) in pts {
        groups.entry(k.as_str()).or_default().push((*x, *y));
    }
    for (i, (key, g)) in groups.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(g.iter().map(|&(x, y)| Circle::new((x, y), 4, color.filled())))?
            .label(*key)
            .legend(move |(x, y)| Circle::new((x + 5, y), 4, color.filled()));
    }
    // The front among trials feasible under every limit.
    let feasible: Vec<(f64, f64)> = pts.iter().filter(|p| p.3).map(|p| (p.1, p.2)).collect();
    let front = front_2d(&feasible);
    if !front.is_empty() {
        let mut steps = Vec::with_capacity(2 * front.len());
        for (i, &(x, y)) in front.iter().enumerate() {
            if i > 0 {
                steps.push((x, front[i - 1].1));
            }
            steps.push((x, y));
        }
        chart
            .draw_series(LineSeries::new(steps, BLACK.stroke_width(1)))?
            .label("Pareto front")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK.stroke_width(1)));
        chart.draw_series(front.iter().map(|&(x, y)| Circle::new((x, y), 7, BLACK.stroke_width(2))))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn line<DB: DrawingBackend>(area: DrawingArea<DB, plotters::coord::Shift>, curve: &[(f64, f64)]) -> PlotResult
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let xmax = curve.iter().map(|p| p.0).fold(0.0f64, f64::max).max(1e-3) * 1.05;
    let ymin = curve.iter().map(|p| p.1).fold(1.0f64, f64::min);
    let ymin = if curve.is_empty() { 0.0 } else { (ymin - 0.05).max(0.0) };
    let mut chart = ChartBuilder::on(&area)
        .caption("best feasible validation accuracy over time", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..xmax, ymin..1.0)?;
    chart.configure_mesh().x_desc("minutes").y_desc("best feasible accuracy").draw()?;
    let mut steps = Vec::new();
    for (i, &(x, y)) in curve.iter().enumerate() {
        if i > 0 {
            steps.push((x, curve[i - 1].1));
        }
        steps.push((x, y));
    }
    chart.draw_series(LineSeries::new(steps, PALETTE[0].stroke_width(2)))?;
    chart.draw_series(curve.iter().map(|&(x, y)| Circle::new((x, y), 3, PALETTE[0].filled())))?;
    area.present()?;
    Ok(())
}

fn kib(v: Option<f64>) -> String {
    v.map(|b| format!("{:.1}", b / 1024.0)).unwrap_or_else(|| "-".into())
}

fn pct(v: Option<f64>) -> String {
    v.map(|a| format!("{:.2}", a * 100.0)).unwrap_or_else(|| "-".into())
}

fn markdown(rows: &[TrialRow], pareto: &[usize], limits: &LimitsShown) -> String {
    let mut s = md_summary(rows, limits);
    md_pareto(&mut s, rows, pareto);
    md_finals(&mut s, rows, pareto);
    md_best_per_limit(&mut s, rows, pareto, limits);
    md_data_configs(&mut s, rows, pareto);
    crate::halving::markdown(&mut s, rows);
    s.push_str("\nThe same report with the plots in one page: `report.html`. Plots: `accuracy_vs_ram`, `accuracy_vs_flash`, `accuracy_vs_latency` (feasible region shaded, colours = data configuration) and `best_over_time`, each as `.svg` and `.png`. All trials: `trials.csv`; the Pareto set: `pareto.csv`, `pareto.json`.\n");
    s
}

/// Adds the board after the limits line of a report.
fn board_line(md: String, board: Option<&danas_cost::Profile>) -> String {
    let Some(b) = board else { return md };
    let line = format!(
        "Board: {}. Flash figures include the runtime's {:.0} KiB.\n\n",
        b.describe(),
        b.runtime_flash_bytes as f64 / 1024.0
    );
    match md.find("Limits: ").and_then(|i| md[i..].find("\n\n").map(|j| i + j + 2)) {
        Some(at) => format!("{}{line}{}", &md[..at], &md[at..]),
        None => md + &line,
    }
}

/// Title, trial counts and the limits.
fn md_summary(rows: &[TrialRow], limits: &LimitsShown) -> String {
    let mut s = String::from("# danas search report\n\n");
    let count = |st: TrialStatus| rows.iter().filter(|r| r.status == st).count();
    let _ = writeln!(
        s,
        "{} trials: {} evaluated, {} rejected by the cost gate before training, {} failed, {} repeats of \
         candidates already evaluated (answered from the journal, not retrained), {} interrupted.\n",
        rows.len(),
        count(TrialStatus::Complete),
        count(TrialStatus::Infeasible),
        count(TrialStatus::Failed),
        count(TrialStatus::Repeat),
        count(TrialStatus::Running)
    );
    let lim = |v: Option<f64>, unit: &str, scale: f64| {
        v.map(|x| format!("{:.1} {unit}", x / scale)).unwrap_or_else(|| "none".into())
    };
    let _ = writeln!(
        s,
        "Limits: RAM (arena) {}, flash {}, latency {}.\n",
        lim(limits.ram_bytes, "KiB", 1024.0),
        lim(limits.flash_bytes, "KiB", 1024.0),
        lim(limits.latency_ms, "ms", 1.0)
    );
    s
}

/// The Pareto set table.
fn md_pareto(s: &mut String, rows: &[TrialRow], pareto: &[usize]) {
    let halving = rows.iter().any(|r| r.rung.is_some());
    s.push_str("## Pareto set (feasible, non-dominated on accuracy, RAM, flash, latency)\n\n");
    if halving {
        s.push_str("Accuracy here is each trial's standing after successive halving: the highest rung it\n");
        s.push_str("reached, then its validation accuracy there (`selected on`).\n\n");
        s.push_str("| trial | selected on | ");
    } else {
        s.push_str("| trial | ");
    }
    s.push_str("data | arch | val acc % | arena KiB | flash KiB | latency ms | MMACs | peak RAM set by |\n");
    s.push_str(if halving { "|---:|---|" } else { "|---:|" });
    s.push_str("---|---|---:|---:|---:|---:|---:|---|\n");
    for &i in pareto {
        let r = &rows[i];
        let selected = match (&r.rung_promotion, r.rung_val_accuracy) {
            (Some(p), acc) => format!(" {p}: {} |", pct(acc)),
            _ if halving => " proxy |".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "| {} |{selected} {} | {} | {} | {} | {} | {} | {} | {} |",
            r.id,
            r.data_key(),
            r.arch,
            pct(r.val_accuracy),
            kib(r.arena_bytes),
            kib(r.flash_bytes),
            r.latency_ms.map(|l| format!("{l:.1}")).unwrap_or_else(|| "-".into()),
            r.macs.map(|m| format!("{:.2}", m / 1e6)).unwrap_or_else(|| "-".into()),
            r.peak_op.as_deref().unwrap_or("-"),
        );
    }
    if pareto.is_empty() {
        s.push_str("\nNo feasible candidate was evaluated.\n");
    }
}

/// The final stage's retrained and exported models.
fn md_finals(s: &mut String, rows: &[TrialRow], pareto: &[usize]) {
    let finals: Vec<&TrialRow> = pareto.iter().map(|&i| &rows[i]).filter(|r| r.test_accuracy.is_some()).collect();
    if !finals.is_empty() {
        s.push_str("\n## Final stage: retrained and exported models\n\n");
        s.push_str("The most accurate Pareto candidates, retrained; **test** accuracy of the float network and of\n");
        s.push_str("the deployable int8 model (danas's int8 evaluator computes what TFLM computes).\n\n");
        s.push_str(
            "| trial | data | arch | val acc % | test acc % | int8 test acc % | arena KiB | flash KiB | model |\n",
        );
        s.push_str("|---:|---|---|---:|---:|---:|---:|---:|---|\n");
        for r in finals {
            let model = r
                .model_dir
                .as_deref()
                .map(|d| format!("[{d}/model.tflite]({d}/model.tflite) ([manifest]({d}/manifest.json))"))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {model} |",
                r.id,
                r.data_key(),
                r.arch,
                pct(r.val_accuracy),
                pct(r.test_accuracy),
                pct(r.int8_test_accuracy),
                kib(r.arena_bytes),
                kib(r.flash_bytes),
            );
        }
    }
}

/// The most accurate Pareto member under fractions of the RAM limit.
fn md_best_per_limit(s: &mut String, rows: &[TrialRow], pareto: &[usize], limits: &LimitsShown) {
    s.push_str("\n## Best system per limit\n\n");
    let feas: Vec<&TrialRow> = pareto.iter().map(|&i| &rows[i]).collect();
    if let Some(ram) = limits.ram_bytes {
        s.push_str(
            "The most accurate system under each RAM limit, from the search's limit down to the smallest \
             Pareto system; only limits that change the answer are listed.\n\n",
        );
        s.push_str("| RAM limit KiB | best val acc % | data | arch | arena KiB |\n|---:|---:|---|---|---:|\n");
        // Candidate limits: the search's, then each Pareto system's own arena, largest first.
        let mut caps: Vec<f64> = feas.iter().filter_map(|r| r.arena_bytes).filter(|&b| b < ram).collect();
        caps.sort_by(|a, b| b.total_cmp(a));
        caps.dedup();
        caps.insert(0, ram);
        let mut last: Option<u64> = None;
        let mut listed = 0;
        for cap in caps {
            let best = feas
                .iter()
                .filter(|r| r.arena_bytes.is_some_and(|b| b <= cap))
                .max_by(|a, b| a.selection_key().total_cmp(&b.selection_key()));
            match best {
                Some(r) if last != Some(r.id) => {
                    last = Some(r.id);
                    listed += 1;
                    let _ = writeln!(
                        s,
                        "| {:.1} | {} | {} | {} | {} |",
                        cap / 1024.0,
                        pct(r.val_accuracy),
                        r.data_key(),
                        r.arch,
                        kib(r.arena_bytes)
                    );
                }
                _ => {}
            }
            if listed >= 8 {
                break;
            }
        }
        if listed == 0 {
            let _ = writeln!(s, "| {:.1} | - | - | - | - |", ram / 1024.0);
        }
    }
}

/// Per data configuration: trials, infeasible ones, best accuracy, Pareto members.
fn md_data_configs(s: &mut String, rows: &[TrialRow], pareto: &[usize]) {
    let feas: Vec<&TrialRow> = pareto.iter().map(|&i| &rows[i]).collect();
    s.push_str("\n## Data configurations\n\n| data | evaluated | infeasible | best val acc % | on the Pareto set |\n|---|---:|---:|---:|---:|\n");
    let mut keys: Vec<String> = rows.iter().map(TrialRow::data_key).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let of: Vec<&TrialRow> = rows.iter().filter(|r| r.data_key() == k).collect();
        let best = of
            .iter()
            .filter(|r| r.feasible())
            .filter_map(|r| r.val_accuracy)
            .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.max(a))));
        let _ = writeln!(
            s,
            "| {k} | {} | {} | {} | {} |",
            of.iter().filter(|r| r.status == TrialStatus::Complete).count(),
            of.iter().filter(|r| r.status == TrialStatus::Infeasible).count(),
            pct(best),
            feas.iter().filter(|r| r.data_key() == k).count()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::front_2d;

    #[test]
    fn the_2d_front_keeps_the_cheapest_point_of_each_accuracy_level() {
        let pts = [(3.0, 0.5), (1.0, 0.2), (2.0, 0.6), (2.0, 0.4), (4.0, 0.55), (5.0, 0.9), (1.0, 0.1)];
        assert_eq!(front_2d(&pts), vec![(1.0, 0.2), (2.0, 0.6), (5.0, 0.9)]);
        assert!(front_2d(&[]).is_empty());
    }
}
