//! Small PNG/SVG plots for the reproduction reports.

use std::path::Path;

use anyhow::{Result, anyhow};
use danas_search::report::PALETTE;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One named series of (x, y) points.
pub type Series = (String, Vec<(f64, f64)>);

/// What to draw.
pub struct Figure<'a> {
    /// The caption above the chart.
    pub title: &'a str,
    /// The label of the horizontal axis.
    pub xlabel: &'a str,
    /// The label of the vertical axis.
    pub ylabel: &'a str,
    /// The series, one colour each (in [`PALETTE`] order) and named in the legend.
    pub series: &'a [Series],
    /// Connect the points of each series (else scatter).
    pub lines: bool,
    /// Draw y = x.
    pub diagonal: bool,
    /// Logarithmic axes (both).
    pub log: bool,
}

impl<'a> Figure<'a> {
    /// Each series as points joined by lines, on linear axes (e.g. a quantity over time).
    pub fn lines(title: &'a str, xlabel: &'a str, ylabel: &'a str, series: &'a [Series]) -> Self {
        Self { title, xlabel, ylabel, series, lines: true, diagonal: false, log: false }
    }

    /// Each series as a scatter against the diagonal y = x (e.g. an estimate against
    /// the true value), on linear axes.
    pub fn against_diagonal(title: &'a str, xlabel: &'a str, ylabel: &'a str, series: &'a [Series]) -> Self {
        Self { title, xlabel, ylabel, series, lines: false, diagonal: true, log: false }
    }

    /// The same figure on logarithmic axes.
    pub fn log_axes(self) -> Self {
        Self { log: true, ..self }
    }
}

/// Writes `stem.png` and `stem.svg` under `dir`.
pub fn draw(dir: &Path, stem: &str, fig: &Figure<'_>) -> Result<()> {
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    render(BitMapBackend::new(&png, (860, 560)).into_drawing_area(), fig)
        .map_err(|e| anyhow!("cannot draw {}: {e}", png.display()))?;
    render(SVGBackend::new(&svg, (860, 560)).into_drawing_area(), fig)
        .map_err(|e| anyhow!("cannot draw {}: {e}", svg.display()))?;
    Ok(())
}

fn bounds(fig: &Figure<'_>) -> (f64, f64, f64, f64) {
    let pts = fig.series.iter().flat_map(|s| s.1.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        return (0.0, 1.0, 0.0, 1.0);
    }
    if fig.diagonal {
        let (lo, hi) = (x0.min(y0), x1.max(y1));
        (x0, x1, y0, y1) = (lo, hi, lo, hi);
    }
    if fig.log {
        let (x0, y0) = (x0.max(1e-9), y0.max(1e-9));
        return (x0 / 1.3, x1 * 1.3, y0 / 1.3, y1 * 1.3);
    }
    let pad = |a: f64, b: f64| {
        let d = if b > a { (b - a) * 0.06 } else { a.abs().max(1.0) * 0.05 };
        (a - d, b + d)
    };
    let (x0, x1) = pad(x0, x1);
    let (y0, y1) = pad(y0, y1);
    (x0, x1, y0, y1)
}

fn render<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, fig: &Figure<'_>) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let (x0, x1, y0, y1) = bounds(fig);
    let mut builder = ChartBuilder::on(&area);
    builder.caption(fig.title, ("sans-serif", 20)).margin(14).x_label_area_size(42).y_label_area_size(64);
    if fig.log {
        let mut chart = builder.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
        chart.configure_mesh().x_desc(fig.xlabel).y_desc(fig.ylabel).draw()?;
        if fig.diagonal {
            chart.draw_series(LineSeries::new([(x0, x0), (x1, x1)], BLACK.mix(0.4)))?;
        }
        for (i, (name, pts)) in fig.series.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(pts.iter().map(|&(x, y)| Circle::new((x, y), 4, c.filled())))?
                .label(name.as_str())
                .legend(move |(x, y)| Circle::new((x + 5, y), 4, c.filled()));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
    } else {
        let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1)?;
        chart.configure_mesh().x_desc(fig.xlabel).y_desc(fig.ylabel).draw()?;
        if fig.diagonal {
            chart.draw_series(LineSeries::new([(x0, x0), (x1, x1)], BLACK.mix(0.4)))?;
        }
        for (i, (name, pts)) in fig.series.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            let good: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
            if fig.lines {
                chart.draw_series(LineSeries::new(good.clone(), c.stroke_width(2)))?;
            }
            chart
                .draw_series(good.iter().map(|&(x, y)| Circle::new((x, y), 4, c.filled())))?
                .label(name.as_str())
                .legend(move |(x, y)| Circle::new((x + 5, y), 4, c.filled()));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
    }
    area.present()?;
    Ok(())
}
