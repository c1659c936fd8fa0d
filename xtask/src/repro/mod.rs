//! `cargo xtask repro EXPERIMENT --scale tiny|cpu|paper [--seeds N] [--out DIR]
//! [--dry-run] [--danas PATH]`: the paper's experiments and ours, driven through the
//! `danas` binary, with their settings in `repro/EXPERIMENT.toml`.
//!
//! Every run writes, under its output folder: `config.toml` (the resolved settings),
//! `meta.json` (git revision, seeds, command), the raw study journals under `runs/`,
//! `results.md` with the tables, `results.json` with every number, and PNG/SVG plots.
//! Runs already finished in the folder are reused, so an interrupted reproduction
//! continues where it stopped. Results are reported, never asserted.
//!
//! This file holds what every experiment shares (options, the `danas` runner, the
//! process pool, the final training of a chosen system); each experiment has its own
//! file.

mod arena;
mod cost_model;
mod data_vs_hw;
mod fidelity;
mod latency;
mod optimizers;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use danas_search::report::TrialRow;
use danas_search::{Budget, Journal, STUDY_FILE};
use serde::Serialize;
use serde_json::{Value, json};

use self::arena::Arena;
use self::cost_model::CostModel;
use self::data_vs_hw::DataVsHw;
use self::fidelity::Fidelity;
use self::latency::Latency;
use self::optimizers::Optimizers;

/// Known experiments.
pub const EXPERIMENTS: [&str; 10] = [
    "data-vs-hw",
    "supernet-vs-scratch",
    "supernet-training",
    "ranking",
    "ranking-fashion",
    "ranking-tight",
    "optimizers",
    "cost-model",
    "arena",
    "latency",
];

/// The command line of one reproduction.
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
        "supernet-vs-scratch" | "supernet-training" | "ranking" | "ranking-fashion" | "ranking-tight" => {
            Fidelity::run(root, &o, typed(table, &what)?)
        }
        "optimizers" => Optimizers::run(root, &o, typed(table, &what)?),
        "arena" => Arena::run(root, &o, typed(table, &what)?),
        "latency" => Latency::run(root, &o, typed(table, &what)?),
        _ => CostModel::run(root, &o, typed(table, &what)?),
    }
}

/// A small deterministic generator (SplitMix64) for the experiments' model samples.
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
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// The entries of a model folder's `manifest.json` (as `make_models.py` writes it).
fn read_manifest(dir: &Path) -> Result<Vec<Value>> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is malformed", path.display()))
}

/// The Python with the real TFLM interpreter (`.venv-tflm`, made by `setup`).
fn tflm_python(root: &Path) -> Result<String> {
    let env = crate::setup(root)?;
    env.vars
        .iter()
        .find(|(k, _)| k == "DANAS_TFLM_PYTHON")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| anyhow!("no TFLM venv"))
}

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

    /// Writes `dir/search.toml` (the `search` pass-through table plus `set`) and
    /// returns the danas command that runs that search into `dir`, or resumes it
    /// when `dir` already holds a study.
    fn search_command(&self, dir: &Path, extra: &toml::Table, set: &[(&str, toml::Value)]) -> Result<Command> {
        std::fs::create_dir_all(dir)?;
        let toml_path = dir.join("search.toml");
        std::fs::write(&toml_path, search_toml(extra, set))?;
        let mut c = self.danas();
        if dir.join(STUDY_FILE).is_file() {
            c.args(["resume", "--quiet"]).arg(dir);
        } else {
            c.args(["search", "--quiet", "--config"]).arg(&toml_path).arg("--out").arg(dir);
        }
        Ok(c)
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

    /// The start of `results.md`: the title, `intro` (one paragraph) and the command
    /// that reproduces the run (with `--seeds` when the experiment has seeds) with
    /// its git revision.
    fn heading(&self, o: &Opts, seeds: Option<u64>, intro: &str) -> String {
        let seeds = seeds.map(|n| format!(" --seeds {n}")).unwrap_or_default();
        format!(
            "# {exp} ({scale} scale)\n\n{intro}\n\nCommand: `cargo xtask repro {exp} --scale {scale}{seeds}`; {git}.\n\n",
            exp = o.experiment,
            scale = o.scale,
            git = self.git_line()
        )
    }

    /// Writes `results.json` (every number) into the output folder.
    fn write_json(&self, raw: &impl Serialize) -> Result<()> {
        std::fs::write(self.out.join("results.json"), serde_json::to_string_pretty(raw)?)?;
        Ok(())
    }

    /// Writes `results.md` into the output folder.
    fn write_md(&self, md: &str) -> Result<()> {
        std::fs::write(self.out.join("results.md"), md)?;
        Ok(())
    }
}

