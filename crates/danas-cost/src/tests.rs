#![allow(clippy::unwrap_used, clippy::expect_used)]

use danas_core::{Arch, Candidate, Color, DataConfig, Precision};

use super::*;

fn cand(res: u32, color: Color, alpha: f64, depths: [u32; 5]) -> Candidate {
    Candidate::new(DataConfig::new(res, color), Arch::mobilenet_v2(alpha, depths))
}

#[test]
fn mobilenet_v2_mac_and_weight_fixtures() {
    // TF-slim table (1001 classes): MACs truncated to millions.
    let host = Profile::builtin("host").unwrap();
    for (alpha, mmacs) in [(1.0, 300u64), (0.35, 59), (0.5, 97)] {
        let c =
            estimate_candidate(&cand(224, Color::Rgb, alpha, [3, 4, 3, 3, 1]), 1001, &host, Precision::Int8).unwrap();
        assert_eq!(c.macs / 1_000_000, mmacs, "alpha {alpha}");
    }
    // Params = slim weights + one bias per conv channel + FC bias (BatchNorm folded).
    let bp = cand(224, Color::Rgb, 1.0, [3, 4, 3, 3, 1]).blueprint(1001).unwrap();
    let biases: u64 = bp.named_convs().iter().map(|(_, c)| u64::from(c.out_ch)).sum::<u64>() + 1001;
    let c = estimate(&bp.to_graph(Precision::Int8), &host).unwrap();
    assert_eq!(c.params, 3_471_040 + biases);
}

