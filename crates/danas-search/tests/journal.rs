//! Tests of the study journal: durability, locking, rejection of non-studies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use danas_core::{Arch, Candidate, Color, Costs, DataConfig, Metrics};
use danas_search::{Journal, SearchError, TrialEnd, TrialStatus};
use serde_json::json;

fn cand() -> Candidate {
    Candidate::new(DataConfig::new(32, Color::Rgb), Arch::mobilenet_v2(0.5, [1, 1, 0, 0, 0]))
}

#[test]
fn trials_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("study.sqlite");
    {
        let mut j = Journal::create(&path, &json!({"space": "demo", "seed": 7})).unwrap();
        j.begin_trial(0, &[1, 0, 1], &cand(), 100).unwrap();
        let (costs, metrics) = (Costs::new(1, 2), Metrics::new().with("acc", 0.9));
        let end = TrialEnd {
            status: TrialStatus::Complete,
            costs: Some(&costs),
            metrics: Some(&metrics),
            message: None,
            eval_seconds: Some(1.5),
        };
        j.finish_trial(0, &end, 3.0, Some(&json!({"tell": 0}))).unwrap();
        j.begin_trial(1, &[2, 0, 1], &cand(), 101).unwrap();
        j.record_supernet("32-rgb", "supernets/32-rgb.bin", 12.0).unwrap();
        j.event("note", "hello").unwrap();
        // dropped without finishing trial 1: as after a crash
    }
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.config().unwrap()["seed"], 7);
    let trials = j.trials().unwrap();
    assert_eq!(trials.len(), 2);
    assert_eq!(trials[0].status, TrialStatus::Complete);
    assert_eq!(trials[0].metrics.as_ref().unwrap().value("acc"), Some(0.9));
    assert_eq!(trials[0].costs, Some(Costs::new(1, 2)));
    assert_eq!(trials[0].candidate, cand());
    assert_eq!(trials[0].genome, vec![1, 0, 1]);
    let interrupted = j.interrupted().unwrap();
    assert_eq!(interrupted.iter().map(|t| t.id).collect::<Vec<_>>(), vec![1]);
    j.forget_running(1).unwrap();
    assert_eq!(j.trials().unwrap().len(), 1);
    assert_eq!(j.elapsed_seconds().unwrap(), 3.0);
    assert_eq!(j.supernet("32-rgb").unwrap().unwrap().path, "supernets/32-rgb.bin");
    assert!(j.supernet("64-rgb").unwrap().is_none());
    assert_eq!(j.events().unwrap().len(), 1);
    assert_eq!(j.optimizer_events().unwrap(), vec![json!({"tell": 0})]);
}

#[test]
fn second_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("study.sqlite");
    let _first = Journal::create(&path, &json!({})).unwrap();
    match Journal::open(&path) {
        Err(SearchError::Locked { .. }) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(matches!(Journal::create(&path, &json!({})), Err(SearchError::Exists { .. })));
}

#[test]
fn not_a_study() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello, this is not a database").unwrap();
    let e = Journal::open(&text).unwrap_err();
    assert!(matches!(e, SearchError::NotAStudy { .. }), "{e}");
    assert!(e.to_string().contains("notes.txt"));

    let other_db = dir.path().join("other.sqlite");
    rusqlite_free_db(&other_db);
    let e = Journal::open(&other_db).unwrap_err();
    assert!(matches!(e, SearchError::NotAStudy { .. }), "{e}");

    let e = Journal::open(&dir.path().join("missing.sqlite")).unwrap_err();
    assert!(matches!(e, SearchError::NotAStudy { .. }), "{e}");
}

/// Writes a valid SQLite file whose meta table holds no readable study format.
fn rusqlite_free_db(path: &std::path::Path) {
    let j = Journal::create(path, &json!({})).unwrap();
    j.set_meta("format", "not-a-number").unwrap();
    drop(j);
}

#[test]
fn unknown_trial_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::create(&dir.path().join("s.sqlite"), &json!({})).unwrap();
    assert!(matches!(
        j.finish_trial(
            9,
            &TrialEnd {
                status: TrialStatus::Failed,
                costs: None,
                metrics: None,
                message: Some("x"),
                eval_seconds: None
            },
            0.0,
            None
        ),
        Err(SearchError::UnknownTrial(9))
    ));
    j.begin_trial(0, &[0], &cand(), 1).unwrap();
    assert!(j.begin_trial(0, &[0], &cand(), 1).is_err(), "duplicate id");
}
