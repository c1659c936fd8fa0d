// Body of the ask + tell overhead bench, included by crates/danas-optim/benches/ask_tell.rs
// and by the facade bench benches/optim_overhead.rs.

use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use danas_optim::conformance::mixed_outcome;
use danas_optim::{Optimizer, OptimizerKind, by_name};
use danas_space::{MbSpace, SearchSpace};

fn warmed(name: &str, space: &Arc<dyn SearchSpace>, observations: usize) -> Box<dyn Optimizer> {
    let mut opt = by_name(name, space.clone(), 1, None).unwrap();
    for _ in 0..observations {
        let p = opt.ask(1).unwrap().remove(0);
        opt.tell(p.id, mixed_outcome(&p.genome)).unwrap();
    }
    opt
}

fn ask_tell(opt: &mut dyn Optimizer) {
    let p = opt.ask(1).unwrap().remove(0);
    opt.tell(p.id, mixed_outcome(&p.genome)).unwrap();
}

fn bench(c: &mut Criterion) {
    let space: Arc<dyn SearchSpace> = Arc::new(MbSpace::paper());
    let mut group = c.benchmark_group("ask_tell_300");
    for name in OptimizerKind::ALL.map(OptimizerKind::name) {
        let opt = warmed(name, &space, 300);
        let snap = opt.snapshot().unwrap();
        // every iteration starts from the same 300-observation state
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    let mut o = by_name(name, space.clone(), 1, None).unwrap();
                    o.restore(snap.clone()).unwrap();
                    o
                },
                |o| ask_tell(o.as_mut()),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
