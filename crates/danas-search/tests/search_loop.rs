//! The search loop on a synthetic landscape: cost gate, determinism, resume, outputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use danas_core::{Candidate, Costs, DataConfig, Feasibility, Limits};
use danas_optim::synthetic::{Landscape, stand_in_cost};
use danas_optim::{Metrics, Violation};
use danas_search::{
    Assessment, Budget, CostGate, EvalError, Evaluator, Prepared, STUDY_FILE, Search, SearchError, TrialStatus,
};
use danas_space::{CandidateSpace, MbSpace};

use common::{StopAfter, assert_feasible_front, landscape_metrics};

const RAM: f64 = 64.0 * 1024.0;
const FLASH: f64 = 256.0 * 1024.0;

struct Gate {
    ram: f64,
    flash: f64,
}

impl CostGate for Gate {
    fn assess(&self, c: &Candidate) -> Result<Assessment, EvalError> {
        let (ram, flash) = stand_in_cost()(c).map_err(EvalError::from)?;
        let mut violations = Vec::new();
        if ram > self.ram {
            violations.push(Violation { metric: "arena_bytes".into(), value: ram, limit: self.ram });
        }
        if flash > self.flash {
            violations.push(Violation { metric: "flash_bytes".into(), value: flash, limit: self.flash });
        }
        let costs = Costs { latency_ms: Some(ram / 1e4), macs: Some(1), ..Costs::new(ram as u64, flash as u64) };
        Ok(Assessment { costs, feasibility: Feasibility::from_violations(violations) })
    }
    fn limits(&self) -> Option<Limits> {
        Some(Limits { ram_bytes: self.ram as u64, flash_bytes: self.flash as u64, latency_ms: None })
    }
}

/// Scores on the synthetic landscape and remembers what it was asked to evaluate.
struct Synthetic {
    landscape: Landscape,
    seen: Mutex<Vec<Candidate>>,
    prepared: Mutex<Vec<DataConfig>>,
}

impl Synthetic {
    fn new() -> Self {
        Self { landscape: Landscape::new(5), seen: Mutex::new(Vec::new()), prepared: Mutex::new(Vec::new()) }
    }
}

impl Evaluator for Synthetic {
    fn prepare(
        &self,
        d: DataConfig,
        _dir: &Path,
        existing: Option<&str>,
        _s: &dyn Fn(&str),
    ) -> Result<Prepared, EvalError> {
        self.prepared.lock().unwrap().push(d);
        Ok(Prepared {
            checkpoint: Some(existing.map_or_else(|| format!("supernets/{}.bin", d.key()), str::to_string)),
            seconds: 0.0,
        })
    }
    fn evaluate(&self, c: &Candidate, _seed: u64) -> Result<Metrics, EvalError> {
        self.seen.lock().unwrap().push(c.clone());
        Ok(landscape_metrics(&self.landscape, c))
    }
}

fn search(dir: &Path, eval: Arc<Synthetic>, seed: u64, trials: u64, strategy: &str) -> Search {
    let space: Arc<MbSpace> = Arc::new(MbSpace::demo());
    let opt = danas_optim::by_name(strategy, space.clone(), seed, None).unwrap();
    Search::new(space, opt, Arc::new(Gate { ram: RAM, flash: FLASH }), eval)
        .budget(Budget { wall: None, max_trials: Some(trials) })
        .seed(seed)
        .out_dir(dir)
}

