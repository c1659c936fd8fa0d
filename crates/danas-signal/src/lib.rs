//! # danas-signal
//!
//! The audio front end danas trains on and deploys, computed with the integer arithmetic
//! of TensorFlow Lite Micro's signal library, so that the features a network is trained
//! on are, bit for bit, those the device computes:
//!
//! Hann window (12 scaling bits) → auto-scaled int16 real FFT (KISS FFT fixed point, the
//! next power of two) → energy → mel filter bank → square root with the FFT's shift →
//! spectral subtraction (a noise estimate kept across frames) → PCAN gain control → log
//! (6 post-scaling bits) → int16 features, and micro_speech's int8 model input.
//!
//! - [`FrontEndConfig`]: sample rate, window, stride, channels, band, with
//!   micro_speech's fixed parameters as defaults;
//! - [`Tables`]: every constant, built as the signal library's Python helpers build them;
//! - [`FrontEnd`]: features of a frame ([`FrontEnd::frame`], with a [`FrontEndState`])
//!   or of a clip ([`FrontEnd::clip`]);
//! - [`preprocessor_model`] / [`preprocessor_tflite`] / [`preprocessor_c_array`]: the
//!   same front end as a `.tflite` of the signal custom ops (FlexBuffers options), one
//!   frame per invocation, for TFLM.
//!
//! ```
//! use danas_signal::{FrontEnd, FrontEndConfig};
//!
//! let fe = FrontEnd::new(&FrontEndConfig::default())?; // micro_speech: 16 kHz, 30/20 ms, 40 mel
//! let clip: Vec<i16> = (0..16_000).map(|t| ((t as f32 * 0.2).sin() * 8000.0) as i16).collect();
//! let f = fe.clip(&clip);
//! assert_eq!((f.frames, f.channels), (49, 40));
//! # Ok::<(), danas_signal::SignalError>(())
//! ```

mod config;
mod fft;
mod frontend;
pub mod ops;
mod preprocessor;
mod tables;

pub use config::{FrontEndConfig, MAX_FFT_LENGTH, MIN_FFT_LENGTH};
pub use fft::{Cpx, Rfft};
pub use frontend::{ClipFeatures, FrameFeatures, FrontEnd, FrontEndState};
pub use preprocessor::{
    INT16, OUTPUT_FEATURES, OUTPUT_INT8, UINT32, UINT64, preprocessor_c_array, preprocessor_model, preprocessor_tflite,
};
pub use tables::{PCAN_LUT_LEN, PCAN_SNR_BITS, PCAN_SNR_SHIFT, Tables, freq_to_mel, hann_window, pcan_lut};

/// Errors of the audio front end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// A front-end parameter is out of range.
    #[error("front end: {field}: {reason}")]
    Config {
        /// The parameter.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The preprocessor model could not be built or written.
    #[error("preprocessor model: {0}")]
    Model(String),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn micro_speech_tables() {
        let fe = FrontEnd::new(&FrontEndConfig::default()).unwrap();
        let t = fe.tables();
        assert_eq!(t.window.len(), 480);
        assert_eq!(t.fft_length, 512);
        assert_eq!(t.correction_bits, 3);
        assert_eq!((t.smoothing, t.alternate_smoothing, t.min_signal_remaining), (409, 983, 819));
        assert_eq!(t.channel_widths.len(), 41);
        assert_eq!(t.pcan_lut.len(), PCAN_LUT_LEN);
        // The Hann window is symmetric and peaks at 2^12.
        assert_eq!(t.window[0], t.window[479]);
        assert!(t.window.iter().all(|&w| (0..=4096).contains(&w)));
        assert!(t.start_index > 0 && t.end_index < 257);
    }

    #[test]
    fn features_are_deterministic_and_state_matters() {
        let fe = FrontEnd::new(&FrontEndConfig::new(8000, 25, 10, 10)).unwrap();
        let clip: Vec<i16> = (0..8000).map(|t| ((t * 7919 % 2000) as i16 - 1000) * 5).collect();
        let a = fe.clip(&clip);
        assert_eq!(a, fe.clip(&clip));
        assert_eq!(a.frames, 1 + (8000 - 200) / 80);
        // The same window twice gives different features: the noise estimate grows.
        let mut st = fe.new_state();
        let f1 = fe.frame(&mut st, &clip[..200]);
        let f2 = fe.frame(&mut st, &clip[..200]);
        assert_ne!(f1, f2);
        assert!(a.features.iter().any(|&f| f > 0));
    }

    #[test]
    fn bad_configs_are_errors() {
        for c in [
            FrontEndConfig::new(16_000, 1, 1, 40),
            FrontEndConfig::new(16_000, 30, 0, 40),
            FrontEndConfig::new(16_000, 30, 20, 0),
            FrontEndConfig { upper_hz: 9000.0, ..FrontEndConfig::default() },
        ] {
            assert!(FrontEnd::new(&c).is_err(), "{c:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_samples_give_features_without_panicking(
            samples in proptest::collection::vec(proptest::prelude::any::<i16>(), 0..700),
            loud in proptest::prelude::any::<bool>(),
        ) {
            let fe = FrontEnd::new(&FrontEndConfig::new(16_000, 30, 20, 40)).unwrap();
            let mut st = fe.new_state();
            let s: Vec<i16> = if loud { samples.iter().map(|&x| if x < 0 { i16::MIN } else { i16::MAX }).collect() } else { samples };
            for _ in 0..3 {
                let f = fe.frame(&mut st, &s);
                proptest::prop_assert_eq!(f.features.len(), 40);
                proptest::prop_assert!(f.features.iter().all(|&v| v >= 0));
            }
        }
    }

    #[test]
    fn preprocessor_round_trips() {
        let fe = FrontEnd::new(&FrontEndConfig::default()).unwrap();
        let bytes = preprocessor_tflite(&fe).unwrap();
        let m = danas_tflite::Model::from_bytes(&bytes, "memory").unwrap();
        assert_eq!(m, preprocessor_model(&fe).unwrap());
        let (cc, h) = preprocessor_c_array(&fe, 4096).unwrap();
        assert!(cc.contains("g_preprocessor") && h.contains("g_preprocessor"));
    }
}
