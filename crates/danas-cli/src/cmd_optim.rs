//! `danas optim`: optimiser tools. `danas optim bench` compares the built-in
//! strategies on the synthetic NAS landscape under RAM/flash limits.

use std::sync::Arc;

use anyhow::Context;
use danas_core::Precision;
use danas_cost::Profile;
use danas_optim::synthetic::{CostFn, Landscape, StrategyReport, SyntheticProblem, compare_strategies, stand_in_cost};
use danas_optim::{Limits, OptimizerKind};
use danas_space::MbSpace;

use crate::InputError;

/// Arguments of `danas optim`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: OptimCommand,
}

#[derive(clap::Subcommand, Debug)]
enum OptimCommand {
    /// Compare the strategies on the synthetic landscape (median best feasible accuracy and hypervolume over seeds).
    Bench(BenchArgs),
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// Print a JSON array (one object per strategy) instead of a table.
    #[arg(long)]
    json: bool,
    /// Number of seeds (seeds 0..N; each seeds both the optimiser and the landscape noise).
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// Evaluations (told trials) per run.
    #[arg(long, default_value_t = 100)]
    budget: usize,
    /// Proposals asked at once.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Comma-separated optimisers (default: all).
    #[arg(long, alias = "strategies", value_delimiter = ',')]
    optimizers: Vec<OptimizerKind>,
    /// RAM limit in KiB (compared with the cost model's tensor arena).
    #[arg(long, default_value_t = 512)]
    ram_kib: u64,
    /// Flash limit in KiB (compared with the cost model's flash: model + runtime).
    #[arg(long, default_value_t = 2048)]
    flash_kib: u64,
    /// MCU profile of the cost model (default: nucleo-h743).
    #[arg(long)]
    mcu: Option<String>,
    /// Search space preset (paper, extended, demo).
    #[arg(long, default_value = "paper")]
    space: String,
    /// Do not give the optimisers the feasibility oracle.
    #[arg(long)]
    no_oracle: bool,
    /// Use the paper's rough RAM/flash rule instead of the cost model (for comparison only).
    #[arg(long)]
    stand_in_cost: bool,
}

/// Runs `danas optim`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        OptimCommand::Bench(b) => bench(b),
    }
}

fn real_cost(profile: Profile) -> CostFn {
    Arc::new(move |cand| {
        let bp = cand.blueprint(2).map_err(|e| e.to_string())?;
        let c = danas_cost::estimate_blueprint(&bp, &profile, Precision::Int8);
        Ok((c.arena_bytes as f64, c.flash_bytes as f64))
    })
}

fn bench(a: BenchArgs) -> anyhow::Result<()> {
    if a.seeds == 0 {
        return Err(InputError("--seeds must be at least 1".into()).into());
    }
    if a.budget == 0 || a.batch == 0 {
        return Err(InputError(format!("--budget ({}) and --batch ({}) must be at least 1", a.budget, a.batch)).into());
    }
    if a.ram_kib == 0 || a.flash_kib == 0 {
        return Err(InputError("--ram-kib and --flash-kib must be at least 1".into()).into());
    }
    let optimizers: Vec<OptimizerKind> =
        if a.optimizers.is_empty() { OptimizerKind::ALL.to_vec() } else { a.optimizers.clone() };
    let space = MbSpace::by_name(&a.space).map_err(|e| InputError(format!("--space: {e}")))?;
    let cost = if a.stand_in_cost {
        stand_in_cost()
    } else {
        let profile = match &a.mcu {
            Some(name) => Profile::builtin(name).map_err(|e| InputError(format!("--mcu: {e}")))?,
            None => Profile::default_mcu(),
        };
        real_cost(profile)
    };
    let limits = Limits { ram_bytes: a.ram_kib * 1024, flash_bytes: a.flash_kib * 1024, latency_ms: None };
    let problem = Arc::new(SyntheticProblem::new(space, cost, limits));
    let seeds: Vec<u64> = (0..a.seeds).collect();
    let names: Vec<&str> = optimizers.iter().map(|k| k.name()).collect();
    let reports =
        compare_strategies(&problem, &names, &seeds, a.budget, a.batch, !a.no_oracle, Landscape::CHANCE_ACCURACY)
            .context("running the strategies")?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    println!(
        "synthetic landscape, space {}, {} seeds x {} evaluations (batch {}), limits {} KiB RAM / {} KiB flash, cost: {}, oracle: {}",
        a.space,
        a.seeds,
        a.budget,
        a.batch,
        a.ram_kib,
        a.flash_kib,
        if a.stand_in_cost { "stand-in (paper rule)" } else { "danas-cost" },
        if a.no_oracle { "off" } else { "on" }
    );
    println!(
        "{:<16} {:>12} {:>10} {:>10} {:>12} {:>10} {:>10}",
        "strategy", "best (med)", "q1", "q3", "hv (med)", "q1", "infeas/run"
    );
    for r in &reports {
        println!(
            "{:<16} {:>12.4} {:>10.4} {:>10.4} {:>12.5} {:>10.5} {:>10.1}",
            r.strategy,
            r.median_best_feasible,
            r.best_feasible.q1,
            r.best_feasible.q3,
            r.median_hypervolume,
            r.hypervolume.q1,
            r.mean_infeasible
        );
    }
    print_verdicts(&reports);
    Ok(())
}

fn print_verdicts(reports: &[StrategyReport]) {
    let Some(random) = reports.iter().find(|r| r.strategy == "random") else {
        return;
    };
    for r in reports.iter().filter(|r| r.strategy != "random") {
        let best = if r.median_best_feasible > random.median_best_feasible { "beats" } else { "does NOT beat" };
        let hv = if r.median_hypervolume > random.median_hypervolume { "beats" } else { "does NOT beat" };
        println!("{} {best} random on median best feasible; {hv} it on median hypervolume", r.strategy);
    }
}
