//! The [`Source`] trait: where images and labels come from.

use serde::{Deserialize, Serialize};

use crate::DataError;
use crate::transform::{self, RgbImage};

/// One image of a source, as listed by [`Source::catalog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where the image is: a file path, an archive member or an index, shown in reports.
    pub key: String,
    /// Class index, `0..classes`.
    pub label: u32,
    /// The source's own split (e.g. `train_quality`, `t10k` mapped to `test`), or `None`
    /// when the source has no splits and the pipeline carves them.
    pub split: Option<String>,
    /// Fine-grained flags, one per [`Catalog::flag_names`] entry: 1, 0, or −1 for unknown.
    pub flags: Vec<i8>,
}

/// An input that could not be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The file, archive member or CSV row.
    pub path: String,
    /// Why it was skipped.
    pub reason: String,
}

/// Everything a source lists before any image is decoded.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Class names; a record's label indexes this.
    pub class_names: Vec<String>,
    /// Names of the fine-grained flags carried by every record (may be empty).
    pub flag_names: Vec<String>,
    /// The usable images.
    pub records: Vec<Record>,
    /// Inputs found unusable while listing (unreadable files, bad CSV rows, missing files).
    pub skipped: Vec<Skipped>,
    /// Rows deliberately left out (e.g. Wake Vision rows with `person` = −1 or empty);
    /// these are not errors and do not count towards the bad fraction.
    pub excluded: usize,
    /// Identifies the content: changes when a file, its size or its time stamp changes.
    /// Caches are keyed by it.
    pub fingerprint: u64,
}

/// Image data as a source delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawImage {
    /// Encoded file bytes (JPEG or PNG), decoded by the pipeline in parallel.
    Encoded(Vec<u8>),
    /// Decoded pixels.
    Rgb(RgbImage),
}

impl RawImage {
    /// Decodes into RGB pixels.
    ///
    /// # Errors
    /// The reason, as text, when the bytes cannot be decoded.
    pub fn into_rgb(self) -> Result<RgbImage, String> {
        match self {
            RawImage::Encoded(b) => transform::decode(&b),
            RawImage::Rgb(img) => Ok(img),
        }
    }
}

/// Receives the images asked for in [`Source::fetch`]: the record index and the image or
/// the reason it could not be read. Returning an error stops the fetch.
pub type Sink<'a> = dyn FnMut(usize, Result<RawImage, String>) -> Result<(), DataError> + 'a;

/// A dataset format: lists its images ([`Source::catalog`]) and delivers their bytes
/// ([`Source::fetch`]). The pipeline does the decoding, transforms, splits and caching.
///
/// A minimal source of two flat-coloured classes:
/// ```
/// use danas_data::{Catalog, DataError, RawImage, Record, RgbImage, Sink, Source};
///
/// struct Flat;
/// impl Source for Flat {
///     fn describe(&self) -> String { "flat".into() }
///     fn catalog(&self) -> Result<Catalog, DataError> {
///         let records = (0..20)
///             .map(|i| Record { key: format!("flat#{i}"), label: i % 2, split: None, flags: vec![] })
///             .collect();
///         Ok(Catalog { class_names: vec!["dark".into(), "light".into()], records, fingerprint: 1, ..Default::default() })
///     }
///     fn fetch(&self, catalog: &Catalog, wanted: &[usize], sink: &mut Sink<'_>) -> Result<(), DataError> {
///         for &i in wanted {
///             let v = if catalog.records[i].label == 0 { 20 } else { 230 };
///             sink(i, Ok(RawImage::Rgb(RgbImage::new(8, 8, vec![v; 8 * 8 * 3])?)))?;
///         }
///         Ok(())
///     }
/// }
/// let cat = Flat.catalog().unwrap();
/// let mut n = 0;
/// Flat.fetch(&cat, &[0, 1, 2], &mut |_, img| { n += usize::from(img.is_ok()); Ok(()) }).unwrap();
/// assert_eq!(n, 3);
/// ```
pub trait Source: Send + Sync {
    /// A short description such as `folder:/data/vww`, used in messages.
    fn describe(&self) -> String;
    /// Lists the images, labels and splits, and what was found unusable while listing.
    ///
    /// # Errors
    /// Any [`DataError`] that makes the whole source unusable (a missing directory, a
    /// malformed header).
    fn catalog(&self) -> Result<Catalog, DataError>;
    /// Delivers the images of the records `wanted` (indices into `catalog.records`) to
    /// `sink`, each exactly once, in any order (archives are streamed in their own order).
    /// An image that cannot be read is delivered as `Err(reason)`, not as a failure of the
    /// whole fetch.
    ///
    /// # Errors
    /// A [`DataError`] that stops the fetch (including one returned by `sink`).
    fn fetch(&self, catalog: &Catalog, wanted: &[usize], sink: &mut Sink<'_>) -> Result<(), DataError>;
}

/// 64-bit FNV-1a, a stable hash for fingerprints and per-image seeds.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Adds bytes.
    pub fn bytes(mut self, b: &[u8]) -> Self {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }
    /// Adds a number.
    pub fn u64(self, v: u64) -> Self {
        self.bytes(&v.to_le_bytes())
    }
    /// Adds a string (length-prefixed, so concatenations differ).
    pub fn str(self, s: &str) -> Self {
        self.u64(s.len() as u64).bytes(s.as_bytes())
    }
    /// The hash.
    pub fn finish(self) -> u64 {
        self.0
    }
}

