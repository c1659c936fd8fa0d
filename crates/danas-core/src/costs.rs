//! The vocabulary of a trial's numbers: named [`Metrics`], a candidate's
//! resource [`Costs`], the board's [`Limits`], and the [`Feasibility`] verdict
//! with its [`Violation`]s. The cost model fills these in, the search loop gates
//! and journals them, optimisers read them by [`metric`] name and the reports
//! render them: one set of names from estimate to report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Precision;

/// The metric names every danas crate uses (any other name works too).
pub mod metric {
    /// Validation accuracy in [0, 1] (maximise).
    pub const VAL_ACCURACY: &str = "val_accuracy";
    /// Validation precision in [0, 1] (maximise).
    pub const VAL_PRECISION: &str = "val_precision";
    /// Validation recall in [0, 1] (maximise).
    pub const VAL_RECALL: &str = "val_recall";
    /// Test accuracy of the finally trained network (final stage only).
    pub const TEST_ACCURACY: &str = "test_accuracy";
    /// Test accuracy of the exported int8 model (final stage only).
    pub const INT8_TEST_ACCURACY: &str = "int8_test_accuracy";
    /// The tensor arena the firmware must provide, in bytes (minimise).
    pub const ARENA_BYTES: &str = "arena_bytes";
    /// Device flash (model plus runtime), in bytes (minimise).
    pub const FLASH_BYTES: &str = "flash_bytes";
    /// Latency of one inference, in milliseconds (minimise).
    pub const LATENCY_MS: &str = "latency_ms";
    /// Multiply-accumulates of one inference.
    pub const MACS: &str = "macs";
    /// Weights and biases.
    pub const PARAMS: &str = "params";
}

/// A metric asked for by name is absent or not a finite number.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum MetricError {
    /// No metric of that name.
    #[error("metric {metric:?} is missing (available: {available})")]
    Missing {
        /// The metric asked for.
        metric: String,
        /// The metrics present, comma separated.
        available: String,
    },
    /// The metric is NaN or infinite.
    #[error("metric {metric:?} is not finite ({value})")]
    NonFinite {
        /// The metric.
        metric: String,
        /// Its value.
        value: f64,
    },
}

/// Named metric values of one trial (accuracy, arena bytes, …), by [`metric`] name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    /// No metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a metric, builder style.
    pub fn with(mut self, name: impl Into<String>, value: f64) -> Self {
        self.0.insert(name.into(), value);
        self
    }

    /// Adds (or replaces) a metric.
    pub fn insert(&mut self, name: impl Into<String>, value: f64) {
        self.0.insert(name.into(), value);
    }

    /// Adds every metric of `other`, replacing those of the same name.
    pub fn extend(&mut self, other: &Metrics) {
        for (k, v) in &other.0 {
            self.0.insert(k.clone(), *v);
        }
    }

    /// A metric's value.
    ///
    /// # Errors
    /// [`MetricError::Missing`] when absent, [`MetricError::NonFinite`] when NaN or infinite.
    pub fn get(&self, name: &str) -> Result<f64, MetricError> {
        match self.0.get(name) {
            Some(v) if v.is_finite() => Ok(*v),
            Some(v) => Err(MetricError::NonFinite { metric: name.to_string(), value: *v }),
            None => Err(MetricError::Missing {
                metric: name.to_string(),
                available: self.0.keys().cloned().collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// A metric's value when present and finite.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.get(name).ok()
    }

    /// The first metric that is not finite, if any.
    pub fn first_non_finite(&self) -> Option<(&str, f64)> {
        self.0.iter().find(|(_, v)| !v.is_finite()).map(|(k, v)| (k.as_str(), *v))
    }
}

/// What a cost gate estimates for one candidate on one board, before any training.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Costs {
    /// The tensor arena the firmware must provide (head + tail + scratch), bytes.
    pub arena_bytes: u64,
    /// Device flash: model plus runtime, bytes.
    pub flash_bytes: u64,
    /// Latency of one inference in ms, when estimated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Multiply-accumulates, when counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub macs: Option<u64>,
    /// Weights and biases, when counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<u64>,
    /// The op where the arena peaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_op: Option<String>,
    /// The deployed precision the estimate is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// The board (profile name) the estimate is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcu: Option<String>,
    /// Further named estimates in their own units (e.g. danas-cost's
    /// `tflm_head_bytes`, `tail_bytes`, `model_bytes`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detail: BTreeMap<String, f64>,
}

impl Costs {
    /// Costs of `arena_bytes` and `flash_bytes`, nothing else estimated.
    pub fn new(arena_bytes: u64, flash_bytes: u64) -> Self {
        Self { arena_bytes, flash_bytes, ..Self::default() }
    }

    /// The estimates as named metrics ([`metric::ARENA_BYTES`], [`metric::FLASH_BYTES`],
    /// and latency, MACs and parameters when present), for optimisers' objectives.
    pub fn metrics(&self) -> Metrics {
        let mut m = Metrics::new()
            .with(metric::ARENA_BYTES, self.arena_bytes as f64)
            .with(metric::FLASH_BYTES, self.flash_bytes as f64);
        if let Some(l) = self.latency_ms {
            m.insert(metric::LATENCY_MS, l);
        }
        if let Some(x) = self.macs {
            m.insert(metric::MACS, x as f64);
        }
        if let Some(x) = self.params {
            m.insert(metric::PARAMS, x as f64);
        }
        m
    }
}

/// A board's resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// RAM available for the tensor arena, bytes (checks [`Costs::arena_bytes`]).
    pub ram_bytes: u64,
    /// Flash, bytes (checks [`Costs::flash_bytes`]).
    pub flash_bytes: u64,
    /// Optional latency limit in ms.
    pub latency_ms: Option<f64>,
}

