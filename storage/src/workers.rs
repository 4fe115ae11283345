//! The durability workers: a fixed pool of threads that group-commit every log with
//! pending appends, so that a broker with ten thousand partitions runs a handful of
//! sync threads, not ten thousand, and an idle log costs no thread and no wake-up.
//!
//! A log is never in the pool's queues more than once and never worked on by two
//! workers at a time: its own state (`sync.rs`, `Task`) says whether it is idle, queued
//! or running, and only the step that moves it from idle to queued pushes it. So one
//! `fdatasync` per file still covers every append that arrived while the previous round
//! ran, exactly as with a thread per log.
//!
//! Three kinds of work, taken in this order:
//!
//! 1. **ready**: `always` logs with appends not yet durable, first come first served;
//! 2. **timed**: `interval` logs, each due one interval after its first pending append,
//!    moved to ready when due;
//! 3. **zeroing**: `always` logs with nothing to sync whose zero-ahead (`zero.rs`) has
//!    work, one step each in turn: what the idle time of a thread per log used to do.
//!
//! The queues hold logs, not appends, so they are bounded by the number of open logs.
//! The pool ends when the last [`SyncWorkers`] handle is dropped (every open log holds
//! one through its options); its threads then drop whatever is still queued.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::sync::Durable;

/// Most workers a pool may have: far more threads than this only contend for the disk.
pub const MAX_SYNC_WORKERS: usize = 64;

/// Workers in a pool unless configured: 8, or the number of cores if that is more
/// (at most 32). A worker spends its time waiting for the device in `fdatasync`, not
/// on a core, so what bounds it is how many flushes the disk takes at once: on this
/// project's 2-core virtio machine, eight `always` partitions written at once ran at
/// about 76k msg/s with 2 workers, 121k with 4, 132k with 8 and 125k with a thread
/// per partition (median of 3, `docs/benchmarks.md`, "Durability workers").
pub fn default_sync_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(8, |n| n.get())
        .clamp(8, 32)
}

/// A handle to a pool of durability workers; clones share the pool. Logs opened with
/// the same handle (through [`LogOptions`](crate::LogOptions)) share its threads.
#[derive(Clone)]
pub struct SyncWorkers {
    pool: Arc<Pool>,
    /// Dropped with the last handle: that stops the threads.
    _owner: Arc<Owner>,
}

impl fmt::Debug for SyncWorkers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncWorkers")
            .field("threads", &self.pool.threads)
            .finish()
    }
}

impl SyncWorkers {
    /// Starts a pool of `threads` workers (1 to [`MAX_SYNC_WORKERS`]), named
    /// `log-sync-<n>`.
    pub fn start(threads: usize) -> Result<SyncWorkers> {
        if !(1..=MAX_SYNC_WORKERS).contains(&threads) {
            return Err(Error::Config(format!(
                "sync workers must be between 1 and {MAX_SYNC_WORKERS}, not {threads}"
            )));
        }
        let pool = Arc::new(Pool {
            threads,
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
        });
        let mut handles = Vec::with_capacity(threads);
        for n in 0..threads {
            let worker = pool.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("log-sync-{n}"))
                .spawn(move || worker.run());
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    pool.shut_down();
                    return Err(Error::Io {
                        op: "starting durability worker",
                        path: std::path::PathBuf::from(format!("log-sync-{n}")),
                        source: e,
                    });
                }
            }
        }
        let owner = Arc::new(Owner {
            pool: pool.clone(),
            handles: Mutex::new(handles),
        });
        Ok(SyncWorkers {
            pool,
            _owner: owner,
        })
    }

    /// The process-wide pool of [`default_sync_workers`] threads, started on first use:
    /// what a log opened with default options uses.
    pub fn shared() -> Result<SyncWorkers> {
        static SHARED: OnceLock<SyncWorkers> = OnceLock::new();
        if let Some(workers) = SHARED.get() {
            return Ok(workers.clone());
        }
        let started = SyncWorkers::start(default_sync_workers())?;
        // Two first callers may race: the loser's pool is dropped and stops.
        Ok(SHARED.get_or_init(|| started).clone())
    }

    /// How many threads the pool runs.
    pub fn threads(&self) -> usize {
        self.pool.threads
    }

    /// The pool without the handle that keeps it alive: what a log's durability state
    /// holds, so that a queued log never keeps its own pool running.
    pub(crate) fn pool(&self) -> Arc<Pool> {
        self.pool.clone()
    }
}

