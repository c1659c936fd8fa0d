//! `cargo xtask repro EXPERIMENT --scale tiny|cpu|paper [--seeds N] [--out DIR]
//! [--dry-run] [--danas PATH]`: the paper's experiments and ours, driven through the
//! `danas` binary, with their settings in `repro/EXPERIMENT.toml`.
//!
//! Every run writes, under its output folder: `config.toml` (the resolved settings),
//! `meta.json` (git revision, seeds, command), the raw study journals under `runs/`,
//! `results.md` with the tables, `results.json` with every number, and PNG/SVG plots.
//! Runs already finished in the folder are reused, so an interrupted reproduction
//! continues where it stopped. Results are reported, never asserted.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::plot::{Figure, Series, draw};

/// Known experiments.
pub const EXPERIMENTS: [&str; 5] =
    ["data-vs-hw", "supernet-vs-scratch", "supernet-training", "optimizers", "cost-model"];

struct Opts {
    experiment: String,
    scale: String,
    seeds: Option<u64>,
    out: PathBuf,
    dry_run: bool,
    danas: Option<PathBuf>,
}

fn parse_opts(root: &Path, args: &[String]) -> Result<Opts> {
    let usage = || {
        anyhow!(
            "usage: cargo xtask repro EXPERIMENT --scale tiny|cpu|paper [--seeds N] [--out DIR] [--dry-run] [--danas PATH]\n  experiments: {}",
            EXPERIMENTS.join(", ")
        )
    };
    let experiment = args.first().ok_or_else(usage)?.clone();
    if !EXPERIMENTS.contains(&experiment.as_str()) {
        return Err(usage().context(format!("unknown experiment {experiment:?}")));
    }
    let mut scale = None;
    let mut seeds = None;
    let mut out = None;
    let mut dry_run = false;
    let mut danas = None;
    let mut i = 1;
    while i < args.len() {
        let val = |i: usize| args.get(i + 1).cloned().ok_or_else(|| anyhow!("{} needs a value", args[i]));
        match args[i].as_str() {
            "--scale" => {
                scale = Some(val(i)?);
                i += 1;
            }
            "--seeds" => {
                seeds = Some(val(i)?.parse::<u64>().context("--seeds needs a whole number")?);
                i += 1;
            }
            "--out" => {
                out = Some(PathBuf::from(val(i)?));
                i += 1;
            }
            "--danas" => {
                danas = Some(PathBuf::from(val(i)?));
                i += 1;
            }
            "--dry-run" => dry_run = true,
            other => return Err(usage().context(format!("unknown option {other:?}"))),
        }
        i += 1;
    }
    let scale = scale.ok_or_else(|| usage().context("--scale is required"))?;
    if !["tiny", "cpu", "paper"].contains(&scale.as_str()) {
        bail!("--scale {scale:?}: expected tiny, cpu or paper");
    }
    if seeds == Some(0) {
        bail!("--seeds must be at least 1");
    }
    let out = out.unwrap_or_else(|| root.join("target/repro").join(format!("{experiment}-{scale}")));
    Ok(Opts { experiment, scale, seeds, out, dry_run, danas })
}

