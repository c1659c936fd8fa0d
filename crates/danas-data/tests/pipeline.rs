#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Caching, determinism, transforms and memory bounds of the pipeline.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use danas_core::{BatchSource, Color, DataConfig, Split};
use danas_data::{Catalog, DataError, Dataset, Sink, Source, SyntheticSource, transform};

/// Wraps a source and counts the images it delivers.
struct Counting<S> {
    inner: S,
    delivered: Arc<AtomicUsize>,
}

impl<S: Source> Source for Counting<S> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn catalog(&self) -> Result<Catalog, DataError> {
        self.inner.catalog()
    }
    fn fetch(&self, catalog: &Catalog, wanted: &[usize], sink: &mut Sink<'_>) -> Result<(), DataError> {
        self.inner.fetch(catalog, wanted, &mut |w, r| {
            self.delivered.fetch_add(1, Ordering::SeqCst);
            sink(w, r)
        })
    }
}

fn synth(n: usize, size: u32, seed: u64) -> SyntheticSource {
    SyntheticSource { n, size, seed }
}

#[test]
fn second_pass_and_second_process_decode_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let delivered = Arc::new(AtomicUsize::new(0));
    let open = || {
        let src = Counting { inner: synth(60, 48, 1), delivered: delivered.clone() };
        Dataset::open(Arc::new(src), options(tmp.path())).unwrap()
    };
    let ds = open();
    let n_train = ds.len(Split::Train);
    let a = all_batches(&ds, Split::Train, DataConfig::new(32, Color::Rgb), 8, true, 3);
    assert_eq!(delivered.load(Ordering::SeqCst), n_train);
    // Another epoch, other colour, evaluation, a smaller resolution of the same base: no new decoding.
    let b = all_batches(&ds, Split::Train, DataConfig::new(32, Color::Rgb), 8, true, 3);
    assert_eq!(a, b, "same seed, same batches");
    let c = all_batches(&ds, Split::Train, DataConfig::new(32, Color::Rgb), 8, true, 4);
    assert_ne!(a, c, "another seed, other order and crops");
    assert_eq!(danas_data::base_side(28), danas_data::base_side(32));
    all_batches(&ds, Split::Train, DataConfig::new(28, Color::Grayscale), 8, false, 0);
    assert_eq!(delivered.load(Ordering::SeqCst), n_train);
    // A new Dataset on the same cache directory (a second process) decodes nothing either.
    let ds2 = open();
    let b2 = all_batches(&ds2, Split::Train, DataConfig::new(32, Color::Rgb), 8, true, 3);
    assert_eq!(a, b2);
    assert_eq!(delivered.load(Ordering::SeqCst), n_train);
    // A larger resolution needs a larger base: one more decode of the split.
    all_batches(&ds2, Split::Train, DataConfig::new(64, Color::Rgb), 8, false, 0);
    assert_eq!(delivered.load(Ordering::SeqCst), 2 * n_train);
    let report = danas_data::inspect(&ds2, 0).unwrap();
    assert_eq!(report.cache.entries.len(), 2);
    assert!(report.cache.total_bytes > 0);
}

#[test]
fn evaluation_order_is_fixed_and_shapes_follow_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Dataset::open(Arc::new(synth(40, 40, 2)), options(tmp.path())).unwrap();
    for (r, color) in [(8, Color::Rgb), (17, Color::Grayscale), (40, Color::Rgb), (64, Color::Grayscale)] {
        let dc = DataConfig::new(r, color);
        let x = all_batches(&ds, Split::Train, dc, 7, false, 1);
        let y = all_batches(&ds, Split::Train, dc, 7, false, 2);
        assert_eq!(x, y, "evaluation ignores the seed");
        let n: usize = x.iter().map(|b| b.n).sum();
        assert_eq!(n, ds.len(Split::Train));
        for b in &x {
            b.validate().unwrap();
            assert_eq!((b.c, b.h, b.w), (color.channels() as usize, r as usize, r as usize));
            assert!(b.images.iter().all(|v| (-1.0..=1.0).contains(v)));
        }
    }
    // Bad arguments come back as an error item, not a panic.
    let mut it = ds.batches(Split::Train, DataConfig::new(0, Color::Rgb), 4, false, 0);
    assert!(it.next().unwrap().is_err());
    let mut it = ds.batches(Split::Train, DataConfig::new(8, Color::Rgb), 0, false, 0);
    assert!(it.next().unwrap().is_err());
}

#[test]
fn grayscale_is_bt601_luminance_of_rgb() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Dataset::open(Arc::new(synth(24, 32, 9)), options(tmp.path())).unwrap();
    let rgb = samples(&all_batches(&ds, Split::Train, DataConfig::new(16, Color::Rgb), 5, false, 0));
    let gray = samples(&all_batches(&ds, Split::Train, DataConfig::new(16, Color::Grayscale), 5, false, 0));
    assert_eq!(rgb.len(), gray.len());
    for ((c, l1), (g, l2)) in rgb.iter().zip(&gray) {
        assert_eq!(l1, l2);
        assert_eq!(g.len() * 3, c.len());
        for p in 0..g.len() {
            let y = 0.299 * c[p] + 0.587 * c[p + 256] + 0.114 * c[p + 512];
            assert!((g[p] - y).abs() < 1e-4, "{} vs {y}", g[p]);
        }
    }
}

