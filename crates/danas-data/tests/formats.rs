#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Real formats on small files written by the tests.

mod common;

use std::io::Write;

use common::*;
use danas_core::{BatchSource, Color, DataConfig, Split};
use danas_data::{DataError, Dataset, IdxSource, Source, WakeVisionSource, parse_source};

const RED: [u8; 3] = [200, 30, 30];
const BLUE: [u8; 3] = [20, 40, 210];

#[test]
fn folder_of_jpeg_and_png_with_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("vww");
    for i in 0..12 {
        save(&root.join(format!("person/p{i}.jpg")), &picture(40 + i, 30, RED));
        save(&root.join(format!("non_person/n{i}.png")), &picture(30, 50, BLUE));
    }
    write(&root.join("person/broken.jpg"), b"this is not a jpeg");
    let good = jpeg_bytes(&picture(64, 48, RED));
    write(&root.join("non_person/truncated.jpg"), &good[..good.len() / 3]);
    write(&root.join("person/notes.txt"), b"ignored");

    let ds =
        Dataset::open(parse_source(&format!("folder:{}", root.display())).unwrap(), options(&tmp.path().join("c")))
            .unwrap();
    assert_eq!(ds.catalog().class_names, vec!["non_person", "person"]);
    assert_eq!(ds.catalog().records.len(), 26);
    let total: usize = [Split::Train, Split::Validation, Split::Test].iter().map(|&s| ds.len(s)).sum();
    assert_eq!(total, 26);

    // Building the caches finds the two bad files, skips and names them.
    let dc = DataConfig::new(16, Color::Rgb);
    let mut seen = 0;
    for split in [Split::Train, Split::Validation, Split::Test] {
        for b in ds.batches(split, dc, 5, false, 0) {
            let b = b.unwrap();
            b.validate().unwrap();
            assert_eq!((b.c, b.h, b.w), (3, 16, 16));
            assert!(b.images.iter().all(|v| (-1.0..=1.0).contains(v)));
            for i in 0..b.n {
                // Red images are labelled person (1), blue ones non_person (0).
                let img = b.image(i);
                let (r, bl) = (img[..256].iter().sum::<f32>(), img[512..].iter().sum::<f32>());
                assert_eq!(b.labels[i], u32::from(r > bl));
            }
            seen += b.n;
        }
    }
    assert_eq!(seen, 24);
    let skipped = ds.skipped();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped.iter().any(|s| s.path.ends_with("broken.jpg")));
    assert!(skipped.iter().any(|s| s.path.ends_with("truncated.jpg") && s.reason.contains("decode")));

    // The report names them too.
    let report = danas_data::inspect(&ds, 1000).unwrap();
    assert_eq!(report.skipped_count, 2);
    assert_eq!(report.image_sizes.probed, 24);
    assert_eq!(report.image_sizes.min_short_side, 30);
    let json = serde_json::to_value(&report).unwrap();
    // The splits count the 24 images that decode, not the 2 bad files.
    let counted: u64 = json["splits"].as_object().unwrap().values().map(|s| s["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 24);
    let listed: usize = [Split::Train, Split::Validation, Split::Test].iter().map(|&s| ds.split_records(s).len()).sum();
    assert_eq!(listed, 26, "the listing still holds the bad files (found only when decoded)");
    assert!(json["skipped"][0]["path"].is_string() && json["skipped"][0]["reason"].is_string());
}

#[test]
fn too_many_bad_files_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("d");
    for i in 0..6 {
        save(&root.join(format!("a/{i}.png")), &picture(20, 20, RED));
        save(&root.join(format!("b/{i}.png")), &picture(20, 20, BLUE));
        write(&root.join(format!("a/bad{i}.jpg")), b"garbage");
    }
    let mut o = options(&tmp.path().join("c"));
    o.val_fraction = 0.0;
    o.test_fraction = 0.0;
    let ds = Dataset::open(parse_source(&format!("folder:{}", root.display())).unwrap(), o.clone()).unwrap();
    let err = ds.prepare(Split::Train, 16).unwrap_err();
    assert!(matches!(err, DataError::TooManyBad { bad: 6, total: 18, .. }), "{err}");
    assert!(err.to_string().contains("bad0.jpg"), "{err}");
    // A higher tolerance accepts it.
    o.max_bad_fraction = 0.5;
    o.cache_dir = tmp.path().join("c2");
    let ds = Dataset::open(parse_source(&format!("folder:{}", root.display())).unwrap(), o).unwrap();
    assert_eq!(ds.prepare(Split::Train, 16).unwrap().entries.len(), 12);
}

