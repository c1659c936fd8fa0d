//! Sharing the cores between the jobs that run at once.
//!
//! The trainer's kernels split their work over the rayon pool they run in. When
//! several trainings run at once in the global pool, every small kernel hands its
//! pieces to threads that are busy with the other training, and the waiting
//! (`sched_yield`, futex wake-ups) costs about a fifth of the time on two cores.
//! Each job therefore runs in its own pool with its share of the threads. The
//! results do not depend on the number of threads (danas-train tests this bitwise).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The threads each of `jobs` jobs gets: the global pool's size (`RAYON_NUM_THREADS`
/// or the number of cores) divided between them, at least one.
pub(crate) fn threads_per_job(jobs: usize) -> usize {
    (rayon::current_num_threads() / jobs.max(1)).max(1)
}

/// Runs `f` in a rayon pool of `threads` threads; in the calling thread's pool
/// when that already has `threads` threads or a pool cannot be built.
pub(crate) fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    if threads == rayon::current_num_threads() {
        return f();
    }
    match rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

/// Runs `f` on every item, at most `at_once` at a time, and returns the results in
/// the items' order. Each job runs in its own rayon pool with its share of the
/// threads ([`threads_per_job`]). A job that panics gives `Err` with the panic's
/// message; the other jobs carry on. Every parallel phase of the search and of
/// `danas fidelity` fans out through here.
pub(crate) fn fan_out<T: Sync, R: Send>(
    items: &[T],
    at_once: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Result<R, String>> {
    let workers = at_once.clamp(1, items.len().max(1));
    let threads = threads_per_job(workers);
    let next = AtomicUsize::new(0);
    let out: Vec<Mutex<Option<Result<R, String>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                with_threads(threads, || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        let r = catch_unwind(AssertUnwindSafe(|| f(item))).map_err(|p| panic_message(p.as_ref()));
                        *out[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r);
                    }
                })
            });
        }
    });
    out.into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .unwrap_or_else(|| Err("the job never ran".to_string()))
        })
        .collect()
}

/// What a panic said (its `&str` or `String` payload).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn jobs_share_the_threads_and_each_gets_at_least_one() {
        let total = rayon::current_num_threads();
        assert_eq!(threads_per_job(1), total);
        assert_eq!(threads_per_job(0), total);
        assert_eq!(threads_per_job(total * 4), 1);
        assert_eq!(with_threads(1, rayon::current_num_threads), 1);
        assert_eq!(with_threads(3, rayon::current_num_threads), 3);
    }

    #[test]
    fn fan_out_keeps_the_order_shares_the_threads_and_reports_panics() {
        let items: Vec<u32> = (0..7).collect();
        let out = fan_out(&items, 3, |&i| {
            if i == 4 {
                panic!("job {i} broke");
            }
            (i * 10, rayon::current_num_threads())
        });
        assert_eq!(out.len(), 7);
        for (i, r) in out.iter().enumerate() {
            match r {
                Ok((v, threads)) => {
                    assert_eq!(*v, i as u32 * 10);
                    assert_eq!(*threads, threads_per_job(3));
                }
                Err(e) => assert_eq!((i, e.as_str()), (4, "job 4 broke")),
            }
        }
        assert!(out[4].is_err());
        assert!(fan_out(&[] as &[u32], 4, |&i| i).is_empty());
        assert_eq!(fan_out(&[1u32], 0, |&i| i + 1), vec![Ok(2)]);
    }
}
