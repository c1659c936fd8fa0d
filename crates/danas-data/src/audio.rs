//! Audio data: `audio:DIR`, one sub-folder of `.wav` files per class, the Google Speech
//! Commands layout included.
//!
//! - WAV files: PCM 8/16/24/32-bit or 32-bit float, any rate, the first channel
//!   ([`read_wav`], through `hound`); resampled to the front end's rate with `rubato`'s
//!   FFT resampler; padded with zeros or cut to the clip length.
//! - Splits: `validation_list.txt` and `testing_list.txt` (paths relative to DIR) when
//!   present, the rest is train; otherwise a seeded split by speaker: the file-name prefix
//!   before `_nohash_` (the whole stem when there is none) is hashed with the seed, so all
//!   clips of one speaker land in one split.
//! - `_background_noise_/`: never a word class; its files are mixed into training clips
//!   (seeded: which file, where, how loud) and, when asked, cut into a `silence` class.
//! - Features: [`audio_features`] runs danas-signal's front end (the device's integer
//!   arithmetic) on every clip from a fresh state, cached per front-end configuration.
//!
//! Files that cannot be used (not WAV, truncated, empty, an unsupported format) are
//! skipped with their name and the reason; nothing here panics on file contents.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use danas_signal::{FrontEnd, FrontEndConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::DataError;
use crate::source::{Fnv, Skipped, file_stamp};

/// The folder of background noise in the Speech Commands layout.
pub const BACKGROUND_NOISE_DIR: &str = "_background_noise_";
/// Name of the optional class cut from the background noise.
pub const SILENCE_CLASS: &str = "silence";
/// Longest WAV file read, in seconds (longer files are skipped).
pub const MAX_WAV_SECONDS: u64 = 600;

/// One of the three splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AudioSplit {
    /// Training.
    Train,
    /// Validation (search decisions).
    Validation,
    /// Test (final reports only).
    Test,
}

impl AudioSplit {
    /// The three splits in order.
    pub const ALL: [AudioSplit; 3] = [AudioSplit::Train, AudioSplit::Validation, AudioSplit::Test];
    /// `train`, `validation` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            AudioSplit::Train => "train",
            AudioSplit::Validation => "validation",
            AudioSplit::Test => "test",
        }
    }
}

/// How an audio folder becomes clips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioOptions {
    /// Clip length in ms (clips are padded or cut to it).
    pub clip_ms: u32,
    /// Seed of the speaker split, the noise mixing and the silence clips.
    pub seed: u64,
    /// Percent of speakers for validation when there are no list files.
    pub validation_percent: f64,
    /// Percent of speakers for test when there are no list files.
    pub testing_percent: f64,
    /// Whether to add a `silence` class cut from the background noise.
    pub silence: bool,
    /// Probability that a training clip gets background noise mixed in.
    pub noise_probability: f64,
    /// Largest volume of mixed-in noise (its peak relative to full scale).
    pub noise_volume: f32,
}

impl Default for AudioOptions {
    fn default() -> Self {
        Self {
            clip_ms: 1000,
            seed: 0,
            validation_percent: 10.0,
            testing_percent: 10.0,
            silence: false,
            noise_probability: 0.8,
            noise_volume: 0.1,
        }
    }
}

/// Where a clip's audio comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipOrigin {
    /// A WAV file.
    File(PathBuf),
    /// A silence clip: background noise file `noise` (index into
    /// [`AudioCatalog::noise`]) scaled down, cut at a seeded position.
    Silence {
        /// Index of the noise file.
        noise: usize,
        /// Seed of position and volume.
        seed: u64,
    },
}

/// One clip of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioClip {
    /// Path relative to DIR (or `silence#N`), shown in reports.
    pub key: String,
    /// Where the audio comes from.
    pub origin: ClipOrigin,
    /// Class index.
    pub label: u32,
    /// Split.
    pub split: AudioSplit,
    /// Sample rate of the file.
    pub rate: u32,
    /// Samples (per channel) in the file.
    pub samples: u64,
}

