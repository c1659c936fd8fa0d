//! `danas search`, `danas resume DIR`, `danas report DIR` and `danas worker`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use danas_search::config::SearchConfig;
use danas_search::report::TrialRow;
use danas_search::{Control, Journal, Observer, STUDY_FILE, SearchError, SearchEvent, SearchSummary, TrialStatus};
use indicatif::{ProgressBar, ProgressStyle};

use crate::InputError;

/// Arguments of `danas search`. Flags override the config file; the defaults run a
/// small real search on the built-in synthetic data under the paper's limits.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A TOML file with the search settings (see `docs/search.md`); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Search space: `paper`, `extended`, `demo` or a TOML space file.
    #[arg(long)]
    pub space: Option<String>,
    /// Optimiser: random, paper-ga, aging-evolution, nsga2, bayesian.
    #[arg(long, alias = "strategy")]
    pub optimizer: Option<danas_optim::OptimizerKind>,
    /// Data source: `synthetic`, `idx:DIR`, `folder:DIR`, `wake-vision:DIR`.
    #[arg(long)]
    pub data: Option<String>,
    /// MCU profile name (`danas mcus`) or TOML file.
    #[arg(long)]
    pub mcu: Option<String>,
    /// RAM (arena) limit in KiB.
    #[arg(long)]
    pub ram_kib: Option<f64>,
    /// Flash limit in KiB.
    #[arg(long)]
    pub flash_kib: Option<f64>,
    /// Latency limit in ms.
    #[arg(long)]
    pub latency_ms: Option<f64>,
    /// Wall-clock budget such as `30m` or `2h` (supernet training counts).
    #[arg(long)]
    pub budget: Option<String>,
    /// Largest number of evaluated candidates.
    #[arg(long)]
    pub max_trials: Option<u64>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Evaluations in parallel.
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Fix the data configuration (the hardware-aware baseline), e.g. `96,rgb`.
    #[arg(long)]
    pub fixed_data: Option<String>,
    /// Optimiser steps per supernet.
    #[arg(long)]
    pub supernet_steps: Option<u64>,
    /// Fine-tuning steps per candidate (0: none).
    #[arg(long)]
    pub finetune_steps: Option<u64>,
    /// Use at most this many training images.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Use at most this many validation images.
    #[arg(long)]
    pub eval_limit: Option<usize>,
    /// For a data source without a test split: carve this fraction of the training
    /// images (stratified, seeded) as the test split of the final stage, e.g. 0.1.
    #[arg(long, value_name = "FRACTION")]
    pub split_test: Option<f64>,
    /// After the search, retrain the k most accurate Pareto candidates and report their test metrics.
    #[arg(long)]
    pub final_top_k: Option<usize>,
    /// Training steps of each final retraining.
    #[arg(long)]
    pub final_steps: Option<u64>,
    /// No training augmentation (random crop, flip): for small centred images such as Fashion-MNIST.
    #[arg(long)]
    pub no_augment: bool,
    /// Score candidates by the accuracy of their int8 model (as deployed) instead of the float network's.
    #[arg(long)]
    pub int8_eval: bool,
    /// Supernet training: sandwich (the default: ranks across data configurations) or full (the paper).
    #[arg(long, alias = "supernet-strategy")]
    pub supernet_mode: Option<danas_search::config::SupernetMode>,
    /// One supernet for every data configuration, trained on all of them in turn.
    #[arg(long)]
    pub shared_supernet: Option<bool>,
    /// Selection: `proxy` (the default: the supernet's score alone, as the paper) or `halving` (successive halving above it).
    #[arg(long)]
    pub selection: Option<danas_search::config::SelectionMode>,
    /// Results directory (default: a new dated folder under `results/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Print the Pareto set as JSON at the end (implies --quiet).
    #[arg(long)]
    pub json: bool,
}

/// Where a shared study lives (`--storage postgres://… --study NAME`); without them the
/// study is `DIR/study.sqlite`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StorageArgs {
    /// A PostgreSQL database (`postgres://user@host[:port]/db`) holding the study, so that
    /// workers (`danas worker`) on any machine do its training and evaluations.
    #[arg(long, requires = "study")]
    pub storage: Option<String>,
    /// The study's name in the database (a-z, 0-9, _).
    #[arg(long, requires = "storage")]
    pub study: Option<String>,
}

