//! Behaviour pinned by recorded studies, with the real cost gate and a synthetic
//! evaluator: the same seed gives the same trials and the same output files, an
//! interrupted study resumes to what an uninterrupted run gives, and a study of the
//! old format 2 is migrated and resumes.
//!
//! `tests/fixtures/golden` was recorded before the typed-trial-pipeline change (commit
//! 7491892) and re-recorded, unchanged in every other respect, when the arena tail
//! became a per-op-kind model (issue 19: every trial's `arena_bytes` changed, and with
//! the 24 KiB limit which candidates fit). `tests/fixtures/golden-format2` keeps the
//! interrupted format-2 studies of the first recording.
//!
//! `DANAS_RECORD_GOLDEN=1 cargo test -p danas-search --test golden` rewrites
//! `golden`; do that only for an intended change of behaviour, and say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use danas_core::{Candidate, DataConfig, Precision};
use danas_cost::{Limits, Profile};
use danas_optim::Metrics;
use danas_optim::synthetic::Landscape;
use danas_search::{Budget, CostModelGate, EvalError, Evaluator, Finalized, Prepared, STUDY_FILE, Search, TrialRecord};
use danas_space::{CandidateSpace, MbSpace};

use common::{StopAfter, landscape_metrics};

const RAM: u64 = 24 * 1024;
const FLASH: u64 = 512 * 1024;
const TRIALS: u64 = 40;
const TOP_K: usize = 2;

/// The optimisers pinned; all but `random` have the cost gate as their oracle, so
/// `random` proposes infeasible candidates too.
const STRATEGIES: [&str; 4] = ["aging-evolution", "nsga2", "bayesian", "random"];

struct Synthetic(Landscape);

impl Evaluator for Synthetic {
    fn prepare(
        &self,
        d: DataConfig,
        _: &Path,
        existing: Option<&str>,
        _: &dyn Fn(&str),
    ) -> Result<Prepared, EvalError> {
        let checkpoint = existing.map_or_else(|| format!("supernets/{}.bin", d.key()), str::to_string);
        Ok(Prepared { checkpoint: Some(checkpoint), seconds: 0.0 })
    }
    fn evaluate(&self, c: &Candidate, seed: u64) -> Result<Metrics, EvalError> {
        if seed.is_multiple_of(11) {
            return Err(format!(
                "synthetic divergence at {}/{} alpha {}",
                c.data.resolution, c.data.color, c.arch.alpha
            )
            .into());
        }
        Ok(landscape_metrics(&self.0, c).with("val_loss", (seed % 1000) as f64 / 1000.0))
    }
    fn finalize(&self, c: &Candidate, _: u64, _: &Path, name: &str) -> Result<Option<Finalized>, EvalError> {
        let acc = self.0.clean_accuracy(c);
        Ok(Some(Finalized {
            metrics: Metrics::new().with("test_accuracy", acc - 0.01).with("final_val_accuracy", acc),
            checkpoint: Some(format!("final/{name}.ckpt")),
            int8: None,
            calib_images: 0,
        }))
    }
}

fn search(dir: &Path, strategy: &str, top_k: usize) -> Search {
    let space: Arc<dyn CandidateSpace> = Arc::new(MbSpace::demo());
    let limits = Limits { ram_bytes: RAM, flash_bytes: FLASH, latency_ms: None };
    let profile = Profile::builtin("nucleo-h743").unwrap();
    let gate = Arc::new(CostModelGate::new(profile, limits, Precision::Int8, 2));
    let oracle = (strategy != "random").then(|| gate.oracle(Arc::clone(&space)));
    let opt = danas_optim::by_name(strategy, space.clone(), 11, oracle).unwrap();
    Search::new(space, opt, gate, Arc::new(Synthetic(Landscape::new(4))))
        .budget(Budget { wall: None, max_trials: Some(TRIALS) })
        .seed(11)
        .parallel(2)
        .final_top_k(top_k)
        .out_dir(dir)
        .config(serde_json::json!({ "strategy": strategy, "golden": true }))
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn format2_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-format2")
}

/// A trial without its clock readings.
fn timeless(t: &TrialRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(t).unwrap();
    let obj = v.as_object_mut().unwrap();
    for k in ["started_at", "finished_at", "eval_seconds", "elapsed_at"] {
        obj.remove(k);
    }
    v
}

/// A trial as it was before the final stage added its results.
fn without_final_stage(t: &serde_json::Value) -> serde_json::Value {
    let mut t = t.clone();
    if let Some(obj) = t.as_object_mut() {
        obj.remove("final_checkpoint");
        obj.remove("model_dir");
        if let Some(m) = obj.get_mut("metrics").and_then(|m| m.as_object_mut()) {
            for k in ["test_accuracy", "final_val_accuracy", "final_checkpoint", "model_dir"] {
                m.remove(k);
            }
        }
    }
    t
}

