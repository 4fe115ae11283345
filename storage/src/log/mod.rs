//! The log: one writer appends batches, any number of readers read them.
//!
//! [`Log`] is the single writer of a partition's log; it is `Send` but appends take
//! `&mut self`, so there is never a second writer. [`LogReader`] is a cheap clonable
//! handle for reads from other threads or tasks: it never blocks the writer (segment
//! list changes are copy-on-write behind a short lock; data and index visibility is
//! published with atomics).
//!
//! The writer's work is split by what it does to the files, one file each:
//!
//! - `open.rs`: opening (checkpoint and clean-shutdown marker, recovery, deciding where
//!   the log starts and ends) and closing (the marker that lets the next open skip the
//!   scan).
//! - `append.rs`: checking batches and writing them, one vectored write per run of
//!   batches, then publishing them to readers and to the syncer.
//! - `roll.rs`: sealing a full or old active segment and starting the next, in the
//!   order recovery relies on.
//! - `retention.rs`: moving the log start forward and deleting whole sealed segments
//!   below it, checkpoint first.
//! - `reader.rs`: [`LogReader`], everything a reader may do.
//!
//! This file holds what they all share: the state readers see (`Shared`) and the
//! writer's own (`Log`).
//!
//! The invariants `docs/ARCHITECTURE.md` promises for the log are asserted where they
//! are kept, with `assert!` where a violation would corrupt data and `debug_assert!`
//! elsewhere: offsets only move forward (the log start in `retention.rs` and `open.rs`,
//! the end in `append.rs` and `roll.rs`); a batch is validated before it is written,
//! and `append_all` reports each stored batch once, in order (`append.rs`); the durable
//! watermark only moves forward and lands on batch boundaries (`append.rs`, `sync.rs`);
//! recovery cuts a torn tail only above the persisted watermark (`recovery.rs`).
//! Nothing that a file or a client can make false is asserted: that is an error.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::format::SEGMENT_HEADER_BYTES;
use crate::producers::{ProducerEntry, ProducerJournal};
use crate::recovery::RecoveryReport;
use crate::segment::{IndexCursor, Maps, Segment};
use crate::sync::Durable;
use crate::vfs::VfsFile;
use crate::zero::ZeroAhead;
use age::Ages;

mod age;
mod append;
mod open;
mod reader;
mod retention;
mod roll;

pub use append::{AppendInfo, MAX_BATCHES_PER_WRITE};
pub use open::LogOptions;
pub use reader::LogReader;
pub use retention::RetentionOutcome;

/// What the writer and every reader see: the segment list (replaced whole, copy on
/// write, so a reader holds a consistent list for as long as it likes), the log's
/// start and end offsets, and the durable watermark.
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    log_start_offset: AtomicU64,
    next_offset: AtomicU64,
    durable: Arc<Durable>,
}

impl Shared {
    fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        self.segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_segments(&self, segments: Vec<Arc<Segment>>) {
        *self.segments.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(segments);
    }
}

/// An append-only, segmented, crash-safe log of record batches.
///
/// ```
/// use protocol::batch::{BatchBuilder, BatchView};
/// use storage::{Durability, Log, LogConfig};
///
/// let dir = tempfile::tempdir()?;
/// let config = LogConfig { durability: Durability::Always, ..LogConfig::default() };
/// let mut log = Log::open(dir.path(), config)?;
///
/// let mut builder = BatchBuilder::new();
/// builder.push(1_700_000_000_000, None, Some(b"hello"), &[])?;
/// let appended = log.append(&builder.finish())?;
/// log.wait_durable(appended.next_offset, std::time::Duration::from_secs(5))?;
///
/// let chunk = log.reader().read(0, 1 << 20)?;
/// let view = BatchView::new(&chunk.bytes)?;
/// let first = view.records().next().ok_or("no record")??;
/// assert_eq!(first.value, Some(&b"hello"[..]));
/// log.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Log {
    shared: Arc<Shared>,
    config: LogConfig,
    options: LogOptions,
    active: Arc<Segment>,
    /// The active segment's file: the only segment file the log keeps open.
    active_file: Arc<dyn VfsFile>,
    /// The active segment's maps (the segment holds them too, until it is sealed).
    active_maps: Arc<Maps>,
    allocated_bytes: u64,
    zero: Arc<ZeroAhead>,
    cursor: IndexCursor,
    report: RecoveryReport,
    /// Segment ages on the monotonic clock (`age.rs`).
    ages: Ages,
    /// Which idempotent producer wrote which batch (`producers.rs`).
    producers: ProducerJournal,
    /// The journal's entries as opened, until the owner takes them.
    recovered_producers: Vec<ProducerEntry>,
}

