//! Scale-out over a PostgreSQL study: the search hands its supernet trainings and
//! candidate evaluations to workers on any machine through the study's job queue
//! ([`RemoteEvaluator`]), and [`run_worker`] is what each worker process runs.
//!
//! The search proposes, gates, journals and selects exactly as it does alone, so the
//! same seed gives the same trials however many workers there are; a worker only
//! computes what the search asked for. Each data configuration's supernet is one
//! `prepare` job, claimed by one worker and stored in the database for the others.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use danas_core::{Candidate, DataConfig, Metrics};
use serde_json::{Value, json};

use crate::journal::Storage;
use crate::{EvalError, Evaluator, Finalized, Prepared, Promotion, SearchError};

mod queue;

pub use queue::{Attempt, Job, JobOutcome, Queue, Work};

/// An [`Evaluator`] whose supernet trainings, evaluations and promotions run on
/// workers (`danas worker`) through a PostgreSQL study's queue; the final stage runs
/// in this process with `local`.
pub struct RemoteEvaluator {
    storage: Storage,
    queue: std::sync::OnceLock<Queue>,
    local: Arc<dyn Evaluator>,
    shared_supernet: bool,
    poll: Duration,
    prefetch: Vec<DataConfig>,
}

impl std::fmt::Debug for RemoteEvaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteEvaluator").field("storage", &self.storage).finish_non_exhaustive()
    }
}

impl RemoteEvaluator {
    /// Submits work to the queue of `storage`'s study (connecting on first use, so
    /// the search can create the study first); `local` runs the final stage.
    /// `shared_supernet`: one supernet serves every data configuration (one job trains it).
    pub fn new(storage: &Storage, local: Arc<dyn Evaluator>, shared_supernet: bool) -> Self {
        Self {
            storage: storage.clone(),
            queue: std::sync::OnceLock::new(),
            local,
            shared_supernet,
            poll: Duration::from_millis(200),
            prefetch: Vec::new(),
        }
    }

    /// Queues the supernets of these data configurations as soon as the study
    /// exists, so idle workers train them in parallel before the search asks for
    /// them (the search itself meets a new data configuration one batch at a time).
    /// Changes no result: each supernet depends on its configuration and the seed only.
    #[must_use]
    pub fn prefetch(mut self, data: Vec<DataConfig>) -> Self {
        self.prefetch = data;
        self
    }

    fn queue(&self) -> Result<&Queue, SearchError> {
        if let Some(q) = self.queue.get() {
            return Ok(q);
        }
        let q = Queue::connect(&self.storage)?;
        let mut keys = HashSet::new();
        for &data in &self.prefetch {
            let work = Work::Prepare { data };
            let key = work.key(self.shared_supernet);
            if keys.insert(key.clone()) {
                q.submit(&work, &key)?;
            }
        }
        Ok(self.queue.get_or_init(|| q))
    }

    /// Submits a job and waits for its result.
    fn call(&self, work: &Work) -> Result<Value, EvalError> {
        let queue = self.queue()?;
        let id = queue.submit(work, &work.key(self.shared_supernet))?;
        match queue.wait(id, self.poll)? {
            JobOutcome::Done(v) => Ok(v),
            JobOutcome::Failed(e) => Err(e.into()),
        }
    }
}

fn metrics(v: &Value) -> Result<Metrics, EvalError> {
    Ok(serde_json::from_value(v.clone())?)
}

impl Evaluator for RemoteEvaluator {
    fn prepare(
        &self,
        data: DataConfig,
        dir: &Path,
        _existing: Option<&str>,
        status: &dyn Fn(&str),
    ) -> Result<Prepared, EvalError> {
        status(&format!("supernet {data}: trained by a worker"));
        let v = self.call(&Work::Prepare { data })?;
        let rel = v["checkpoint"].as_str().ok_or("a worker's prepare result names no checkpoint")?.to_string();
        // A local copy for the final stage (and the results folder).
        fetch_blob(self.queue()?, &rel, dir)?;
        Ok(Prepared { checkpoint: Some(rel), seconds: v["seconds"].as_f64().unwrap_or(0.0) })
    }

    fn evaluate(&self, candidate: &Candidate, seed: u64) -> Result<Metrics, EvalError> {
        metrics(&self.call(&Work::Evaluate { candidate: candidate.clone(), seed })?)
    }

    fn promote(&self, candidate: &Candidate, promotion: Promotion, seed: u64) -> Result<Option<Metrics>, EvalError> {
        let v = self.call(&Work::Promote { candidate: candidate.clone(), seed, promotion })?;
        if v.is_null() { Ok(None) } else { metrics(&v).map(Some) }
    }

    fn class_names(&self) -> Vec<String> {
        self.local.class_names()
    }

    fn finalize(
        &self,
        candidate: &Candidate,
        seed: u64,
        dir: &Path,
        name: &str,
    ) -> Result<Option<Finalized>, EvalError> {
        self.local.finalize(candidate, seed, dir, name)
    }
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Its name in the queue (default: host name and process id).
    pub name: String,
    /// Where it keeps supernet checkpoints fetched from the study.
    pub cache_dir: PathBuf,
    /// A job whose worker sent no heartbeat for this long is re-queued.
    pub stale_after: Duration,
    /// How often it sends a heartbeat while working.
    pub heartbeat_every: Duration,
    /// How long it sleeps when the queue is empty.
    pub idle_poll: Duration,
}

