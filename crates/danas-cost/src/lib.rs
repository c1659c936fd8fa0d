//! # danas-cost
//!
//! MCU cost models over danas' layer-graph IR ([`danas_core::Graph`]): MACs, parameters,
//! flash, the TensorFlow Lite Micro tensor-arena head (its `GreedyMemoryPlanner`
//! reproduced exactly), the arena tail, kernel scratch buffers, the live-set lower bound,
//! an in-place-depthwise planner and latency, with a per-layer breakdown; MCU
//! [`Profile`]s (a built-in [`catalogue`] and TOML files); a [`Limits`] feasibility
//! check; least-squares latency [`calibrate`]; and a `.tflite` reader ([`read_tflite`]).
//!
//! ```
//! use danas_core::{Arch, Candidate, Color, DataConfig, Precision};
//! use danas_cost::{Limits, Profile, estimate};
//!
//! let cand = Candidate::new(DataConfig::new(96, Color::Rgb), Arch::mobilenet_v2(0.35, [3, 4, 3, 3, 1]));
//! let graph = cand.blueprint(2)?.to_graph(Precision::Int8);
//! let mcu = Profile::builtin("nucleo-h743")?;
//! let cost = estimate(&graph, &mcu)?;
//! assert!(cost.tflm_head_bytes >= cost.live_bound_bytes);
//! let verdict = cost.check(&mcu.limits());
//! println!("{} MACs, head {} B, fits: {}", cost.macs, cost.tflm_head_bytes, verdict.is_feasible());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod calibrate;
mod error;
mod lower;
mod paper;
mod plan;
mod preprocessor;
mod profile;
mod profile_toml;
mod tflite;

use danas_core::{Blueprint, Candidate, Graph, Precision};
pub use danas_core::{Costs, Feasibility, Limits, Violation};
use serde::{Deserialize, Serialize};

pub use calibrate::{Calibration, CalibrationSample, Fit, calibrate, calibrate_with, parse_calibration_csv};
pub use error::CostError;
pub use paper::{PaperEstimate, paper_estimate};
pub use plan::{Buffer, Plan, align16, greedy_plan, live_bound};
pub use preprocessor::{PreprocessorCost, SIGNAL_KERNELS_FLASH_BYTES, estimate_preprocessor};
pub use profile::{CyclesPerMac, Kernels, Profile, arena_reserve, catalogue};
pub use tflite::{TfliteModel, graph_of, read_tflite, read_tflite_file};

use lower::{Net, OpClass, OpDesc, Workspace};

/// The per-layer breakdown: one row per op of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerCost {
    /// The op's name in the graph.
    pub name: String,
    /// The runtime's op name (`CONV_2D`, `MEAN`, …).
    pub op: String,
    /// Multiply-accumulates.
    pub macs: u64,
    /// Weights and biases read by the op.
    pub params: u64,
    /// Bytes of all buffers live while the op runs (16-byte rounded, scratch included).
    pub live_bytes: u64,
    /// Scratch bytes the op's kernels request (included in `live_bytes`).
    pub scratch_bytes: u64,
    /// Estimated latency in ms (0 when not estimated).
    pub latency_ms: f64,
    /// Whether MACs and latency are estimated for this op kind.
    pub estimated: bool,
}

/// Everything the cost model says about one model on one MCU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Multiply-accumulates of the estimated ops.
    pub macs: u64,
    /// Weights and biases (BatchNorm folded).
    pub params: u64,
    /// Size of the model file (estimated, or exact for an imported `.tflite`).
    pub model_bytes: u64,
    /// Device flash: model plus the profile's runtime code.
    pub flash_bytes: u64,
    /// The TFLM `GreedyMemoryPlanner` head: activations and kernel scratch buffers.
    pub tflm_head_bytes: u64,
    /// Estimated arena tail (persistent runtime structures) for the profile's pointer size.
    pub tail_bytes: u64,
    /// Largest total scratch of one op (part of the head).
    pub scratch_bytes: u64,
    /// Arena the firmware must provide: head + tail.
    pub arena_bytes: u64,
    /// Live-set lower bound of the head.
    pub live_bound_bytes: u64,
    /// Head of the in-place-depthwise planner (a TinyEngine-style runtime).
    pub inplace_peak_bytes: u64,
    /// Live-set bound with in-place depthwise.
    pub inplace_live_bound_bytes: u64,
    /// Estimated latency in ms.
    pub latency_ms: f64,
    /// Index into `layers` of the op where the live set peaks (None for an empty graph).
    pub peak_layer: Option<usize>,
    /// Names of op kinds whose MACs and latency are not estimated (never counted as 0 silently).
    pub not_estimated: Vec<String>,
    /// Per-op breakdown (empty from the fast path [`estimate_blueprint`]).
    pub layers: Vec<LayerCost>,
}

impl Cost {
    /// Checks this cost against `limits` ([`Cost::arena_bytes`], [`Cost::flash_bytes`]
    /// and, when limited, [`Cost::latency_ms`]), listing every limit exceeded.
    pub fn check(&self, limits: &Limits) -> Feasibility {
        limits.check_values(self.arena_bytes as f64, self.flash_bytes as f64, Some(self.latency_ms))
    }

