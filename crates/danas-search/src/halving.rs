//! Multi-fidelity selection by successive halving. The optimiser's trials are
//! scored by the cheap proxy (rung 0: the supernet). As they come in, the best
//! fraction of them is scored again at a higher fidelity (rung 1, e.g. fine-tuning
//! a copy of the supernet weights), and the best few of those higher still (rung 2,
//! e.g. a short training from scratch). A trial's standing is the highest rung it
//! reached and its accuracy there: the Pareto set, the final stage and the report
//! select on that. Every rung result is journaled, so a resumed study promotes
//! exactly what is still due.

use serde::{Deserialize, Serialize};

use crate::TrialRecord;
pub use crate::record::{Promotion, RungRecord};
pub use crate::selection::{Standing, accuracy_at, standing, standing_at};

/// Which trials of the rung below a rung takes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Promote {
    /// The best `fraction` of them (rounded down): successive halving with η = 1 / fraction.
    Fraction(f64),
    /// The best `k` of them.
    Top(usize),
}

/// One rung above the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    /// What it does.
    pub promotion: Promotion,
    /// Which trials it takes from the rung below.
    pub promote: Promote,
}

/// The rungs above the proxy, lowest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Halving {
    /// Rung 1, 2, …
    pub rungs: Vec<Rung>,
}

impl Halving {
    /// The promotions due now, highest rung first and best first within a rung, at
    /// most `limit`: for each rung, the trials its rule takes from the rung below
    /// (ranked by their accuracy there, ties by id) that it has not scored yet.
    pub fn due(&self, trials: &[TrialRecord], limit: usize) -> Vec<(usize, u32, Promotion)> {
        let mut out = Vec::new();
        for (k, rung) in self.rungs.iter().enumerate().rev() {
            let r = k as u32 + 1;
            let mut below: Vec<(usize, f64)> =
                (0..trials.len()).filter_map(|i| accuracy_at(&trials[i], r - 1).map(|a| (i, a))).collect();
            below.sort_by(|a, b| b.1.total_cmp(&a.1).then(trials[a.0].id.cmp(&trials[b.0].id)));
            let take = match rung.promote {
                Promote::Fraction(f) => ((below.len() as f64) * f.clamp(0.0, 1.0)).floor() as usize,
                Promote::Top(n) => n.min(below.len()),
            };
            for &(i, _) in &below[..take] {
                if out.len() >= limit {
                    return out;
                }
                if !trials[i].rungs.iter().any(|x| x.rung == r) {
                    out.push((i, r, rung.promotion));
                }
            }
        }
        out
    }

    /// For a search that has run out of new candidates with time left: the trials
    /// not yet scored at the top rung, best first by where they stand (the highest
    /// rung reached, then accuracy there; ties by id), at most `limit`, each to be
    /// promoted straight to the top rung. Empty without rungs.
    pub fn widen(&self, trials: &[TrialRecord], limit: usize) -> Vec<(usize, u32, Promotion)> {
        let Some(top) = self.rungs.last() else { return Vec::new() };
        let r = self.rungs.len() as u32;
        let mut open: Vec<(usize, Standing)> = (0..trials.len())
            .filter(|&i| !trials[i].rungs.iter().any(|x| x.rung == r))
            .filter_map(|i| standing(&trials[i]).map(|s| (i, s)))
            .collect();
        open.sort_by(|a, b| b.1.key().total_cmp(&a.1.key()).then(trials[a.0].id.cmp(&trials[b.0].id)));
        open.into_iter().take(limit).map(|(i, _)| (i, r, top.promotion)).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::TrialStatus;
    use danas_core::{Arch, Candidate, Color, DataConfig, Metrics};

    const ACC: &str = danas_core::metric::VAL_ACCURACY;

    fn trial(id: u64, acc: f64) -> TrialRecord {
        TrialRecord {
            id,
            genome: vec![],
            candidate: Candidate::new(DataConfig::new(16, Color::Rgb), Arch::full(0.5)),
            status: TrialStatus::Complete,
            seed: id,
            costs: None,
            metrics: Some(Metrics::new().with(ACC, acc)),
            final_checkpoint: None,
            model_dir: None,
            message: None,
            started_at: 0.0,
            finished_at: None,
            eval_seconds: None,
            elapsed_at: None,
            rungs: vec![],
        }
    }

    fn scored(t: &mut TrialRecord, rung: u32, promotion: Promotion, acc: f64) {
        t.rungs.push(RungRecord {
            trial: t.id,
            rung,
            promotion,
            metrics: Metrics::new().with(ACC, acc),
            eval_seconds: 1.0,
            finished_at: 0.0,
            elapsed_at: 0.0,
        });
    }

    /// Fine-tune the best quarter, retrain the best one of those.
    fn two_rungs() -> (Halving, Promotion, Promotion) {
        let ft = Promotion::Finetune { steps: 10 };
        let rt = Promotion::Retrain { steps: 50 };
        let rungs = vec![
            Rung { promotion: ft, promote: Promote::Fraction(0.25) },
            Rung { promotion: rt, promote: Promote::Top(1) },
        ];
        (Halving { rungs }, ft, rt)
    }

    #[test]
    fn widening_takes_the_best_standing_not_yet_at_the_top_rung() {
        let (h, ft, rt) = two_rungs();
        let mut trials: Vec<TrialRecord> = (0..6).map(|i| trial(i, 0.1 * i as f64)).collect();
        trials[0].status = TrialStatus::Repeat; // no standing of its own
        scored(&mut trials[5], 1, ft, 0.6);
        scored(&mut trials[5], 2, rt, 0.7); // already at the top
        scored(&mut trials[2], 1, ft, 0.3); // rung 1 outranks a better proxy
        assert_eq!(h.widen(&trials, 10), vec![(2, 2, rt), (4, 2, rt), (3, 2, rt), (1, 2, rt)]);
        assert_eq!(h.widen(&trials, 2), vec![(2, 2, rt), (4, 2, rt)]);
        assert!(Halving::default().widen(&trials, 10).is_empty());
    }

    #[test]
    fn promotes_the_best_fraction_then_the_top_k_and_ranks_by_the_highest_rung() {
        let (h, ft, rt) = two_rungs();
        let mut trials: Vec<TrialRecord> = (0..8).map(|i| trial(i, 0.1 * i as f64)).collect();
        // 8 proxies: the best 2 (ids 7, 6) go to rung 1; nothing is at rung 1 yet
        assert_eq!(h.due(&trials, 10), vec![(7, 1, ft), (6, 1, ft)]);
        assert_eq!(h.due(&trials, 1), vec![(7, 1, ft)]);
        scored(&mut trials[7], 1, ft, 0.5);
        scored(&mut trials[6], 1, ft, 0.9);
        // id 6 is now the best at rung 1: retrained first
        assert_eq!(h.due(&trials, 10), vec![(6, 2, rt)]);
        scored(&mut trials[6], 2, rt, 0.8);
        assert!(h.due(&trials, 10).is_empty());
        // standing: rung first, then accuracy there
        assert_eq!(standing(&trials[6]), Some(Standing { rung: 2, accuracy: 0.8 }));
        assert_eq!(standing(&trials[7]), Some(Standing { rung: 1, accuracy: 0.5 }));
        assert_eq!(standing(&trials[0]), Some(Standing { rung: 0, accuracy: 0.0 }));
        assert!(standing(&trials[7]).unwrap().key() < standing(&trials[6]).unwrap().key());
        // a failed trial has no standing and is never promoted
        trials[5].status = TrialStatus::Failed;
        assert_eq!(standing(&trials[5]), None);
    }
}
