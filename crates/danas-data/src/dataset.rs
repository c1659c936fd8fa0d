//! [`Dataset`]: a source with splits, caches and batching; implements
//! [`danas_core::BatchSource`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use danas_core::{Batch, BatchIter, BatchSource, DataConfig, SourceError, Split};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::DataError;
use crate::cache::{self, BaseCache};
use crate::source::{Catalog, Fnv, Skipped, Source};
use crate::transform;

/// Options of a [`Dataset`]. Build with [`DataOptions::default`] and change fields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DataOptions {
    /// Root of the on-disk cache. Default: `$DANAS_CACHE`, else `.cache/danas`.
    pub cache_dir: PathBuf,
    /// Cap on the cache root's total size in bytes; building past it fails with
    /// [`DataError::CacheFull`]. Default 16 GiB.
    pub cache_cap_bytes: u64,
    /// Seed of the carved splits and of the train limit's subset. Default 0.
    pub split_seed: u64,
    /// Fraction carved for validation when the source has no validation split. Default 0.1.
    pub val_fraction: f64,
    /// Fraction carved for test when the source has no splits at all. Default 0.1.
    pub test_fraction: f64,
    /// Fraction of the training split carved (stratified, seeded by `split_seed`) for
    /// test when the source has splits but no `test`; with no splits at all it
    /// replaces `test_fraction`. Default `None`: such a source has no test split.
    pub split_test: Option<f64>,
    /// Source split used for training (e.g. `train_large`); default: the first present of
    /// `train_quality`, `train`, `train_large`.
    pub train_split: Option<String>,
    /// Use at most this many training images (a seeded subset).
    pub train_limit: Option<usize>,
    /// Use at most this many validation and test images each (a seeded subset).
    pub eval_limit: Option<usize>,
    /// Largest tolerated fraction of unusable images. Default 0.1.
    pub max_bad_fraction: f64,
    /// Images decoded per chunk while building a cache (bounds memory). Default 256.
    pub chunk: usize,
    /// Batches prepared ahead by the prefetching thread. Default 2.
    pub prefetch: usize,
}

impl Default for DataOptions {
    fn default() -> Self {
        let cache_dir =
            std::env::var_os("DANAS_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".cache/danas"));
        Self {
            cache_dir,
            cache_cap_bytes: 16 << 30,
            split_seed: 0,
            val_fraction: 0.1,
            test_fraction: 0.1,
            split_test: None,
            train_split: None,
            train_limit: None,
            eval_limit: None,
            max_bad_fraction: 0.1,
            chunk: 256,
            prefetch: 2,
        }
    }
}

impl DataOptions {
    fn validate(&self) -> Result<(), DataError> {
        let frac = |name: &'static str, v: f64, hi: f64| {
            if (0.0..=hi).contains(&v) {
                Ok(())
            } else {
                Err(DataError::option(name, v, format!("must be in [0, {hi}]")))
            }
        };
        frac("val_fraction", self.val_fraction, 0.9)?;
        frac("test_fraction", self.test_fraction, 0.9)?;
        frac("max_bad_fraction", self.max_bad_fraction, 1.0)?;
        if let Some(t) = self.split_test
            && !(t > 0.0 && t <= 0.5)
        {
            return Err(DataError::option("split_test", t, "must be in (0, 0.5]"));
        }
        if self.val_fraction + self.test_fraction >= 1.0 {
            return Err(DataError::option(
                "val_fraction + test_fraction",
                self.val_fraction + self.test_fraction,
                "must be < 1",
            ));
        }
        if self.chunk == 0 {
            return Err(DataError::option("chunk", 0, "must be at least 1"));
        }
        if self.train_limit == Some(0) {
            return Err(DataError::option("train_limit", 0, "must be at least 1"));
        }
        Ok(())
    }
}

/// The base side cached for resolution `r`: `1.15 r` rounded up to a multiple of 32, so a
/// random resized crop of 60 % of the area still has ≥ `r` source pixels per side and few
/// distinct bases exist. Each resolution reads its own base, never a larger one that
/// happens to be built already: the images of a resolution do not depend on which
/// resolutions ran before (see [`Dataset`]).
pub fn base_side(r: u32) -> u32 {
    let b = (f64::from(r) * 1.15).ceil() as u32;
    b.div_ceil(32) * 32
}

