use std::path::PathBuf;

/// Errors of the dataset pipelines. Each variant names the file, option or value at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A source specification such as `idx:DIR` could not be understood.
    #[error("invalid data source {spec:?}: {reason}")]
    Spec {
        /// The specification as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file or directory that must exist does not.
    #[error("{what} not found: {}", path.display())]
    NotFound {
        /// What was looked for (e.g. `data directory`).
        what: &'static str,
        /// The missing path.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `read`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file exists but its content is not in the expected format.
    #[error("bad format in {}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// More than the allowed fraction of a source's images is unusable.
    #[error(
        "{bad} of {total} images in {source_name} are unusable ({:.1} % > the allowed {:.1} %); first: {}",
        100.0 * *bad as f64 / (*total).max(1) as f64, 100.0 * max_fraction, first.join("; ")
    )]
    TooManyBad {
        /// The source, e.g. `folder:/data/vww`.
        source_name: String,
        /// Number of unusable images.
        bad: usize,
        /// Number of images in total (usable and not).
        total: usize,
        /// The allowed fraction.
        max_fraction: f64,
        /// The first few, as `path: reason`.
        first: Vec<String>,
    },
    /// A source or split has no usable images.
    #[error("{what} has no usable images")]
    Empty {
        /// The source or split that is empty.
        what: String,
    },
    /// A source has images of fewer than two classes, so nothing can be learned.
    #[error("{source_name} has a single class ({class:?}); at least two are needed")]
    SingleClass {
        /// The source.
        source_name: String,
        /// The only class present.
        class: String,
    },
    /// Building a cache would exceed the configured cache size cap.
    #[error(
        "cache {} would grow to {needed} bytes, above the cap of {cap} bytes; raise the cap or use a train limit",
        dir.display()
    )]
    CacheFull {
        /// The cache directory.
        dir: PathBuf,
        /// Bytes the cache would need in total.
        needed: u64,
        /// The cap.
        cap: u64,
    },
    /// An option has a value outside its allowed range.
    #[error("invalid option {name} = {value}: {reason}")]
    InvalidOption {
        /// Name of the option.
        name: &'static str,
        /// Its value, as text.
        value: String,
        /// The rule broken.
        reason: String,
    },
    /// A data configuration was rejected by `danas-core`.
    #[error(transparent)]
    Config(#[from] danas_core::CoreError),
    /// An image could not be resized (should not happen for valid sizes).
    #[error("cannot resize image {key}: {source}")]
    Resize {
        /// The image.
        key: String,
        /// The resizer's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DataError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { action, path: path.into(), source }
    }
    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::Format { path: path.into(), reason: reason.into() }
    }
    pub(crate) fn option(name: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        DataError::InvalidOption { name, value: value.to_string(), reason: reason.into() }
    }
}
