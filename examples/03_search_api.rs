//! Drive a small search from Rust, with a custom observer.
//!
//! `SearchConfig` holds every setting (validated before any work starts);
//! `build` wires the synthetic data, the cost gate, the optimiser and the supernet
//! evaluator into a `Search`, which we run with our own observer attached.
//!
//! Run with `cargo run --release --example 03_search_api`.

use danas::search::config::SearchConfig;
use danas::search::{Control, Observer, SearchEvent, TrialStatus};

/// Prints every trial and stops early once a candidate reaches 99 % validation accuracy.
struct Printer;

impl Observer for Printer {
    fn on_event(&mut self, e: &SearchEvent<'_>) -> Control {
        match e {
            SearchEvent::Phase(p) if p.starts_with("training supernet") && !p.contains("step") => println!("  {p}"),
            SearchEvent::Trial { record, progress } => {
                let acc = record.metrics.as_ref().and_then(|m| m.value(danas::core::metric::VAL_ACCURACY));
                let ram = record.costs.as_ref().map(|c| c.arena_bytes as f64);
                println!(
                    "  trial {:>2} {:<32} {:<10} acc {:>6} arena {:>7}",
                    record.id,
                    record.candidate.to_string(),
                    format!("{:?}", record.status).to_lowercase(),
                    acc.map(|a| format!("{:.1}%", a * 100.0)).unwrap_or_else(|| "-".into()),
                    ram.map(|b| format!("{:.1}K", b / 1024.0)).unwrap_or_else(|| "-".into()),
                );
                if record.status == TrialStatus::Complete && progress.best_feasible.unwrap_or(0.0) >= 0.99 {
                    return Control::Stop;
                }
            }
            _ => {}
        }
        Control::Continue
    }
}

fn main() -> anyhow::Result<()> {
    let mut cfg = SearchConfig {
        space: "demo".into(),
        optimizer: danas::optim::OptimizerKind::AgingEvolution,
        ram_kib: Some(64.0),
        flash_kib: Some(256.0),
        budget: Some("3m".into()),
        max_trials: Some(6),
        train_limit: Some(512),
        eval_limit: Some(256),
        fixed_data: Some("16,rgb".into()),
        ..SearchConfig::default()
    };
    cfg.supernet.steps = 15;
    cfg.supernet.batch_size = 32;
    let dir = std::env::temp_dir().join(format!("danas-example-03-{}", std::process::id()));
    let search = cfg.build(&dir)?.observer(Box::new(Printer));
    let summary = search.run()?;
    println!(
        "{} evaluated, {} infeasible skipped; best feasible {:.1}%; Pareto set of {}; outputs in {}",
        summary.progress.evaluated,
        summary.progress.infeasible,
        summary.progress.best_feasible.unwrap_or(0.0) * 100.0,
        summary.outputs.pareto.len(),
        dir.display()
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