    /// The estimate in the search's vocabulary: arena, flash, latency, MACs,
    /// parameters and the peak op, with the TFLM breakdown (`model_bytes`,
    /// `tflm_head_bytes`, `tail_bytes`, `scratch_bytes`, `live_bound_bytes`,
    /// `inplace_peak_bytes`, `inplace_live_bound_bytes`) as named detail.
    pub fn costs(&self) -> Costs {
        let detail = [
            ("model_bytes", self.model_bytes),
            ("tflm_head_bytes", self.tflm_head_bytes),
            ("tail_bytes", self.tail_bytes),
            ("scratch_bytes", self.scratch_bytes),
            ("live_bound_bytes", self.live_bound_bytes),
            ("inplace_peak_bytes", self.inplace_peak_bytes),
            ("inplace_live_bound_bytes", self.inplace_live_bound_bytes),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v as f64))
        .collect();
        Costs {
            arena_bytes: self.arena_bytes,
            flash_bytes: self.flash_bytes,
            latency_ms: Some(self.latency_ms),
            macs: Some(self.macs),
            params: Some(self.params),
            peak_op: self.peak_layer.and_then(|i| self.layers.get(i)).map(|l| l.name.clone()),
            precision: None,
            mcu: None,
            detail,
        }
    }
}

fn op_cycles(d: &OpDesc, p: &Profile) -> Option<f64> {
    let c = &p.cycles_per_mac;
    let compute = match d.class {
        OpClass::Conv1x1 => d.macs as f64 * c.conv1x1,
        OpClass::Conv => d.macs as f64 * c.conv,
        OpClass::Depthwise => d.macs as f64 * c.depthwise,
        OpClass::Fc => d.macs as f64 * c.fc,
        OpClass::Elementwise => d.elements as f64 * p.cycles_per_element,
        OpClass::Other => return None,
    };
    Some(compute + p.per_op_cycles)
}

/// The latency features of a model: MACs per op class and element/ops counts, the
/// inputs of latency calibration.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencyFeatures {
    /// MACs of 1×1 convolutions.
    pub conv1x1_macs: f64,
    /// MACs of k×k dense convolutions.
    pub conv_macs: f64,
    /// MACs of depthwise convolutions.
    pub depthwise_macs: f64,
    /// MACs of fully connected layers.
    pub fc_macs: f64,
    /// Elements processed by element-wise ops, pools, MEAN and softmax.
    pub elements: f64,
    /// Number of estimated ops.
    pub ops: f64,
}

impl LatencyFeatures {
    /// The cycles `profile`'s latency model gives a model with these features
    /// (latency in ms is this over `profile.clock_mhz × 1000`).
    pub fn cycles(&self, profile: &Profile) -> f64 {
        let c = &profile.cycles_per_mac;
        self.conv1x1_macs * c.conv1x1
            + self.conv_macs * c.conv
            + self.depthwise_macs * c.depthwise
            + self.fc_macs * c.fc
            + self.elements * profile.cycles_per_element
            + self.ops * profile.per_op_cycles
    }
}

fn features_of(net: &Net) -> LatencyFeatures {
    let mut f = LatencyFeatures::default();
    for d in &net.descs {
        match d.class {
            OpClass::Conv1x1 => f.conv1x1_macs += d.macs as f64,
            OpClass::Conv => f.conv_macs += d.macs as f64,
            OpClass::Depthwise => f.depthwise_macs += d.macs as f64,
            OpClass::Fc => f.fc_macs += d.macs as f64,
            OpClass::Elementwise => f.elements += d.elements as f64,
            OpClass::Other => continue,
        }
        f.ops += 1.0;
    }
    f
}

/// The latency features of a graph (see [`calibrate`]).
///
/// # Errors
/// [`CostError::InvalidGraph`] for dangling tensor ids.
pub fn latency_features(graph: &Graph) -> Result<LatencyFeatures, CostError> {
    Ok(features_of(&lower::from_graph(graph)?))
}

fn summarize(ws: &mut Workspace, profile: &Profile, model_bytes: Option<u64>) -> Cost {
    let planned = lower::plan(ws, profile.kernels);
    let net = &ws.net;
    let macs = net.descs.iter().filter(|d| d.class != OpClass::Other).map(|d| d.macs).sum();
    let params = net.descs.iter().map(|d| d.params).sum();
    let model_bytes = model_bytes.unwrap_or_else(|| net.stats.model_bytes());
    let cycles: f64 = net.descs.iter().filter_map(|d| op_cycles(d, profile)).sum();
    // The reference kernels' scratch handles are part of their ops' fitted tail.
    let reference_scratch = net.descs.iter().flat_map(|d| d.scratch_ref).filter(|&s| s > 0).count() as u64;
    let extra_scratch = planned.scratch_buffers.saturating_sub(reference_scratch);
    let tail = net.stats.tail_bytes(profile.pointer_bytes, extra_scratch);
    Cost {
        macs,
        params,
        model_bytes,
        flash_bytes: model_bytes + profile.runtime_flash_bytes,
        tflm_head_bytes: planned.head,
        tail_bytes: tail,
        scratch_bytes: planned.scratch_max,
        arena_bytes: planned.head + tail,
        live_bound_bytes: planned.live_bound,
        inplace_peak_bytes: planned.inplace_head,
        inplace_live_bound_bytes: planned.inplace_live_bound,
        latency_ms: cycles / (profile.clock_mhz * 1000.0),
        peak_layer: (!net.descs.is_empty()).then(|| (planned.live_time.max(1) - 1) as usize),
        not_estimated: Vec::new(),
        layers: Vec::new(),
    }
}