#[test]
fn gate_outputs_and_pareto() {
    let dir = tempfile::tempdir().unwrap();
    let eval = Arc::new(Synthetic::new());
    let s = search(dir.path(), eval.clone(), 1, 12, "random").run().unwrap();
    assert_eq!(s.progress.evaluated, 12);
    let gate = Gate { ram: RAM, flash: FLASH };
    for c in eval.seen.lock().unwrap().iter() {
        assert!(gate.assess(c).unwrap().feasibility.is_feasible(), "trained an infeasible candidate {c}");
    }
    let infeasible = s.trials.iter().filter(|t| t.status == TrialStatus::Infeasible).count();
    assert_eq!(infeasible as u64, s.progress.infeasible);
    assert!(s.trials.iter().filter(|t| t.status == TrialStatus::Infeasible).all(|t| t.eval_seconds == Some(0.0)));
    // Pareto set: feasible and non-dominated
    assert_feasible_front(&s.outputs.pareto, RAM, FLASH);
    for f in ["trials.csv", "pareto.csv", "pareto.json", "report.md", "accuracy_vs_ram.png", STUDY_FILE] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    // each data configuration was prepared once
    let prepared = eval.prepared.lock().unwrap().clone();
    let mut uniq = prepared.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), prepared.len());
}

#[test]
fn same_seed_same_trials() {
    let run = |seed| {
        let dir = tempfile::tempdir().unwrap();
        let s = search(dir.path(), Arc::new(Synthetic::new()), seed, 10, "aging-evolution").run().unwrap();
        s.trials.iter().map(|t| (t.id, t.genome.clone(), t.status, t.seed)).collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn resume_continues_exactly() {
    // Uninterrupted reference run.
    let ref_dir = tempfile::tempdir().unwrap();
    let reference = search(ref_dir.path(), Arc::new(Synthetic::new()), 3, 14, "paper-ga").run().unwrap();

    // Interrupted after 5 evaluations, then resumed with a fresh optimiser.
    let dir = tempfile::tempdir().unwrap();
    let first = search(dir.path(), Arc::new(Synthetic::new()), 3, 14, "paper-ga")
        .observer(Box::new(StopAfter(5)))
        .run()
        .unwrap();
    assert!(first.progress.evaluated >= 5 && first.progress.evaluated < 14);
    let eval = Arc::new(Synthetic::new());
    let resumed = search(dir.path(), eval.clone(), 3, 14, "paper-ga").resume().unwrap();
    assert_eq!(resumed.progress.evaluated, 14);
    let key = |t: &danas_search::TrialRecord| (t.id, t.genome.clone(), t.status);
    assert_eq!(
        resumed.trials.iter().map(key).collect::<Vec<_>>(),
        reference.trials.iter().map(key).collect::<Vec<_>>(),
        "resumed study equals the uninterrupted one"
    );
    // completed trials are not re-evaluated
    let again = eval.seen.lock().unwrap().len() as u64;
    assert_eq!(again, 14 - first.progress.evaluated);
    // the journaled supernets are reused, not retrained
    assert!(eval.prepared.lock().unwrap().len() <= MbSpace::demo().data_configs().len());
}

#[test]
fn unreachable_limits_name_the_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let space: Arc<MbSpace> = Arc::new(MbSpace::demo());
    let opt = danas_optim::by_name("random", space.clone(), 0, None).unwrap();
    let s = Search::new(space, opt, Arc::new(Gate { ram: 100.0, flash: 100.0 }), Arc::new(Synthetic::new()))
        .out_dir(dir.path());
    match s.preflight(100_000) {
        Err(e @ SearchError::Unreachable { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("smallest RAM") && msg.contains("KiB"), "{msg}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[test]
fn resume_of_a_non_study_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(STUDY_FILE), "not sqlite").unwrap();
    let e = search(dir.path(), Arc::new(Synthetic::new()), 0, 3, "random").resume().unwrap_err();
    assert!(matches!(e, SearchError::NotAStudy { .. }), "{e}");
}

/// Evolution on the 198-candidate demo space re-proposes candidates it has seen:
/// each is trained once, and every repeat reuses the first result.
#[test]
fn repeated_candidates_are_answered_not_retrained() {
    let dir = tempfile::tempdir().unwrap();
    let eval = Arc::new(Synthetic::new());
    let s = search(dir.path(), eval.clone(), 2, 80, "aging-evolution").run().unwrap();
    let seen = eval.seen.lock().unwrap().clone();
    let mut distinct: Vec<String> = seen.iter().map(ToString::to_string).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), seen.len(), "a candidate was trained twice");
    assert_eq!(s.progress.evaluated, 80, "repeats do not count against max_trials");
    let repeats: Vec<_> = s.trials.iter().filter(|t| t.status == TrialStatus::Repeat).collect();
    assert!(!repeats.is_empty(), "evolution on a small space repeats itself");
    assert_eq!(repeats.len() as u64, s.progress.repeats);
    for r in repeats {
        assert_eq!(r.eval_seconds, Some(0.0));
        let msg = r.message.as_deref().unwrap();
        let orig: u64 = msg.trim_start_matches("repeat of trial ").split(':').next().unwrap().parse().unwrap();
        let o = s.trials.iter().find(|t| t.id == orig).unwrap();
        assert!(o.id < r.id && o.status == TrialStatus::Complete && o.candidate == r.candidate);
        assert_eq!(o.metrics, r.metrics);
    }
    // The Pareto set lists each candidate once.
    let mut keys: Vec<String> = s.outputs.pareto.iter().map(|p| format!("{} {}", p.data_key(), p.arch)).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
}

/// With more trials allowed than the space has candidates, the search stops once
/// the optimiser only proposes candidates it has already seen.
#[test]
fn an_exhausted_space_ends_the_search() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        "name = \"tiny\"\nresolutions = [16]\ncolors = [\"rgb\"]\nalphas = [0.25, 0.5]\nmax_depths = [1, 0, 0, 0, 0]\n";
    let space: Arc<MbSpace> = Arc::new(MbSpace::from_toml_str(text, Path::new("tiny.toml")).unwrap());
    let size = danas_space::SearchSpace::enumerate(space.as_ref(), 1000).unwrap().len();
    let opt = danas_optim::by_name("random", space.clone(), 0, None).unwrap();
    let eval = Arc::new(Synthetic::new());
    let s = Search::new(space, opt, Arc::new(Gate { ram: 1e12, flash: 1e12 }), eval.clone())
        .budget(Budget { wall: None, max_trials: Some(1000) })
        .out_dir(dir.path())
        .run()
        .unwrap();
    assert_eq!(s.progress.evaluated as usize, size, "every candidate once");
    assert_eq!(eval.seen.lock().unwrap().len(), size);
    assert!(s.progress.repeats >= 500);
    let journal = danas_search::Journal::open(&dir.path().join(STUDY_FILE)).unwrap();
    let events = journal.events().unwrap();
    assert!(events.iter().any(|(_, kind, msg)| kind == "stop" && msg.contains("already evaluated")), "{events:?}");
}

