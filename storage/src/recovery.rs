//! Opening a log directory: finding segments, trusting what a clean shutdown vouched
//! for, and after a crash scanning only the active segment.
//!
//! The rules, from `docs/storage.md`:
//! - Sealed segments were cut to size and synced before the next segment was created,
//!   so they are trusted without a scan. Their indexes get a cheap consistency check
//!   and are rebuilt from the data if it fails.
//! - After a clean shutdown the marker gives the active segment's end; nothing is
//!   scanned.
//! - After a crash the active segment's batches are walked and CRC-checked. The first
//!   invalid batch at or above the persisted durable watermark is a torn tail and is
//!   cut off; one below it is rot in acknowledged data and opening fails with
//!   [`Error::Corrupt`] (naming its offset and position) instead of silently dropping
//!   it. The checkpoint covers every offset ever reported durable (`sync.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::LogConfig;
use crate::error::{Error, Result};
use crate::format::{self, CleanMarker, SEGMENT_HEADER_BYTES};
use crate::index::{self, FileAccess, IndexFile, IndexKind};
use crate::segment::{self, index_capacity, IndexCursor, Maps, Segment, Walk};
use crate::vfs::{Vfs, VfsFile};

/// What opening the log found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// A clean-shutdown marker was found and trusted: nothing was scanned.
    pub clean: bool,
    /// Bytes of batches in the active segment walked after a crash (its header not
    /// counted: a segment with no batch has nothing to scan).
    pub scanned_bytes: u64,
    /// Bytes cut off the active segment past its last whole batch: a torn tail, and
    /// the space reserved ahead of appends.
    pub truncated_bytes: u64,
    /// The walk of the active segment stopped at a damaged batch (a torn write), not at
    /// the end of what was written.
    pub torn_tail: bool,
    /// Segments whose indexes were missing or damaged and were rebuilt.
    pub rebuilt_indexes: Vec<u64>,
    /// Segments removed because they lay wholly below the log start or were created
    /// but never written.
    pub removed_segments: Vec<u64>,
}

impl RecoveryReport {
    /// Whether recovery found anything to do: a segment walked, a tail cut, an index
    /// rebuilt or a segment removed. A new log, and one whose unclean shutdown left
    /// only empty segments, have nothing to recover.
    pub fn recovered_anything(&self) -> bool {
        // Cutting only the reserved space of a log with no batch is not recovery.
        self.scanned_bytes > 0
            || self.torn_tail
            || !self.rebuilt_indexes.is_empty()
            || !self.removed_segments.is_empty()
    }
}

/// The recovered shape of a log.
pub(crate) struct Recovered {
    pub(crate) segments: Vec<Arc<Segment>>,
    /// The last segment's file, for the writer (`None` with no segment).
    pub(crate) active_file: Option<Arc<dyn VfsFile>>,
    pub(crate) active_cursor: IndexCursor,
    pub(crate) report: RecoveryReport,
}

/// Lists segment base offsets in the directory, in order.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    let mut bases = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
        if let Some(base) = entry
            .file_name()
            .to_str()
            .and_then(format::parse_segment_name)
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

pub(crate) fn remove_segment_files(vfs: &dyn Vfs, dir: &Path, base: u64) -> Result<()> {
    for path in [
        format::segment_path(dir, base),
        format::offset_index_path(dir, base),
        format::time_index_path(dir, base),
    ] {
        match vfs.remove(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("removing", &path, e)),
        }
    }
    Ok(())
}

