//! Zero-ahead: keep the space just past the active segment's end written with zeros,
//! so that appends overwrite blocks that are already initialised.
//!
//! Why: space reserved with `fallocate` is *unwritten* (ext4, XFS). The first write to
//! such a block converts its extent, and the next `fdatasync` must then commit a
//! journal transaction as well as flush the data. Overwriting written blocks needs no
//! metadata, so the sync is only the data and a cache flush. Measured on this project's
//! machine (ext4 on virtio): small appends each followed by `fdatasync` run about
//! 7,000 syncs/s into fallocated space and about 10,000 into written space, and
//! durable pub/sub p50 at 10,000 msg/s drops by about a fifth.
//!
//! The price is disk bandwidth (every byte is written twice), so zeroing only runs for
//! `always` logs whose recent append rate is low: the latency-bound case, where syncs
//! are frequent and small. A log streaming at disk bandwidth gets none.
//!
//! How the writer and the zeroer never overlap: the writer may write below
//! `ready_until` without a lock. The zeroer, holding the state lock, writes zeros at
//! `[ready_until, ready_until + ZERO_CHUNK_BYTES)`, syncs them, and only then raises
//! `ready_until`. A writer that needs to go past `ready_until` takes the lock (so it
//! waits for a chunk in progress) and moves `ready_until` itself. Zeroing stays within
//! the space already reserved with `fallocate`, so the file's length never changes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::segment::Segment;
use crate::sync::Durable;
use crate::vfs::VfsFile;

/// How far ahead of the writer the zeroer keeps written zeros.
pub const ZERO_AHEAD_BYTES: u64 = 1024 * 1024;
/// Zeros written (and synced) per step: small, so a step delays the syncer little.
pub const ZERO_CHUNK_BYTES: u64 = 128 * 1024;
/// Append rate above which a log gets no zeroing: it is bandwidth-bound, and writing
/// everything twice would halve what it can take.
pub const ZERO_AHEAD_MAX_BYTES_PER_SEC: u64 = 64 * 1024 * 1024;
/// How often the append rate is measured.
const RATE_WINDOW: Duration = Duration::from_millis(100);

/// One buffer of zeros, handed to `pwritev` as many times as a chunk needs.
static ZEROS: [u8; 16 * 1024] = [0; 16 * 1024];

#[derive(Debug)]
struct State {
    /// The active segment and its file; `None` while a roll swaps it.
    segment: Option<(Arc<Segment>, Arc<dyn VfsFile>)>,
    /// End of the space reserved in the active segment's file.
    allocated: u64,
    /// A zero write failed: stop trying for this log.
    broken: bool,
    /// Rate measurement.
    window_start: Instant,
    window_bytes: u64,
    low_rate: bool,
}

/// Shared between the writer of one log and the durability worker that zeroes for it.
#[derive(Debug)]
pub(crate) struct ZeroAhead {
    enabled: bool,
    state: Mutex<State>,
    /// The writer may write below this position without the lock; only a holder of
    /// the state lock changes it.
    ready_until: AtomicU64,
    /// Bytes appended since the log opened, for the rate measurement.
    appended_bytes: AtomicU64,
}

