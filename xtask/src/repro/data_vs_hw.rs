//! Experiment 1, `data-vs-hw`: the data-aware search (data configuration and
//! network) against the hardware-aware baseline (the same search with the data
//! configuration fixed), at several time budgets and memory limits.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use danas_search::TrialStatus;
use danas_search::halving::standing_at;
use danas_search::report::TrialRow;
use danas_search::stats::mean_std;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Ctx, FinalTrainer, Opts, candidate, pct, read_records, root_path, run_pool, s, seconds, table_head};
use crate::plot::{Figure, Series, draw};

/// The settings of `repro/data-vs-hw.toml` at one scale.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DataVsHw {
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

/// Where the search of one limit pair, mode and seed runs.
fn run_dir(out: &Path, l: &[f64; 2], mode: Option<&str>, seed: u64) -> PathBuf {
    out.join("runs").join(limit_name(l)).join(mode_name(mode)).join(format!("seed{seed}"))
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

    /// Runs (or, with `--dry-run`, plans) the experiment.
    pub(super) fn run(root: &Path, o: &Opts, mut cfg: Self) -> Result<()> {
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
                    let dir = run_dir(&ctx.out, l, mode.as_deref(), seed);
                    runs.push((*l, mode.clone(), seed, dir.clone()));
                    if dir.join("trials.csv").is_file() || dir.join("infeasible.txt").is_file() {
                        continue;
                    }
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
                    let c = ctx.search_command(&dir, &cfg.search, &set)?;
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
            let records = if dir.join("trials.csv").is_file() { read_records(dir)? } else { Vec::new() };
            let trials: Vec<TrialRow> = records.iter().map(TrialRow::from_record).collect();
            let count = |status: TrialStatus| trials.iter().filter(|t| t.status == status).count();
            for (b, &bs) in cfg.budgets.iter().zip(&budgets) {
                // the best within the limits by its standing at this budget: the highest rung
                // of successive halving it had reached by then, its accuracy there
                let best = records
                    .iter()
                    .zip(&trials)
                    .filter(|(_, t)| {
                        t.arena_bytes.is_some_and(|a| a <= l[0] * 1024.0)
                            && t.flash_bytes.is_some_and(|f| f <= l[1] * 1024.0)
                    })
                    .filter_map(|(r, t)| standing_at(r, bs + 1e-6).map(|s| (s, t)))
                    .max_by(|(sa, a), (sb, b)| {
                        sa.key()
                            .total_cmp(&sb.key())
                            .then(b.arena_bytes.unwrap_or(0.0).total_cmp(&a.arena_bytes.unwrap_or(0.0)))
                    });
                let (val, key, rung, test, cand) = match best {
                    Some((s, t)) => {
                        eprintln!("  final training of {} (seed {seed})", candidate(t));
                        let (_, test) = trainer.train(t, *seed)?;
                        (t.val_accuracy, Some(s.key()), Some(s.rung), Some(test), Some(candidate(t)))
                    }
                    None => (None, None, None, None, None),
                };
                raw.push(json!({
                    "limits_kib": l, "mode": mode_name(mode.as_deref()), "seed": seed, "budget": b, "budget_s": bs,
                    "best_val_accuracy": val, "test_accuracy": test, "chosen": cand,
                    "selection_key": key, "selected_rung": rung,
                    "trials": trials.len(),
                    "evaluated": count(TrialStatus::Complete),
                    "infeasible": count(TrialStatus::Infeasible),
                }));
            }
        }
        ctx.write_json(&raw)?;
        cfg.report(&ctx, o, &raw)
    }

    fn report(&self, ctx: &Ctx, o: &Opts, raw: &[Value]) -> Result<()> {
        let mut md = ctx.heading(
            o,
            Some(self.seeds),
            &format!(
                "Data-aware search (data configuration + network) against the hardware-aware baseline \
                 (the same search with the data configuration fixed), on `{}` with space `{}`, optimizer `{}`, \
                 MCU `{}`, {} seeds. Each search ran to the largest budget; the best feasible system at a \
                 smaller budget is the best among the trials finished by then on the study clock (which \
                 counts supernet training), which is what a search with that budget would have found. \
                 Test accuracy: the chosen system retrained for {} steps and scored on the test split, \
                 which no search decision saw.",
                self.data, self.space, self.optimizer, self.mcu, self.seeds, self.final_steps
            ),
        );
        let _ = writeln!(
            md,
            "Cells: mean ± std over seeds, in %; `(k/n)` when only k of n seeds found a feasible system; `n/a` when none did.\n"
        );
        let modes: Vec<String> = self.modes().iter().map(|m| mode_name(m.as_deref())).collect();
        for l in &self.limits {
            let _ = writeln!(md, "## RAM {} KiB, flash {} KiB\n", l[0], l[1]);
            let _ = writeln!(md, "{}", table_head("| budget |", "|---|", &modes, &["{} val", "{} test"]));
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
            let title = format!("best feasible validation accuracy, RAM {} KiB / flash {} KiB", l[0], l[1]);
            let ylabel = "validation accuracy (mean over seeds)";
            draw(&ctx.out, &stem, &Figure::lines(&title, "budget (minutes)", ylabel, &series))?;
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
        ctx.write_md(&md)?;
        verify(&ctx.out, self)?;
        println!("{md}");
        println!("data-vs-hw: outputs in {} (checked complete and consistent)", ctx.out.display());
        Ok(())
    }
}

/// Checks that a data-vs-hw output folder is complete and consistent (not that any
/// claim holds): every search finished or is recorded as infeasible, every
/// (limit, mode, seed, budget) has a result, accuracies are in [0, 1], smaller budgets
/// never beat larger ones within a run, and the report and plots exist.
fn verify(out: &Path, cfg: &DataVsHw) -> Result<()> {
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
        let stem = format!("best_vs_budget_{}", limit_name(l));
        for ext in ["png", "svg"] {
            let p = out.join(format!("{stem}.{ext}"));
            if std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) == 0 {
                bail!("plot {} is missing or empty", p.display());
            }
        }
        for mode in cfg.modes() {
            for seed in 0..cfg.seeds {
                let dir = run_dir(out, l, mode.as_deref(), seed);
                let finished = dir.join(danas_search::STUDY_FILE).is_file() && dir.join("trials.csv").is_file();
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
                    if let Some(v) = r["selection_key"].as_f64().or_else(|| r["best_val_accuracy"].as_f64()) {
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
