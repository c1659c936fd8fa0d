//! Cost of an audio front end that runs as its own TFLite model of TFLM's signal ops
//! (`preprocessor.tflite`, one frame per invocation): its arena head (TFLM's greedy plan
//! of its tensors and the RFFT's scratch buffer), tail, flash and latency per frame, and
//! the feature buffer the network reads.

use danas_tflite::{ElemType, Model, OpDef};
use serde::{Deserialize, Serialize};

use crate::plan::{Buffer, align16, greedy_plan};
use crate::{CostError, Profile};

/// Flash of the signal kernels' code (window, FFT, energy, filter bank, square root,
/// noise reduction, PCAN, log, quantize), assumed: KISS FFT and the eight small
/// kernels, not measured on a board.
pub const SIGNAL_KERNELS_FLASH_BYTES: u64 = 12 * 1024;

/// What the preprocessor costs on one MCU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessorCost {
    /// TFLM arena head: the greedy plan of its activation tensors and kernel scratch.
    pub head_bytes: u64,
    /// Estimated arena tail (persistent: op data, the FFT's twiddles, the noise state).
    pub tail_bytes: u64,
    /// head + tail.
    pub arena_bytes: u64,
    /// Size of the `.tflite` file.
    pub model_bytes: u64,
    /// Model plus [`SIGNAL_KERNELS_FLASH_BYTES`].
    pub flash_bytes: u64,
    /// Estimated latency of one frame in ms (element operations × the profile's cycles
    /// per element; not calibrated on a board).
    pub latency_ms_per_frame: f64,
    /// The int8 feature buffer the network reads: frames × channels bytes.
    pub feature_buffer_bytes: u64,
}

impl PreprocessorCost {
    /// RAM on the board when the front end and a network of `model_arena_bytes` run
    /// together: two TFLM interpreters with their own arenas (the front end's holds its
    /// noise state between frames, so its arena is never lent to the network) plus the
    /// feature buffer the front end fills frame by frame and the network reads.
    pub fn ram_with_model(&self, model_arena_bytes: u64) -> u64 {
        self.arena_bytes + self.feature_buffer_bytes + model_arena_bytes
    }

    /// Flash with a network of `model_flash_bytes` (model file plus its runtime code):
    /// the preprocessor's model and signal kernels on top.
    pub fn flash_with_model(&self, model_flash_bytes: u64) -> u64 {
        self.flash_bytes + model_flash_bytes
    }
}

fn elem_bytes(ty: ElemType) -> u64 {
    match ty {
        ElemType::F32 | ElemType::I32 => 4,
        ElemType::I8 => 1,
        // TFLite codes: FLOAT16 1, UINT8 3, INT64 4, BOOL 6, INT16 7, FLOAT64 10,
        // UINT64 12, UINT32 15, UINT16 16.
        ElemType::Other(1 | 7 | 16) => 2,
        ElemType::Other(3 | 6) => 1,
        ElemType::Other(4 | 10 | 12) => 8,
        ElemType::Other(15) => 4,
        ElemType::Other(_) => 4,
    }
}

fn custom(op: &OpDef) -> &str {
    match op {
        OpDef::Custom { name, .. } => name,
        _ => "",
    }
}

