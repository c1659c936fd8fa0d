//! The constant tables of a front end, built the way TFLM's signal library's Python
//! helpers build them (Hann weights, mel filter-bank weights and indices, the PCAN gain
//! lookup table, the noise reduction's fixed-point coefficients).

use crate::SignalError;
use crate::config::FrontEndConfig;

/// Entries of the PCAN gain lookup table (4 × 32 − 3).
pub const PCAN_LUT_LEN: usize = 125;
/// Signal-to-noise bits of PCAN's shrink function.
pub const PCAN_SNR_BITS: u32 = 12;
/// The SNR shift the signal library's PCAN op is built with.
pub const PCAN_SNR_SHIFT: u32 = 6;

/// Every constant a front end needs, as the integer arrays and numbers its ops read.
#[derive(Debug, Clone, PartialEq)]
pub struct Tables {
    /// Hann window, int16 with `window_scaling_bits` fractional bits.
    pub window: Vec<i16>,
    /// Shift applied after the window product.
    pub window_shift: u32,
    /// FFT length (power of two).
    pub fft_length: usize,
    /// First FFT bin the filter bank reads.
    pub start_index: usize,
    /// One past the last FFT bin the filter bank reads.
    pub end_index: usize,
    /// Filter-bank weights.
    pub weights: Vec<i16>,
    /// Filter-bank unweights (1 − weight).
    pub unweights: Vec<i16>,
    /// First FFT bin of each channel (channels + 1 entries).
    pub channel_frequency_starts: Vec<i16>,
    /// First weight of each channel (channels + 1 entries).
    pub channel_weight_starts: Vec<i16>,
    /// Bins of each channel (channels + 1 entries).
    pub channel_widths: Vec<i16>,
    /// Noise smoothing of even channels (fixed point).
    pub smoothing: u32,
    /// 2^bits − smoothing.
    pub one_minus_smoothing: u32,
    /// Noise smoothing of odd channels (fixed point).
    pub alternate_smoothing: u32,
    /// 2^bits − alternate smoothing.
    pub alternate_one_minus_smoothing: u32,
    /// Least signal kept (fixed point).
    pub min_signal_remaining: u32,
    /// PCAN gain lookup table.
    pub pcan_lut: Vec<i16>,
    /// Bits the FFT leaves on the filter-bank output (log's input correction).
    pub correction_bits: u32,
    /// The log's output scale (`1 << log_post_scaling_bits`).
    pub log_scale: u32,
}

/// TFLM's mel scale, in single precision: 1127 · ln(1 + f / 700).
pub fn freq_to_mel(freq: f32) -> f32 {
    1127.0f32 * (freq / 700.0f32).ln_1p()
}

/// Python's `round` of a double (ties to even).
fn round_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// The int16 Hann window of `len` samples with `shift` fractional bits.
pub fn hann_window(len: usize, shift: u32) -> Vec<i16> {
    let arg = std::f64::consts::PI * 2.0 / len as f64;
    (0..len)
        .map(|i| {
            let w = 0.5 - 0.5 * (arg * (i as f64 + 0.5)).cos();
            round_even(w * f64::from(1u32 << shift)) as i16
        })
        .collect()
}

struct FilterBank {
    start_index: usize,
    end_index: usize,
    weights: Vec<i16>,
    unweights: Vec<i16>,
    freq_starts: Vec<i16>,
    weight_starts: Vec<i16>,
    widths: Vec<i16>,
}