#[test]
fn single_class_and_empty_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("one");
    save(&root.join("only/x.png"), &picture(8, 8, RED));
    let err =
        Dataset::open(parse_source(&format!("folder:{}", root.display())).unwrap(), options(tmp.path())).unwrap_err();
    assert!(matches!(err, DataError::SingleClass { .. }), "{err}");
    let root = tmp.path().join("empty");
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::create_dir_all(root.join("b")).unwrap();
    let err =
        Dataset::open(parse_source(&format!("folder:{}", root.display())).unwrap(), options(tmp.path())).unwrap_err();
    assert!(matches!(err, DataError::Empty { .. }), "{err}");
}

fn wake_vision_csv(rows: &[(&str, &str)]) -> String {
    let mut s = String::from("filename,person,depiction,body_part,near,dark\n");
    for (i, (f, p)) in rows.iter().enumerate() {
        s.push_str(&format!("{f},{p},{},{},-1,\n", i % 2, (i + 1) % 2));
    }
    s
}

#[test]
fn wake_vision_csv_and_tar_gz() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("wv");
    std::fs::create_dir_all(&root).unwrap();
    // Validation: 8 labelled rows (4 person), 2 rows with person -1/empty, 1 missing file.
    let mut val_rows: Vec<(String, String)> = (0..8).map(|i| (format!("v{i}.jpg"), (i % 2).to_string())).collect();
    val_rows.push(("v_unk1.jpg".into(), "-1".into()));
    val_rows.push(("v_unk2.jpg".into(), String::new()));
    val_rows.push(("v_missing.jpg".into(), "1".into()));
    let rows: Vec<(&str, &str)> = val_rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    write(&root.join("wake_vision_validation.csv"), wake_vision_csv(&rows).as_bytes());
    let train_rows: Vec<(String, String)> = (0..20).map(|i| (format!("t{i}.jpg"), (i % 2).to_string())).collect();
    let rows: Vec<(&str, &str)> = train_rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    write(&root.join("wake_vision_train_quality.csv"), wake_vision_csv(&rows).as_bytes());

    // All JPEGs (person = red) in one .tar.gz below a sub-folder, in a nested path.
    let tar_path = root.join("archives/wake-vision-0.tar.gz");
    std::fs::create_dir_all(tar_path.parent().unwrap()).unwrap();
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(&tar_path).unwrap(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, person) in val_rows.iter().chain(&train_rows).filter(|(n, _)| n != "v_missing.jpg") {
        let bytes = jpeg_bytes(&picture(48, 36, if person == "1" { RED } else { BLUE }));
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("images/{name}"), bytes.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();

    let src = WakeVisionSource::new(&root).unwrap();
    let cat = src.catalog().unwrap();
    assert_eq!(cat.excluded, 2);
    assert_eq!(cat.flag_names, vec!["depiction", "body_part", "near", "dark"]);
    assert_eq!(cat.records.len(), 29, "8 + 1 missing (found only on fetch) + 20");
    let v3 = cat.records.iter().find(|r| r.key == "v3.jpg").unwrap();
    assert_eq!((v3.label, v3.split.as_deref(), v3.flags.as_slice()), (1, Some("validation"), &[1, 0, -1, -1][..]));

    let mut o = options(&tmp.path().join("cache"));
    o.max_bad_fraction = 0.2;
    let ds = Dataset::open(std::sync::Arc::new(src), o).unwrap();
    assert_eq!(ds.split_records(Split::Train).len(), 20);
    assert_eq!(ds.split_records(Split::Test).len(), 0);
    let dc = DataConfig::new(24, Color::Grayscale);
    let val = samples(&all_batches(&ds, Split::Validation, dc, 3, false, 0));
    assert_eq!(val.len(), 8);
    assert_eq!(ds.len(Split::Validation), 8);
    assert_eq!(val.iter().filter(|(_, l)| *l == 1).count(), 4);
    for (img, _) in &val {
        assert_eq!(img.len(), 24 * 24);
    }
    let skipped = ds.skipped();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].path.contains("v_missing.jpg") && skipped[0].reason.contains("not found"), "{skipped:?}");
    let train = samples(&all_batches(&ds, Split::Train, DataConfig::new(24, Color::Rgb), 8, true, 1));
    assert_eq!(train.len(), 20);
    // Red = person: the red plane is brighter than the blue one.
    for (img, l) in &train {
        let r: f32 = img[..576].iter().sum();
        let b: f32 = img[1152..].iter().sum();
        assert_eq!(*l, u32::from(r > b));
    }
}

