//! Acceptance tests of the trainer: parameter counts, extraction, evaluation
//! purity, determinism, divergence, checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Bands;
use danas_core::{Arch, Batch, Candidate, Color, DataConfig, LastConv, Precision, Split, StageKnobs};
use danas_train::{
    EvalConfig, GradientOptimizer, Network, StoragePrecision, Supernet, SupernetTraining, Tensor, TensorData,
    TrainConfig, TrainError, cpu_device, evaluate, train_network,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cand(res: u32, color: Color, alpha: f64, depths: [u32; 5]) -> Candidate {
    Candidate::new(DataConfig::new(res, color), Arch::mobilenet_v2(alpha, depths))
}

fn quick_cfg(steps: u64) -> TrainConfig {
    TrainConfig { steps, batch_size: 8, lr: 3e-3, warmup_steps: 2, ..TrainConfig::default() }
}

#[test]
fn folded_param_count_equals_cost_model() {
    let mut knobs = vec![StageKnobs::default(); 7];
    knobs[3].kernel = Some(5);
    knobs[4].expansion = Some(4);
    knobs[2].width = 1.5;
    let cases = vec![
        (cand(96, Color::Rgb, 0.35, [3, 4, 3, 3, 1]), 2),
        (cand(32, Color::Grayscale, 0.35, [3, 4, 3, 3, 1]), 10),
        (cand(33, Color::Rgb, 0.25, [2, 0, 0, 0, 0]), 3),
        (cand(48, Color::Rgb, 1.0, [1, 2, 0, 1, 1]), 5),
        (cand(40, Color::Grayscale, 1.4, [3, 1, 2, 0, 0]), 2),
        (
            Candidate::new(
                DataConfig::new(24, Color::Rgb),
                Arch { stages: knobs, last_conv: LastConv::Channels(200), ..Arch::mobilenet_v2(0.5, [2, 2, 1, 1, 1]) },
            ),
            4,
        ),
    ];
    for (c, classes) in cases {
        let bp = c.blueprint(classes).unwrap();
        let net = Network::new(&c, classes, 1).unwrap();
        assert_eq!(net.param_count_folded(), bp.param_count(), "{c}");
        assert_eq!(net.folded().unwrap().param_count(), bp.param_count(), "{c}");
        assert_eq!(bp.to_graph(Precision::Int8).param_count(), bp.param_count(), "{c}");
    }
}

#[test]
fn forward_shapes_at_odd_and_even_resolutions() {
    for res in [17u32, 32, 33] {
        let c = cand(res, Color::Rgb, 0.35, [1, 1, 1, 1, 1]);
        let net = Network::new(&c, 3, 0).unwrap();
        let src = Bands::new(3, 4, 4);
        let b = danas_core::BatchSource::batches(&src, Split::Validation, c.data, 4, false, 0).next().unwrap().unwrap();
        let logits = net.logits(&b).unwrap();
        assert_eq!(logits.len(), 4 * 3, "res {res}");
        assert!(logits.iter().all(|v| v.is_finite()));
    }
}

/// Gives every BatchNorm of a network random parameters and statistics, so
/// that slicing mistakes in BatchNorm show in the outputs.
fn randomize_bn(net: &Network, seed: u64) -> Network {
    let mut w = net.weights().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for c in &mut w.convs {
        for v in c.gamma.iter_mut() {
            *v = rng.random_range(0.5..1.5);
        }
        for v in c.beta.iter_mut() {
            *v = rng.random_range(-0.3..0.3);
        }
        for v in c.mean.iter_mut() {
            *v = rng.random_range(-0.2..0.2);
        }
        for v in c.var.iter_mut() {
            *v = rng.random_range(0.5..2.0);
        }
    }
    for v in w.fc_weight.iter_mut() {
        *v = rng.random_range(-0.5..0.5);
    }
    for v in w.fc_bias.iter_mut() {
        *v = rng.random_range(-0.1..0.1);
    }
    Network::from_weights(net.candidate(), net.classes(), &w).unwrap()
}

fn random_input(n: usize, c: usize, res: usize, seed: u64) -> Tensor<4> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..n * c * res * res).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_data(TensorData::new(v, [n, c, res, res]), &cpu_device())
}

