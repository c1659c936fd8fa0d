//! Ask + tell overhead of each optimiser after 300 observations (no oracle, a
//! trivial evaluator): the optimiser's own cost per trial.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

include!("common/overhead.rs");
