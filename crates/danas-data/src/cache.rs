//! The on-disk cache of decoded, resized 8-bit images.
//!
//! Layout: `<cache dir>/<source fingerprint>/<split>-<selection hash>-base<B>/` holds
//! - `data.bin`: the images, RGB u8, back to back, each with its shorter side resized to `B`
//!   (or left as is when already smaller) and its longer side cropped to at most twice the
//!   shorter one;
//! - `index.bin`: 24 bytes per image: offset (u64), width, height, label, record (u32), LE;
//! - `meta.json`: counts, the images skipped while building and why;
//! - `eval<r>.bin`: the evaluation transform (shorter side to `r`, centre crop `r × r`) of
//!   every image at resolution `r`, RGB u8, derived from `data.bin` without decoding.
//!
//! Grayscale is computed from the cached RGB bytes when batches are assembled, so one cache
//! serves both colour encodings. Files are read with positional reads (the page cache makes
//! repeated passes cheap); no memory mapping, since the workspace forbids `unsafe`.
//!
//! **Memory while building:** the source's images are fetched into a chunk of at most
//! `chunk` encoded images, which is then decoded and shrunk in parallel (each worker drops the
//! full-size image as soon as its base copy exists) and written out before the next chunk is
//! filled; so at most `chunk` decoded full-size images exist at any time. The counter
//! [`BuildStats::max_live_full_size`] checks this.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::DataError;
use crate::source::{Catalog, Skipped, Source};
use crate::transform::{self, RgbImage};

const INDEX_BYTES: usize = 24;
const MAX_ASPECT: f64 = 2.0;

/// One cached image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Byte offset in `data.bin`.
    pub offset: u64,
    /// Width of the base image.
    pub width: u32,
    /// Height of the base image.
    pub height: u32,
    /// Class index.
    pub label: u32,
    /// Index of the record in the source's catalog (for flags and keys).
    pub record: u32,
}

/// What `meta.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheMeta {
    /// Format version.
    pub version: u32,
    /// The source, as described by it.
    pub source: String,
    /// Split name.
    pub split: String,
    /// Base side `B`.
    pub base: u32,
    /// Number of cached images.
    pub count: usize,
    /// Bytes of `data.bin`.
    pub data_bytes: u64,
    /// Images requested from the source.
    pub requested: usize,
    /// Images that could not be decoded, with reasons.
    pub skipped: Vec<Skipped>,
}

/// Counters from building a cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildStats {
    /// Images decoded.
    pub decoded: usize,
    /// The largest number of decoded full-size images that existed at once.
    pub max_live_full_size: usize,
}

/// A built base cache of one split, opened for reading.
#[derive(Debug)]
pub struct BaseCache {
    /// Directory of the cache.
    pub dir: PathBuf,
    /// Its metadata.
    pub meta: CacheMeta,
    /// The images, in cache order.
    pub entries: Vec<Entry>,
    data: File,
    evals: Mutex<std::collections::HashMap<u32, Arc<File>>>,
    /// Counters of the build, when this process built it.
    pub stats: Option<BuildStats>,
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], off: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    f.read_exact_at(buf, off)
}

#[cfg(windows)]
fn read_at(f: &File, mut buf: &mut [u8], mut off: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = f.seek_read(buf, off)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        off += n as u64;
    }
    Ok(())
}

/// Total size in bytes of all files below `dir` (0 if it does not exist).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

impl BaseCache {
    /// Opens a complete cache directory; `None` if it is absent or incomplete.
    pub fn open(dir: &Path) -> Option<Self> {
        let meta: CacheMeta = serde_json::from_slice(&std::fs::read(dir.join("meta.json")).ok()?).ok()?;
        let index = std::fs::read(dir.join("index.bin")).ok()?;
        let data = File::open(dir.join("data.bin")).ok()?;
        if meta.version != 1
            || index.len() != meta.count * INDEX_BYTES
            || data.metadata().ok()?.len() != meta.data_bytes
        {
            return None;
        }
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let entries = index
            .chunks_exact(INDEX_BYTES)
            .map(|b| Entry {
                offset: u64::from(u32_at(b, 0)) | (u64::from(u32_at(b, 4)) << 32),
                width: u32_at(b, 8),
                height: u32_at(b, 12),
                label: u32_at(b, 16),
                record: u32_at(b, 20),
            })
            .collect();
        Some(Self { dir: dir.to_path_buf(), meta, entries, data, evals: Mutex::default(), stats: None })
    }

