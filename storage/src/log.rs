//! The log: one writer appends batches, any number of readers read them.
//!
//! [`Log`] is the single writer of a partition's log; it is `Send` but appends take
//! `&mut self`, so there is never a second writer. [`LogReader`] is a cheap clonable
//! handle for reads from other threads or tasks: it never blocks the writer (segment
//! list changes are copy-on-write behind a short lock; data and index visibility is
//! published with atomics).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use protocol::batch::{BatchHeader, BatchView};
use tokio::sync::watch;

use crate::config::{Clock, Durability, LogConfig, SystemClock};
use crate::error::{Error, Result};
use crate::format::{self, Checkpoint, CleanMarker, SEGMENT_HEADER_BYTES};
use crate::recovery::{self, RecoveryReport};
use crate::segment::{IndexCursor, ReadChunk, Segment};
use crate::sync::{Durable, DurableMark};
use crate::vfs::{RealVfs, Vfs, VfsFile};
use crate::zero::ZeroAhead;

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the batch's first record.
    pub base_offset: u64,
    /// Offset after the batch's last record; the batch is durable once the durable
    /// watermark reaches this.
    pub next_offset: u64,
    /// Base offset of the segment the batch went into.
    pub segment_base_offset: u64,
    /// Byte position of the batch in that segment.
    pub position: u64,
}

/// What [`Log::enforce_retention`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Base offsets of the deleted segments.
    pub deleted_segments: Vec<u64>,
    /// Batch bytes deleted.
    pub deleted_bytes: u64,
}

/// Dependencies a log can be opened with; the defaults are the real file system and
/// the wall clock.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The file-system seam (a fault-injecting one in tests).
    pub vfs: Arc<dyn Vfs>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            vfs: Arc::new(RealVfs),
            clock: Arc::new(SystemClock),
        }
    }
}

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

/// A handle for reading the log from any thread. Clone freely.
#[derive(Debug, Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

/// Most batches [`Log::append_all`] writes with one system call (two buffers each,
/// well within Linux's `IOV_MAX` of 1024).
pub const MAX_BATCHES_PER_WRITE: usize = 256;

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
/// assert_eq!(view.records().next().unwrap()?.value, Some(&b"hello"[..]));
/// log.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Log {
    shared: Arc<Shared>,
    config: LogConfig,
    options: LogOptions,
    active: Arc<Segment>,
    allocated_bytes: u64,
    zero: Arc<ZeroAhead>,
    cursor: IndexCursor,
    syncer: Option<JoinHandle<()>>,
    report: RecoveryReport,
}

