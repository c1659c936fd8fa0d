//! The front end against the real TFLM interpreter (PyPI `tflite-micro`, whose Python
//! interpreter registers the signal ops): for four front-end configurations (8 and
//! 16 kHz, two windows, two strides, 10 and 40 channels) and 24 deterministic clips each
//! (seeded noise, tones, chirps, silence, clipping) plus 9 spoken words from
//! tools/make-speech-set.sh when espeak-ng and sox are installed,
//! `preprocessor.tflite` run frame by frame in TFLM gives danas's int16 features and int8
//! model inputs bit for bit, and TFLM's arena head for it equals danas-cost's estimate.
//!
//! Without `DANAS_TFLM_PYTHON` the test is skipped, unless `CI` is set (then it fails).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use danas_cost::{Profile, estimate_preprocessor};
use danas_signal::{FrontEnd, FrontEndConfig, preprocessor_model};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn python() -> Option<std::ffi::OsString> {
    match std::env::var_os("DANAS_TFLM_PYTHON") {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => {
            panic!("CI is set but DANAS_TFLM_PYTHON is not: the TFLM front-end test must not be skipped in CI")
        }
        None => {
            eprintln!("skipped: set DANAS_TFLM_PYTHON to a python with `tflite-micro` installed to run this test");
            None
        }
    }
}