    /// Reads base image `i`.
    ///
    /// # Errors
    /// [`DataError::Io`] if the cache file cannot be read.
    pub fn image(&self, i: usize) -> Result<RgbImage, DataError> {
        let e = self.entries.get(i).ok_or_else(|| DataError::option("cache index", i, "beyond the cache"))?;
        let mut buf = vec![0u8; e.width as usize * e.height as usize * 3];
        read_at(&self.data, &mut buf, e.offset).map_err(|err| DataError::io("read", self.dir.join("data.bin"), err))?;
        RgbImage::new(e.width, e.height, buf)
    }

    /// The `eval<r>.bin` file, building it from the base images if needed.
    ///
    /// # Errors
    /// I/O errors, or [`DataError::CacheFull`] when it would exceed `cap` bytes in `root`.
    pub fn eval_file(&self, r: u32, root: &Path, cap: u64) -> Result<Arc<File>, DataError> {
        let mut evals = self.evals.lock().map_err(|_| DataError::option("cache", "poisoned", "a build panicked"))?;
        if let Some(f) = evals.get(&r) {
            return Ok(f.clone());
        }
        let path = self.dir.join(format!("eval{r}.bin"));
        let want = self.entries.len() as u64 * u64::from(r) * u64::from(r) * 3;
        let ok = std::fs::metadata(&path).is_ok_and(|m| m.len() == want);
        if !ok {
            let needed = dir_size(root) + want;
            if needed > cap {
                return Err(DataError::CacheFull { dir: root.to_path_buf(), needed, cap });
            }
            let tmp = self.dir.join(format!("eval{r}.bin.tmp{}", std::process::id()));
            let file = File::create(&tmp).map_err(|e| DataError::io("create", &tmp, e))?;
            let mut out = BufWriter::new(file);
            for start in (0..self.entries.len()).step_by(256) {
                let end = (start + 256).min(self.entries.len());
                let imgs: Vec<Result<RgbImage, DataError>> =
                    (start..end).into_par_iter().map(|i| transform::eval_crop(&self.image(i)?, r)).collect();
                for img in imgs {
                    out.write_all(&img?.data).map_err(|e| DataError::io("write", &tmp, e))?;
                }
            }
            out.flush().map_err(|e| DataError::io("write", &tmp, e))?;
            drop(out);
            std::fs::rename(&tmp, &path).map_err(|e| DataError::io("rename", &tmp, e))?;
        }
        let f = Arc::new(File::open(&path).map_err(|e| DataError::io("open", &path, e))?);
        evals.insert(r, f.clone());
        Ok(f)
    }

    /// Reads the evaluation images `first..first + n` (consecutive) into `buf` with one read.
    ///
    /// # Errors
    /// [`DataError::Io`] if the file cannot be read.
    pub fn read_eval_run(&self, file: &File, r: u32, first: usize, buf: &mut [u8]) -> Result<(), DataError> {
        let sz = u64::from(r) * u64::from(r) * 3;
        read_at(file, buf, first as u64 * sz)
            .map_err(|e| DataError::io("read", self.dir.join(format!("eval{r}.bin")), e))
    }

    /// Reads the `r × r` evaluation image `i` from an `eval<r>.bin` file into `buf`.
    ///
    /// # Errors
    /// [`DataError::Io`] if the file cannot be read.
    pub fn read_eval(&self, file: &File, r: u32, i: usize, buf: &mut [u8]) -> Result<(), DataError> {
        let sz = u64::from(r) * u64::from(r) * 3;
        read_at(file, buf, i as u64 * sz).map_err(|e| DataError::io("read", self.dir.join(format!("eval{r}.bin")), e))
    }
}

