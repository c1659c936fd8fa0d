//! The real cost gate: danas-cost's estimate of the deployed model, checked
//! against the board's limits.

use std::sync::Arc;

use danas_core::{Candidate, Feasibility, Limits, Precision, Violation};
use danas_cost::Profile;
use danas_optim::Oracle;
use danas_space::CandidateSpace;

use crate::{Assessment, CostGate, EvalError};

/// Gates candidates on the MCU cost model: arena RAM (TFLM plan + tail + scratch),
/// flash (model + runtime) and optionally latency.
#[derive(Debug, Clone)]
pub struct CostModelGate {
    profile: Profile,
    limits: Limits,
    precision: Precision,
    classes: u32,
}

impl CostModelGate {
    /// A gate for `classes`-way models at `precision` on `profile`, under `limits`.
    pub fn new(profile: Profile, limits: Limits, precision: Precision, classes: u32) -> Self {
        Self { profile, limits, precision, classes }
    }

    /// A cheap feasibility oracle over a space's genomes, for optimisers that avoid
    /// proposing infeasible candidates.
    pub fn oracle(self: &Arc<Self>, space: Arc<dyn CandidateSpace>) -> Oracle {
        let gate = Arc::clone(self);
        let not = |what: &str| Feasibility::Infeasible(vec![Violation { metric: what.into(), value: 1.0, limit: 0.0 }]);
        Arc::new(move |g| {
            let Ok(c) = space.candidate(g) else { return not("genome") };
            let Ok(bp) = c.blueprint(gate.classes) else { return not("blueprint") };
            danas_cost::estimate_blueprint(&bp, &gate.profile, gate.precision).check(&gate.limits)
        })
    }
}

impl CostGate for CostModelGate {
    fn assess(&self, c: &Candidate) -> Result<Assessment, EvalError> {
        let cost = danas_cost::estimate_candidate(c, self.classes, &self.profile, self.precision)?;
        let costs =
            danas_core::Costs { precision: Some(self.precision), mcu: Some(self.profile.name.clone()), ..cost.costs() };
        Ok(Assessment { feasibility: cost.check(&self.limits), costs })
    }

    fn limits(&self) -> Option<Limits> {
        Some(self.limits)
    }

    fn deploy_profile(&self) -> Option<Profile> {
        Some(self.profile.clone())
    }
}