#[test]
fn fast_path_equals_graph_path() {
    let profiles = [Profile::builtin("host").unwrap(), Profile::builtin("nucleo-h743").unwrap()];
    let mut est = Estimator::new();
    let mut n = 0;
    for res in [32, 33, 96, 161] {
        for color in Color::ALL {
            for alpha in [0.1, 0.25, 0.35, 0.75, 1.0, 1.4] {
                for depths in [[0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [3, 4, 3, 3, 1], [2, 3, 1, 2, 0], [3, 4, 3, 3, 0]] {
                    for precision in [Precision::Int8, Precision::F16, Precision::F32] {
                        let c = cand(res, color, alpha, depths);
                        let bp = c.blueprint(3).unwrap();
                        for p in &profiles {
                            let slow = estimate(&bp.to_graph(precision), p).unwrap();
                            let fast = est.estimate_blueprint(&bp, p, precision);
                            assert_eq!(Cost { layers: Vec::new(), ..slow.clone() }, fast, "{c} {precision}");
                            n += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(n > 1000);
}

#[test]
fn breakdown_names_the_peak_and_sums() {
    let host = Profile::builtin("host").unwrap();
    let c = estimate_candidate(&cand(96, Color::Rgb, 0.35, [3, 4, 3, 3, 1]), 2, &host, Precision::Int8).unwrap();
    assert_eq!(c.layers.iter().map(|l| l.macs).sum::<u64>(), c.macs);
    assert_eq!(c.layers.iter().map(|l| l.params).sum::<u64>(), c.params);
    let peak = c.peak_layer.unwrap();
    assert_eq!(c.layers[peak].live_bytes, c.live_bound_bytes);
    assert!(c.layers.iter().all(|l| l.live_bytes <= c.live_bound_bytes));
    assert!(c.not_estimated.is_empty());
    let lat: f64 = c.layers.iter().map(|l| l.latency_ms).sum();
    assert!((lat - c.latency_ms).abs() < 1e-9 * c.latency_ms.max(1.0));
    // int8 MEAN requests an int32 sum buffer and two small index buffers.
    let mean = c.layers.iter().find(|l| l.op == "MEAN").unwrap();
    assert_eq!(mean.scratch_bytes, 1280 * 4 + 16 + 16);
}

#[test]
fn precision_scales_bytes() {
    let host = Profile::builtin("host").unwrap();
    let c = cand(64, Color::Rgb, 0.5, [3, 4, 3, 3, 1]);
    let i8c = estimate_candidate(&c, 2, &host, Precision::Int8).unwrap();
    let f16 = estimate_candidate(&c, 2, &host, Precision::F16).unwrap();
    let f32c = estimate_candidate(&c, 2, &host, Precision::F32).unwrap();
    assert_eq!(i8c.macs, f32c.macs);
    assert!(f32c.model_bytes > 2 * i8c.model_bytes);
    assert!(f16.tflm_head_bytes > i8c.tflm_head_bytes && f32c.tflm_head_bytes > f16.tflm_head_bytes);
    assert!(f32c.live_bound_bytes >= 4 * (i8c.live_bound_bytes - 5200));
}

#[test]
fn cmsis_scratch_only_when_linked() {
    let c = cand(96, Color::Rgb, 0.35, [3, 4, 3, 3, 1]);
    let mut p = Profile::builtin("nucleo-h743").unwrap();
    assert_eq!(p.kernels, Kernels::CmsisNn);
    let cm = estimate_candidate(&c, 2, &p, Precision::Int8).unwrap();
    p.kernels = Kernels::TflmReference;
    let rf = estimate_candidate(&c, 2, &p, Precision::Int8).unwrap();
    // The stem (3x3, C_in 3) needs 2 * align4(27) * 2 = 112 bytes of im2col with CMSIS-NN.
    assert_eq!(cm.layers[0].scratch_bytes, 112);
    assert_eq!(rf.layers[0].scratch_bytes, 0);
    // 1x1 stride-1 convs and 3x3 depthwise convs need none.
    assert!(cm.layers.iter().filter(|l| l.op != "MEAN" && l.name != "stem").all(|l| l.scratch_bytes == 0));
    assert!(cm.tflm_head_bytes >= rf.tflm_head_bytes);
}

#[test]
fn inplace_planner_is_smaller() {
    let host = Profile::builtin("host").unwrap();
    let c = estimate_candidate(&cand(160, Color::Rgb, 0.5, [3, 4, 3, 3, 1]), 2, &host, Precision::Int8).unwrap();
    assert!(c.inplace_live_bound_bytes < c.live_bound_bytes);
    assert!(c.inplace_peak_bytes < c.tflm_head_bytes);
    assert!(c.inplace_peak_bytes >= c.inplace_live_bound_bytes);
}

#[test]
fn feasibility_lists_every_violation() {
    let mut p = Profile::builtin("rpi-pico").unwrap();
    p.max_latency_ms = Some(1.0);
    let c = estimate_candidate(&cand(224, Color::Rgb, 1.0, [3, 4, 3, 3, 1]), 2, &p, Precision::Int8).unwrap();
    let f = c.check(&p.limits());
    assert!(!f.is_feasible());
    let kinds: Vec<&str> = f.violations().iter().map(|v| v.metric.as_str()).collect();
    assert_eq!(kinds, vec!["arena_bytes", "flash_bytes", "latency_ms"]);
    for v in f.violations() {
        assert!(v.value > v.limit && v.relative() > 0.0);
        assert!(!v.to_string().is_empty());
    }
    let small = estimate_candidate(&cand(32, Color::Grayscale, 0.1, [1, 0, 0, 0, 0]), 2, &p, Precision::Int8).unwrap();
    let lim = Limits { latency_ms: None, ..p.limits() };
    assert!(small.check(&lim).is_feasible());
}

#[test]
fn invalid_graph_is_an_error() {
    let mut g = cand(32, Color::Rgb, 0.35, [1, 0, 0, 0, 0]).blueprint(2).unwrap().to_graph(Precision::Int8);
    g.ops[1].inputs[0] = 9999;
    let e = estimate(&g, &Profile::default_mcu()).unwrap_err().to_string();
    assert!(e.contains("9999"), "{e}");
}

#[test]
fn calibration_recovers_coefficients() {
    let truth = Profile::builtin("nucleo-h743").unwrap();
    let mut samples = Vec::new();
    for (i, (res, alpha, depths)) in [
        (96, 0.35, [3, 4, 3, 3, 1]),
        (64, 0.5, [1, 0, 0, 0, 0]),
        (128, 0.25, [3, 2, 1, 0, 0]),
        (160, 1.0, [2, 2, 2, 2, 1]),
        (32, 0.75, [3, 4, 3, 3, 0]),
        (224, 0.1, [3, 4, 0, 0, 0]),
        (48, 1.4, [1, 1, 1, 1, 1]),
        (80, 0.6, [0, 0, 0, 0, 0]),
    ]
    .into_iter()
    .enumerate()
    {
        let c = cand(res, if i % 2 == 0 { Color::Rgb } else { Color::Grayscale }, alpha, depths);
        let g = c.blueprint(2).unwrap().to_graph(Precision::Int8);
        let ms = estimate(&g, &truth).unwrap().latency_ms;
        samples.push(CalibrationSample {
            label: c.to_string(),
            features: latency_features(&g).unwrap(),
            measured_ms: ms,
        });
    }
    let mut start = truth.clone();
    start.cycles_per_mac = CyclesPerMac { conv1x1: 1.0, conv: 1.0, depthwise: 1.0, fc: 1.0 };
    start.per_op_cycles = 0.0;
    let cal = calibrate(&start, &samples).unwrap();
    assert!(cal.max_rel_error < 1e-3, "{}", cal.max_rel_error);
    assert!((cal.profile.cycles_per_mac.depthwise - truth.cycles_per_mac.depthwise).abs() < 0.05);
    // CSV front end
    let csv = "model,ms\n96:rgb:0.35:3-4-3-3-1:2,12.5\n64:grayscale:0.5:1-0-0-0-0,3.0\n";
    let s = parse_calibration_csv(csv, "m.csv", std::path::Path::new(".")).unwrap();
    assert_eq!(s.len(), 2);
    let e = parse_calibration_csv("model,ms\n96:rgb:0.35:3-4,abc\n", "m.csv", std::path::Path::new("."))
        .unwrap_err()
        .to_string();
    assert!(e.contains("m.csv") && e.contains("line 2"), "{e}");
}

/// A measurement of `f` taken on a board whose cycles are `cycles`.
fn sample(label: &str, f: LatencyFeatures, cycles: f64, clock_mhz: f64) -> CalibrationSample {
    CalibrationSample { label: label.into(), features: f, measured_ms: cycles / (clock_mhz * 1000.0) }
}

#[test]
fn tied_calibrations_recover_their_parameters_from_few_measurements() {
    let p = Profile::builtin("nucleo-l4r5").unwrap();
    let conv = LatencyFeatures { conv_macs: 1e6, conv1x1_macs: 2e6, ops: 10.0, elements: 1e4, ..Default::default() };
    let dw = LatencyFeatures { depthwise_macs: 3e5, conv1x1_macs: 1e6, ops: 8.0, ..Default::default() };
    let fc = LatencyFeatures { fc_macs: 2e5, ops: 4.0, ..Default::default() };
    let cycles = |f: &LatencyFeatures, q: &Profile| f.cycles(q);
    // A board 2.5× slower than the profile in every respect: Scale finds 2.5 from one sample.
    let mut slow = p.clone();
    let c = p.cycles_per_mac;
    slow.cycles_per_mac =
        CyclesPerMac { conv1x1: c.conv1x1 * 2.5, conv: c.conv * 2.5, depthwise: c.depthwise * 2.5, fc: c.fc * 2.5 };
    slow.cycles_per_element *= 2.5;
    slow.per_op_cycles *= 2.5;
    let one = [sample("conv", conv, cycles(&conv, &slow), p.clock_mhz)];
    let cal = calibrate_with(&p, &one, Fit::Scale).unwrap();
    assert!((cal.profile.cycles_per_mac.fc / p.cycles_per_mac.fc - 2.5).abs() < 1e-9, "{:?}", cal.profile);
    assert!(cal.max_rel_error < 1e-9);
    // Reference-like kernels: 30 cycles per convolution MAC of any kind, 12 per FC MAC.
    let mut reference = p.clone();
    reference.cycles_per_mac = CyclesPerMac { conv1x1: 30.0, conv: 30.0, depthwise: 30.0, fc: 12.0 };
    let three: Vec<_> =
        [("conv", conv), ("dw", dw), ("fc", fc)].map(|(l, f)| sample(l, f, cycles(&f, &reference), p.clock_mhz)).into();
    let cal = calibrate_with(&p, &three, Fit::ConvFc).unwrap();
    let c = &cal.profile.cycles_per_mac;
    assert!((c.conv1x1 - 30.0).abs() < 1e-6 && (c.depthwise - 30.0).abs() < 1e-6, "{c:?}");
    assert!((c.fc - 12.0).abs() < 1e-6, "{c:?}");
    assert_eq!(cal.profile.per_op_cycles, p.per_op_cycles, "not tied: kept");
    // No FC measurement: the FC coefficient keeps the profile's value.
    let cal = calibrate_with(&p, &three[..2], Fit::ConvFc).unwrap();
    assert_eq!(cal.profile.cycles_per_mac.fc, p.cycles_per_mac.fc);
    assert!((cal.profile.cycles_per_mac.conv - 30.0).abs() < 1e-6);
    // Free is the plain least squares; no samples is an error, not a panic.
    assert_eq!(calibrate_with(&p, &three, Fit::Free).unwrap(), calibrate(&p, &three).unwrap());
    assert!(calibrate_with(&p, &[], Fit::Scale).is_err());
}
