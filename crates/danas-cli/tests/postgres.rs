//! Shared studies in a real PostgreSQL server: `danas search --storage … --study …`
//! and `danas worker` processes.
//!
//! Needs `DANAS_POSTGRES_URL` (a server `cargo xtask ci` starts on loopback in a temp
//! directory); skipped without it unless `CI` is set, then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use danas_search::{Journal, Queue, STUDY_FILE, Storage, TrialStatus};

/// The tests run one at a time: each starts several processes that train.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn url() -> Option<String> {
    let u = std::env::var("DANAS_POSTGRES_URL").ok();
    if u.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but DANAS_POSTGRES_URL is not: the PostgreSQL tests must not be skipped in CI");
        }
        eprintln!("skipped: set DANAS_POSTGRES_URL to a PostgreSQL server to run this test");
    }
    u
}

/// A study name no other run of these tests uses.
fn study(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("t_{tag}_{}_{nanos}", std::process::id())
}

/// Small, quick settings; `finetune_steps` makes each evaluation last long enough to
/// be killed in the middle of.
fn config(dir: &Path, trials: u64, parallel: usize, finetune_steps: u64) -> std::path::PathBuf {
    let path = dir.join("search.toml");
    std::fs::write(
        &path,
        format!(
            "data = \"synthetic:n=200,size=16\"\nspace = \"demo\"\nmax_trials = {trials}\nparallel = {parallel}\n\
             seed = 3\nfinal_top_k = 0\nram_kib = 64\nflash_kib = 512\n\
             [supernet]\nsteps = 20\nbatch_size = 16\n\
             [evaluation]\ncalib_batches = 2\nbatch_size = 32\nfinetune_steps = {finetune_steps}\n\
             [selection]\nmode = \"halving\"\nfinetune_steps = 5\nretrain_steps = 10\ntop_k = 1\n"
        ),
    )
    .unwrap();
    path
}

fn danas() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_danas"));
    c.env("DANAS_CACHE", std::env::temp_dir().join("danas-pg-test-cache"));
    c
}

