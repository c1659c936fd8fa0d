//! # danas-search
//!
//! The search loop: [`Search`] asks an optimiser for proposals, decodes them,
//! gates them on the cost model ([`CostGate`], [`CostModelGate`]) before any
//! training, prepares the data configuration's supernet lazily ([`Evaluator`]),
//! evaluates in parallel, tells the optimiser and commits each trial to the study
//! [`Journal`] (one SQLite file per study, one transaction per trial, an exclusive
//! lock so two processes never write one study). [`Budget`]s stop it; [`Observer`]s
//! watch it; [`report`] writes the tables, plots and `report.md`; [`config`] holds
//! the validated settings of `danas search`. A study survives Ctrl-C, crashes and
//! `kill -9`: [`Search::resume`] replays the journal.

mod api;
mod budget;
pub mod config;
pub mod deploy;
mod drive;
mod error;
#[cfg(feature = "train")]
mod evaluator;
pub mod fidelity;
mod final_stage;
mod gate;
pub mod halving;
mod html;
mod journal;
pub mod pareto;
mod pool;
pub mod report;
pub mod scale;
mod search;
pub mod stats;

pub use api::{
    Assessment, Control, CostGate, EvalError, Evaluator, Finalized, Observer, Prepared, Progress, SearchEvent,
    SearchSummary,
};
pub use budget::Budget;
pub use error::SearchError;
#[cfg(feature = "train")]
pub use evaluator::{SupernetEvaluator, metrics_of};
pub use gate::CostModelGate;
pub use halving::{Halving, Promote, Promotion, Rung, RungRecord};
pub use journal::postgres::{Attempt, Job, Outcome, Queue, Storage};
pub use journal::{Journal, STUDY_FORMAT, SupernetRecord, TrialEnd, TrialRecord, TrialStatus};
pub use search::{STUDY_FILE, Search};