/// A background noise file.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseFile {
    /// Path.
    pub path: PathBuf,
    /// Sample rate.
    pub rate: u32,
    /// Samples per channel.
    pub samples: u64,
}

/// Everything an audio folder holds, before any sample is decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioCatalog {
    /// The folder.
    pub dir: PathBuf,
    /// Class names (word classes sorted, then `silence` if asked).
    pub class_names: Vec<String>,
    /// The clips.
    pub clips: Vec<AudioClip>,
    /// Background noise files.
    pub noise: Vec<NoiseFile>,
    /// Files skipped and why.
    pub skipped: Vec<Skipped>,
    /// Whether the splits came from `validation_list.txt` / `testing_list.txt`.
    pub split_from_lists: bool,
    /// Identifies the content (paths, sizes, time stamps) and the options.
    pub fingerprint: u64,
    /// The options the catalog was made with.
    pub options: AudioOptions,
}

/// Decodes a WAV file: its sample rate and its first channel in [−1, 1].
///
/// # Errors
/// The reason, as text, for a file that is not a readable PCM or float WAV.
pub fn read_wav(path: &Path) -> Result<(u32, Vec<f32>), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    read_wav_from(std::io::BufReader::new(file))
}

/// [`read_wav`] from any reader.
///
/// # Errors
/// The reason, as text, when the bytes are not a readable PCM or float WAV.
pub fn read_wav_from<R: Read>(reader: R) -> Result<(u32, Vec<f32>), String> {
    // hound is not ours: keep any panic of it from reaching the caller.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(reader)))
        .unwrap_or_else(|_| Err("the WAV decoder failed on this file".into()))
}

fn decode<R: Read>(reader: R) -> Result<(u32, Vec<f32>), String> {
    let mut r = hound::WavReader::new(reader).map_err(|e| format!("not a readable WAV file: {e}"))?;
    let spec = r.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(format!("{} channels at {} Hz", spec.channels, spec.sample_rate));
    }
    let frames = u64::from(r.duration());
    if frames > MAX_WAV_SECONDS * u64::from(spec.sample_rate) {
        return Err(format!("longer than {MAX_WAV_SECONDS} s"));
    }
    let ch = usize::from(spec.channels);
    let mut out = Vec::with_capacity(frames as usize);
    match spec.sample_format {
        hound::SampleFormat::Float if spec.bits_per_sample == 32 => {
            for (i, s) in r.samples::<f32>().enumerate() {
                let s = s.map_err(|e| format!("sample {i}: {e}"))?;
                if i % ch == 0 {
                    out.push(if s.is_finite() { s.clamp(-1.0, 1.0) } else { 0.0 });
                }
            }
        }
        hound::SampleFormat::Int if matches!(spec.bits_per_sample, 8 | 16 | 24 | 32) => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f64;
            for (i, s) in r.samples::<i32>().enumerate() {
                let s = s.map_err(|e| format!("sample {i}: {e}"))?;
                if i % ch == 0 {
                    out.push((f64::from(s) * scale) as f32);
                }
            }
        }
        f => return Err(format!("unsupported sample format {f:?} with {} bits", spec.bits_per_sample)),
    }
    if out.is_empty() {
        return Err("no samples".into());
    }
    Ok((spec.sample_rate, out))
}

