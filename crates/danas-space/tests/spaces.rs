//! Tests of the built-in and TOML search spaces.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::Path;

use danas_core::{Arch, Candidate, Color, DataConfig};
use danas_space::{CandidateSpace, Genome, GroupWeights, MbSpace, SearchSpace, SpaceError};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn paper_space_counts() {
    let s = MbSpace::paper();
    assert_eq!(s.num_data_configs(), 14);
    assert_eq!(s.num_depth_tuples(), 268);
    assert_eq!(s.cardinality(), 37_520);
    let all = s.enumerate(100_000).expect("small enough to enumerate");
    assert_eq!(all.len(), 37_520);
    let mut cands = HashSet::new();
    for g in &all {
        s.validate(g).unwrap();
        let c = s.candidate(g).unwrap();
        c.blueprint(2).unwrap();
        assert!(cands.insert(serde_json::to_string(&c).unwrap()), "duplicate candidate {c}");
        assert_eq!(s.genome_of(&c).as_ref(), Some(g));
    }
    let depth_tuples: HashSet<Vec<u32>> = all.iter().map(|g| s.candidate(g).unwrap().arch.depths).collect();
    assert_eq!(depth_tuples.len(), 268);
}

#[test]
fn enumerate_respects_limit() {
    assert!(MbSpace::paper().enumerate(1000).is_none());
    assert!(MbSpace::extended().enumerate(1_000_000).is_none());
}

#[test]
fn demo_and_extended_consistent() {
    let demo = MbSpace::demo();
    let all = demo.enumerate(10_000).unwrap();
    assert_eq!(all.len() as u128, demo.cardinality());
    assert!(demo.cardinality() < 1000);
    let ext = MbSpace::extended();
    assert!(ext.cardinality() > MbSpace::paper().cardinality() * 100);
    assert!(ext.num_data_configs() >= 20);
    for r in [48, 80, 112] {
        assert!(ext.config().resolutions.contains(&r));
    }
    // every paper candidate is a member of extended (superset in spirit)
    let paper = MbSpace::paper();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..200 {
        let c = paper.candidate(&paper.sample(&mut rng)).unwrap();
        let mut c2 = c.clone();
        // extended spells the default knobs explicitly
        c2.arch = Arch { stages: ext.supernet(c.data).arch.stages.clone(), ..c.arch.clone() };
        for (i, k) in c2.arch.stages.iter_mut().enumerate() {
            if i >= 2 {
                k.expansion = Some(6);
                k.kernel = Some(3);
            }
        }
        for s in 0..5 {
            if c.arch.depths[s] == 0 {
                c2.arch.stages[s + 2].expansion = Some(3);
                c2.arch.stages[s + 2].kernel = Some(3);
            }
        }
        if ext.config().alphas.iter().any(|a| (a - c.arch.alpha).abs() < 1e-9) {
            assert!(ext.genome_of(&c2).is_some(), "{c} not in extended");
        }
    }
}

#[test]
fn mono_base_width_option() {
    let s = MbSpace::paper_with_mono_base_width(0.33).unwrap();
    assert_eq!(s.cardinality(), 37_520);
    let g = s.genome_of(&Candidate::new(DataConfig::new(96, Color::Rgb), Arch::mobilenet_v2(0.5, [1, 0, 0, 0, 0])));
    let mut g = g.unwrap();
    g.0[1] = 1; // grayscale
    let c = s.candidate(&g).unwrap();
    assert!((c.arch.alpha - 0.165).abs() < 1e-9);
    assert_eq!(s.supernet(DataConfig::new(96, Color::Grayscale)).arch.alpha, 0.33);
}

