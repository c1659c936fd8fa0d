//! # danas-space
//!
//! Search spaces. A *genome* is a vector of choice indices, one per [`Gene`]; a
//! [`SearchSpace`] says which genes exist, which genomes are valid, and provides
//! sampling, mutation, crossover with repair, and a numeric encoding for Bayesian
//! optimisation. Optimisers only ever see genomes, so they work with any space.
//!
//! [`MbSpace`] is the MobileNetV2-family space of danas, with three presets
//! ([`MbSpace::paper`], [`MbSpace::extended`], [`MbSpace::demo`]) and user spaces
//! loaded from TOML ([`MbSpace::from_toml_file`]). It also maps genomes to
//! [`danas_core::Candidate`]s ([`CandidateSpace`]).
//!
//! ```
//! use danas_space::{CandidateSpace, MbSpace, SearchSpace};
//! use rand::SeedableRng;
//!
//! let space = MbSpace::paper();
//! assert_eq!(space.cardinality(), 37_520);
//! let mut rng = rand::rngs::StdRng::seed_from_u64(7);
//! let g = space.sample(&mut rng);
//! space.validate(&g)?;
//! let cand = space.candidate(&g)?;
//! assert!(cand.arch.alpha > 0.0);
//! # Ok::<(), danas_space::SpaceError>(())
//! ```

mod error;
mod genome;
mod mbv2;

pub use error::SpaceError;
pub use genome::{Gene, GeneGroup, GeneKind, Genome, GroupWeights, SearchSpace};
pub use mbv2::{CandidateSpace, MbSpace, MbSpaceConfig};