fn estimate_with_bytes(graph: &Graph, profile: &Profile, model_bytes: Option<u64>) -> Result<Cost, CostError> {
    let mut ws = Workspace::default();
    ws.net = lower::from_graph(graph)?;
    let mut cost = summarize(&mut ws, profile, model_bytes);
    let mut not_est: Vec<String> = Vec::new();
    for (i, (op, d)) in graph.ops.iter().zip(&ws.net.descs).enumerate() {
        let estimated = d.class != OpClass::Other;
        if !estimated && !not_est.iter().any(|n| n == op.kind.name()) {
            not_est.push(op.kind.name().to_string());
        }
        let cmsis = matches!(profile.kernels, Kernels::CmsisNn | Kernels::InPlace);
        let scratch: u64 =
            d.scratch_ref.iter().map(|&s| align16(s)).sum::<u64>() + if cmsis { align16(d.scratch_cmsis) } else { 0 };
        cost.layers.push(LayerCost {
            name: op.name.clone(),
            op: op.kind.name().to_string(),
            macs: if estimated { d.macs } else { 0 },
            params: d.params,
            live_bytes: ws.live_at().get(i + 1).copied().unwrap_or(0),
            scratch_bytes: scratch,
            latency_ms: op_cycles(d, profile).map_or(0.0, |c| c / (profile.clock_mhz * 1000.0)),
            estimated,
        });
    }
    cost.not_estimated = not_est;
    Ok(cost)
}

/// Estimates a graph on `profile`, with the per-layer breakdown. The precision is the
/// graph's own (its tensors' element types); see [`estimate_candidate`] to choose it.
///
/// # Errors
/// [`CostError::InvalidGraph`] when an op references a tensor that does not exist.
pub fn estimate(graph: &Graph, profile: &Profile) -> Result<Cost, CostError> {
    estimate_with_bytes(graph, profile, None)
}

/// Estimates an imported `.tflite` model: like [`estimate`], with the exact file size
/// as the model size.
///
/// # Errors
/// As [`estimate`].
pub fn estimate_tflite(model: &TfliteModel, profile: &Profile) -> Result<Cost, CostError> {
    estimate_with_bytes(&model.graph, profile, Some(model.file_bytes))
}

/// Estimates a candidate for `classes` outputs at `precision`, with the per-layer breakdown.
///
/// # Errors
/// [`CostError::Candidate`] when the candidate is invalid.
pub fn estimate_candidate(
    cand: &Candidate,
    classes: u32,
    profile: &Profile,
    precision: Precision,
) -> Result<Cost, CostError> {
    let graph = cand.blueprint(classes)?.to_graph(precision);
    estimate(&graph, profile)
}

/// A reusable estimator for many blueprints: the fast path used by the search gate.
/// Gives the same numbers as [`estimate`] on [`Blueprint::to_graph`], without the
/// per-layer breakdown and without allocating per candidate.
#[derive(Debug, Default)]
pub struct Estimator {
    ws: Workspace,
}

impl Estimator {
    /// A new estimator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Estimates `bp` at `precision` on `profile` (no per-layer breakdown).
    pub fn estimate_blueprint(&mut self, bp: &Blueprint, profile: &Profile, precision: Precision) -> Cost {
        lower::from_blueprint(bp, precision, &mut self.ws.net);
        summarize(&mut self.ws, profile, None)
    }
}

/// One-shot form of [`Estimator::estimate_blueprint`].
pub fn estimate_blueprint(bp: &Blueprint, profile: &Profile, precision: Precision) -> Cost {
    Estimator::new().estimate_blueprint(bp, profile, precision)
}

/// Estimates many candidates in parallel (rayon) with the fast path; each result is
/// the candidate's cost or the reason its blueprint could not be built.
pub fn estimate_many(
    cands: &[Candidate],
    classes: u32,
    profile: &Profile,
    precision: Precision,
) -> Vec<Result<Cost, CostError>> {
    use rayon::prelude::*;
    cands
        .par_iter()
        .map_init(Estimator::new, |est, c| {
            let bp = c.blueprint(classes)?;
            Ok(est.estimate_blueprint(&bp, profile, precision))
        })
        .collect()
}

#[cfg(test)]
mod tests;