/// Resamples `x` from `from` Hz to `to` Hz (rubato's synchronous FFT resampler).
///
/// # Errors
/// The resampler's reason, as text.
pub fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>, String> {
    use rubato::Resampler;
    use rubato::audioadapter_buffers::direct::InterleavedSlice;
    if from == to || x.is_empty() {
        return Ok(x.to_vec());
    }
    let mut rs = rubato::Fft::<f32>::new(from as usize, to as usize, 1024, 1, rubato::FixedSync::Input)
        .map_err(|e| format!("resampler {from} → {to} Hz: {e}"))?;
    let needed = rs.process_all_needed_output_len(x.len());
    let mut out = vec![0f32; needed];
    let input = InterleavedSlice::new(x, 1, x.len()).map_err(|e| format!("resampler input: {e}"))?;
    let mut output = InterleavedSlice::new_mut(&mut out, 1, needed).map_err(|e| format!("resampler output: {e}"))?;
    let (_, produced) =
        rs.process_all_into_buffer(&input, &mut output, x.len(), None).map_err(|e| format!("resampling: {e}"))?;
    out.truncate(produced);
    Ok(out)
}

fn header(path: &Path) -> Result<(u32, u64), String> {
    let open = || -> Result<(u32, u64), String> {
        let r = hound::WavReader::open(path).map_err(|e| format!("not a readable WAV file: {e}"))?;
        let spec = r.spec();
        let ok_format = match spec.sample_format {
            hound::SampleFormat::Float => spec.bits_per_sample == 32,
            hound::SampleFormat::Int => matches!(spec.bits_per_sample, 8 | 16 | 24 | 32),
        };
        if !ok_format {
            return Err(format!(
                "unsupported sample format {:?} with {} bits",
                spec.sample_format, spec.bits_per_sample
            ));
        }
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err(format!("{} channels at {} Hz", spec.channels, spec.sample_rate));
        }
        let frames = u64::from(r.duration());
        if frames == 0 {
            return Err("no samples".into());
        }
        // A truncated file: its data chunk claims more bytes than the file holds.
        let bytes = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
        let need = frames * u64::from(spec.channels) * u64::from(spec.bits_per_sample / 8);
        if need > bytes {
            return Err(format!("truncated: its header announces {need} bytes of samples, the file has {bytes}"));
        }
        if frames > MAX_WAV_SECONDS * u64::from(spec.sample_rate) {
            return Err(format!("longer than {MAX_WAV_SECONDS} s"));
        }
        Ok((spec.sample_rate, frames))
    };
    std::panic::catch_unwind(open).unwrap_or_else(|_| Err("the WAV decoder failed on this file".into()))
}

fn speaker(file_name: &str) -> &str {
    let stem = file_name.strip_suffix(".wav").or_else(|| file_name.strip_suffix(".WAV")).unwrap_or(file_name);
    stem.split_once("_nohash_").map_or(stem, |(s, _)| s)
}

fn read_list(path: &Path) -> Result<Option<HashSet<String>>, DataError> {
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| DataError::Io { action: "read", path: path.into(), source: e })?;
    Ok(Some(text.lines().map(|l| l.trim().replace('\\', "/")).filter(|l| !l.is_empty()).collect()))
}

fn wav_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::Io { action: "list", path: dir.into(), source: e })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav")))
        .collect();
    files.sort();
    Ok(files)
}

