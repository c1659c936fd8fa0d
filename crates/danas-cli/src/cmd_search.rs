//! `danas search`, `danas resume DIR`, `danas report DIR` and `danas worker`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use danas_search::config::{CheckedConfig, SearchConfig};
use danas_search::report::TrialRow;
use danas_search::{Control, Journal, Observer, STUDY_FILE, SearchError, SearchEvent, SearchSummary, TrialStatus};
use indicatif::{ProgressBar, ProgressStyle};

use crate::InputError;
use crate::settings::{Overrides, StudyArgs, input};

/// Arguments of `danas search`. Flags override the config file; the defaults run a
/// small real search on the built-in synthetic data under the paper's limits.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub settings: Overrides,
    /// Results directory (default: a new dated folder under `results/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub storage: StudyArgs,
    #[command(flatten)]
    pub output: Output,
}

/// Arguments of `danas resume`.
#[derive(clap::Args, Debug)]
pub struct ResumeArgs {
    /// The results directory of the study.
    pub dir: PathBuf,
    /// Settings for this session: only `--budget`, `--max-trials`, `--final-top-k`
    /// and `--final-steps` may change a study on resume.
    #[command(flatten)]
    pub settings: Overrides,
    #[command(flatten)]
    pub storage: StudyArgs,
    #[command(flatten)]
    pub output: Output,
}

/// How `danas search` and `danas resume` report.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Output {
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Print the Pareto set as JSON at the end (implies --quiet).
    #[arg(long)]
    pub json: bool,
}

impl Output {
    /// Whether to show no progress.
    fn quiet(self) -> bool {
        self.quiet || self.json
    }
}

/// `danas resume --max-trials N | --budget T`: the study's budget moved past where it
/// stands by N trials and / or T of wall-clock time (without `--budget`, no wall-clock
/// limit; without `--max-trials`, no trial limit), so that a finished study can be
/// extended like an unfinished one.
fn extend(cfg: &mut SearchConfig, o: &Overrides, at: &danas_search::StudyLocation) -> anyhow::Result<()> {
    if o.max_trials.is_none() && o.budget.is_none() {
        return Ok(());
    }
    if o.max_trials == Some(0) {
        return Err(InputError("--max-trials must be at least 1".into()).into());
    }
    let more = match &o.budget {
        Some(b) => Some(danas_search::Budget::parse_duration(b).map_err(|e| InputError(format!("--budget {b}: {e}")))?),
        None => None,
    };
    let journal = Journal::open_read_only_at(at).map_err(input)?;
    let done =
        journal.trials()?.iter().filter(|t| matches!(t.status, TrialStatus::Complete | TrialStatus::Failed)).count()
            as u64;
    let elapsed = journal.elapsed_seconds()?;
    cfg.max_trials = o.max_trials.map(|n| done + n);
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
    pub storage: StudyArgs,
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
fn progress_observer(cfg: &CheckedConfig) -> Box<dyn Observer> {
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
    let checked = args.settings.settings()?.check().map_err(input)?;
    let cfg = &checked.settings;
    let dir = args.out.clone().unwrap_or_else(dated_dir);
    let at = args.storage.location(&dir)?;
    if !at.is_shared() && dir.join(STUDY_FILE).exists() {
        return Err(input(SearchError::Exists { path: dir.join(STUDY_FILE) }));
    }
    let quiet = args.output.quiet();
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
    if let (Some(st), false) = (at.storage(), quiet) {
        eprintln!(
            "danas search: study {} (start workers with `danas worker --storage URL --study {}`)",
            st.describe(),
            st.study()
        );
    }
    let mut search = checked.build(&dir, &at).map_err(input)?;
    search.preflight(100_000).map_err(input)?;
    if !quiet {
        search = search.observer(progress_observer(&checked));
    }
    let summary = search.run().map_err(input)?;
    print_summary(&summary, args.output.json)
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

/// Progress bars sized by the budget.
fn bars(checked: &CheckedConfig) -> Bars {
    Bars::new(checked.budget.max_trials, checked.budget.wall)
}

/// Runs `danas resume DIR`.
pub fn resume(args: ResumeArgs) -> anyhow::Result<()> {
    if let Some(flag) = args.settings.changes_the_study() {
        return Err(InputError(format!(
            "{flag} would change the study; on resume only --budget, --max-trials, --final-top-k and --final-steps apply"
        ))
        .into());
    }
    let at = args.storage.location(&args.dir)?;
    let mut cfg = SearchConfig::from_location(&at).map_err(input)?;
    let mut session = args.settings.clone();
    // --max-trials and --budget extend the study from where it stands.
    extend(&mut cfg, &session, &at)?;
    (session.max_trials, session.budget) = (None, None);
    session.apply(&mut cfg);
    let checked = cfg.check().map_err(input)?;
    let quiet = args.output.quiet();
    let mut search = checked.build(&args.dir, &at).map_err(input)?;
    if !quiet {
        eprintln!("danas resume: {}", args.dir.display());
        search = search.observer(progress_observer(&checked));
    }
    let summary = search.resume().map_err(input)?;
    print_summary(&summary, args.output.json)
}

/// Runs `danas report DIR`: re-renders the outputs from the journal.
pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let at = args.storage.location(&args.dir)?;
    let cfg = SearchConfig::from_location(&at).map_err(input)?;
    // Read-only, without the study's lock: works while a search is running it.
    let journal = Journal::open_read_only_at(&at).map_err(input)?;
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
    pub storage: StudyArgs,
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
    let storage =
        args.storage.storage()?.ok_or_else(|| InputError("danas worker needs --storage and --study".into()))?;
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
