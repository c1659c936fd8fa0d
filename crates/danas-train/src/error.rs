use thiserror::Error;

/// Errors of the trainer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The candidate, data configuration or number of classes is invalid.
    #[error("invalid candidate: {0}")]
    Core(#[from] danas_core::CoreError),
    /// A setting of a training or evaluation configuration is out of range.
    #[error("invalid setting {field} = {value}: {reason}")]
    Setting {
        /// Name of the setting, e.g. `batch_size`.
        field: &'static str,
        /// The offending value, as text.
        value: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A candidate cannot be taken out of a supernet.
    #[error("candidate {candidate} does not fit supernet {supernet}: {reason}")]
    NotASubnet {
        /// The candidate, as text.
        candidate: String,
        /// The supernet's own candidate, as text.
        supernet: String,
        /// Which layer or dimension exceeds the supernet.
        reason: String,
    },
    /// A batch from the data source disagrees with the data configuration or the classes.
    #[error("bad batch from {split} split: {field} = {value}, expected {expected}")]
    BadBatch {
        /// The split the batch came from.
        split: danas_core::Split,
        /// The field at fault (`c`, `h`, `w`, `labels[i]`, ...).
        field: String,
        /// Its value.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// The data source failed.
    #[error("data source failed on the {split} split: {source}")]
    Source {
        /// The split being read.
        split: danas_core::Split,
        /// The pipeline's error.
        source: danas_core::SourceError,
    },
    /// A split yielded no batch at all.
    #[error("the {split} split is empty")]
    EmptySplit {
        /// The split.
        split: danas_core::Split,
    },
    /// Training diverged: the loss became NaN or infinite.
    #[error("training diverged at step {step}: loss = {loss}")]
    Diverged {
        /// Zero-based step at which the loss was not finite.
        step: u64,
        /// The loss value.
        loss: f32,
    },
    /// The tensor backend returned data of an unexpected type or shape.
    #[error("tensor backend: {0}")]
    Backend(#[from] burn::tensor::DataError),
    /// The network cannot be expressed as, quantised to or run as a TFLite model.
    #[error("export: {0}")]
    Tflite(#[from] danas_tflite::TfliteError),
    /// The exported model does not fit the data it is run on.
    #[error("export: {reason}")]
    Export {
        /// What does not fit.
        reason: String,
    },
    /// A checkpoint file is damaged: its checksum does not match its content.
    #[error("checkpoint {path} is corrupted: {reason}")]
    Corrupt {
        /// The file.
        path: std::path::PathBuf,
        /// What the check found.
        reason: String,
    },
    /// Reading or writing a checkpoint failed.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl TrainError {
    pub(crate) fn setting(field: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        TrainError::Setting { field, value: value.to_string(), reason: reason.into() }
    }
}