/// Estimates a preprocessor model of `model_bytes` bytes whose features fill a
/// `frames × channels` int8 buffer.
///
/// The head follows TFLM's rules: each non-constant tensor lives from the op that
/// writes it (the subgraph inputs from the start) to its last reader (the outputs to
/// the end), `SignalRfft` requests a scratch buffer of its FFT length in input elements
/// for its own op, and the buffers go through [`greedy_plan`].
///
/// # Errors
/// [`CostError::InvalidTflite`] when an operator references a tensor that does not exist.
pub fn estimate_preprocessor(
    model: &Model,
    model_bytes: u64,
    frames: u32,
    profile: &Profile,
) -> Result<PreprocessorCost, CostError> {
    let bad = |reason: String| CostError::InvalidTflite { origin: "preprocessor".into(), reason };
    let n = model.tensors.len();
    let tensor = |id: i32| -> Result<usize, CostError> {
        usize::try_from(id).ok().filter(|&i| i < n).ok_or_else(|| bad(format!("tensor {id} out of range ({n})")))
    };
    let (mut first, mut last) = (vec![-1i64; n], vec![-1i64; n]);
    for &i in &model.inputs {
        let i = tensor(i)?;
        first[i] = 0;
        last[i] = last[i].max(0);
    }
    let n_ops = model.operators.len();
    for (k, op) in model.operators.iter().enumerate() {
        let t = k as i64 + 1;
        for &o in &op.outputs {
            let o = tensor(o)?;
            if first[o] < 0 {
                first[o] = t;
            }
            last[o] = last[o].max(t);
        }
        for &i in op.inputs.iter().filter(|&&i| i >= 0) {
            let i = tensor(i)?;
            last[i] = last[i].max(t);
        }
    }
    for &o in &model.outputs {
        let o = tensor(o)?;
        last[o] = last[o].max(n_ops as i64);
    }
    let mut buffers = Vec::new();
    for (i, t) in model.tensors.iter().enumerate() {
        if t.data.is_some() || first[i] < 0 || last[i] < 0 {
            continue;
        }
        let bytes = t.elements() as u64 * elem_bytes(t.ty);
        if bytes > 0 {
            buffers.push(Buffer { size: align16(bytes), first: first[i] as u32, last: last[i] as u32 });
        }
    }
    // Per-op persistent data on the host build's layout, and the element work per frame.
    let p = u64::from(profile.pointer_bytes);
    let mut persistent = 0u64;
    let mut work = 0f64;
    let mut channels = 0u64;
    for (k, op) in model.operators.iter().enumerate() {
        let t = k as u32 + 1;
        let elems = |ids: &[i32], at: usize| -> u64 {
            ids.get(at)
                .and_then(|&i| usize::try_from(i).ok())
                .and_then(|i| model.tensors.get(i))
                .map_or(0, |t| t.elements() as u64)
        };
        let (out, inp) = (elems(&op.outputs, 0), elems(&op.inputs, 0));
        match custom(&op.op) {
            "SignalWindow" => {
                persistent += align16(8);
                work += out as f64;
            }
            "SignalFftAutoScale" => work += 2.0 * out as f64,
            "SignalRfft" => {
                // Output: (N/2 + 1) complex int16 values.
                let fft = out.saturating_sub(2);
                let in_bytes = op
                    .inputs
                    .first()
                    .and_then(|&i| usize::try_from(i).ok())
                    .and_then(|i| model.tensors.get(i))
                    .map_or(2, |t| elem_bytes(t.ty));
                buffers.push(Buffer { size: align16(fft * in_bytes), first: t, last: t });
                // KISS FFT state: the real-FFT header (3 pointers), the complex state (two
                // ints, 64 factors, N/2 twiddles), a buffer of N/2 and N/4 super twiddles.
                let half = fft / 2;
                let state = 3 * p + (8 + 256 + 4 * half) + 4 * (half * 3 / 2);
                persistent += align16(16 + 4 + 2 * p + 8) + align16(state);
                work += 5.0 * fft as f64 * (fft.max(2) as f64).log2() / 2.0;
            }
            "SignalEnergy" => {
                persistent += align16(8);
                work += out as f64;
            }
            "SignalFilterBank" => {
                channels = out;
                persistent += align16(8 + 5 * p + 8 + p) + align16((out + 1) * 8);
                work += 2.0 * inp as f64;
            }
            "SignalFilterBankSquareRoot" => work += 32.0 * out as f64,
            "SignalFilterBankSpectralSubtraction" => {
                persistent += align16(40 + 2 * p) + align16(out * 4);
                work += 4.0 * out as f64;
            }
            "SignalPCAN" => {
                persistent += align16(4);
                work += 8.0 * out as f64;
            }
            "SignalFilterBankLog" => {
                persistent += align16(8);
                work += 12.0 * out as f64;
            }
            _ => {
                persistent += align16(16);
                work += out as f64;
            }
        }
    }
    let head = greedy_plan(&buffers).head;
    // Runtime bookkeeping as for any model: per tensor a TfLiteEvalTensor, per op a node
    // and registration, per subgraph input/output a TfLiteTensor, and a fixed part (the
    // models' 250 B + 32 pointers, plus 86 B fitted on the four front ends of
    // danas-signal's tests/tflm.rs, where the rest of the structure left a constant 86 B
    // on the 64-bit host).
    let eval_tensor = 2 * p + p.max(4);
    let io = (model.inputs.len() + model.outputs.len()) as u64;
    let tail = 336 + 32 * p + n as u64 * eval_tensor + n_ops as u64 * 8 * p + io * 8 * p + persistent;
    let cycles = work * profile.cycles_per_element + n_ops as f64 * profile.per_op_cycles;
    Ok(PreprocessorCost {
        head_bytes: head,
        tail_bytes: tail,
        arena_bytes: head + tail,
        model_bytes,
        flash_bytes: model_bytes + SIGNAL_KERNELS_FLASH_BYTES,
        latency_ms_per_frame: cycles / (profile.clock_mhz * 1e3),
        feature_buffer_bytes: u64::from(frames) * channels,
    })
}