/// Opens every segment. `durable_offset` and `log_start_offset` come from the
/// checkpoint, `clean` from the marker.
pub(crate) fn recover(
    access: &FileAccess,
    dir: &Path,
    config: &LogConfig,
    mut bases: Vec<u64>,
    durable_offset: u64,
    log_start_offset: u64,
    clean: Option<CleanMarker>,
) -> Result<Recovered> {
    let vfs = &access.vfs;
    let mut report = RecoveryReport::default();
    // Segments wholly below the log start (a removal that had not reached the disk
    // before a crash) are finished off first; the last segment always stays.
    while bases.len() > 1 && bases[1] <= log_start_offset {
        remove_segment_files(vfs.as_ref(), dir, bases[0])?;
        report.removed_segments.push(bases.remove(0));
    }
    let mut segments = Vec::with_capacity(bases.len());
    let Some(&last_base) = bases.last() else {
        return Ok(Recovered {
            segments,
            active_file: None,
            active_cursor: IndexCursor::new(config.index_interval_bytes),
            report,
        });
    };
    let clean = clean.filter(|marker| marker.active_base_offset == last_base);
    report.clean = clean.is_some();
    for (i, &base) in bases.iter().enumerate() {
        let is_last = i + 1 == bases.len();
        if is_last {
            break;
        }
        let next_base = bases[i + 1];
        segments.push(Arc::new(open_sealed(
            access,
            dir,
            config,
            base,
            next_base,
            &mut report,
        )?));
    }
    let (active, active_file, cursor) = match clean {
        Some(marker) => open_active_clean(access, dir, config, last_base, marker, &mut report)?,
        None => {
            match open_active_after_crash(
                access,
                dir,
                config,
                last_base,
                durable_offset,
                &mut report,
            )? {
                Some(opened) => opened,
                None => {
                    // The newest segment was created but its header never reached the disk,
                    // so it holds nothing: remove it and carry on from the previous one.
                    remove_segment_files(vfs.as_ref(), dir, last_base)?;
                    report.removed_segments.push(last_base);
                    bases.pop();
                    let mut rest = recover(
                        access,
                        dir,
                        config,
                        bases,
                        durable_offset,
                        log_start_offset,
                        None,
                    )?;
                    rest.report.removed_segments.extend(report.removed_segments);
                    return Ok(rest);
                }
            }
        }
    };
    segments.push(Arc::new(active));
    Ok(Recovered {
        segments,
        active_file: Some(active_file),
        active_cursor: cursor,
        report,
    })
}

fn open_indexes(
    access: &FileAccess,
    dir: &Path,
    base: u64,
    capacity_entries: u32,
) -> Result<(Option<IndexFile>, Option<IndexFile>)> {
    let offset = IndexFile::open(
        access,
        &format::offset_index_path(dir, base),
        IndexKind::Offset,
        base,
        capacity_entries,
    )?;
    let time = IndexFile::open(
        access,
        &format::time_index_path(dir, base),
        IndexKind::Time,
        base,
        capacity_entries,
    )?;
    Ok((offset, time))
}

fn write_indexes(
    access: &FileAccess,
    dir: &Path,
    base: u64,
    offset_entries: &[u8],
    time_entries: &[u8],
    capacity_entries: u32,
) -> Result<(IndexFile, IndexFile)> {
    let offset = IndexFile::write_new(
        access,
        &format::offset_index_path(dir, base),
        IndexKind::Offset,
        base,
        offset_entries,
        capacity_entries,
        0, // the log reserves space for the entries to come when it opens
    )?;
    let time = IndexFile::write_new(
        access,
        &format::time_index_path(dir, base),
        IndexKind::Time,
        base,
        time_entries,
        capacity_entries,
        0,
    )?;
    Ok((offset, time))
}

/// A sealed segment must end exactly where the next one begins; anything else means a
/// segment (or the end of one) is missing.
fn check_contiguous(path: &Path, len: u64, next_offset: u64, next_base: u64) -> Result<()> {
    if next_offset == next_base {
        return Ok(());
    }
    Err(Error::Corrupt {
        path: path.to_path_buf(),
        position: len,
        reason: format!("segment ends at offset {next_offset} but the next segment starts at {next_base}: data is missing"),
    })
}

fn bad_header(path: PathBuf) -> Error {
    Error::Corrupt {
        path,
        position: 0,
        reason: "missing or damaged segment header".into(),
    }
}

