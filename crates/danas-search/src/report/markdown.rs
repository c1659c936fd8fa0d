//! `report.md` and `rungs.csv`: the study's tables in words.

use std::fmt::Write as _;

use super::{LimitsShown, TrialRow};
use crate::selection::accuracy_at;
use crate::{TrialRecord, TrialStatus};

/// The metric the rungs rank by.
const ACC: &str = danas_core::metric::VAL_ACCURACY;

fn kib(v: Option<f64>) -> String {
    v.map(|b| format!("{:.1}", b / 1024.0)).unwrap_or_else(|| "-".into())
}

fn pct(v: Option<f64>) -> String {
    v.map(|a| format!("{:.2}", a * 100.0)).unwrap_or_else(|| "-".into())
}

pub(super) fn markdown(rows: &[TrialRow], pareto: &[usize], limits: &LimitsShown) -> String {
    let mut s = md_summary(rows, limits);
    md_pareto(&mut s, rows, pareto);
    md_finals(&mut s, rows, pareto);
    md_best_per_limit(&mut s, rows, pareto, limits);
    md_data_configs(&mut s, rows, pareto);
    md_halving(&mut s, rows);
    s.push_str("\nThe same report with the plots in one page: `report.html`. Plots: `accuracy_vs_ram`, `accuracy_vs_flash`, `accuracy_vs_latency` (feasible region shaded, colours = data configuration) and `best_over_time`, each as `.svg` and `.png`. All trials: `trials.csv`; the Pareto set: `pareto.csv`, `pareto.json`.\n");
    s
}

/// Title, trial counts and the limits.
fn md_summary(rows: &[TrialRow], limits: &LimitsShown) -> String {
    let mut s = String::from("# danas search report\n\n");
    let count = |st: TrialStatus| rows.iter().filter(|r| r.status == st).count();
    let _ = writeln!(
        s,
        "{} trials: {} evaluated, {} rejected by the cost gate before training, {} failed, {} repeats of \
         candidates already evaluated (answered from the journal, not retrained), {} interrupted.\n",
        rows.len(),
        count(TrialStatus::Complete),
        count(TrialStatus::Infeasible),
        count(TrialStatus::Failed),
        count(TrialStatus::Repeat),
        count(TrialStatus::Running)
    );
    let lim = |v: Option<f64>, unit: &str, scale: f64| {
        v.map(|x| format!("{:.1} {unit}", x / scale)).unwrap_or_else(|| "none".into())
    };
    let _ = writeln!(
        s,
        "Limits: RAM (arena) {}, flash {}, latency {}.\n",
        lim(limits.ram_bytes, "KiB", 1024.0),
        lim(limits.flash_bytes, "KiB", 1024.0),
        lim(limits.latency_ms, "ms", 1.0)
    );
    s
}

/// The Pareto set table.
fn md_pareto(s: &mut String, rows: &[TrialRow], pareto: &[usize]) {
    let halving = rows.iter().any(|r| r.rung.is_some());
    s.push_str("## Pareto set (feasible, non-dominated on accuracy, RAM, flash, latency)\n\n");
    if halving {
        s.push_str("Accuracy here is each trial's standing after successive halving: the highest rung it\n");
        s.push_str("reached, then its validation accuracy there (`selected on`).\n\n");
        s.push_str("| trial | selected on | ");
    } else {
        s.push_str("| trial | ");
    }
    s.push_str("data | arch | val acc % | arena KiB | flash KiB | latency ms | MMACs | peak RAM set by |\n");
    s.push_str(if halving { "|---:|---|" } else { "|---:|" });
    s.push_str("---|---|---:|---:|---:|---:|---:|---|\n");
    for &i in pareto {
        let r = &rows[i];
        let selected = match (&r.rung_promotion, r.rung_val_accuracy) {
            (Some(p), acc) => format!(" {p}: {} |", pct(acc)),
            _ if halving => " proxy |".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "| {} |{selected} {} | {} | {} | {} | {} | {} | {} | {} |",
            r.id,
            r.data_key(),
            r.arch,
            pct(r.val_accuracy),
            kib(r.arena_bytes),
            kib(r.flash_bytes),
            r.latency_ms.map(|l| format!("{l:.1}")).unwrap_or_else(|| "-".into()),
            r.macs.map(|m| format!("{:.2}", m / 1e6)).unwrap_or_else(|| "-".into()),
            r.peak_op.as_deref().unwrap_or("-"),
        );
    }
    if pareto.is_empty() {
        s.push_str("\nNo feasible candidate was evaluated.\n");
    }
}

/// The final stage's retrained and exported models.
fn md_finals(s: &mut String, rows: &[TrialRow], pareto: &[usize]) {
    let finals: Vec<&TrialRow> = pareto.iter().map(|&i| &rows[i]).filter(|r| r.test_accuracy.is_some()).collect();
    if !finals.is_empty() {
        s.push_str("\n## Final stage: retrained and exported models\n\n");
        s.push_str("The most accurate Pareto candidates, retrained; **test** accuracy of the float network and of\n");
        s.push_str("the deployable int8 model (danas's int8 evaluator computes what TFLM computes).\n\n");
        s.push_str(
            "| trial | data | arch | val acc % | test acc % | int8 test acc % | arena KiB | flash KiB | model |\n",
        );
        s.push_str("|---:|---|---|---:|---:|---:|---:|---:|---|\n");
        for r in finals {
            let model = r
                .model_dir
                .as_deref()
                .map(|d| format!("[{d}/model.tflite]({d}/model.tflite) ([manifest]({d}/manifest.json))"))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {model} |",
                r.id,
                r.data_key(),
                r.arch,
                pct(r.val_accuracy),
                pct(r.test_accuracy),
                pct(r.int8_test_accuracy),
                kib(r.arena_bytes),
                kib(r.flash_bytes),
            );
        }
    }
}

