//! The real cost gate: danas-cost's estimate of the deployed int8 model, checked
//! against the board's limits.

use std::sync::Arc;

use danas_core::{Candidate, Precision};
use danas_cost::{Limits, Profile, Resource};
use danas_optim::{Feasibility, Metrics, Oracle, Violation};
use danas_space::CandidateSpace;
use serde_json::Value;

use crate::{Assessment, CostGate};

/// Gates candidates on the MCU cost model: arena RAM (TFLM plan + tail + scratch),
/// flash (model + runtime) and optionally latency.
#[derive(Debug, Clone)]
pub struct CostModelGate {
    profile: Profile,
    limits: Limits,
    precision: Precision,
    classes: u32,
}

/// Names of the metrics the gate reports, as the optimisers and reports read them.
fn metric_name(r: Resource) -> &'static str {
    match r {
        Resource::Ram => "arena_bytes",
        Resource::Flash => "flash_bytes",
        _ => "latency_ms",
    }
}

impl CostModelGate {
    /// A gate for `classes`-way models at `precision` on `profile`, under `limits`.
    pub fn new(profile: Profile, limits: Limits, precision: Precision, classes: u32) -> Self {
        Self { profile, limits, precision, classes }
    }

    /// The limits it checks.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A cheap feasibility oracle over a space's genomes, for optimisers that avoid
    /// proposing infeasible candidates.
    pub fn oracle(self: &Arc<Self>, space: Arc<dyn CandidateSpace>) -> Oracle {
        let gate = Arc::clone(self);
        Arc::new(move |g| {
            let Ok(c) = space.candidate(g) else {
                return Feasibility::Infeasible(vec![Violation { metric: "genome".into(), value: 1.0, limit: 0.0 }]);
            };
            let Ok(bp) = c.blueprint(gate.classes) else {
                return Feasibility::Infeasible(vec![Violation { metric: "blueprint".into(), value: 1.0, limit: 0.0 }]);
            };
            let cost = danas_cost::estimate_blueprint(&bp, &gate.profile, gate.precision);
            let v = violations(&cost.check(&gate.limits));
            if v.is_empty() { Feasibility::Feasible } else { Feasibility::Infeasible(v) }
        })
    }
}

fn violations(f: &danas_cost::Feasibility) -> Vec<Violation> {
    f.violations
        .iter()
        .map(|v| Violation { metric: metric_name(v.resource).into(), value: v.actual, limit: v.limit })
        .collect()
}

impl CostGate for CostModelGate {
    fn assess(&self, c: &Candidate) -> Result<Assessment, String> {
        let cost = danas_cost::estimate_candidate(c, self.classes, &self.profile, self.precision)
            .map_err(|e| e.to_string())?;
        let peak_op = cost.peak_layer.and_then(|i| cost.layers.get(i)).map(|l| l.name.clone());
        let mut costs = serde_json::to_value(&cost).unwrap_or(Value::Null);
        if let Some(obj) = costs.as_object_mut() {
            obj.remove("layers");
            obj.insert("peak_op".into(), peak_op.map_or(Value::Null, Value::String));
            obj.insert("precision".into(), Value::String(self.precision.to_string()));
            obj.insert("mcu".into(), Value::String(self.profile.name.clone()));
        }
        let metrics = Metrics::new()
            .with("arena_bytes", cost.arena_bytes as f64)
            .with("flash_bytes", cost.flash_bytes as f64)
            .with("latency_ms", cost.latency_ms)
            .with("macs", cost.macs as f64)
            .with("params", cost.params as f64);
        Ok(Assessment { costs, metrics, violations: violations(&cost.check(&self.limits)) })
    }

    fn deploy_profile(&self) -> Option<Profile> {
        Some(self.profile.clone())
    }
}
