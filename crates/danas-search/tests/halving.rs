//! Successive halving in the search loop: which trials are promoted, that selection
//! ranks by the highest rung reached, and that an interrupted study promotes
//! exactly what is still due.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use danas_core::{Candidate, Costs, DataConfig, Feasibility, Metrics};
use danas_optim::synthetic::Landscape;
use danas_search::{
    Assessment, Budget, Control, CostGate, EvalError, Evaluator, Halving, Observer, Prepared, Promote, Promotion, Rung,
    Search, SearchEvent,
};
use danas_space::MbSpace;

struct Free;
impl CostGate for Free {
    fn assess(&self, c: &Candidate) -> Result<Assessment, EvalError> {
        let p = c.blueprint(2)?.param_count();
        Ok(Assessment { costs: Costs::new(p, p), feasibility: Feasibility::Feasible })
    }
}

/// The proxy is the landscape's accuracy *reversed* within each resolution band,
/// the higher rungs the truth: only promotions can find the good candidates.
struct Misleading {
    landscape: Landscape,
    promoted: Mutex<Vec<(Candidate, Promotion)>>,
}

impl Misleading {
    fn truth(&self, c: &Candidate) -> f64 {
        self.landscape.clean_accuracy(c)
    }
}

impl Evaluator for Misleading {
    fn prepare(&self, _: DataConfig, _: &Path, _: Option<&str>, _: &dyn Fn(&str)) -> Result<Prepared, EvalError> {
        Ok(Prepared::default())
    }
    fn evaluate(&self, c: &Candidate, _seed: u64) -> Result<Metrics, EvalError> {
        Ok(Metrics::new().with("val_accuracy", 1.0 - self.truth(c)))
    }
    fn promote(&self, c: &Candidate, p: Promotion, _seed: u64) -> Result<Option<Metrics>, EvalError> {
        self.promoted.lock().unwrap().push((c.clone(), p));
        let noise = match p {
            Promotion::Finetune { .. } => 0.05,
            Promotion::Retrain { .. } => 0.0,
        };
        Ok(Some(Metrics::new().with("val_accuracy", (self.truth(c) - noise).max(0.0))))
    }
}

fn halving() -> Halving {
    Halving {
        rungs: vec![
            Rung { promotion: Promotion::Finetune { steps: 10 }, promote: Promote::Fraction(0.5) },
            Rung { promotion: Promotion::Retrain { steps: 100 }, promote: Promote::Top(2) },
        ],
    }
}

fn search(dir: &Path, eval: Arc<Misleading>, trials: u64) -> Search {
    search_in(Arc::new(MbSpace::demo()), dir, eval, Budget { wall: None, max_trials: Some(trials) })
}

/// A random search (seed 3) of `space` with the two rungs of [`halving`].
fn search_in(space: Arc<MbSpace>, dir: &Path, eval: Arc<Misleading>, budget: Budget) -> Search {
    let opt = danas_optim::by_name("random", space.clone(), 3, None).unwrap();
    Search::new(space, opt, Arc::new(Free), eval).budget(budget).seed(3).out_dir(dir).halving(halving())
}