impl StorageArgs {
    /// The storage, when both flags are given.
    pub fn get(&self) -> anyhow::Result<Option<danas_search::Storage>> {
        match (&self.storage, &self.study) {
            (Some(url), Some(study)) => Ok(Some(danas_search::Storage::new(url, study).map_err(input)?)),
            _ => Ok(None),
        }
    }
}

/// Arguments of `danas resume`.
#[derive(clap::Args, Debug)]
pub struct ResumeArgs {
    /// The results directory of the study.
    pub dir: PathBuf,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Extend the study by this many more evaluated trials (also a finished one).
    #[arg(long, value_name = "N")]
    pub max_trials: Option<u64>,
    /// Extend the study by this much more wall-clock time, e.g. `10m` (also a finished one).
    #[arg(long, value_name = "DURATION")]
    pub budget: Option<String>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Print the Pareto set as JSON at the end (implies --quiet).
    #[arg(long)]
    pub json: bool,
}

/// `danas resume --max-trials N | --budget T`: the study's budget moved past where it
/// stands by N trials and / or T of wall-clock time (without `--budget`, no wall-clock
/// limit; without `--max-trials`, no trial limit).
fn extend(cfg: &mut SearchConfig, args: &ResumeArgs, storage: Option<&danas_search::Storage>) -> anyhow::Result<()> {
    if args.max_trials.is_none() && args.budget.is_none() {
        return Ok(());
    }
    if args.max_trials == Some(0) {
        return Err(InputError("--max-trials must be at least 1".into()).into());
    }
    let more = match &args.budget {
        Some(b) => Some(danas_search::Budget::parse_duration(b).map_err(|e| InputError(format!("--budget {b}: {e}")))?),
        None => None,
    };
    let journal = match storage {
        Some(st) => Journal::open_postgres_read_only(st),
        None => Journal::open_read_only(&args.dir.join(STUDY_FILE)),
    }
    .map_err(input)?;
    let done =
        journal.trials()?.iter().filter(|t| matches!(t.status, TrialStatus::Complete | TrialStatus::Failed)).count()
            as u64;
    let elapsed = journal.elapsed_seconds()?;
    cfg.max_trials = args.max_trials.map(|n| done + n);
    cfg.budget = Some(match more {
        Some(d) => format!("{:.3}s", elapsed + d.as_secs_f64()),
        None => "none".into(),
    });
    Ok(())
}

/// Arguments of `danas report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The results directory of the study.
    pub dir: PathBuf,
    #[command(flatten)]
    pub storage: StorageArgs,
}

fn input(e: SearchError) -> anyhow::Error {
    match e {
        SearchError::Config { .. }
        | SearchError::ConfigFile { .. }
        | SearchError::Data { .. }
        | SearchError::Unreachable { .. }
        | SearchError::NotAStudy { .. }
        | SearchError::Locked { .. }
        | SearchError::Exists { .. }
        | SearchError::Storage { .. }
        | SearchError::Budget { .. } => anyhow::Error::new(InputError(e.to_string())),
        other => anyhow::Error::new(other),
    }
}

fn merge(args: &Args) -> anyhow::Result<SearchConfig> {
    let mut c = match &args.config {
        Some(p) => SearchConfig::from_toml_file(p).map_err(input)?,
        None => SearchConfig::default(),
    };
    macro_rules! set {
        ($($flag:ident => $field:expr),* $(,)?) => {
            $(if let Some(v) = &args.$flag { $field = v.clone().into(); })*
        };
    }
    set!(space => c.space, data => c.data, mcu => c.mcu);
    if let Some(o) = args.optimizer {
        c.optimizer = o;
    }
    if args.ram_kib.is_some() {
        c.ram_kib = args.ram_kib;
    }
    if args.flash_kib.is_some() {
        c.flash_kib = args.flash_kib;
    }
    if args.latency_ms.is_some() {
        c.latency_ms = args.latency_ms;
    }
    if args.budget.is_some() {
        c.budget = args.budget.clone();
    }
    if args.max_trials.is_some() {
        c.max_trials = args.max_trials;
    }
    if let Some(s) = args.seed {
        c.seed = s;
    }
    if let Some(p) = args.parallel {
        c.parallel = p;
    }
    if args.fixed_data.is_some() {
        c.fixed_data = args.fixed_data.clone();
    }
    if let Some(s) = args.supernet_steps {
        c.supernet.steps = s;
    }
    if args.no_augment {
        c.supernet.augment = false;
    }
    if args.int8_eval {
        c.evaluation.int8 = true;
    }
    if let Some(m) = args.supernet_mode {
        c.supernet.mode = m;
    }
    if let Some(on) = args.shared_supernet {
        c.supernet.shared = on;
    }
    if let Some(m) = args.selection {
        c.selection.mode = m;
    }
    if let Some(s) = args.finetune_steps {
        c.evaluation.finetune_steps = s;
    }
    if let Some(k) = args.final_top_k {
        c.final_top_k = k;
    }
    if let Some(s) = args.final_steps {
        c.final_steps = s;
    }
    if args.train_limit.is_some() {
        c.train_limit = args.train_limit;
    }
    if args.eval_limit.is_some() {
        c.eval_limit = args.eval_limit;
    }
    if args.split_test.is_some() {
        c.split_test = args.split_test;
    }
    // Flags are relative to the working directory; the journal keeps absolute paths.
    c.resolve_paths(Path::new("."));
    Ok(c)
}

