use serde::{Deserialize, Serialize};

use crate::CoreError;

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
