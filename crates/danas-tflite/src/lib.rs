//! # danas-tflite
//!
//! TFLite models for danas, with no deep-learning stack:
//! - [`Model`]: a single-subgraph TFLite model in plain Rust types, read from and
//!   written to the flatbuffer format through code that `flatc` 25.12.19 generated
//!   from TFLite's `schema.fbs` (`tools/regen.sh`);
//! - [`float_model`]: the float model of a [`danas_core::Blueprint`] with
//!   BatchNorm-folded weights, op for op and tensor for tensor the graph the cost model
//!   plans ([`danas_core::Blueprint::to_graph`]);
//! - [`quantize`]: post-training int8 quantisation (per-channel symmetric weights,
//!   int32 biases, per-tensor asymmetric activations calibrated on sample inputs);
//! - [`interp`]: reference interpreters, float and int8; the int8 one does TFLM's
//!   integer arithmetic, so its outputs equal TFLM's;
//! - [`c_array`]: `model_data.cc` / `model_data.h` for firmware, [`resolver_header`]:
//!   `model_ops.h`, a TFLM op resolver with exactly the model's operators.
//!
//! ```
//! use danas_core::{Arch, Candidate, Color, DataConfig};
//! use danas_tflite::{FloatNet, Model, float_model};
//!
//! let cand = Candidate::new(DataConfig::new(16, Color::Grayscale), Arch::mobilenet_v2(0.25, [1, 0, 0, 0, 0]));
//! let bp = cand.blueprint(2).unwrap();
//! let net = FloatNet::zeros(&bp);
//! let model = float_model(&bp, &net, true).unwrap();
//! let bytes = model.to_bytes().unwrap();
//! assert_eq!(Model::from_bytes(&bytes, "memory").unwrap(), model);
//! ```

#[allow(unsafe_code, unused_imports, dead_code, missing_docs, clippy::all, clippy::pedantic, rust_2018_idioms)]
// Generated accessors unwrap `get` of fields with defaults, which cannot be `None`.
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[allow(mismatched_lifetime_syntaxes, non_camel_case_types, non_snake_case, non_upper_case_globals)]
#[rustfmt::skip]
mod schema_generated;
pub(crate) use schema_generated as schema;

mod build;
mod carray;
pub mod interp;
mod model;
mod quantize;

pub use build::{FloatNet, float_model};
pub use carray::{
    ARENA_ALIGN_SLACK_BYTES, ARENA_MARGIN_MIN_BYTES, ARENA_MARGIN_PERCENT, arena_size_with_margin, c_array,
    info_header, op_names, resolver_header,
};
pub use model::{ElemType, Fused, Model, OpDef, Operator, Quant, TensorDef};
pub use quantize::{QuantOptions, Ranges, calibrate, quantize};

/// Errors of reading, building, quantising and interpreting TFLite models.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TfliteError {
    /// The bytes are not a valid TFLite flatbuffer.
    #[error("{origin}: not a valid TFLite model: {reason}")]
    Invalid {
        /// Where the bytes came from (a path, or `memory`).
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The model uses something danas cannot write or interpret.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Weights or inputs do not fit the network.
    #[error("{what}: {reason}")]
    Mismatch {
        /// Which weights or input.
        what: String,
        /// What does not fit.
        reason: String,
    },
}

impl TfliteError {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        TfliteError::Invalid { origin: "model".into(), reason: reason.into() }
    }
    pub(crate) fn mismatch(what: impl Into<String>, reason: impl Into<String>) -> Self {
        TfliteError::Mismatch { what: what.into(), reason: reason.into() }
    }
}