impl AudioCatalog {
    /// Lists `dir`: class folders, their WAV headers, the splits and the noise files.
    ///
    /// # Errors
    /// [`DataError::NotFound`] for a missing folder, [`DataError::Io`] for an unreadable
    /// one, [`DataError::Empty`]-style errors when no class has a usable clip.
    pub fn open(dir: &Path, options: &AudioOptions) -> Result<Self, DataError> {
        if !dir.is_dir() {
            return Err(DataError::NotFound { what: "audio directory", path: dir.into() });
        }
        let validation = read_list(&dir.join("validation_list.txt"))?;
        let testing = read_list(&dir.join("testing_list.txt"))?;
        let split_from_lists = validation.is_some() || testing.is_some();
        let rd = std::fs::read_dir(dir).map_err(|e| DataError::Io { action: "list", path: dir.into(), source: e })?;
        let mut class_dirs: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .filter(|p| {
                p.file_name().is_some_and(|n| n != BACKGROUND_NOISE_DIR && !n.to_string_lossy().starts_with('.'))
            })
            .collect();
        class_dirs.sort();
        let mut fp = Fnv::default().str("audio").str(&serde_json::to_string(options).unwrap_or_default());
        let mut skipped = Vec::new();
        let mut clips = Vec::new();
        let mut class_names = Vec::new();
        for cdir in &class_dirs {
            let name = cdir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let label = class_names.len() as u32;
            let mut any = false;
            for path in wav_files(cdir)? {
                let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let key = format!("{name}/{file_name}");
                if let Ok(meta) = std::fs::metadata(&path) {
                    fp = file_stamp(fp, &path, &meta);
                }
                let (rate, samples) = match header(&path) {
                    Ok(h) => h,
                    Err(reason) => {
                        skipped.push(Skipped { path: path.display().to_string(), reason });
                        continue;
                    }
                };
                let split = if split_from_lists {
                    if testing.as_ref().is_some_and(|l| l.contains(&key)) {
                        AudioSplit::Test
                    } else if validation.as_ref().is_some_and(|l| l.contains(&key)) {
                        AudioSplit::Validation
                    } else {
                        AudioSplit::Train
                    }
                } else {
                    let h = Fnv::default().u64(options.seed).str(speaker(&file_name)).finish();
                    let pct = (h % 1_000_000) as f64 / 10_000.0;
                    if pct < options.validation_percent {
                        AudioSplit::Validation
                    } else if pct < options.validation_percent + options.testing_percent {
                        AudioSplit::Test
                    } else {
                        AudioSplit::Train
                    }
                };
                clips.push(AudioClip { key, origin: ClipOrigin::File(path), label, split, rate, samples });
                any = true;
            }
            if any {
                class_names.push(name);
            }
        }
        let mut noise = Vec::new();
        let ndir = dir.join(BACKGROUND_NOISE_DIR);
        if ndir.is_dir() {
            for path in wav_files(&ndir)? {
                if let Ok(meta) = std::fs::metadata(&path) {
                    fp = file_stamp(fp, &path, &meta);
                }
                match header(&path) {
                    Ok((rate, samples)) => noise.push(NoiseFile { path, rate, samples }),
                    Err(reason) => skipped.push(Skipped { path: path.display().to_string(), reason }),
                }
            }
        }
        if clips.is_empty() {
            return Err(DataError::Format {
                path: dir.into(),
                reason: format!(
                    "no usable .wav clips in class sub-folders ({} files skipped{})",
                    skipped.len(),
                    skipped.first().map(|s| format!("; first: {}: {}", s.path, s.reason)).unwrap_or_default()
                ),
            });
        }
        if options.silence {
            if noise.is_empty() {
                return Err(DataError::Format {
                    path: ndir,
                    reason: "a silence class was asked for, but there are no usable background noise files".into(),
                });
            }
            let label = class_names.len() as u32;
            class_names.push(SILENCE_CLASS.into());
            let words = label as usize;
            for split in AudioSplit::ALL {
                let n = clips.iter().filter(|c| c.split == split).count() / words.max(1);
                for k in 0..n.max(1) {
                    let seed = Fnv::default().u64(options.seed).str(split.name()).u64(k as u64).finish();
                    clips.push(AudioClip {
                        key: format!("{SILENCE_CLASS}#{}-{k}", split.name()),
                        origin: ClipOrigin::Silence { noise: (seed % noise.len() as u64) as usize, seed },
                        label,
                        split,
                        rate: 0,
                        samples: 0,
                    });
                }
            }
        }
        Ok(Self {
            dir: dir.into(),
            class_names,
            clips,
            noise,
            skipped,
            split_from_lists,
            fingerprint: fp.finish(),
            options: options.clone(),
        })
    }

