//! A network checkpoint keeps the data record it was saved with; one saved without a
//! record (as older danas wrote them) still loads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use danas_core::{Arch, Candidate, Color, DataConfig};
use danas_train::{DataRecord, ExportConfig, Network, StoragePrecision};

#[test]
fn checkpoints_record_their_data() {
    let data = DataConfig::new(16, Color::Grayscale);
    let cand = Candidate::new(data, Arch::mobilenet_v2(0.25, [1, 0, 0, 0, 0]));
    let net = Network::new(&cand, 3, 5).unwrap();
    let dir = std::env::temp_dir().join(format!("danas-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let record = DataRecord {
        source: "synthetic:48".into(),
        split_seed: 7,
        train_limit: Some(100),
        eval_limit: None,
        split_test: Some(0.2),
        data,
        class_names: vec!["cat".into(), "dog".into(), "bird".into()],
        seed: 11,
        export: Some(ExportConfig { calib_images: 32, seed: 11, softmax: true }),
    };
    let with = dir.join("with.ckpt");
    net.save_with_record(&with, StoragePrecision::F32, &record).unwrap();
    let (back, rec) = Network::load_with_record(&with).unwrap();
    assert_eq!(rec.as_ref(), Some(&record));
    assert_eq!(back.weights().unwrap(), net.weights().unwrap());
    // Without a record: the file is the one older versions wrote; it loads, with no record.
    let without = dir.join("without.ckpt");
    net.save(&without, StoragePrecision::F32).unwrap();
    let (back, rec) = Network::load_with_record(&without).unwrap();
    assert!(rec.is_none());
    assert_eq!(back.weights().unwrap(), net.weights().unwrap());
    assert_eq!(Network::load(&with).unwrap().weights().unwrap(), net.weights().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