/// `trials.csv` rows without their clock columns (`eval_seconds`, `elapsed_s`, the two
/// before the last, `message`, which holds no comma in these studies).
fn csv_without_clock(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.rsplitn(4, ',').collect();
            (f.get(3).copied().unwrap_or("").to_string(), f[0].to_string())
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn record() {
    for strategy in STRATEGIES {
        let base = fixtures().join(strategy);
        let _ = std::fs::remove_dir_all(&base);
        let full = base.join("full");
        search(&full, strategy, TOP_K).run().unwrap();
        let interrupted = base.join("interrupted");
        search(&interrupted, strategy, 0).observer(Box::new(StopAfter(15))).run().unwrap();
        for dir in [&full, &interrupted] {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                if ![STUDY_FILE, "trials.csv", "pareto.json", "report.md"].contains(&name.as_str()) {
                    if p.is_dir() {
                        std::fs::remove_dir_all(&p).unwrap();
                    } else {
                        std::fs::remove_file(&p).unwrap();
                    }
                }
            }
        }
    }
}

fn journal_trials(dir: &Path) -> Vec<serde_json::Value> {
    let j = danas_search::Journal::open_read_only(&dir.join(STUDY_FILE)).unwrap();
    j.trials().unwrap().iter().map(timeless).collect()
}

#[test]
fn same_seed_same_trials_and_outputs_as_before() {
    if std::env::var_os("DANAS_RECORD_GOLDEN").is_some() {
        record();
        return;
    }
    for strategy in STRATEGIES {
        let base = fixtures().join(strategy).join("full");
        let dir = tempfile::tempdir().unwrap();
        let s = search(dir.path(), strategy, TOP_K).run().unwrap();
        let now: Vec<_> = s.trials.iter().map(timeless).collect();
        assert_eq!(now, journal_trials(&base), "{strategy}: trials differ from the recorded study");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        let pareto_now: serde_json::Value = serde_json::from_str(&read(&dir.path().join("pareto.json"))).unwrap();
        let pareto_then: serde_json::Value = serde_json::from_str(&read(&base.join("pareto.json"))).unwrap();
        assert_eq!(pareto_now, pareto_then, "{strategy}: pareto.json differs");
        assert_eq!(
            csv_without_clock(&read(&dir.path().join("trials.csv"))),
            csv_without_clock(&read(&base.join("trials.csv"))),
            "{strategy}: trials.csv differs"
        );
        assert_eq!(read(&dir.path().join("report.md")), read(&base.join("report.md")), "{strategy}: report.md differs");
    }
}

#[test]
fn an_interrupted_study_resumes_to_the_uninterrupted_result() {
    if std::env::var_os("DANAS_RECORD_GOLDEN").is_some() {
        return;
    }
    for strategy in STRATEGIES {
        let base = fixtures().join(strategy);
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&base.join("interrupted"), dir.path());
        let before = journal_trials(dir.path());
        assert!(before.len() < TRIALS as usize, "{strategy}: the recorded study was not interrupted");
        let s = search(dir.path(), strategy, TOP_K).resume().unwrap();
        let now: Vec<_> = s.trials.iter().map(timeless).collect();
        let unfinalised: Vec<_> = now[..before.len()].iter().map(without_final_stage).collect();
        let before: Vec<_> = before.iter().map(without_final_stage).collect();
        assert_eq!(unfinalised, before, "{strategy}: resuming changed finished trials");
        assert_eq!(now, journal_trials(&base.join("full")), "{strategy}: resumed study differs from the full one");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&read(&dir.path().join("pareto.json"))).unwrap(),
            serde_json::from_str::<serde_json::Value>(&read(&base.join("full/pareto.json"))).unwrap(),
            "{strategy}: pareto.json of the resumed study differs"
        );
    }
}

/// A format-2 study (recorded before the typed trial pipeline, with the old arena
/// tail) is migrated on open, keeps its finished trials as they were, and resumes to
/// the full budget with every trial once.
#[test]
fn an_old_format_study_is_migrated_and_resumes() {
    if std::env::var_os("DANAS_RECORD_GOLDEN").is_some() {
        return;
    }
    for strategy in STRATEGIES {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&format2_fixtures().join(strategy), dir.path());
        let before = journal_trials(dir.path());
        assert!(before.len() < TRIALS as usize, "{strategy}: the recorded study was not interrupted");
        let s = search(dir.path(), strategy, TOP_K).resume().unwrap();
        let j = danas_search::Journal::open_read_only(&dir.path().join(STUDY_FILE)).unwrap();
        assert_eq!(j.meta("format").unwrap().as_deref(), Some("3"), "{strategy}: the study was not migrated");
        assert!(j.events().unwrap().iter().any(|(_, kind, msg)| kind == "migrate" && msg.contains("2 -> 3")));
        let now: Vec<_> = s.trials.iter().map(timeless).collect();
        let unfinalised: Vec<_> = now[..before.len()].iter().map(without_final_stage).collect();
        let before: Vec<_> = before.iter().map(without_final_stage).collect();
        assert_eq!(unfinalised, before, "{strategy}: resuming changed finished trials");
        let evaluated = now.iter().filter(|t| matches!(t["status"].as_str(), Some("complete" | "failed"))).count();
        assert_eq!(evaluated as u64, TRIALS, "{strategy}: the resumed study did not reach its budget");
        let ids: std::collections::BTreeSet<_> = now.iter().map(|t| t["id"].as_u64().unwrap()).collect();
        assert_eq!(ids.len(), now.len(), "{strategy}: a trial id appears twice");
        assert!(dir.path().join("pareto.json").is_file(), "{strategy}: no pareto.json after resuming");
    }
}