fn max_abs_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
    let a = a.into_data().try_into_vec::<f32>().unwrap();
    let b = b.into_data().try_into_vec::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn extraction_equals_masked_supernet_forward() {
    let data = DataConfig::new(32, Color::Rgb);
    // Supernet with a 5×5 kernel in stage 4 so that kernel cropping is exercised too.
    let mut knobs = vec![StageKnobs::default(); 7];
    knobs[3].kernel = Some(5);
    let max = Arch { stages: knobs.clone(), ..Arch::full(0.5) };
    let sup = Supernet::new(data, max, 3, 11).unwrap();
    // Random BatchNorm parameters, then realistic running statistics for them, so that
    // activations neither vanish nor saturate and slicing mistakes show.
    let net = randomize_bn(sup.network(), 12);
    let net = danas_train::recalibrate_bn(net, &Bands::new(3, 32, 8), 2, 16, 0).unwrap();
    let sup = Supernet::from_network(net);
    let x = random_input(2, 3, 32, 13);
    let mut k3 = knobs.clone();
    k3[3].kernel = Some(3);
    let cands = vec![
        Arch { stages: knobs.clone(), ..Arch::full(0.5) },
        Arch { stages: knobs.clone(), ..Arch::mobilenet_v2(0.35, [1, 2, 0, 1, 1]) },
        // alpha 0.25: block 0 becomes residual (stem 8 == 8) though it is not in the supernet.
        Arch { stages: knobs.clone(), ..Arch::mobilenet_v2(0.25, [2, 0, 0, 0, 0]) },
        Arch { stages: k3, ..Arch::mobilenet_v2(0.5, [3, 2, 1, 0, 1]) },
    ];
    for arch in cands {
        let c = Candidate::new(data, arch);
        let net = sup.extract(&c).unwrap();
        assert_eq!(net.param_count_folded(), c.blueprint(3).unwrap().param_count(), "{c}");
        let a = net.forward(x.clone());
        let b = sup.forward_masked(&c, x.clone()).unwrap();
        let scale = max_abs_diff(a.clone(), a.clone().mul_scalar(0.0)).max(1e-3);
        let d = max_abs_diff(a.clone(), b);
        assert!(d < 1e-4 * scale.max(1.0), "{c}: extracted and masked outputs differ by {d} (scale {scale})");
        // The comparison is not vacuous: the outputs depend on the input.
        let other = net.forward(random_input(2, 3, 32, 14));
        let dep = max_abs_diff(a, other);
        assert!(dep > 1e-3 * scale, "{c}: output does not depend on the input ({dep}, scale {scale})");
    }
    // A wider candidate does not fit.
    let too_wide = Candidate::new(data, Arch { stages: knobs, ..Arch::full(0.75) });
    assert!(matches!(sup.extract(&too_wide), Err(TrainError::NotASubnet { .. })));
    // Another resolution is cut from the same weights (the network is fully convolutional).
    let other_res = cand(48, Color::Rgb, 0.35, [1, 1, 1, 1, 1]);
    assert_eq!(sup.extract(&other_res).unwrap().param_count_folded(), other_res.blueprint(3).unwrap().param_count());
    // An rgb candidate cannot come from a grayscale supernet.
    let gray_sup = Supernet::new(DataConfig::new(32, Color::Grayscale), Arch::full(0.5), 3, 1).unwrap();
    assert!(matches!(gray_sup.extract(&other_res), Err(TrainError::NotASubnet { .. })));
    // The masked reference runs only at the supernet's own data configuration.
    assert!(matches!(sup.forward_masked(&other_res, random_input(1, 3, 48, 3)), Err(TrainError::NotASubnet { .. })));
}

/// One supernet serves every data configuration: a grayscale candidate cut out of
/// an rgb supernet computes exactly what the rgb candidate computes on the gray
/// image repeated in three channels, at any resolution.
#[test]
fn a_grayscale_candidate_from_an_rgb_supernet_sees_three_equal_channels() {
    let sup = Supernet::new(DataConfig::new(32, Color::Rgb), Arch::full(0.5), 3, 21).unwrap();
    let net = danas_train::recalibrate_bn(randomize_bn(sup.network(), 22), &Bands::new(3, 32, 8), 2, 16, 0).unwrap();
    let sup = Supernet::from_network(net);
    for res in [32usize, 24, 16] {
        let arch = Arch::mobilenet_v2(0.35, [1, 2, 1, 0, 0]);
        let gray = sup.extract(&Candidate::new(DataConfig::new(res as u32, Color::Grayscale), arch.clone())).unwrap();
        let rgb = sup.extract(&Candidate::new(DataConfig::new(res as u32, Color::Rgb), arch)).unwrap();
        assert_eq!(gray.blueprint().stem.in_ch, 1);
        let x = random_input(2, 1, res, 23 + res as u64);
        let x3 = Tensor::cat(vec![x.clone(), x.clone(), x.clone()], 1);
        let (a, b) = (gray.forward(x), rgb.forward(x3));
        let scale = max_abs_diff(b.clone(), b.clone().mul_scalar(0.0)).max(1e-3);
        let d = max_abs_diff(a, b);
        assert!(d < 1e-4 * scale.max(1.0), "{res} px: gray and replicated-rgb outputs differ by {d}");
    }
}