#[test]
fn supernet_contains_every_candidate() {
    for s in [MbSpace::paper(), MbSpace::extended(), MbSpace::demo()] {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..300 {
            let c = s.candidate(&s.sample(&mut rng)).unwrap();
            let sup = s.supernet(c.data).blueprint(2).unwrap();
            let bp = c.blueprint(2).unwrap();
            assert!(bp.stem.out_ch <= sup.stem.out_ch);
            for b in &bp.blocks {
                let sb = sup.blocks.iter().find(|x| x.stage == b.stage && x.index == b.index).unwrap();
                assert!(b.out_ch <= sb.out_ch && b.mid_ch() <= sb.mid_ch() && b.kernel <= sb.kernel, "{c}");
            }
            if let Some(l) = bp.last_conv {
                assert!(l.out_ch <= sup.last_conv.unwrap().out_ch);
            }
        }
    }
}

#[test]
fn fixed_data_restricts() {
    let s = MbSpace::paper().with_fixed_data(DataConfig::new(96, Color::Rgb)).unwrap();
    assert_eq!(s.cardinality(), 2680);
    assert_eq!(s.data_configs(), vec![DataConfig::new(96, Color::Rgb)]);
}

fn toml_err(text: &str) -> String {
    match MbSpace::from_toml_str(text, Path::new("my-space.toml")) {
        Ok(_) => panic!("accepted bad space:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const GOOD: &str = r#"
name = "mine"
resolutions = [32, 64]
colors = ["grayscale", "rgb"]
alphas = [0.25, 0.5]
max_depths = [2, 1, 0, 0, 0]
"#;

#[test]
fn toml_good_space() {
    let s = MbSpace::from_toml_str(GOOD, Path::new("x.toml")).unwrap();
    assert_eq!(s.name(), "mine");
    // depth tuples with maxima (2,1,0,0,0): 1 + 2 + 2 = 5
    assert_eq!(s.cardinality(), 2 * 2 * 2 * 5);
    let with_knobs =
        format!("{GOOD}expansions = [3, 6]\nkernels = [3, 5]\nlast_conv = [\"auto\", {{ channels = 640 }}]\n");
    let s = MbSpace::from_toml_str(&with_knobs, Path::new("x.toml")).unwrap();
    // per kept stage 4 knob combos: 1 + 2*4 + 2*4*4 = 41 tuples-weighted
    assert_eq!(s.cardinality(), 2 * 2 * 2 * 2 * 41);
    assert_eq!(s.enumerate(10_000).unwrap().len() as u128, s.cardinality());
}

#[test]
fn toml_bad_spaces_name_field_and_value() {
    let e = toml_err(&format!("{GOOD}colour_depth = 3\n"));
    assert!(e.contains("my-space.toml") && e.contains("colour_depth"), "{e}");
    let e = toml_err(&GOOD.replace("resolutions = [32, 64]", "resolutions = []"));
    assert!(e.contains("resolutions") && e.contains("[]"), "{e}");
    let e = toml_err(&GOOD.replace("alphas = [0.25, 0.5]", "alphas = []"));
    assert!(e.contains("alphas"), "{e}");
    let e = toml_err(&GOOD.replace("resolutions = [32, 64]", "resolutions = [32, 0]"));
    assert!(e.contains("resolutions[1]") && e.contains("= 0"), "{e}");
    let e = toml_err(&GOOD.replace("alphas = [0.25, 0.5]", "alphas = [0.25, -0.5]"));
    assert!(e.contains("alphas[1]") && e.contains("-0.5"), "{e}");
    let e = toml_err(&GOOD.replace("alphas = [0.25, 0.5]", "alphas = [0.0]"));
    assert!(e.contains("alphas[0]") && e.contains("= 0"), "{e}");
    let e = toml_err(&GOOD.replace("max_depths = [2, 1, 0, 0, 0]", "max_depths = [2, 5, 0, 0, 0]"));
    assert!(e.contains("max_depths[1]") && e.contains("= 5") && e.contains("at most 4"), "{e}");
    let e = toml_err(&GOOD.replace("max_depths = [2, 1, 0, 0, 0]", "max_depths = [2, 1]"));
    assert!(e.contains("max_depths"), "{e}");
    let e = toml_err(&GOOD.replace("colors = [\"grayscale\", \"rgb\"]", "colors = [\"blue\"]"));
    assert!(e.contains("blue") || e.contains("colors"), "{e}");
    let e = toml_err(&GOOD.replace("alphas = [0.25, 0.5]", "alphas = \"big\""));
    assert!(e.contains("alphas"), "{e}");
    let e = toml_err(&format!("{GOOD}kernels = [3, 4]\n"));
    assert!(e.contains("kernels[1]") && e.contains('4'), "{e}");
    let missing = MbSpace::from_toml_file(Path::new("/nonexistent/space.toml")).err().unwrap().to_string();
    assert!(missing.contains("/nonexistent/space.toml"), "{missing}");
}

#[test]
fn decode_rejects_bad_vectors() {
    let s = MbSpace::paper();
    assert!(matches!(s.decode(&[0.0; 3]), Err(SpaceError::Decode(_))));
    let mut v = s.encode(&s.sample(&mut ChaCha8Rng::seed_from_u64(1)));
    v[0] = f64::NAN;
    assert!(s.decode(&v).is_err());
    // arbitrary real vectors decode to valid genomes
    let v: Vec<f64> = (0..s.encoded_len()).map(|i| (i as f64 * 0.37).sin() * 2.0).collect();
    s.validate(&s.decode(&v).unwrap()).unwrap();
}

#[test]
fn invalid_genomes_rejected() {
    let s = MbSpace::paper();
    assert!(s.validate(&Genome(vec![0; 3])).is_err());
    assert!(s.validate(&Genome(vec![0, 0, 0, 1, 0, 0, 0, 0])).is_err(), "depth after a zero stage");
    assert!(s.validate(&Genome(vec![7, 0, 0, 0, 0, 0, 0, 0])).is_err(), "resolution out of range");
    assert!(s.candidate(&Genome(vec![0, 0, 0, 1, 0, 0, 0, 0])).is_err());
}

fn spaces() -> Vec<MbSpace> {
    MbSpace::presets()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sampled_mutated_crossed_are_valid(seed in any::<u64>(), which in 0usize..3) {
        let s = &spaces()[which];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let a = s.sample(&mut rng);
        let b = s.sample(&mut rng);
        prop_assert!(s.validate(&a).is_ok());
        prop_assert!(s.candidate(&a).is_ok());
        let m = s.mutate(&a, &mut rng);
        prop_assert!(s.validate(&m).is_ok(), "mutant {m} of {a}");
        prop_assert_ne!(&m, &a);
        let p = s.mutate_weighted(&a, &mut rng, &GroupWeights::PAPER);
        prop_assert!(s.validate(&p).is_ok());
        let c = s.crossover(&a, &b, &mut rng);
        prop_assert!(s.validate(&c).is_ok(), "child {c} of {a} x {b}");
        prop_assert!(s.candidate(&c).is_ok());
    }

    #[test]
    fn repair_fixes_any_in_range_genome(seed in any::<u64>(), which in 0usize..3) {
        let s = &spaces()[which];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let raw = Genome(s.genes().iter().map(|g| rand::Rng::random_range(&mut rng, 0..g.choices)).collect());
        let fixed = s.repair(raw.clone());
        prop_assert!(s.validate(&fixed).is_ok());
        if s.check(&raw).is_ok() {
            prop_assert_eq!(fixed, raw);
        }
    }

    #[test]
    fn decode_encode_roundtrip(seed in any::<u64>(), which in 0usize..3) {
        let s = &spaces()[which];
        let g = s.sample(&mut ChaCha8Rng::seed_from_u64(seed));
        let v = s.encode(&g);
        prop_assert_eq!(v.len(), s.encoded_len());
        prop_assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
        prop_assert_eq!(s.decode(&v).unwrap(), g);
    }

    #[test]
    fn same_seed_same_sequence(seed in any::<u64>(), which in 0usize..3) {
        let s = &spaces()[which];
        let run = |seed: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut out = Vec::new();
            let mut g = s.sample(&mut rng);
            for _ in 0..10 {
                let h = s.sample(&mut rng);
                g = s.crossover(&g, &h, &mut rng);
                g = s.mutate(&g, &mut rng);
                out.push(g.clone());
            }
            out
        };
        prop_assert_eq!(run(seed), run(seed));
    }
}
