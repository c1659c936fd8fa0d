//! Deployable model directories: `model.tflite`, `model_data.cc` / `model_data.h`
//! (the model as a C array, `kTensorArenaSize` = the predicted arena with a stated
//! margin), `model_ops.h` (a TFLM op resolver with the model's operators) and
//! `manifest.json` (candidate, class names, preprocessing, operators, predicted
//! resources of the file on the board, accuracies). `docs/deploy.md` shows them in a
//! firmware main.

use std::path::{Path, PathBuf};

use danas_core::Candidate;
use danas_cost::{Cost, Profile};
use danas_tflite::{Model, c_array};
use serde_json::{Value, json};

use crate::SearchError;

/// Name of the model file in a model directory.
pub const MODEL_FILE: &str = "model.tflite";
/// Name of the manifest in a model directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The class names for the manifest: the given ones, or `class 0`, `class 1`, … when
/// they are unknown or do not match the number of classes.
fn class_names(info: &ModelInfo<'_>) -> Vec<String> {
    if info.class_names.len() == info.classes as usize {
        info.class_names.clone()
    } else {
        (0..info.classes).map(|i| format!("class {i}")).collect()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SearchError + '_ {
    move |source| SearchError::Io { path: path.to_path_buf(), source }
}

/// The predicted resources on `profile` of `model`, serialised as `bytes`: the cost
/// model's estimate of the file itself (exact flash size and arena head), planned from
/// the model without parsing the bytes again.
///
/// # Errors
/// [`SearchError::Cost`] when the model is not one the cost model can plan.
pub fn predict(model: &Model, bytes: &[u8], profile: &Profile) -> Result<Cost, SearchError> {
    let cost = |source| SearchError::Cost { what: format!("planning {MODEL_FILE}"), source };
    let graph = danas_cost::graph_of(model, MODEL_FILE).map_err(cost)?;
    let file = danas_cost::TfliteModel { graph, file_bytes: bytes.len() as u64 };
    danas_cost::estimate_tflite(&file, profile).map_err(cost)
}

/// What a model directory describes besides the model itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo<'a> {
    /// The candidate the model implements.
    pub candidate: &'a Candidate,
    /// Number of classes.
    pub classes: u32,
    /// Accuracies and other metrics, e.g. `test_accuracy`, `int8_test_accuracy`.
    pub metrics: Value,
    /// Calibration images of the quantisation.
    pub calib_images: usize,
    /// The classes' names, by output index (empty when unknown: the manifest then
    /// names them by index).
    pub class_names: Vec<String>,
}

/// Name of the op resolver header in a model directory.
pub const OPS_HEADER: &str = "model_ops.h";
/// Name of the header with the input size and class names in a model directory.
pub const INFO_HEADER: &str = "model_info.h";

/// How firmware turns a camera image into the model's input, in words and as numbers
/// (the manifest's `preprocessing`): the evaluation transform of danas-data, then
/// danas's int8 input encoding (scale 2/255, zero point −1: `q = p − 128`).
pub fn preprocessing(candidate: &Candidate, model: &Model) -> Value {
    let r = candidate.data.resolution;
    let gray = candidate.data.color == danas_core::Color::Grayscale;
    let input = model.inputs.first().and_then(|&i| model.tensors.get(i as usize));
    let scale = input.and_then(|t| t.quant.as_ref()).and_then(|q| q.scale.first().copied());
    let zero = input.and_then(|t| t.quant.as_ref()).and_then(|q| q.zero_point.first().copied());
    let mut words = format!(
        "Resize the image so that its shorter side is {r} px (Lanczos3 filter, area-aware when shrinking), \
         then take the centred {r}x{r} crop. "
    );
    if gray {
        words.push_str(
            "Convert to one grey channel Y = 0.299 R + 0.587 G + 0.114 B (BT.601), rounded to 0..255. \
             Each value p becomes the int8 input p - 128 (NHWC, 1 channel).",
        );
    } else {
        words
            .push_str("Keep the RGB channels in that order; each 8-bit value p becomes the int8 input p - 128 (NHWC).");
    }
    json!({
        "description": words,
        "resize": {"shorter_side": r, "filter": "lanczos3", "crop": "centre", "width": r, "height": r},
        "color": candidate.data.color.to_string(),
        "channels": if gray { 1 } else { 3 },
        "layout": "NHWC",
        "grayscale_weights": if gray { json!(danas_data_weights()) } else { Value::Null },
        "pixel_to_real": {"scale": 2.0 / 255.0, "offset": -1.0},
        "input_scale": scale,
        "input_zero_point": zero,
        "pixel_to_int8": "q = p - 128",
    })
}

