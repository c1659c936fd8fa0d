//! The plots of a study's report: accuracy against each resource and the best
//! accuracy over time, each as SVG and PNG.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::{LimitsShown, TrialRow};
use crate::selection::front_2d;
use crate::{SearchError, TrialRecord, TrialStatus};

/// Draws every plot of the report into `dir`, adding the files to `files`.
pub(super) fn draw(
    dir: &Path,
    trials: &[TrialRecord],
    rows: &[TrialRow],
    limits: &LimitsShown,
    files: &mut Vec<PathBuf>,
) -> Result<(), SearchError> {
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
    Ok(())
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
