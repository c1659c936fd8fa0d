//! # danas-search
//!
//! The search loop: [`Search`] asks an optimiser for proposals, decodes them,
//! gates them on the cost model ([`CostGate`], [`CostModelGate`]) before any
//! training, prepares the data configuration's supernet lazily ([`Evaluator`]),
//! evaluates in parallel, tells the optimiser and commits each trial to the study
//! [`Journal`] (one SQLite file per study, one transaction per trial, an exclusive
//! lock so two processes never write one study). [`Budget`]s stop it; [`Observer`]s
//! watch it; [`selection`] ranks trials and finds the Pareto set; [`report`] writes
//! the tables, plots and `report.md`; [`config`] holds the settings of `danas
//! search`, checked once into a `CheckedConfig` that builds the search. A study
//! lives at a [`StudyLocation`] and survives Ctrl-C, crashes and `kill -9`:
//! [`Search::resume`] replays the journal.
//!
//! Cargo features (all on by default): `train`, the supernet evaluator over
//! danas-train; `postgres`, studies shared in PostgreSQL with workers (`scale`);
//! `plot`, the report's plots. Without them the loop, the journal (SQLite) and the
//! report's tables build with your own evaluator.

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
mod record;
pub mod report;
mod sanity;
#[cfg(feature = "postgres")]
pub mod scale;
mod search;
pub mod selection;
pub mod stats;
pub mod supernet;

pub use api::{
    Assessment, Control, CostGate, EvalError, Evaluator, Finalized, Observer, Prepared, Progress, SearchEvent,
    SearchSummary,
};
pub use budget::Budget;
pub use error::SearchError;
#[cfg(feature = "train")]
pub use evaluator::{SupernetEvaluator, metrics_of};
pub use gate::CostModelGate;
pub use halving::{Halving, Promote, Rung};
#[cfg(feature = "postgres")]
pub use journal::Storage;
pub use journal::{Journal, STUDY_FILE, STUDY_FORMAT, StudyLocation};
pub use record::{Promotion, RungRecord, SupernetRecord, TrialEnd, TrialRecord, TrialStatus};
#[cfg(feature = "postgres")]
pub use scale::{Attempt, Job, JobOutcome, Queue, Work};
pub use search::Search;
