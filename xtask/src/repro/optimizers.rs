//! Experiment 4, `optimizers`: every optimiser on the real pipeline for the same
//! number of evaluated trials, compared by best feasible accuracy, hypervolume and
//! cost-gate rejections.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use danas_search::TrialStatus;
use danas_search::report::TrialRow;
use danas_search::stats::median;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Ctx, Opts, read_trials, root_path, run_pool, s};
use crate::plot::{Figure, Series, draw};

/// The settings of `repro/optimizers.toml` at one scale.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Optimizers {
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
/// reference point (1, 1); points with a NaN coordinate add nothing.
fn hypervolume(points: &[(f64, f64)]) -> Result<f64> {
    let pts: Vec<Vec<f64>> =
        points.iter().filter(|(a, b)| !a.is_nan() && !b.is_nan()).map(|&(a, b)| vec![a, b]).collect();
    danas_optim::pareto::hypervolume_2d(&pts, &[1.0, 1.0]).context("hypervolume")
}

/// One seed's running best feasible accuracy after each evaluated trial (NaN until
/// the first complete one); trials rejected by the cost gate and repeats are skipped.
fn anytime_best(trials: &[TrialRow]) -> Vec<f64> {
    let mut b = f64::NAN;
    let mut curve = Vec::new();
    for t in trials.iter().filter(|t| t.status != TrialStatus::Infeasible && t.status != TrialStatus::Repeat) {
        if t.status == TrialStatus::Complete
            && let Some(a) = t.val_accuracy
        {
            b = if b.is_nan() { a } else { b.max(a) };
        }
        curve.push(b);
    }
    curve
}

impl Optimizers {
    /// Runs (or, with `--dry-run`, plans) the experiment.
    pub(super) fn run(root: &Path, o: &Opts, mut cfg: Self) -> Result<()> {
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
                jobs.push((format!("{st} seed {seed}"), ctx.search_command(&dir, &cfg.search, &set)?));
            }
        }
        for (name, ok, tail) in run_pool(jobs, cfg.concurrent)? {
            if !ok {
                bail!("search {name} failed: {tail}");
            }
        }
        let mut md = ctx.heading(
            o,
            Some(cfg.seeds),
            &format!(
                "Each strategy runs the real pipeline (supernets, evaluation) on `{}` / `{}` for {} evaluated \
                 trials under {} KiB RAM / {} KiB flash, {} seeds. Hypervolume: of (validation error, arena / \
                 RAM limit), reference (1, 1), over feasible completed trials.",
                cfg.data, cfg.space, cfg.max_trials, cfg.limits[0], cfg.limits[1], cfg.seeds
            ),
        );
        let _ =
            writeln!(md, "| strategy | median best feasible % | median hypervolume | median cost-gate rejections |");
        let _ = writeln!(md, "|---|---:|---:|---:|");
        let ram = cfg.limits[0] * 1024.0;
        let mut curves: Vec<Series> = Vec::new();
        let mut raw = Vec::new();
        for st in &cfg.strategies {
            let mut best = Vec::new();
            let mut hv = Vec::new();
            let mut rej = Vec::new();
            let mut per_seed_curves: Vec<Vec<f64>> = Vec::new();
            for seed in 0..cfg.seeds {
                let trials = read_trials(&ctx.out.join("runs").join(st).join(format!("seed{seed}")))?;
                let feasible: Vec<&TrialRow> = trials
                    .iter()
                    .filter(|t| t.status == TrialStatus::Complete && t.val_accuracy.is_some())
                    .filter(|t| t.arena_bytes.is_some_and(|a| a <= ram))
                    .collect();
                best.push(feasible.iter().filter_map(|t| t.val_accuracy).fold(f64::NAN, f64::max));
                let pts: Vec<(f64, f64)> = feasible
                    .iter()
                    .map(|t| (1.0 - t.val_accuracy.unwrap_or(0.0), t.arena_bytes.unwrap_or(0.0) / ram))
                    .collect();
                hv.push(hypervolume(&pts)?);
                rej.push(trials.iter().filter(|t| t.status == TrialStatus::Infeasible).count() as f64);
                per_seed_curves.push(anytime_best(&trials));
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
        let title = "best feasible validation accuracy (median over seeds)";
        draw(
            &ctx.out,
            "anytime_best_feasible",
            &Figure::lines(title, "evaluated trials", "best feasible accuracy", &curves),
        )?;
        let _ = writeln!(md, "\n![anytime](anytime_best_feasible.png)");
        ctx.write_md(&md)?;
        ctx.write_json(&raw)?;
        println!("{md}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hypervolume_of_a_staircase() {
        assert_eq!(hypervolume(&[]).unwrap(), 0.0);
        assert!((hypervolume(&[(0.5, 0.5)]).unwrap() - 0.25).abs() < 1e-12);
        // (0.2, 0.6) and (0.6, 0.2): 0.4·0.4 + 0.4·0.8 = 0.48; a dominated point adds nothing.
        let hv = hypervolume(&[(0.2, 0.6), (0.6, 0.2), (0.7, 0.7)]).unwrap();
        assert!((hv - 0.48).abs() < 1e-12, "{hv}");
    }

    /// The values xtask's own staircase hypervolume gave on these point sets before
    /// it was replaced by danas-optim's: duplicates, points on or beyond the
    /// reference, NaN coordinates and negative errors included.
    #[test]
    fn hypervolume_as_before() {
        let cases: [(&[(f64, f64)], f64); 5] = [
            (&[(0.1, 0.9), (0.1, 0.9), (0.3, 0.4), (0.3, 0.5), (0.9, 0.05)], 0.475),
            (&[(1.0, 0.2), (0.2, 1.0), (1.2, 0.1), (0.4, 0.3)], 0.42),
            (&[(0.0, 0.0), (0.5, 0.5)], 1.0),
            (&[(f64::NAN, 0.2), (0.3, f64::NAN), (0.25, 0.75)], 0.1875),
            (&[(-0.1, 0.5), (0.5, 1.7), (0.35, 0.35)], 0.6475),
        ];
        for (points, want) in cases {
            let hv = hypervolume(points).unwrap();
            assert!((hv - want).abs() < 1e-12, "{points:?}: {hv} vs {want}");
        }
        // Clouds of 10, 50 and 200 points in [0, 1.2)² from a fixed linear congruential sequence.
        let mut x = 12345u64;
        for (n, want) in [(10, 0.5939378902367165), (50, 0.9436745057111108), (200, 0.9636165392801792)] {
            let mut next = || {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 11) as f64 / (1u64 << 53) as f64 * 1.2
            };
            let points: Vec<(f64, f64)> = (0..n).map(|_| (next(), next())).collect();
            let hv = hypervolume(&points).unwrap();
            assert!((hv - want).abs() < 1e-12, "{n} points: {hv} vs {want}");
        }
    }
}
