//! `preprocessor.tflite`: the front end as a TFLite model of TFLM's signal custom ops,
//! one frame per invocation, and its C array.

use danas_tflite::{ElemType, Model, OpDef, Operator, Quant, TensorDef};

use crate::SignalError;
use crate::frontend::FrontEnd;
use crate::ops;
use crate::tables::PCAN_SNR_SHIFT;

/// TFLite's `INT16` tensor type.
pub const INT16: ElemType = ElemType::Other(7);
/// TFLite's `UINT32` tensor type.
pub const UINT32: ElemType = ElemType::Other(15);
/// TFLite's `UINT64` tensor type.
pub const UINT64: ElemType = ElemType::Other(12);

/// Index of the int16 features among the preprocessor's outputs.
pub const OUTPUT_FEATURES: usize = 0;
/// Index of the int8 model input among the preprocessor's outputs.
pub const OUTPUT_INT8: usize = 1;

fn options(build: impl FnOnce(&mut flexbuffers::MapBuilder<'_>)) -> Vec<u8> {
    let mut b = flexbuffers::Builder::default();
    let mut m = b.start_map();
    build(&mut m);
    m.end_map();
    b.view().to_vec()
}

fn i16_bytes(v: &[i16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

struct Builder {
    model: Model,
}

impl Builder {
    fn tensor(&mut self, name: &str, shape: &[i32], ty: ElemType, data: Option<Vec<u8>>) -> i32 {
        self.model.tensors.push(TensorDef {
            name: name.to_string(),
            shape: shape.to_vec(),
            ty,
            data,
            quant: None,
            is_variable: false,
        });
        self.model.tensors.len() as i32 - 1
    }
    fn custom(&mut self, name: &str, opts: Option<Vec<u8>>, inputs: &[i32], outputs: &[i32]) {
        self.model.operators.push(Operator {
            op: OpDef::Custom { name: name.to_string(), options: opts.unwrap_or_default() },
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
        });
    }
}

/// The front end as a TFLite model: input one frame of int16 samples (window length),
/// outputs the frame's int16 features ([`OUTPUT_FEATURES`]) and their int8 model input
/// ([`OUTPUT_INT8`], a `QUANTIZE` from scale 1 to scale 666/256, zero point −128).
/// The spectral subtraction keeps its noise estimate across invocations, so a clip is
/// run frame by frame from a freshly allocated (or reset) interpreter.
///
/// # Errors
/// [`SignalError::Model`] when a table does not fit the model's int16 shapes.
pub fn preprocessor_model(fe: &FrontEnd) -> Result<Model, SignalError> {
    let c = fe.config();
    let t = fe.tables();
    let w = t.window.len() as i32;
    let bins = (t.fft_length / 2 + 1) as i32;
    let ch = c.channels as i32;
    let mut b = Builder {
        model: Model {
            description: format!(
                "danas audio front end: {} Hz, window {} ms, stride {} ms, {} channels, {}-{} Hz",
                c.sample_rate, c.window_ms, c.stride_ms, c.channels, c.lower_hz, c.upper_hz
            ),
            ..Default::default()
        },
    };
    let input = b.tensor("audio_frame", &[w], INT16, None);
    let weights = b.tensor("hann_window", &[w], INT16, Some(i16_bytes(&t.window)));
    let windowed = b.tensor("windowed", &[w], INT16, None);
    let scaled = b.tensor("fft_input", &[w], INT16, None);
    let shift = b.tensor("fft_scale_shift", &[], ElemType::I32, None);
    let spectrum = b.tensor("spectrum", &[2 * bins], INT16, None);
    let energy = b.tensor("energy", &[bins], UINT32, None);
    let fb_w = b.tensor("filter_bank_weights", &[t.weights.len() as i32], INT16, Some(i16_bytes(&t.weights)));
    let fb_u = b.tensor("filter_bank_unweights", &[t.unweights.len() as i32], INT16, Some(i16_bytes(&t.unweights)));
    let n1 = ch + 1;
    let fb_fs = b.tensor("channel_frequency_starts", &[n1], INT16, Some(i16_bytes(&t.channel_frequency_starts)));
    let fb_ws = b.tensor("channel_weight_starts", &[n1], INT16, Some(i16_bytes(&t.channel_weight_starts)));
    let fb_cw = b.tensor("channel_widths", &[n1], INT16, Some(i16_bytes(&t.channel_widths)));
    let bank = b.tensor("filter_bank", &[ch], UINT64, None);
    let root = b.tensor("filter_bank_sqrt", &[ch], UINT32, None);
    let cleaned = b.tensor("noise_reduced", &[ch], UINT32, None);
    let noise = b.tensor("noise_estimate", &[ch], UINT32, None);
    let lut = b.tensor("pcan_gain_lut", &[t.pcan_lut.len() as i32], INT16, Some(i16_bytes(&t.pcan_lut)));
    let agc = b.tensor("pcan", &[ch], UINT32, None);
    let features = b.tensor("features", &[ch], INT16, None);
    let int8 = b.tensor("features_int8", &[ch], ElemType::I8, None);
    b.model.tensors[features as usize].quant = Some(Quant::per_tensor(1.0, 0));
    b.model.tensors[int8 as usize].quant = Some(Quant::per_tensor(ops::INT8_SCALE, i64::from(ops::INT8_ZERO_POINT)));

    b.custom("SignalWindow", Some(options(|m| m.push("shift", t.window_shift as i32))), &[input, weights], &[windowed]);
    b.custom("SignalFftAutoScale", None, &[windowed], &[scaled, shift]);
    b.custom(
        "SignalRfft",
        Some(options(|m| {
            m.push("T", i32::from(INT16.code()));
            m.push("fft_length", t.fft_length as i32);
        })),
        &[scaled],
        &[spectrum],
    );
    b.custom(
        "SignalEnergy",
        Some(options(|m| {
            m.push("end_index", t.end_index as i32);
            m.push("start_index", t.start_index as i32);
        })),
        &[spectrum],
        &[energy],
    );
    b.custom(
        "SignalFilterBank",
        Some(options(|m| m.push("num_channels", ch))),
        &[energy, fb_w, fb_u, fb_fs, fb_ws, fb_cw],
        &[bank],
    );
    b.custom("SignalFilterBankSquareRoot", None, &[bank, shift], &[root]);
    let ss = fe.spectral_subtraction();
    b.custom(
        "SignalFilterBankSpectralSubtraction",
        Some(options(|m| {
            m.push("alternate_one_minus_smoothing", ss.alternate_one_minus_smoothing as i32);
            m.push("alternate_smoothing", ss.alternate_smoothing as i32);
            m.push("clamping", ss.clamping);
            m.push("min_signal_remaining", ss.min_signal_remaining as i32);
            m.push("num_channels", ch);
            m.push("one_minus_smoothing", ss.one_minus_smoothing as i32);
            m.push("smoothing", ss.smoothing as i32);
            m.push("smoothing_bits", ss.smoothing_bits as i32);
            m.push("spectral_subtraction_bits", ss.spectral_subtraction_bits as i32);
        })),
        &[root],
        &[cleaned, noise],
    );
    b.custom(
        "SignalPCAN",
        Some(options(|m| m.push("snr_shift", PCAN_SNR_SHIFT as i32))),
        &[cleaned, noise, lut],
        &[agc],
    );
    b.custom(
        "SignalFilterBankLog",
        Some(options(|m| {
            m.push("input_correction_bits", t.correction_bits as i32);
            m.push("output_scale", t.log_scale as i32);
        })),
        &[agc],
        &[features],
    );
    b.model.operators.push(Operator { op: OpDef::Quantize, inputs: vec![features], outputs: vec![int8] });
    b.model.inputs = vec![input];
    b.model.outputs = vec![features, int8];
    if t.weights.len() > i16::MAX as usize {
        return Err(SignalError::Model(format!("{} filter-bank weights exceed int16 indexing", t.weights.len())));
    }
    Ok(b.model)
}

/// The serialised `preprocessor.tflite`.
///
/// # Errors
/// [`SignalError::Model`] when the model cannot be built or written.
pub fn preprocessor_tflite(fe: &FrontEnd) -> Result<Vec<u8>, SignalError> {
    preprocessor_model(fe)?.to_bytes().map_err(|e| SignalError::Model(e.to_string()))
}

/// `preprocessor_data.cc` and `preprocessor_data.h` for firmware (symbol
/// `g_preprocessor`), with the arena the caller planned for it.
///
/// # Errors
/// [`SignalError::Model`] when the model cannot be built or written.
pub fn preprocessor_c_array(fe: &FrontEnd, arena_bytes: u64) -> Result<(String, String), SignalError> {
    let bytes = preprocessor_tflite(fe)?;
    let c = fe.config();
    let comment = format!(
        "danas audio front end (TFLM signal ops): {} Hz, window {} ms, stride {} ms, {} channels; one frame of {} int16 samples per invoke",
        c.sample_rate,
        c.window_ms,
        c.stride_ms,
        c.channels,
        c.window_samples()
    );
    Ok(danas_tflite::c_array(&bytes, "g_preprocessor", arena_bytes, &comment))
}
