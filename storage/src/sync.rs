//! Group commit: the durable watermark and the rounds that advance it.
//!
//! The rounds run on the durability workers (`workers.rs`), shared by every log; each
//! log tells them when it has work through its [`Task`] state. The writer appends with `pwrite` and then records, under a short lock, the new end
//! offset and the file it dirtied. A sync takes a snapshot of that (the target offset
//! and the dirty files), releases the lock, runs `fdatasync` on each file and the
//! directory if a segment was created, and only then moves the durable watermark to the
//! target. Appends that arrive during the sync are covered by the next one, so with
//! many writers one sync serves many batches.
//!
//! Each round also records the new watermark in the checkpoint: written after the data
//! is synced and before the watermark is published (so after a `kill -9`, whose page
//! cache survives, the checkpoint covers every offset ever reported durable), and
//! flushed right after the publication, off the acknowledgement's path, while the
//! log's next round may already run on another worker. One `fdatasync` stands between
//! an append and its acknowledgement instead of two; the price is a window of one
//! checkpoint flush after each round in which a power loss leaves the persisted
//! watermark one round behind (`docs/storage.md`, "Persisted watermark").
//!
//! A failed sync marks the log failed for good: the kernel may have dropped the dirty
//! pages, and a retried fsync could report success for data that never reached the disk.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::format::{Checkpoint, CHECKPOINT_SLOT_BYTES};
use crate::vfs::{Vfs, VfsFile};
use crate::workers::{Pool, Slot};
use crate::zero::ZeroAhead;

/// One group commit that made something durable, as told to a [`SyncObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRound {
    /// How long the round took up to its publication: the `fdatasync` calls of the data
    /// files and directory, and the checkpoint's write (its flush comes after).
    pub duration: Duration,
    /// Records the round made durable (offsets between the old and new watermark).
    pub records: u64,
    /// Segment bytes written since the previous round and covered by this one.
    pub bytes: u64,
}

/// Told about every successful group commit that covered at least one record: how
/// long it took and how much it covered. Called on a durability worker (or the thread
/// that closed or truncated the log) right after the round and before the new
/// watermark is published, once per `fdatasync` round, never per append; it must not
/// block.
pub trait SyncObserver: std::fmt::Debug + Send + Sync {
    /// One round made `round.records` records durable.
    fn synced(&self, round: SyncRound);
}

/// The durable watermark as seen by async waiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableMark {
    /// Every offset below this is on stable storage.
    pub offset: u64,
    /// The log has failed; the watermark will not move again until it is reopened.
    pub failed: bool,
}

#[derive(Debug)]
struct SyncState {
    appended_offset: u64,
    durable_offset: u64,
    /// Segment bytes appended since the last sync began (for [`SyncRound::bytes`]).
    appended_bytes: u64,
    dirty: Vec<Arc<dyn VfsFile>>,
    dir_dirty: bool,
    failed: Option<String>,
    stopping: bool,
    /// Where the log's durability work is; only a move from idle queues it.
    task: Task,
    /// The log is in the workers' zeroing queue (and must not be put there twice).
    zero_listed: bool,
    /// Checkpoint flushes a worker runs for this log after leaving its round; the log
    /// is not stopped until they are done.
    checkpoint_flushes: u32,
}

/// Whether a log's group commit is idle, waiting for a worker, or running on one.
/// A log is queued at most once and run by one worker at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Idle,
    Queued,
    Running,
}

/// How a log's group commits are scheduled: by whom, and how soon after an append.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// The durability workers.
    pub(crate) pool: Arc<Pool>,
    /// `None`: sync as soon as a worker is free (`always`); otherwise this long after
    /// the first append not yet durable (`interval`).
    pub(crate) interval: Option<Duration>,
    /// Zero-ahead for the active segment, stepped by a worker when the log is idle
    /// (enabled for `always` logs only).
    pub(crate) zero: Arc<ZeroAhead>,
}

/// The checkpoint as last written. Its file is opened for each write rather than
/// held: one `openat` per group commit is nothing beside the `fdatasync`, and a
/// broker with ten thousand partitions keeps ten thousand descriptors fewer.
#[derive(Debug)]
struct CheckpointState {
    path: PathBuf,
    sequence: u64,
    /// What the last checkpoint written holds: neither may ever go back.
    durable_offset: u64,
    log_start_offset: u64,
}

