use serde::{Deserialize, Serialize};

use crate::{CoreError, DataConfig};

/// A batch of images in NCHW `f32` layout, scaled to [−1, 1], with class labels.
///
/// This is the hand-over between the dataset pipelines (`danas-data`) and the
/// trainer (`danas-train`): neither needs to know the other.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Batch {
    /// `n · c · h · w` values, NCHW order.
    pub images: Vec<f32>,
    /// One class index per image.
    pub labels: Vec<u32>,
    /// Number of images.
    pub n: usize,
    /// Channels per image.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl Batch {
    /// Checks that the buffer sizes agree with the shape.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] naming the buffer whose length is wrong.
    pub fn validate(&self) -> Result<(), CoreError> {
        let want = self.n * self.c * self.h * self.w;
        if self.images.len() != want {
            return Err(CoreError::field("images.len", self.images.len(), format!("expected n·c·h·w = {want}")));
        }
        if self.labels.len() != self.n {
            return Err(CoreError::field("labels.len", self.labels.len(), format!("expected n = {}", self.n)));
        }
        Ok(())
    }

    /// Values of image `i` (`c · h · w` floats).
    pub fn image(&self, i: usize) -> &[f32] {
        let sz = self.c * self.h * self.w;
        &self.images[i * sz..(i + 1) * sz]
    }
}

/// A dataset split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training images (the search trains supernets and fine-tunes on these).
    Train,
    /// Validation images (the search selects on these).
    Validation,
    /// Test images (touched only to report final, chosen systems).
    Test,
}

impl Split {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Error type of a [`BatchSource`]: any error a pipeline can raise.
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An iterator over batches, as returned by [`BatchSource::batches`].
pub type BatchIter<'a> = Box<dyn Iterator<Item = Result<Batch, SourceError>> + Send + 'a>;

/// Anything that can serve batches of images for a data configuration: the
/// contract between the dataset pipelines and the trainer.
///
/// ```
/// use danas_core::{Batch, BatchIter, BatchSource, DataConfig, Split};
///
/// /// Every image is constant 0 with label 0.
/// struct Zeros;
/// impl BatchSource for Zeros {
///     fn classes(&self) -> u32 { 2 }
///     fn len(&self, _split: Split) -> usize { 4 }
///     fn batches(&self, split: Split, data: DataConfig, batch_size: usize, _augment: bool, _seed: u64) -> BatchIter<'_> {
///         let (h, w, c) = data.input_hwc();
///         let (h, w, c) = (h as usize, w as usize, c as usize);
///         let n = self.len(split);
///         Box::new((0..n).step_by(batch_size).map(move |start| {
///             let k = batch_size.min(n - start);
///             Ok(Batch { images: vec![0.0; k * c * h * w], labels: vec![0; k], n: k, c, h, w })
///         }))
///     }
/// }
/// let total: usize = Zeros.batches(Split::Train, DataConfig::new(8, danas_core::Color::Rgb), 3, true, 0)
///     .map(|b| b.map(|b| b.n).unwrap_or(0)).sum();
/// assert_eq!(total, 4);
/// ```
pub trait BatchSource: Send + Sync {
    /// Number of classes; labels are `0..classes`.
    fn classes(&self) -> u32;
    /// Number of images in a split.
    fn len(&self, split: Split) -> usize;
    /// Whether a split is empty.
    fn is_empty(&self, split: Split) -> bool {
        self.len(split) == 0
    }
    /// One pass over `split` at data configuration `data`, in batches of at most
    /// `batch_size`. With `augment`, the training transforms (random resized crop,
    /// flip) are applied; otherwise the evaluation transform (resize shorter side,
    /// centre crop). The order is shuffled by `seed` when `augment` is set, and fixed
    /// otherwise. The same arguments give the same batches.
    fn batches(&self, split: Split, data: DataConfig, batch_size: usize, augment: bool, seed: u64) -> BatchIter<'_>;
    /// The classes' names by label, for model packages; the default, empty, means
    /// unknown (they are then named by index).
    fn class_names(&self) -> Vec<String> {
        Vec::new()
    }
}
