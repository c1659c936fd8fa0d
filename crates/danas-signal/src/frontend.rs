//! The front end: tables plus FFT, run frame by frame with the noise state between frames.

use crate::SignalError;
use crate::config::FrontEndConfig;
use crate::fft::Rfft;
use crate::ops;
use crate::tables::{PCAN_SNR_SHIFT, Tables};

/// A built front end (immutable; its per-clip state is a [`FrontEndState`]).
#[derive(Debug, Clone)]
pub struct FrontEnd {
    config: FrontEndConfig,
    tables: Tables,
    fft: Rfft,
}

/// The state the front end keeps across frames: the noise estimate of the spectral
/// subtraction. A clip starts from [`FrontEnd::new_state`] (all zero), as TFLM after
/// allocation or reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontEndState {
    /// Per-channel noise estimate.
    pub noise_estimate: Vec<u32>,
}

/// The features of one frame, with the intermediate values tests compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameFeatures {
    /// int16 log features, one per channel.
    pub features: Vec<i16>,
    /// The int8 model input of each feature.
    pub int8: Vec<i8>,
}

/// The features of a clip: `frames × channels`, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipFeatures {
    /// Frames.
    pub frames: usize,
    /// Channels.
    pub channels: usize,
    /// int16 features.
    pub features: Vec<i16>,
    /// int8 model input.
    pub int8: Vec<i8>,
}

impl FrontEnd {
    /// Builds the tables and FFT of `config`.
    ///
    /// # Errors
    /// [`SignalError::Config`] for an invalid configuration.
    pub fn new(config: &FrontEndConfig) -> Result<Self, SignalError> {
        let tables = Tables::new(config)?;
        let fft = Rfft::new(tables.fft_length);
        Ok(Self { config: config.clone(), tables, fft })
    }

    /// The configuration.
    pub fn config(&self) -> &FrontEndConfig {
        &self.config
    }

    /// The tables.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// A fresh state (noise estimate zero).
    pub fn new_state(&self) -> FrontEndState {
        FrontEndState { noise_estimate: vec![0; self.config.channels as usize] }
    }

    /// The noise reduction's coefficients.
    pub fn spectral_subtraction(&self) -> ops::SpectralSubtraction {
        let t = &self.tables;
        ops::SpectralSubtraction {
            smoothing: t.smoothing,
            one_minus_smoothing: t.one_minus_smoothing,
            alternate_smoothing: t.alternate_smoothing,
            alternate_one_minus_smoothing: t.alternate_one_minus_smoothing,
            min_signal_remaining: t.min_signal_remaining,
            smoothing_bits: self.config.smoothing_bits,
            spectral_subtraction_bits: self.config.spectral_subtraction_bits,
            clamping: self.config.clamping,
        }
    }

    /// Features of one window of samples (shorter input is zero-padded, longer is cut),
    /// updating `state`.
    pub fn frame(&self, state: &mut FrontEndState, samples: &[i16]) -> FrameFeatures {
        let t = &self.tables;
        let w = t.window.len();
        let mut input = vec![0i16; w];
        for (d, s) in input.iter_mut().zip(samples) {
            *d = *s;
        }
        let mut windowed = vec![0i16; w];
        ops::window(&input, &t.window, t.window_shift, &mut windowed);
        let mut scaled = vec![0i16; w];
        let shift = ops::fft_auto_scale(&windowed, &mut scaled);
        let spectrum = self.fft.apply(&scaled);
        let mut energy = vec![0u32; spectrum.len()];
        ops::energy(&spectrum, t.start_index, t.end_index, &mut energy);
        let c = self.config.channels as usize;
        let mut bank = vec![0u64; c];
        ops::filter_bank(
            &energy,
            &t.weights,
            &t.unweights,
            &t.channel_frequency_starts,
            &t.channel_weight_starts,
            &t.channel_widths,
            &mut bank,
        );
        let mut root = vec![0u32; c];
        ops::filter_bank_sqrt(&bank, shift, &mut root);
        let mut cleaned = vec![0u32; c];
        if state.noise_estimate.len() != c {
            state.noise_estimate = vec![0; c];
        }
        ops::spectral_subtraction(&self.spectral_subtraction(), &root, &mut cleaned, &mut state.noise_estimate);
        ops::pcan(&t.pcan_lut, PCAN_SNR_SHIFT, &state.noise_estimate, &mut cleaned);
        let mut features = vec![0i16; c];
        ops::filter_bank_log(&cleaned, t.log_scale, t.correction_bits, &mut features);
        let int8 = features.iter().map(|&f| ops::feature_to_int8(f)).collect();
        FrameFeatures { features, int8 }
    }

    /// Features of a whole clip from a fresh state: frame `k` covers samples
    /// `k · stride .. k · stride + window`.
    pub fn clip(&self, samples: &[i16]) -> ClipFeatures {
        let frames = self.config.frames(samples.len());
        let (w, s) = (self.config.window_samples(), self.config.stride_samples());
        let channels = self.config.channels as usize;
        let mut state = self.new_state();
        let mut features = Vec::with_capacity(frames * channels);
        let mut int8 = Vec::with_capacity(frames * channels);
        for k in 0..frames {
            let f = self.frame(&mut state, &samples[k * s..k * s + w]);
            features.extend(f.features);
            int8.extend(f.int8);
        }
        ClipFeatures { frames, channels, features, int8 }
    }
}