#[test]
fn wake_vision_extracted_dir_and_missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("wv");
    let rows = [("a.jpg", "1"), ("b.jpg", "0"), ("c.jpg", "1"), ("d.jpg", "0"), ("gone.jpg", "0"), ("e.jpg", "-1")];
    write(&root.join("wake_vision_test.csv"), wake_vision_csv(&rows).as_bytes());
    write(&root.join("wake_vision_train_large.csv"), wake_vision_csv(&rows[..4]).as_bytes());
    for (f, p) in &rows[..4] {
        save(&root.join("test").join(f), &picture(30, 30, if *p == "1" { RED } else { BLUE }));
    }
    let cat = WakeVisionSource::new(&root).unwrap().catalog().unwrap();
    assert_eq!(cat.records.len(), 8);
    assert_eq!(cat.excluded, 1);
    assert_eq!(cat.skipped.len(), 1);
    assert!(cat.skipped[0].reason.contains("gone.jpg"));
    let bad = root.join("wake_vision_validation.csv");
    write(&bad, b"file,label\nx.jpg,1\n");
    let err = WakeVisionSource::new(&root).unwrap().catalog().unwrap_err();
    assert!(err.to_string().contains("filename") && err.to_string().contains("wake_vision_validation.csv"), "{err}");
}

fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(data);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzipped_idx() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");
    let (n_train, n_test) = (40usize, 10usize);
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        // Image i is constant 10 * label, label = i mod 3.
        let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let pixels: Vec<u8> = labels.iter().flat_map(|&l| vec![l * 100; 28 * 28]).collect();
        write(
            &dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
            &gz(&idx_bytes(0x803, &[n as u32, 28, 28], &pixels)),
        );
        write(&dir.join(format!("{prefix}-labels-idx1-ubyte.gz")), &gz(&idx_bytes(0x801, &[n as u32], &labels)));
    }
    let ds = Dataset::from_spec(&format!("idx:{}", dir.display()), options(&tmp.path().join("c"))).unwrap();
    assert_eq!(ds.classes(), 3);
    assert_eq!(ds.len(Split::Train) + ds.len(Split::Validation), n_train);
    assert_eq!(ds.len(Split::Validation), 3, "round(10 % of 14, 13, 13) per class");
    assert_eq!(ds.len(Split::Test), n_test);
    for (img, l) in samples(&all_batches(&ds, Split::Test, DataConfig::new(32, Color::Grayscale), 4, false, 0)) {
        assert_eq!(img.len(), 32 * 32);
        let want = f32::from(l as u8 * 100) / 127.5 - 1.0;
        assert!(img.iter().all(|v| (v - want).abs() < 0.02), "label {l}: {} vs {want}", img[0]);
    }
    // A truncated image file is a clear error naming it.
    write(&dir.join("t10k-images-idx3-ubyte.gz"), &gz(&idx_bytes(0x803, &[10, 28, 28], &[0; 100])));
    let ds = Dataset::from_spec(&format!("idx:{}", dir.display()), options(&tmp.path().join("c2"))).unwrap();
    let err = ds.prepare(Split::Test, 28).unwrap_err();
    assert!(err.to_string().contains("t10k-images-idx3-ubyte.gz") && err.to_string().contains("truncated"), "{err}");
    // Labels without images.
    std::fs::remove_file(dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let err = IdxSource::new(&dir).unwrap().catalog().unwrap_err();
    assert!(err.to_string().contains("t10k-images-idx3-ubyte"), "{err}");
}