/// `results/YYYYMMDD-HHMMSS` (UTC), with a suffix if it exists.
fn dated_dir() -> PathBuf {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86400) as i64;
    let (y, m, d) = civil_from_days(days);
    let t = secs % 86400;
    let base = format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", t / 3600, (t / 60) % 60, t % 60);
    let mut dir = Path::new("results").join(&base);
    let mut k = 1;
    while dir.exists() {
        k += 1;
        dir = Path::new("results").join(format!("{base}-{k}"));
    }
    dir
}

/// Days since 1970-01-01 to a (year, month, day) civil date.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Progress bars: trials done (or time used), best feasible so far, current phase.
struct Bars {
    bar: ProgressBar,
}

impl Bars {
    fn new(max_trials: Option<u64>, wall: Option<Duration>) -> Self {
        let (len, template) = match (max_trials, wall) {
            (Some(n), _) => (n, "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} trials (eta {eta}) {msg}"),
            (None, Some(w)) => (w.as_secs(), "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} s {msg}"),
            (None, None) => (0, "{spinner} [{elapsed_precise}] {msg}"),
        };
        let bar = ProgressBar::new(len);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        Self { bar }
    }
}

impl Observer for Bars {
    fn on_event(&mut self, e: &SearchEvent<'_>) -> Control {
        let best = |p: &danas_search::Progress| {
            p.best_feasible
                .map(|b| format!("best feasible {:.2}%", b * 100.0))
                .unwrap_or_else(|| "no result yet".into())
        };
        match e {
            SearchEvent::Started { progress, resumed } => {
                self.bar.set_position(if progress.budget.max_trials.is_some() {
                    progress.evaluated
                } else {
                    progress.elapsed.as_secs()
                });
                self.bar.set_message(format!("{} | {}", if *resumed { "resumed" } else { "started" }, best(progress)));
            }
            SearchEvent::Phase(p) => self.bar.set_message(p.to_string()),
            SearchEvent::Trial { record, progress } => {
                self.bar.set_position(if progress.budget.max_trials.is_some() {
                    progress.evaluated
                } else {
                    progress.elapsed.as_secs()
                });
                let what = match record.status {
                    TrialStatus::Infeasible => "infeasible, skipped".to_string(),
                    TrialStatus::Failed => "failed".to_string(),
                    _ => record
                        .metrics
                        .as_ref()
                        .and_then(|m| m.value(danas_core::metric::VAL_ACCURACY))
                        .map(|a| format!("{:.2}%", a * 100.0))
                        .unwrap_or_default(),
                };
                self.bar.set_message(format!(
                    "{} | trial {} {}: {what} | {} infeasible skipped",
                    best(progress),
                    record.id,
                    record.candidate,
                    progress.infeasible
                ));
            }
            SearchEvent::Promoted { record, progress } => {
                let acc = record
                    .metrics
                    .value(danas_core::metric::VAL_ACCURACY)
                    .map(|a| format!("{:.2}%", a * 100.0))
                    .unwrap_or_else(|| "failed".into());
                self.bar.set_message(format!(
                    "{} | trial {} promoted to rung {} ({}): {acc}",
                    best(progress),
                    record.trial,
                    record.rung,
                    record.promotion
                ));
            }
            SearchEvent::Finished { .. } => self.bar.finish_and_clear(),
            _ => {}
        }
        Control::Continue
    }
}

/// Progress for logs (stdout or stderr not a terminal): the phases as they start, and
/// one line per trial with its data configuration, architecture, validation accuracy,
/// arena, flash and status.
struct LogLines;