/// A data source opened for training: splits, caches and batches.
///
/// - **Splits**: the source's own (`train_quality`/`train`/`train_large` → train,
///   `validation` → validation, `test` → test); a missing validation split is carved,
///   stratified by class and seeded, from train; a source with no splits is carved into
///   train/validation/test.
/// - **Cache**: the first pass over a split at resolution `r` decodes each image once and
///   stores it at base side [`base_side`]`(r)` (see [`crate::cache`]); later passes, at any
///   colour and any resolution with the same base side, decode nothing. A resolution is
///   derived from its base by one more Lanczos resampling: since the base is at least 1.15×
///   the output size, this differs from resizing the original by about one grey level
///   (checked by a test). A resolution never reads another resolution's larger base, so
///   the same seed gives the same images whatever ran before, in this process or in an
///   earlier one on the same cache directory. The evaluation images of each
///   resolution are stored once more as `r × r` so evaluation passes only convert bytes.
/// - **Batches**: a background thread assembles batches (images in parallel with rayon) and
///   hands them over through a bounded channel of [`DataOptions::prefetch`] batches.
pub struct Dataset {
    source: Arc<dyn Source>,
    catalog: Arc<Catalog>,
    options: DataOptions,
    splits: BTreeMap<Split, Vec<usize>>,
    caches: Mutex<HashMap<Split, Vec<Arc<BaseCache>>>>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset").field("source", &self.source.describe()).field("options", &self.options).finish()
    }
}

fn seeded_subset(list: &mut Vec<usize>, limit: Option<usize>, seed: u64) {
    if let Some(n) = limit
        && list.len() > n
    {
        list.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        list.truncate(n);
        list.sort_unstable();
    }
}

impl Dataset {
    /// Lists the source and prepares its splits. Nothing is decoded yet.
    ///
    /// # Errors
    /// The source's listing errors; [`DataError::Empty`], [`DataError::SingleClass`] or
    /// [`DataError::TooManyBad`] for an unusable source; [`DataError::InvalidOption`].
    pub fn open(source: Arc<dyn Source>, options: DataOptions) -> Result<Self, DataError> {
        options.validate()?;
        let catalog = source.catalog()?;
        let name = source.describe();
        let total = catalog.records.len() + catalog.skipped.len();
        if catalog.records.is_empty() {
            if catalog.skipped.is_empty() {
                return Err(DataError::Empty { what: name });
            }
            return Err(too_many_bad(&name, &catalog.skipped, total, options.max_bad_fraction));
        }
        if catalog.skipped.len() as f64 > options.max_bad_fraction * total as f64 {
            return Err(too_many_bad(&name, &catalog.skipped, total, options.max_bad_fraction));
        }
        let mut present = vec![0usize; catalog.class_names.len().max(1)];
        for r in &catalog.records {
            if let Some(c) = present.get_mut(r.label as usize) {
                *c += 1;
            }
        }
        let nonempty: Vec<usize> = (0..present.len()).filter(|&c| present[c] > 0).collect();
        if nonempty.len() < 2 {
            let class = nonempty.first().and_then(|&c| catalog.class_names.get(c)).cloned().unwrap_or_default();
            return Err(DataError::SingleClass { source_name: name, class });
        }
        let splits = make_splits(&catalog, &options)?;
        if splits.get(&Split::Train).is_none_or(Vec::is_empty) {
            return Err(DataError::Empty { what: format!("the train split of {name}") });
        }
        Ok(Self { source, catalog: Arc::new(catalog), options, splits, caches: Mutex::default() })
    }

    /// Opens a source given by a specification such as `idx:DIR` (see [`crate::parse_source`]).
    ///
    /// # Errors
    /// As [`crate::parse_source`] and [`Dataset::open`].
    pub fn from_spec(spec: &str, options: DataOptions) -> Result<Self, DataError> {
        Self::open(crate::parse_source(spec)?, options)
    }

    /// The source's catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The source.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// The options.
    pub fn options(&self) -> &DataOptions {
        &self.options
    }

    /// Record indices (into [`Dataset::catalog`]) of a split, before decoding.
    pub fn split_records(&self, split: Split) -> &[usize] {
        self.splits.get(&split).map_or(&[], Vec::as_slice)
    }

    /// The cache directory of this source (below [`DataOptions::cache_dir`]).
    pub fn cache_root(&self) -> PathBuf {
        self.options.cache_dir.join(format!("{:016x}", self.catalog.fingerprint))
    }