impl WorkerOptions {
    /// Defaults: heartbeats every 2 s, re-queued after 20 s of silence.
    pub fn new(name: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            cache_dir: cache_dir.into(),
            stale_after: Duration::from_secs(20),
            heartbeat_every: Duration::from_secs(2),
            idle_poll: Duration::from_millis(300),
        }
    }
}

/// What a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    /// Jobs finished (done or failed) and delivered.
    pub jobs: u64,
    /// Jobs whose result was not delivered because another worker took them over.
    pub lost: u64,
}

/// Runs a worker of `storage`'s study until the search has finished: claims jobs,
/// sends heartbeats while working, and delivers each outcome. `evaluator` must be
/// built from the study's settings (`SearchConfig::worker_evaluator`).
///
/// # Errors
/// Connection and database errors (a job's own failure is delivered, not returned).
pub fn run_worker(
    storage: &Storage,
    evaluator: &dyn Evaluator,
    opts: &WorkerOptions,
    log: &dyn Fn(&str),
) -> Result<WorkerSummary, SearchError> {
    let queue = Queue::connect(storage)?;
    let beat = Queue::connect(storage)?;
    let worker = Worker { queue: &queue, evaluator, opts, loaded: Mutex::new(HashSet::new()) };
    let mut summary = WorkerSummary::default();
    // Poll quickly right after a job (the search's next batch is near), slower when idle.
    let mut idle = Duration::from_millis(5);
    loop {
        let Some(job) = queue.claim(&opts.name, opts.stale_after.as_secs_f64())? else {
            if queue.finished()? {
                return Ok(summary);
            }
            std::thread::sleep(idle);
            idle = (idle * 2).min(opts.idle_poll);
            continue;
        };
        idle = Duration::from_millis(5);
        log(&format!("job {} ({})", job.id, job.kind));
        let stop = AtomicBool::new(false);
        let outcome = std::thread::scope(|s| {
            s.spawn(|| {
                let mut waited = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    waited += Duration::from_millis(100);
                    if waited >= opts.heartbeat_every {
                        waited = Duration::ZERO;
                        // a failed heartbeat only risks a re-queue
                        let _ = beat.heartbeat(job.id, &opts.name);
                    }
                }
            });
            let out = job
                .work()
                .map_err(|e| EvalError::from(format!("job {} ({}): {e}", job.id, job.kind)))
                .and_then(|w| worker.work(w, log));
            stop.store(true, Ordering::Relaxed);
            out
        });
        let outcome = match outcome {
            Ok(v) => JobOutcome::Done(v),
            Err(e) => JobOutcome::Failed(e.to_string()),
        };
        if queue.finish(job.id, &opts.name, &outcome)? {
            summary.jobs += 1;
        } else {
            summary.lost += 1;
            log(&format!("job {}: taken over by another worker, result dropped", job.id));
        }
    }
}

/// What a worker works with.
struct Worker<'a> {
    queue: &'a Queue,
    evaluator: &'a dyn Evaluator,
    opts: &'a WorkerOptions,
    /// The data configurations whose supernet the evaluator holds.
    loaded: Mutex<HashSet<String>>,
}

impl Worker<'_> {
    /// Does one job.
    fn work(&self, work: Work, log: &dyn Fn(&str)) -> Result<Value, EvalError> {
        let (evaluator, opts) = (self.evaluator, self.opts);
        let status = |s: &str| log(s);
        match work {
            Work::Prepare { data } => {
                let p = evaluator.prepare(data, &opts.cache_dir, None, &status)?;
                let rel = p.checkpoint.ok_or("the evaluator saved no supernet checkpoint")?;
                let bytes = std::fs::read(opts.cache_dir.join(&rel))?;
                self.queue.put_blob(&rel, &bytes)?;
                lock(&self.loaded).insert(data.key());
                Ok(json!({ "checkpoint": rel, "seconds": p.seconds }))
            }
            Work::Evaluate { candidate, seed } => {
                self.ensure_loaded(candidate.data, &status)?;
                Ok(serde_json::to_value(evaluator.evaluate(&candidate, seed)?)?)
            }
            Work::Promote { candidate, seed, promotion } => {
                self.ensure_loaded(candidate.data, &status)?;
                Ok(serde_json::to_value(evaluator.promote(&candidate, promotion, seed)?)?)
            }
        }
    }

    /// Loads the supernet of `data` into the evaluator, fetching it from the study.
    fn ensure_loaded(&self, data: DataConfig, status: &dyn Fn(&str)) -> Result<(), EvalError> {
        if lock(&self.loaded).contains(&data.key()) {
            return Ok(());
        }
        let cache = &self.opts.cache_dir;
        let rel = self.queue.prepared(data)?.ok_or_else(|| format!("no supernet of {data} in the study yet"))?;
        fetch_blob(self.queue, &rel, cache)?;
        self.evaluator.prepare(data, cache, Some(&rel), status)?;
        lock(&self.loaded).insert(data.key());
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Copies the study's blob `rel` to `dir/rel` unless it is there already; written
/// then renamed, so a process killed on the way leaves no half file behind.
fn fetch_blob(queue: &Queue, rel: &str, dir: &Path) -> Result<(), EvalError> {
    let path = dir.join(rel);
    if path.is_file() {
        return Ok(());
    }
    let bytes = queue.blob(rel)?.ok_or_else(|| format!("supernet {rel} is not in the study"))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}