impl Log {
    /// What opening the log found.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The producer journal's entries as the log opened, in offset order, every one
    /// for a batch the log holds (see `producers.rs`); empty after the first call.
    pub fn take_recovered_producers(&mut self) -> Vec<ProducerEntry> {
        std::mem::take(&mut self.recovered_producers)
    }

    /// Bytes in the producer journal; past [`producers::COMPACT_BYTES`](crate::producers::COMPACT_BYTES)
    /// the owner should [`compact_producers`](Self::compact_producers).
    pub fn producer_journal_bytes(&self) -> u64 {
        self.producers.len_bytes()
    }

    /// Rewrites the producer journal as `live`, the entries still needed, in offset
    /// order (blocking I/O: one write and two syncs).
    pub fn compact_producers(&mut self, live: &[ProducerEntry]) -> Result<()> {
        self.shared.durable.check_failed()?;
        let compacted = self.producers.compact(live);
        self.shared.durable.fail_on_error(compacted)
    }

    /// A handle for reading from other threads.
    pub fn reader(&self) -> LogReader {
        LogReader::new(self.shared.clone())
    }

    /// The configuration the log runs with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Position in the active segment below which the writer may write without
    /// waiting: past the end, it is space the syncer has zeroed ahead (`always` logs).
    /// For tests and diagnostics.
    #[doc(hidden)]
    pub fn zeroed_until(&self) -> u64 {
        self.zero.ready_until()
    }

    /// Makes everything appended so far durable now, whatever the policy, and persists
    /// the watermark. Returns the durable offset.
    pub fn sync(&self) -> Result<u64> {
        self.shared.durable.sync_now()
    }

    /// Blocks until `offset` is durable (`Ok(true)`) or `timeout` passes (`Ok(false)`).
    /// Fails if the log has failed. With [`Durability::Os`](crate::Durability::Os) only
    /// [`sync`](Self::sync) moves the watermark.
    pub fn wait_durable(&self, offset: u64, timeout: Duration) -> Result<bool> {
        self.shared.durable.wait_durable(offset, timeout)
    }

    /// Total batch bytes held.
    pub fn size_bytes(&self) -> u64 {
        self.reader().size_bytes()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.shared.segments().len()
    }

    /// Creates an empty segment at offset `base`, big enough for a batch of
    /// `min_capacity` bytes even past `segment_bytes`: the first segment of a new or
    /// restarted log (`open.rs`), and each next one (`roll.rs`).
    fn create_segment(
        dir: &Path,
        config: &LogConfig,
        options: &LogOptions,
        base: u64,
        min_capacity: u64,
    ) -> Result<(Segment, Arc<dyn VfsFile>)> {
        let capacity = config
            .segment_bytes
            .max(min_capacity + SEGMENT_HEADER_BYTES);
        Segment::create(
            &options.index_access(),
            dir,
            base,
            options.clock.wall_ms(),
            capacity,
            append::FIRST_RESERVATION_BYTES.min(config.preallocate_bytes),
            config.index_interval_bytes,
        )
    }

    /// Takes the log away from the durability workers, waiting for a round in
    /// progress.
    fn stop_syncer(&mut self) {
        self.shared.durable.stop();
    }
}

impl Drop for Log {
    /// Dropping without [`close`](Log::close) is a crash as far as the disk is
    /// concerned: no marker is written and the next open recovers.
    fn drop(&mut self) {
        self.stop_syncer();
    }
}

/// Length of a segment's file: the space reserved for it so far.
fn allocated_len(file: &dyn VfsFile, path: &Path) -> Result<u64> {
    let metadata = file
        .file()
        .metadata()
        .map_err(|e| Error::io("reading segment size", path, e))?;
    Ok(metadata.len())
}
