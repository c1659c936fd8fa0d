//! Which trials a study hands over: its Pareto set.

use crate::TrialRecord;
use crate::halving::standing;

/// Indices (into `trials`) of the Pareto set, best first: completed trials
/// (completed means the cost gate found them within the limits) with a validation
/// accuracy, that no other such trial beats on accuracy (max), arena, flash and
/// latency (min). Accuracy is a trial's [standing](crate::halving::Standing): the
/// highest rung of successive halving it reached, then its validation accuracy
/// there (without halving, its validation accuracy).
pub fn pareto_front(trials: &[TrialRecord]) -> Vec<usize> {
    let key = |t: &TrialRecord| standing(t).map(|s| s.key());
    let idx: Vec<usize> = (0..trials.len()).filter(|&i| key(&trials[i]).is_some()).collect();
    let points: Vec<Vec<f64>> = idx
        .iter()
        .map(|&i| {
            let t = &trials[i];
            let c = t.costs.as_ref();
            vec![
                -key(t).unwrap_or(0.0),
                c.map_or(f64::INFINITY, |c| c.arena_bytes as f64),
                c.map_or(f64::INFINITY, |c| c.flash_bytes as f64),
                c.and_then(|c| c.latency_ms).unwrap_or(f64::INFINITY),
            ]
        })
        .collect();
    let mut out: Vec<usize> = danas_optim::pareto::non_dominated(&points).into_iter().map(|k| idx[k]).collect();
    out.sort_by(|&a, &b| {
        let k = |i: usize| key(&trials[i]).unwrap_or(0.0);
        k(b).total_cmp(&k(a)).then(trials[a].id.cmp(&trials[b].id))
    });
    out
}
