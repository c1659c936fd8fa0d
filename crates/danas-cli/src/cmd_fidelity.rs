//! `danas fidelity`: how well does supernet evaluation rank candidates, compared with
//! training each from scratch, on your data?

use std::path::PathBuf;

use anyhow::Context;
use danas_core::DataConfig;
use danas_search::config::SearchConfig;
use danas_search::fidelity::{FidelityPlan, FidelityReport, run};

use crate::InputError;

/// Score sampled candidates of one or more data configurations from supernets (one
/// per configuration or one shared, with and without fine-tuning), by a short
/// retraining, and from scratch; report seconds, Kendall τ and Spearman ρ: pooled,
/// across configurations and within each.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A search TOML (`danas search --config`) for data, space, supernet and evaluation settings.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data source (overrides the config).
    #[arg(long)]
    pub data: Option<String>,
    /// Search space (overrides the config).
    #[arg(long)]
    pub space: Option<String>,
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
    /// Candidates trained or evaluated at once.
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
    /// Sample only candidates within the limits (`--ram-kib`, `--flash-kib`, `--mcu` or the config's).
    #[arg(long)]
    pub feasible_only: bool,
    /// RAM (arena) limit in KiB for `--feasible-only`.
    #[arg(long)]
    pub ram_kib: Option<f64>,
    /// Flash limit in KiB for `--feasible-only`.
    #[arg(long)]
    pub flash_kib: Option<f64>,
    /// Stop each supernet's training once its loss stops improving (default plateau
    /// settings; `--supernet-steps` is then the most it runs).
    #[arg(long)]
    pub plateau: bool,
    /// Training steps of each from-scratch candidate.
    #[arg(long, default_value_t = 300)]
    pub scratch_steps: u64,
    /// Supernet training steps (overrides the config).
    #[arg(long)]
    pub supernet_steps: Option<u64>,
    /// Fine-tuning steps of the fine-tuned supernet scores (overrides the config; default 100).
    #[arg(long)]
    pub finetune_steps: Option<u64>,
    /// Use at most this many training images.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use at most this many validation images.
    #[arg(long)]
    pub eval_limit: Option<usize>,
    /// No training augmentation.
    #[arg(long)]
    pub no_augment: bool,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

fn input(e: impl std::fmt::Display) -> anyhow::Error {
    InputError(e.to_string()).into()
}

/// Runs `danas fidelity`.
pub fn run_cmd(args: Args) -> anyhow::Result<()> {
    let mut c = match &args.config {
        Some(p) => SearchConfig::from_toml_file(p).map_err(input)?,
        None => SearchConfig::default(),
    };
    if let Some(d) = &args.data {
        c.data = d.clone();
    }
    if let Some(s) = &args.space {
        c.space = s.clone();
    }
    if let Some(s) = args.supernet_steps {
        c.supernet.steps = s;
    }
    if let Some(s) = args.finetune_steps {
        c.evaluation.finetune_steps = s;
    }
    if args.train_limit.is_some() {
        c.train_limit = args.train_limit;
    }
    if args.eval_limit.is_some() {
        c.eval_limit = args.eval_limit;
    }
    if args.no_augment {
        c.supernet.augment = false;
    }
    if args.ram_kib.is_some() {
        c.ram_kib = args.ram_kib;
    }
    if args.flash_kib.is_some() {
        c.flash_kib = args.flash_kib;
    }
    if args.plateau && c.supernet.plateau.is_none() {
        c.supernet.plateau = Some(danas_search::config::PlateauSettings::default());
    }
    c.seed = args.seed;
    c.resolve_paths(std::path::Path::new("."));
    let space = c.build_space().map_err(input)?;
    let data: Vec<DataConfig> = match args.data_config.as_deref().map(str::trim) {
        Some("all") => danas_space::CandidateSpace::data_configs(&space),
        Some(list) => list
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|e| input(format!("--data-config {s:?}: {e}"))))
            .collect::<anyhow::Result<_>>()?,
        None => {
            let sc = space.config();
            let r = sc.resolutions.iter().copied().max().unwrap_or(32);
            vec![DataConfig::new(r, sc.colors.first().copied().unwrap_or(danas_core::Color::Rgb))]
        }
    };
    if args.parallel == 0 {
        return Err(input("--parallel must be at least 1"));
    }
    let plan = FidelityPlan {
        data,
        candidates: args.candidates,
        modes: args.modes.clone(),
        shared: args.shared,
        scratch_steps: args.scratch_steps,
        short_steps: args.short_steps,
        seed: args.seed,
        parallel: args.parallel,
        feasible_only: args.feasible_only,
    };
    let quiet = args.json;
    let report = run(&c, &plan, &mut |msg| {
        if !quiet {
            eprintln!("  {msg}");
        }
    })
    .map_err(|e| match e {
        danas_search::SearchError::Config { .. } | danas_search::SearchError::Data { .. } => input(e),
        other => anyhow::Error::new(other),
    })?;
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