/// Stops the workers when the last handle goes; never joins from a worker itself.
struct Owner {
    pool: Arc<Pool>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.pool.shut_down();
        let handles = std::mem::take(&mut *lock(&self.handles));
        let me = std::thread::current().id();
        for handle in handles {
            // A worker can drop the last handle (it may hold the last log); it must
            // not wait for itself, and the others stop on their own.
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }
}

/// What one worker does next.
enum Job {
    /// A group-commit round for a log (`always`, or `interval` when due).
    Sync(Arc<Durable>),
    /// One zero-ahead step for an idle `always` log.
    Zero(Arc<Durable>),
}

/// An `interval` log waiting for its due time; ordered by time, then by arrival.
struct Timed {
    due: Instant,
    sequence: u64,
    log: Arc<Durable>,
}

impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.sequence) == (other.due, other.sequence)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.sequence).cmp(&(other.due, other.sequence))
    }
}

#[derive(Default)]
struct Queue {
    ready: VecDeque<Arc<Durable>>,
    timed: BinaryHeap<Reverse<Timed>>,
    zeroing: VecDeque<Arc<Durable>>,
    sequence: u64,
    shut_down: bool,
}

/// Where a log goes when it has work, as decided by the log (`sync.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Sync as soon as a worker is free.
    Ready,
    /// Sync at this time.
    At(Instant),
    /// Run a zero-ahead step when a worker has nothing else to do.
    Zeroing,
}

