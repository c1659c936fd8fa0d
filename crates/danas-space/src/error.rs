use std::path::PathBuf;

use thiserror::Error;

/// Errors of search spaces. Each names the field or gene and the value at fault.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum SpaceError {
    /// A configuration field is invalid.
    #[error("invalid {field} = {value}: {reason}")]
    InvalidField {
        /// The field, e.g. `alphas[2]`.
        field: String,
        /// The offending value.
        value: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A genome does not belong to the space.
    #[error("invalid genome {genome:?}: {reason}")]
    InvalidGenome {
        /// The genome's indices.
        genome: Vec<u16>,
        /// Why it is invalid.
        reason: String,
    },
    /// A numeric encoding could not be decoded.
    #[error("cannot decode vector: {0}")]
    Decode(String),
    /// The space has no valid member.
    #[error("the space {0:?} is empty")]
    Empty(String),
    /// A space file could not be read or parsed.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong, naming the key or line when known.
        message: String,
    },
    /// An error from the core vocabulary.
    #[error(transparent)]
    Core(#[from] danas_core::CoreError),
}

impl SpaceError {
    pub(crate) fn field(field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Self {
        SpaceError::InvalidField { field: field.into(), value: value.to_string(), reason: reason.into() }
    }
}
