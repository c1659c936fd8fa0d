//! `danas fidelity`: how well does supernet evaluation rank candidates, compared with
//! training each from scratch, on your data?

use std::path::PathBuf;

use anyhow::Context;
use danas_core::DataConfig;
use danas_search::fidelity::{FidelityPlan, FidelityReport, run};

use crate::InputError;
use crate::settings::{Overrides, input};

/// Score sampled candidates of one or more data configurations from supernets (one
/// per configuration or one shared, with and without fine-tuning), by a short
/// retraining, and from scratch; report seconds, Kendall τ and Spearman ρ: pooled,
/// across configurations and within each.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Data, space, supernet and evaluation settings (a search TOML with `--config`,
    /// then flags); `--parallel` is candidates trained or evaluated at once (default
    /// 2), `--seed` the seed of the sample and trainings (default 0), and the limits
    /// (`--ram-kib`, `--flash-kib`, `--mcu`) are those of `--feasible-only`.
    #[command(flatten)]
    pub settings: Overrides,
    /// The data configurations, `;`-separated (e.g. `32,rgb;16,grayscale`), or `all`
    /// for every one of the space (default: the space's largest resolution, first colour).
    #[arg(long)]
    pub data_config: Option<String>,
    /// Candidates sampled at each data configuration.
    #[arg(long, default_value_t = 20)]
    pub candidates: usize,
    /// Supernet training modes to compare, comma-separated (`full`, `sandwich`).
    #[arg(long, alias = "strategies", value_delimiter = ',', default_value = "full")]
    pub modes: Vec<danas_search::config::SupernetMode>,
    /// Also score from one supernet trained on every data configuration in turn.
    #[arg(long)]
    pub shared: bool,
    /// Also score by a short training from scratch of this many steps.
    #[arg(long)]
    pub short_steps: Option<u64>,
    /// Sample only candidates within the limits (`--ram-kib`, `--flash-kib`, `--mcu` or the config's).
    #[arg(long)]
    pub feasible_only: bool,
    /// Training steps of each from-scratch candidate.
    #[arg(long, default_value_t = 300)]
    pub scratch_steps: u64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// A message about the user's input (exit code 2).
fn bad(e: impl std::fmt::Display) -> anyhow::Error {
    InputError(e.to_string()).into()
}

/// Runs `danas fidelity`.
pub fn run_cmd(args: Args) -> anyhow::Result<()> {
    let seed = args.settings.seed.unwrap_or(0);
    let parallel = args.settings.parallel.unwrap_or(2);
    if parallel == 0 {
        return Err(bad("--parallel must be at least 1"));
    }
    let mut c = args.settings.settings()?;
    c.seed = seed;
    let checked = c.check().map_err(input)?;
    let space = &checked.space;
    let data: Vec<DataConfig> = match args.data_config.as_deref().map(str::trim) {
        Some("all") => danas_space::CandidateSpace::data_configs(space),
        Some(list) => list
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|e| bad(format!("--data-config {s:?}: {e}"))))
            .collect::<anyhow::Result<_>>()?,
        None => {
            let sc = space.config();
            let r = sc.resolutions.iter().copied().max().unwrap_or(32);
            vec![DataConfig::new(r, sc.colors.first().copied().unwrap_or(danas_core::Color::Rgb))]
        }
    };
    let plan = FidelityPlan {
        data,
        candidates: args.candidates,
        modes: args.modes.clone(),
        shared: args.shared,
        scratch_steps: args.scratch_steps,
        short_steps: args.short_steps,
        seed,
        parallel,
        feasible_only: args.feasible_only,
    };
    let quiet = args.json;
    let report = run(&checked, &plan, &mut |msg| {
        if !quiet {
            eprintln!("  {msg}");
        }
    })
    .map_err(input)?;
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(r: &FidelityReport) {
    let configs: Vec<String> = r.plan.data.iter().map(ToString::to_string).collect();
    println!(
        "\n{} candidates at {}; from-scratch: {} steps each",
        r.rows.len(),
        configs.join(", "),
        r.plan.scratch_steps
    );
    for s in &r.supernets {
        println!("  supernet {}: {} steps in {:.1} s", s.name, s.steps, s.seconds);
    }
    println!(
        "\n{:<34} {:>8} {:>8} {:>8} {:>11} {:>8} {:>10} {:>9}",
        "method", "kendall", "spearman", "between", "per-config", "regret", "median s", "speed-up"
    );
    let f = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into());
    for a in &r.agreement {
        let within: Vec<f64> = a.per_config.iter().filter_map(|c| c.kendall_tau).collect();
        let within = if within.is_empty() { None } else { Some(within.iter().sum::<f64>() / within.len() as f64) };
        println!(
            "{:<34} {:>8} {:>8} {:>8} {:>11} {:>7.1}% {:>10.2} {:>8.1}x",
            a.method,
            f(a.kendall_tau),
            f(a.spearman_rho),
            f(a.between_tau),
            f(within),
            a.pick_regret * 100.0,
            a.median_seconds,
            a.speedup
        );
    }
    println!(
        "{:<34} {:>8} {:>8} {:>8} {:>11} {:>8} {:>10.2}",
        "from scratch", "1", "1", "1", "1", "0", r.median_scratch_seconds
    );
    println!(
        "\n(between: Kendall τ over pairs of candidates of different data configurations; per-config: mean τ within each)"
    );
}