#[test]
fn fashion_mnist_from_the_debian_package() {
    // `cargo xtask ci` installs the package and points DANAS_FASHION_MNIST at it.
    let dir = std::env::var_os("DANAS_FASHION_MNIST")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/share/datasets/fashion-mnist".into());
    if !dir.is_dir() {
        assert!(std::env::var_os("CI").is_none(), "CI must install the Debian package dataset-fashion-mnist");
        println!("skipped: {} is absent (apt-get install dataset-fashion-mnist)", dir.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ds = Dataset::from_spec(&format!("idx:{}", dir.display()), options(tmp.path())).unwrap();
    let cat = ds.catalog();
    let count = |s: &str| cat.records.iter().filter(|r| r.split.as_deref() == Some(s)).count();
    assert_eq!((count("train"), count("test")), (60_000, 10_000));
    assert_eq!(ds.classes(), 10);
    assert_eq!(ds.len(Split::Train) + ds.len(Split::Validation), 60_000);
    assert_eq!(ds.len(Split::Test), 10_000);
    let counts = ds.split_counts();
    assert!(counts["test"].per_class.values().all(|&c| c == 1000));
    assert!(counts["validation"].per_class.values().all(|&c| c == 600), "stratified 10 %");
    // Real pixels: the first test batch decodes to 1×28×28 luminance in [-1, 1],
    // with both black background and bright garment pixels present.
    let b = ds.batches(Split::Test, DataConfig::new(28, Color::Grayscale), 64, false, 0).next().unwrap().unwrap();
    assert_eq!((b.n, b.c, b.h, b.w), (64, 1, 28, 28));
    assert_eq!(b.images.len(), 64 * 28 * 28);
    assert!(b.images.iter().all(|v| (-1.0..=1.0).contains(v)));
    let lo = b.images.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = b.images.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert!(lo < -0.99 && hi > 0.5, "range {lo}..{hi}");
    assert!(b.labels.iter().all(|&l| l < 10));
    assert!(b.labels.iter().collect::<std::collections::BTreeSet<_>>().len() > 3, "several classes in a batch");
}

#[test]
fn built_in_sources_pass_the_conformance_check() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("f");
    for i in 0..3 {
        save(&folder.join(format!("a/{i}.png")), &picture(10, 12, RED));
        save(&folder.join(format!("b/{i}.jpg")), &picture(12, 10, BLUE));
    }
    let wv = tmp.path().join("wv");
    write(&wv.join("wake_vision_test.csv"), wake_vision_csv(&[("x.jpg", "1"), ("y.jpg", "0")]).as_bytes());
    save(&wv.join("img/x.jpg"), &picture(9, 9, RED));
    save(&wv.join("img/y.jpg"), &picture(9, 9, BLUE));
    let idx = tmp.path().join("idx");
    write(&idx.join("train-images-idx3-ubyte"), &idx_bytes(0x803, &[4, 2, 2], &[7; 16]));
    write(&idx.join("train-labels-idx1-ubyte"), &idx_bytes(0x801, &[4], &[0, 1, 0, 1]));
    for spec in [
        format!("folder:{}", folder.display()),
        format!("wake-vision:{}", wv.display()),
        format!("idx:{}", idx.display()),
        "synthetic:n=12,size=16".to_string(),
    ] {
        danas_data::check_source(parse_source(&spec).unwrap().as_ref(), 5).unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
}

/// Writes a Wake Vision shard the way Hugging Face's `datasets` does: an `image` struct of
/// `bytes` and `path`, `person` and flag columns as nullable int64.
fn write_parquet_shard(path: &std::path::Path, rows: &[(String, Option<i64>, Vec<u8>)]) {
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    let schema = parquet::schema::parser::parse_message_type(
        "message schema {
            optional group image { optional binary bytes; optional binary path (STRING); }
            optional int64 person;
            optional int64 depiction;
            optional int64 body_part;
            optional int64 near;
            optional int64 dark;
        }",
    )
    .unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let props = WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build();
    let mut w =
        SerializedFileWriter::new(std::fs::File::create(path).unwrap(), std::sync::Arc::new(schema), props.into())
            .unwrap();
    let mut rg = w.next_row_group().unwrap();
    let n = rows.len();
    let mut k = 0;
    while let Some(mut col) = rg.next_column().unwrap() {
        match k {
            0 | 1 => {
                let vals: Vec<ByteArray> = rows
                    .iter()
                    .map(|(name, _, bytes)| {
                        ByteArray::from(if k == 0 { bytes.clone() } else { name.as_bytes().to_vec() })
                    })
                    .collect();
                col.typed::<ByteArrayType>().write_batch(&vals, Some(&vec![2i16; n]), None).unwrap();
            }
            _ => {
                // person; then the flags as the CSV test writes them (i % 2, (i + 1) % 2, null, null).
                let cells: Vec<Option<i64>> = (0..n)
                    .map(|i| match k {
                        2 => rows[i].1,
                        3 => Some((i % 2) as i64),
                        4 => Some(((i + 1) % 2) as i64),
                        _ => None,
                    })
                    .collect();
                let vals: Vec<i64> = cells.iter().flatten().copied().collect();
                let defs: Vec<i16> = cells.iter().map(|c| i16::from(c.is_some())).collect();
                col.typed::<Int64Type>().write_batch(&vals, Some(&defs), None).unwrap();
            }
        }
        col.close().unwrap();
        k += 1;
    }
    rg.close().unwrap();
    w.close().unwrap();
}

#[test]
fn wake_vision_parquet_reads_like_csv_and_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let (csv_dir, pq_dir) = (tmp.path().join("csv"), tmp.path().join("parquet"));
    std::fs::create_dir_all(&csv_dir).unwrap();
    // Validation: 8 labelled rows and 2 without a label; train: 20 rows in two shards.
    let mut val: Vec<(String, Option<i64>)> = (0..8).map(|i| (format!("v{i}.jpg"), Some(i % 2))).collect();
    val.push(("v_unk1.jpg".into(), Some(-1)));
    val.push(("v_unk2.jpg".into(), None));
    let train: Vec<(String, Option<i64>)> = (0..20).map(|i| (format!("t{i}.jpg"), Some(i % 2))).collect();
    let image = |person: Option<i64>, i: usize| {
        let base = if person == Some(1) { RED } else { BLUE };
        jpeg_bytes(&picture(40 + 2 * (i as u32 % 3), 30, base))
    };
    let with_images = |rows: &[(String, Option<i64>)]| -> Vec<(String, Option<i64>, Vec<u8>)> {
        rows.iter().enumerate().map(|(i, (n, p))| (n.clone(), *p, image(*p, i))).collect()
    };
    let (val_rows, train_rows) = (with_images(&val), with_images(&train));

    // CSV + tar.gz.
    let csv_of = |rows: &[(String, Option<i64>, Vec<u8>)]| {
        let r: Vec<(String, String)> =
            rows.iter().map(|(n, p, _)| (n.clone(), p.map(|v| v.to_string()).unwrap_or_default())).collect();
        let refs: Vec<(&str, &str)> = r.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        wake_vision_csv(&refs)
    };
    write(&csv_dir.join("wake_vision_validation.csv"), csv_of(&val_rows).as_bytes());
    write(&csv_dir.join("wake_vision_train_quality.csv"), csv_of(&train_rows).as_bytes());
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(csv_dir.join("images.tar.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    for (name, _, bytes) in val_rows.iter().chain(&train_rows) {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();

    // Parquet shards, as on Hugging Face.
    write_parquet_shard(&pq_dir.join("data/validation-00000-of-00001.parquet"), &val_rows);
    write_parquet_shard(&pq_dir.join("data/train_quality-00000-of-00002.parquet"), &train_rows[..12]);
    write_parquet_shard(&pq_dir.join("data/train_quality-00001-of-00002.parquet"), &train_rows[12..]);

    let cat = WakeVisionSource::new(&pq_dir).unwrap().catalog().unwrap();
    assert_eq!(cat.excluded, 2);
    assert_eq!(cat.flag_names, vec!["depiction", "body_part", "near", "dark"]);
    assert_eq!(cat.records.len(), 28);
    let v3 = cat.records.iter().find(|r| r.key.ends_with("validation-00000-of-00001.parquet#3")).unwrap();
    assert_eq!((v3.label, v3.split.as_deref(), v3.flags.as_slice()), (1, Some("validation"), &[1, 0, -1, -1][..]));

    let open = |dir: &std::path::Path, cache: &str| {
        let spec = format!("wake-vision:{}", dir.display());
        Dataset::open(parse_source(&spec).unwrap(), options(&tmp.path().join(cache))).unwrap()
    };
    let (a, b) = (open(&csv_dir, "cache-a"), open(&pq_dir, "cache-b"));
    assert_eq!(a.split_counts(), b.split_counts(), "the same split counts from both forms");
    for split in [Split::Train, Split::Validation] {
        assert_eq!(a.len(split), b.len(split));
    }
    // The same images, in the same order, decode to the same pixels.
    let dc = DataConfig::new(24, Color::Rgb);
    let va = samples(&all_batches(&a, Split::Validation, dc, 4, false, 0));
    let vb = samples(&all_batches(&b, Split::Validation, dc, 4, false, 0));
    assert_eq!(va.len(), 8);
    assert_eq!(va, vb);
    assert!(b.skipped().is_empty(), "{:?}", b.skipped());

    // A shard without `person` is a clear error naming the file.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    write(&bad.join("test-00000-of-00001.parquet"), b"not parquet");
    let err = WakeVisionSource::new(&bad).unwrap().catalog().unwrap_err().to_string();
    assert!(err.contains("test-00000-of-00001.parquet") && err.contains("Parquet"), "{err}");
}

#[test]
fn a_source_without_test_split_can_carve_one() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("d");
    for i in 0..20 {
        save(&root.join(format!("train/a/{i}.png")), &picture(20, 20, RED));
        save(&root.join(format!("train/b/{i}.png")), &picture(20, 20, BLUE));
    }
    let spec = format!("folder:{}", root.display());
    let plain = Dataset::open(parse_source(&spec).unwrap(), options(&tmp.path().join("c"))).unwrap();
    assert_eq!(plain.len(Split::Test), 0);
    let carved = |seed: u64| {
        let mut o = options(&tmp.path().join("c"));
        o.split_test = Some(0.25);
        o.split_seed = seed;
        let ds = Dataset::open(parse_source(&spec).unwrap(), o).unwrap();
        [Split::Train, Split::Validation, Split::Test]
            .map(|s| ds.split_records(s).iter().map(|&i| ds.catalog().records[i].key.clone()).collect::<Vec<_>>())
    };
    let [train, val, test] = carved(1);
    assert_eq!(test.len(), 10, "a quarter of the 40 training images, stratified");
    assert_eq!(train.len() + val.len() + test.len(), 40);
    assert!(test.iter().all(|t| !train.contains(t) && !val.contains(t)));
    assert_eq!(carved(1), [train, val, test.clone()], "same seed, same split");
    assert_ne!(carved(2)[2], test, "another seed, another split");
    let mut o = options(&tmp.path().join("c"));
    o.split_test = Some(0.9);
    let e = Dataset::open(parse_source(&spec).unwrap(), o).unwrap_err().to_string();
    assert!(e.contains("split_test"), "{e}");
}

/// Issue 30, item 7: IDX labels that disagree between splits (train all 255, test
/// 0 and 1) are an error naming both label files, not a silent 256-way model; a
/// declared class list settles the count.
#[test]
fn idx_splits_that_disagree_on_the_class_count_are_an_error_naming_both_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    for (prefix, labels) in [("train", vec![255u8; 8]), ("t10k", vec![0u8, 1, 0, 1])] {
        let n = labels.len() as u32;
        write(
            &dir.join(format!("{prefix}-images-idx3-ubyte")),
            &idx_bytes(0x803, &[n, 4, 4], &vec![7; 16 * n as usize]),
        );
        write(&dir.join(format!("{prefix}-labels-idx1-ubyte")), &idx_bytes(0x801, &[n], &labels));
    }
    let err = IdxSource::new(&dir).unwrap().catalog().unwrap_err().to_string();
    assert!(err.contains("train-labels-idx1-ubyte") && err.contains("t10k-labels-idx1-ubyte"), "{err}");
    assert!(err.contains("256") && err.contains("2 classes"), "{err}");
    // A declared class list that the labels fit settles the count ...
    let names: String = (0..256).map(|i| format!("c{i}\n")).collect();
    write(&dir.join("classes.txt"), names.as_bytes());
    let cat = IdxSource::new(&dir).unwrap().catalog().unwrap();
    assert_eq!(cat.class_names.len(), 256);
    assert_eq!(cat.class_names[255], "c255");
    // ... and labels beyond it are an error naming the label file and the list.
    write(&dir.join("classes.txt"), b"zero\none\n");
    let err = IdxSource::new(&dir).unwrap().catalog().unwrap_err().to_string();
    assert!(err.contains("train-labels-idx1-ubyte") && err.contains("classes.txt") && err.contains("255"), "{err}");
}