/// Fingerprint contribution of a file: its path, size and modification time.
pub(crate) fn file_stamp(h: Fnv, path: &std::path::Path, meta: &std::fs::Metadata) -> Fnv {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    h.str(&path.to_string_lossy()).u64(meta.len()).u64(mtime)
}

/// Checks the contract of a [`Source`], for the tests of any implementation: the catalog is
/// deterministic, non-empty, labels index `class_names`, flags match `flag_names`, and
/// [`Source::fetch`] delivers each of (up to `max_fetch`, evenly spread) wanted records
/// exactly once, with decodable images for most of them.
///
/// # Errors
/// A description of the first rule broken.
pub fn check_source(source: &dyn Source, max_fetch: usize) -> Result<(), String> {
    let cat = source.catalog().map_err(|e| format!("catalog failed: {e}"))?;
    let again = source.catalog().map_err(|e| format!("second catalog failed: {e}"))?;
    if again.records != cat.records || again.fingerprint != cat.fingerprint {
        return Err("catalog is not deterministic".into());
    }
    if cat.records.is_empty() {
        return Err("catalog lists no records".into());
    }
    for r in &cat.records {
        if r.label as usize >= cat.class_names.len() {
            return Err(format!(
                "record {} has label {} but there are {} classes",
                r.key,
                r.label,
                cat.class_names.len()
            ));
        }
        if r.flags.len() != cat.flag_names.len() {
            return Err(format!("record {} has {} flags, expected {}", r.key, r.flags.len(), cat.flag_names.len()));
        }
    }
    let n = cat.records.len();
    let k = max_fetch.clamp(1, n);
    let wanted: Vec<usize> = (0..k).map(|i| i * n / k).collect();
    let mut seen = vec![0usize; n];
    let mut decoded = 0usize;
    source
        .fetch(&cat, &wanted, &mut |w, img| {
            if let Some(s) = seen.get_mut(w) {
                *s += 1;
            }
            if img.and_then(RawImage::into_rgb).is_ok() {
                decoded += 1;
            }
            Ok(())
        })
        .map_err(|e| format!("fetch failed: {e}"))?;
    for &w in &wanted {
        if seen[w] != 1 {
            return Err(format!("record {w} ({}) delivered {} times", cat.records[w].key, seen[w]));
        }
    }
    if seen.iter().sum::<usize>() != wanted.len() {
        return Err("fetch delivered records that were not asked for".into());
    }
    if decoded * 2 < wanted.len() {
        return Err(format!("only {decoded} of {} fetched images decode", wanted.len()));
    }
    Ok(())
}
