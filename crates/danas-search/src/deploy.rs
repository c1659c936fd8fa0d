//! Deployable model directories: `model.tflite`, `model_data.cc` / `model_data.h`
//! (the model as a C array with the predicted `kTensorArenaSize`) and `manifest.json`
//! (candidate, predicted resources of the file on the board, accuracies).

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
}

/// Writes `dir/model.tflite`, `dir/model_data.cc`, `dir/model_data.h` and
/// `dir/manifest.json` for an int8 model; returns the predicted cost.
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
    for (name, text) in [("model_data.h", header), ("model_data.cc", source)] {
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
        "files": {"model": MODEL_FILE, "c_source": "model_data.cc", "c_header": "model_data.h"},
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