impl LogLines {
    fn trial_line(r: &danas_search::TrialRecord, p: &danas_search::Progress) -> String {
        let kib = |v: Option<u64>| v.map(|b| format!("{:.1} KiB", b as f64 / 1024.0)).unwrap_or_else(|| "-".into());
        let acc = r
            .metrics
            .as_ref()
            .and_then(|m| m.value(danas_core::metric::VAL_ACCURACY))
            .map(|a| format!("{:.2}%", a * 100.0))
            .unwrap_or_else(|| "-".into());
        let status = match r.status {
            TrialStatus::Infeasible => "infeasible (skipped by the cost gate)".to_string(),
            TrialStatus::Failed => format!("failed: {}", r.message.as_deref().unwrap_or("")),
            s => format!("{s:?}").to_lowercase(),
        };
        let (data, arch) = (r.candidate.data.to_string(), r.candidate.arch.to_string());
        format!(
            "trial {:>4} | data {data:<10} | arch {arch:<26} | val acc {:>7} | arena {:>10} | flash {:>11} | {status} | {} evaluated, {} infeasible",
            r.id,
            acc,
            kib(r.costs.as_ref().map(|c| c.arena_bytes)),
            kib(r.costs.as_ref().map(|c| c.flash_bytes)),
            p.evaluated,
            p.infeasible
        )
    }
}

impl Observer for LogLines {
    fn on_event(&mut self, e: &SearchEvent<'_>) -> Control {
        match e {
            SearchEvent::Started { progress, resumed } => println!(
                "{} ({} trials evaluated so far)",
                if *resumed { "search resumed" } else { "search started" },
                progress.evaluated
            ),
            SearchEvent::Phase(p) => println!("phase: {p}"),
            SearchEvent::Trial { record, progress } => println!("{}", Self::trial_line(record, progress)),
            SearchEvent::Promoted { record, .. } => println!(
                "trial {:>4} promoted to rung {} ({}): val acc {}",
                record.trial,
                record.rung,
                record.promotion,
                record
                    .metrics
                    .value(danas_core::metric::VAL_ACCURACY)
                    .map(|a| format!("{:.2}%", a * 100.0))
                    .unwrap_or_else(|| "failed".into())
            ),
            SearchEvent::Finished { progress } => println!(
                "search loop finished: {} evaluated, {} infeasible, {} failed in {:.1} min; writing results",
                progress.evaluated,
                progress.infeasible,
                progress.failed,
                progress.elapsed.as_secs_f64() / 60.0
            ),
            _ => {}
        }
        Control::Continue
    }
}

/// Progress bars on a terminal, [`LogLines`] otherwise.
fn progress_observer(cfg: &SearchConfig) -> Box<dyn Observer> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
        Box::new(bars(cfg))
    } else {
        Box::new(LogLines)
    }
}

