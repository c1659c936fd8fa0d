//! Invariants of the cost model, checked with proptest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use danas_core::{Arch, Candidate, Color, DataConfig, Graph, Precision};
use danas_cost::{Buffer, Profile, estimate, greedy_plan, live_bound};
use proptest::prelude::*;

const MAX: [u32; 5] = [3, 4, 3, 3, 1];

/// Paper-space depths: once a stage is 0, all later stages are 0.
fn depths() -> impl Strategy<Value = [u32; 5]> {
    (0usize..=5, proptest::array::uniform5(0u32..=4)).prop_map(|(kept, raw)| {
        let mut d = [0; 5];
        for i in 0..kept {
            d[i] = 1 + raw[i] % MAX[i];
        }
        d
    })
}

fn candidate() -> impl Strategy<Value = (u32, Color, f64, [u32; 5])> {
    (8u32..=240, prop_oneof![Just(Color::Rgb), Just(Color::Grayscale)], 5u32..=140, depths())
        .prop_map(|(res, color, a, d)| (res, color, f64::from(a) / 100.0, d))
}

fn graph(res: u32, color: Color, alpha: f64, depths: [u32; 5], precision: Precision) -> Graph {
    let c = Candidate::new(DataConfig::new(res, color), Arch::mobilenet_v2(alpha, depths));
    c.blueprint(2).unwrap().to_graph(precision)
}

fn precision() -> impl Strategy<Value = Precision> {
    prop_oneof![Just(Precision::Int8), Just(Precision::F16), Just(Precision::F32)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn deeper_never_cheaper((res, color, alpha, d) in candidate(), stage in 0usize..5, p in precision()) {
        // Deeper: one more block in a stage, keeping the paper-space prefix rule.
        prop_assume!(d[stage] < MAX[stage] && (stage == 0 || d[stage - 1] > 0));
        let mut deeper = d;
        deeper[stage] += 1;
        let mcu = Profile::default_mcu();
        let a = estimate(&graph(res, color, alpha, d, p), &mcu).unwrap();
        let b = estimate(&graph(res, color, alpha, deeper, p), &mcu).unwrap();
        prop_assert!(b.macs >= a.macs, "{:?} -> {:?}: {} < {}", d, deeper, b.macs, a.macs);
        prop_assert!(b.flash_bytes >= a.flash_bytes);
        prop_assert!(b.params >= a.params);
    }

    #[test]
    fn wider_never_cheaper((res, color, alpha, d) in candidate(), extra in 1u32..=60, p in precision()) {
        let wider = alpha + f64::from(extra) / 100.0;
        let mcu = Profile::default_mcu();
        let a = estimate(&graph(res, color, alpha, d, p), &mcu).unwrap();
        let b = estimate(&graph(res, color, wider, d, p), &mcu).unwrap();
        prop_assert!(b.macs >= a.macs, "alpha {} -> {}: {} < {}", alpha, wider, b.macs, a.macs);
        prop_assert!(b.flash_bytes >= a.flash_bytes, "alpha {} -> {}", alpha, wider);
    }

    #[test]
    fn head_bounds((res, color, alpha, d) in candidate(), p in precision(), cmsis in any::<bool>()) {
        let g = graph(res, color, alpha, d, p);
        let mcu = Profile::builtin(if cmsis { "nucleo-h743" } else { "host" }).unwrap();
        let c = estimate(&g, &mcu).unwrap();
        let largest_op = g
            .ops
            .iter()
            .map(|op| {
                op.inputs.iter().chain(&op.outputs).map(|&t| &g.tensors[t]).filter(|t| !t.is_constant()).map(|t| t.bytes() as u64).sum::<u64>()
            })
            .max()
            .unwrap();
        prop_assert!(c.tflm_head_bytes >= c.live_bound_bytes);
        prop_assert!(c.live_bound_bytes >= largest_op);
        prop_assert!(c.inplace_live_bound_bytes <= c.live_bound_bytes);
        prop_assert!(c.inplace_peak_bytes >= c.inplace_live_bound_bytes);
        prop_assert_eq!(c.arena_bytes, c.tflm_head_bytes + c.tail_bytes);
    }

    #[test]
    fn greedy_plan_is_valid(bufs in proptest::collection::vec((1u64..500, 0u32..20, 0u32..6), 1..40)) {
        let bufs: Vec<Buffer> = bufs.into_iter().map(|(s, f, len)| Buffer { size: s, first: f, last: f + len }).collect();
        let plan = greedy_plan(&bufs);
        prop_assert!(plan.head >= live_bound(&bufs));
        prop_assert!(plan.head <= bufs.iter().map(|b| b.size).sum::<u64>());
        for (i, a) in bufs.iter().enumerate() {
            prop_assert!(plan.offsets[i] + a.size <= plan.head);
            for (j, b) in bufs.iter().enumerate().skip(i + 1) {
                if a.overlaps(b) {
                    let (oa, ob) = (plan.offsets[i], plan.offsets[j]);
                    prop_assert!(oa + a.size <= ob || ob + b.size <= oa, "buffers {} and {} collide", i, j);
                }
            }
        }
    }
}
