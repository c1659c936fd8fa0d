//! Which trials a study hands over: its Pareto set ([`crate::selection`] computes it).

pub use crate::selection::pareto_front;
