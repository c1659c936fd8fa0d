//! Front-end parameters: what a user chooses (rate, window, stride, channels, band) and
//! micro_speech's fixed parameters as defaults.

use serde::{Deserialize, Serialize};

use crate::SignalError;

/// Smallest FFT length the signal library supports.
pub const MIN_FFT_LENGTH: u32 = 64;
/// Largest FFT length the signal library supports.
pub const MAX_FFT_LENGTH: u32 = 2048;

/// The parameters of one audio front end.
///
/// [`FrontEndConfig::new`] takes the five choices a search makes; every other field has
/// the value of TFLM's micro_speech feature generator (Hann window with 12 scaling bits,
/// noise reduction 0.025 / 0.06 with 10 smoothing bits and 14 subtraction bits, PCAN
/// 0.95 / 80 / 21 gain bits / 10 smoothing bits, log with 6 post-scaling bits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontEndConfig {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Window length in ms.
    pub window_ms: u32,
    /// Stride (hop) in ms.
    pub stride_ms: u32,
    /// Mel filter-bank channels.
    pub channels: u32,
    /// Lower band edge of the filter bank in Hz.
    pub lower_hz: f32,
    /// Upper band edge of the filter bank in Hz.
    pub upper_hz: f32,
    /// Scaling bits of the Hann window's int16 weights.
    pub window_scaling_bits: u32,
    /// Scaling bits of the filter bank's weights.
    pub filter_bank_scaling_bits: u32,
    /// Byte alignment of each channel's first FFT bin.
    pub filter_bank_alignment: u32,
    /// Channel widths are padded to a multiple of this.
    pub filter_bank_channel_block_size: u32,
    /// Post-scaling bits of the log (output scale `1 << bits`).
    pub log_post_scaling_bits: u32,
    /// Fixed-point bits of the noise reduction's coefficients.
    pub spectral_subtraction_bits: u32,
    /// Smoothing bits of the noise estimate.
    pub smoothing_bits: u32,
    /// Noise smoothing of even channels.
    pub even_smoothing: f32,
    /// Noise smoothing of odd channels.
    pub odd_smoothing: f32,
    /// Least fraction of the signal kept after noise subtraction.
    pub min_signal_remaining: f32,
    /// Whether the noise estimate is clamped to the signal.
    pub clamping: bool,
    /// PCAN strength.
    pub pcan_strength: f32,
    /// PCAN offset.
    pub pcan_offset: f32,
    /// PCAN gain bits.
    pub pcan_gain_bits: u32,
    /// PCAN smoothing bits.
    pub pcan_smoothing_bits: u32,
}

impl Default for FrontEndConfig {
    /// micro_speech: 16 kHz, 30 ms window, 20 ms stride, 40 channels, 125–7500 Hz.
    fn default() -> Self {
        Self::new(16_000, 30, 20, 40)
    }
}

impl FrontEndConfig {
    /// A front end with micro_speech's fixed parameters and the band 125 Hz to
    /// min(7500 Hz, 0.47 × rate) (7,500 Hz at 16 kHz, 3,760 Hz at 8 kHz).
    pub fn new(sample_rate: u32, window_ms: u32, stride_ms: u32, channels: u32) -> Self {
        Self {
            sample_rate,
            window_ms,
            stride_ms,
            channels,
            lower_hz: 125.0,
            upper_hz: (7500.0f32).min(sample_rate as f32 * 0.47),
            window_scaling_bits: 12,
            filter_bank_scaling_bits: 12,
            filter_bank_alignment: 4,
            filter_bank_channel_block_size: 4,
            log_post_scaling_bits: 6,
            spectral_subtraction_bits: 14,
            smoothing_bits: 10,
            even_smoothing: 0.025,
            odd_smoothing: 0.06,
            min_signal_remaining: 0.05,
            clamping: false,
            pcan_strength: 0.95,
            pcan_offset: 80.0,
            pcan_gain_bits: 21,
            pcan_smoothing_bits: 10,
        }
    }

    /// Samples in one window.
    pub fn window_samples(&self) -> usize {
        (u64::from(self.window_ms) * u64::from(self.sample_rate) / 1000) as usize
    }

