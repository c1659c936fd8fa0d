//! What a network checkpoint records about its data: the data source spec and options,
//! the class names, the training seed and the int8 export settings. `danas export`
//! reads it to rebuild the calibration data and export the same model the search did.

use danas_core::DataConfig;
use serde::{Deserialize, Serialize};

/// The data a network was trained on and the int8 export its search made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// The data source spec (`synthetic`, `idx:DIR`, …; paths absolute).
    pub source: String,
    /// Seed of the train / validation / test split.
    pub split_seed: u64,
    /// At most this many training images were used.
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// At most this many validation (and test) images were used.
    #[serde(default)]
    pub eval_limit: Option<usize>,
    /// The fraction of training images carved as the test split, when one was.
    #[serde(default)]
    pub split_test: Option<f64>,
    /// The data configuration (resolution, colour) the network takes.
    pub data: DataConfig,
    /// The classes' names by label.
    #[serde(default)]
    pub class_names: Vec<String>,
    /// Seed of the training.
    pub seed: u64,
    /// The int8 export made from this network, when one was.
    #[serde(default)]
    pub export: Option<crate::ExportConfig>,
}
