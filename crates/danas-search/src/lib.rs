//! # danas-search
//!
//! The search loop's durable parts: the study [`Journal`] (one SQLite file per
//! study, one transaction per trial, an exclusive lock so two processes never
//! write one study) and [`Budget`]s. The loop itself (ask → decode → cost gate →
//! evaluate → tell → journal) builds on these.

mod budget;
pub mod config;
mod error;
#[cfg(feature = "train")]
mod evaluator;
mod gate;
mod journal;
pub mod report;
mod search;

pub use budget::Budget;
pub use error::SearchError;
#[cfg(feature = "train")]
pub use evaluator::{SupernetEvaluator, metrics_of};
pub use gate::CostModelGate;
pub use journal::{Journal, STUDY_FORMAT, SupernetRecord, TrialEnd, TrialRecord, TrialStatus};
pub use search::{
    Assessment, Control, CostGate, EvalError, Evaluator, Finalized, Observer, Prepared, Progress, STUDY_FILE, Search,
    SearchEvent, SearchSummary,
};
