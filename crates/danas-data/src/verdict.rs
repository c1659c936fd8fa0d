//! Whether a source can serve a search (issue 30, item 1): every split a search
//! needs (train, validation, test) must hold images, and no split may have more
//! unreadable images than the allowed fraction. `danas data inspect` reports the
//! problems and exits non-zero on any.

use std::collections::{BTreeMap, HashSet};

use danas_core::Split;

use crate::dataset::{Dataset, SplitCounts};
use crate::inspect::CacheEntryReport;
use crate::source::Skipped;

/// The problems found: one line per split that is empty or over the limit.
///
/// `probed` are the record indices decoded to measure sizes, `skipped` every
/// unusable input found, `caches` the caches built for the source, `splits` the
/// counts of images that decode.
pub(crate) fn problems(
    ds: &Dataset,
    probed: &[usize],
    skipped: &[Skipped],
    caches: &[CacheEntryReport],
    splits: &BTreeMap<String, SplitCounts>,
) -> Vec<String> {
    let cat = ds.catalog();
    let bad: HashSet<&str> = skipped.iter().map(|s| s.path.as_str()).collect();
    let probed: HashSet<usize> = probed.iter().copied().collect();
    let max = ds.options().max_bad_fraction;
    let mut out = Vec::new();
    for split in [Split::Train, Split::Validation, Split::Test] {
        let name = split.name();
        let records = ds.split_records(split);
        let usable = splits.get(name).map_or(0, |c| c.count);
        if records.is_empty() || usable == 0 {
            out.push(format!(
                "the {name} split is empty ({} listed, {usable} readable); a search needs train, validation and test images{}",
                records.len(),
                if split == Split::Test { " (or `--split-test 0.1` to carve a test split from train)" } else { "" }
            ));
            continue;
        }
        let mut examined = 0usize;
        let mut unreadable = 0usize;
        for &i in records {
            let is_bad = cat.records.get(i).is_some_and(|r| bad.contains(r.key.as_str()));
            if is_bad {
                unreadable += 1;
            }
            if is_bad || probed.contains(&i) {
                examined += 1;
            }
        }
        // A cache build decoded every image of its split: that is the larger sample.
        let cached = caches.iter().filter(|c| c.split == name).map(|c| c.count).max().unwrap_or(0);
        let examined = examined.max(cached + unreadable).min(records.len()).max(unreadable);
        if examined > 0 && unreadable as f64 > max * examined as f64 {
            out.push(format!(
                "the {name} split has {unreadable} unreadable of {examined} images examined ({:.1} % > the allowed {:.1} %)",
                100.0 * unreadable as f64 / examined as f64,
                100.0 * max
            ));
        }
    }
    out
}