/// A resumed study still knows which candidates it has evaluated: over both
/// sessions every candidate of a small space is trained exactly once.
#[test]
fn resume_keeps_answering_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let text = "name = \"small\"\nresolutions = [16, 24]\ncolors = [\"rgb\"]\nalphas = [0.25, 0.5, 0.75]\nmax_depths = [1, 0, 0, 0, 0]\n";
    let space: Arc<MbSpace> = Arc::new(MbSpace::from_toml_str(text, Path::new("small.toml")).unwrap());
    let size = danas_space::SearchSpace::enumerate(space.as_ref(), 1000).unwrap().len();
    let make = |eval: Arc<Synthetic>| {
        let opt = danas_optim::by_name("random", space.clone(), 5, None).unwrap();
        Search::new(space.clone(), opt, Arc::new(Gate { ram: 1e12, flash: 1e12 }), eval)
            .budget(Budget { wall: None, max_trials: Some(1000) })
            .parallel(1)
            .out_dir(dir.path())
    };
    let first = make(Arc::new(Synthetic::new())).observer(Box::new(StopAfter(size as u64 / 2))).run().unwrap();
    assert!(first.progress.evaluated < size as u64);
    let eval = Arc::new(Synthetic::new());
    let resumed = make(eval.clone()).resume().unwrap();
    assert_eq!(resumed.progress.evaluated as usize, size);
    assert_eq!(eval.seen.lock().unwrap().len() as u64, size as u64 - first.progress.evaluated);
}