/// ITU-R BT.601 luma weights (the grayscale conversion of danas-data's transforms).
fn danas_data_weights() -> [f64; 3] {
    [0.299, 0.587, 0.114]
}

/// Writes `dir/model.tflite`, `dir/model_data.cc`, `dir/model_data.h`,
/// `dir/model_ops.h` and `dir/manifest.json` for an int8 model; returns the predicted
/// cost.
///
/// # Errors
/// [`SearchError::Io`] naming the file that could not be written,
/// [`SearchError::Tflite`] when the model cannot be serialised, [`SearchError::Cost`]
/// when it cannot be planned.
pub fn write_model_dir(
    dir: &Path,
    model: &Model,
    profile: &Profile,
    info: &ModelInfo<'_>,
) -> Result<Cost, SearchError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let bytes = model
        .to_bytes()
        .map_err(|source| SearchError::Tflite { what: dir.join(MODEL_FILE).display().to_string(), source })?;
    let cost = predict(model, &bytes, profile)?;
    let path: PathBuf = dir.join(MODEL_FILE);
    std::fs::write(&path, &bytes).map_err(io(&path))?;
    let comment = format!(
        "danas int8 model of {} ({} classes); arena predicted for {}: head {} + tail {} bytes",
        info.candidate, info.classes, profile.name, cost.tflm_head_bytes, cost.tail_bytes
    );
    let (header, source) = c_array(&bytes, "g_model_data", cost.arena_bytes, &comment);
    let ops_header = danas_tflite::resolver_header(model, &comment)
        .map_err(|source| SearchError::Tflite { what: dir.join(OPS_HEADER).display().to_string(), source })?;
    let r = info.candidate.data.resolution;
    let info_h = danas_tflite::info_header(r, r, info.candidate.data.color.channels(), &class_names(info), &comment);
    for (name, text) in
        [("model_data.h", header), ("model_data.cc", source), (OPS_HEADER, ops_header), (INFO_HEADER, info_h)]
    {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(io(&p))?;
    }
    let quant_of = |id: Option<&i32>| {
        id.and_then(|&i| model.tensors.get(i as usize)).map(|t| {
            json!({
                "shape": t.shape,
                "scale": t.quant.as_ref().and_then(|q| q.scale.first()),
                "zero_point": t.quant.as_ref().and_then(|q| q.zero_point.first()),
            })
        })
    };
    let manifest = json!({
        "format": "danas-model/1",
        "candidate": info.candidate.to_string(),
        "data": {"resolution": info.candidate.data.resolution, "color": info.candidate.data.color.to_string()},
        "arch": {"alpha": info.candidate.arch.alpha, "depths": info.candidate.arch.depths},
        "classes": info.classes,
        "class_names": class_names(info),
        "files": {"model": MODEL_FILE, "c_source": "model_data.cc", "c_header": "model_data.h", "ops_header": OPS_HEADER, "info_header": INFO_HEADER},
        "ops": danas_tflite::op_names(model),
        "tensor_arena_size": danas_tflite::arena_size_with_margin(cost.arena_bytes),
        "tensor_arena_margin": format!(
            "kTensorArenaSize = predicted arena_bytes + {} % (at least {} bytes) + {} bytes alignment slack, rounded up to 16",
            danas_tflite::ARENA_MARGIN_PERCENT,
            danas_tflite::ARENA_MARGIN_MIN_BYTES,
            danas_tflite::ARENA_ALIGN_SLACK_BYTES
        ),
        "preprocessing": preprocessing(info.candidate, model),
        "input": quant_of(model.inputs.first()),
        "input_encoding": "NHWC int8: pixel p (0..255) as p - 128",
        "output": quant_of(model.outputs.first()),
        "softmax": model.operators.last().is_some_and(|o| matches!(o.op, danas_tflite::OpDef::Softmax { .. })),
        "calibration_images": info.calib_images,
        "predicted": {
            "mcu": profile.name,
            "arena_head_bytes": cost.tflm_head_bytes,
            "arena_tail_bytes": cost.tail_bytes,
            "arena_bytes": cost.arena_bytes,
            "model_bytes": cost.model_bytes,
            "flash_bytes": cost.flash_bytes,
            "latency_ms": cost.latency_ms,
            "macs": cost.macs,
            "params": cost.params,
        },
        "metrics": info.metrics,
    });
    let p = dir.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest).map_err(|source| SearchError::Json {
        path: p.clone(),
        what: "manifest".into(),
        source,
    })?;
    std::fs::write(&p, text + "\n").map_err(io(&p))?;
    Ok(cost)
}