/// Builds the base cache of `wanted` (record indices) at base side `base` in `dir`.
///
/// # Errors
/// Source errors, I/O errors, [`DataError::CacheFull`] when the cache root would exceed `cap`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    source: &dyn Source,
    catalog: &Catalog,
    split: &str,
    wanted: &[usize],
    base: u32,
    dir: &Path,
    root: &Path,
    cap: u64,
    chunk: usize,
) -> Result<BaseCache, DataError> {
    let parent = dir.parent().unwrap_or(root);
    std::fs::create_dir_all(parent).map_err(|e| DataError::io("create", parent, e))?;
    let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| DataError::io("create", &tmp, e))?;
    let result = build_into(source, catalog, split, wanted, base, &tmp, root, cap, chunk);
    match result {
        Ok(stats) => {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::rename(&tmp, dir).map_err(|e| DataError::io("rename", &tmp, e))?;
            let mut c = BaseCache::open(dir)
                .ok_or_else(|| DataError::format(dir.join("meta.json"), "cache just written cannot be read back"))?;
            c.stats = Some(stats);
            Ok(c)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn build_into(
    source: &dyn Source,
    catalog: &Catalog,
    split: &str,
    wanted: &[usize],
    base: u32,
    tmp: &Path,
    root: &Path,
    cap: u64,
    chunk: usize,
) -> Result<BuildStats, DataError> {
    let data_path = tmp.join("data.bin");
    let mut data = BufWriter::new(File::create(&data_path).map_err(|e| DataError::io("create", &data_path, e))?);
    let mut index: Vec<u8> = Vec::with_capacity(wanted.len() * INDEX_BYTES);
    let mut skipped = Vec::new();
    let mut offset = 0u64;
    let mut count = 0usize;
    let used_before = dir_size(root);
    let live = AtomicUsize::new(0);
    let max_live = AtomicUsize::new(0);
    let mut decoded = 0usize;
    let mut pending: Vec<(usize, Result<crate::RawImage, String>)> = Vec::with_capacity(chunk);

    let mut flush = |pending: &mut Vec<(usize, Result<crate::RawImage, String>)>| -> Result<(), DataError> {
        let done: Vec<(usize, Result<RgbImage, String>)> = pending
            .par_drain(..)
            .map(|(w, raw)| {
                let img = raw.and_then(|r| {
                    let full = r.into_rgb()?;
                    let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                    max_live.fetch_max(now, Ordering::SeqCst);
                    let small = transform::shrink_shorter(full, base, MAX_ASPECT).map_err(|e| e.to_string());
                    live.fetch_sub(1, Ordering::SeqCst);
                    small
                });
                (w, img)
            })
            .collect();
        for (w, img) in done {
            let key = catalog.records.get(w).map_or_else(|| format!("#{w}"), |r| r.key.clone());
            match img {
                Ok(img) => {
                    decoded += 1;
                    data.write_all(&img.data).map_err(|e| DataError::io("write", &data_path, e))?;
                    let label = catalog.records.get(w).map_or(0, |r| r.label);
                    index.extend((offset as u32).to_le_bytes());
                    index.extend(((offset >> 32) as u32).to_le_bytes());
                    for v in [img.width, img.height, label, w as u32] {
                        index.extend(v.to_le_bytes());
                    }
                    offset += img.data.len() as u64;
                    count += 1;
                }
                Err(reason) => skipped.push(Skipped { path: key, reason }),
            }
        }
        if used_before + offset > cap {
            return Err(DataError::CacheFull { dir: root.to_path_buf(), needed: used_before + offset, cap });
        }
        Ok(())
    };

    source.fetch(catalog, wanted, &mut |w, raw| {
        pending.push((w, raw));
        if pending.len() >= chunk { flush(&mut pending) } else { Ok(()) }
    })?;
    flush(&mut pending)?;
    data.flush().map_err(|e| DataError::io("write", &data_path, e))?;
    drop(data);
    let index_path = tmp.join("index.bin");
    std::fs::write(&index_path, &index).map_err(|e| DataError::io("write", &index_path, e))?;
    let meta = CacheMeta {
        version: 1,
        source: source.describe(),
        split: split.to_string(),
        base,
        count,
        data_bytes: offset,
        requested: wanted.len(),
        skipped,
    };
    let meta_path = tmp.join("meta.json");
    let text = serde_json::to_vec_pretty(&meta).map_err(|e| DataError::format(&meta_path, e.to_string()))?;
    std::fs::write(&meta_path, text).map_err(|e| DataError::io("write", &meta_path, e))?;
    Ok(BuildStats { decoded, max_live_full_size: max_live.load(Ordering::SeqCst) })
}