#[test]
fn promotions_follow_the_rules_and_selection_ranks_by_the_highest_rung() {
    let dir = tempfile::tempdir().unwrap();
    let eval = Arc::new(Misleading { landscape: Landscape::new(2), promoted: Mutex::new(Vec::new()) });
    let s = search(dir.path(), eval.clone(), 16).run().unwrap();
    let promoted = eval.promoted.lock().unwrap().clone();
    let finetuned: Vec<_> = promoted.iter().filter(|(_, p)| matches!(p, Promotion::Finetune { .. })).collect();
    let retrained: Vec<_> = promoted.iter().filter(|(_, p)| matches!(p, Promotion::Retrain { .. })).collect();
    // nothing is promoted twice to the same rung
    for (i, a) in promoted.iter().enumerate() {
        assert!(!promoted[..i].contains(a), "promoted twice: {a:?}");
    }
    // the best half of the 16 proxies is fine-tuned (and trials that were in the best
    // half when they came in, which a promotion never takes back), the final top 2 of
    // the fine-tuned are retrained, and retraining stays rare
    let proxy = |t: &danas_search::TrialRecord| t.metrics.as_ref().and_then(|m| m.value("val_accuracy")).unwrap();
    let mut by_proxy: Vec<&danas_search::TrialRecord> = s.trials.iter().collect();
    by_proxy.sort_by(|a, b| proxy(b).total_cmp(&proxy(a)).then(a.id.cmp(&b.id)));
    for t in &by_proxy[..8] {
        assert!(finetuned.iter().any(|(c, _)| *c == t.candidate), "trial {} of the best half not fine-tuned", t.id);
    }
    assert!(finetuned.len() >= 8 && finetuned.len() < 16, "{} fine-tuned", finetuned.len());
    assert!(retrained.len() >= 2 && retrained.len() < finetuned.len(), "{} retrained", retrained.len());
    assert_eq!(s.progress.promotions, promoted.len() as u64);
    // every promotion is journaled, at its rung
    let rungs: usize = s.trials.iter().map(|t| t.rungs.len()).sum();
    assert_eq!(rungs, promoted.len());
    // the proxy alone would pick its own best; selection picks the best retrained one
    let best = &s.outputs.pareto[0];
    assert_eq!(best.rung, Some(2));
    let retrained_best = s
        .trials
        .iter()
        .filter_map(|t| t.rungs.iter().find(|r| r.rung == 2).map(|r| (t.id, r.metrics.value("val_accuracy").unwrap())))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert_eq!(best.id, retrained_best.0);
    let proxy_best = s.trials.iter().max_by(|a, b| {
        let v = |t: &danas_search::TrialRecord| t.metrics.as_ref().and_then(|m| m.value("val_accuracy")).unwrap_or(0.0);
        v(a).total_cmp(&v(b))
    });
    assert_ne!(proxy_best.map(|t| t.id), Some(best.id), "the misleading proxy would have picked the same");
    for f in ["rungs.csv", "report.md", "pareto.json"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("## Successive halving") && md.contains("selected on"), "{md}");
    let pareto: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("pareto.json")).unwrap()).unwrap();
    assert_eq!(pareto[0]["selection"]["rung"], 2);
}

struct StopAfterPromotions(u64);
impl Observer for StopAfterPromotions {
    fn on_event(&mut self, e: &SearchEvent<'_>) -> Control {
        match e {
            SearchEvent::Promoted { progress, .. } if progress.promotions >= self.0 => Control::Stop,
            _ => Control::Continue,
        }
    }
}

#[test]
fn an_interrupted_study_promotes_exactly_what_is_still_due() {
    let whole = tempfile::tempdir().unwrap();
    let e1 = Arc::new(Misleading { landscape: Landscape::new(2), promoted: Mutex::new(Vec::new()) });
    let s1 = search(whole.path(), e1.clone(), 16).run().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let e2 = Arc::new(Misleading { landscape: Landscape::new(2), promoted: Mutex::new(Vec::new()) });
    search(dir.path(), e2.clone(), 16).observer(Box::new(StopAfterPromotions(3))).run().unwrap();
    let before = e2.promoted.lock().unwrap().len();
    assert!(before >= 3 && before < e1.promoted.lock().unwrap().len());
    let s2 = search(dir.path(), e2.clone(), 16).resume().unwrap();
    // nothing promoted twice, and the same promotions and selection as the uninterrupted study
    let all = e2.promoted.lock().unwrap().clone();
    for (i, a) in all.iter().enumerate() {
        assert!(!all[..i].contains(a), "promoted twice: {a:?}");
    }
    let key = |s: &danas_search::SearchSummary| {
        let mut v: Vec<(u64, u32, String)> = s
            .trials
            .iter()
            .flat_map(|t| t.rungs.iter().map(move |r| (t.id, r.rung, format!("{:?}", r.metrics))))
            .collect();
        v.sort();
        v
    };
    assert_eq!(key(&s1), key(&s2));
    assert_eq!(
        s1.outputs.pareto.iter().map(|r| r.id).collect::<Vec<_>>(),
        s2.outputs.pareto.iter().map(|r| r.id).collect::<Vec<_>>()
    );
}

