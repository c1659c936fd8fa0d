//! End to end with the real parts on tiny synthetic data: danas-data's synthetic set,
//! danas-cost's gate, danas-train's supernets, and an optimiser that is *not* given
//! the feasibility oracle, so that the gate has infeasible candidates to stop.
#![cfg(feature = "train")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use danas_core::{Candidate, DataConfig, Precision};
use danas_cost::{Limits, Profile};
use danas_optim::{Metrics, RandomSearch};
use danas_search::{
    Budget, CostModelGate, EvalError, Evaluator, Finalized, Prepared, STUDY_FILE, Search, SupernetEvaluator,
    TrialStatus,
};
use danas_space::{CandidateSpace, MbSpace, SearchSpace};
use danas_train::{EvalConfig, SupernetTraining, TrainConfig};

use common::assert_feasible_front;

/// The real supernet evaluator, recording every candidate it is asked to train or score.
struct Recording {
    inner: SupernetEvaluator,
    evaluated: Mutex<Vec<Candidate>>,
}

impl Evaluator for Recording {
    fn prepare(
        &self,
        d: DataConfig,
        dir: &Path,
        existing: Option<&str>,
        s: &dyn Fn(&str),
    ) -> Result<Prepared, EvalError> {
        self.inner.prepare(d, dir, existing, s)
    }
    fn evaluate(&self, c: &Candidate, seed: u64) -> Result<Metrics, EvalError> {
        self.evaluated.lock().unwrap().push(c.clone());
        self.inner.evaluate(c, seed)
    }
    fn finalize(&self, c: &Candidate, seed: u64, dir: &Path, name: &str) -> Result<Option<Finalized>, EvalError> {
        self.inner.finalize(c, seed, dir, name)
    }
}

const RAM: u64 = 20 * 1024;
const FLASH: u64 = 150 * 1024;

fn search(dir: &Path, cache: &Path, seed: u64, final_k: usize) -> (danas_search::SearchSummary, Vec<Candidate>) {
    let mut opts = danas_data::DataOptions::default();
    opts.cache_dir = cache.to_path_buf();
    opts.train_limit = Some(96);
    opts.eval_limit = Some(48);
    let data = Arc::new(danas_data::Dataset::from_spec("synthetic:n=200,size=16", opts).unwrap());
    let classes = danas_core::BatchSource::classes(data.as_ref());
    // 16 px only, so the test trains two supernets (rgb, grayscale) of a few steps.
    let mut cfg = MbSpace::demo().config().clone();
    cfg.resolutions = vec![16];
    let space = Arc::new(MbSpace::new(cfg).unwrap());
    let limits = Limits { ram_bytes: RAM, flash_bytes: FLASH, latency_ms: None };
    let gate = Arc::new(CostModelGate::new(Profile::default_mcu(), limits, Precision::Int8, classes));
    let train = TrainConfig { steps: 4, batch_size: 16, seed, ..TrainConfig::default() };
    let eval = EvalConfig { calib_batches: 1, calib_batch_size: 16, eval_batch_size: 48, ..EvalConfig::default() };
    let final_train = TrainConfig { steps: 6, ..train.clone() };
    let inner =
        SupernetEvaluator::new(space.clone() as Arc<dyn CandidateSpace>, data, train, SupernetTraining::Full, eval)
            .final_training(final_train, false);
    let rec = Arc::new(Recording { inner, evaluated: Mutex::new(Vec::new()) });
    // No oracle: random proposals, feasible or not.
    let opt = RandomSearch::new(space.clone() as Arc<dyn SearchSpace>, seed);
    let summary = Search::new(space, Box::new(opt), gate, rec.clone())
        .budget(Budget { wall: None, max_trials: Some(6) })
        .parallel(2)
        .seed(seed)
        .out_dir(dir)
        .final_top_k(final_k)
        .run()
        .unwrap();
    let evaluated = rec.evaluated.lock().unwrap().clone();
    (summary, evaluated)
}

