use std::path::PathBuf;

/// Everything that can go wrong in danas-cost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CostError {
    /// An MCU name that is not in the catalogue.
    #[error("unknown MCU `{name}`; known: {}", known.join(", "))]
    UnknownMcu {
        /// The name asked for.
        name: String,
        /// The names in the catalogue.
        known: Vec<String>,
    },
    /// A profile field is missing, negative or otherwise invalid.
    #[error("profile {origin}: field `{field}` {reason}")]
    InvalidProfile {
        /// Where the profile came from (file name or `<string>`).
        origin: String,
        /// The field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `.tflite` file that is truncated, corrupt or not TFLite.
    #[error("{origin}: not a valid TFLite model: {reason}")]
    InvalidTflite {
        /// File name or `<bytes>`.
        origin: String,
        /// What is wrong, naming the table / field when known.
        reason: String,
    },
    /// A graph that cannot be estimated (dangling tensor ids, bad shapes).
    #[error("invalid graph: {reason}")]
    InvalidGraph {
        /// What is wrong.
        reason: String,
    },
    /// A candidate that cannot be turned into a blueprint.
    #[error("invalid candidate: {0}")]
    Candidate(#[from] danas_core::CoreError),
    /// A calibration CSV that cannot be used.
    #[error("calibration {origin}, line {line}: {reason}")]
    Calibration {
        /// File name or `<string>`.
        origin: String,
        /// 1-based line number (0 for the whole file).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}
