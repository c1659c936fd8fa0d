//! `audio:DIR`: WAV formats, splits, background noise, features and their cache, and
//! corrupt files (fuzzed and truncated) that are skipped by name, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use danas_data::audio::{AudioCatalog, AudioOptions, AudioSplit, audio_features, read_wav, read_wav_from};
use danas_signal::FrontEndConfig;
use proptest::prelude::*;

fn tone(rate: u32, secs: f32, f: f32) -> Vec<f32> {
    (0..(rate as f32 * secs) as usize)
        .map(|t| 0.5 * (2.0 * std::f32::consts::PI * f * t as f32 / rate as f32).sin())
        .collect()
}

fn write_wav(path: &Path, rate: u32, channels: u16, bits: u16, float: bool, x: &[f32]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float { hound::SampleFormat::Float } else { hound::SampleFormat::Int },
    };
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in x {
        for c in 0..channels {
            let v = if c == 0 { s } else { -s };
            if float {
                w.write_sample(v).unwrap();
            } else {
                let max = (1i64 << (bits - 1)) as f32 - 1.0;
                w.write_sample((v * max) as i32).unwrap();
            }
        }
    }
    w.finalize().unwrap();
}

fn wav_bytes(rate: u32, bits: u16, x: &[f32]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.wav");
    write_wav(&p, rate, 1, bits, false, x);
    std::fs::read(p).unwrap()
}

#[test]
fn formats_rates_and_channels_decode_to_the_first_channel() {
    let dir = tempfile::tempdir().unwrap();
    let x = tone(8000, 0.25, 440.0);
    for (bits, float) in [(8, false), (16, false), (24, false), (32, false), (32, true)] {
        let p = dir.path().join(format!("b{bits}{float}.wav"));
        write_wav(&p, 8000, 2, bits, float, &x);
        let (rate, y) = read_wav(&p).unwrap();
        assert_eq!((rate, y.len()), (8000, x.len()), "{bits} bits");
        let err = x.iter().zip(&y).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < if bits == 8 { 0.02 } else { 1e-3 }, "{bits} bits float={float}: {err}");
    }
}

fn speech_like_set(root: &Path) {
    for (ci, word) in ["no", "yes"].iter().enumerate() {
        for spk in 0..12 {
            for n in 0..2 {
                let rate = if spk % 3 == 0 { 44_100 } else { 16_000 };
                let f = 300.0 + 400.0 * ci as f32 + 10.0 * spk as f32;
                write_wav(
                    &root.join(word).join(format!("spk{spk:02}_nohash_{n}.wav")),
                    rate,
                    1,
                    16,
                    false,
                    &tone(rate, 0.6 + 0.1 * n as f32, f),
                );
            }
        }
    }
    write_wav(&root.join("_background_noise_/hum.wav"), 16_000, 1, 16, false, &tone(16_000, 3.0, 50.0));
    std::fs::write(root.join("yes/broken.wav"), b"RIFF\x10\x00\x00\x00WAVEfmt junk").unwrap();
}

#[test]
fn catalog_splits_by_speaker_and_noise_is_no_class() {
    let dir = tempfile::tempdir().unwrap();
    speech_like_set(dir.path());
    let opts = AudioOptions { validation_percent: 25.0, testing_percent: 25.0, silence: true, ..Default::default() };
    let cat = AudioCatalog::open(dir.path(), &opts).unwrap();
    assert_eq!(cat.class_names, vec!["no", "yes", "silence"]);
    assert_eq!(cat.noise.len(), 1);
    assert_eq!(cat.skipped.len(), 1);
    assert!(cat.skipped[0].path.ends_with("broken.wav"), "{:?}", cat.skipped);
    assert!(!cat.split_from_lists);
    // One speaker, one split.
    for a in &cat.clips {
        for b in &cat.clips {
            if a.rate > 0
                && b.rate > 0
                && a.key.split('/').nth(1).map(|s| &s[..5]) == b.key.split('/').nth(1).map(|s| &s[..5])
            {
                assert_eq!(a.split, b.split, "{} vs {}", a.key, b.key);
            }
        }
    }
    let counts = cat.counts();
    assert!(counts.iter().all(|split| split[2] > 0), "silence in every split: {counts:?}");
    assert_eq!(cat.rates().keys().copied().collect::<Vec<_>>(), vec![16_000, 44_100]);
    let (min, _, max) = cat.durations();
    assert!((min - 0.6).abs() < 0.01 && (max - 0.7).abs() < 0.01);
    // Same seed, same catalog; another seed may split differently but stays valid.
    assert_eq!(AudioCatalog::open(dir.path(), &opts).unwrap(), cat);

    let cfg = FrontEndConfig::new(16_000, 30, 20, 10);
    let cache = dir.path().join("cache");
    let f = audio_features(&cat, &cfg, Some(&cache)).unwrap();
    assert_eq!((f.frames, f.channels), (49, 10));
    let total: usize = f.splits.iter().map(|s| s.labels.len()).sum();
    assert_eq!(total, cat.clips.len());
    for s in &f.splits {
        assert_eq!(s.int8.len(), s.labels.len() * 49 * 10);
    }
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    assert_eq!(audio_features(&cat, &cfg, Some(&cache)).unwrap(), f, "the cached features are the computed ones");
    assert_eq!(audio_features(&cat, &cfg, None).unwrap(), f, "computing again gives the same features");
    let report = cat.report().to_string();
    assert!(report.contains("broken.wav") && report.contains("44100 Hz") && report.contains("silence"), "{report}");
}