fn filter_bank(c: &FrontEndConfig, spectrum_size: usize) -> Result<FilterBank, SignalError> {
    let channels = c.channels as usize;
    let index_alignment = if c.filter_bank_alignment < 2 { 1 } else { (c.filter_bank_alignment / 2) as usize };
    let block = c.filter_bank_channel_block_size as usize;
    // Centre frequencies of channels + 1 bands, evenly spaced in mel (single precision).
    let mel_lower = freq_to_mel(c.lower_hz);
    let mel_upper = freq_to_mel(c.upper_hz);
    let spacing = (mel_upper - mel_lower) / (channels + 1) as f32;
    let centers: Vec<f32> = (1..=channels + 1).map(|k| mel_lower + spacing * k as f32).collect();
    let hz_per_sbin = (f64::from(c.sample_rate) / 2.0) / (spectrum_size - 1) as f64;
    let start_index = round_even(1.0 + f64::from(c.lower_hz) / hz_per_sbin) as usize;
    let mel_of_bin = |bin: usize| freq_to_mel((bin as f64 * hz_per_sbin) as f32);

    let n = channels + 1;
    let (mut freq_starts, mut weight_starts, mut widths) = (vec![0i16; n], vec![0i16; n], vec![0i16; n]);
    let (mut actual_starts, mut actual_widths) = (vec![0usize; n], vec![0usize; n]);
    let mut chan_start = start_index;
    let mut weight_index = 0usize;
    let mut needs_zeros = false;
    let too_big = |what: &str| SignalError::Config {
        field: "channels".into(),
        reason: format!("the filter bank's {what} does not fit int16; use fewer channels or a shorter window"),
    };
    for chan in 0..n {
        let mut f = chan_start;
        while mel_of_bin(f) <= centers[chan] {
            f += 1;
            if f > spectrum_size + 1 {
                break;
            }
        }
        let width = f - chan_start;
        actual_starts[chan] = chan_start;
        actual_widths[chan] = width;
        if width == 0 {
            freq_starts[chan] = 0;
            weight_starts[chan] = 0;
            widths[chan] = i16::try_from(block).map_err(|_| too_big("block size"))?;
            if !needs_zeros {
                needs_zeros = true;
                for ws in weight_starts.iter_mut().take(chan) {
                    *ws += block as i16;
                }
                weight_index += block;
            }
        } else {
            let aligned = chan_start / index_alignment * index_alignment;
            let aligned_width = chan_start - aligned + width;
            let padded = ((aligned_width - 1) / block + 1) * block;
            freq_starts[chan] = i16::try_from(aligned).map_err(|_| too_big("start bin"))?;
            weight_starts[chan] = i16::try_from(weight_index).map_err(|_| too_big("weight index"))?;
            widths[chan] = i16::try_from(padded).map_err(|_| too_big("width"))?;
            weight_index += padded;
        }
        chan_start = f;
    }
    let mut weights = vec![0i16; weight_index];
    let mut unweights = vec![0i16; weight_index];
    let mut end_index = 0usize;
    let mel_low = freq_to_mel(c.lower_hz);
    let scale = (1u32 << c.filter_bank_scaling_bits) as f32;
    for chan in 0..n {
        let mut frequency = actual_starts[chan];
        let offset = frequency - freq_starts[chan] as usize;
        let weight_start = weight_starts[chan] as usize;
        let denom = if chan == 0 { mel_low } else { centers[chan - 1] };
        for j in 0..actual_widths[chan] {
            let num = centers[chan] - mel_of_bin(frequency);
            let den = centers[chan] - denom;
            let w = num / den;
            let k = weight_start + offset + j;
            if let (Some(wt), Some(uw)) = (weights.get_mut(k), unweights.get_mut(k)) {
                *wt = (w * scale) as i16;
                *uw = ((1.0 - w) * scale) as i16;
            }
            frequency += 1;
        }
        end_index = end_index.max(frequency);
    }
    if end_index >= spectrum_size {
        return Err(SignalError::Config {
            field: "upper_hz".into(),
            reason: format!(
                "the filter bank reaches FFT bin {end_index}, beyond the spectrum's {spectrum_size} bins; lower the upper band edge"
            ),
        });
    }
    // Every bin a channel reads must lie in the spectrum.
    for chan in 0..n {
        if freq_starts[chan] as usize + widths[chan] as usize > spectrum_size
            || weight_starts[chan] as usize + widths[chan] as usize > weight_index
        {
            return Err(SignalError::Config {
                field: "channels".into(),
                reason: format!("filter-bank channel {chan} reads past the spectrum; use fewer channels"),
            });
        }
    }
    Ok(FilterBank { start_index, end_index, weights, unweights, freq_starts, weight_starts, widths })
}

