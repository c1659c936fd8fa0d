//! # danas-core
//!
//! The shared vocabulary of danas. Every other crate talks about a
//! [`Candidate`]: a [`DataConfig`] (what the sensor delivers) plus an [`Arch`]
//! (the MobileNetV2-family network). One function, [`Blueprint::new`], turns a
//! candidate and a number of classes into concrete channel counts per layer, and
//! [`Blueprint::to_graph`] lowers that into the layer-graph IR ([`Graph`]).
//! The cost model reads the graph; the trainer builds its network from the same
//! blueprint. What we estimate is what we train and deploy.
//!
//! ```
//! use danas_core::{Arch, Candidate, Color, DataConfig, Precision};
//!
//! let cand = Candidate::new(DataConfig::new(96, Color::Rgb), Arch::mobilenet_v2(0.35, [3, 4, 3, 3, 1]));
//! let bp = cand.blueprint(2)?;
//! assert_eq!(bp.stem.out_ch, 16);
//! let graph = bp.to_graph(Precision::Int8);
//! assert!(graph.ops.len() > 50);
//! # Ok::<(), danas_core::CoreError>(())
//! ```

mod arch;
mod batch;
mod blueprint;
mod costs;
mod data;
mod error;
mod ir;
mod precision;

pub use arch::{Arch, LastConv, MBV2_STAGES, SEARCHABLE_STAGES, StageDef, StageKnobs, make_divisible};
pub use batch::{Batch, BatchIter, BatchSource, SourceError, Split};
pub use blueprint::{Block, Blueprint, ConvLayer, Head};
pub use costs::{Costs, Feasibility, Limits, MetricError, Metrics, Violation, metric};
pub use data::{Color, DataConfig};
pub use error::CoreError;
pub use ir::{Activation, DType, Graph, Op, OpKind, Padding, Tensor, TensorId, TensorRole, same_padding};
pub use precision::Precision;

use serde::{Deserialize, Serialize};

/// A point of the joint search: how the input data is configured, and the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The data configuration (resolution, colour encoding).
    pub data: DataConfig,
    /// The network architecture.
    pub arch: Arch,
}

impl Candidate {
    /// Pairs a data configuration with an architecture.
    pub fn new(data: DataConfig, arch: Arch) -> Self {
        Self { data, arch }
    }

    /// The concrete per-layer description of this candidate for `classes` outputs.
    ///
    /// # Errors
    /// [`CoreError`] when the data configuration, the architecture or the number
    /// of classes is invalid.
    pub fn blueprint(&self, classes: u32) -> Result<Blueprint, CoreError> {
        Blueprint::new(self, classes)
    }
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.data, self.arch)
    }
}