/// Runs child processes, at most `n` at once; returns each one's success and stderr tail.
/// Each child gets its share of the cores as its thread count (`RAYON_NUM_THREADS`,
/// unless set already): children that each used every core would spend their time
/// handing work between oversubscribed threads.
fn run_pool(jobs: Vec<(String, Command)>, n: usize) -> Result<Vec<(String, bool, String)>> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let share = (cores / n.max(1)).max(1).to_string();
    let inherited = std::env::var_os("RAYON_NUM_THREADS").is_some();
    let mut pending = jobs.into_iter().map(|(name, mut cmd)| {
        if !inherited {
            cmd.env("RAYON_NUM_THREADS", &share);
        }
        (name, cmd)
    });
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

/// Every trial of the study in `dir`, in id order, flattened as its `trials.csv` shows them.
fn read_trials(dir: &Path) -> Result<Vec<TrialRow>> {
    Ok(read_records(dir)?.iter().map(TrialRow::from_record).collect())
}

/// Every trial of the study in `dir`, as journaled (with its rungs of successive halving).
fn read_records(dir: &Path) -> Result<Vec<danas_search::TrialRecord>> {
    let path = dir.join(STUDY_FILE);
    let journal = Journal::open_read_only(&path).with_context(|| format!("cannot open {}", path.display()))?;
    journal.trials().with_context(|| format!("cannot read the trials of {}", path.display()))
}

/// A trial's candidate as one line, e.g. `96/rgb <architecture>`.
fn candidate(t: &TrialRow) -> String {
    format!("{} {}", t.data_key(), t.arch)
}

/// Seconds of a duration as danas reads it (`90s`, `30m`, `2h`, `1h30m`).
fn seconds(s: &str) -> Result<f64> {
    Ok(Budget::parse_duration(s).with_context(|| format!("bad duration {s:?}"))?.as_secs_f64())
}

/// A table cell of accuracies: mean ± std in %, with `(n/of)` when only `n` of `of`
/// runs gave a value, `n/a` when none did.
fn pct(v: Option<(f64, f64)>, n: usize, of: usize) -> String {
    match v {
        None => "n/a".into(),
        Some((m, s)) if n == of => format!("{:.1} ± {:.1}", m * 100.0, s * 100.0),
        Some((m, s)) => format!("{:.1} ± {:.1} ({n}/{of})", m * 100.0, s * 100.0),
    }
}

/// The first two lines of a markdown table: the `first` columns (with their
/// separator row `first_sep`), then for each of `groups` the right-aligned columns
/// `cols`, each with `{}` replaced by the group's name.
fn table_head(first: &str, first_sep: &str, groups: &[String], cols: &[&str]) -> String {
    let (mut head, mut sep) = (first.to_string(), first_sep.to_string());
    for g in groups {
        for c in cols {
            head.push_str(&format!(" {} |", c.replace("{}", g)));
            sep.push_str("---:|");
        }
    }
    format!("{head}\n{sep}")
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
    fn train(&self, t: &TrialRow, seed: u64) -> Result<(f64, f64)> {
        let key: String = format!("{}-seed{seed}", candidate(t))
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
        let options = [
            ("--data", self.data.clone()),
            ("--res", t.resolution.to_string()),
            ("--color", t.color.clone()),
            ("--alpha", t.alpha.to_string()),
            ("--depths", t.depths.clone()),
            ("--steps", self.steps.to_string()),
            ("--seed", seed.to_string()),
            ("--split-seed", seed.to_string()),
        ];
        let mut args: Vec<String> = vec!["train".into()];
        for (flag, value) in options {
            args.extend([flag.to_string(), value]);
        }
        args.extend(["--test".into(), "--json".into()]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(seconds("90s").ok(), Some(90.0));
        assert_eq!(seconds("2m").ok(), Some(120.0));
        assert_eq!(seconds("1.5h").ok(), Some(5400.0));
        assert!(seconds("ten").is_err());
        // The budgets the experiment files use.
        for (text, secs) in [("4s", 4.0), ("30s", 30.0), ("1m", 60.0), ("2m", 120.0), ("6h", 21600.0)] {
            assert_eq!(seconds(text).ok(), Some(secs), "{text}");
        }
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
                    "supernet-vs-scratch" | "supernet-training" | "ranking" | "ranking-fashion" | "ranking-tight" => {
                        typed::<Fidelity>(t, &what).map(|_| ())
                    }
                    "optimizers" => typed::<Optimizers>(t, &what).map(|_| ()),
                    "arena" => typed::<Arena>(t, &what).map(|_| ()),
                    "latency" => typed::<Latency>(t, &what).map(|_| ()),
                    _ => typed::<CostModel>(t, &what).map(|_| ()),
                };
                assert!(ok.is_ok(), "{what}: {ok:?}");
            }
        }
    }
}