    /// Clips per split and class: `[split][class]`.
    pub fn counts(&self) -> [Vec<usize>; 3] {
        let mut c = [vec![0; self.class_names.len()], vec![0; self.class_names.len()], vec![0; self.class_names.len()]];
        for clip in &self.clips {
            c[clip.split as usize][clip.label as usize] += 1;
        }
        c
    }

    /// Files per sample rate (noise files included).
    pub fn rates(&self) -> BTreeMap<u32, usize> {
        let mut m = BTreeMap::new();
        for r in self.clips.iter().filter(|c| c.rate > 0).map(|c| c.rate).chain(self.noise.iter().map(|n| n.rate)) {
            *m.entry(r).or_insert(0) += 1;
        }
        m
    }

    /// Shortest, mean and longest clip duration in seconds (files only).
    pub fn durations(&self) -> (f64, f64, f64) {
        let d: Vec<f64> =
            self.clips.iter().filter(|c| c.rate > 0).map(|c| c.samples as f64 / f64::from(c.rate)).collect();
        if d.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        let min = d.iter().copied().fold(f64::INFINITY, f64::min);
        let max = d.iter().copied().fold(0.0, f64::max);
        (min, d.iter().sum::<f64>() / d.len() as f64, max)
    }

    fn noise_at(&self, i: usize, rate: u32) -> Result<Vec<f32>, String> {
        let n = &self.noise[i];
        let (r, x) = read_wav(&n.path).map_err(|e| format!("{}: {e}", n.path.display()))?;
        resample(&x, r, rate)
    }

    /// The int16 samples of clip `i` at `rate` Hz, `clip_samples` long: decoded,
    /// resampled, padded or cut, and (training clips, seeded) mixed with noise.
    ///
    /// # Errors
    /// The reason, naming the file, when its audio cannot be read.
    pub fn load(&self, i: usize, rate: u32, clip_samples: usize) -> Result<Vec<i16>, String> {
        let clip = &self.clips[i];
        let o = &self.options;
        let mut rng = ChaCha8Rng::seed_from_u64(Fnv::default().u64(o.seed).str(&clip.key).finish());
        let mut x = match &clip.origin {
            ClipOrigin::File(path) => {
                let (r, x) = read_wav(path).map_err(|e| format!("{}: {e}", path.display()))?;
                resample(&x, r, rate).map_err(|e| format!("{}: {e}", path.display()))?
            }
            ClipOrigin::Silence { .. } => Vec::new(),
        };
        x.resize(clip_samples, 0.0);
        let (mix, volume) = match &clip.origin {
            ClipOrigin::Silence { noise, .. } => (Some(*noise), rng.random_range(0.0..=o.noise_volume.max(1e-6))),
            ClipOrigin::File(_) if clip.split == AudioSplit::Train && !self.noise.is_empty() => {
                if rng.random_bool(o.noise_probability.clamp(0.0, 1.0)) {
                    (Some(rng.random_range(0..self.noise.len())), rng.random_range(0.0..=o.noise_volume.max(1e-6)))
                } else {
                    (None, 0.0)
                }
            }
            ClipOrigin::File(_) => (None, 0.0),
        };
        if let Some(k) = mix {
            let noise = self.noise_at(k, rate)?;
            if !noise.is_empty() {
                let start = rng.random_range(0..noise.len().saturating_sub(clip_samples).max(1));
                for (j, s) in x.iter_mut().enumerate() {
                    *s += volume * noise[(start + j) % noise.len()];
                }
            }
        }
        Ok(x.iter().map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).collect())
    }
}

/// Features of one split: `clips × frames × channels` int8 model inputs and labels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SplitFeatures {
    /// int8 features, clip after clip.
    pub int8: Vec<i8>,
    /// Class of each clip.
    pub labels: Vec<u32>,
    /// Index into the catalog's clips of each clip.
    pub clips: Vec<u32>,
}