/// A deterministic one-second clip: seeded noise, tones, chirps, silence, clipping.
fn clip(rate: u32, seed: u64) -> Vec<i16> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = rate as usize;
    let kind = seed % 6;
    let amp: f64 = [30.0, 300.0, 3000.0, 12000.0, 30000.0][rng.random_range(0..5)];
    let f0: f64 = rng.random_range(80.0..f64::from(rate) * 0.45);
    let f1: f64 = rng.random_range(80.0..f64::from(rate) * 0.45);
    let noise: f64 = [0.0, 10.0, 200.0, 2000.0][rng.random_range(0..4)];
    let onset = rng.random_range(0..n / 2);
    let len = rng.random_range(n / 8..n / 2);
    let pi2 = 2.0 * std::f64::consts::PI;
    let mut phase = 0.0f64;
    (0..n)
        .map(|t| {
            let time = t as f64 / f64::from(rate);
            let on = (onset..onset + len).contains(&t);
            let s = match kind {
                0 => 0.0,
                1 => amp * (pi2 * f0 * time).sin(),
                2 => {
                    let f = f0 + (f1 - f0) * t as f64 / n as f64;
                    phase += pi2 * f / f64::from(rate);
                    amp * phase.sin()
                }
                3 if on => amp * ((pi2 * f0 * time).sin() + 0.5 * (pi2 * f1 * time).sin()),
                4 => amp * 4.0 * (pi2 * f0 * time).sin(),
                _ if on => amp * rng.random_range(-1.0..1.0),
                _ => 0.0,
            };
            let x = s + noise * rng.random_range(-1.0..1.0);
            x.clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Spoken words from tools/make-speech-set.sh (espeak-ng + sox) at 16 kHz, halved to
/// 8 kHz by dropping every other sample for 8 kHz front ends; empty when espeak-ng or
/// sox is missing, unless `CI` is set (then it fails).
fn spoken(dir: &Path, rate: u32) -> Vec<Vec<i16>> {
    let have = |t: &str| Command::new(t).arg("--version").output().is_ok_and(|o| o.status.success());
    if !(have("espeak-ng") && have("sox")) {
        assert!(std::env::var_os("CI").is_none(), "CI is set but espeak-ng or sox is missing");
        return Vec::new();
    }
    let set = dir.join("spoken");
    if !set.join("stop").is_dir() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/make-speech-set.sh");
        let st = Command::new("bash")
            .arg(script)
            .arg(&set)
            .args(["--speakers", "3", "--takes", "1", "--seed", "3", "--words", "yes no stop"])
            .status()
            .unwrap();
        assert!(st.success());
    }
    let mut clips = Vec::new();
    for word in ["no", "stop", "yes"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(set.join(word)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            let r = hound::WavReader::open(&f).unwrap();
            assert_eq!(r.spec().sample_rate, 16_000);
            let x: Vec<i16> = r.into_samples::<i16>().map(Result::unwrap).collect();
            clips.push(if rate == 8000 { x.iter().step_by(2).copied().collect() } else { x });
        }
    }
    clips
}

fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("danas-signal-tflm");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn tflm_runs_preprocessor_bit_for_bit_and_arena_head_matches() {
    let Some(python) = python() else { return };
    let configs = [
        FrontEndConfig::new(16_000, 30, 20, 40),
        FrontEndConfig::new(16_000, 25, 10, 10),
        FrontEndConfig::new(8_000, 30, 20, 10),
        FrontEndConfig::new(8_000, 25, 10, 40),
    ];
    let clips_per_config = 24u64;
    let dir = work_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/tflm_frontend.py");
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../danas-cost/tools/tflm_probe.py");
    let host = Profile::builtin("host").unwrap();
    let mut failures = Vec::new();
    for (ci, cfg) in configs.iter().enumerate() {
        let fe = FrontEnd::new(cfg).unwrap();
        let model = preprocessor_model(&fe).unwrap();
        let bytes = model.to_bytes().unwrap();
        let model_path = dir.join(format!("preprocessor-{ci}.tflite"));
        std::fs::write(&model_path, &bytes).unwrap();
        let mut clips: Vec<Vec<i16>> =
            (0..clips_per_config).map(|k| clip(cfg.sample_rate, 1000 * ci as u64 + k)).collect();
        let words = spoken(&dir, cfg.sample_rate);
        let n_spoken = words.len();
        clips.extend(words);
        let samples = clips[0].len();
        let raw: Vec<u8> = clips.iter().flatten().flat_map(|s| s.to_le_bytes()).collect();
        let clips_path = dir.join(format!("clips-{ci}.i16"));
        std::fs::write(&clips_path, raw).unwrap();
        let out_path = dir.join(format!("tflm-{ci}.bin"));
        let out = Command::new(&python)
            .arg(&script)
            .arg(&model_path)
            .arg(&clips_path)
            .arg(clips.len().to_string())
            .arg(samples.to_string())
            .arg(cfg.window_samples().to_string())
            .arg(cfg.stride_samples().to_string())
            .arg(&out_path)
            .output()
            .expect("run the TFLM front-end driver");
        assert!(out.status.success(), "config {cfg:?}: driver failed: {}", String::from_utf8_lossy(&out.stderr));
        let tflm = std::fs::read(&out_path).unwrap();
        let ch = cfg.channels as usize;
        let frame_bytes = ch * 3;
        let frames = cfg.frames(samples);
        assert_eq!(tflm.len(), clips.len() * frames * frame_bytes, "config {cfg:?}: output size");
        let (mut max_i16, mut max_i8, mut differing, mut compared) = (0i32, 0i32, 0usize, 0usize);
        for (k, c) in clips.iter().enumerate() {
            let ours = fe.clip(c);
            assert_eq!(ours.frames, frames);
            for f in 0..frames {
                let at = (k * frames + f) * frame_bytes;
                let rec = &tflm[at..at + frame_bytes];
                let mut same = true;
                for j in 0..ch {
                    let t16 = i16::from_le_bytes([rec[2 * j], rec[2 * j + 1]]);
                    let t8 = rec[2 * ch + j] as i8;
                    let d16 = (i32::from(t16) - i32::from(ours.features[f * ch + j])).abs();
                    let d8 = (i32::from(t8) - i32::from(ours.int8[f * ch + j])).abs();
                    max_i16 = max_i16.max(d16);
                    max_i8 = max_i8.max(d8);
                    same &= d16 == 0 && d8 == 0;
                }
                differing += usize::from(!same);
                compared += 1;
            }
        }
        // Arena head: TFLM's recorded allocation vs danas-cost's plan.
        let probed = Command::new(&python).arg(&probe).arg(&model_path).output().expect("run the TFLM probe");
        assert!(probed.status.success(), "probe failed: {}", String::from_utf8_lossy(&probed.stderr));
        let line: serde_json::Value = serde_json::from_slice(&probed.stdout).unwrap();
        let head = line["head"].as_u64().unwrap_or_else(|| panic!("{}: {line}", model_path.display()));
        let tail = line["tail"].as_u64().unwrap_or(0);
        let est = estimate_preprocessor(&model, bytes.len() as u64, frames as u32, &host).unwrap();
        eprintln!(
            "{} Hz, {}/{} ms, {} ch: {} clips ({n_spoken} spoken), {compared} frames, {differing} differing, max |diff| int16 {max_i16}, int8 {max_i8}; \
             arena head TFLM {head} vs danas {}; tail TFLM {tail} vs danas {}",
            cfg.sample_rate,
            cfg.window_ms,
            cfg.stride_ms,
            cfg.channels,
            clips.len(),
            est.head_bytes,
            est.tail_bytes
        );
        let tail_off = (est.tail_bytes as f64 - tail as f64).abs() / tail as f64;
        if differing > 0 || est.head_bytes != head || tail_off > 0.01 {
            failures.push(format!(
                "{cfg:?}: {differing}/{compared} frames differ (max int16 {max_i16}, int8 {max_i8}); head TFLM {head} vs danas {}; tail TFLM {tail} vs danas {}",
                est.head_bytes, est.tail_bytes
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn preprocessor_costs_add_up() {
    let cfg = FrontEndConfig::default();
    let fe = FrontEnd::new(&cfg).unwrap();
    let model = preprocessor_model(&fe).unwrap();
    let bytes = model.to_bytes().unwrap();
    let mcu = Profile::builtin("nucleo-h743").unwrap();
    let c = estimate_preprocessor(&model, bytes.len() as u64, cfg.frames(16_000) as u32, &mcu).unwrap();
    assert_eq!(c.feature_buffer_bytes, 49 * 40);
    assert_eq!(c.flash_bytes, bytes.len() as u64 + danas_cost::SIGNAL_KERNELS_FLASH_BYTES);
    assert_eq!(c.arena_bytes, c.head_bytes + c.tail_bytes);
    // The head holds at least the FFT's spectrum and scratch (2 × 514 + 2 × 512 bytes).
    assert!(c.head_bytes >= 2 * 514 + 2 * 512, "{c:?}");
    assert!(c.latency_ms_per_frame > 0.0 && c.latency_ms_per_frame < 20.0, "{c:?}");
    assert_eq!(c.ram_with_model(10_000), c.arena_bytes + c.feature_buffer_bytes + 10_000);
}
