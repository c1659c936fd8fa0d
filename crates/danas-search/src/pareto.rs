//! Which trials a study hands over: its Pareto set.

use danas_core::metric;

use crate::{TrialRecord, TrialStatus};

/// Indices (into `trials`) of the Pareto set, most accurate first: completed trials
/// (completed means the cost gate found them within the limits) with a validation
/// accuracy, that no other such trial beats on validation accuracy (max), arena,
/// flash and latency (min).
pub fn pareto_front(trials: &[TrialRecord]) -> Vec<usize> {
    let acc = |t: &TrialRecord| t.metrics.as_ref().and_then(|m| m.value(metric::VAL_ACCURACY));
    let idx: Vec<usize> =
        (0..trials.len()).filter(|&i| trials[i].status == TrialStatus::Complete && acc(&trials[i]).is_some()).collect();
    let points: Vec<Vec<f64>> = idx
        .iter()
        .map(|&i| {
            let t = &trials[i];
            let c = t.costs.as_ref();
            vec![
                -acc(t).unwrap_or(0.0),
                c.map_or(f64::INFINITY, |c| c.arena_bytes as f64),
                c.map_or(f64::INFINITY, |c| c.flash_bytes as f64),
                c.and_then(|c| c.latency_ms).unwrap_or(f64::INFINITY),
            ]
        })
        .collect();
    let mut out: Vec<usize> = danas_optim::pareto::non_dominated(&points).into_iter().map(|k| idx[k]).collect();
    out.sort_by(|&a, &b| {
        let acc = |i: usize| acc(&trials[i]).unwrap_or(0.0);
        acc(b).total_cmp(&acc(a)).then(trials[a].id.cmp(&trials[b].id))
    });
    out
}
