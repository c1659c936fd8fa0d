use thiserror::Error;

use crate::TrialId;

/// Errors of the optimisers. Each names the trial, field or value at fault.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum OptimError {
    /// `tell` named a trial that was never proposed.
    #[error("unknown trial id {id}: it was never proposed by this optimiser (next id would be {next})")]
    UnknownTrial {
        /// The id given.
        id: TrialId,
        /// The id the next proposal would get.
        next: TrialId,
    },
    /// `tell` named a trial whose outcome is already known.
    #[error("trial {id} was already told")]
    AlreadyTold {
        /// The id given.
        id: TrialId,
    },
    /// The search space has no member, so nothing can be proposed.
    #[error("the search space {space:?} is empty: nothing to propose")]
    EmptySpace {
        /// The space's name.
        space: String,
    },
    /// A setting is invalid.
    #[error("invalid {field} = {value}: {reason}")]
    InvalidConfig {
        /// The setting, e.g. `population`.
        field: String,
        /// The offending value.
        value: String,
        /// The rule it breaks.
        reason: String,
    },
    /// An outcome lacks a metric that the scalarisation or objectives need.
    #[error("trial outcome has no metric {metric:?} (it has: {available})")]
    MissingMetric {
        /// The metric needed.
        metric: String,
        /// The metrics present, comma separated.
        available: String,
    },
    /// A metric value is not a finite number.
    #[error("metric {metric:?} = {value} is not finite")]
    NonFiniteMetric {
        /// The metric.
        metric: String,
        /// Its value.
        value: f64,
    },
    /// A snapshot could not be written or read back.
    #[error("snapshot of {optimizer}: {message}")]
    Snapshot {
        /// The optimiser's name.
        optimizer: String,
        /// What went wrong.
        message: String,
    },
    /// Replaying a journal produced different proposals than the ones recorded.
    #[error("replay diverged at event {event}: {message}")]
    ReplayMismatch {
        /// Index of the journal event.
        event: usize,
        /// What differed.
        message: String,
    },
    /// A Pareto or hypervolume computation got bad input.
    #[error("pareto: {0}")]
    Pareto(String),
    /// An error from the search space.
    #[error(transparent)]
    Space(#[from] danas_space::SpaceError),
}

impl From<danas_core::MetricError> for OptimError {
    fn from(e: danas_core::MetricError) -> Self {
        match e {
            danas_core::MetricError::NonFinite { metric, value } => OptimError::NonFiniteMetric { metric, value },
            danas_core::MetricError::Missing { metric, available } => OptimError::MissingMetric { metric, available },
            other => OptimError::MissingMetric { metric: other.to_string(), available: String::new() },
        }
    }
}

impl OptimError {
    pub(crate) fn config(field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Self {
        OptimError::InvalidConfig { field: field.into(), value: value.to_string(), reason: reason.into() }
    }
}
