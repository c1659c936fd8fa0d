//! `inspect`: what a source holds, for `danas data inspect`.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::DataError;
use crate::cache::{BaseCache, dir_size};
use crate::dataset::{Dataset, SplitCounts};
use crate::source::{RawImage, Skipped};

type Probed = (usize, Result<(u32, u32), String>);

/// Distribution of image sizes among the decoded sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SizeStats {
    /// Images decoded to measure sizes (a deterministic, evenly spread sample).
    pub probed: usize,
    /// Smallest shorter side.
    pub min_short_side: u32,
    /// Median shorter side.
    pub median_short_side: u32,
    /// Largest shorter side.
    pub max_short_side: u32,
    /// The most common sizes as `WxH` with counts, most common first (at most 10).
    pub most_common: Vec<(String, usize)>,
}

/// One cache found for the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheEntryReport {
    /// Directory name.
    pub name: String,
    /// Split.
    pub split: String,
    /// Base side.
    pub base: u32,
    /// Images cached.
    pub count: usize,
    /// Bytes on disk (base and evaluation files).
    pub bytes: u64,
}

/// Cache status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheReport {
    /// Root of the cache.
    pub dir: String,
    /// Bytes used by all sources below the root.
    pub total_bytes: u64,
    /// The cap.
    pub cap_bytes: u64,
    /// Caches of this source.
    pub entries: Vec<CacheEntryReport>,
}

/// What `danas data inspect` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The source.
    pub source: String,
    /// Content fingerprint (hex), the cache key.
    pub fingerprint: String,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Fine-grained flag names carried by the records.
    pub flags: Vec<String>,
    /// Counts per split (`train`, `validation`, `test`) and class of the images that
    /// decode: records found unreadable (listing, the probed sample, cache builds) are
    /// not counted. With `sample` at least the number of records, every image is decoded.
    pub splits: BTreeMap<String, SplitCounts>,
    /// The source's own split names and their sizes (before carving and limits).
    pub source_splits: BTreeMap<String, usize>,
    /// Rows deliberately excluded (e.g. `person` = −1).
    pub excluded: usize,
    /// Image sizes in the probed sample.
    pub image_sizes: SizeStats,
    /// Number of unusable inputs found (listing, probing, cache builds).
    pub skipped_count: usize,
    /// The unusable inputs and why (at most 1000).
    pub skipped: Vec<Skipped>,
    /// Cache status.
    pub cache: CacheReport,
    /// Why a search cannot use the source as it is: a split it needs that is empty,
    /// or has more unreadable images than the allowed fraction. Empty when usable.
    pub problems: Vec<String>,
}