impl Log {
    /// Opens (or creates) the log in `dir` on the real file system.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        Self::open_with(dir, config, LogOptions::default())
    }

    /// Opens (or creates) the log in `dir` with the given file system and clock,
    /// recovering after a crash (see `docs/storage.md`, "Recovery").
    pub fn open_with(dir: impl AsRef<Path>, config: LogConfig, options: LogOptions) -> Result<Log> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating log directory", &dir, e))?;
        let vfs = options.vfs.clone();

        let checkpoint_path = dir.join(format::CHECKPOINT_FILE);
        let checkpoint = match std::fs::read(&checkpoint_path) {
            Ok(bytes) => Checkpoint::decode_file(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("reading checkpoint", &checkpoint_path, e)),
        }
        .unwrap_or(Checkpoint {
            sequence: 0,
            durable_offset: 0,
            log_start_offset: 0,
        });
        let checkpoint_file = match vfs.open(&checkpoint_path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let file = vfs
                    .create(&checkpoint_path)
                    .map_err(|e| Error::io("creating checkpoint", &checkpoint_path, e))?;
                file.set_len(2 * format::CHECKPOINT_SLOT_BYTES as u64)
                    .map_err(|e| Error::io("sizing checkpoint", &checkpoint_path, e))?;
                file
            }
            Err(e) => return Err(Error::io("opening checkpoint", &checkpoint_path, e)),
        };

        let marker_path = dir.join(format::CLEAN_MARKER_FILE);
        let marker = match std::fs::read(&marker_path) {
            Ok(bytes) => CleanMarker::decode(&bytes),
            Err(_) => None,
        };

        let bases = recovery::list_segments(&dir)?;
        let recovered = recovery::recover(
            vfs.as_ref(),
            &dir,
            &config,
            bases,
            checkpoint.durable_offset,
            checkpoint.log_start_offset,
            marker,
        )?;
        let mut segments = recovered.segments;
        let mut cursor = recovered.active_cursor;
        if segments.is_empty() {
            let base = checkpoint.log_start_offset;
            let segment = Self::create_segment(&dir, &config, &options, base, 0)?;
            segments.push(Arc::new(segment));
            cursor = IndexCursor::new(config.index_interval_bytes);
        }
        let recovered_end = segments.last().map_or(0, |s| s.next_offset());
        // Offsets [log start, durable watermark) were acknowledged and not deleted: they
        // must all be here. (Durable data below the log start may be gone for good.)
        if recovered_end < checkpoint.durable_offset
            && checkpoint.log_start_offset < checkpoint.durable_offset
        {
            return Err(Error::DurableDataMissing {
                durable_offset: checkpoint.durable_offset,
                recovered_end,
                dir,
            });
        }
        if checkpoint.log_start_offset > recovered_end {
            // Truncated past data that a crash then took: everything left is below
            // the log start. Start over at the log start so offsets never go back.
            for segment in segments.drain(..) {
                recovery::remove_segment_files(vfs.as_ref(), &dir, segment.base_offset)?;
            }
            let base = checkpoint.log_start_offset;
            let segment = Self::create_segment(&dir, &config, &options, base, 0)?;
            segments.push(Arc::new(segment));
            cursor = IndexCursor::new(config.index_interval_bytes);
        }
        let active = segments.last().cloned().ok_or(Error::Closed)?;
        let next_offset = active.next_offset();
        let log_start_offset = checkpoint
            .log_start_offset
            .max(segments[0].base_offset)
            .min(next_offset);

        // The marker vouches for the state at close only: it must be gone, durably,
        // before the first append changes that state.
        if marker_path.exists() {
            vfs.remove(&marker_path)
                .map_err(|e| Error::io("removing clean-shutdown marker", &marker_path, e))?;
        }
        vfs.sync_dir(&dir)
            .map_err(|e| Error::io("syncing directory", &dir, e))?;

        let durable = Arc::new(Durable::new(
            dir.clone(),
            vfs.clone(),
            options.clock.clone(),
            checkpoint_file,
            checkpoint,
            next_offset,
        ));
        // Everything recovered is now on disk (recovery synced the active segment);
        // say so in the checkpoint, together with the log start.
        durable.set_log_start(log_start_offset)?;

        let allocated_bytes = active
            .file
            .file()
            .metadata()
            .map_err(|e| Error::io("reading segment size", &active.path, e))?
            .len();
        let zero = Arc::new(ZeroAhead::new(
            config.durability == Durability::Always,
            active.clone(),
            active.end_position(),
            allocated_bytes,
        ));
        let shared = Arc::new(Shared {
            dir,
            segments: RwLock::new(Arc::new(segments)),
            log_start_offset: AtomicU64::new(log_start_offset),
            next_offset: AtomicU64::new(next_offset),
            durable,
        });
        let syncer = match config.durability {
            Durability::Os => None,
            durability => {
                let durable = shared.durable.clone();
                let zero = zero.clone();
                let handle = std::thread::Builder::new()
                    .name("log-syncer".into())
                    .spawn(move || durable.run_syncer(durability, &zero))
                    .map_err(|e| Error::io("starting syncer thread", &shared.dir, e))?;
                Some(handle)
            }
        };
        if !recovered.report.clean {
            tracing::info!(dir = %shared.dir.display(), report = ?recovered.report, "log recovered after unclean shutdown");
        }
        Ok(Log {
            shared,
            config,
            options,
            active,
            allocated_bytes,
            zero,
            cursor,
            syncer,
            report: recovered.report,
        })
    }

    fn create_segment(
        dir: &Path,
        config: &LogConfig,
        options: &LogOptions,
        base: u64,
        min_capacity: u64,
    ) -> Result<Segment> {
        let capacity = config
            .segment_bytes
            .max(min_capacity + SEGMENT_HEADER_BYTES);
        Segment::create(
            options.vfs.as_ref(),
            dir,
            base,
            options.clock.now_ms(),
            capacity,
            config.preallocate_bytes,
            config.index_interval_bytes,
        )
    }

    /// What opening the log found.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// A handle for reading from other threads.
    pub fn reader(&self) -> LogReader {
        LogReader {
            shared: self.shared.clone(),
        }
    }

    /// The configuration the log runs with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Appends one batch. The batch is validated (header, CRC, every record) and stored
    /// byte for byte, except that the log's offset goes into its `base_offset` field
    /// (written from a separate 8-byte buffer with one vectored write, so the caller's
    /// bytes are never copied or modified). On return it is visible to readers; it is durable once [`durable_offset`](LogReader::durable_offset)
    /// reaches `next_offset` (see [`wait_durable`](Self::wait_durable)).
    ///
    /// A full disk gives [`Error::NoSpace`] with nothing written; any other write error
    /// fails the log.
    pub fn append(&mut self, batch: &[u8]) -> Result<AppendInfo> {
        let mut appended = None;
        self.append_chunk(&[batch], &mut |info| appended = Some(info))?;
        // append_chunk stores at least its first batch or returns an error.
        appended.ok_or(Error::Closed)
    }

    /// Appends `batches` back to back, exactly as one [`append`](Self::append) per
    /// batch would, but with one vectored write per segment they land in (at most
    /// [`MAX_BATCHES_PER_WRITE`] batches each) and one wake of the syncer: a pipelined
    /// burst costs one system call and shares one `fdatasync`.
    ///
    /// `on_appended` sees each stored batch in order. On an error, the batches it saw
    /// are stored and the others are not; the error belongs to the first batch it did
    /// not see, so a caller can report it and go on with the batches after that one.
    pub fn append_all<B: AsRef<[u8]>>(
        &mut self,
        batches: &[B],
        mut on_appended: impl FnMut(AppendInfo),
    ) -> Result<()> {
        let mut rest = batches;
        while !rest.is_empty() {
            let stored = self.append_chunk(rest, &mut on_appended)?;
            rest = &rest[stored..];
        }
        Ok(())
    }

    /// Checks one batch before it is written: size, header, CRC, every record.
    fn check_batch(&self, batch: &[u8]) -> Result<BatchHeader> {
        if batch.len() > self.config.max_batch_bytes {
            return Err(Error::BatchTooLarge {
                len: batch.len(),
                max: self.config.max_batch_bytes,
            });
        }
        let view = BatchView::new(batch)?;
        view.validate()?;
        Ok(*view.header())
    }

    /// Writes the longest prefix of `batches` that is valid and fits the active segment
    /// (rolling first if the first batch does not) with one vectored write. Returns how
    /// many batches it stored: at least one, or an error for the first.
    fn append_chunk<B: AsRef<[u8]>>(
        &mut self,
        batches: &[B],
        on_appended: &mut dyn FnMut(AppendInfo),
    ) -> Result<usize> {
        self.shared.durable.check_failed()?;
        let Some((first, others)) = batches.split_first() else {
            return Ok(0);
        };
        let first = first.as_ref();
        let first_header = self.check_batch(first)?;
        self.maybe_roll(first.len() as u64, first_header.record_count)?;

        let segment = self.active.clone();
        let base_offset = self.shared.next_offset.load(Ordering::Relaxed);
        debug_assert_eq!(base_offset, segment.next_offset());
        let position = segment.end_position();
        // Later batches join only if they fit without a roll; the rest go in the next
        // chunk. (A first batch larger than `segment_bytes` got a segment of its own.)
        let limit = self.config.segment_bytes.min(segment.capacity());
        let mut headers = vec![first_header];
        let mut end = position + first.len() as u64;
        let mut records = u64::from(first_header.record_count);
        for batch in others.iter().take(MAX_BATCHES_PER_WRITE - 1) {
            let batch = batch.as_ref();
            let Ok(header) = self.check_batch(batch) else {
                break; // It gets its own error as the first batch of the next chunk.
            };
            let fits = end + batch.len() as u64 <= limit;
            let relative_fits =
                base_offset - segment.base_offset + records + u64::from(header.record_count)
                    <= u64::from(u32::MAX);
            if !fits || !relative_fits {
                break;
            }
            headers.push(header);
            end += batch.len() as u64;
            records += u64::from(header.record_count);
        }
        let batches = &batches[..headers.len()];
        self.reserve(end)?;
        if !self.zero.is_ready(end) {
            self.zero.claim(end, self.allocated_bytes);
        }

        // Each batch goes out as its log offset (from `bases`) and its own bytes after
        // the base-offset field, never copied.
        let mut bases = Vec::with_capacity(batches.len());
        let mut next = base_offset;
        for header in &headers {
            bases.push(next.to_le_bytes());
            next += u64::from(header.record_count);
        }
        let mut bufs: Vec<&[u8]> = Vec::with_capacity(2 * batches.len());
        for (base, batch) in bases.iter().zip(batches) {
            bufs.push(base);
            bufs.push(&batch.as_ref()[base.len()..]);
        }
        let written = segment
            .file
            .write_vectored_all_at(&bufs, position)
            .map_err(|e| Error::io("appending to", &segment.path, e));
        if let Err(error) = written {
            if !matches!(error, Error::NoSpace { .. }) {
                self.shared.durable.fail(&error);
            }
            return Err(error);
        }

        let mut at = position;
        let mut next = base_offset;
        let mut max_timestamp_ms = i64::MIN;
        for (header, batch) in headers.iter().zip(batches) {
            let relative = u32::try_from(next - segment.base_offset).unwrap_or(u32::MAX);
            let len = batch.as_ref().len() as u32;
            let update = self
                .cursor
                .on_batch(relative, at as u32, len, header.max_timestamp_ms);
            let indexed = segment.push_index(&update);
            self.shared.durable.fail_on_error(indexed)?;
            at += u64::from(len);
            next += u64::from(header.record_count);
            max_timestamp_ms = max_timestamp_ms.max(header.max_timestamp_ms);
        }
        segment.publish(end, next, max_timestamp_ms);
        self.zero.note_appended(end - position);
        self.shared.next_offset.store(next, Ordering::Release);
        self.shared.durable.note_append(
            next,
            &segment.file,
            self.config.durability == Durability::Always,
        );
        // Only now, with all of them stored and published, report them.
        let (mut at, mut next) = (position, base_offset);
        for (header, batch) in headers.iter().zip(batches) {
            let next_offset = next + u64::from(header.record_count);
            on_appended(AppendInfo {
                base_offset: next,
                next_offset,
                segment_base_offset: segment.base_offset,
                position: at,
            });
            at += batch.as_ref().len() as u64;
            next = next_offset;
        }
        Ok(batches.len())
    }

    /// Reserves disk space up to `needed` bytes of the active segment.
    fn reserve(&mut self, needed: u64) -> Result<()> {
        if needed <= self.allocated_bytes {
            return Ok(());
        }
        let target = (self.allocated_bytes + self.config.preallocate_bytes)
            .max(needed)
            .min(self.active.capacity());
        self.active
            .file
            .allocate(target)
            .map_err(|e| Error::io("reserving space in", &self.active.path, e))?;
        self.allocated_bytes = target;
        Ok(())
    }

    fn maybe_roll(&mut self, batch_len: u64, record_count: u32) -> Result<()> {
        let segment = &self.active;
        let end = segment.end_position();
        if end == SEGMENT_HEADER_BYTES {
            if end + batch_len <= segment.capacity() {
                return Ok(());
            }
            // An empty segment too small for this batch: a batch larger than
            // segment_bytes. Replace it with one big enough.
            return self.roll(batch_len);
        }
        let full = end + batch_len > self.config.segment_bytes.min(segment.capacity());
        let aged = self.config.segment_ms.is_some_and(|ms| {
            self.options
                .clock
                .now_ms()
                .saturating_sub(segment.created_ms)
                >= ms as i64
        });
        let relative_full = segment.next_offset() - segment.base_offset + u64::from(record_count)
            > u64::from(u32::MAX);
        if full || aged || relative_full {
            self.roll(batch_len)?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the current end offset.
    fn roll(&mut self, min_capacity: u64) -> Result<()> {
        // No zeroing into a segment being sealed (and truncated).
        self.zero.detach();
        let durable = self.shared.durable.clone();
        let old = self.active.clone();
        let base = self.shared.next_offset.load(Ordering::Relaxed);
        let mut segments: Vec<Arc<Segment>> = self.shared.segments().as_ref().clone();
        if old.end_position() == SEGMENT_HEADER_BYTES {
            // Nothing in it: drop it instead of sealing an empty segment.
            segments.pop();
            self.shared.set_segments(segments.clone());
            let removed = recovery::remove_segment_files(
                self.options.vfs.as_ref(),
                &self.shared.dir,
                old.base_offset,
            );
            durable.fail_on_error(removed)?;
        } else {
            let sealed = old.seal(&mut self.cursor);
            durable.fail_on_error(sealed)?;
            // The sealed segment's name must be durable before a newer segment can
            // exist: recovery trusts every segment but the last without a scan.
            let dir = &self.shared.dir;
            let synced = self
                .options
                .vfs
                .sync_dir(dir)
                .map_err(|e| Error::io("syncing directory", dir, e));
            durable.fail_on_error(synced)?;
        }
        let created = Self::create_segment(
            &self.shared.dir,
            &self.config,
            &self.options,
            base,
            min_capacity,
        );
        let segment = match created {
            Ok(segment) => Arc::new(segment),
            Err(error) => {
                // Typically ENOSPC. Nothing was acknowledged in the new file: remove what
                // was made of it and keep appending to the old segment until a roll
                // succeeds. The old one is sealed on disk, which is still a valid state.
                let vfs = self.options.vfs.as_ref();
                let _ = recovery::remove_segment_files(vfs, &self.shared.dir, base);
                self.allocated_bytes = self.active.end_position();
                let end = self.active.end_position();
                self.zero.attach(self.active.clone(), end, end);
                if old.end_position() == SEGMENT_HEADER_BYTES {
                    // The empty old segment was removed above: a log must have one.
                    durable.fail(&error);
                }
                return Err(error);
            }
        };
        durable.note_dir_change(Some(&segment.file));
        segments.push(segment.clone());
        self.shared.set_segments(segments);
        self.allocated_bytes = segment
            .file
            .file()
            .metadata()
            .map_err(|e| Error::io("reading segment size", &segment.path, e))?
            .len();
        self.zero.attach(
            segment.clone(),
            segment.end_position(),
            self.allocated_bytes,
        );
        self.active = segment;
        self.cursor = IndexCursor::new(self.config.index_interval_bytes);
        Ok(())
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
        self.shared.durable.sync_now(true)
    }

    /// Blocks until `offset` is durable (`Ok(true)`) or `timeout` passes (`Ok(false)`).
    /// Fails if the log has failed. With [`Durability::Os`] only [`sync`](Self::sync)
    /// moves the watermark.
    pub fn wait_durable(&self, offset: u64, timeout: Duration) -> Result<bool> {
        self.shared.durable.wait_durable(offset, timeout)
    }

    /// Deletes whole sealed segments beyond the configured size and age retention,
    /// oldest first. The active segment is never deleted.
    pub fn enforce_retention(&mut self) -> Result<RetentionOutcome> {
        let segments = self.shared.segments();
        let sealed = &segments[..segments.len() - 1];
        let mut total: u64 = segments.iter().map(|s| s.data_bytes()).sum();
        let now_ms = self.options.clock.now_ms();
        let mut delete = 0;
        for segment in sealed {
            let over_size = self.config.retention_bytes.is_some_and(|max| total > max);
            let too_old = self.config.retention_ms.is_some_and(|ms| {
                segment
                    .max_timestamp_ms()
                    .is_some_and(|ts| ts < now_ms.saturating_sub(ms as i64))
            });
            if !(over_size || too_old) {
                break;
            }
            total -= segment.data_bytes();
            delete += 1;
        }
        if delete == 0 {
            return Ok(RetentionOutcome::default());
        }
        let new_start = segments[delete].base_offset;
        self.delete_prefix(
            delete,
            new_start.max(self.shared.log_start_offset.load(Ordering::Acquire)),
        )
    }

    /// Makes `offset` the first offset of the log: reads below it fail from now on and
    /// sealed segments wholly below it are deleted. For compaction and DLQ purges.
    /// Offsets beyond the end are clamped to the end.
    pub fn truncate_before(&mut self, offset: u64) -> Result<RetentionOutcome> {
        let offset = offset.min(self.shared.next_offset.load(Ordering::Acquire));
        if offset <= self.shared.log_start_offset.load(Ordering::Acquire) {
            return Ok(RetentionOutcome::default());
        }
        let segments = self.shared.segments();
        let delete = segments[..segments.len() - 1]
            .iter()
            .take_while(|s| s.next_offset() <= offset)
            .count();
        self.delete_prefix(delete, offset)
    }

    fn delete_prefix(&mut self, count: usize, new_start: u64) -> Result<RetentionOutcome> {
        // Persist the new start first: a crash after this point finishes the removal
        // at open instead of resurrecting the data.
        self.shared.durable.set_log_start(new_start)?;
        self.shared
            .log_start_offset
            .store(new_start, Ordering::Release);
        let segments = self.shared.segments();
        let (gone, kept) = segments.split_at(count);
        self.shared.set_segments(kept.to_vec());
        let mut outcome = RetentionOutcome::default();
        for segment in gone {
            // Readers holding the segment keep its map; unlinking does not disturb them.
            recovery::remove_segment_files(
                self.options.vfs.as_ref(),
                &self.shared.dir,
                segment.base_offset,
            )?;
            outcome.deleted_segments.push(segment.base_offset);
            outcome.deleted_bytes += segment.data_bytes();
        }
        if !gone.is_empty() {
            self.shared.durable.note_dir_change(None);
        }
        Ok(outcome)
    }

    /// Syncs everything, writes the clean-shutdown marker and closes. The next open
    /// trusts the marker and scans nothing.
    pub fn close(mut self) -> Result<()> {
        self.stop_syncer();
        self.shared.durable.check_failed()?;
        let durable = self.shared.durable.clone();
        let sealed = self.active.seal(&mut self.cursor);
        durable.fail_on_error(sealed)?;
        durable.sync_now(true)?;
        let marker = CleanMarker {
            active_base_offset: self.active.base_offset,
            active_end_position: self.active.end_position(),
            next_offset: self.active.next_offset(),
        };
        let dir = &self.shared.dir;
        let path = dir.join(format::CLEAN_MARKER_FILE);
        let vfs = self.options.vfs.clone();
        let io = |op, e| Error::io(op, &path, e);
        if path.exists() {
            vfs.remove(&path)
                .map_err(|e| io("removing old marker", e))?;
        }
        let file: Arc<dyn VfsFile> = vfs.create(&path).map_err(|e| io("creating marker", e))?;
        file.write_all_at(&marker.encode(), 0)
            .map_err(|e| io("writing marker", e))?;
        file.sync_data().map_err(|e| io("syncing marker", e))?;
        vfs.sync_dir(dir)
            .map_err(|e| Error::io("syncing directory", dir, e))?;
        Ok(())
    }

    fn stop_syncer(&mut self) {
        self.shared.durable.stop();
        if let Some(handle) = self.syncer.take() {
            let _ = handle.join();
        }
    }

    /// Total batch bytes held.
    pub fn size_bytes(&self) -> u64 {
        self.reader().size_bytes()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.shared.segments().len()
    }
}

impl Drop for Log {
    /// Dropping without [`close`](Log::close) is a crash as far as the disk is
    /// concerned: no marker is written and the next open recovers.
    fn drop(&mut self) {
        self.stop_syncer();
    }
}

impl LogReader {
    /// First offset held.
    pub fn start_offset(&self) -> u64 {
        self.shared.log_start_offset.load(Ordering::Acquire)
    }

    /// Offset the next append will get (one past the last record).
    pub fn end_offset(&self) -> u64 {
        self.shared.next_offset.load(Ordering::Acquire)
    }

    /// Every offset below this is on stable storage.
    pub fn durable_offset(&self) -> u64 {
        self.shared.durable.durable_offset()
    }

    /// Why the log failed, if it has: it then refuses appends until reopened.
    pub fn failure(&self) -> Option<String> {
        self.shared
            .durable
            .check_failed()
            .err()
            .map(|e| e.to_string())
    }

    /// A receiver that sees every move of the durable watermark, for async code.
    pub fn durable_watch(&self) -> watch::Receiver<DurableMark> {
        self.shared.durable.watch()
    }

    /// Blocks until `offset` is durable (`Ok(true)`) or `timeout` passes (`Ok(false)`).
    pub fn wait_durable(&self, offset: u64, timeout: Duration) -> Result<bool> {
        self.shared.durable.wait_durable(offset, timeout)
    }

    /// Total batch bytes held.
    pub fn size_bytes(&self) -> u64 {
        self.shared.segments().iter().map(|s| s.data_bytes()).sum()
    }

    /// Reads whole batches, zero-copy, starting with the batch that contains
    /// `from_offset`, up to about `max_bytes` (always at least one batch, so a reader
    /// makes progress whatever the batch size). Reading at the end offset gives an
    /// empty chunk; outside `start_offset..=end_offset` gives
    /// [`Error::OffsetOutOfRange`]. A batch that fails its CRC is never returned: it
    /// is reported as [`Error::Corrupt`] naming the file and position.
    pub fn read(&self, from_offset: u64, max_bytes: usize) -> Result<ReadChunk> {
        self.read_until(from_offset, max_bytes, u64::MAX)
    }

    /// Like [`read`](Self::read), but only batches that are durable.
    pub fn read_durable(&self, from_offset: u64, max_bytes: usize) -> Result<ReadChunk> {
        let durable = self.durable_offset();
        let mut chunk = self.read_until(from_offset, max_bytes, durable)?;
        if chunk.next_offset > durable {
            // The batch containing `durable - 1` ends at `durable`, since the
            // watermark only ever lands on batch boundaries.
            chunk = ReadChunk::empty(from_offset);
        }
        Ok(chunk)
    }

    /// Like [`read`](Self::read), stopping before any batch whose base offset is at or
    /// above `until_offset`.
    pub fn read_until(
        &self,
        from_offset: u64,
        max_bytes: usize,
        until_offset: u64,
    ) -> Result<ReadChunk> {
        let segments = self.shared.segments();
        let start = self.start_offset();
        let end = self.end_offset();
        if from_offset < start || from_offset > end {
            return Err(Error::OffsetOutOfRange {
                requested: from_offset,
                start,
                end,
            });
        }
        let first = segments
            .partition_point(|s| s.base_offset <= from_offset)
            .saturating_sub(1);
        for segment in &segments[first..] {
            if segment.next_offset() <= from_offset {
                continue;
            }
            return segment.read(from_offset, max_bytes, until_offset);
        }
        Ok(ReadChunk::empty(from_offset))
    }

    /// The first offset whose record timestamp is at or after `timestamp_ms`, or `None`
    /// if every record is older.
    pub fn offset_for_time(&self, timestamp_ms: i64) -> Result<Option<u64>> {
        let start = self.start_offset();
        for segment in self.shared.segments().iter() {
            if segment.next_offset() <= start
                || segment
                    .max_timestamp_ms()
                    .is_none_or(|max| max < timestamp_ms)
            {
                continue;
            }
            if let Some(offset) = segment.offset_for_time(timestamp_ms, start)? {
                return Ok(Some(offset));
            }
        }
        Ok(None)
    }
}