#[test]
fn one_supernet_trains_on_every_data_configuration() {
    let src = Bands::new(2, 32, 8);
    let datas =
        [DataConfig::new(16, Color::Rgb), DataConfig::new(12, Color::Grayscale), DataConfig::new(8, Color::Rgb)];
    let mut sup = Supernet::new(datas[0], Arch::full(0.5), 2, 1).unwrap();
    let before = sup.network().weights().unwrap();
    let training = SupernetTraining::Sandwich { alphas: vec![0.35, 0.5], min_depths: [1, 1, 1, 1, 0], random: 1 };
    let rep = sup.train_on(&src, &quick_cfg(6), &training, &datas, &mut |_| {}).unwrap();
    assert_eq!(rep.steps, 6);
    assert_ne!(sup.network().weights().unwrap(), before);
    // the same again gives the same weights
    let mut again = Supernet::new(datas[0], Arch::full(0.5), 2, 1).unwrap();
    again.train_on(&src, &quick_cfg(6), &training, &datas, &mut |_| {}).unwrap();
    assert_eq!(again.network().weights().unwrap(), sup.network().weights().unwrap());
    // a grayscale supernet cannot train on rgb batches
    let mut gray = Supernet::new(DataConfig::new(16, Color::Grayscale), Arch::full(0.5), 2, 1).unwrap();
    let e = gray.train_on(&src, &quick_cfg(2), &SupernetTraining::Full, &datas, &mut |_| {}).unwrap_err();
    assert!(matches!(e, TrainError::BadBatch { .. }), "{e}");
}

#[test]
fn a_plateau_stops_training_early() {
    let c = cand(16, Color::Grayscale, 0.35, [1, 1, 0, 0, 0]);
    let src = Bands::new(2, 128, 64);
    let net = Network::new(&c, 2, 4).unwrap();
    // a learning rate so small that the loss cannot fall 50 % between checks
    let plateau = danas_train::Plateau { every: 5, patience: 2, min_delta: 0.5 };
    let cfg = TrainConfig { steps: 200, batch_size: 16, lr: 1e-6, plateau: Some(plateau), ..TrainConfig::default() };
    let (_, rep) = train_network(net.clone(), &src, &cfg, &mut |_| {}).unwrap();
    assert!(rep.steps < 200 && rep.steps >= 10, "stopped after {} steps", rep.steps);
    assert!(rep.final_loss.is_finite());
    // without it, every step runs
    let (_, rep) = train_network(net, &src, &TrainConfig { steps: 20, plateau: None, ..cfg }, &mut |_| {}).unwrap();
    assert_eq!(rep.steps, 20);
}

#[test]
fn evaluation_never_changes_the_supernet_and_is_deterministic() {
    let data = DataConfig::new(16, Color::Rgb);
    let src = Bands::new(2, 48, 24);
    let mut sup = Supernet::new(data, Arch::full(0.35), 2, 5).unwrap();
    sup.train(&src, &quick_cfg(3), &SupernetTraining::Full, &mut |_| {}).unwrap();
    let before = sup.network().weights().unwrap();
    let cfg = EvalConfig {
        calib_batches: 2,
        calib_batch_size: 8,
        finetune: Some(TrainConfig { steps: 3, lr: 1e-2, ..quick_cfg(3) }),
        eval_batch_size: 16,
        seed: 3,
    };
    let c = Candidate::new(data, Arch::mobilenet_v2(0.35, [1, 1, 0, 1, 0]));
    let e1 = sup.evaluate(&c, &src, &cfg).unwrap();
    let e2 = sup.evaluate(&c, &src, &cfg).unwrap();
    let full = Candidate::new(data, Arch::full(0.35));
    sup.evaluate(&full, &src, &cfg).unwrap();
    assert_eq!(sup.network().weights().unwrap(), before, "evaluation changed the supernet");
    assert_eq!(e1.metrics.split, Split::Validation);
    assert_eq!(e1.metrics.images, 24);
    assert_eq!(e1.params, c.blueprint(2).unwrap().param_count());
    let strip = |m: &danas_train::Metrics| danas_train::Metrics { seconds: 0.0, ..m.clone() };
    assert_eq!(strip(&e1.metrics), strip(&e2.metrics), "same seed, different metrics");
    assert!(e1.metrics.positive.is_some());
}

