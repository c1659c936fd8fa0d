//! Which trials a study selects, in one place: where a trial stands (the highest
//! rung of successive halving it reached, then its validation accuracy there), the
//! one number that ranks standings, and the Pareto fronts (the study's, over
//! accuracy, arena, flash and latency, and the 2-D fronts the plots draw), all on
//! [`danas_optim::pareto`]. Halving, the final stage and the report select through it.

use crate::{TrialRecord, TrialStatus};

/// Where a trial stands for selection: the highest rung it reached (0: the proxy)
/// and its accuracy there. Trials compare by rung first, then accuracy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    /// Highest rung reached.
    pub rung: u32,
    /// Validation accuracy at that rung.
    pub accuracy: f64,
}

impl Standing {
    /// One number that orders standings as (rung, accuracy) do, for accuracies in [0, 1].
    pub fn key(&self) -> f64 {
        f64::from(self.rung) * 10.0 + self.accuracy
    }
}

/// The metric the rungs rank by.
const ACC: &str = danas_core::metric::VAL_ACCURACY;

/// A trial's accuracy at rung `r` (0: its own metrics), if it has one.
pub fn accuracy_at(t: &TrialRecord, r: u32) -> Option<f64> {
    if r == 0 {
        (t.status == TrialStatus::Complete).then(|| t.metrics.as_ref().and_then(|m| m.value(ACC))).flatten()
    } else {
        t.rungs.iter().find(|x| x.rung == r).and_then(|x| x.metrics.value(ACC))
    }
}

/// Where a completed trial stands; `None` for a trial without a proxy accuracy.
pub fn standing(t: &TrialRecord) -> Option<Standing> {
    standing_at(t, f64::INFINITY)
}

/// Where a completed trial stood at study second `until` (its rungs finished by
/// then); `None` for a trial without a proxy accuracy or not finished by then.
pub fn standing_at(t: &TrialRecord, until: f64) -> Option<Standing> {
    let proxy = accuracy_at(t, 0)?;
    if t.elapsed_at.is_some_and(|e| e > until) {
        return None;
    }
    let top = t
        .rungs
        .iter()
        .filter(|x| x.elapsed_at <= until)
        .filter_map(|x| x.metrics.value(ACC).map(|a| (x.rung, a)))
        .max_by_key(|(r, _)| *r)
        .map_or(Standing { rung: 0, accuracy: proxy }, |(rung, accuracy)| Standing { rung, accuracy });
    Some(top)
}

/// Indices (into `trials`) of the Pareto set, best first: completed trials
/// (completed means the cost gate found them within the limits) with a validation
/// accuracy, that no other such trial beats on accuracy (max), arena, flash and
/// latency (min). Accuracy is a trial's [standing](Standing): the
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

/// The 2-D Pareto front of `(x, accuracy)` points: lowest `x` for each accuracy
/// level, in increasing `x` (and accuracy); a point that appears twice is kept once.
pub fn front_2d(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let points: Vec<Vec<f64>> = pts.iter().map(|&(x, y)| vec![x, -y]).collect();
    let mut out: Vec<(f64, f64)> = danas_optim::pareto::non_dominated(&points).into_iter().map(|i| pts[i]).collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    out.dedup_by(|a, b| a.0.total_cmp(&b.0).is_eq() && a.1.total_cmp(&b.1).is_eq());
    out
}

#[cfg(test)]
mod tests {
    use super::front_2d;

    #[test]
    fn the_2d_front_keeps_the_cheapest_point_of_each_accuracy_level() {
        let pts = [(3.0, 0.5), (1.0, 0.2), (2.0, 0.6), (2.0, 0.4), (4.0, 0.55), (5.0, 0.9), (1.0, 0.1)];
        assert_eq!(front_2d(&pts), vec![(1.0, 0.2), (2.0, 0.6), (5.0, 0.9)]);
        assert_eq!(front_2d(&[(1.0, 0.5), (1.0, 0.5), (2.0, 0.5)]), vec![(1.0, 0.5)]);
        assert!(front_2d(&[]).is_empty());
    }
}
