//! Dataset pipelines for danas: real formats in, one tensor batch per data configuration out.
//!
//! - [`Source`]: a dataset format (the trait users implement for their own); built in:
//!   [`IdxSource`] (MNIST/Fashion-MNIST), [`FolderSource`] (class folders, Visual Wake Words),
//!   [`WakeVisionSource`] (CSV + `.tar.gz` or extracted JPEGs) and [`SyntheticSource`]
//!   (a **generated** colour/detail task, not real data). [`parse_source`] reads
//!   specifications such as `idx:DIR`.
//! - [`Dataset`]: splits, an on-disk cache of decoded, resized images ([`cache`]), the
//!   evaluation/training transforms per [`danas_core::DataConfig`] ([`transform`]) and
//!   prefetched batches; it implements [`danas_core::BatchSource`] for the trainer.
//! - [`inspect()`]: counts, sizes, skipped files and cache status.

pub mod audio;
pub mod cache;
mod dataset;
mod error;
pub mod inspect;
mod source;
pub mod sources;
mod spec;
pub mod transform;
mod verdict;

pub use dataset::{DataOptions, Dataset, SplitCounts, assemble, base_side};
pub use error::DataError;
pub use inspect::{Report, inspect};
pub use source::{Catalog, Fnv, RawImage, Record, Sink, Skipped, Source, check_source};
pub use sources::folder::FolderSource;
pub use sources::idx::IdxSource;
pub use sources::synthetic::{SYNTHETIC_CLASSES, SyntheticSource};
pub use sources::wake_vision::WakeVisionSource;
pub use spec::parse_source;
pub use transform::RgbImage;

/// The `image` crate (JPEG and PNG only) this crate decodes with, for custom sources.
pub use image;