/// A checkpoint slot written and not yet flushed; the descriptor lives until the flush.
struct UnflushedCheckpoint {
    file: Arc<dyn VfsFile>,
    path: PathBuf,
}

/// Whether a round's watermark is published before or after its checkpoint's flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    /// The workers' rounds: one `fdatasync` before the acknowledgement.
    BeforeCheckpointFlush,
    /// Explicit syncs, close, recovery: the persisted watermark covers the published
    /// one the moment it is published.
    AfterCheckpointFlush,
}

/// What a round made durable, and the checkpoint slot it wrote, if any, to be flushed.
struct Committed {
    durable: u64,
    unflushed: Option<UnflushedCheckpoint>,
}

/// Shared between the writer, the durability workers and readers waiting for
/// durability.
#[derive(Debug)]
pub(crate) struct Durable {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    state: Mutex<SyncState>,
    /// Signalled when the watermark moves, the log fails or stops, and when a worker
    /// leaves a stopping log.
    durable_changed: Condvar,
    watch: watch::Sender<DurableMark>,
    /// Held for the whole of a sync, so that two syncs never interleave: otherwise a
    /// second sync with nothing left to flush could publish a target that the first is
    /// still flushing.
    sync_lock: Mutex<CheckpointState>,
    /// Told about each round that made records durable.
    observer: Option<Arc<dyn SyncObserver>>,
    /// `None` for `os` logs: nothing syncs them but an explicit sync or close.
    schedule: Option<Schedule>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain counters behind, still consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Durable {
    pub(crate) fn new(
        dir: PathBuf,
        vfs: Arc<dyn Vfs>,
        checkpoint: Checkpoint,
        durable_offset: u64,
        observer: Option<Arc<dyn SyncObserver>>,
        schedule: Option<Schedule>,
    ) -> Durable {
        Durable {
            vfs,
            observer,
            schedule,
            state: Mutex::new(SyncState {
                appended_offset: durable_offset,
                durable_offset,
                appended_bytes: 0,
                dirty: Vec::new(),
                dir_dirty: false,
                failed: None,
                stopping: false,
                task: Task::Idle,
                zero_listed: false,
                checkpoint_flushes: 0,
            }),
            durable_changed: Condvar::new(),
            watch: watch::Sender::new(DurableMark {
                offset: durable_offset,
                failed: false,
            }),
            sync_lock: Mutex::new(CheckpointState {
                path: dir.join(crate::format::CHECKPOINT_FILE),
                sequence: checkpoint.sequence,
                durable_offset: checkpoint.durable_offset,
                log_start_offset: checkpoint.log_start_offset,
            }),
            dir,
        }
    }

    /// Records an append of `bytes` that ended at `next_offset` and wrote to `file`,
    /// and queues a round for it unless one is queued or running (which then covers
    /// it, or sees it pending when it ends).
    pub(crate) fn note_append(
        self: &Arc<Self>,
        next_offset: u64,
        bytes: u64,
        file: &Arc<dyn VfsFile>,
    ) {
        let mut state = lock(&self.state);
        // The sync target only moves forward, from one batch's end to a later one's.
        debug_assert!(
            next_offset > state.appended_offset,
            "appends move the sync target forward"
        );
        state.appended_offset = next_offset;
        state.appended_bytes += bytes;
        if !state.dirty.iter().any(|f| Arc::ptr_eq(f, file)) {
            state.dirty.push(file.clone());
        }
        let queue = self.claim_task(&mut state);
        drop(state);
        if let (Some(slot), Some(schedule)) = (queue, &self.schedule) {
            schedule.pool.push(self.clone(), slot);
        }
    }

    /// Moves an idle log to queued and says where to queue it; `None` if it is already
    /// queued or running, stopping, failed, or never synced by the workers (`os`).
    fn claim_task(&self, state: &mut SyncState) -> Option<Slot> {
        let schedule = self.schedule.as_ref()?;
        if state.task != Task::Idle || state.stopping || state.failed.is_some() {
            return None;
        }
        state.task = Task::Queued;
        Some(match schedule.interval {
            None => Slot::Ready,
            Some(interval) => Slot::At(Instant::now() + interval),
        })
    }

    /// Leaves a job: back to idle, and a stopping log's closer told that no worker
    /// holds it any more. Returns whether the log may be scheduled again.
    fn leave_job(&self, state: &mut SyncState) -> bool {
        debug_assert_eq!(state.task, Task::Running, "only a running job is left");
        state.task = Task::Idle;
        if state.stopping || state.failed.is_some() {
            self.durable_changed.notify_all();
            return false;
        }
        true
    }

    /// Takes a queued job: `false` (and the log left alone) if it is stopping or
    /// failed, or if the job is a zeroing step and a round is queued or running.
    fn take_job(&self, state: &mut SyncState, zeroing: bool) -> bool {
        if state.stopping || state.failed.is_some() {
            if state.task == Task::Queued && !zeroing {
                state.task = Task::Idle;
            }
            self.durable_changed.notify_all();
            return false;
        }
        if zeroing && state.task != Task::Idle {
            return false;
        }
        debug_assert!(
            zeroing || state.task == Task::Queued,
            "a round runs only for a queued log"
        );
        state.task = Task::Running;
        true
    }

    /// After a job, where the log goes next: another round if appends came meanwhile
    /// (at once, or an interval on), zeroing if it is idle and has not been offered
    /// it, or nowhere. `zero_again` says whether the zeroer has more to do.
    fn next_slot(&self, state: &mut SyncState, zero_again: bool) -> Option<Slot> {
        if state.appended_offset > state.durable_offset {
            return self.claim_task(state);
        }
        let zeroes = self.schedule.as_ref().is_some_and(|s| s.zero.is_enabled());
        if zero_again && !state.zero_listed && zeroes {
            state.zero_listed = true;
            return Some(Slot::Zeroing);
        }
        None
    }

    /// A worker's group-commit round for this log; returns where the log goes next.
    ///
    /// The round's checkpoint is flushed after the log has left the job: a round for
    /// appends that arrived meanwhile is queued first, so another worker can run it
    /// while this one waits for the checkpoint's flush.
    pub(crate) fn run_round(self: &Arc<Self>) -> Option<Slot> {
        if !self.take_job(&mut lock(&self.state), false) {
            return None;
        }
        let committed = self.commit(Publish::BeforeCheckpointFlush);
        let mut state = lock(&self.state);
        let unflushed = match committed {
            Ok(Committed { unflushed, .. }) => unflushed,
            Err(_) => {
                self.leave_job(&mut state);
                return None;
            }
        };
        let Some(unflushed) = unflushed else {
            if !self.leave_job(&mut state) {
                return None;
            }
            return self.next_slot(&mut state, true);
        };
        // Counted before the job is left: a closer waits for this flush as it waits
        // for the round.
        state.checkpoint_flushes += 1;
        let next = if self.leave_job(&mut state) {
            self.next_slot(&mut state, true)
        } else {
            None
        };
        drop(state);
        if let (Some(slot), Some(schedule)) = (next, &self.schedule) {
            schedule.pool.push(self.clone(), slot);
        }
        // A failed flush has failed the log; nothing is left to do about it here.
        let _ = self.flush_checkpoint(unflushed);
        let mut state = lock(&self.state);
        state.checkpoint_flushes -= 1;
        if state.checkpoint_flushes == 0 {
            self.durable_changed.notify_all();
        }
        None
    }

    /// A worker's zero-ahead step for this idle log; returns where the log goes next.
    pub(crate) fn run_zero_step(&self) -> Option<Slot> {
        {
            let mut state = lock(&self.state);
            state.zero_listed = false;
            if !self.take_job(&mut state, true) {
                return None;
            }
        }
        let wrote = self.schedule.as_ref().is_some_and(|s| s.zero.step(self));
        let mut state = lock(&self.state);
        if !self.leave_job(&mut state) {
            return None;
        }
        self.next_slot(&mut state, wrote)
    }

    /// Records a write to a file other than the segment (the producer journal), made
    /// before the append it belongs to is noted: the round that covers that append
    /// syncs this file too.
    pub(crate) fn note_dirty(&self, file: &Arc<dyn VfsFile>) {
        let mut state = lock(&self.state);
        if !state.dirty.iter().any(|f| Arc::ptr_eq(f, file)) {
            state.dirty.push(file.clone());
        }
    }

    /// A segment was sealed, which synced its file: no round needs to sync it again,
    /// and the log need not keep it open until one does (an `os` log may go long
    /// without a round, rolling many segments).
    pub(crate) fn note_sealed(&self, file: &Arc<dyn VfsFile>) {
        lock(&self.state).dirty.retain(|f| !Arc::ptr_eq(f, file));
    }

    /// Records a created or removed file: the directory needs a sync before anything
    /// written to a new file counts as durable.
    pub(crate) fn note_dir_change(&self, new_file: Option<&Arc<dyn VfsFile>>) {
        let mut state = lock(&self.state);
        state.dir_dirty = true;
        if let Some(file) = new_file {
            state.dirty.push(file.clone());
        }
    }

    /// `Err` once the log has failed.
    pub(crate) fn check_failed(&self) -> Result<()> {
        match &lock(&self.state).failed {
            Some(reason) => Err(Error::Failed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Marks the log failed (first reason wins) and wakes every waiter.
    pub(crate) fn fail(&self, error: &Error) {
        let mut state = lock(&self.state);
        if state.failed.is_none() {
            tracing::error!(dir = %self.dir.display(), %error, "log failed; appends refused until reopened");
            state.failed = Some(error.to_string());
        }
        let offset = state.durable_offset;
        drop(state);
        self.watch.send_replace(DurableMark {
            offset,
            failed: true,
        });
        self.durable_changed.notify_all();
    }

    /// Runs `result`'s error through [`fail`](Self::fail).
    pub(crate) fn fail_on_error<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(error) = &result {
            self.fail(error);
        }
        result
    }

    /// Every offset below this is on stable storage.
    pub(crate) fn durable_offset(&self) -> u64 {
        lock(&self.state).durable_offset
    }

    /// One group commit, checkpoint flush included and before the publication:
    /// everything appended so far is durable and the persisted watermark covers it when
    /// this returns, and a failed flush announces nothing. What
    /// [`Log::sync`](crate::Log::sync), close and recovery use; the workers' rounds
    /// flush the checkpoint after publishing instead ([`run_round`](Self::run_round)).
    pub(crate) fn sync_now(&self) -> Result<u64> {
        self.commit(Publish::AfterCheckpointFlush)
            .map(|committed| committed.durable)
    }

    /// Makes everything appended so far durable, writes the new watermark into the
    /// checkpoint, and only then publishes it; the checkpoint's flush comes before the
    /// publication or is left to the caller, as `publish` says. Recovery treats damage below the persisted watermark as rot (refused,
    /// nothing cut), never as a torn tail, and the slot is written only once the data
    /// it vouches for is on stable storage, so a checkpoint never claims more than the
    /// disk holds whenever it reaches the disk.
    fn commit(&self, publish: Publish) -> Result<Committed> {
        let mut checkpoint = lock(&self.sync_lock);
        let started = Instant::now();
        let (target, files, dir_dirty, bytes) = {
            let mut state = lock(&self.state);
            if let Some(reason) = &state.failed {
                return Err(Error::Failed {
                    reason: reason.clone(),
                });
            }
            let files = std::mem::take(&mut state.dirty);
            (
                state.appended_offset,
                files,
                std::mem::replace(&mut state.dir_dirty, false),
                std::mem::take(&mut state.appended_bytes),
            )
        };
        for file in &files {
            let synced = file
                .sync_data()
                .map_err(|e| Error::io("syncing", &self.dir, e));
            self.fail_on_error(synced)?;
        }
        if dir_dirty {
            let synced = self
                .vfs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("syncing directory", &self.dir, e));
            self.fail_on_error(synced)?;
        }
        // The checkpoint is written after the data is synced (a checkpoint that reached
        // the disk before the data it vouches for would make a torn tail look like
        // rot) and before the watermark moves: if the write fails, the log fails and
        // nobody is told that anything became durable in this round. In the page
        // cache it already covers the round for a process crash; its flush, for a
        // power loss, follows the publication.
        let mut unflushed = if target > checkpoint.durable_offset {
            let start = checkpoint.log_start_offset;
            let written = self.write_checkpoint(&mut checkpoint, target, start);
            Some(self.fail_on_error(written)?)
        } else {
            None
        };
        if publish == Publish::AfterCheckpointFlush {
            if let Some(written) = unflushed.take() {
                self.flush_checkpoint(written)?;
            }
        }
        let (durable, records) = {
            let mut state = lock(&self.state);
            // A checkpoint flush that failed while this round ran has failed the log:
            // its watermark must not be announced over the failure.
            if let Some(reason) = &state.failed {
                return Err(Error::Failed {
                    reason: reason.clone(),
                });
            }
            let before = state.durable_offset;
            // The watermark only moves forward (syncs never interleave, and the
            // target, the end of a batch that was appended, only grows), and never
            // past what was appended.
            debug_assert!(
                target >= state.durable_offset,
                "the durable watermark only moves forward"
            );
            state.durable_offset = state.durable_offset.max(target);
            debug_assert!(
                state.durable_offset <= state.appended_offset,
                "the durable watermark never passes the appended end"
            );
            (state.durable_offset, state.durable_offset - before)
        };
        // The observer hears of the round before any waiter wakes: whoever is told
        // that a record is durable and then reads the metrics finds the round there.
        if let (Some(observer), true) = (&self.observer, records > 0) {
            observer.synced(SyncRound {
                duration: started.elapsed(),
                records,
                bytes,
            });
        }
        self.watch.send_replace(DurableMark {
            offset: durable,
            failed: false,
        });
        self.durable_changed.notify_all();
        Ok(Committed { durable, unflushed })
    }

    /// Flushes a checkpoint slot written by a round; a failure fails the log.
    fn flush_checkpoint(&self, unflushed: UnflushedCheckpoint) -> Result<()> {
        let flushed = unflushed
            .file
            .sync_data()
            .map_err(|e| Error::io("syncing checkpoint", &unflushed.path, e));
        self.fail_on_error(flushed)
    }

    /// Persists a new log start offset (retention, truncation) before files go away.
    pub(crate) fn set_log_start(&self, log_start_offset: u64) -> Result<()> {
        self.check_failed()?;
        let mut checkpoint = lock(&self.sync_lock);
        let durable = self.durable_offset();
        let written = self.write_checkpoint(&mut checkpoint, durable, log_start_offset);
        let unflushed = self.fail_on_error(written)?;
        // Flushed before any file goes away, under the round lock.
        self.flush_checkpoint(unflushed)
    }

    /// Writes the next checkpoint slot (not flushed) and records what it holds.
    fn write_checkpoint(
        &self,
        checkpoint: &mut CheckpointState,
        durable_offset: u64,
        log_start_offset: u64,
    ) -> Result<UnflushedCheckpoint> {
        // Recovery trusts the checkpoint: a watermark that went back would let it cut
        // damaged acknowledged batches as a torn tail, and a log start that went back
        // would bring deleted offsets back.
        assert!(
            durable_offset >= checkpoint.durable_offset,
            "the persisted durable watermark only moves forward"
        );
        assert!(
            log_start_offset >= checkpoint.log_start_offset,
            "the persisted log start only moves forward"
        );
        let sequence = checkpoint.sequence + 1;
        let slot = Checkpoint {
            sequence,
            durable_offset,
            log_start_offset,
        }
        .encode();
        let position = (sequence % 2) * CHECKPOINT_SLOT_BYTES as u64;
        let path = &checkpoint.path;
        let file = self
            .vfs
            .open(path)
            .map_err(|e| Error::io("opening checkpoint", path, e))?;
        file.write_all_at(&slot, position)
            .map_err(|e| Error::io("writing checkpoint", path, e))?;
        checkpoint.sequence = sequence;
        checkpoint.durable_offset = durable_offset;
        checkpoint.log_start_offset = log_start_offset;
        Ok(UnflushedCheckpoint {
            file,
            path: path.clone(),
        })
    }

    /// Blocks until `offset` is durable (`Ok(true)`), the timeout passes (`Ok(false)`),
    /// or the log fails or closes (`Err`).
    pub(crate) fn wait_durable(&self, offset: u64, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.state);
        loop {
            if state.durable_offset >= offset {
                return Ok(true);
            }
            if let Some(reason) = &state.failed {
                return Err(Error::Failed {
                    reason: reason.clone(),
                });
            }
            if state.stopping {
                return Err(Error::Closed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            state = self
                .durable_changed
                .wait_timeout(state, deadline - now)
                .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard);
        }
    }

    /// A receiver that sees every move of the durable watermark.
    pub(crate) fn watch(&self) -> watch::Receiver<DurableMark> {
        self.watch.subscribe()
    }

    /// Stops the workers from touching the log again and waits until none does;
    /// waiters get [`Error::Closed`] unless already durable. A round in progress
    /// finishes first, and so does a checkpoint flush that followed one.
    pub(crate) fn stop(&self) {
        let mut state = lock(&self.state);
        state.stopping = true;
        self.durable_changed.notify_all();
        while state.task == Task::Running || state.checkpoint_flushes > 0 {
            state = self
                .durable_changed
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}