#[test]
fn same_seed_same_training() {
    let c = cand(16, Color::Grayscale, 0.35, [1, 1, 0, 0, 0]);
    let src = Bands::new(3, 32, 12);
    let run = || {
        let net = Network::new(&c, 3, 9).unwrap();
        let (net, rep) = train_network(net, &src, &quick_cfg(4), &mut |_| {}).unwrap();
        (net.weights().unwrap(), rep.final_loss, evaluate(&net, &src, Split::Validation, 8).unwrap())
    };
    let (w1, l1, m1) = run();
    let (w2, l2, m2) = run();
    assert_eq!(w1, w2);
    assert_eq!(l1, l2);
    assert_eq!(m1.accuracy, m2.accuracy);
    assert_eq!(m1.loss, m2.loss);
    let init = Network::new(&c, 3, 9).unwrap().weights().unwrap();
    assert_ne!(init, w1, "training did not change the weights");
}

#[test]
fn nan_loss_is_a_typed_error() {
    let c = cand(16, Color::Rgb, 0.35, [1, 0, 0, 0, 0]);
    let src = Bands { nan: true, ..Bands::new(2, 16, 8) };
    let net = Network::new(&c, 2, 0).unwrap();
    let err = train_network(net, &src, &quick_cfg(3), &mut |_| {}).unwrap_err();
    assert!(matches!(err, TrainError::Diverged { step: 0, .. }), "{err}");
    // An absurd learning rate diverges too, at some step, as an error rather than a panic.
    let net = Network::new(&c, 2, 0).unwrap();
    let cfg = TrainConfig {
        lr: 1e30,
        optimizer: GradientOptimizer::Sgd { momentum: 0.0, weight_decay: 0.0, nesterov: false },
        ..quick_cfg(6)
    };
    let err = train_network(net, &Bands::new(2, 16, 8), &cfg, &mut |_| {}).unwrap_err();
    assert!(matches!(err, TrainError::Diverged { .. }), "{err}");
}

#[test]
fn bad_batches_and_settings_are_named() {
    let c = cand(16, Color::Rgb, 0.35, [1, 0, 0, 0, 0]);
    let net = Network::new(&c, 2, 0).unwrap();
    let b = Batch { images: vec![0.0; 16 * 16], labels: vec![0], n: 1, c: 1, h: 16, w: 16 };
    let e = net.logits(&b).unwrap_err().to_string();
    assert!(e.contains("c = 1"), "{e}");
    let b = Batch { images: vec![0.0; 3 * 16 * 16], labels: vec![7], n: 1, c: 3, h: 16, w: 16 };
    let e = net.logits(&b).unwrap_err().to_string();
    assert!(e.contains("labels[0]"), "{e}");
    let e = train_network(net, &Bands::new(2, 8, 8), &TrainConfig { batch_size: 0, ..quick_cfg(1) }, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("batch_size"), "{e}");
}

#[test]
fn sandwich_training_updates_shared_weights() {
    let data = DataConfig::new(16, Color::Rgb);
    let src = Bands::new(2, 32, 8);
    let mut sup = Supernet::new(data, Arch::full(0.5), 2, 1).unwrap();
    let before = sup.network().weights().unwrap();
    let strategy = SupernetTraining::Sandwich { alphas: vec![0.35, 0.5], min_depths: [1, 1, 1, 1, 0], random: 2 };
    let mut losses = Vec::new();
    let rep = sup.train(&src, &quick_cfg(3), &strategy, &mut |s| losses.push(s.loss)).unwrap();
    assert_eq!(rep.steps, 3);
    assert_eq!(losses.len(), 3);
    assert_ne!(sup.network().weights().unwrap(), before);
    // Widths beyond the supernet are refused before training.
    let bad = SupernetTraining::Sandwich { alphas: vec![1.0], min_depths: [1, 1, 1, 1, 0], random: 2 };
    assert!(matches!(sup.train(&src, &quick_cfg(1), &bad, &mut |_| {}), Err(TrainError::NotASubnet { .. })));
}

