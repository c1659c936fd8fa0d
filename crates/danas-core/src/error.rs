use thiserror::Error;

/// Errors of the core vocabulary. Each names the field and the value at fault.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum CoreError {
    /// A field holds a value outside its allowed range.
    #[error("invalid {field} = {value}: {reason}")]
    InvalidField {
        /// Name of the field, e.g. `alpha` or `depths[2]`.
        field: String,
        /// The offending value, as text.
        value: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A string could not be parsed into a value of the vocabulary.
    #[error("cannot parse {what} from {input:?}: {reason}")]
    Parse {
        /// What was being parsed, e.g. `colour`.
        what: &'static str,
        /// The input text.
        input: String,
        /// Why it failed.
        reason: String,
    },
}

impl CoreError {
    pub(crate) fn field(field: impl Into<String>, value: impl ToString, reason: impl Into<String>) -> Self {
        CoreError::InvalidField { field: field.into(), value: value.to_string(), reason: reason.into() }
    }
}
