//! Reading format-2 studies, whose costs and metrics were free JSON objects.

use danas_core::{Costs, Metrics};
use serde_json::Value;

/// Costs from a format-2 `costs` object: the known keys into their fields,
/// every other number into `detail` (`peak_layer`, an index, is dropped:
/// `peak_op` names the op).
pub(super) fn costs(v: &Value) -> Costs {
    let mut c = Costs::default();
    let Some(obj) = v.as_object() else { return c };
    let bytes = |x: &Value| x.as_f64().map(|f| f.max(0.0).round() as u64);
    for (k, x) in obj {
        match k.as_str() {
            "arena_bytes" => c.arena_bytes = bytes(x).unwrap_or(0),
            "flash_bytes" => c.flash_bytes = bytes(x).unwrap_or(0),
            "latency_ms" => c.latency_ms = x.as_f64(),
            "macs" => c.macs = bytes(x),
            "params" => c.params = bytes(x),
            "peak_op" => c.peak_op = x.as_str().map(str::to_string),
            "precision" => c.precision = x.as_str().and_then(|p| p.parse().ok()),
            "mcu" => c.mcu = x.as_str().map(str::to_string),
            "peak_layer" => {}
            _ => {
                if let Some(f) = x.as_f64() {
                    c.detail.insert(k.clone(), f);
                }
            }
        }
    }
    c
}

/// Metrics from a format-2 `metrics` object, with the final stage's checkpoint
/// and model folder that it held as strings.
pub(super) fn metrics(v: &Value) -> (Metrics, Option<String>, Option<String>) {
    let mut m = Metrics::new();
    let (mut checkpoint, mut model_dir) = (None, None);
    for (k, x) in v.as_object().into_iter().flatten() {
        match (k.as_str(), x) {
            ("final_checkpoint", Value::String(s)) => checkpoint = Some(s.clone()),
            ("model_dir", Value::String(s)) => model_dir = Some(s.clone()),
            (_, x) => {
                if let Some(f) = x.as_f64() {
                    m.insert(k.clone(), f);
                }
            }
        }
    }
    (m, checkpoint, model_dir)
}