fn lock(mutex: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state is a few numbers, consistent at every step.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl ZeroAhead {
    /// Zeroing for the active `segment`, whose writer is at `end` and whose file is
    /// reserved up to `allocated`. `enabled` is false for logs that never sync per
    /// append (`os`, `interval`): the writer then never takes the lock.
    pub(crate) fn new(
        enabled: bool,
        segment: Arc<Segment>,
        file: Arc<dyn VfsFile>,
        end: u64,
        allocated: u64,
    ) -> Self {
        ZeroAhead {
            enabled,
            state: Mutex::new(State {
                // A disabled zero-ahead never writes, so it keeps no file open either
                // (`attach` and `detach` do nothing for it).
                segment: enabled.then_some((segment, file)),
                allocated,
                broken: false,
                window_start: Instant::now(),
                window_bytes: 0,
                low_rate: true,
            }),
            ready_until: AtomicU64::new(if enabled { end } else { u64::MAX }),
            appended_bytes: AtomicU64::new(0),
        }
    }

    /// Whether this log zeroes at all (`always` durability).
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the writer may write up to `needed` without [`claim`](Self::claim).
    pub(crate) fn is_ready(&self, needed: u64) -> bool {
        needed <= self.ready_until.load(Ordering::Acquire)
    }

    /// The writer is about to write up to `needed`, past the zeroed region, in a file
    /// now reserved up to `allocated`. Taking the lock waits for a chunk in progress,
    /// which lies below `allocated` and so never past what the writer reserved.
    pub(crate) fn claim(&self, needed: u64, allocated: u64) {
        let mut state = lock(&self.state);
        state.allocated = allocated;
        if needed > self.ready_until.load(Ordering::Acquire) {
            self.ready_until.store(needed, Ordering::Release);
        }
    }

    /// The current `ready_until` (`u64::MAX` when disabled).
    pub(crate) fn ready_until(&self) -> u64 {
        self.ready_until.load(Ordering::Acquire)
    }

    /// Counts appended bytes for the rate measurement.
    pub(crate) fn note_appended(&self, bytes: u64) {
        if self.enabled {
            self.appended_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// A roll is about to seal the active segment: stop zeroing it (waiting for a
    /// chunk in progress).
    pub(crate) fn detach(&self) {
        if self.enabled {
            lock(&self.state).segment = None;
        }
    }

    /// The new active segment, written up to `end` and reserved up to `allocated`.
    pub(crate) fn attach(
        &self,
        segment: Arc<Segment>,
        file: Arc<dyn VfsFile>,
        end: u64,
        allocated: u64,
    ) {
        if !self.enabled {
            return;
        }
        let mut state = lock(&self.state);
        state.segment = Some((segment, file));
        state.allocated = allocated;
        self.ready_until.store(end, Ordering::Release);
    }

    /// One step of zeroing, run by a durability worker when the log has nothing to sync.
    /// Returns whether it wrote anything (so the caller may try another step). A
    /// failed sync fails the log: it may have lost the writeback error of appended data.
    pub(crate) fn step(&self, durable: &Durable) -> bool {
        if !self.enabled {
            return false;
        }
        let mut state = lock(&self.state);
        if state.broken || !self.rate_is_low(&mut state) {
            return false;
        }
        let Some((segment, file)) = state.segment.clone() else {
            return false;
        };
        let from = self.ready_until.load(Ordering::Acquire);
        if from.saturating_sub(segment.end_position()) >= ZERO_AHEAD_BYTES {
            return false;
        }
        let to = (from + ZERO_CHUNK_BYTES)
            .min(state.allocated)
            .min(segment.capacity());
        if to <= from {
            return false;
        }
        let chunks = (to - from).div_ceil(ZEROS.len() as u64) as usize;
        let mut bufs: Vec<&[u8]> = vec![&ZEROS[..]; chunks];
        let tail = (to - from) as usize - (chunks - 1) * ZEROS.len();
        if let Some(last) = bufs.last_mut() {
            *last = &ZEROS[..tail];
        }
        if let Err(error) = file.write_vectored_all_at(&bufs, from) {
            // Nothing of ours was there; just stop zeroing this log.
            tracing::warn!(path = %segment.path.display(), %error, "zero-ahead write failed; zeroing stopped");
            state.broken = true;
            return false;
        }
        let synced = file
            .sync_data()
            .map_err(|e| Error::io("syncing zeroed space in", &segment.path, e));
        if durable.fail_on_error(synced).is_err() {
            state.broken = true;
            return false;
        }
        self.ready_until.store(to, Ordering::Release);
        true
    }

    /// Whether the append rate over the last window is low enough for zeroing.
    fn rate_is_low(&self, state: &mut State) -> bool {
        let elapsed = state.window_start.elapsed();
        if elapsed >= RATE_WINDOW {
            let total = self.appended_bytes.load(Ordering::Relaxed);
            let bytes = total - state.window_bytes;
            let per_sec = bytes as f64 / elapsed.as_secs_f64();
            state.low_rate = per_sec < ZERO_AHEAD_MAX_BYTES_PER_SEC as f64;
            state.window_start = Instant::now();
            state.window_bytes = total;
        }
        state.low_rate
    }
}
