//! Experiments 2 and 3, `supernet-vs-scratch` and `supernet-training`: how well
//! candidates scored from a supernet (with and without fine-tuning) rank against the
//! same candidates trained from scratch, per supernet training strategy, and at what
//! cost. Both run `danas fidelity`; they differ only in their settings.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Ctx, Opts, root_path, s, search_toml, table_head};
use crate::plot::{Figure, Series, draw};

/// The settings of `repro/supernet-vs-scratch.toml` or `repro/supernet-training.toml`
/// at one scale.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Fidelity {
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

/// The supernet training strategies of one `danas fidelity` report, in its order.
fn strategies_of(report: &Value) -> Vec<String> {
    report["plan"]["strategies"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

impl Fidelity {
    /// Runs (or, with `--dry-run`, plans) the experiment.
    pub(super) fn run(root: &Path, o: &Opts, mut cfg: Self) -> Result<()> {
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
        let mut md = ctx.heading(
            o,
            Some(self.seeds),
            &format!(
                "{} candidates sampled (seeded) from `{}` at {} on `{}`, each scored from the supernet \
                 (weights sliced out, BatchNorm recalibrated), from the supernet with fine-tuning of a \
                 copy, and trained from scratch for {} steps; all scores on the validation split. \
                 Ranking fidelity: Kendall τ-b and Spearman ρ of each method's accuracies against \
                 from-scratch accuracies.",
                self.candidates, self.space, self.data_config, self.data, self.scratch_steps
            ),
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
            let strategies = strategies_of(r);
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
        let title = "validation accuracy: supernet vs from scratch";
        draw(&ctx.out, stem, &Figure::against_diagonal(title, "from-scratch accuracy", "supernet accuracy", &series))?;
        let _ = writeln!(md, "\n![{stem}]({stem}.png)\n");
        if let Some(r) = reports.first() {
            per_candidate(&mut md, r);
        }
        ctx.write_md(&md)?;
        ctx.write_json(&reports)?;
        println!("{md}");
        println!("{}: outputs in {}", o.experiment, ctx.out.display());
        Ok(())
    }
}

/// The per-candidate table of one seed's report, and its supernet training times.
fn per_candidate(md: &mut String, r: &Value) {
    let _ = writeln!(md, "Per candidate (seed 0), accuracy %:\n");
    let strategies = strategies_of(r);
    let first = "| candidate | params | scratch | scratch s |";
    let cols = ["{}", "{} s", "{}+ft", "{}+ft s"];
    let _ = writeln!(md, "{}", table_head(first, "|---|---:|---:|---:|", &strategies, &cols));
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