#[test]
fn cache_build_holds_at_most_one_chunk_of_full_size_images() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("big");
    for i in 0..40 {
        save(&root.join(format!("{}/{i}.jpg", i % 2)), &picture(160, 120, [(i * 5) as u8, 90, 40]));
    }
    let mut o = options(&tmp.path().join("c"));
    o.chunk = 4;
    o.val_fraction = 0.0;
    o.test_fraction = 0.0;
    let ds = Dataset::from_spec(&format!("folder:{}", root.display()), o).unwrap();
    let cache = ds.prepare(Split::Train, 32).unwrap();
    let stats = cache.stats.unwrap();
    assert_eq!(stats.decoded, 40);
    assert!(stats.max_live_full_size >= 1 && stats.max_live_full_size <= 4, "{stats:?}");
    // The base keeps the aspect ratio with the shorter side at base_side(32) = 64.
    assert_eq!((cache.entries[0].width, cache.entries[0].height), (85, 64));
}

#[test]
fn smaller_resolution_from_a_larger_base_is_close_to_direct_resizing() {
    let src = synth(8, 200, 4);
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.val_fraction = 0.0;
    o.test_fraction = 0.0;
    let ds = Dataset::open(Arc::new(src), o).unwrap();
    // With the base of 160 (192) built first, 64 still reads its own base (96): the
    // images of a resolution do not depend on what ran before.
    ds.prepare(Split::Train, 160).unwrap();
    let cache = ds.prepare(Split::Train, 64).unwrap();
    assert_eq!(cache.meta.base, 96);
    let mut total = 0.0f64;
    let mut count = 0usize;
    for (i, e) in cache.entries.iter().enumerate() {
        let via_base = transform::eval_crop(&cache.image(i).unwrap(), 64).unwrap();
        let direct = transform::eval_crop(&src.render(e.record as usize), 64).unwrap();
        for (a, b) in via_base.data.iter().zip(&direct.data) {
            total += (f64::from(*a) - f64::from(*b)).abs();
            count += 1;
        }
    }
    let mean = total / count as f64;
    assert!(mean < 1.5, "mean absolute difference {mean} grey levels");
}

#[test]
fn cache_cap_is_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.cache_cap_bytes = 10_000;
    let ds = Dataset::open(Arc::new(synth(40, 32, 0)), o).unwrap();
    let err = ds.prepare(Split::Train, 32).unwrap_err();
    assert!(matches!(err, DataError::CacheFull { cap: 10_000, .. }), "{err}");
}

#[test]
fn splits_are_stratified_seeded_and_limited() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.split_seed = 5;
    let a = Dataset::open(Arc::new(synth(400, 16, 0)), o.clone()).unwrap();
    let b = Dataset::open(Arc::new(synth(400, 16, 0)), o.clone()).unwrap();
    assert_eq!(a.split_records(Split::Validation), b.split_records(Split::Validation));
    let counts = a.split_counts();
    assert_eq!(counts["train"].count, 320);
    assert!(counts["validation"].per_class.values().all(|&c| c == 10));
    assert!(counts["test"].per_class.values().all(|&c| c == 10));
    o.split_seed = 6;
    let c = Dataset::open(Arc::new(synth(400, 16, 0)), o.clone()).unwrap();
    assert_ne!(a.split_records(Split::Validation), c.split_records(Split::Validation));
    o.train_limit = Some(50);
    let d = Dataset::open(Arc::new(synth(400, 16, 0)), o).unwrap();
    assert_eq!(d.len(Split::Train), 50);
    assert!(d.split_records(Split::Train).iter().all(|i| c.split_records(Split::Train).contains(i)));
}

#[test]
fn the_images_of_a_resolution_do_not_depend_on_what_ran_before() {
    let (fresh, used) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Dataset::open(Arc::new(synth(30, 48, 5)), options(fresh.path())).unwrap();
    let b = Dataset::open(Arc::new(synth(30, 48, 5)), options(used.path())).unwrap();
    // b has the larger base of 32 (64) open and on disk before it serves 24 (base 32)
    all_batches(&b, Split::Train, DataConfig::new(32, Color::Rgb), 8, true, 1);
    for (dc, augment) in [(DataConfig::new(24, Color::Rgb), true), (DataConfig::new(16, Color::Grayscale), false)] {
        let x = all_batches(&a, Split::Train, dc, 8, augment, 2);
        let y = all_batches(&b, Split::Train, dc, 8, augment, 2);
        assert_eq!(x, y, "{dc}");
    }
}