/// Reads the `[scale]` table of `repro/EXPERIMENT.toml`.
fn scale_table(root: &Path, experiment: &str, scale: &str) -> Result<toml::Value> {
    let path = root.join("repro").join(format!("{experiment}.toml"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc: toml::Table = text.parse().with_context(|| format!("{} is not valid TOML", path.display()))?;
    doc.get(scale).cloned().ok_or_else(|| anyhow!("{} has no [{scale}] table", path.display()))
}

fn typed<T: serde::de::DeserializeOwned>(v: toml::Value, what: &str) -> Result<T> {
    v.try_into().map_err(|e: toml::de::Error| anyhow!("repro/{what}: {}", e.to_string().trim()))
}

/// Runs `cargo xtask repro …`.
pub fn repro(root: &Path, args: &[String]) -> Result<()> {
    let o = parse_opts(root, args)?;
    let table = scale_table(root, &o.experiment, &o.scale)?;
    let what = format!("{}.toml [{}]", o.experiment, o.scale);
    match o.experiment.as_str() {
        "data-vs-hw" => DataVsHw::run(root, &o, typed(table, &what)?),
        "supernet-vs-scratch" | "supernet-training" => Fidelity::run(root, &o, typed(table, &what)?),
        "optimizers" => Optimizers::run(root, &o, typed(table, &what)?),
        _ => CostModel::run(root, &o, typed(table, &what)?),
    }
}

// ---------------------------------------------------------------------------
// Shared machinery

/// The danas binary and where runs go.
struct Ctx {
    root: PathBuf,
    danas: PathBuf,
    out: PathBuf,
}

impl Ctx {
    fn new(root: &Path, o: &Opts) -> Result<Self> {
        let danas = match &o.danas {
            Some(p) => std::fs::canonicalize(p).with_context(|| format!("--danas {}", p.display()))?,
            None => {
                crate::run(crate::cargo().args(["build", "--release", "-q", "-p", "danas-cli"]))?;
                crate::target_dir(root).join("release/danas")
            }
        };
        std::fs::create_dir_all(&o.out).with_context(|| format!("cannot create {}", o.out.display()))?;
        let out = std::fs::canonicalize(&o.out)?;
        Ok(Self { root: root.to_path_buf(), danas, out })
    }

    fn danas(&self) -> Command {
        let mut c = Command::new(&self.danas);
        c.current_dir(&self.root);
        c
    }

    /// Runs danas and returns its stdout; a non-zero exit is an error with its stderr.
    fn output(&self, args: &[String]) -> Result<String> {
        let out = self.danas().args(args).output().with_context(|| format!("cannot start {}", self.danas.display()))?;
        if !out.status.success() {
            bail!("danas {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn write_meta(&self, o: &Opts, table: &impl Serialize, seeds: u64) -> Result<()> {
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .current_dir(&self.root)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let rev = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
        let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
        let cfg = toml::to_string_pretty(table).map_err(|e| anyhow!("cannot write the resolved config: {e}"))?;
        let header = format!(
            "# cargo xtask repro {} --scale {} --seeds {seeds}\n# resolved from repro/{}.toml [{}]\n",
            o.experiment, o.scale, o.experiment, o.scale
        );
        std::fs::write(self.out.join("config.toml"), header + &cfg)?;
        let meta = json!({
            "experiment": o.experiment,
            "scale": o.scale,
            "seeds": (0..seeds).collect::<Vec<_>>(),
            "git_revision": rev,
            "git_dirty": dirty,
            "command": format!("cargo xtask repro {} --scale {} --seeds {seeds}", o.experiment, o.scale),
            "danas": self.danas.display().to_string(),
        });
        std::fs::write(self.out.join("meta.json"), serde_json::to_string_pretty(&meta)?)?;
        Ok(())
    }

    fn git_line(&self) -> String {
        std::fs::read_to_string(self.out.join("meta.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .map(|m| {
                format!(
                    "git {}{}",
                    m["git_revision"].as_str().unwrap_or("?"),
                    if m["git_dirty"].as_bool() == Some(true) { " (with uncommitted changes)" } else { "" }
                )
            })
            .unwrap_or_default()
    }
}

/// Runs child processes, at most `n` at once; returns each one's success and stderr tail.
fn run_pool(jobs: Vec<(String, Command)>, n: usize) -> Result<Vec<(String, bool, String)>> {
    let mut pending = jobs.into_iter();
    let mut running: Vec<(String, Child)> = Vec::new();
    let mut done = Vec::new();
    loop {
        while running.len() < n.max(1) {
            let Some((name, mut cmd)) = pending.next() else { break };
            eprintln!("  start {name}");
            let child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot start {name}"))?;
            running.push((name, child));
        }
        if running.is_empty() {
            break;
        }
        let mut finished = None;
        for (i, (_, c)) in running.iter_mut().enumerate() {
            if c.try_wait()?.is_some() {
                finished = Some(i);
                break;
            }
        }
        match finished {
            Some(i) => {
                let (name, child) = running.swap_remove(i);
                let out = child.wait_with_output()?;
                let err = String::from_utf8_lossy(&out.stderr);
                let tail: String =
                    err.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(" | ");
                eprintln!(
                    "  done  {name}: {}",
                    if out.status.success() { "ok".to_string() } else { format!("failed: {tail}") }
                );
                done.push((name, out.status.success(), tail));
            }
            None => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
    Ok(done)
}

/// One row of a study's `trials.csv`.
#[derive(Debug, Clone, Deserialize)]
struct Trial {
    status: String,
    resolution: u32,
    color: String,
    alpha: f64,
    depths: String,
    arch: String,
    val_accuracy: Option<f64>,
    arena_bytes: Option<f64>,
    flash_bytes: Option<f64>,
    elapsed_s: Option<f64>,
}

impl Trial {
    fn candidate(&self) -> String {
        format!("{}/{} {}", self.resolution, self.color, self.arch)
    }
}

fn read_trials(dir: &Path) -> Result<Vec<Trial>> {
    let path = dir.join("trials.csv");
    let mut rd = csv::Reader::from_path(&path).with_context(|| format!("cannot read {}", path.display()))?;
    rd.deserialize().map(|r| r.with_context(|| format!("bad row in {}", path.display()))).collect()
}

/// Parses `90s`, `30m`, `2h` (as danas does).
fn seconds(s: &str) -> Result<f64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len()));
    let v: f64 = num.parse().with_context(|| format!("bad duration {s:?}"))?;
    Ok(v * match unit.trim() {
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => bail!("bad duration unit {other:?} in {s:?}"),
    })
}

fn mean_std(v: &[f64]) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    Some((m, var.sqrt()))
}

fn pct(v: Option<(f64, f64)>, n: usize, of: usize) -> String {
    match v {
        None => "n/a".into(),
        Some((m, s)) if n == of => format!("{:.1} ± {:.1}", m * 100.0, s * 100.0),
        Some((m, s)) => format!("{:.1} ± {:.1} ({n}/{of})", m * 100.0, s * 100.0),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Writes the per-run search TOML: the `search` pass-through table plus the given keys.
fn search_toml(extra: &toml::Table, set: &[(&str, toml::Value)]) -> String {
    let mut t = extra.clone();
    for (k, v) in set {
        t.insert((*k).to_string(), v.clone());
    }
    toml::to_string(&t).unwrap_or_default()
}

fn s(v: &str) -> toml::Value {
    toml::Value::String(v.to_string())
}

/// Resolves a repro path (space or data folder) relative to the repository root.
fn root_path(root: &Path, p: &str) -> String {
    if p.ends_with(".toml") && !Path::new(p).is_absolute() {
        return root.join(p).display().to_string();
    }
    p.to_string()
}

/// A `danas train` of a searched candidate with the search's data settings, returning
/// (validation, test) accuracy; cached as JSON under `cache`.
struct FinalTrainer<'a> {
    ctx: &'a Ctx,
    data: String,
    steps: u64,
    extra: &'a toml::Table,
    cache: PathBuf,
}

impl FinalTrainer<'_> {
    fn train(&self, t: &Trial, seed: u64) -> Result<(f64, f64)> {
        let key: String = format!("{}-seed{seed}", t.candidate())
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .collect();
        let file = self.cache.join(format!("{key}.json"));
        let parse = |text: &str| -> Result<(f64, f64)> {
            let v: Value = serde_json::from_str(text)?;
            let get = |k: &str| v[k].as_f64().ok_or_else(|| anyhow!("danas train printed no {k}"));
            Ok((get("val_accuracy")?, get("test_accuracy")?))
        };
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(r) = parse(&text)
        {
            return Ok(r);
        }
        let get = |k: &str| self.extra.get(k);
        let sub = |t: &str, k: &str| self.extra.get(t).and_then(|v| v.get(k)).cloned();
        let mut args: Vec<String> = vec![
            "train".into(),
            "--data".into(),
            self.data.clone(),
            "--res".into(),
            t.resolution.to_string(),
            "--color".into(),
            t.color.clone(),
            "--alpha".into(),
            t.alpha.to_string(),
            "--depths".into(),
            t.depths.clone(),
            "--steps".into(),
            self.steps.to_string(),
            "--seed".into(),
            seed.to_string(),
            "--split-seed".into(),
            seed.to_string(),
            "--test".into(),
            "--json".into(),
        ];
        if let Some(v) = get("train_limit").and_then(toml::Value::as_integer) {
            args.extend(["--train-limit".into(), v.to_string()]);
        }
        if let Some(v) = get("eval_limit").and_then(toml::Value::as_integer) {
            args.extend(["--eval-limit".into(), v.to_string()]);
        }
        if let Some(v) = sub("supernet", "batch_size").and_then(|v| v.as_integer()) {
            args.extend(["--batch-size".into(), v.to_string()]);
        }
        if sub("supernet", "augment").and_then(|v| v.as_bool()) == Some(false) {
            args.push("--no-augment".into());
        }
        let text = self.ctx.output(&args)?;
        std::fs::create_dir_all(&self.cache)?;
        std::fs::write(&file, &text)?;
        parse(&text)
    }
}

// ---------------------------------------------------------------------------
// 1. data-vs-hw

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataVsHw {
    /// Data source of every search.
    data: String,
    /// Search space of the data-aware search (preset or TOML file, relative to the repository).
    space: String,
    mcu: String,
    /// The optimiser of every search.
    #[serde(alias = "strategy")]
    optimizer: String,
    /// Fixed data configurations of the hardware-aware baseline.
    fixed: Vec<String>,
    /// Time budgets; every search runs to the largest, the smaller ones are read from its timeline.
    budgets: Vec<String>,
    /// (RAM KiB, flash KiB) limit pairs.
    limits: Vec<[f64; 2]>,
    seeds: u64,
    /// Searches at once.
    concurrent: usize,
    /// Training steps of the final (test) training of each chosen system.
    final_steps: u64,
    /// For `--dry-run` at the paper scale: assumed minutes per supernet and seconds per evaluation.
    #[serde(default)]
    assume: Option<Assume>,
    /// Further `danas search` settings, copied into every run's config.
    #[serde(default)]
    search: toml::Table,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Assume {
    supernet_minutes: f64,
    eval_seconds: f64,
}

fn limit_name(l: &[f64; 2]) -> String {
    format!("ram{}k-flash{}k", l[0], l[1])
}

fn mode_name(fixed: Option<&str>) -> String {
    match fixed {
        None => "data-aware".into(),
        Some(f) => format!("fixed-{}", f.replace(',', "-")),
    }
}

impl DataVsHw {
    fn modes(&self) -> Vec<Option<String>> {
        std::iter::once(None).chain(self.fixed.iter().cloned().map(Some)).collect()
    }

    fn dry_run(&self, seeds: u64) -> Result<()> {
        let budgets: Vec<f64> = self.budgets.iter().map(|b| seconds(b)).collect::<Result<_>>()?;
        let max = budgets.iter().copied().fold(0.0, f64::max);
        let searches = self.limits.len() * self.modes().len() * seeds as usize;
        println!("data-vs-hw plan:");
        println!("  data {}, space {}, mcu {}, optimizer {}", self.data, self.space, self.mcu, self.optimizer);
        println!(
            "  budgets {:?} (each search runs {:.1} h; smaller budgets are read from its timeline)",
            self.budgets,
            max / 3600.0
        );
        println!("  limits (RAM KiB, flash KiB): {:?}", self.limits);
        println!(
            "  modes: data-aware + fixed {:?}; seeds {seeds} -> {searches} searches, {} at once",
            self.fixed, self.concurrent
        );
        println!(
            "  wall-clock: about {:.1} h of searching",
            searches as f64 * max / 3600.0 / self.concurrent.max(1) as f64
        );
        let sn = self.search.get("supernet").and_then(|t| t.get("steps")).and_then(|v| v.as_integer()).unwrap_or(150);
        let ft = self
            .search
            .get("evaluation")
            .and_then(|t| t.get("finetune_steps"))
            .and_then(|v| v.as_integer())
            .unwrap_or(0);
        let par = self.search.get("parallel").and_then(|v| v.as_integer()).unwrap_or(1).max(1) as f64;
        println!("  each supernet: {sn} training steps; each evaluation: {ft} fine-tuning steps on a copy");
        let data_configs = self.search_space_data_configs();
        for mode in self.modes() {
            let supernets = if mode.is_some() { 1 } else { data_configs };
            let line = match &self.assume {
                Some(a) => {
                    let left = (max - supernets as f64 * a.supernet_minutes * 60.0).max(0.0);
                    format!(
                        "at most {supernets} supernets ({:.1} h assumed), then about {:.0} evaluations ({} s each assumed, {par} at once)",
                        supernets as f64 * a.supernet_minutes / 60.0,
                        left / a.eval_seconds * par,
                        a.eval_seconds
                    )
                }
                None => format!("at most {supernets} supernets; evaluations until the budget"),
            };
            println!("  {}: {line}", mode_name(mode.as_deref()));
        }
        println!(
            "  then one final training of {} steps per distinct chosen system, for its test accuracy",
            self.final_steps
        );
        Ok(())
    }

    /// Data configurations of the space: a preset's, or a TOML space's
    /// resolutions × colours (paths are relative to the repository root).
    fn search_space_data_configs(&self) -> usize {
        match self.space.as_str() {
            "paper" => 14,
            "extended" => 20,
            "demo" => 6,
            path => {
                let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
                let text = std::fs::read_to_string(root_path(root, path)).unwrap_or_default();
                let value: toml::Value = toml::from_str(&text).unwrap_or(toml::Value::Table(Default::default()));
                let len = |k: &str| value.get(k).and_then(toml::Value::as_array).map_or(0, Vec::len);
                len("resolutions") * len("colors")
            }
        }
    }

    fn run(root: &Path, o: &Opts, mut cfg: Self) -> Result<()> {
        if let Some(n) = o.seeds {
            cfg.seeds = n;
        }
        if cfg.budgets.len() < 3 || cfg.limits.len() < 2 || cfg.seeds < 1 {
            eprintln!("note: the experiment asks for at least 3 budgets, 2 limit pairs and 3 seeds");
        }
        if o.dry_run {
            return cfg.dry_run(cfg.seeds);
        }
        let ctx = Ctx::new(root, o)?;
        ctx.write_meta(o, &cfg, cfg.seeds)?;
        let budgets: Vec<f64> = cfg.budgets.iter().map(|b| seconds(b)).collect::<Result<_>>()?;
        let max_budget = cfg.budgets[budgets
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .ok_or_else(|| anyhow!("no budgets"))?]
        .clone();
        let space = root_path(root, &cfg.space);
        let cache = ctx.out.join("cache");
        // Plan every search; skip those already finished.
        let mut jobs = Vec::new();
        let mut runs = Vec::new();
        for l in &cfg.limits {
            for mode in cfg.modes() {
                for seed in 0..cfg.seeds {
                    let dir = ctx
                        .out
                        .join("runs")
                        .join(limit_name(l))
                        .join(mode_name(mode.as_deref()))
                        .join(format!("seed{seed}"));
                    runs.push((*l, mode.clone(), seed, dir.clone()));
                    if dir.join("trials.csv").is_file() || dir.join("infeasible.txt").is_file() {
                        continue;
                    }
                    std::fs::create_dir_all(&dir)?;
                    let mut set = vec![
                        ("space", s(&space)),
                        ("data", s(&cfg.data)),
                        ("mcu", s(&cfg.mcu)),
                        ("optimizer", s(&cfg.optimizer)),
                        ("ram_kib", toml::Value::Float(l[0])),
                        ("flash_kib", toml::Value::Float(l[1])),
                        ("budget", s(&max_budget)),
                        ("seed", toml::Value::Integer(seed as i64)),
                        ("cache_dir", s(&cache.display().to_string())),
                    ];
                    if let Some(f) = &mode {
                        set.push(("fixed_data", s(f)));
                    }
                    let toml_path = dir.join("search.toml");
                    std::fs::write(&toml_path, search_toml(&cfg.search, &set))?;
                    let mut c = ctx.danas();
                    if dir.join("study.sqlite").is_file() {
                        c.args(["resume", "--quiet"]).arg(&dir);
                    } else {
                        c.args(["search", "--quiet", "--config"]).arg(&toml_path).arg("--out").arg(&dir);
                    }
                    jobs.push((format!("{} {} seed {seed}", limit_name(l), mode_name(mode.as_deref())), c, dir));
                }
            }
        }
        eprintln!("data-vs-hw: {} searches to run ({} already done)", jobs.len(), runs.len() - jobs.len());
        let dirs: BTreeMap<String, PathBuf> = jobs.iter().map(|(n, _, d)| (n.clone(), d.clone())).collect();
        let outcome = run_pool(jobs.into_iter().map(|(n, c, _)| (n, c)).collect(), cfg.concurrent)?;
        for (name, ok, tail) in outcome {
            if !ok && let Some(dir) = dirs.get(&name) {
                // Limits that no candidate of a fixed data configuration meets: recorded, not fatal.
                if tail.contains("no candidate") || tail.contains("smallest") {
                    std::fs::write(dir.join("infeasible.txt"), &tail)?;
                } else {
                    bail!("search {name} failed: {tail}");
                }
            }
        }
        // Read off every budget, train the chosen systems, summarise.
        let trainer = FinalTrainer {
            ctx: &ctx,
            data: cfg.data.clone(),
            steps: cfg.final_steps,
            extra: &cfg.search,
            cache: ctx.out.join("final"),
        };
        let mut raw = Vec::new();
        for (l, mode, seed, dir) in &runs {
            let trials = if dir.join("trials.csv").is_file() { read_trials(dir)? } else { Vec::new() };
            for (b, &bs) in cfg.budgets.iter().zip(&budgets) {
                let best = trials
                    .iter()
                    .filter(|t| t.status == "complete" && t.elapsed_s.is_some_and(|e| e <= bs + 1e-6))
                    .filter(|t| {
                        t.arena_bytes.is_some_and(|a| a <= l[0] * 1024.0)
                            && t.flash_bytes.is_some_and(|f| f <= l[1] * 1024.0)
                    })
                    .filter(|t| t.val_accuracy.is_some())
                    .max_by(|a, b| {
                        a.val_accuracy
                            .unwrap_or(0.0)
                            .total_cmp(&b.val_accuracy.unwrap_or(0.0))
                            .then(b.arena_bytes.unwrap_or(0.0).total_cmp(&a.arena_bytes.unwrap_or(0.0)))
                    });
                let (val, test, cand) = match best {
                    Some(t) => {
                        eprintln!("  final training of {} (seed {seed})", t.candidate());
                        let (_, test) = trainer.train(t, *seed)?;
                        (t.val_accuracy, Some(test), Some(t.candidate()))
                    }
                    None => (None, None, None),
                };
                raw.push(json!({
                    "limits_kib": l, "mode": mode_name(mode.as_deref()), "seed": seed, "budget": b, "budget_s": bs,
                    "best_val_accuracy": val, "test_accuracy": test, "chosen": cand,
                    "trials": trials.len(),
                    "evaluated": trials.iter().filter(|t| t.status == "complete").count(),
                    "infeasible": trials.iter().filter(|t| t.status == "infeasible").count(),
                }));
            }
        }
        std::fs::write(ctx.out.join("results.json"), serde_json::to_string_pretty(&raw)?)?;
        cfg.report(&ctx, o, &raw)
    }

    fn report(&self, ctx: &Ctx, o: &Opts, raw: &[Value]) -> Result<()> {
        let mut md = String::new();
        let _ = writeln!(md, "# data-vs-hw ({} scale)\n", o.scale);
        let _ = writeln!(
            md,
            "Data-aware search (data configuration + network) against the hardware-aware baseline \
             (the same search with the data configuration fixed), on `{}` with space `{}`, optimizer `{}`, \
             MCU `{}`, {} seeds. Each search ran to the largest budget; the best feasible system at a \
             smaller budget is the best among the trials finished by then on the study clock (which \
             counts supernet training), which is what a search with that budget would have found. \
             Test accuracy: the chosen system retrained for {} steps and scored on the test split, \
             which no search decision saw.\n",
            self.data, self.space, self.optimizer, self.mcu, self.seeds, self.final_steps
        );
        let _ = writeln!(
            md,
            "Command: `cargo xtask repro data-vs-hw --scale {} --seeds {}`; {}.\n",
            o.scale,
            self.seeds,
            ctx.git_line()
        );
        let _ = writeln!(
            md,
            "Cells: mean ± std over seeds, in %; `(k/n)` when only k of n seeds found a feasible system; `n/a` when none did.\n"
        );
        let modes: Vec<String> = self.modes().iter().map(|m| mode_name(m.as_deref())).collect();
        for l in &self.limits {
            let _ = writeln!(md, "## RAM {} KiB, flash {} KiB\n", l[0], l[1]);
            let mut head = String::from("| budget |");
            let mut sep = String::from("|---|");
            for m in &modes {
                let _ = write!(head, " {m} val | {m} test |");
                sep.push_str("---:|---:|");
            }
            let _ = writeln!(md, "{head}\n{sep}");
            let mut series: Vec<Series> = modes.iter().map(|m| (m.clone(), Vec::new())).collect();
            for b in &self.budgets {
                let mut line = format!("| {b} |");
                for (mi, m) in modes.iter().enumerate() {
                    let cell: Vec<&Value> = raw
                        .iter()
                        .filter(|r| r["mode"] == m.as_str() && r["budget"] == b.as_str() && r["limits_kib"] == json!(l))
                        .collect();
                    let val: Vec<f64> = cell.iter().filter_map(|r| r["best_val_accuracy"].as_f64()).collect();
                    let test: Vec<f64> = cell.iter().filter_map(|r| r["test_accuracy"].as_f64()).collect();
                    let _ = write!(
                        line,
                        " {} | {} |",
                        pct(mean_std(&val), val.len(), cell.len()),
                        pct(mean_std(&test), test.len(), cell.len())
                    );
                    if let (Some((mv, _)), Ok(bs)) = (mean_std(&val), seconds(b)) {
                        series[mi].1.push((bs / 60.0, mv));
                    }
                }
                let _ = writeln!(md, "{line}");
            }
            let stem = format!("best_vs_budget_{}", limit_name(l));
            draw(
                &ctx.out,
                &stem,
                &Figure {
                    title: &format!("best feasible validation accuracy, RAM {} KiB / flash {} KiB", l[0], l[1]),
                    xlabel: "budget (minutes)",
                    ylabel: "validation accuracy (mean over seeds)",
                    series: &series,
                    lines: true,
                    diagonal: false,
                    log: false,
                },
            )?;
            let _ = writeln!(md, "\n![{stem}]({stem}.png)\n");
            // The chosen systems at the largest budget.
            let last =
                self.budgets.iter().max_by(|a, b| seconds(a).unwrap_or(0.0).total_cmp(&seconds(b).unwrap_or(0.0)));
            if let Some(last) = last {
                let _ = writeln!(md, "Chosen systems at {last}:\n");
                for r in raw.iter().filter(|r| r["budget"] == last.as_str() && r["limits_kib"] == json!(l)) {
                    let _ = writeln!(
                        md,
                        "- {} seed {}: {} ({} trials evaluated, {} rejected by the cost gate)",
                        r["mode"].as_str().unwrap_or("?"),
                        r["seed"],
                        r["chosen"].as_str().unwrap_or("no feasible system"),
                        r["evaluated"],
                        r["infeasible"]
                    );
                }
                let _ = writeln!(md);
            }
        }
        std::fs::write(ctx.out.join("results.md"), &md)?;
        verify_data_vs_hw(&ctx.out, self)?;
        println!("{md}");
        println!("data-vs-hw: outputs in {} (checked complete and consistent)", ctx.out.display());
        Ok(())
    }
}

/// Checks that a data-vs-hw output folder is complete and consistent (not that any
/// claim holds): every search finished or is recorded as infeasible, every
/// (limit, mode, seed, budget) has a result, accuracies are in [0, 1], smaller budgets
/// never beat larger ones within a run, and the report and plots exist.
fn verify_data_vs_hw(out: &Path, cfg: &DataVsHw) -> Result<()> {
    for f in ["config.toml", "meta.json", "results.md", "results.json"] {
        if !out.join(f).is_file() {
            bail!("{} is missing", out.join(f).display());
        }
    }
    let raw: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(out.join("results.json"))?)?;
    let want = cfg.limits.len() * cfg.modes().len() * cfg.seeds as usize * cfg.budgets.len();
    if raw.len() != want {
        bail!("results.json has {} rows, expected {want}", raw.len());
    }
    for l in &cfg.limits {
        for stem in [format!("best_vs_budget_{}", limit_name(l))] {
            for ext in ["png", "svg"] {
                let p = out.join(format!("{stem}.{ext}"));
                if std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) == 0 {
                    bail!("plot {} is missing or empty", p.display());
                }
            }
        }
        for mode in cfg.modes() {
            for seed in 0..cfg.seeds {
                let dir =
                    out.join("runs").join(limit_name(l)).join(mode_name(mode.as_deref())).join(format!("seed{seed}"));
                let finished = dir.join("study.sqlite").is_file() && dir.join("trials.csv").is_file();
                if !finished && !dir.join("infeasible.txt").is_file() {
                    bail!("run {} neither finished nor recorded as infeasible", dir.display());
                }
                let mut rows: Vec<&Value> = raw
                    .iter()
                    .filter(|r| {
                        r["limits_kib"] == json!(l)
                            && r["mode"] == mode_name(mode.as_deref()).as_str()
                            && r["seed"] == seed
                    })
                    .collect();
                rows.sort_by(|a, b| {
                    a["budget_s"].as_f64().unwrap_or(0.0).total_cmp(&b["budget_s"].as_f64().unwrap_or(0.0))
                });
                let mut prev = f64::NEG_INFINITY;
                for r in rows {
                    for k in ["best_val_accuracy", "test_accuracy"] {
                        if let Some(v) = r[k].as_f64()
                            && !(0.0..=1.0).contains(&v)
                        {
                            bail!("{k} {v} out of range in {r}");
                        }
                    }
                    if let Some(v) = r["best_val_accuracy"].as_f64() {
                        if v + 1e-12 < prev {
                            bail!("best accuracy fell with a larger budget in {}", dir.display());
                        }
                        prev = v;
                    }
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 2 + 3. supernet-vs-scratch, supernet-training

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fidelity {
    data: String,
    space: String,
    /// The data configuration whose supernet is studied, e.g. `32,grayscale`.
    data_config: String,
    candidates: usize,
    scratch_steps: u64,
    strategies: Vec<String>,
    seeds: u64,
    #[serde(default)]
    search: toml::Table,
}

impl Fidelity {
    fn run(root: &Path, o: &Opts, mut cfg: Self) -> Result<()> {
        if let Some(n) = o.seeds {
            cfg.seeds = n;
        }
        if o.dry_run {
            println!("{} plan:", o.experiment);
            println!("  data {}, space {}, data configuration {}", cfg.data, cfg.space, cfg.data_config);
            println!(
                "  {} seeds x {} candidates: {} supernets ({:?}), {} supernet evaluations (with and without fine-tuning), {} from-scratch trainings of {} steps",
                cfg.seeds,
                cfg.candidates,
                cfg.seeds as usize * cfg.strategies.len(),
                cfg.strategies,
                2 * cfg.seeds as usize * cfg.strategies.len() * cfg.candidates,
                cfg.seeds as usize * cfg.candidates,
                cfg.scratch_steps
            );
            return Ok(());
        }
        let ctx = Ctx::new(root, o)?;
        ctx.write_meta(o, &cfg, cfg.seeds)?;
        let mut reports = Vec::new();
        for seed in 0..cfg.seeds {
            let file = ctx.out.join(format!("fidelity-seed{seed}.json"));
            if !file.is_file() {
                let toml_path = ctx.out.join("search.toml");
                let set = vec![
                    ("space", s(&root_path(root, &cfg.space))),
                    ("data", s(&cfg.data)),
                    ("cache_dir", s(&ctx.out.join("cache").display().to_string())),
                ];
                std::fs::write(&toml_path, search_toml(&cfg.search, &set))?;
                eprintln!("{}: seed {seed}", o.experiment);
                let args: Vec<String> = vec![
                    "fidelity".into(),
                    "--config".into(),
                    toml_path.display().to_string(),
                    "--data-config".into(),
                    cfg.data_config.clone(),
                    "--candidates".into(),
                    cfg.candidates.to_string(),
                    "--strategies".into(),
                    cfg.strategies.join(","),
                    "--scratch-steps".into(),
                    cfg.scratch_steps.to_string(),
                    "--seed".into(),
                    seed.to_string(),
                    "--out".into(),
                    file.display().to_string(),
                ];
                let status = ctx.danas().args(&args).stdout(Stdio::null()).status()?;
                if !status.success() {
                    bail!("danas {} failed", args.join(" "));
                }
            }
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&file)?)?;
            reports.push(v);
        }
        cfg.report(&ctx, o, &reports)
    }

    fn report(&self, ctx: &Ctx, o: &Opts, reports: &[Value]) -> Result<()> {
        let mut md = String::new();
        let _ = writeln!(md, "# {} ({} scale)\n", o.experiment, o.scale);
        let _ = writeln!(
            md,
            "{} candidates sampled (seeded) from `{}` at {} on `{}`, each scored from the supernet \
             (weights sliced out, BatchNorm recalibrated), from the supernet with fine-tuning of a \
             copy, and trained from scratch for {} steps; all scores on the validation split. \
             Ranking fidelity: Kendall τ-b and Spearman ρ of each method's accuracies against \
             from-scratch accuracies.\n",
            self.candidates, self.space, self.data_config, self.data, self.scratch_steps
        );
        let _ = writeln!(
            md,
            "Command: `cargo xtask repro {} --scale {} --seeds {}`; {}.\n",
            o.experiment,
            o.scale,
            self.seeds,
            ctx.git_line()
        );
        let _ = writeln!(
            md,
            "| seed | supernet | method | Kendall τ | Spearman ρ | median s / candidate | speed-up vs scratch | speed-up incl. supernet training |"
        );
        let _ = writeln!(md, "|---:|---|---|---:|---:|---:|---:|---:|");
        let f = |v: &Value| v.as_f64().map(|x| format!("{x:.3}")).unwrap_or_else(|| "n/a".into());
        let mut scatter: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for (seed, r) in reports.iter().enumerate() {
            let rows = r["rows"].as_array().cloned().unwrap_or_default();
            let scratch_total: f64 = rows.iter().filter_map(|x| x["scratch_seconds"].as_f64()).sum();
            let strategies: Vec<String> = r["plan"]["strategies"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
                .unwrap_or_default();
            for a in r["agreement"].as_array().cloned().unwrap_or_default() {
                let k = strategies.iter().position(|s| a["strategy"] == s.as_str()).unwrap_or(0);
                let tuned = a["method"] == "supernet+finetune";
                let train_s = r["supernet_seconds"][k].as_f64().unwrap_or(f64::NAN);
                let eval_total: f64 = rows
                    .iter()
                    .filter_map(|x| x["supernet"][k][if tuned { "finetuned_seconds" } else { "seconds" }].as_f64())
                    .sum();
                let amortised = scratch_total / (train_s + eval_total);
                let _ = writeln!(
                    md,
                    "| {seed} | {} | {} | {} | {} | {:.2} | {:.1}x | {:.1}x |",
                    a["strategy"].as_str().unwrap_or("?"),
                    a["method"].as_str().unwrap_or("?"),
                    f(&a["kendall_tau"]),
                    f(&a["spearman_rho"]),
                    a["median_seconds"].as_f64().unwrap_or(f64::NAN),
                    a["speedup"].as_f64().unwrap_or(f64::NAN),
                    amortised
                );
                let key = format!("{} {}", a["strategy"].as_str().unwrap_or("?"), a["method"].as_str().unwrap_or("?"));
                for x in &rows {
                    let acc = x["supernet"][k][if tuned { "finetuned_accuracy" } else { "accuracy" }].as_f64();
                    if let (Some(sc), Some(acc)) = (x["scratch_accuracy"].as_f64(), acc) {
                        scatter.entry(key.clone()).or_default().push((sc, acc));
                    }
                }
            }
            let _ = writeln!(
                md,
                "| {seed} | - | from scratch | 1 | 1 | {:.2} | 1x | - |",
                r["median_scratch_seconds"].as_f64().unwrap_or(f64::NAN)
            );
        }
        let series: Vec<Series> = scatter.into_iter().collect();
        let stem = "supernet_vs_scratch_accuracy";
        draw(
            &ctx.out,
            stem,
            &Figure {
                title: "validation accuracy: supernet vs from scratch",
                xlabel: "from-scratch accuracy",
                ylabel: "supernet accuracy",
                series: &series,
                lines: false,
                diagonal: true,
                log: false,
            },
        )?;
        let _ = writeln!(md, "\n![{stem}]({stem}.png)\n");
        if let Some(r) = reports.first() {
            let _ = writeln!(md, "Per candidate (seed 0), accuracy %:\n");
            let strategies: Vec<String> = r["plan"]["strategies"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
                .unwrap_or_default();
            let mut head = String::from("| candidate | params | scratch | scratch s |");
            let mut sep = String::from("|---|---:|---:|---:|");
            for s in &strategies {
                let _ = write!(head, " {s} | {s} s | {s}+ft | {s}+ft s |");
                sep.push_str("---:|---:|---:|---:|");
            }
            let _ = writeln!(md, "{head}\n{sep}");
            for x in r["rows"].as_array().cloned().unwrap_or_default() {
                let mut line = format!(
                    "| {} | {} | {:.1} | {:.1} |",
                    x["candidate"].as_str().unwrap_or("?"),
                    x["params"],
                    x["scratch_accuracy"].as_f64().unwrap_or(f64::NAN) * 100.0,
                    x["scratch_seconds"].as_f64().unwrap_or(f64::NAN)
                );
                for k in 0..strategies.len() {
                    let sc = &x["supernet"][k];
                    let _ = write!(
                        line,
                        " {:.1} | {:.2} | {:.1} | {:.2} |",
                        sc["accuracy"].as_f64().unwrap_or(f64::NAN) * 100.0,
                        sc["seconds"].as_f64().unwrap_or(f64::NAN),
                        sc["finetuned_accuracy"].as_f64().unwrap_or(f64::NAN) * 100.0,
                        sc["finetuned_seconds"].as_f64().unwrap_or(f64::NAN)
                    );
                }
                let _ = writeln!(md, "{line}");
            }
            let secs: Vec<String> = r["supernet_seconds"]
                .as_array()
                .map(|a| a.iter().map(|v| format!("{:.0} s", v.as_f64().unwrap_or(f64::NAN))).collect())
                .unwrap_or_default();
            let _ = writeln!(md, "\nSupernet training ({}): {}.", strategies.join(", "), secs.join(", "));
        }
        std::fs::write(ctx.out.join("results.md"), &md)?;
        std::fs::write(ctx.out.join("results.json"), serde_json::to_string_pretty(reports)?)?;
        println!("{md}");
        println!("{}: outputs in {}", o.experiment, ctx.out.display());
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// 4. optimizers

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Optimizers {
    data: String,
    space: String,
    mcu: String,
    strategies: Vec<String>,
    limits: [f64; 2],
    max_trials: u64,
    seeds: u64,
    concurrent: usize,
    #[serde(default)]
    search: toml::Table,
}

/// Exact 2-D hypervolume of points (error, RAM fraction), both minimised, with
/// reference point (1, 1).
fn hypervolume_2d(points: &[(f64, f64)]) -> f64 {
    let mut p: Vec<(f64, f64)> = points.iter().copied().filter(|&(a, b)| a < 1.0 && b < 1.0).collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    // The non-dominated staircase: increasing error, strictly decreasing RAM.
    let mut front: Vec<(f64, f64)> = Vec::new();
    for &(x, y) in &p {
        if front.last().is_none_or(|&(_, fy)| y < fy) {
            front.push((x, y));
        }
    }
    front.iter().enumerate().map(|(i, &(x, y))| (front.get(i + 1).map_or(1.0, |q| q.0) - x) * (1.0 - y)).sum()
}

impl Optimizers {
    fn run(root: &Path, o: &Opts, mut cfg: Self) -> Result<()> {
        if let Some(n) = o.seeds {
            cfg.seeds = n;
        }
        if o.dry_run {
            println!(
                "optimizers plan: {:?} x {} seeds, {} evaluated trials each, on {} / {}",
                cfg.strategies, cfg.seeds, cfg.max_trials, cfg.data, cfg.space
            );
            return Ok(());
        }
        let ctx = Ctx::new(root, o)?;
        ctx.write_meta(o, &cfg, cfg.seeds)?;
        let cache = ctx.out.join("cache");
        let mut jobs = Vec::new();
        for st in &cfg.strategies {
            for seed in 0..cfg.seeds {
                let dir = ctx.out.join("runs").join(st).join(format!("seed{seed}"));
                if dir.join("trials.csv").is_file() {
                    continue;
                }
                std::fs::create_dir_all(&dir)?;
                let set = vec![
                    ("space", s(&root_path(root, &cfg.space))),
                    ("data", s(&cfg.data)),
                    ("mcu", s(&cfg.mcu)),
                    ("optimizer", s(st)),
                    ("ram_kib", toml::Value::Float(cfg.limits[0])),
                    ("flash_kib", toml::Value::Float(cfg.limits[1])),
                    ("max_trials", toml::Value::Integer(cfg.max_trials as i64)),
                    ("seed", toml::Value::Integer(seed as i64)),
                    ("cache_dir", s(&cache.display().to_string())),
                ];
                let toml_path = dir.join("search.toml");
                std::fs::write(&toml_path, search_toml(&cfg.search, &set))?;
                let mut c = ctx.danas();
                if dir.join("study.sqlite").is_file() {
                    c.args(["resume", "--quiet"]).arg(&dir);
                } else {
                    c.args(["search", "--quiet", "--config"]).arg(&toml_path).arg("--out").arg(&dir);
                }
                jobs.push((format!("{st} seed {seed}"), c));
            }
        }
        for (name, ok, tail) in run_pool(jobs, cfg.concurrent)? {
            if !ok {
                bail!("search {name} failed: {tail}");
            }
        }
        let mut md = String::new();
        let _ = writeln!(md, "# optimizers ({} scale)\n", o.scale);
        let _ = writeln!(
            md,
            "Each strategy runs the real pipeline (supernets, evaluation) on `{}` / `{}` for {} evaluated \
             trials under {} KiB RAM / {} KiB flash, {} seeds. Hypervolume: of (validation error, arena / \
             RAM limit), reference (1, 1), over feasible completed trials.\n",
            cfg.data, cfg.space, cfg.max_trials, cfg.limits[0], cfg.limits[1], cfg.seeds
        );
        let _ = writeln!(
            md,
            "Command: `cargo xtask repro optimizers --scale {} --seeds {}`; {}.\n",
            o.scale,
            cfg.seeds,
            ctx.git_line()
        );
        let _ =
            writeln!(md, "| strategy | median best feasible % | median hypervolume | median cost-gate rejections |");
        let _ = writeln!(md, "|---|---:|---:|---:|");
        let mut curves: Vec<Series> = Vec::new();
        let mut raw = Vec::new();
        for st in &cfg.strategies {
            let mut best = Vec::new();
            let mut hv = Vec::new();
            let mut rej = Vec::new();
            let mut per_seed_curves: Vec<Vec<f64>> = Vec::new();
            for seed in 0..cfg.seeds {
                let trials = read_trials(&ctx.out.join("runs").join(st).join(format!("seed{seed}")))?;
                let feasible: Vec<&Trial> = trials
                    .iter()
                    .filter(|t| t.status == "complete" && t.val_accuracy.is_some())
                    .filter(|t| t.arena_bytes.is_some_and(|a| a <= cfg.limits[0] * 1024.0))
                    .collect();
                best.push(feasible.iter().filter_map(|t| t.val_accuracy).fold(f64::NAN, f64::max));
                let pts: Vec<(f64, f64)> = feasible
                    .iter()
                    .map(|t| {
                        (1.0 - t.val_accuracy.unwrap_or(0.0), t.arena_bytes.unwrap_or(0.0) / (cfg.limits[0] * 1024.0))
                    })
                    .collect();
                hv.push(hypervolume_2d(&pts));
                rej.push(trials.iter().filter(|t| t.status == "infeasible").count() as f64);
                let mut b = f64::NAN;
                let mut curve = Vec::new();
                for t in trials.iter().filter(|t| t.status != "infeasible" && t.status != "repeat") {
                    if t.status == "complete"
                        && let Some(a) = t.val_accuracy
                    {
                        b = if b.is_nan() { a } else { b.max(a) };
                    }
                    curve.push(b);
                }
                per_seed_curves.push(curve);
            }
            let len = per_seed_curves.iter().map(Vec::len).max().unwrap_or(0);
            let curve: Vec<(f64, f64)> = (0..len)
                .map(|i| {
                    let col: Vec<f64> = per_seed_curves.iter().filter_map(|c| c.get(i).copied()).collect();
                    ((i + 1) as f64, median(&col))
                })
                .collect();
            curves.push((st.clone(), curve));
            let _ = writeln!(md, "| {st} | {:.2} | {:.4} | {:.0} |", median(&best) * 100.0, median(&hv), median(&rej));
            raw.push(json!({"strategy": st, "best_feasible": best, "hypervolume": hv, "rejected": rej}));
        }
        draw(
            &ctx.out,
            "anytime_best_feasible",
            &Figure {
                title: "best feasible validation accuracy (median over seeds)",
                xlabel: "evaluated trials",
                ylabel: "best feasible accuracy",
                series: &curves,
                lines: true,
                diagonal: false,
                log: false,
            },
        )?;
        let _ = writeln!(md, "\n![anytime](anytime_best_feasible.png)");
        std::fs::write(ctx.out.join("results.md"), &md)?;
        std::fs::write(ctx.out.join("results.json"), serde_json::to_string_pretty(&raw)?)?;
        println!("{md}");
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// 5. cost-model

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CostModel {
    /// A folder of `.tflite` models with a `manifest.json` (as `make_models.py` writes),
    /// relative to the repository; used as is.
    #[serde(default)]
    models: Option<String>,
    /// Generate this many blueprint models of candidates sampled from the `paper`
    /// space (needs TensorFlow, installed into `.venv-tf`).
    #[serde(default)]
    generate: usize,
    /// Also generate Keras' own MobileNetV2 at these (resolution, α).
    #[serde(default)]
    keras: Vec<(u32, f64)>,
    /// Also generate this many dynamic-batch models with a Flatten head.
    #[serde(default)]
    flatten: usize,
    /// Classes of generated models.
    #[serde(default = "two")]
    classes: u32,
    /// Seed of the candidate sample.
    #[serde(default)]
    seed: u64,
}

fn two() -> u32 {
    2
}

/// A small deterministic generator (SplitMix64) for the candidate sample.
struct Mix(u64);
impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[(self.next() % v.len() as u64) as usize]
    }
}

impl CostModel {
    /// Candidates of the paper space: 7 resolutions × 2 colours, valid depth tuples, α 0.1–1.0.
    fn sample(&self) -> Vec<Value> {
        let mut rng = Mix(self.seed ^ 0xC057);
        let max = [3u32, 4, 3, 3, 1];
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        while out.len() < self.generate {
            let res = rng.pick(&[32u32, 64, 96, 128, 160, 192, 224]);
            let color = rng.pick(&["rgb", "grayscale"]);
            let alpha = f64::from(rng.pick(&[1u32, 2, 3, 4, 5, 6, 7, 8, 9, 10])) / 10.0;
            let mut depths = [0u32; 5];
            let mut stop = false;
            for (i, d) in depths.iter_mut().enumerate() {
                if stop {
                    break;
                }
                *d = (rng.next() % u64::from(max[i] + 1)) as u32;
                stop = *d == 0;
            }
            let key = format!("{res}{color}{alpha}{depths:?}");
            if seen.insert(key) {
                let name = format!(
                    "gen{:02}_{res}_{}_a{}_d{}",
                    out.len(),
                    if color == "rgb" { "rgb" } else { "gray" },
                    (alpha * 100.0).round() as u32,
                    depths.iter().map(u32::to_string).collect::<String>()
                );
                out.push(json!({"name": name, "res": res, "color": color, "alpha": alpha, "depths": depths, "classes": self.classes}));
            }
        }
        for (i, &(res, alpha)) in self.keras.iter().enumerate() {
            let a = (alpha * 100.0).round() as u32;
            out.push(json!({"name": format!("keras{i}_mobilenetv2_{res}_a{a}"),
                "kind": "keras-mobilenetv2", "res": res, "alpha": alpha, "classes": self.classes}));
            out.push(json!({"name": format!("keras{i}_mobilenetv2_{res}_a{a}_float"),
                "kind": "keras-mobilenetv2", "res": res, "alpha": alpha, "classes": self.classes, "float": true}));
        }
        for i in 0..self.flatten {
            let res = [48u32, 64][i % 2];
            out.push(json!({"name": format!("flatten{i}_{res}"), "kind": "flatten-dynamic", "res": res,
                "color": "rgb", "alpha": 0.35, "depths": [2, 2, 1, 0, 0], "classes": self.classes}));
        }
        out
    }

    fn run(root: &Path, o: &Opts, cfg: Self) -> Result<()> {
        if o.dry_run {
            println!(
                "cost-model plan: {} committed models, {} generated paper-space candidates, {} Keras MobileNetV2, {} dynamic-batch models; each through real TFLM (tflite-micro), our estimate (from the .tflite and from the candidate) and the paper's formulas",
                cfg.models.as_deref().unwrap_or("no"),
                cfg.generate,
                cfg.keras.len(),
                cfg.flatten
            );
            return Ok(());
        }
        let ctx = Ctx::new(root, o)?;
        ctx.write_meta(o, &cfg, 1)?;
        let env = crate::setup(root)?;
        let tflm_py = env
            .vars
            .iter()
            .find(|(k, _)| k == "DANAS_TFLM_PYTHON")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| anyhow!("no TFLM venv"))?;
        let mut folders: Vec<PathBuf> = Vec::new();
        if let Some(m) = &cfg.models {
            folders.push(root.join(m));
        }
        let spec = cfg.sample();
        if !spec.is_empty() {
            let dir = ctx.out.join("models");
            if !dir.join("manifest.json").is_file() {
                let py = tf_venv(root)?;
                std::fs::create_dir_all(&dir)?;
                let spec_path = ctx.out.join("models-spec.json");
                std::fs::write(&spec_path, serde_json::to_string_pretty(&spec)?)?;
                crate::run(
                    Command::new(&py)
                        .arg(root.join("crates/danas-cost/tools/make_models.py"))
                        .arg(&dir)
                        .arg("--spec")
                        .arg(&spec_path)
                        .env("TF_CPP_MIN_LOG_LEVEL", "2"),
                )?;
            }
            folders.push(dir);
        }
        let probe = root.join("crates/danas-cost/tools/tflm_probe.py");
        let mut rows = Vec::new();
        for dir in &folders {
            let manifest: Vec<Value> = serde_json::from_str(
                &std::fs::read_to_string(dir.join("manifest.json"))
                    .with_context(|| format!("{}/manifest.json", dir.display()))?,
            )?;
            for m in manifest {
                let file = dir.join(m["file"].as_str().unwrap_or(""));
                eprintln!("  {}", file.display());
                let out = Command::new(&tflm_py).arg(&probe).arg(&file).output()?;
                let real: Value =
                    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or(Value::Null);
                let import: Value = serde_json::from_str(&ctx.output(&[
                    "estimate".into(),
                    file.display().to_string(),
                    "--mcu".into(),
                    "host".into(),
                    "--json".into(),
                ])?)?;
                let flags = if m.get("depths").is_some()
                    && m.get("kind").and_then(Value::as_str) != Some("keras-mobilenetv2")
                {
                    let depths: Vec<String> =
                        m["depths"].as_array().map(|a| a.iter().map(|d| d.to_string()).collect()).unwrap_or_default();
                    let v = ctx.output(&[
                        "estimate".into(),
                        "--res".into(),
                        m["res"].to_string(),
                        "--color".into(),
                        m["color"].as_str().unwrap_or("rgb").into(),
                        "--alpha".into(),
                        m["alpha"].to_string(),
                        "--depths".into(),
                        depths.join(","),
                        "--classes".into(),
                        m["classes"].to_string(),
                        "--mcu".into(),
                        "host".into(),
                        "--json".into(),
                    ])?;
                    serde_json::from_str(&v)?
                } else {
                    Value::Null
                };
                let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                rows.push(json!({
                    "model": m["file"],
                    "kind": format!("{}{}", m.get("kind").and_then(Value::as_str).unwrap_or("blueprint"),
                        if m.get("float").and_then(Value::as_bool) == Some(true) { " (float)" } else { "" }),
                    "file_bytes": size,
                    "tflm_head": real["head"], "tflm_tail": real["tail"], "tflm_total": real["total"], "tflm_error": real["error"],
                    "import_head": import["tflm_head_bytes"], "import_tail": import["tail_bytes"], "import_model_bytes": import["model_bytes"],
                    "import_not_estimated": import["not_estimated"],
                    "flags_head": flags["tflm_head_bytes"], "flags_model_bytes": flags["model_bytes"], "flags_tail": flags["tail_bytes"],
                    "paper_ram": flags["paper_ram_bytes"], "paper_flash": flags["paper_flash_bytes"],
                }));
            }
        }
        std::fs::write(ctx.out.join("results.json"), serde_json::to_string_pretty(&rows)?)?;
        cfg.report(&ctx, o, &rows)
    }

    fn report(&self, ctx: &Ctx, o: &Opts, rows: &[Value]) -> Result<()> {
        let mut md = String::new();
        let _ = writeln!(md, "# cost-model ({} scale)\n", o.scale);
        let _ = writeln!(
            md,
            "Every model is run through the real TensorFlow Lite Micro interpreter (PyPI `tflite-micro`, \
             host build, reference kernels, allocation recording) and compared with danas-cost (from the \
             `.tflite` file, and from the equivalent candidate flags where the model is one of ours) and \
             with the paper's formulas (RAM = largest layer in + out × α, flash = weights × α). RAM: the \
             planned arena head, which TFLM computes exactly; the tail depends on pointer size and kernels \
             and is compared approximately. Flash: the model file, against danas-cost's estimate from the \
             candidate alone (the `.tflite` import reads the file's size, so it is exact by construction). \
             A `-` in the TFLM columns: the interpreter could not run the model (the error is in \
             results.json).\n"
        );
        let _ = writeln!(md, "Command: `cargo xtask repro cost-model --scale {}`; {}.\n", o.scale, ctx.git_line());
        let _ = writeln!(
            md,
            "| model | kind | TFLM head B | ours (.tflite) | ours (flags) | paper RAM | TFLM tail B | our tail | file B | our model B | paper flash |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let n = |v: &Value| v.as_i64().map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        let (mut exact_import, mut exact_flags, mut n_import, mut n_flags) = (0, 0, 0, 0);
        let mut err: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for r in rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r["model"].as_str().unwrap_or("?"),
                r["kind"].as_str().unwrap_or("?"),
                n(&r["tflm_head"]),
                n(&r["import_head"]),
                n(&r["flags_head"]),
                n(&r["paper_ram"]),
                n(&r["tflm_tail"]),
                n(&r["import_tail"]),
                n(&r["file_bytes"]),
                n(&r["flags_model_bytes"]),
                n(&r["paper_flash"])
            );
            let real = r["tflm_head"].as_f64();
            if let (Some(t), Some(i)) = (real, r["import_head"].as_f64()) {
                n_import += 1;
                exact_import += usize::from(t == i);
                err.entry("ours (.tflite) RAM").or_default().push((t, i));
            }
            if let (Some(t), Some(f)) = (real, r["flags_head"].as_f64()) {
                n_flags += 1;
                exact_flags += usize::from(t == f);
                err.entry("ours (flags) RAM").or_default().push((t, f));
            }
            if let (Some(t), Some(p)) = (real, r["paper_ram"].as_f64()) {
                err.entry("paper RAM").or_default().push((t, p));
            }
            let file = r["file_bytes"].as_f64();
            if let (Some(t), Some(m)) = (file, r["flags_model_bytes"].as_f64()) {
                err.entry("ours (flags) flash").or_default().push((t, m));
            }
            if let (Some(t), Some(p)) = (file, r["paper_flash"].as_f64()) {
                err.entry("paper flash").or_default().push((t, p));
            }
        }
        let _ = writeln!(
            md,
            "\nExact TFLM head: {exact_import}/{n_import} from the `.tflite` import, {exact_flags}/{n_flags} from the candidate flags.\n"
        );
        let _ = writeln!(
            md,
            "| estimate | median error B | median \\|error\\| B | median ratio est/real | min ratio | max ratio |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
        for (k, v) in &err {
            let e: Vec<f64> = v.iter().map(|(t, x)| x - t).collect();
            let a: Vec<f64> = e.iter().map(|x| x.abs()).collect();
            let ratio: Vec<f64> = v.iter().filter(|(t, _)| *t > 0.0).map(|(t, x)| x / t).collect();
            let _ = writeln!(
                md,
                "| {k} | {:.0} | {:.0} | {:.3} | {:.3} | {:.3} |",
                median(&e),
                median(&a),
                median(&ratio),
                ratio.iter().copied().fold(f64::INFINITY, f64::min),
                ratio.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            );
        }
        let ram: Vec<Series> = err
            .iter()
            .filter(|(k, _)| k.contains("RAM"))
            .map(|(k, v)| ((*k).to_string(), v.iter().map(|&(t, x)| (t / 1024.0, x / 1024.0)).collect()))
            .collect();
        draw(
            &ctx.out,
            "ram_estimate_vs_tflm",
            &Figure {
                title: "RAM: estimate vs real TFLM arena head (KiB)",
                xlabel: "TFLM head (KiB)",
                ylabel: "estimate (KiB)",
                series: &ram,
                lines: false,
                diagonal: true,
                log: true,
            },
        )?;
        let flash: Vec<Series> = err
            .iter()
            .filter(|(k, _)| k.contains("flash"))
            .map(|(k, v)| ((*k).to_string(), v.iter().map(|&(t, x)| (t / 1024.0, x / 1024.0)).collect()))
            .collect();
        draw(
            &ctx.out,
            "flash_estimate_vs_file",
            &Figure {
                title: "flash: estimate vs .tflite file size (KiB)",
                xlabel: ".tflite file (KiB)",
                ylabel: "estimate (KiB)",
                series: &flash,
                lines: false,
                diagonal: true,
                log: true,
            },
        )?;
        let _ = writeln!(md, "\n![ram](ram_estimate_vs_tflm.png)\n\n![flash](flash_estimate_vs_file.png)");
        std::fs::write(ctx.out.join("results.md"), &md)?;
        println!("{md}");
        Ok(())
    }
}

/// A throwaway venv with TensorFlow for generating models (`.venv-tf`).
fn tf_venv(root: &Path) -> Result<PathBuf> {
    let venv = root.join(".venv-tf");
    let py = venv.join("bin/python");
    if !py.exists() {
        crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    let ok = Command::new(&py).args(["-c", "import tensorflow"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        crate::run(Command::new(&py).args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "tensorflow-cpu",
        ]))?;
    }
    Ok(py)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypervolume_of_a_staircase() {
        assert_eq!(hypervolume_2d(&[]), 0.0);
        assert!((hypervolume_2d(&[(0.5, 0.5)]) - 0.25).abs() < 1e-12);
        // (0.2, 0.6) and (0.6, 0.2): 0.4·0.4 + 0.4·0.8 = 0.48; a dominated point adds nothing.
        let hv = hypervolume_2d(&[(0.2, 0.6), (0.6, 0.2), (0.7, 0.7)]);
        assert!((hv - 0.48).abs() < 1e-12, "{hv}");
    }

    #[test]
    fn durations() {
        assert_eq!(seconds("90s").ok(), Some(90.0));
        assert_eq!(seconds("2m").ok(), Some(120.0));
        assert_eq!(seconds("1.5h").ok(), Some(5400.0));
        assert!(seconds("ten").is_err());
    }

    #[test]
    fn every_experiment_config_parses_at_every_scale() {
        let root = crate::project_root();
        for e in EXPERIMENTS {
            for scale in ["tiny", "cpu", "paper"] {
                let t = scale_table(&root, e, scale).unwrap_or_else(|err| panic!("{e} {scale}: {err}"));
                let what = format!("{e} {scale}");
                let ok = match e {
                    "data-vs-hw" => typed::<DataVsHw>(t, &what).map(|_| ()),
                    "supernet-vs-scratch" | "supernet-training" => typed::<Fidelity>(t, &what).map(|_| ()),
                    "optimizers" => typed::<Optimizers>(t, &what).map(|_| ()),
                    _ => typed::<CostModel>(t, &what).map(|_| ()),
                };
                assert!(ok.is_ok(), "{what}: {ok:?}");
            }
        }
    }
}