#[test]
fn list_files_decide_the_splits() {
    let dir = tempfile::tempdir().unwrap();
    speech_like_set(dir.path());
    std::fs::write(dir.path().join("validation_list.txt"), "no/spk01_nohash_0.wav\n").unwrap();
    std::fs::write(dir.path().join("testing_list.txt"), "yes/spk02_nohash_1.wav\n").unwrap();
    let cat = AudioCatalog::open(dir.path(), &AudioOptions::default()).unwrap();
    assert!(cat.split_from_lists);
    let split = |k: &str| cat.clips.iter().find(|c| c.key == k).unwrap().split;
    assert_eq!(split("no/spk01_nohash_0.wav"), AudioSplit::Validation);
    assert_eq!(split("yes/spk02_nohash_1.wav"), AudioSplit::Test);
    assert_eq!(cat.counts()[1].iter().sum::<usize>(), 1);
    assert_eq!(cat.counts()[2].iter().sum::<usize>(), 1);
}

#[test]
fn a_folder_without_clips_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    assert!(AudioCatalog::open(&dir.path().join("nope"), &AudioOptions::default()).is_err());
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    std::fs::write(dir.path().join("a/x.wav"), b"not a wav").unwrap();
    let e = AudioCatalog::open(dir.path(), &AudioOptions::default()).unwrap_err().to_string();
    assert!(e.contains("x.wav"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    /// Truncated and bit-flipped WAV files: the catalog skips them by name or lists them,
    /// decoding gives a clip or an error, and nothing panics.
    #[test]
    fn fuzzed_and_truncated_wavs_never_panic(
        bits in prop_oneof![Just(8u16), Just(16), Just(24), Just(32)],
        cut in 0usize..2000,
        flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..6),
    ) {
        let good = wav_bytes(8000, bits, &tone(8000, 0.05, 300.0));
        let mut bytes = good.clone();
        for (at, v) in flips {
            if let Some(b) = bytes.get_mut(at % good.len()) {
                *b = v;
            }
        }
        bytes.truncate(cut.min(bytes.len()));
        let _ = read_wav_from(std::io::Cursor::new(&bytes));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("w")).unwrap();
        std::fs::write(dir.path().join("w/fuzz.wav"), &bytes).unwrap();
        write_wav(&dir.path().join("w/ok.wav"), 8000, 1, 16, false, &tone(8000, 0.05, 300.0));
        let cat = AudioCatalog::open(dir.path(), &AudioOptions::default()).unwrap();
        for s in &cat.skipped {
            prop_assert!(s.path.ends_with("fuzz.wav") && !s.reason.is_empty());
        }
        for i in 0..cat.clips.len() {
            if let Err(e) = cat.load(i, 8000, 800) {
                prop_assert!(e.contains("fuzz.wav"), "{}", e);
            }
        }
    }
}

/// Runs tools/make-speech-set.sh into `out` (2 keywords, 4 speakers); `None` when
/// espeak-ng or sox is missing, unless `CI` is set (then it fails).
pub fn spoken_set(out: &Path, words: &str, speakers: u32) -> Option<()> {
    let have = |t: &str| std::process::Command::new(t).arg("--version").output().is_ok_and(|o| o.status.success());
    if !(have("espeak-ng") && have("sox")) {
        assert!(std::env::var_os("CI").is_none(), "CI is set but espeak-ng or sox is missing");
        eprintln!("skipped: espeak-ng and sox are needed for the spoken set");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/make-speech-set.sh");
    let st = std::process::Command::new("bash")
        .arg(script)
        .arg(out)
        .args(["--speakers", &speakers.to_string(), "--takes", "1", "--seed", "7", "--words", words])
        .status()
        .unwrap();
    assert!(st.success());
    Some(())
}

#[test]
fn the_generated_spoken_set_reads_as_speech_commands() {
    let dir = tempfile::tempdir().unwrap();
    let Some(()) = spoken_set(dir.path(), "yes no", 6) else { return };
    let opts = AudioOptions { validation_percent: 30.0, testing_percent: 30.0, silence: true, ..Default::default() };
    let cat = AudioCatalog::open(dir.path(), &opts).unwrap();
    assert_eq!(cat.class_names, vec!["no", "yes", "silence"]);
    assert_eq!(cat.noise.len(), 3);
    assert!(cat.skipped.is_empty(), "{:?}", cat.skipped);
    assert_eq!(cat.rates().keys().copied().collect::<Vec<_>>(), vec![16_000]);
    let f = audio_features(&cat, &FrontEndConfig::default(), None).unwrap();
    assert_eq!((f.frames, f.channels), (49, 40));
    // Speech gives features well above the floor somewhere.
    assert!(f.splits.iter().any(|s| s.int8.iter().any(|&v| v > 0)));
}