#[test]
fn an_evaluator_without_higher_fidelities_keeps_the_proxy() {
    struct ProxyOnly;
    impl Evaluator for ProxyOnly {
        fn prepare(&self, _: DataConfig, _: &Path, _: Option<&str>, _: &dyn Fn(&str)) -> Result<Prepared, EvalError> {
            Ok(Prepared::default())
        }
        fn evaluate(&self, c: &Candidate, _seed: u64) -> Result<Metrics, EvalError> {
            Ok(Metrics::new().with("val_accuracy", c.arch.alpha))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let space = Arc::new(MbSpace::demo());
    let opt = danas_optim::by_name("random", space.clone(), 3, None).unwrap();
    let s = Search::new(space, opt, Arc::new(Free), Arc::new(ProxyOnly))
        .budget(Budget { wall: None, max_trials: Some(8) })
        .out_dir(dir.path())
        .halving(halving())
        .run()
        .unwrap();
    assert_eq!(s.progress.evaluated, 8);
    assert_eq!(s.progress.promotions, 0);
    assert!(s.outputs.pareto.iter().all(|r| r.rung.is_none()));
}

#[test]
fn a_search_out_of_candidates_spends_the_time_left_at_the_top_rung() {
    // 2 resolutions × 2 widths × 2 depths: 8 candidates, exhausted long before the budget
    let text = "name = \"eight\"\nresolutions = [32, 24]\ncolors = [\"rgb\"]\nalphas = [0.25, 0.5]\n\
                max_depths = [1, 0, 0, 0, 0]\nexpansions = [6]\nkernels = [3]\n";
    let space = Arc::new(MbSpace::from_toml_str(text, Path::new("eight.toml")).unwrap());
    assert_eq!(danas_space::SearchSpace::enumerate(space.as_ref(), 1000).unwrap().len(), 8);
    let search = |dir: &Path, eval: Arc<Misleading>, budget: Budget| search_in(space.clone(), dir, eval, budget);
    let run = |budget: Budget| {
        let dir = tempfile::tempdir().unwrap();
        let eval = Arc::new(Misleading { landscape: Landscape::new(2), promoted: Mutex::new(Vec::new()) });
        let s = search(dir.path(), eval.clone(), budget).run().unwrap();
        let retrained =
            eval.promoted.lock().unwrap().iter().filter(|(_, p)| matches!(p, Promotion::Retrain { .. })).count();
        (s, retrained)
    };
    // a wall-clock budget: every evaluated candidate ends up retrained, once
    let wall = Budget { wall: Some(std::time::Duration::from_secs(600)), max_trials: None };
    let (s, retrained) = run(wall);
    assert_eq!(s.progress.evaluated, 8);
    assert_eq!(retrained, 8);
    // interrupted while widening and resumed: the rest is retrained, nothing twice
    let dir = tempfile::tempdir().unwrap();
    let eval = Arc::new(Misleading { landscape: Landscape::new(2), promoted: Mutex::new(Vec::new()) });
    let stopped =
        search(dir.path(), eval.clone(), wall).observer(Box::new(StopAfterPromotions(s.progress.promotions - 2)));
    stopped.run().unwrap();
    let before = eval.promoted.lock().unwrap().clone();
    assert!(before.len() < s.progress.promotions as usize, "{} promotions before the stop", before.len());
    let retrained_before = before.iter().filter(|(_, p)| matches!(p, Promotion::Retrain { .. })).count();
    // the rules alone retrain fewer (below): the stop came while widening
    let (_, by_rules) = run(Budget { wall: None, max_trials: Some(1000) });
    assert!(retrained_before > by_rules, "{retrained_before} retrained before the stop, {by_rules} by the rules");
    let resumed = search(dir.path(), eval.clone(), wall).resume().unwrap();
    let all = eval.promoted.lock().unwrap().clone();
    for (i, a) in all.iter().enumerate() {
        assert!(!all[..i].contains(a), "promoted twice: {a:?}");
    }
    assert_eq!(all.iter().filter(|(_, p)| matches!(p, Promotion::Retrain { .. })).count(), 8);
    assert_eq!(resumed.outputs.pareto[0].id, s.outputs.pareto[0].id);
    assert!(
        s.trials
            .iter()
            .filter(|t| t.status == danas_search::TrialStatus::Complete)
            .all(|t| t.rungs.iter().any(|r| r.rung == 2))
    );
    let best = &s.outputs.pareto[0];
    assert_eq!(best.rung, Some(2));
    // a budget of trials only: the search ends when the space does, having retrained
    // only what the rules promoted (the top 2 as the trials came in)
    let (s, retrained) = run(Budget { wall: None, max_trials: Some(1000) });
    assert_eq!(s.progress.evaluated, 8);
    assert!((2..8).contains(&retrained), "{retrained} retrained");
}