    /// Samples between the starts of two frames.
    pub fn stride_samples(&self) -> usize {
        (u64::from(self.stride_ms) * u64::from(self.sample_rate) / 1000) as usize
    }

    /// FFT length: the next power of two of the window.
    pub fn fft_length(&self) -> usize {
        self.window_samples().max(1).next_power_of_two()
    }

    /// log2 of the FFT length.
    pub fn fft_bits(&self) -> u32 {
        self.fft_length().trailing_zeros()
    }

    /// Frames of a clip of `samples` samples (0 when it is shorter than one window).
    pub fn frames(&self, samples: usize) -> usize {
        let (w, s) = (self.window_samples(), self.stride_samples());
        if samples < w || s == 0 { 0 } else { 1 + (samples - w) / s }
    }

    /// Checks that the signal library can run this front end.
    ///
    /// # Errors
    /// [`SignalError::Config`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), SignalError> {
        let bad = |field: &str, why: String| Err(SignalError::Config { field: field.to_string(), reason: why });
        if !(1000..=192_000).contains(&self.sample_rate) {
            return bad("sample_rate", format!("{} Hz is outside 1000..=192000", self.sample_rate));
        }
        if self.window_ms == 0 || self.stride_ms == 0 {
            return bad(
                "window_ms",
                format!("window {} ms and stride {} ms must be positive", self.window_ms, self.stride_ms),
            );
        }
        if self.stride_samples() == 0 {
            return bad("stride_ms", format!("{} ms is less than one sample", self.stride_ms));
        }
        let n = self.fft_length() as u32;
        if !(MIN_FFT_LENGTH..=MAX_FFT_LENGTH).contains(&n) {
            return bad(
                "window_ms",
                format!(
                    "{} ms at {} Hz needs an FFT of {n}, outside {MIN_FFT_LENGTH}..={MAX_FFT_LENGTH}",
                    self.window_ms, self.sample_rate
                ),
            );
        }
        if !(1..=256).contains(&self.channels) {
            return bad("channels", format!("{} is outside 1..=256", self.channels));
        }
        let nyquist = self.sample_rate as f32 / 2.0;
        if !(self.lower_hz >= 0.0 && self.lower_hz < self.upper_hz && self.upper_hz < nyquist) {
            return bad(
                "upper_hz",
                format!("band {}..{} Hz must satisfy 0 <= lower < upper < {nyquist} Hz", self.lower_hz, self.upper_hz),
            );
        }
        if self.window_scaling_bits > 15 || self.filter_bank_scaling_bits > 14 || self.log_post_scaling_bits > 15 {
            return bad("window_scaling_bits", "scaling bits must keep int16 weights".into());
        }
        let correction = self.correction_bits();
        if correction < 0 || correction as u32 > self.pcan_smoothing_bits {
            return bad(
                "filter_bank_scaling_bits",
                format!("correction bits {correction} (log2 FFT − scaling/2) must be in 0..=pcan_smoothing_bits"),
            );
        }
        if (self.pcan_gain_bits as i32) - correction - 12 < 1 {
            return bad("pcan_gain_bits", format!("{} leaves no SNR shift", self.pcan_gain_bits));
        }
        if !(1..=16).contains(&self.spectral_subtraction_bits) || self.smoothing_bits > 16 {
            return bad("spectral_subtraction_bits", "must be in 1..=16 (smoothing bits <= 16)".into());
        }
        for (field, v) in [
            ("even_smoothing", self.even_smoothing),
            ("odd_smoothing", self.odd_smoothing),
            ("min_signal_remaining", self.min_signal_remaining),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(field, format!("{v} is outside 0..=1"));
            }
        }
        if !(self.pcan_strength.is_finite() && self.pcan_offset.is_finite() && self.pcan_offset > 0.0) {
            return bad("pcan_offset", "PCAN strength and offset must be finite, the offset positive".into());
        }
        if self.filter_bank_alignment == 0 || self.filter_bank_channel_block_size == 0 {
            return bad("filter_bank_alignment", "alignment and block size must be positive".into());
        }
        Ok(())
    }

    /// Bits the FFT's growth leaves on the filter-bank output: log2(FFT) − scaling bits / 2.
    pub fn correction_bits(&self) -> i32 {
        self.fft_bits() as i32 - (self.filter_bank_scaling_bits / 2) as i32
    }
}
