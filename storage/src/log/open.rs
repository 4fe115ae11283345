//! Opening and closing: the two ends of a log's life, and the only places that read
//! and write the clean-shutdown marker.
//!
//! Opening reads the checkpoint (durable watermark and log start) and the marker, lets
//! `recovery` decide what on disk can be trusted, then settles where the log starts
//! and ends: offsets never go back, and data the checkpoint says was durable must be
//! there or the open fails. Only then is the marker removed (durably: it describes the
//! files as they were at close, not after the first append) and the log handed to the
//! durability workers.
//! Closing syncs everything and writes the marker, so that the next open scans nothing.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::{Clock, Durability, LogConfig, SystemClock};
use crate::error::{Error, Result};
use crate::format::{self, Checkpoint, CleanMarker};
use crate::handles::IndexHandles;
use crate::index::FileAccess;
use crate::maps::MappedSegments;
use crate::producers::ProducerJournal;
use crate::recovery::{self, Recovered};
use crate::segment::IndexCursor;
use crate::sync::{Durable, Schedule, SyncObserver};
use crate::vfs::{RealVfs, Vfs, VfsFile};
use crate::workers::SyncWorkers;
use crate::zero::ZeroAhead;

use super::{allocated_len, Log, Shared};

/// Dependencies a log can be opened with; the defaults are the real file system and
/// the wall clock.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The file-system seam (a fault-injecting one in tests).
    pub vfs: Arc<dyn Vfs>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// Told about every group commit (the broker's metrics); none by default.
    pub sync_observer: Option<Arc<dyn SyncObserver>>,
    /// The durability workers that group-commit this log; `None`, the default, is the
    /// process-wide pool ([`SyncWorkers::shared`]). A broker passes its own to every
    /// log, so that its thread count is set by configuration, not by its partitions.
    pub sync_workers: Option<SyncWorkers>,
    /// The budget of index write handles this log borrows from; `None`, the default,
    /// is the process-wide one ([`IndexHandles::shared`]). A broker passes its own,
    /// sized to its descriptor limit.
    pub index_handles: Option<IndexHandles>,
    /// The budget of mapped sealed segments this log's segments count against;
    /// `None`, the default, is the process-wide one ([`MappedSegments::shared`]).
    pub mapped_segments: Option<MappedSegments>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            vfs: Arc::new(RealVfs),
            clock: Arc::new(SystemClock),
            sync_observer: None,
            sync_workers: None,
            index_handles: None,
            mapped_segments: None,
        }
    }
}

impl LogOptions {
    /// How the writer's indexes are opened: this log's file system and handle budget.
    pub(crate) fn index_access(&self) -> FileAccess {
        FileAccess {
            mapped: self
                .mapped_segments
                .clone()
                .unwrap_or_else(MappedSegments::shared),
            vfs: self.vfs.clone(),
            handles: Some(
                self.index_handles
                    .clone()
                    .unwrap_or_else(IndexHandles::shared),
            ),
        }
    }
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
        let checkpoint = read_checkpoint(&dir)?;
        create_checkpoint_file(vfs.as_ref(), &dir)?;
        let marker_path = dir.join(format::CLEAN_MARKER_FILE);
        let marker = match std::fs::read(&marker_path) {
            Ok(bytes) => CleanMarker::decode(&bytes),
            Err(_) => None,
        };
        let recovered = Self::recover_segments(&dir, &config, &options, &checkpoint, marker)?;
        let (segments, cursor) = (recovered.segments, recovered.active_cursor);
        let active = segments.last().cloned().ok_or(Error::Closed)?;
        let active_file = recovered.active_file.ok_or(Error::Closed)?;
        let active_maps = active.maps()?;
        let next_offset = active.next_offset();
        let log_start_offset = checkpoint
            .log_start_offset
            .max(segments[0].base_offset)
            .min(next_offset);
        // Offsets only move forward, across crashes too (recover_segments restarts the
        // log at its start rather than let the end fall below it).
        assert!(
            log_start_offset >= checkpoint.log_start_offset,
            "recovery never moves the log start back"
        );

        // The marker vouches for the state at close only: it must be gone, durably,
        // before the first append changes that state.
        if marker_path.exists() {
            vfs.remove(&marker_path)
                .map_err(|e| Error::io("removing clean-shutdown marker", &marker_path, e))?;
        }
        vfs.sync_dir(&dir)
            .map_err(|e| Error::io("syncing directory", &dir, e))?;

