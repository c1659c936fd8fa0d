//! The real cost gate on known candidates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use danas_core::{Arch, Candidate, Color, DataConfig, Precision};
use danas_cost::Limits;
use danas_optim::Feasibility;
use danas_search::{CostGate, CostModelGate};
use danas_space::{CandidateSpace, MbSpace};

fn gate() -> CostModelGate {
    let profile = danas_cost::catalogue().into_iter().find(|p| p.name == "nucleo-h743").unwrap();
    let limits = Limits { ram_bytes: 512 * 1024, flash_bytes: 2 * 1024 * 1024, latency_ms: None };
    CostModelGate::new(profile, limits, Precision::Int8, 2)
}

#[test]
fn big_is_infeasible_small_is_feasible() {
    let g = gate();
    let big = Candidate::new(DataConfig::new(224, Color::Rgb), Arch::full(1.0));
    let a = g.assess(&big).unwrap();
    let names: Vec<&str> = a.feasibility.violations().iter().map(|v| v.metric.as_str()).collect();
    assert!(names.contains(&"arena_bytes") && names.contains(&"flash_bytes"), "{names:?}");
    let small = Candidate::new(DataConfig::new(32, Color::Grayscale), Arch::mobilenet_v2(0.25, [1, 1, 0, 0, 0]));
    let a = g.assess(&small).unwrap();
    assert!(a.feasibility.is_feasible(), "{:?}", a.feasibility);
    let c = &a.costs;
    assert!(c.arena_bytes > 0 && c.flash_bytes > 0, "{c:?}");
    assert!(c.latency_ms.is_some() && c.macs.is_some() && c.params.is_some() && c.peak_op.is_some(), "{c:?}");
    assert_eq!((c.mcu.as_deref(), c.precision), (Some("nucleo-h743"), Some(Precision::Int8)));
    for k in ["tflm_head_bytes", "tail_bytes", "model_bytes"] {
        assert!(c.detail.contains_key(k), "costs lack {k}: {c:?}");
    }
    // what the optimiser is told
    let m = c.metrics();
    assert_eq!(m.value("arena_bytes"), Some(c.arena_bytes as f64));
    assert!(m.value("flash_bytes").is_some() && m.value("latency_ms").is_some());
}

#[test]
fn oracle_agrees_with_assess() {
    let g = Arc::new(gate());
    let space: Arc<MbSpace> = Arc::new(MbSpace::paper());
    let oracle = g.oracle(space.clone());
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(4);
    for _ in 0..200 {
        let genome = danas_space::SearchSpace::sample(space.as_ref(), &mut rng);
        let c = space.candidate(&genome).unwrap();
        let by_assess = g.assess(&c).unwrap().feasibility.is_feasible();
        assert_eq!(matches!(oracle(&genome), Feasibility::Feasible), by_assess, "{c}");
    }
}
