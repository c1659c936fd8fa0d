//! What several integration tests share: observers that stop a search, the
//! synthetic landscape's validation metrics, and the Pareto set's invariant.
#![allow(dead_code)]

use danas_core::Candidate;
use danas_optim::Metrics;
use danas_optim::synthetic::Landscape;
use danas_search::report::TrialRow;
use danas_search::{Control, Observer, SearchEvent};

/// Stops the search once this many trials are evaluated.
pub struct StopAfter(pub u64);

impl Observer for StopAfter {
    fn on_event(&mut self, e: &SearchEvent<'_>) -> Control {
        match e {
            SearchEvent::Trial { progress, .. } if progress.evaluated >= self.0 => Control::Stop,
            _ => Control::Continue,
        }
    }
}

/// A candidate's validation accuracy, precision and recall on the landscape.
pub fn landscape_metrics(landscape: &Landscape, c: &Candidate) -> Metrics {
    let m = landscape.metrics(c);
    let get = |k: &str| m.get(k).unwrap_or(0.0);
    Metrics::new()
        .with("val_accuracy", get(danas_optim::names::ACCURACY))
        .with("val_precision", get(danas_optim::names::PRECISION))
        .with("val_recall", get(danas_optim::names::RECALL))
}

/// Asserts that the Pareto set is not empty, within `ram` and `flash` bytes, and
/// that none of its members dominates another.
pub fn assert_feasible_front(pareto: &[TrialRow], ram: f64, flash: f64) {
    assert!(!pareto.is_empty());
    for x in pareto {
        assert!(x.arena_bytes.unwrap_or(f64::INFINITY) <= ram && x.flash_bytes.unwrap_or(f64::INFINITY) <= flash);
        for y in pareto {
            let better_or_equal = y.val_accuracy >= x.val_accuracy
                && y.arena_bytes <= x.arena_bytes
                && y.flash_bytes <= x.flash_bytes
                && y.latency_ms <= x.latency_ms;
            let strictly = y.val_accuracy > x.val_accuracy
                || y.arena_bytes < x.arena_bytes
                || y.flash_bytes < x.flash_bytes
                || y.latency_ms < x.latency_ms;
            assert!(!(better_or_equal && strictly), "trial {} dominates {}", y.id, x.id);
        }
    }
}