/// Inspects a dataset: counts, decodes up to `sample` images (evenly spread over all
/// records) to measure sizes and find unreadable ones, and reports the cache.
///
/// # Errors
/// Source errors while fetching the sample.
pub fn inspect(ds: &Dataset, sample: usize) -> Result<Report, DataError> {
    let cat = ds.catalog();
    let n = cat.records.len();
    let wanted: Vec<usize> = if sample >= n {
        (0..n).collect()
    } else if sample == 0 {
        vec![]
    } else {
        (0..sample).map(|k| k * n / sample).collect()
    };
    let mut raws: Vec<(usize, Result<RawImage, String>)> = Vec::new();
    let mut sizes: Vec<(u32, u32)> = Vec::new();
    let mut skipped = ds.skipped();
    let mut probe = |raws: &mut Vec<(usize, Result<RawImage, String>)>| {
        let res: Vec<Probed> = raws
            .par_drain(..)
            .map(|(w, r)| (w, r.and_then(RawImage::into_rgb).map(|img| (img.width, img.height))))
            .collect();
        for (w, r) in res {
            match r {
                Ok(s) => sizes.push(s),
                Err(reason) => {
                    let path = cat.records[w].key.clone();
                    if !skipped.iter().any(|s| s.path == path) {
                        skipped.push(Skipped { path, reason });
                    }
                }
            }
        }
    };
    if !wanted.is_empty() {
        ds.source().fetch(cat, &wanted, &mut |w, r| {
            raws.push((w, r));
            if raws.len() >= 64 {
                probe(&mut raws);
            }
            Ok(())
        })?;
        probe(&mut raws);
    }
    let mut image_sizes = SizeStats { probed: sizes.len(), ..Default::default() };
    if !sizes.is_empty() {
        let mut shorts: Vec<u32> = sizes.iter().map(|&(w, h)| w.min(h)).collect();
        shorts.sort_unstable();
        image_sizes.min_short_side = shorts[0];
        image_sizes.median_short_side = shorts[shorts.len() / 2];
        image_sizes.max_short_side = shorts[shorts.len() - 1];
        let mut hist: BTreeMap<String, usize> = BTreeMap::new();
        for (w, h) in &sizes {
            *hist.entry(format!("{w}x{h}")).or_default() += 1;
        }
        let mut common: Vec<(String, usize)> = hist.into_iter().collect();
        common.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        common.truncate(10);
        image_sizes.most_common = common;
    }
    let mut source_splits = BTreeMap::new();
    for r in &cat.records {
        *source_splits.entry(r.split.clone().unwrap_or_else(|| "(none)".into())).or_default() += 1;
    }
    let root = ds.cache_root();
    let mut entries = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&root) {
        for e in rd.flatten() {
            if let Some(c) = BaseCache::open(&e.path()) {
                entries.push(CacheEntryReport {
                    name: e.file_name().to_string_lossy().into_owned(),
                    split: c.meta.split.clone(),
                    base: c.meta.base,
                    count: c.meta.count,
                    bytes: dir_size(&e.path()),
                });
                for s in &c.meta.skipped {
                    if !skipped.iter().any(|k| k.path == s.path) {
                        skipped.push(s.clone());
                    }
                }
            }
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let splits = {
        let bad: std::collections::HashSet<&str> = skipped.iter().map(|s| s.path.as_str()).collect();
        ds.split_counts_where(|i| cat.records.get(i).is_none_or(|r| !bad.contains(r.key.as_str())))
    };
    let problems = crate::verdict::problems(ds, &wanted, &skipped, &entries, &splits);
    let skipped_count = skipped.len();
    skipped.truncate(1000);
    Ok(Report {
        source: ds.source().describe(),
        fingerprint: format!("{:016x}", cat.fingerprint),
        classes: cat.class_names.clone(),
        flags: cat.flag_names.clone(),
        splits,
        source_splits,
        excluded: cat.excluded,
        image_sizes,
        skipped_count,
        skipped,
        cache: CacheReport {
            dir: ds.options().cache_dir.display().to_string(),
            total_bytes: dir_size(&ds.options().cache_dir),
            cap_bytes: ds.options().cache_cap_bytes,
            entries,
        },
        problems,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "source       {}", self.source)?;
        writeln!(f, "fingerprint  {}", self.fingerprint)?;
        writeln!(f, "classes      {}", self.classes.join(", "))?;
        if !self.flags.is_empty() {
            writeln!(f, "flags        {}", self.flags.join(", "))?;
        }
        let own: Vec<String> = self.source_splits.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(f, "source splits {}", own.join(", "))?;
        if self.excluded > 0 {
            writeln!(f, "excluded     {} rows without a label (person = -1 or empty)", self.excluded)?;
        }
        for (name, s) in &self.splits {
            let per: Vec<String> = s.per_class.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(f, "split {name:<11} {:>8} images  ({})", s.count, per.join(", "))?;
        }
        let z = &self.image_sizes;
        if z.probed > 0 {
            let common: Vec<String> = z.most_common.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            writeln!(
                f,
                "image sizes  {} decoded; shorter side min {} / median {} / max {}; most common {}",
                z.probed,
                z.min_short_side,
                z.median_short_side,
                z.max_short_side,
                common.join(", ")
            )?;
        }
        writeln!(f, "skipped      {}", self.skipped_count)?;
        for s in self.skipped.iter().take(10) {
            writeln!(f, "  {}: {}", s.path, s.reason)?;
        }
        if self.skipped_count > 10 {
            writeln!(f, "  … and {} more (see --json)", self.skipped_count - 10)?;
        }
        let c = &self.cache;
        writeln!(f, "cache        {} ({} of {} bytes used)", c.dir, c.total_bytes, c.cap_bytes)?;
        if c.entries.is_empty() {
            writeln!(f, "  no cache built for this source yet (the first training pass builds it)")?;
        }
        for e in &c.entries {
            writeln!(f, "  {} split {} base {} px, {} images, {} bytes", e.name, e.split, e.base, e.count, e.bytes)?;
        }
        for p in &self.problems {
            writeln!(f, "UNUSABLE     {p}")?;
        }
        Ok(())
    }
}