/// PCAN's gain `2^gain_bits · (x / 2^input_bits + offset)^−strength`, rounded to int16.
fn pcan_gain(strength: f32, offset: f32, gain_bits: u32, input_bits: u32, x: u32) -> i16 {
    let xf = x as f32 / (1u32 << input_bits) as f32;
    let gain = (1u32 << gain_bits) as f32 * (xf + offset).powf(-strength);
    if gain > f32::from(i16::MAX) { i16::MAX } else { (gain + 0.5f32) as i16 }
}

/// The PCAN gain lookup table: per octave of the noise estimate a quadratic through the
/// gain at its start, middle and end.
pub fn pcan_lut(strength: f32, offset: f32, input_bits: u32, gain_bits: u32) -> Vec<i16> {
    let mut lut = vec![0i16; PCAN_LUT_LEN + 6];
    lut[0] = pcan_gain(strength, offset, gain_bits, input_bits, 0);
    lut[1] = pcan_gain(strength, offset, gain_bits, input_bits, 1);
    for interval in 2..=32u32 {
        let x0 = 1u32 << (interval - 1);
        let x1 = x0 + (x0 >> 1);
        let x2 = if interval == 32 { x0 + (x0 - 1) } else { 2 * x0 };
        let y0 = pcan_gain(strength, offset, gain_bits, input_bits, x0);
        let y1 = pcan_gain(strength, offset, gain_bits, input_bits, x1);
        let y2 = pcan_gain(strength, offset, gain_bits, input_bits, x2);
        let diff1 = i32::from(y1) - i32::from(y0);
        let diff2 = i32::from(y2) - i32::from(y0);
        let a1 = 4 * diff1 - diff2;
        let a2 = diff2 - a1;
        // Entry 4·interval − 6 of the table (the C code's pointer is shifted by 6).
        let base = (4 * interval - 6) as usize;
        lut[base] = y0;
        lut[base + 1] = a1 as i16;
        lut[base + 2] = a2 as i16;
        lut[base + 3] = 0;
    }
    lut.truncate(PCAN_LUT_LEN);
    lut
}

impl Tables {
    /// Builds every table of `config`.
    ///
    /// # Errors
    /// [`SignalError::Config`] when the configuration is invalid or its filter bank does
    /// not fit the spectrum.
    pub fn new(config: &FrontEndConfig) -> Result<Self, SignalError> {
        config.validate()?;
        let fft_length = config.fft_length();
        let fb = filter_bank(config, fft_length / 2 + 1)?;
        let bits = config.spectral_subtraction_bits;
        let one = f64::from(1u32 << bits);
        let smoothing = (f64::from(config.even_smoothing) * one) as u32;
        let alternate = if config.odd_smoothing == 0.0 { config.even_smoothing } else { config.odd_smoothing };
        let alternate_smoothing = (f64::from(alternate) * one) as u32;
        let correction_bits = config.correction_bits() as u32;
        let input_bits = config.pcan_smoothing_bits - correction_bits;
        Ok(Self {
            window: hann_window(config.window_samples(), config.window_scaling_bits),
            window_shift: config.window_scaling_bits,
            fft_length,
            start_index: fb.start_index,
            end_index: fb.end_index,
            weights: fb.weights,
            unweights: fb.unweights,
            channel_frequency_starts: fb.freq_starts,
            channel_weight_starts: fb.weight_starts,
            channel_widths: fb.widths,
            smoothing,
            one_minus_smoothing: (1u32 << bits) - smoothing,
            alternate_smoothing,
            alternate_one_minus_smoothing: (1u32 << bits) - alternate_smoothing,
            min_signal_remaining: (f64::from(config.min_signal_remaining) * one) as u32,
            pcan_lut: pcan_lut(config.pcan_strength, config.pcan_offset, input_bits, config.pcan_gain_bits),
            correction_bits,
            log_scale: 1u32 << config.log_post_scaling_bits,
        })
    }
}