/// Issue 30, item 8: a folder of symbolic links (git-annex, DVC) is followed; links
/// that cannot be followed (content not fetched, a loop) are counted and named.
#[cfg(unix)]
#[test]
fn folder_sources_follow_symlinks_and_name_the_links_they_cannot_follow() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("annex");
    let root = tmp.path().join("d");
    for i in 0..6 {
        save(&store.join(format!("r{i}.png")), &picture(20, 20, RED));
        save(&store.join(format!("b{i}.png")), &picture(20, 20, BLUE));
    }
    std::fs::create_dir_all(root.join("red")).unwrap();
    for i in 0..6 {
        std::os::unix::fs::symlink(store.join(format!("r{i}.png")), root.join(format!("red/{i}.png"))).unwrap();
    }
    // A symlinked class directory is followed too.
    std::fs::create_dir_all(store.join("blue")).unwrap();
    for i in 0..6 {
        std::fs::rename(store.join(format!("b{i}.png")), store.join(format!("blue/{i}.png"))).unwrap();
    }
    std::os::unix::fs::symlink(store.join("blue"), root.join("blue")).unwrap();
    let src = danas_data::FolderSource::new(&root).unwrap();
    let cat = src.catalog().unwrap();
    assert_eq!(cat.class_names, vec!["blue", "red"]);
    assert_eq!(cat.records.len(), 12, "every linked image is listed");
    assert!(cat.skipped.is_empty(), "{:?}", cat.skipped);
    // Dangling links (annexed content not fetched) and a link loop are named.
    std::os::unix::fs::symlink(store.join("missing.png"), root.join("red/gone.png")).unwrap();
    std::os::unix::fs::symlink(root.join("red/loop.png"), root.join("red/loop.png")).unwrap();
    let cat = src.catalog().unwrap();
    assert_eq!(cat.records.len(), 12);
    assert_eq!(cat.skipped.len(), 2, "{:?}", cat.skipped);
    assert!(cat.skipped.iter().any(|s| s.path.ends_with("gone.png") && s.reason.contains("missing.png")));
    assert!(cat.skipped.iter().all(|s| s.reason.contains("symbolic link")));
    // A folder of nothing but unfetched links says why it has no usable image.
    let only_links = tmp.path().join("e");
    for class in ["a", "b"] {
        std::fs::create_dir_all(only_links.join(class)).unwrap();
        std::os::unix::fs::symlink(store.join("nowhere.png"), only_links.join(format!("{class}/x.png"))).unwrap();
    }
    let err = Dataset::open(
        parse_source(&format!("folder:{}", only_links.display())).unwrap(),
        options(&tmp.path().join("c")),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("symbolic link") && err.contains("x.png"), "{err}");
}