        let allocated_bytes = allocated_len(active_file.as_ref(), &active.path)?;
        let zero = Arc::new(ZeroAhead::new(
            config.durability == Durability::Always,
            active.clone(),
            active_file.clone(),
            active.end_position(),
            allocated_bytes,
        ));
        let checkpoint_says_so = checkpoint.durable_offset == next_offset
            && checkpoint.log_start_offset == log_start_offset;
        let durable = Arc::new(Durable::new(
            dir.clone(),
            vfs.clone(),
            checkpoint,
            next_offset,
            options.sync_observer.clone(),
            schedule(config.durability, &options, &zero)?,
        ));
        // Everything recovered is now on disk (recovery synced the active segment);
        // say so in the checkpoint, together with the log start, unless it says so
        // already (after a clean close, or a crash with nothing unsynced): one
        // `fdatasync` fewer per partition at startup, where thousands add up.
        if !checkpoint_says_so {
            durable.set_log_start(log_start_offset)?;
        }
        active.reserve_indexes(&active_maps, allocated_bytes)?;
        let shared = Arc::new(Shared {
            dir,
            segments: RwLock::new(Arc::new(segments)),
            log_start_offset: AtomicU64::new(log_start_offset),
            next_offset: AtomicU64::new(next_offset),
            durable,
        });
        let (producers, recovered_producers) =
            ProducerJournal::open(vfs.clone(), &shared.dir, next_offset)?;
        // No zeroing is queued at open: a log's first round offers it (`sync.rs`), so
        // a partition that is never written costs no write either.
        let report = recovered.report;
        // Only when there was something to recover: every new log opens without a
        // marker, and saying "recovered" for each would teach operators to ignore it.
        if !report.clean && report.recovered_anything() {
            tracing::info!(dir = %shared.dir.display(), report = ?report, "log recovered after unclean shutdown");
        }
        let ages = super::Ages::new(options.clock.as_ref());
        Ok(Log {
            shared,
            config,
            options,
            active,
            active_file,
            active_maps,
            allocated_bytes,
            zero,
            cursor,
            report,
            ages,
            producers,
            recovered_producers,
        })
    }

    /// Recovers the segments in `dir` (see `recovery.rs`), then makes them agree with
    /// the checkpoint. A log with no segment gets one at the log start. Offsets
    /// `[log start, durable watermark)` were acknowledged and not deleted, so they must
    /// all be there, or the open fails (durable data below the log start may be gone
    /// for good). If the log start is past everything recovered, the log starts over,
    /// empty, at the log start.
    fn recover_segments(
        dir: &Path,
        config: &LogConfig,
        options: &LogOptions,
        checkpoint: &Checkpoint,
        marker: Option<CleanMarker>,
    ) -> Result<Recovered> {
        let vfs = options.vfs.as_ref();
        let bases = recovery::list_segments(dir)?;
        let mut recovered = recovery::recover(
            &options.index_access(),
            dir,
            config,
            bases,
            checkpoint.durable_offset,
            checkpoint.log_start_offset,
            marker,
        )?;
        let segments = &mut recovered.segments;
        if segments.is_empty() {
            let base = checkpoint.log_start_offset;
            let (segment, file) = Self::create_segment(dir, config, options, base, 0)?;
            segments.push(Arc::new(segment));
            recovered.active_file = Some(file);
            recovered.active_cursor = IndexCursor::new(config.index_interval_bytes);
        }
        let recovered_end = segments.last().map_or(0, |s| s.next_offset());
        if recovered_end < checkpoint.durable_offset
            && checkpoint.log_start_offset < checkpoint.durable_offset
        {
            return Err(Error::DurableDataMissing {
                durable_offset: checkpoint.durable_offset,
                recovered_end,
                dir: dir.to_path_buf(),
            });
        }
        if checkpoint.log_start_offset > recovered_end {
            // Truncated past data that a crash then took: everything left is below
            // the log start. Start over at the log start so offsets never go back.
            for segment in segments.drain(..) {
                recovery::remove_segment_files(vfs, dir, segment.base_offset)?;
            }
            let base = checkpoint.log_start_offset;
            let (segment, file) = Self::create_segment(dir, config, options, base, 0)?;
            segments.push(Arc::new(segment));
            recovered.active_file = Some(file);
            recovered.active_cursor = IndexCursor::new(config.index_interval_bytes);
        }
        // Whatever the files held, the checks above leave an end at or past both the
        // durable watermark and the log start: offsets never go back across a crash.
        let end = recovered.segments.last().map_or(0, |s| s.next_offset());
        assert!(
            end >= checkpoint.durable_offset,
            "recovery never moves the durable watermark back"
        );
        assert!(
            end >= checkpoint.log_start_offset,
            "recovery never moves the end below the log start"
        );
        Ok(recovered)
    }

    /// Syncs everything, writes the clean-shutdown marker and closes. The next open
    /// trusts the marker and scans nothing.
    pub fn close(mut self) -> Result<()> {
        self.stop_syncer();
        self.shared.durable.check_failed()?;
        let durable = self.shared.durable.clone();
        let sealed = self.active.seal(
            self.active_file.as_ref(),
            &self.active_maps,
            &mut self.cursor,
        );
        durable.fail_on_error(sealed)?;
        durable.sync_now()?;
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
}

/// The persisted durable watermark and log start; zeros for a new log, or when neither
/// slot is valid.
fn read_checkpoint(dir: &Path) -> Result<Checkpoint> {
    let path = dir.join(format::CHECKPOINT_FILE);
    let checkpoint = match std::fs::read(&path) {
        Ok(bytes) => Checkpoint::decode_file(&bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("reading checkpoint", &path, e)),
    };
    Ok(checkpoint.unwrap_or(Checkpoint {
        sequence: 0,
        durable_offset: 0,
        log_start_offset: 0,
    }))
}

/// Creates the checkpoint file with its two slots if it is missing (each write opens
/// it: `sync.rs`).
fn create_checkpoint_file(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    let path = dir.join(format::CHECKPOINT_FILE);
    if path.exists() {
        return Ok(());
    }
    let file = vfs
        .create(&path)
        .map_err(|e| Error::io("creating checkpoint", &path, e))?;
    file.set_len(2 * format::CHECKPOINT_SLOT_BYTES as u64)
        .map_err(|e| Error::io("sizing checkpoint", &path, e))
}

/// How the workers sync a log of `durability`: `None` for `os`, which they never sync.
fn schedule(
    durability: Durability,
    options: &LogOptions,
    zero: &Arc<ZeroAhead>,
) -> Result<Option<Schedule>> {
    let interval = match durability {
        Durability::Os => return Ok(None),
        Durability::Always => None,
        Durability::IntervalMs(ms) => Some(Duration::from_millis(ms)),
    };
    let workers = match &options.sync_workers {
        Some(workers) => workers.clone(),
        None => SyncWorkers::shared()?,
    };
    Ok(Some(Schedule {
        pool: workers.pool(),
        interval,
        zero: zero.clone(),
    }))
}