    fn selection_key(&self, split: Split) -> String {
        let mut h = Fnv::default();
        for &i in self.split_records(split) {
            h = h.u64(i as u64);
        }
        format!("{}-{:016x}", split.name(), h.finish())
    }

    /// The base cache of `split` at resolution `r` (base side [`base_side`]`(r)`): one
    /// already open, one on disk, or a new one (which decodes the split's images once).
    ///
    /// # Errors
    /// Source and I/O errors; [`DataError::TooManyBad`] or [`DataError::Empty`] when too few
    /// images decode; [`DataError::CacheFull`].
    pub fn prepare(&self, split: Split, r: u32) -> Result<Arc<BaseCache>, DataError> {
        DataConfig::new(r, danas_core::Color::Rgb).validate()?;
        let want = base_side(r);
        let mut caches =
            self.caches.lock().map_err(|_| DataError::option("dataset", "poisoned", "a build panicked"))?;
        let list = caches.entry(split).or_default();
        if let Some(c) = list.iter().find(|c| c.meta.base == want) {
            return Ok(c.clone());
        }
        let root = self.cache_root();
        let key = self.selection_key(split);
        // The cache of this base on disk (a larger base would make the images depend on
        // what ran before).
        let mut on_disk: Vec<(u32, PathBuf)> = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let b: u32 = name.strip_prefix(&key)?.strip_prefix("-base")?.parse().ok()?;
                (b == want).then(|| (b, e.path()))
            })
            .collect();
        on_disk.sort();
        let cache = match on_disk.iter().find_map(|(_, p)| BaseCache::open(p)) {
            Some(c) => c,
            None => {
                let records = self.split_records(split);
                if records.is_empty() {
                    return Err(DataError::Empty { what: format!("the {split} split of {}", self.source.describe()) });
                }
                let dir = root.join(format!("{key}-base{want}"));
                cache::build(
                    self.source.as_ref(),
                    &self.catalog,
                    split.name(),
                    records,
                    want,
                    &dir,
                    &self.options.cache_dir,
                    self.options.cache_cap_bytes,
                    self.options.chunk,
                )?
            }
        };
        let bad = cache.meta.skipped.len();
        if cache.meta.count == 0 || bad as f64 > self.options.max_bad_fraction * cache.meta.requested as f64 {
            if cache.meta.count == 0 && bad == 0 {
                return Err(DataError::Empty { what: format!("the {split} split of {}", self.source.describe()) });
            }
            return Err(too_many_bad(
                &format!("the {split} split of {}", self.source.describe()),
                &cache.meta.skipped,
                cache.meta.requested,
                self.options.max_bad_fraction,
            ));
        }
        let cache = Arc::new(cache);
        list.push(cache.clone());
        Ok(cache)
    }

    /// Images skipped so far: while listing, and while building the caches opened.
    pub fn skipped(&self) -> Vec<Skipped> {
        let mut out = self.catalog.skipped.clone();
        if let Ok(caches) = self.caches.lock() {
            let mut seen = std::collections::HashSet::new();
            for list in caches.values() {
                for c in list {
                    for s in &c.meta.skipped {
                        if seen.insert(s.path.clone()) {
                            out.push(s.clone());
                        }
                    }
                }
            }
        }
        out
    }

    fn batches_inner(
        &self,
        split: Split,
        data: DataConfig,
        batch_size: usize,
        augment: bool,
        seed: u64,
    ) -> Result<Receiver<Result<Batch, SourceError>>, DataError> {
        data.validate()?;
        if batch_size == 0 {
            return Err(DataError::option("batch_size", 0, "must be at least 1"));
        }
        let r = data.resolution;
        let cache = self.prepare(split, r)?;
        let eval = if augment {
            None
        } else {
            Some(cache.eval_file(r, &self.options.cache_dir, self.options.cache_cap_bytes)?)
        };
        let mut order: Vec<usize> = (0..cache.entries.len()).collect();
        if augment {
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(Fnv::default().str("order").u64(seed).finish()));
        }
        let (tx, rx) = sync_channel(self.options.prefetch.max(1));
        let gray = data.color == danas_core::Color::Grayscale;
        std::thread::Builder::new()
            .name("danas-data-prefetch".into())
            .spawn(move || {
                for idx in order.chunks(batch_size) {
                    let batch = assemble(&cache, eval.as_deref(), idx, r, gray, augment, seed);
                    let failed = batch.is_err();
                    if tx.send(batch.map_err(|e| Box::new(e) as SourceError)).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|e| DataError::io("spawn the prefetch thread for", self.cache_root(), e))?;
        Ok(rx)
    }
}

