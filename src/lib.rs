//! # danas
//!
//! Data-aware neural architecture search for TinyML: search the input data
//! configuration (resolution, colour) and a MobileNetV2-family network jointly,
//! under a real microcontroller's RAM, flash and latency limits.
//!
//! This facade re-exports the workspace crates:
//! - [`core`]: data configurations, architectures, candidates, the blueprint and
//!   the layer-graph IR;
//! - [`space`]: search spaces, genomes and variation operators;
//! - [`cost`]: MCU cost models (MACs, params, flash, the exact TFLM arena, latency),
//!   profiles, `.tflite` import;
//! - [`tflite`]: TFLite models (reader / writer on generated code), int8
//!   quantisation, the int8 reference interpreter (TFLM's arithmetic), C arrays;
//! - [`data`]: dataset sources, transforms, caches and batches;
//! - [`signal`]: the audio front end (TFLM signal library's integer arithmetic) and
//!   its `preprocessor.tflite`;
//! - [`optim`]: optimisers behind one ask/tell trait, objectives, Pareto utilities;
//! - `train` (Cargo feature `train`, on by default): the burn trainer (networks,
//!   supernets, evaluation, checkpoints);
//! - [`search`]: the search loop, its journal, budgets and reports.
//!
//! Each is also a crate of its own: a user who needs only the cost model depends on
//! `danas-cost` and compiles no deep-learning stack; `danas` with
//! `default-features = false` leaves out the trainer the same way.

pub use danas_core as core;
pub use danas_cost as cost;
pub use danas_data as data;
pub use danas_optim as optim;
pub use danas_search as search;
pub use danas_signal as signal;
pub use danas_space as space;
pub use danas_tflite as tflite;
#[cfg(feature = "train")]
pub use danas_train as train;