fn print_summary(s: &SearchSummary, json: bool) -> anyhow::Result<()> {
    if json {
        let pareto = std::fs::read_to_string(s.dir.join("pareto.json")).context("reading pareto.json")?;
        let value: serde_json::Value = serde_json::from_str(&pareto)?;
        let out = serde_json::json!({
            "dir": s.dir,
            "evaluated": s.progress.evaluated,
            "infeasible": s.progress.infeasible,
            "failed": s.progress.failed,
            "repeats": s.progress.repeats,
            "elapsed_seconds": s.progress.elapsed.as_secs_f64(),
            "best_feasible": s.progress.best_feasible,
            "pareto": value,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "\n{} candidates evaluated, {} rejected by the cost gate before training, {} failed, {} repeats answered \
         from earlier results, in {:.1} min.",
        s.progress.evaluated,
        s.progress.infeasible,
        s.progress.failed,
        s.progress.repeats,
        s.progress.elapsed.as_secs_f64() / 60.0
    );
    print_pareto(&s.outputs.pareto);
    let journal = if s.dir.join(STUDY_FILE).is_file() { ", study.sqlite" } else { "" };
    println!(
        "\nResults in {}: report.md, pareto.csv, pareto.json, trials.csv, plots (*.svg, *.png){journal}",
        s.dir.display()
    );
    let models = s.dir.join("models");
    let mut dirs: Vec<String> = std::fs::read_dir(&models)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    dirs.sort();
    if !dirs.is_empty() {
        println!(
            "Deployable int8 models (model.tflite, model_data.cc/.h, manifest.json) in {}: {}",
            models.display(),
            dirs.join(", ")
        );
    }
    Ok(())
}

fn print_pareto(rows: &[TrialRow]) {
    println!("\nPareto set (feasible; accuracy vs RAM, flash, latency):");
    print_pareto_table(rows);
    let finals: Vec<&TrialRow> = rows.iter().filter(|r| r.test_accuracy.is_some()).collect();
    if !finals.is_empty() {
        println!("\nFinal stage (retrained, measured on the test split):");
        println!("{:>5}  {:<14} {:<22} {:>9} {:>9}  model", "trial", "data", "arch", "test acc", "int8 test");
        for r in finals {
            let pct = |v: Option<f64>| v.map(|x| format!("{:.2}%", x * 100.0)).unwrap_or_else(|| "-".into());
            println!(
                "{:>5}  {:<14} {:<22} {:>9} {:>9}  {}",
                r.id,
                r.data_key(),
                r.arch,
                pct(r.test_accuracy),
                pct(r.int8_test_accuracy),
                r.model_dir.as_deref().unwrap_or("-")
            );
        }
    }
}

fn print_pareto_table(rows: &[TrialRow]) {
    println!(
        "{:>5}  {:<14} {:<22} {:>9} {:>10} {:>10} {:>10} {:>8}",
        "trial", "data", "arch", "val acc", "arena KiB", "flash KiB", "lat ms", "MMACs"
    );
    for r in rows {
        let f = |v: Option<f64>, s: f64, p: usize| v.map(|x| format!("{:.*}", p, x / s)).unwrap_or_else(|| "-".into());
        println!(
            "{:>5}  {:<14} {:<22} {:>8}% {:>10} {:>10} {:>10} {:>8}",
            r.id,
            r.data_key(),
            r.arch,
            f(r.val_accuracy, 0.01, 2),
            f(r.arena_bytes, 1024.0, 1),
            f(r.flash_bytes, 1024.0, 1),
            f(r.latency_ms, 1.0, 1),
            f(r.macs, 1e6, 2)
        );
    }
    if rows.is_empty() {
        println!("  (no feasible candidate was evaluated)");
    }
}

/// Runs `danas search`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = merge(&args)?;
    let checked = cfg.check().map_err(input)?;
    let dir = args.out.clone().unwrap_or_else(dated_dir);
    let storage = args.storage.get()?;
    if storage.is_none() && dir.join(STUDY_FILE).exists() {
        return Err(input(SearchError::Exists { path: dir.join(STUDY_FILE) }));
    }
    let quiet = args.quiet || args.json;
    if !quiet {
        eprintln!(
            "danas search: space {}, optimizer {}, data {}, mcu {}, results in {}",
            cfg.space,
            cfg.optimizer,
            cfg.data,
            cfg.mcu,
            dir.display()
        );
        eprintln!("{}", limits_line(&checked.profile, &checked.limits));
    }
    if let (Some(st), false) = (&storage, quiet) {
        eprintln!(
            "danas search: study {} (start workers with `danas worker --storage URL --study {}`)",
            st.describe(),
            st.study()
        );
    }
    let mut search = cfg.build_with_storage(&dir, storage.as_ref()).map_err(input)?;
    search.preflight(100_000).map_err(input)?;
    if !quiet {
        search = search.observer(progress_observer(&cfg));
    }
    let summary = search.run().map_err(input)?;
    print_summary(&summary, args.json)
}

/// The limits a search runs under, with the board and kernel library they come from.
fn limits_line(board: &danas_cost::Profile, l: &danas_core::Limits) -> String {
    let lat = l.latency_ms.map(|v| format!(", latency {v} ms")).unwrap_or_default();
    format!(
        "danas search: limits RAM (arena) {:.1} KiB, flash {:.1} KiB (model + {:.0} KiB TFLM runtime){lat}; \
         board {}",
        l.ram_bytes as f64 / 1024.0,
        l.flash_bytes as f64 / 1024.0,
        board.runtime_flash_bytes as f64 / 1024.0,
        board.describe()
    )
}

/// Progress bars sized by the resolved budget.
fn bars(cfg: &SearchConfig) -> Bars {
    let b = cfg.budget().ok();
    Bars::new(b.and_then(|b| b.max_trials), b.and_then(|b| b.wall))
}

/// Runs `danas resume DIR`.
pub fn resume(args: ResumeArgs) -> anyhow::Result<()> {
    let storage = args.storage.get()?;
    let cfg = match &storage {
        Some(st) => SearchConfig::from_storage(st),
        None => SearchConfig::from_study(&args.dir),
    }
    .map_err(input)?;
    let mut cfg = cfg;
    extend(&mut cfg, &args, storage.as_ref())?;
    let quiet = args.quiet || args.json;
    let mut search = cfg.build_with_storage(&args.dir, storage.as_ref()).map_err(input)?;
    if !quiet {
        eprintln!("danas resume: {}", args.dir.display());
        search = search.observer(progress_observer(&cfg));
    }
    let summary = search.resume().map_err(input)?;
    print_summary(&summary, args.json)
}

/// Runs `danas report DIR`: re-renders the outputs from the journal.
pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let storage = args.storage.get()?;
    let cfg = match &storage {
        Some(st) => SearchConfig::from_storage(st),
        None => SearchConfig::from_study(&args.dir),
    }
    .map_err(input)?;
    // Read-only, without the study's lock: works while a search is running it.
    let journal = match &storage {
        Some(st) => Journal::open_postgres_read_only(st),
        None => Journal::open_read_only(&args.dir.join(STUDY_FILE)),
    }
    .map_err(input)?;
    let trials = journal.trials()?;
    drop(journal);
    let board = cfg.build_profile().map_err(input)?;
    let out =
        danas_search::report::write_outputs_on(&args.dir, &trials, Some(&cfg.limits().map_err(input)?), Some(&board))?;
    print_pareto(&out.pareto);
    println!("\nRe-rendered {} files in {}", out.files.len(), args.dir.display());
    Ok(())
}