/// A sealed segment: its size is its end. Indexes are checked and rebuilt if needed.
fn open_sealed(
    access: &FileAccess,
    dir: &Path,
    config: &LogConfig,
    base: u64,
    next_base: u64,
    report: &mut RecoveryReport,
) -> Result<Segment> {
    let vfs = &access.vfs;
    let path = format::segment_path(dir, base);
    // The file is closed once mapped: a sealed segment is only ever read.
    let (_, map, len, header) = Segment::open_file(vfs.as_ref(), &path, 0)?;
    let header = header
        .filter(|h| h.base_offset == base)
        .ok_or_else(|| bad_header(path.clone()))?;
    // A sealed segment's indexes are only read: they keep no descriptor either.
    let sealed = FileAccess {
        handles: None,
        ..access.clone()
    };
    let (offset_index, time_index) = open_indexes(&sealed, dir, base, 0)?;
    let max_ts = time_index
        .as_ref()
        .and_then(|t| index::last_time_entry(t.entries()))
        .map(|e| e.max_timestamp_ms);
    if let (Some(offset_index), Some(time_index)) = (offset_index, time_index) {
        let maps = Maps::new(map, offset_index, time_index);
        let segment = Segment::assemble(
            access,
            path.clone(),
            header,
            maps,
            len,
            next_base,
            max_ts,
            config.index_interval_bytes,
        );
        let maps = segment.maps()?;
        if segment.indexes_look_valid(&maps, len) {
            if let Ok(next) = segment.tail_next_offset(&maps, len) {
                check_contiguous(&path, len, next, next_base)?;
                segment.release_maps();
                return Ok(segment);
            }
        }
    }
    tracing::warn!(segment = %path.display(), "index missing or damaged; rebuilding from the segment");
    report.rebuilt_indexes.push(base);
    let (_, map, len, _) = Segment::open_file(vfs.as_ref(), &path, 0)?;
    let walk = segment::walk(&map, &path, base, len, 0, config.index_interval_bytes);
    if let Some((position, reason)) = &walk.stopped {
        // Rot inside a sealed segment: keep it readable up to the damage, report the
        // rest on read. Never delete sealed data.
        tracing::error!(segment = %path.display(), position, %reason, "damaged batch in sealed segment");
    } else {
        check_contiguous(&path, len, walk.next_offset, next_base)?;
    }
    let (offset_index, time_index) = write_indexes(
        &sealed,
        dir,
        base,
        &walk.offset_entries,
        &walk.time_entries,
        0,
    )?;
    offset_index.seal()?;
    time_index.seal()?;
    let (_, map, len, _) = Segment::open_file(vfs.as_ref(), &path, 0)?;
    let segment = Segment::assemble(
        access,
        path,
        header,
        Maps::new(map, offset_index, time_index),
        len,
        next_base,
        walk.max_timestamp_ms,
        config.index_interval_bytes,
    );
    segment.release_maps();
    Ok(segment)
}

/// The active segment as recovered, its file (for the writer) and where its index
/// cursor resumes.
type OpenedActive = (Segment, Arc<dyn VfsFile>, IndexCursor);

fn active_capacity(config: &LogConfig, len: u64) -> u64 {
    config.segment_bytes.max(len)
}

fn open_active_clean(
    access: &FileAccess,
    dir: &Path,
    config: &LogConfig,
    base: u64,
    marker: CleanMarker,
    report: &mut RecoveryReport,
) -> Result<OpenedActive> {
    let vfs = &access.vfs;
    let path = format::segment_path(dir, base);
    let (file, map, len, header) = Segment::open_file(vfs.as_ref(), &path, config.segment_bytes)?;
    let header = header
        .filter(|h| h.base_offset == base)
        .ok_or_else(|| bad_header(path.clone()))?;
    let end = marker.active_end_position;
    if end > len || end < SEGMENT_HEADER_BYTES {
        return Err(Error::Corrupt {
            path,
            position: end,
            reason: format!(
                "clean-shutdown marker says the segment ends at {end} but the file has {len} bytes"
            ),
        });
    }
    let capacity_entries =
        index_capacity(active_capacity(config, len), config.index_interval_bytes);
    let (offset_index, time_index) = open_indexes(access, dir, base, capacity_entries)?;
    if let (Some(offset_index), Some(time_index)) = (offset_index, time_index) {
        let last_time = index::last_time_entry(time_index.entries()).map(|e| e.max_timestamp_ms);
        let segment = Segment::assemble(
            access,
            path.clone(),
            header,
            Maps::new(map, offset_index, time_index),
            end,
            marker.next_offset,
            last_time,
            config.index_interval_bytes,
        );
        let maps = segment.maps()?;
        if segment.indexes_look_valid(&maps, end) {
            let cursor = IndexCursor::resume(config.index_interval_bytes, last_time, last_time);
            return Ok((segment, file, cursor));
        }
    }
    // Damaged index on a clean open: rebuild it the way a crash would, trusting data
    // up to the marker's offset.
    report.rebuilt_indexes.push(base);
    let opened = open_active_after_crash(access, dir, config, base, marker.next_offset, report)?;
    opened.ok_or_else(|| bad_header(format::segment_path(dir, base)))
}