fn search(cfg: &Path, out: &Path, storage: Option<(&str, &str)>) -> Child {
    let mut c = danas();
    c.args(["search", "--quiet", "--config"]).arg(cfg).arg("--out").arg(out);
    if let Some((url, study)) = storage {
        c.args(["--storage", url, "--study", study]);
    }
    c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

fn worker(url: &str, study: &str, name: &str, cache: &Path, stale_after: &str) -> Child {
    danas()
        .args(["worker", "--quiet", "--storage", url, "--study", study, "--name", name])
        .args(["--stale-after", stale_after, "--heartbeat", "0.5", "--cache"])
        .arg(cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(mut c: Child, what: &str) {
    let out = wait_timeout(&mut c, Duration::from_secs(600));
    assert!(out, "{what} did not finish in 10 minutes");
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{what} failed: {}", String::from_utf8_lossy(&o.stderr));
}

fn wait_timeout(c: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if c.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = c.kill();
    false
}

/// Every trial without clock readings, for comparing runs.
fn trials(j: &Journal) -> Vec<serde_json::Value> {
    j.trials()
        .unwrap()
        .iter()
        .map(|t| {
            let mut v = serde_json::to_value(t).unwrap();
            let o = v.as_object_mut().unwrap();
            for k in ["started_at", "finished_at", "eval_seconds", "elapsed_at"] {
                o.remove(k);
            }
            if let Some(rungs) = o.get_mut("rungs").and_then(|r| r.as_array_mut()) {
                for r in rungs {
                    let r = r.as_object_mut().unwrap();
                    for k in ["eval_seconds", "finished_at", "elapsed_at"] {
                        r.remove(k);
                    }
                }
            }
            v
        })
        .collect()
}

/// Done attempts per job key, and the keys of each kind.
fn audit(q: &Queue) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut done = BTreeMap::new();
    let mut claims = BTreeMap::new();
    for a in q.attempts().unwrap() {
        *claims.entry(a.key.clone()).or_insert(0) += 1;
        if a.outcome.as_deref() == Some("done") {
            *done.entry(a.key).or_insert(0) += 1;
        }
    }
    (done, claims)
}

#[test]
fn three_workers_finish_a_study_with_every_job_done_once() {
    let _one = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(url) = url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let name = study("three");
    let cfg = config(dir.path(), 9, 3, 0);
    let s = search(&cfg, &dir.path().join("out"), Some((&url, &name)));
    let ws: Vec<Child> =
        (0..3).map(|i| worker(&url, &name, &format!("w{i}"), &dir.path().join(format!("cache{i}")), "20")).collect();
    finish(s, "the search");
    for (i, w) in ws.into_iter().enumerate() {
        finish(w, &format!("worker {i}"));
    }
    let storage = Storage::new(&url, &name).unwrap();
    let j = Journal::open_postgres_read_only(&storage).unwrap();
    let ts = j.trials().unwrap();
    let evaluated = ts.iter().filter(|t| matches!(t.status, TrialStatus::Complete | TrialStatus::Failed)).count();
    assert_eq!(evaluated, 9, "every trial evaluated");
    assert!(ts.iter().all(|t| t.status != TrialStatus::Running), "a trial was lost");
    let (done, claims) = audit(&Queue::connect(&storage).unwrap());
    for (key, n) in &done {
        assert_eq!(*n, 1, "{key} was done {n} times");
    }
    let prepares: Vec<_> = claims.iter().filter(|(k, _)| k.starts_with("prepare:")).collect();
    assert!(!prepares.is_empty());
    for (key, n) in &prepares {
        assert_eq!(**n, 1, "{key}: a supernet was claimed {n} times");
    }
    // every configuration the search used has its supernet; the study queues the
    // space's six up front (the demo space: 16-32 px, rgb and grayscale)
    let configs: std::collections::BTreeSet<_> = ts.iter().map(|t| t.candidate.data.key()).collect();
    assert!(configs.iter().all(|k| prepares.iter().any(|(p, _)| **p == format!("prepare:{k}"))));
    assert_eq!(prepares.len(), 6, "one supernet per data configuration of the space");
    let evals = done.keys().filter(|k| k.starts_with("evaluate:")).count();
    assert_eq!(evals, 9, "one evaluation per trial");
    // report works on the PostgreSQL study
    let out =
        danas().args(["report", "--storage", &url, "--study", &name]).arg(dir.path().join("report")).output().unwrap();
    assert!(out.status.success(), "report: {}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("report/pareto.json").is_file());
}

#[test]
fn a_killed_worker_s_trial_is_run_again_by_another() {
    let _one = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(url) = url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let name = study("kill");
    let cfg = config(dir.path(), 4, 1, 400);
    let s = search(&cfg, &dir.path().join("out"), Some((&url, &name)));
    let mut a = worker(&url, &name, "doomed", &dir.path().join("cache-a"), "5");
    // wait until the doomed worker is in the middle of an evaluation, then SIGKILL it
    let deadline = Instant::now() + Duration::from_secs(300);
    let storage = Storage::new(&url, &name).unwrap();
    let held = loop {
        assert!(Instant::now() < deadline, "the worker never started an evaluation");
        if let Ok(q) = Queue::connect(&storage) {
            let open = q
                .attempts()
                .unwrap()
                .into_iter()
                .find(|a| a.worker == "doomed" && a.key.starts_with("evaluate:") && a.outcome.is_none());
            if let Some(a) = open {
                break a.key;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    a.kill().unwrap(); // SIGKILL
    let _ = a.wait();
    let b = worker(&url, &name, "rescuer", &dir.path().join("cache-b"), "5");
    finish(s, "the search");
    finish(b, "the second worker");
    let q = Queue::connect(&storage).unwrap();
    let tries: Vec<_> = q.attempts().unwrap().into_iter().filter(|a| a.key == held).collect();
    assert_eq!(tries.len(), 2, "{held}: {tries:?}");
    assert_eq!((tries[0].worker.as_str(), tries[0].outcome.as_deref()), ("doomed", None));
    assert_eq!((tries[1].worker.as_str(), tries[1].outcome.as_deref()), ("rescuer", Some("done")));
    let j = Journal::open_postgres_read_only(&storage).unwrap();
    let ts = j.trials().unwrap();
    assert_eq!(ts.iter().filter(|t| t.status == TrialStatus::Complete).count(), 4);
}

#[test]
fn one_worker_gives_the_trials_of_a_search_alone() {
    let _one = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(url) = url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let name = study("same");
    let cfg = config(dir.path(), 6, 2, 0);
    let alone = dir.path().join("alone");
    finish(search(&cfg, &alone, None), "the search alone");
    let s = search(&cfg, &dir.path().join("shared"), Some((&url, &name)));
    let w = worker(&url, &name, "only", &dir.path().join("cache"), "20");
    finish(s, "the shared search");
    finish(w, "the worker");
    let local = Journal::open_read_only(&alone.join(STUDY_FILE)).unwrap();
    let shared = Journal::open_postgres_read_only(&Storage::new(&url, &name).unwrap()).unwrap();
    assert_eq!(trials(&shared), trials(&local), "the same seed gave other trials through PostgreSQL");
}
