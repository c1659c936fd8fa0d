//! Experiments 2 and 3, `supernet-vs-scratch` and `supernet-training`: how well
//! candidates scored from supernets (one per data configuration or one shared,
//! `full` or `sandwich` trained, with and without fine-tuning a copy) or by a short
//! retraining rank against the same candidates trained from scratch, across data
//! configurations and within each, and at what cost. Both run `danas fidelity`;
//! they differ only in their settings.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use danas_search::fidelity::FidelityReport;
use danas_search::stats::mean_std;
use serde::{Deserialize, Serialize};

use super::{Ctx, Opts, root_path, s, search_toml};
use crate::plot::{Figure, Series, draw};

/// The settings of `repro/supernet-vs-scratch.toml` or `repro/supernet-training.toml`
/// at one scale.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Fidelity {
    data: String,
    space: String,
    /// The data configurations studied, `;`-separated (`32,grayscale;16,rgb`) or `all`.
    #[serde(alias = "data_config")]
    data_configs: String,
    /// Candidates per data configuration.
    candidates: usize,
    scratch_steps: u64,
    /// Supernet training modes (`full`, `sandwich`).
    #[serde(alias = "strategies")]
    modes: Vec<String>,
    /// Also a supernet shared by every data configuration.
    #[serde(default)]
    shared: bool,
    /// Also a short retraining of this many steps.
    #[serde(default)]
    short_steps: Option<u64>,
    /// Only candidates within the limits of the `search` table (`ram_kib`, `flash_kib`, `mcu`).
    #[serde(default)]
    feasible_only: bool,
    seeds: u64,
    #[serde(default)]
    search: toml::Table,
}

impl Fidelity {
    /// Runs (or, with `--dry-run`, plans) the experiment.
    pub(super) fn run(root: &Path, o: &Opts, mut cfg: Self) -> Result<()> {
        if let Some(n) = o.seeds {
            cfg.seeds = n;
        }
        if o.dry_run {
            println!("{} plan:", o.experiment);
            println!("  data {}, space {}, data configurations {}", cfg.data, cfg.space, cfg.data_configs);
            println!(
                "  {} seeds x {} candidates per configuration; supernets {:?} one per configuration{}; \
                 each scored with and without fine-tuning{}; from-scratch trainings of {} steps",
                cfg.seeds,
                cfg.candidates,
                cfg.modes,
                if cfg.shared { " and one shared" } else { "" },
                cfg.short_steps.map(|s| format!("; short retraining of {s} steps")).unwrap_or_default(),
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
                cfg.run_seed(root, &ctx, o, seed, &file)?;
            }
            let text = std::fs::read_to_string(&file)?;
            let r: FidelityReport =
                serde_json::from_str(&text).with_context(|| format!("{} is not a fidelity report", file.display()))?;
            reports.push(r);
        }
        cfg.report(&ctx, o, &reports)
    }

    fn run_seed(&self, root: &Path, ctx: &Ctx, o: &Opts, seed: u64, file: &Path) -> Result<()> {
        let toml_path = ctx.out.join("search.toml");
        let set = vec![
            ("space", s(&root_path(root, &self.space))),
            ("data", s(&self.data)),
            ("cache_dir", s(&ctx.out.join("cache").display().to_string())),
        ];
        std::fs::write(&toml_path, search_toml(&self.search, &set))?;
        eprintln!("{}: seed {seed}", o.experiment);
        let mut args: Vec<String> = vec![
            "fidelity".into(),
            "--config".into(),
            toml_path.display().to_string(),
            "--data-config".into(),
            self.data_configs.clone(),
            "--candidates".into(),
            self.candidates.to_string(),
            "--modes".into(),
            self.modes.join(","),
            "--scratch-steps".into(),
            self.scratch_steps.to_string(),
            "--seed".into(),
            seed.to_string(),
            "--out".into(),
            file.display().to_string(),
        ];
        if self.shared {
            args.push("--shared".into());
        }
        if let Some(n) = self.short_steps {
            args.extend(["--short-steps".into(), n.to_string()]);
        }
        if self.feasible_only {
            args.push("--feasible-only".into());
        }
        let status = ctx.danas().args(&args).stdout(Stdio::null()).status()?;
        if !status.success() {
            bail!("danas {} failed", args.join(" "));
        }
        Ok(())
    }