/// The shared queues and the threads' wake-up.
pub(crate) struct Pool {
    threads: usize,
    queue: Mutex<Queue>,
    work: Condvar,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The queues are consistent between any two statements; a panicking worker (a
    // bug) must not take every other log's durability down with it.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    /// Queues `log` in `slot`. The log has checked that it is not queued already.
    pub(crate) fn push(&self, log: Arc<Durable>, slot: Slot) {
        let mut queue = lock(&self.queue);
        if queue.shut_down {
            return;
        }
        Self::enqueue(&mut queue, log, slot);
        drop(queue);
        self.work.notify_one();
    }

    fn enqueue(queue: &mut Queue, log: Arc<Durable>, slot: Slot) {
        match slot {
            Slot::Ready => queue.ready.push_back(log),
            Slot::Zeroing => queue.zeroing.push_back(log),
            Slot::At(due) => {
                queue.sequence += 1;
                let sequence = queue.sequence;
                queue.timed.push(Reverse(Timed { due, sequence, log }));
            }
        }
    }

    fn shut_down(&self) {
        let mut queue = lock(&self.queue);
        queue.shut_down = true;
        queue.ready.clear();
        queue.timed.clear();
        queue.zeroing.clear();
        drop(queue);
        self.work.notify_all();
    }

    /// A worker's life: take the next job, run it, hand back where the log goes next.
    fn run(&self) {
        let mut requeue: Option<(Arc<Durable>, Slot)> = None;
        loop {
            let Some(job) = self.next_job(requeue.take()) else {
                return;
            };
            requeue = match job {
                Job::Sync(log) => log.run_round().map(|slot| (log, slot)),
                Job::Zero(log) => log.run_zero_step().map(|slot| (log, slot)),
            };
        }
    }

    /// Queues what the last job handed back, then waits for the next job; `None` once
    /// the pool is shut down. A log handed back as ready, with nothing else queued,
    /// comes straight back to the same worker without waking another.
    fn next_job(&self, requeue: Option<(Arc<Durable>, Slot)>) -> Option<Job> {
        let mut queue = lock(&self.queue);
        if let Some((log, slot)) = requeue {
            if !queue.shut_down {
                Self::enqueue(&mut queue, log, slot);
            }
        }
        loop {
            if queue.shut_down {
                return None;
            }
            let now = Instant::now();
            while queue
                .timed
                .peek()
                .is_some_and(|Reverse(timed)| timed.due <= now)
            {
                if let Some(Reverse(timed)) = queue.timed.pop() {
                    queue.ready.push_back(timed.log);
                }
            }
            let job = if let Some(log) = queue.ready.pop_front() {
                Some(Job::Sync(log))
            } else {
                queue.zeroing.pop_front().map(Job::Zero)
            };
            if let Some(job) = job {
                // Work left for another worker: make sure one is awake for it.
                if !queue.ready.is_empty() || !queue.zeroing.is_empty() {
                    self.work.notify_one();
                }
                return Some(job);
            }
            queue = match queue.timed.peek().map(|Reverse(timed)| timed.due) {
                Some(due) => {
                    let wait = due.saturating_duration_since(now);
                    self.work
                        .wait_timeout(queue, wait)
                        .map_or_else(|p| p.into_inner().0, |(guard, _)| guard)
                }
                None => self.work.wait(queue).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_refuses_no_threads_and_too_many() {
        assert!(SyncWorkers::start(0).is_err());
        assert!(SyncWorkers::start(MAX_SYNC_WORKERS + 1).is_err());
        assert_eq!(SyncWorkers::start(3).map(|w| w.threads()).ok(), Some(3));
    }

    #[test]
    fn the_shared_pool_is_one_pool() {
        let a = SyncWorkers::shared().unwrap();
        let b = SyncWorkers::shared().unwrap();
        assert!(Arc::ptr_eq(&a.pool, &b.pool));
        assert_eq!(a.threads(), default_sync_workers());
    }

    fn one_batch(ts: i64) -> bytes::Bytes {
        let mut builder = protocol::batch::BatchBuilder::new();
        builder.push(ts, None, Some(b"v"), &[]).unwrap();
        builder.finish()
    }

    fn options(workers: &SyncWorkers) -> crate::LogOptions {
        crate::LogOptions {
            sync_workers: Some(workers.clone()),
            ..crate::LogOptions::default()
        }
    }

    /// One worker, many logs of both scheduled policies: every append becomes
    /// durable, and a log closed while others are queued closes cleanly and reopens
    /// with everything it acknowledged.
    #[test]
    fn one_worker_serves_many_logs_and_a_closed_log_leaves_the_rest_alone() {
        let workers = SyncWorkers::start(1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = |i: usize| crate::LogConfig {
            durability: if i.is_multiple_of(3) {
                crate::Durability::IntervalMs(1)
            } else {
                crate::Durability::Always
            },
            ..crate::LogConfig::default()
        };
        let mut logs: Vec<_> = (0..30)
            .map(|i| {
                crate::Log::open_with(dir.path().join(i.to_string()), config(i), options(&workers))
                    .unwrap()
            })
            .collect();
        for round in 0..5 {
            for log in &mut logs {
                log.append(&one_batch(round)).unwrap();
            }
            if round == 2 {
                // Closed with its own append still pending and the others queued.
                logs.remove(7).close().unwrap();
            }
            for log in &logs {
                let end = log.reader().end_offset();
                assert!(log
                    .wait_durable(end, std::time::Duration::from_secs(30))
                    .unwrap());
            }
        }
        let reopened =
            crate::Log::open_with(dir.path().join("7"), config(7), options(&workers)).unwrap();
        assert_eq!(reopened.reader().durable_offset(), 3);
        assert!(reopened.recovery_report().clean);
    }

    /// The pool ends with its last handle; logs still open keep theirs alive.
    #[test]
    fn the_pool_lives_as_long_as_a_log_that_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let workers = SyncWorkers::start(2).unwrap();
        let config = crate::LogConfig::default();
        let mut log = crate::Log::open_with(dir.path(), config, options(&workers)).unwrap();
        drop(workers);
        let end = log.append(&one_batch(1)).unwrap().next_offset;
        assert!(log
            .wait_durable(end, std::time::Duration::from_secs(30))
            .unwrap());
        log.close().unwrap();
    }
}
