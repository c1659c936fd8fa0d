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
    let names: Vec<&str> = a.violations.iter().map(|v| v.metric.as_str()).collect();
    assert!(names.contains(&"arena_bytes") && names.contains(&"flash_bytes"), "{names:?}");
    let small = Candidate::new(DataConfig::new(32, Color::Grayscale), Arch::mobilenet_v2(0.25, [1, 1, 0, 0, 0]));
    let a = g.assess(&small).unwrap();
    assert!(a.violations.is_empty(), "{:?}", a.violations);
    for k in ["arena_bytes", "flash_bytes", "latency_ms", "macs", "tflm_head_bytes", "peak_op"] {
        assert!(a.costs.get(k).is_some(), "costs lack {k}: {}", a.costs);
    }
    assert!(a.costs.get("layers").is_none());
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
        let by_assess = g.assess(&c).unwrap().violations.is_empty();
        assert_eq!(matches!(oracle(&genome), Feasibility::Feasible), by_assess, "{c}");
    }
}