/// Assembles one batch of cached images `idx` (cache order) at resolution `r`.
///
/// # Errors
/// I/O errors reading the cache; resize errors.
pub fn assemble(
    cache: &BaseCache,
    eval: Option<&std::fs::File>,
    idx: &[usize],
    r: u32,
    gray: bool,
    augment: bool,
    seed: u64,
) -> Result<Batch, DataError> {
    let c = if gray { 1 } else { 3 };
    let side = r as usize;
    let per = c * side * side;
    let mut images = vec![0f32; idx.len() * per];
    let contiguous = idx.windows(2).all(|w| w[1] == w[0] + 1);
    if let (Some(file), false, true, Some(&first)) = (eval, augment, contiguous, idx.first()) {
        // Evaluation passes read consecutive images: one read per group of them, the
        // groups in parallel, each through a small buffer that stays in cache.
        const GROUP: usize = 16;
        let sz = side * side * 3;
        images.par_chunks_mut(per * GROUP).enumerate().try_for_each(|(g, out)| -> Result<(), DataError> {
            let mut buf = vec![0u8; (out.len() / per) * sz];
            cache.read_eval_run(file, r, first + g * GROUP, &mut buf)?;
            for (o, src) in out.chunks_mut(per).zip(buf.chunks(sz)) {
                transform::to_planar(src, gray, o);
            }
            Ok(())
        })?;
        let labels = idx.iter().map(|&i| cache.entries.get(i).map_or(0, |e| e.label)).collect();
        return Ok(Batch { images, labels, n: idx.len(), c, h: side, w: side });
    }
    images.par_chunks_mut(per).zip(idx.par_iter()).try_for_each(|(out, &i)| -> Result<(), DataError> {
        match eval {
            Some(file) if !augment => {
                let mut buf = vec![0u8; side * side * 3];
                cache.read_eval(file, r, i, &mut buf)?;
                transform::to_planar(&buf, gray, out);
            }
            _ => {
                let base = cache.image(i)?;
                let img = if augment {
                    let mut rng =
                        ChaCha8Rng::seed_from_u64(Fnv::default().str("augment").u64(seed).u64(i as u64).finish());
                    transform::train_crop(&base, r, &mut rng)?
                } else {
                    transform::eval_crop(&base, r)?
                };
                transform::to_planar(&img.data, gray, out);
            }
        }
        Ok(())
    })?;
    let labels = idx.iter().map(|&i| cache.entries.get(i).map_or(0, |e| e.label)).collect();
    Ok(Batch { images, labels, n: idx.len(), c, h: side, w: side })
}

fn too_many_bad(name: &str, skipped: &[Skipped], total: usize, max: f64) -> DataError {
    DataError::TooManyBad {
        source_name: name.to_string(),
        bad: skipped.len(),
        total,
        max_fraction: max,
        first: skipped.iter().take(5).map(|s| format!("{}: {}", s.path, s.reason)).collect(),
    }
}

fn stratified_carve(pool: &[usize], catalog: &Catalog, fractions: &[f64], seed: u64) -> Vec<Vec<usize>> {
    let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for &i in pool {
        by_class.entry(catalog.records[i].label).or_default().push(i);
    }
    let mut out = vec![Vec::new(); fractions.len() + 1];
    for (class, mut items) in by_class {
        items.shuffle(&mut ChaCha8Rng::seed_from_u64(
            Fnv::default().str("split").u64(seed).u64(u64::from(class)).finish(),
        ));
        let n = items.len();
        let mut start = 0;
        for (k, f) in fractions.iter().enumerate() {
            let take = ((n as f64) * f).round() as usize;
            let end = (start + take).min(n);
            out[k + 1].extend_from_slice(&items[start..end]);
            start = end;
        }
        out[0].extend_from_slice(&items[start..]);
    }
    for v in &mut out {
        v.sort_unstable();
    }
    out
}