#[test]
fn training_learns_the_band_task() {
    let c = cand(16, Color::Grayscale, 0.35, [1, 1, 0, 0, 0]);
    let src = Bands::new(2, 128, 64);
    let net = Network::new(&c, 2, 4).unwrap();
    let cfg = TrainConfig { steps: 40, batch_size: 16, lr: 3e-3, warmup_steps: 4, ..TrainConfig::default() };
    let (net, _) = train_network(net, &src, &cfg, &mut |_| {}).unwrap();
    let m = evaluate(&net, &src, Split::Validation, 32).unwrap();
    assert!(m.accuracy >= 0.9, "accuracy {} on an easy task", m.accuracy);
}

#[test]
fn checkpoints_round_trip() {
    let dir = std::env::temp_dir().join(format!("danas-train-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = DataConfig::new(16, Color::Rgb);
    let sup = Supernet::new(data, Arch::full(0.35), 2, 3).unwrap();
    let sup = Supernet::from_network(randomize_bn(sup.network(), 4));
    let p32 = dir.join("s32.ckpt");
    let p16 = dir.join("s16.ckpt");
    sup.save(&p32, StoragePrecision::F32).unwrap();
    sup.save(&p16, StoragePrecision::F16).unwrap();
    let l32 = Supernet::load(&p32).unwrap();
    assert_eq!(l32.network().weights().unwrap(), sup.network().weights().unwrap());
    assert_eq!(l32.candidate(), sup.candidate());
    let l16 = Supernet::load(&p16).unwrap();
    let (a, b) = (l16.network().weights().unwrap(), sup.network().weights().unwrap());
    for (x, y) in a.convs.iter().zip(&b.convs) {
        for (u, v) in x.weight.iter().zip(&y.weight) {
            assert!((u - v).abs() <= 1e-3 * v.abs().max(1e-2), "{u} vs {v}");
        }
    }
    let (s32, s16) = (std::fs::metadata(&p32).unwrap().len(), std::fs::metadata(&p16).unwrap().len());
    assert!(s16 * 10 < s32 * 6, "f16 file {s16} bytes vs f32 {s32}");
    // A supernet checkpoint is not a network checkpoint, and garbage is refused.
    assert!(matches!(Network::load(&p32), Err(TrainError::Checkpoint { .. })));
    let junk = dir.join("junk.ckpt");
    std::fs::write(&junk, b"hello").unwrap();
    let e = Supernet::load(&junk).unwrap_err().to_string();
    assert!(e.contains("junk.ckpt"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 30, item 5: a checkpoint carries a checksum; a damaged one is a typed
/// corruption error on load, and a file written before checksums still loads.
#[test]
fn a_damaged_checkpoint_is_a_corruption_error() {
    let dir = std::env::temp_dir().join(format!("danas-train-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sup = Supernet::new(DataConfig::new(16, Color::Rgb), Arch::full(0.35), 2, 3).unwrap();
    let p = dir.join("s.ckpt");
    sup.save(&p, StoragePrecision::F16).unwrap();
    assert!(danas_train::verify_checkpoint(&p).unwrap(), "a new checkpoint has a checksum");
    let good = std::fs::read(&p).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x5a;
    std::fs::write(&p, &bad).unwrap();
    let e = Supernet::load(&p).unwrap_err();
    assert!(matches!(e, TrainError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("s.ckpt") && e.to_string().contains("corrupted"), "{e}");
    assert!(matches!(danas_train::verify_checkpoint(&p), Err(TrainError::Corrupt { .. })));
    // Without its 16-byte trailer (as written before checksums) the file loads.
    std::fs::write(&p, &good[..good.len() - 16]).unwrap();
    let old = Supernet::load(&p).unwrap();
    assert_eq!(old.network().weights().unwrap().fc_bias.len(), sup.network().weights().unwrap().fc_bias.len());
    assert!(!danas_train::verify_checkpoint(&p).unwrap());
    std::fs::remove_dir_all(&dir).ok();
}