/// Walks the active segment after a crash. `None` if its header never reached the disk.
fn open_active_after_crash(
    access: &FileAccess,
    dir: &Path,
    config: &LogConfig,
    base: u64,
    durable_offset: u64,
    report: &mut RecoveryReport,
) -> Result<Option<OpenedActive>> {
    let vfs = &access.vfs;
    let path = format::segment_path(dir, base);
    let (file, map, len, header) = Segment::open_file(vfs.as_ref(), &path, config.segment_bytes)?;
    let Some(header) = header.filter(|h| h.base_offset == base) else {
        if base < durable_offset {
            return Err(bad_header(path));
        }
        return Ok(None);
    };
    // Every batch is CRC-checked, the acknowledged ones too: a damaged batch below the
    // watermark must fail the open here, not surface later as a read error.
    let walk = segment::walk(&map, &path, base, len, base, config.index_interval_bytes);
    let reserved_only = walk
        .stopped
        .as_ref()
        .is_some_and(|(position, _)| unwritten_at(&map, *position));
    drop(map);
    report.scanned_bytes += walk.end_position.saturating_sub(SEGMENT_HEADER_BYTES);
    if let Some((position, reason)) = walk.stopped.as_ref().filter(|_| !reserved_only) {
        if walk.next_offset < durable_offset {
            return Err(Error::Corrupt {
                path,
                position: walk.end_position,
                reason: format!(
                    "the batch at offset {} is damaged ({reason}, found at byte {position}); \
                     it is below the durable watermark {durable_offset}, so it was \
                     acknowledged: this is damage, not a torn write, and nothing was cut",
                    walk.next_offset
                ),
            });
        }
        tracing::warn!(segment = %path.display(), position, offset = walk.next_offset, %reason, "cutting torn tail after a crash");
        report.torn_tail = true;
    }
    if walk.end_position < len {
        report.truncated_bytes += cut_torn_tail(file.as_ref(), &path, &walk, len, durable_offset)?;
    }
    file.sync_data()
        .map_err(|e| Error::io("syncing recovered segment", &path, e))?;
    let capacity_entries =
        index_capacity(active_capacity(config, len), config.index_interval_bytes);
    let (offset_index, time_index) = write_indexes(
        access,
        dir,
        base,
        &walk.offset_entries,
        &walk.time_entries,
        capacity_entries,
    )?;
    let (file, map, _, _) = Segment::open_file(vfs.as_ref(), &path, active_capacity(config, len))?;
    let last_time = index::last_time_entry(time_index.entries()).map(|e| e.max_timestamp_ms);
    let segment = Segment::assemble(
        access,
        path,
        header,
        Maps::new(map, offset_index, time_index),
        walk.end_position,
        walk.next_offset,
        walk.max_timestamp_ms,
        config.index_interval_bytes,
    );
    let cursor = IndexCursor::resume(
        config.index_interval_bytes,
        last_time,
        walk.max_timestamp_ms,
    );
    Ok(Some((segment, file, cursor)))
}

/// Bytes at the start of where a walk stopped that tell written data from the zeros of
/// reserved space: a batch header's base offset and length, never all zero once written.
const UNWRITTEN_PROBE_BYTES: usize = 16;

/// Whether the walk stopped at never-written space (zeros where the next batch header
/// would begin), the usual end of the active segment, rather than at a torn batch.
/// Only what is reported depends on it; the cut is the same.
fn unwritten_at(map: &[u8], position: u64) -> bool {
    let start = usize::try_from(position)
        .unwrap_or(usize::MAX)
        .min(map.len());
    let end = start.saturating_add(UNWRITTEN_PROBE_BYTES).min(map.len());
    map[start..end].iter().all(|b| *b == 0)
}

/// Cuts the active segment's file at the end of the walk: physically, so that stale
/// bytes past the new end can never be taken for batches after a later crash (space is
/// reserved again on the next append). Returns the bytes cut.
fn cut_torn_tail(
    file: &dyn VfsFile,
    path: &Path,
    walk: &Walk,
    len: u64,
    durable_offset: u64,
) -> Result<u64> {
    // Only a walk that stopped at a bad batch ends short of the file, and one that
    // stopped below the watermark has failed the open already: what is cut holds no
    // durable batch. (Damage below the watermark is reported, never cut.)
    assert!(
        walk.stopped.is_some() && walk.next_offset >= durable_offset,
        "a torn tail is cut only above the durable watermark"
    );
    file.set_len(walk.end_position)
        .map_err(|e| Error::io("truncating torn tail", path, e))?;
    Ok(len - walk.end_position)
}