/// The features of a catalog under one front end.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFeatures {
    /// The front end.
    pub config: FrontEndConfig,
    /// Frames per clip.
    pub frames: usize,
    /// Channels per frame.
    pub channels: usize,
    /// Train, validation, test.
    pub splits: [SplitFeatures; 3],
    /// Clips whose audio could not be read, and why.
    pub skipped: Vec<Skipped>,
}

const CACHE_MAGIC: &[u8; 8] = b"DNAUDIO1";

fn cache_key(cat: &AudioCatalog, cfg: &FrontEndConfig) -> u64 {
    Fnv::default().u64(cat.fingerprint).str(&serde_json::to_string(cfg).unwrap_or_default()).finish()
}

fn write_cache(path: &Path, f: &AudioFeatures) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    w.write_all(CACHE_MAGIC)?;
    for v in [f.frames as u64, f.channels as u64] {
        w.write_all(&v.to_le_bytes())?;
    }
    for s in &f.splits {
        w.write_all(&(s.labels.len() as u64).to_le_bytes())?;
        for (&l, &c) in s.labels.iter().zip(&s.clips) {
            w.write_all(&l.to_le_bytes())?;
            w.write_all(&c.to_le_bytes())?;
        }
        w.write_all(&s.int8.iter().map(|&v| v as u8).collect::<Vec<u8>>())?;
    }
    let skipped = serde_json::to_vec(&f.skipped).unwrap_or_default();
    w.write_all(&(skipped.len() as u64).to_le_bytes())?;
    w.write_all(&skipped)?;
    w.flush()?;
    drop(w);
    std::fs::rename(tmp, path)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

fn read_cache(path: &Path, cfg: &FrontEndConfig) -> Option<AudioFeatures> {
    let bytes = std::fs::read(path).ok()?;
    let mut c = Cursor { bytes: &bytes, at: 0 };
    if c.take(8)? != CACHE_MAGIC {
        return None;
    }
    let frames = c.u64()? as usize;
    let channels = c.u64()? as usize;
    let mut splits: [SplitFeatures; 3] = Default::default();
    for s in &mut splits {
        let n = c.u64()? as usize;
        for _ in 0..n {
            s.labels.push(c.u32()?);
            s.clips.push(c.u32()?);
        }
        s.int8 = c.take(n.checked_mul(frames)?.checked_mul(channels)?)?.iter().map(|&v| v as i8).collect();
    }
    let k = c.u64()? as usize;
    let skipped = serde_json::from_slice(c.take(k)?).ok()?;
    Some(AudioFeatures { config: cfg.clone(), frames, channels, splits, skipped })
}

/// The features of every clip of `cat` under `config`, from `cache_dir` when cached
/// there (file `audio-<key>.bin`, keyed by the catalog's fingerprint and the front end),
/// computed in parallel and written there otherwise.
///
/// # Errors
/// [`DataError::Spec`] for an invalid front end, [`DataError::Io`] when the cache cannot
/// be written, [`DataError::Format`] when no clip could be read.
pub fn audio_features(
    cat: &AudioCatalog,
    config: &FrontEndConfig,
    cache_dir: Option<&Path>,
) -> Result<AudioFeatures, DataError> {
    let fe = FrontEnd::new(config).map_err(|e| DataError::Spec { spec: "front end".into(), reason: e.to_string() })?;
    let cache = cache_dir.map(|d| d.join(format!("audio-{:016x}.bin", cache_key(cat, config))));
    if let Some(f) = cache.as_deref().and_then(|p| read_cache(p, config)) {
        return Ok(f);
    }
    let clip_samples = (u64::from(cat.options.clip_ms) * u64::from(config.sample_rate) / 1000) as usize;
    let frames = config.frames(clip_samples);
    let channels = config.channels as usize;
    let results: Vec<Result<Vec<i8>, String>> = (0..cat.clips.len())
        .into_par_iter()
        .map(|i| cat.load(i, config.sample_rate, clip_samples).map(|s| fe.clip(&s).int8))
        .collect();
    let mut splits: [SplitFeatures; 3] = Default::default();
    let mut skipped = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        let clip = &cat.clips[i];
        match r {
            Ok(v) => {
                let s = &mut splits[clip.split as usize];
                s.int8.extend(v);
                s.labels.push(clip.label);
                s.clips.push(i as u32);
            }
            Err(reason) => skipped.push(Skipped { path: clip.key.clone(), reason }),
        }
    }
    if splits.iter().all(|s| s.labels.is_empty()) {
        return Err(DataError::Format {
            path: cat.dir.clone(),
            reason: format!(
                "no clip could be read{}",
                skipped.first().map(|s| format!("; first: {}: {}", s.path, s.reason)).unwrap_or_default()
            ),
        });
    }
    let f = AudioFeatures { config: config.clone(), frames, channels, splits, skipped };
    if let (Some(path), Some(dir)) = (cache.as_deref(), cache_dir) {
        std::fs::create_dir_all(dir).map_err(|e| DataError::Io { action: "create", path: dir.into(), source: e })?;
        write_cache(path, &f).map_err(|e| DataError::Io { action: "write", path: path.into(), source: e })?;
    }
    Ok(f)
}

