//! Sharing the cores between the jobs that run at once.
//!
//! The trainer's kernels split their work over the rayon pool they run in. When
//! several trainings run at once in the global pool, every small kernel hands its
//! pieces to threads that are busy with the other training, and the waiting
//! (`sched_yield`, futex wake-ups) costs about a fifth of the time on two cores.
//! Each job therefore runs in its own pool with its share of the threads. The
//! results do not depend on the number of threads (danas-train tests this bitwise).

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
}