/// Arguments of `danas worker`.
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Where supernet checkpoints fetched from the study are kept.
    #[arg(long, default_value = ".cache/danas-worker")]
    pub cache: PathBuf,
    /// This worker's name in the queue (default: host name and process id).
    #[arg(long)]
    pub name: Option<String>,
    /// Re-queue a job whose worker sent no heartbeat for this many seconds.
    #[arg(long, default_value_t = 20.0)]
    pub stale_after: f64,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 2.0)]
    pub heartbeat: f64,
    /// Seconds to wait for the study to be created by its search.
    #[arg(long, default_value_t = 600.0)]
    pub wait_for_study: f64,
    /// No log lines.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `danas worker --storage URL --study NAME`: does the study's supernet
/// trainings, evaluations and promotions until the search finishes.
pub fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let storage = args.storage.get()?.ok_or_else(|| InputError("danas worker needs --storage and --study".into()))?;
    let bad = |flag: &str, v: f64| InputError(format!("{flag} must be a positive number of seconds, got {v}"));
    if !(args.stale_after.is_finite() && args.stale_after > 0.0) {
        return Err(bad("--stale-after", args.stale_after).into());
    }
    if !(args.heartbeat.is_finite() && args.heartbeat > 0.0 && args.heartbeat < args.stale_after) {
        return Err(InputError(format!(
            "--heartbeat must be positive and below --stale-after, got {}",
            args.heartbeat
        ))
        .into());
    }
    // Workers may start before the search has created the study: wait for it.
    let started = std::time::Instant::now();
    let cfg = loop {
        match SearchConfig::from_storage(&storage) {
            Err(SearchError::NotAStudy { .. }) if started.elapsed().as_secs_f64() < args.wait_for_study => {
                std::thread::sleep(Duration::from_millis(500));
            }
            other => break other.map_err(input)?,
        }
    };
    let evaluator = cfg.worker_evaluator().map_err(input)?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
    let name = args.name.clone().unwrap_or_else(|| format!("{host}-{}", std::process::id()));
    let mut opts = danas_search::scale::WorkerOptions::new(name.clone(), args.cache.join(storage.study()));
    opts.stale_after = Duration::from_secs_f64(args.stale_after);
    opts.heartbeat_every = Duration::from_secs_f64(args.heartbeat);
    if !args.quiet {
        eprintln!("danas worker {name}: study {}", storage.describe());
    }
    let quiet = args.quiet;
    let log = move |s: &str| {
        if !quiet {
            eprintln!("  {s}");
        }
    };
    let summary = danas_search::scale::run_worker(&storage, &evaluator, &opts, &log).map_err(input)?;
    if !args.quiet {
        eprintln!("danas worker {name}: the search finished; {} jobs done, {} taken over", summary.jobs, summary.lost);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_778), (2026, 11, 21));
        assert_eq!(super::civil_from_days(11_016), (2000, 2, 29));
    }
}
