//! # danas-train
//!
//! The trainer of danas, the only crate that uses burn (CPU backend `flex`; the
//! `cuda` and `wgpu` features add GPU backends, chosen with [`select_device`] or
//! `DANAS_DEVICE`).
//!
//! - [`Network`]: a MobileNetV2-family network built at run time from a
//!   [`danas_core::Blueprint`] — any resolution, channels, width, depths and
//!   classes; TensorFlow SAME padding (asymmetric for stride 2 on even sizes),
//!   BatchNorm, ReLU6 and residual adds. [`Network::param_count_folded`] equals
//!   [`danas_core::Blueprint::param_count`].
//! - [`Supernet`]: one per data configuration at the space's largest width and
//!   depth; [`Supernet::extract`] cuts out a standalone network (first channels
//!   of every layer, kept blocks, the candidate's residuals), and
//!   [`Supernet::evaluate`] scores a candidate on the validation split without
//!   ever changing the supernet.
//! - Training: [`train_network`], [`Supernet::train`] with [`SupernetTraining::Full`] or
//!   [`SupernetTraining::Sandwich`]; Adam/AdamW/SGD with warm-up and cosine decay
//!   ([`TrainConfig`]). A NaN or infinite loss ends training with
//!   [`TrainError::Diverged`].
//! - Checkpoints in `f32` or `f16` ([`StoragePrecision`]).
//! - Deployable int8 TFLite models of trained networks ([`export_int8`]), scored by
//!   the int8 reference evaluator whose outputs are TFLM's ([`evaluate_int8`]).
//!
//! Everything is seeded: the same seed gives the same weights and metrics.
//!
//! ```
//! use danas_core::{Arch, Candidate, Color, DataConfig};
//! use danas_train::Network;
//!
//! let cand = Candidate::new(DataConfig::new(32, Color::Grayscale), Arch::mobilenet_v2(0.35, [1, 1, 0, 0, 0]));
//! let net = Network::new(&cand, 10, 7)?;
//! assert_eq!(net.param_count_folded(), cand.blueprint(10)?.param_count());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod checkpoint;
mod checksum;
mod composite;
mod cpu;
mod error;
mod eval;
mod export;
mod net;
mod params;
mod record;
mod supernet;
mod train;
mod weights;

pub use checkpoint::{CheckpointKind, StoragePrecision};
pub use checksum::verify_checkpoint;
pub use error::TrainError;
pub use eval::{
    CandidateEval, ClassMetrics, EvalConfig, FinalReport, Metrics, evaluate, evaluate_from_scratch, final_train,
    recalibrate_bn,
};
pub use export::{ExportConfig, Exported, evaluate_int8, export_int8, float_net, int8_input, nhwc, run_int8_batch};
pub use net::{DEVICES, FoldedWeights, Network, cpu_device, device, parse_device, select_device};
pub use params::BN_EPSILON;
pub use record::DataRecord;
pub use supernet::Supernet;
pub use train::{
    GradientOptimizer, Plateau, StepInfo, SupernetTraining, TrainConfig, TrainReport, Trainer, train_network,
};
pub use weights::{ConvWeights, NetWeights};

/// Re-export of burn's tensor types used in the public API.
pub use burn::tensor::{Device, Tensor, TensorData};