/// What `danas data inspect audio:DIR` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioReport {
    /// The folder.
    pub dir: String,
    /// Class names.
    pub classes: Vec<String>,
    /// Clips per split (train, validation, test) and class.
    pub clips: BTreeMap<String, Vec<usize>>,
    /// Whether the splits came from the list files (else the seeded speaker split).
    pub split_from_lists: bool,
    /// Files per sample rate.
    pub sample_rates: BTreeMap<u32, usize>,
    /// Shortest, mean and longest clip in seconds.
    pub duration_s: (f64, f64, f64),
    /// Background noise files.
    pub noise_files: usize,
    /// Files skipped and why.
    pub skipped: Vec<Skipped>,
}

impl AudioCatalog {
    /// The inspection report.
    pub fn report(&self) -> AudioReport {
        let counts = self.counts();
        AudioReport {
            dir: self.dir.display().to_string(),
            classes: self.class_names.clone(),
            clips: AudioSplit::ALL.iter().map(|s| (s.name().to_string(), counts[*s as usize].clone())).collect(),
            split_from_lists: self.split_from_lists,
            sample_rates: self.rates(),
            duration_s: self.durations(),
            noise_files: self.noise.len(),
            skipped: self.skipped.clone(),
        }
    }
}

impl std::fmt::Display for AudioReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "audio:{}", self.dir)?;
        let how =
            if self.split_from_lists { "validation_list.txt / testing_list.txt" } else { "seeded split by speaker" };
        writeln!(f, "{} classes; splits from {how}", self.classes.len())?;
        write!(f, "{:<16}", "class")?;
        for s in AudioSplit::ALL {
            write!(f, " {:>10}", s.name())?;
        }
        writeln!(f)?;
        for (c, name) in self.classes.iter().enumerate() {
            write!(f, "{name:<16}")?;
            for s in AudioSplit::ALL {
                write!(f, " {:>10}", self.clips.get(s.name()).and_then(|v| v.get(c)).copied().unwrap_or(0))?;
            }
            writeln!(f)?;
        }
        let rates: Vec<String> = self.sample_rates.iter().map(|(r, n)| format!("{r} Hz × {n}")).collect();
        writeln!(f, "sample rates: {}", rates.join(", "))?;
        let (min, mean, max) = self.duration_s;
        writeln!(f, "durations: {min:.3} s to {max:.3} s, mean {mean:.3} s")?;
        writeln!(f, "background noise files: {}", self.noise_files)?;
        writeln!(f, "skipped: {}", self.skipped.len())?;
        for s in &self.skipped {
            writeln!(f, "  {}: {}", s.path, s.reason)?;
        }
        Ok(())
    }
}