#[test]
fn real_search_never_trains_infeasible_candidates_and_is_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (a, evaluated) = search(&tmp.path().join("a"), &cache, 11, 0);

    // The gate stopped some candidates, and none of them reached the trainer.
    let infeasible: Vec<_> = a.trials.iter().filter(|t| t.status == TrialStatus::Infeasible).collect();
    assert!(!infeasible.is_empty(), "the limits are tight enough that random proposals break them");
    for t in &infeasible {
        assert!(!evaluated.contains(&t.candidate), "infeasible {} was evaluated", t.candidate);
        assert!(t.metrics.is_none() && t.eval_seconds == Some(0.0));
    }
    // Every evaluated candidate was feasible by the cost model's estimate.
    for t in a.trials.iter().filter(|t| t.status == TrialStatus::Complete) {
        let c = t.costs.as_ref().unwrap();
        assert!(c.arena_bytes <= RAM && c.flash_bytes <= FLASH);
        let acc = t.metrics.as_ref().unwrap().value("val_accuracy").unwrap();
        assert!((0.0..=1.0).contains(&acc));
    }
    assert_eq!(evaluated.len() as u64, a.progress.evaluated);
    assert_eq!(a.progress.evaluated, 6);

    // The Pareto set is feasible and non-dominated.
    assert_feasible_front(&a.outputs.pareto, RAM as f64, FLASH as f64);
    // Outputs are written.
    let dir = tmp.path().join("a");
    for f in [
        STUDY_FILE,
        "trials.csv",
        "pareto.csv",
        "pareto.json",
        "report.md",
        "accuracy_vs_ram.png",
        "best_over_time.svg",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    assert!(dir.join("supernets").read_dir().unwrap().count() >= 1, "supernets are persisted");

    // The same seed gives the same trials, metrics included.
    let (b, _) = search(&tmp.path().join("b"), &cache, 11, 0);
    let key = |s: &danas_search::SearchSummary| -> Vec<_> {
        s.trials.iter().map(|t| (t.id, t.genome.clone(), t.status, t.metrics.clone())).collect()
    };
    assert_eq!(key(&a), key(&b));
}

#[test]
fn final_stage_retrains_the_best_and_reports_test_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (s, _) = search(&dir, &tmp.path().join("cache"), 5, 2);
    let finalised: Vec<_> =
        s.trials.iter().filter(|t| t.metrics.as_ref().is_some_and(|m| m.value("test_accuracy").is_some())).collect();
    let want = s.outputs.pareto.len().min(2);
    assert!(want >= 1);
    assert_eq!(finalised.len(), want, "the top 2 of the Pareto set");
    for t in finalised {
        let m = t.metrics.as_ref().unwrap();
        assert!((0.0..=1.0).contains(&m.value("test_accuracy").unwrap()));
        let ck = t.final_checkpoint.as_deref().unwrap();
        assert!(dir.join(ck).is_file(), "{ck}");
        // A deployable int8 model, its C array and manifest.
        let md = dir.join(t.model_dir.as_deref().unwrap());
        assert_eq!(md, dir.join(format!("models/trial-{}", t.id)));
        let bytes = std::fs::read(md.join("model.tflite")).unwrap();
        let model = danas_tflite::Model::from_bytes(&bytes, "model.tflite").unwrap();
        assert!(model.tensors.iter().filter(|t| t.data.is_none()).all(|t| t.ty == danas_tflite::ElemType::I8));
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(md.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["candidate"], t.candidate.to_string());
        let predicted = &manifest["predicted"];
        assert_eq!(predicted["model_bytes"].as_u64().unwrap(), bytes.len() as u64);
        let arena = predicted["arena_bytes"].as_u64().unwrap();
        assert_eq!(
            arena,
            predicted["arena_head_bytes"].as_u64().unwrap() + predicted["arena_tail_bytes"].as_u64().unwrap()
        );
        // The journaled head of the candidate is the head of the exported file.
        assert_eq!(
            Some(predicted["arena_head_bytes"].as_u64().unwrap()),
            t.costs.as_ref().unwrap().detail.get("tflm_head_bytes").map(|&b| b as u64)
        );
        let int8 = manifest["metrics"]["int8_test_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&int8) && m.value("int8_test_accuracy") == Some(int8));
        let header = std::fs::read_to_string(md.join("model_data.h")).unwrap();
        assert!(header.contains(&format!("kTensorArenaPredicted = {arena};")), "{header}");
        let cc = std::fs::read_to_string(md.join("model_data.cc")).unwrap();
        assert_eq!(cc.matches("0x").count(), bytes.len());
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("## Final stage: retrained and exported models"), "{md}");
    assert!(md.contains("/model.tflite]("), "the report links the exported models: {md}");
    let pareto: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pareto.json")).unwrap()).unwrap();
    assert!(pareto.as_array().unwrap().iter().any(|p| p["test_accuracy"].is_number()), "{pareto}");
}
