//! Orchestration overhead of the search loop per trial: everything except training
//! and evaluation. A real cost gate (danas-cost, paper limits), aging evolution with
//! the feasibility oracle over the `paper` space, the SQLite journal (one transaction
//! per trial), with an evaluator that returns at once. The figure includes writing
//! every output once at the end (CSV, JSON, plots, report), spread over the 200
//! trials, so it is an upper bound on the per-trial loop cost.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use danas::core::{Candidate, DataConfig, Precision};
use danas::cost::{Limits, Profile};
use danas::optim::{Metrics, by_name};
use danas::search::{Budget, CostModelGate, EvalError, Evaluator, Prepared, Search};
use danas::space::{CandidateSpace, MbSpace, SearchSpace};

struct Instant;

impl Evaluator for Instant {
    fn prepare(&self, _d: DataConfig, _dir: &Path, _e: Option<&str>, _s: &dyn Fn(&str)) -> Result<Prepared, EvalError> {
        Ok(Prepared::default())
    }
    fn evaluate(&self, c: &Candidate, _seed: u64) -> Result<Metrics, EvalError> {
        Ok(Metrics::new().with("val_accuracy", 0.5 + 0.4 * c.arch.alpha.min(1.0)))
    }
}

const TRIALS: u64 = 200;

fn run(dir: &Path, seed: u64) {
    let space = Arc::new(MbSpace::paper());
    let gate = Arc::new(CostModelGate::new(Profile::default_mcu(), Limits::paper(), Precision::Int8, 2));
    let oracle = gate.oracle(space.clone() as Arc<dyn CandidateSpace>);
    let opt = by_name("aging-evolution", space.clone() as Arc<dyn SearchSpace>, seed, Some(oracle)).unwrap();
    Search::new(space, opt, gate, Arc::new(Instant))
        .budget(Budget { wall: None, max_trials: Some(TRIALS) })
        .parallel(2)
        .seed(seed)
        .out_dir(dir)
        .run()
        .unwrap();
}

fn overhead(c: &mut Criterion) {
    let mut g = c.benchmark_group("search_overhead");
    g.sample_size(10);
    g.throughput(Throughput::Elements(TRIALS));
    let mut seed = 0;
    g.bench_function("loop+outputs_per_trial", |b| {
        b.iter(|| {
            let tmp = tempfile::tempdir().unwrap();
            seed += 1;
            run(tmp.path(), seed);
        })
    });
    g.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