impl Limits {
    /// The paper's RAM limit, KiB.
    pub const PAPER_RAM_KIB: u64 = 512;
    /// The paper's flash limit, KiB.
    pub const PAPER_FLASH_KIB: u64 = 2048;

    /// The paper's limits: 512 KiB RAM, 2 MiB flash, no latency limit.
    pub fn paper() -> Self {
        Self { ram_bytes: Self::PAPER_RAM_KIB * 1024, flash_bytes: Self::PAPER_FLASH_KIB * 1024, latency_ms: None }
    }

    /// Checks arena, flash and (when limited) latency values, listing every limit
    /// exceeded. A latency limit with no latency estimate is a violation.
    pub fn check_values(&self, arena_bytes: f64, flash_bytes: f64, latency_ms: Option<f64>) -> Feasibility {
        let mut v = Vec::new();
        let mut push = |metric: &str, value: f64, limit: f64| {
            if value > limit {
                v.push(Violation { metric: metric.to_string(), value, limit });
            }
        };
        push(metric::ARENA_BYTES, arena_bytes, self.ram_bytes as f64);
        push(metric::FLASH_BYTES, flash_bytes, self.flash_bytes as f64);
        if let Some(l) = self.latency_ms {
            push(metric::LATENCY_MS, latency_ms.unwrap_or(f64::INFINITY), l);
        }
        Feasibility::from_violations(v)
    }

    /// Checks a candidate's costs.
    pub fn check(&self, c: &Costs) -> Feasibility {
        self.check_values(c.arena_bytes as f64, c.flash_bytes as f64, c.latency_ms)
    }

    /// Checks named metrics ([`metric::ARENA_BYTES`], [`metric::FLASH_BYTES`] and,
    /// when limited, [`metric::LATENCY_MS`]).
    ///
    /// # Errors
    /// [`MetricError`] when a limited metric is missing or not finite.
    pub fn check_metrics(&self, m: &Metrics) -> Result<Feasibility, MetricError> {
        let latency = match self.latency_ms {
            Some(_) => Some(m.get(metric::LATENCY_MS)?),
            None => None,
        };
        Ok(self.check_values(m.get(metric::ARENA_BYTES)?, m.get(metric::FLASH_BYTES)?, latency))
    }
}

/// One exceeded limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// The metric, e.g. [`metric::ARENA_BYTES`].
    pub metric: String,
    /// Its value.
    pub value: f64,
    /// The limit it exceeds.
    pub limit: f64,
}

impl Violation {
    /// Relative excess `max(value − limit, 0) / limit` (1 when the limit is not positive).
    pub fn relative(&self) -> f64 {
        if self.limit > 0.0 && self.value.is_finite() {
            ((self.value - self.limit).max(0.0) / self.limit).max(0.0)
        } else {
            1.0
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:.0} > {:.0}", self.metric, self.value, self.limit)
    }
}

/// Whether a candidate fits its limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Feasibility {
    /// Within every limit.
    Feasible,
    /// Breaks these limits (never empty).
    Infeasible(Vec<Violation>),
}

impl Feasibility {
    /// Feasible when `v` is empty, else infeasible with `v`.
    pub fn from_violations(v: Vec<Violation>) -> Self {
        if v.is_empty() { Feasibility::Feasible } else { Feasibility::Infeasible(v) }
    }

    /// Whether within every limit.
    pub fn is_feasible(&self) -> bool {
        matches!(self, Feasibility::Feasible)
    }

    /// The limits broken (empty when feasible).
    pub fn violations(&self) -> &[Violation] {
        match self {
            Feasibility::Feasible => &[],
            Feasibility::Infeasible(v) => v,
        }
    }

    /// The violations as one line, `arena_bytes 98304 > 65536; flash_bytes …`.
    pub fn summary(&self) -> String {
        self.violations().iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_check_costs_and_metrics_alike() {
        let l = Limits { ram_bytes: 1000, flash_bytes: 5000, latency_ms: Some(10.0) };
        let c = Costs { latency_ms: Some(12.4), ..Costs::new(1200, 4000) };
        let f = l.check(&c);
        assert_eq!(f.violations().len(), 2);
        assert_eq!(f.summary(), "arena_bytes 1200 > 1000; latency_ms 12 > 10");
        assert_eq!(l.check_metrics(&c.metrics()), Ok(f));
        assert!(l.check(&Costs { latency_ms: Some(1.0), ..Costs::new(1000, 5000) }).is_feasible());
        // a latency limit without a latency estimate is not met
        assert!(!l.check(&Costs::new(1, 1)).is_feasible());
        assert!(matches!(l.check_metrics(&Metrics::new()), Err(MetricError::Missing { .. })));
    }

    #[test]
    fn costs_round_trip_and_name_their_metrics() {
        let mut c = Costs { macs: Some(7), peak_op: Some("conv".into()), ..Costs::new(10, 20) };
        c.detail.insert("tail_bytes".into(), 3.0);
        let text = serde_json::to_string(&c).unwrap_or_default();
        assert_eq!(serde_json::from_str::<Costs>(&text).ok(), Some(c.clone()));
        let m = c.metrics();
        assert_eq!(m.value(metric::ARENA_BYTES), Some(10.0));
        assert_eq!(m.value(metric::MACS), Some(7.0));
        assert_eq!(m.value(metric::LATENCY_MS), None);
        assert_eq!(Metrics::new().with("x", f64::NAN).first_non_finite().map(|p| p.0), Some("x"));
    }
}