/// The most accurate Pareto member under the RAM limit and under each smaller limit
/// that changes the answer.
fn md_best_per_limit(s: &mut String, rows: &[TrialRow], pareto: &[usize], limits: &LimitsShown) {
    s.push_str("\n## Best system per limit\n\n");
    let feas: Vec<&TrialRow> = pareto.iter().map(|&i| &rows[i]).collect();
    if let Some(ram) = limits.ram_bytes {
        s.push_str(
            "The most accurate system under each RAM limit, from the search's limit down to the smallest \
             Pareto system; only limits that change the answer are listed.\n\n",
        );
        s.push_str("| RAM limit KiB | best val acc % | data | arch | arena KiB |\n|---:|---:|---|---|---:|\n");
        // Candidate limits: the search's, then each Pareto system's own arena, largest first.
        let mut caps: Vec<f64> = feas.iter().filter_map(|r| r.arena_bytes).filter(|&b| b < ram).collect();
        caps.sort_by(|a, b| b.total_cmp(a));
        caps.dedup();
        caps.insert(0, ram);
        let mut last: Option<u64> = None;
        let mut listed = 0;
        for cap in caps {
            let best = feas
                .iter()
                .filter(|r| r.arena_bytes.is_some_and(|b| b <= cap))
                .max_by(|a, b| a.selection_key().total_cmp(&b.selection_key()));
            match best {
                Some(r) if last != Some(r.id) => {
                    last = Some(r.id);
                    listed += 1;
                    let _ = writeln!(
                        s,
                        "| {:.1} | {} | {} | {} | {} |",
                        cap / 1024.0,
                        pct(r.val_accuracy),
                        r.data_key(),
                        r.arch,
                        kib(r.arena_bytes)
                    );
                }
                _ => {}
            }
            if listed >= 8 {
                break;
            }
        }
        if listed == 0 {
            let _ = writeln!(s, "| {:.1} | - | - | - | - |", ram / 1024.0);
        }
    }
}

/// Per data configuration: trials, infeasible ones, best accuracy, Pareto members.
fn md_data_configs(s: &mut String, rows: &[TrialRow], pareto: &[usize]) {
    let feas: Vec<&TrialRow> = pareto.iter().map(|&i| &rows[i]).collect();
    s.push_str("\n## Data configurations\n\n| data | evaluated | infeasible | best val acc % | on the Pareto set |\n|---|---:|---:|---:|---:|\n");
    let mut keys: Vec<String> = rows.iter().map(TrialRow::data_key).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let of: Vec<&TrialRow> = rows.iter().filter(|r| r.data_key() == k).collect();
        let best = of
            .iter()
            .filter(|r| r.feasible())
            .filter_map(|r| r.val_accuracy)
            .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.max(a))));
        let _ = writeln!(
            s,
            "| {k} | {} | {} | {} | {} |",
            of.iter().filter(|r| r.status == TrialStatus::Complete).count(),
            of.iter().filter(|r| r.status == TrialStatus::Infeasible).count(),
            pct(best),
            feas.iter().filter(|r| r.data_key() == k).count()
        );
    }
}

/// `rungs.csv`: every rung result, one row each.
pub(super) fn rungs_csv(trials: &[TrialRecord]) -> String {
    let mut s = String::from("trial,data,arch,proxy_val_accuracy,rung,promotion,val_accuracy,eval_seconds,elapsed_s\n");
    for t in trials {
        for r in &t.rungs {
            let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
            s.push_str(&format!(
                "{},{},\"{}\",{},{},{},{},{},{}\n",
                t.id,
                t.candidate.data,
                t.candidate.arch,
                opt(accuracy_at(t, 0)),
                r.rung,
                r.promotion,
                opt(r.metrics.value(ACC)),
                r.eval_seconds,
                r.elapsed_at
            ));
        }
    }
    s
}

/// The report's section on successive halving (nothing without rung results).
fn md_halving(s: &mut String, rows: &[TrialRow]) {
    let promoted: Vec<&TrialRow> = rows.iter().filter(|r| r.rung.is_some()).collect();
    if promoted.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Successive halving\n\n{} of the evaluated trials were scored again above the proxy; the Pareto set, \
         the final stage and the best system ranked them by the highest rung they reached. All rung results: `rungs.csv`.\n",
        promoted.len()
    );
    s.push_str(
        "| trial | data | arch | proxy val acc % | highest rung | val acc % there |\n|---:|---|---|---:|---|---:|\n",
    );
    let mut sorted = promoted;
    sorted.sort_by(|a, b| {
        b.rung.cmp(&a.rung).then(b.rung_val_accuracy.unwrap_or(0.0).total_cmp(&a.rung_val_accuracy.unwrap_or(0.0)))
    });
    for r in sorted {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} ({}) | {} |",
            r.id,
            r.data_key(),
            r.arch,
            pct(r.val_accuracy),
            r.rung.unwrap_or(0),
            r.rung_promotion.as_deref().unwrap_or("-"),
            pct(r.rung_val_accuracy)
        );
    }
}

/// Adds the board after the limits line of a report.
pub(super) fn board_line(md: String, board: Option<&danas_cost::Profile>) -> String {
    let Some(b) = board else { return md };
    let line = format!(
        "Board: {}. Flash figures include the runtime's {:.0} KiB.\n\n",
        b.describe(),
        b.runtime_flash_bytes as f64 / 1024.0
    );
    match md.find("Limits: ").and_then(|i| md[i..].find("\n\n").map(|j| i + j + 2)) {
        Some(at) => format!("{}{line}{}", &md[..at], &md[at..]),
        None => md + &line,
    }
}