    fn report(&self, ctx: &Ctx, o: &Opts, reports: &[FidelityReport]) -> Result<()> {
        let intro = format!(
            "{} candidates per data configuration sampled (seeded) from `{}`{} at `{}` on `{}`, each \
             scored from supernets (weights sliced out, BatchNorm recalibrated at the candidate's own \
             data configuration), from the same with fine-tuning of a copy{}, and trained from \
             scratch for {} steps; all scores on the validation split. Ranking fidelity against the \
             from-scratch accuracies: Kendall τ-b and Spearman ρ over every candidate (*pooled*), τ \
             over pairs of candidates of different data configurations (*between*: what a data-aware \
             search must rank right), the mean τ within each configuration (*within*), and the \
             from-scratch accuracy lost by taking each method's top pick (*regret*).",
            self.candidates,
            self.space,
            if self.feasible_only { " within the search's limits" } else { "" },
            self.data_configs,
            self.data,
            self.short_steps.map(|s| format!(", by a short retraining of {s} steps")).unwrap_or_default(),
            self.scratch_steps
        );
        let mut md = ctx.heading(o, Some(self.seeds), &intro);
        summary(&mut md, reports);
        let _ = writeln!(
            md,
            "\n| seed | method | τ pooled | ρ pooled | τ between | τ within | regret % | median s / candidate | speed-up vs scratch | speed-up incl. supernet training |"
        );
        let _ = writeln!(md, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut scatter: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for (seed, r) in reports.iter().enumerate() {
            let scratch_total: f64 = r.rows.iter().map(|x| x.scratch_seconds).sum();
            for (k, a) in r.agreement.iter().enumerate() {
                let eval_total: f64 = r.rows.iter().map(|x| x.scores[k].seconds).sum();
                let amortised = scratch_total / (supernet_seconds(r, &a.method) + eval_total);
                let _ = writeln!(
                    md,
                    "| {seed} | {} | {} | {} | {} | {} | {:.1} | {:.2} | {:.1}x | {:.1}x |",
                    a.method,
                    f(a.kendall_tau),
                    f(a.spearman_rho),
                    f(a.between_tau),
                    f(within(a)),
                    a.pick_regret * 100.0,
                    a.median_seconds,
                    a.speedup,
                    amortised
                );
                for x in &r.rows {
                    scatter.entry(a.method.clone()).or_default().push((x.scratch_accuracy, x.scores[k].accuracy));
                }
            }
            let _ = writeln!(
                md,
                "| {seed} | from scratch | 1 | 1 | 1 | 1 | 0 | {:.2} | 1x | - |",
                r.median_scratch_seconds
            );
        }
        let series: Vec<Series> = scatter.into_iter().collect();
        let stem = "supernet_vs_scratch_accuracy";
        let title = "validation accuracy: each method vs from scratch";
        draw(&ctx.out, stem, &Figure::against_diagonal(title, "from-scratch accuracy", "method's accuracy", &series))?;
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

fn f(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "n/a".into())
}

/// Mean Kendall τ within the data configurations.
fn within(a: &danas_search::fidelity::Agreement) -> Option<f64> {
    let v: Vec<f64> = a.per_config.iter().filter_map(|c| c.kendall_tau).collect();
    mean_std(&v).map(|(m, _)| m)
}

/// Seconds of training the supernets a method scores from (`separate full …`
/// from every `separate full <data>` supernet; none for a retraining).
fn supernet_seconds(r: &FidelityReport, method: &str) -> f64 {
    let prefix = method.trim_end_matches("+finetune").trim_end_matches(" supernet");
    r.supernets
        .iter()
        .filter(|s| s.name == prefix || s.name.starts_with(&format!("{prefix} ")))
        .map(|s| s.seconds)
        .sum()
}

/// Mean ± std over seeds of each method's pooled and between τ and regret.
fn summary(md: &mut String, reports: &[FidelityReport]) {
    let Some(first) = reports.first() else { return };
    let _ = writeln!(md, "Mean ± std over {} seed(s):\n", reports.len());
    let _ = writeln!(md, "| method | τ pooled | τ between | τ within | regret % |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    let ms = |v: Vec<f64>, scale: f64| match mean_std(&v) {
        Some((m, s)) => format!("{:.3} ± {:.3}", m * scale, s * scale),
        None => "n/a".into(),
    };
    for (k, a) in first.agreement.iter().enumerate() {
        let of = |g: &dyn Fn(&danas_search::fidelity::Agreement) -> Option<f64>| -> Vec<f64> {
            reports.iter().filter_map(|r| r.agreement.get(k).and_then(g)).collect()
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            a.method,
            ms(of(&|x| x.kendall_tau), 1.0),
            ms(of(&|x| x.between_tau), 1.0),
            ms(of(&within), 1.0),
            ms(of(&|x| Some(x.pick_regret)), 100.0)
        );
    }
}

/// The per-candidate table of one seed's report, and its supernet training times.
fn per_candidate(md: &mut String, r: &FidelityReport) {
    let _ = writeln!(md, "Per candidate (seed 0), validation accuracy %:\n");
    let mut head = String::from("| candidate | params | scratch |");
    let mut sep = String::from("|---|---:|---:|");
    for m in &r.methods {
        let _ = write!(head, " {m} |");
        sep.push_str("---:|");
    }
    let _ = writeln!(md, "{head}\n{sep}");
    for x in &r.rows {
        let mut line = format!("| {} | {} | {:.1} |", x.candidate, x.params, x.scratch_accuracy * 100.0);
        for sc in &x.scores {
            let _ = write!(line, " {:.1} |", sc.accuracy * 100.0);
        }
        let _ = writeln!(md, "{line}");
    }
    let secs: Vec<String> =
        r.supernets.iter().map(|s| format!("{} {} steps in {:.0} s", s.name, s.steps, s.seconds)).collect();
    let _ = writeln!(md, "\nSupernet training: {}.", secs.join("; "));
}