fn make_splits(catalog: &Catalog, o: &DataOptions) -> Result<BTreeMap<Split, Vec<usize>>, DataError> {
    let mut named: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut unsplit = Vec::new();
    for (i, r) in catalog.records.iter().enumerate() {
        match &r.split {
            Some(s) => named.entry(s.as_str()).or_default().push(i),
            None => unsplit.push(i),
        }
    }
    let mut out = BTreeMap::new();
    if named.is_empty() {
        let test_fraction = o.split_test.unwrap_or(o.test_fraction);
        let parts = stratified_carve(&unsplit, catalog, &[o.val_fraction, test_fraction], o.split_seed);
        for (split, v) in [Split::Train, Split::Validation, Split::Test].into_iter().zip(parts) {
            out.insert(split, v);
        }
    } else {
        let train_name = match &o.train_split {
            Some(t) => {
                if !named.contains_key(t.as_str()) {
                    return Err(DataError::option(
                        "train_split",
                        t,
                        format!("the source has splits {}", named.keys().copied().collect::<Vec<_>>().join(", ")),
                    ));
                }
                t.clone()
            }
            None => ["train_quality", "train", "train_large"]
                .into_iter()
                .find(|n| named.contains_key(n))
                .unwrap_or("train")
                .to_string(),
        };
        let mut train = named.get(train_name.as_str()).cloned().unwrap_or_default();
        train.extend(&unsplit);
        train.sort_unstable();
        let test = match (named.get("test"), o.split_test) {
            (Some(t), _) => t.clone(),
            (None, Some(f)) => {
                let parts = stratified_carve(&train, catalog, &[f], o.split_seed ^ 0x7465_7374);
                train = parts[0].clone();
                parts[1].clone()
            }
            (None, None) => Vec::new(),
        };
        let val = match named.get("validation") {
            Some(v) => v.clone(),
            None => {
                let parts = stratified_carve(&train, catalog, &[o.val_fraction], o.split_seed);
                train = parts[0].clone();
                parts[1].clone()
            }
        };
        out.insert(Split::Train, train);
        out.insert(Split::Validation, val);
        out.insert(Split::Test, test);
    }
    if let Some(v) = out.get_mut(&Split::Train) {
        seeded_subset(v, o.train_limit, o.split_seed ^ 0x0074_7261_696e);
    }
    for s in [Split::Validation, Split::Test] {
        if let Some(v) = out.get_mut(&s) {
            seeded_subset(v, o.eval_limit, o.split_seed ^ 0x6576_616c);
        }
    }
    Ok(out)
}

impl BatchSource for Dataset {
    fn classes(&self) -> u32 {
        self.catalog.class_names.len() as u32
    }

    fn class_names(&self) -> Vec<String> {
        self.catalog.class_names.clone()
    }

    /// The number of images of a split: exact once a cache of the split is open (images
    /// that fail to decode are then known and left out), the listed count before.
    fn len(&self, split: Split) -> usize {
        if let Ok(c) = self.caches.lock()
            && let Some(first) = c.get(&split).and_then(|l| l.first())
        {
            return first.entries.len();
        }
        self.split_records(split).len()
    }

    fn batches(&self, split: Split, data: DataConfig, batch_size: usize, augment: bool, seed: u64) -> BatchIter<'_> {
        match self.batches_inner(split, data, batch_size, augment, seed) {
            Ok(rx) => Box::new(rx.into_iter()),
            Err(e) => Box::new(std::iter::once(Err(Box::new(e) as SourceError))),
        }
    }
}

/// Counts of one split, for reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SplitCounts {
    /// Number of images.
    pub count: usize,
    /// Images per class name.
    pub per_class: BTreeMap<String, usize>,
}

impl Dataset {
    /// Counts per split and class (listed records; see [`BatchSource::len`]).
    pub fn split_counts(&self) -> BTreeMap<String, SplitCounts> {
        self.split_counts_where(|_| true)
    }

    /// Counts per split and class of the records (catalogue indices) `keep` accepts,
    /// e.g. those not found undecodable.
    pub fn split_counts_where(&self, keep: impl Fn(usize) -> bool) -> BTreeMap<String, SplitCounts> {
        let mut out = BTreeMap::new();
        for (split, recs) in &self.splits {
            let recs: Vec<usize> = recs.iter().copied().filter(|&i| keep(i)).collect();
            let mut sc = SplitCounts { count: recs.len(), per_class: BTreeMap::new() };
            for name in &self.catalog.class_names {
                sc.per_class.insert(name.clone(), 0);
            }
            for &i in &recs {
                let l = self.catalog.records[i].label as usize;
                let name = self.catalog.class_names.get(l).cloned().unwrap_or_else(|| l.to_string());
                *sc.per_class.entry(name).or_default() += 1;
            }
            out.insert(split.name().to_string(), sc);
        }
        out
    }
}
