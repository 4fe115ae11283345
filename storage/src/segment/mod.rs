//! One segment: a file of batches named by its base offset, with its two indexes.
//!
//! The file is read through one read-only memory map that covers the segment's whole
//! capacity, so readers never remap while the writer appends. The writer appends with
//! `pwrite` (see `docs/storage.md` for the measurement behind that choice) and then
//! publishes the new end position with a release store; readers load it with acquire
//! and only ever look below it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Mmap, MmapOptions};
use protocol::batch::{BatchHeader, BatchView, BATCH_HEADER_BYTES};

use crate::error::{Error, Result};
use crate::format::{self, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::index::{self, IndexFile, IndexKind};
use crate::vfs::{Vfs, VfsFile};

mod index_cursor;

pub(crate) use index_cursor::{index_capacity, IndexCursor, IndexUpdate};

/// A shared read-only map, handed to `Bytes` so that slices keep it alive.
#[derive(Debug)]
struct MapOwner(Arc<Mmap>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A run of whole batches read from the log, as one zero-copy slice of a segment map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadChunk {
    /// The batches, back to back, exactly as stored.
    pub bytes: Bytes,
    /// Base offset of the first batch (may be below the offset asked for).
    pub first_offset: u64,
    /// Offset one past the last record of the last batch: where the next read starts.
    pub next_offset: u64,
    /// Number of batches in `bytes`.
    pub batch_count: u32,
}

impl ReadChunk {
    /// An empty read positioned at `offset`.
    pub fn empty(offset: u64) -> ReadChunk {
        ReadChunk {
            bytes: Bytes::new(),
            first_offset: offset,
            next_offset: offset,
            batch_count: 0,
        }
    }

    /// True if no batch was read.
    pub fn is_empty(&self) -> bool {
        self.batch_count == 0
    }
}

/// An opened segment file: the file, its map, its size, and its header if valid.
pub(crate) type OpenedFile = (Arc<dyn VfsFile>, Mmap, u64, Option<SegmentHeader>);

/// State of a segment shared by the writer and readers.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: u64,
    pub(crate) path: PathBuf,
    pub(crate) created_ms: i64,
    pub(crate) file: Arc<dyn VfsFile>,
    map: Arc<Mmap>,
    end_position: AtomicU64,
    next_offset: AtomicU64,
    max_timestamp_ms: AtomicI64,
    pub(crate) offset_index: IndexFile,
    pub(crate) time_index: IndexFile,
}

/// What a header walk over a segment found (recovery and index rebuilds).
#[derive(Debug, Default)]
pub(crate) struct Walk {
    pub(crate) end_position: u64,
    pub(crate) next_offset: u64,
    pub(crate) max_timestamp_ms: Option<i64>,
    pub(crate) offset_entries: Vec<u8>,
    pub(crate) time_entries: Vec<u8>,
    /// Where the walk stopped early, and why; `None` if it reached the end cleanly.
    pub(crate) stopped: Option<(u64, String)>,
}

impl Segment {
    /// Creates a new, empty segment file with its header, reserving `preallocate` bytes.
    pub(crate) fn create(
        vfs: &dyn Vfs,
        dir: &Path,
        base_offset: u64,
        created_ms: i64,
        capacity: u64,
        preallocate: u64,
        index_interval_bytes: u32,
    ) -> Result<Segment> {
        let path = format::segment_path(dir, base_offset);
        let file = vfs
            .create(&path)
            .map_err(|e| Error::io("creating segment", &path, e))?;
        file.allocate(preallocate.clamp(SEGMENT_HEADER_BYTES, capacity))
            .map_err(|e| Error::io("reserving segment space", &path, e))?;
        let header = SegmentHeader {
            base_offset,
            created_ms,
        }
        .encode();
        file.write_all_at(&header, 0)
            .map_err(|e| Error::io("writing segment header", &path, e))?;
        let entries = index_capacity(capacity, index_interval_bytes);
        let offset_index = IndexFile::write_new(
            vfs,
            &format::offset_index_path(dir, base_offset),
            IndexKind::Offset,
            base_offset,
            &[],
            entries,
        )?;
        let time_index = IndexFile::write_new(
            vfs,
            &format::time_index_path(dir, base_offset),
            IndexKind::Time,
            base_offset,
            &[],
            entries,
        )?;
        let map = map_file(&path, file.as_ref(), capacity)?;
        Ok(Segment {
            base_offset,
            path,
            created_ms,
            file,
            map: Arc::new(map),
            end_position: AtomicU64::new(SEGMENT_HEADER_BYTES),
            next_offset: AtomicU64::new(base_offset),
            max_timestamp_ms: AtomicI64::new(i64::MIN),
            offset_index,
            time_index,
        })
    }

    /// Opens an existing segment file and maps `capacity` bytes of it (at least its
    /// current size). Returns the segment with end position and next offset unset
    /// (the caller sets them from recovery) and the header, or `None` for the header
    /// if the file does not start with a valid one.
    pub(crate) fn open_file(vfs: &dyn Vfs, path: &Path, capacity: u64) -> Result<OpenedFile> {
        let file = vfs
            .open(path)
            .map_err(|e| Error::io("opening segment", path, e))?;
        let len = file
            .file()
            .metadata()
            .map_err(|e| Error::io("reading segment size", path, e))?
            .len();
        let capacity = capacity.max(len).max(SEGMENT_HEADER_BYTES);
        let map = map_file(path, file.as_ref(), capacity)?;
        let header = if len >= SEGMENT_HEADER_BYTES {
            SegmentHeader::decode(&map[..SEGMENT_HEADER_BYTES as usize])
        } else {
            None
        };
        Ok((file, map, len, header))
    }

    /// Assembles a segment from an opened file and its (possibly rebuilt) indexes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        path: PathBuf,
        header: SegmentHeader,
        file: Arc<dyn VfsFile>,
        map: Mmap,
        end_position: u64,
        next_offset: u64,
        max_timestamp_ms: Option<i64>,
        offset_index: IndexFile,
        time_index: IndexFile,
    ) -> Segment {
        Segment {
            base_offset: header.base_offset,
            path,
            created_ms: header.created_ms,
            file,
            map: Arc::new(map),
            end_position: AtomicU64::new(end_position),
            next_offset: AtomicU64::new(next_offset),
            max_timestamp_ms: AtomicI64::new(max_timestamp_ms.unwrap_or(i64::MIN)),
            offset_index,
            time_index,
        }
    }

    /// Logical end of the data (published).
    pub(crate) fn end_position(&self) -> u64 {
        self.end_position.load(Ordering::Acquire)
    }

    /// Offset after the last batch (published).
    pub(crate) fn next_offset(&self) -> u64 {
        self.next_offset.load(Ordering::Acquire)
    }

    /// Largest record timestamp, `None` while empty.
    pub(crate) fn max_timestamp_ms(&self) -> Option<i64> {
        let max = self.max_timestamp_ms.load(Ordering::Acquire);
        (max != i64::MIN).then_some(max)
    }

    /// Bytes of batches held.
    pub(crate) fn data_bytes(&self) -> u64 {
        self.end_position() - SEGMENT_HEADER_BYTES
    }

    /// Size of the mapped capacity.
    pub(crate) fn capacity(&self) -> u64 {
        self.map.len() as u64
    }

    /// Makes a batch written at the current end visible to readers.
    pub(crate) fn publish(&self, end_position: u64, next_offset: u64, max_timestamp_ms: i64) {
        debug_assert!(end_position > self.end_position.load(Ordering::Relaxed));
        self.max_timestamp_ms
            .fetch_max(max_timestamp_ms, Ordering::AcqRel);
        self.next_offset.store(next_offset, Ordering::Release);
        self.end_position.store(end_position, Ordering::Release);
    }

    fn header_at(&self, position: u64, end: u64) -> Result<BatchHeader> {
        header_at(&self.map, &self.path, self.base_offset, position, end)
    }

    /// Position of the batch that contains `offset` (or the first batch after it),
    /// found through the offset index and a short walk over batch headers.
    fn position_of(&self, offset: u64, end: u64) -> Result<(u64, Option<BatchHeader>)> {
        let relative = u32::try_from(offset.saturating_sub(self.base_offset)).unwrap_or(u32::MAX);
        let mut position = index::offset_floor(self.offset_index.entries(), relative)
            .map_or(SEGMENT_HEADER_BYTES, |e| u64::from(e.position))
            .max(SEGMENT_HEADER_BYTES);
        while position < end {
            let header = self.header_at(position, end)?;
            if header.next_offset() > offset {
                return Ok((position, Some(header)));
            }
            position += u64::from(header.batch_len);
        }
        Ok((position, None))
    }

    /// Reads whole batches starting with the one that contains `from_offset`: at least
    /// one batch if there is any, then more while they fit in `max_bytes`, stopping
    /// before any batch whose base offset is at or above `until_offset`. Every batch's
    /// CRC is checked; a damaged first batch is an error, a damaged later one ends the
    /// chunk early (the next read reports it).
    pub(crate) fn read(
        &self,
        from_offset: u64,
        max_bytes: usize,
        until_offset: u64,
    ) -> Result<ReadChunk> {
        let end = self.end_position();
        let (start, first) = self.position_of(from_offset, end)?;
        let Some(first) = first else {
            return Ok(ReadChunk::empty(from_offset));
        };
        let mut position = start;
        let mut header = first;
        let mut count = 0u32;
        let mut next_offset = from_offset;
        loop {
            if header.base_offset >= until_offset {
                break;
            }
            let len = u64::from(header.batch_len);
            if count > 0 && (position + len - start) as usize > max_bytes {
                break;
            }
            let bytes = &self.map[position as usize..(position + len) as usize];
            if let Err(e) = BatchView::new(bytes).and_then(|view| view.verify_crc()) {
                if count == 0 {
                    return Err(Error::Corrupt {
                        path: self.path.clone(),
                        position,
                        reason: e.to_string(),
                    });
                }
                break;
            }
            count += 1;
            next_offset = header.next_offset();
            position += len;
            if position >= end {
                break;
            }
            header = match self.header_at(position, end) {
                Ok(header) => header,
                Err(_) => break, // reported by the read that starts here
            };
        }
        if count == 0 {
            return Ok(ReadChunk::empty(from_offset));
        }
        let bytes =
            Bytes::from_owner(MapOwner(self.map.clone())).slice(start as usize..position as usize);
        Ok(ReadChunk {
            bytes,
            first_offset: first.base_offset,
            next_offset,
            batch_count: count,
        })
    }

    /// First offset at or after `from_offset` whose record timestamp is at least
    /// `timestamp_ms`, searching this segment only.
    pub(crate) fn offset_for_time(
        &self,
        timestamp_ms: i64,
        from_offset: u64,
    ) -> Result<Option<u64>> {
        let end = self.end_position();
        let mut position = index::time_floor_below(self.time_index.entries(), timestamp_ms)
            .map_or(SEGMENT_HEADER_BYTES, |e| u64::from(e.position))
            .max(SEGMENT_HEADER_BYTES);
        while position < end {
            let header = self.header_at(position, end)?;
            let len = u64::from(header.batch_len);
            if header.max_timestamp_ms >= timestamp_ms && header.next_offset() > from_offset {
                let bytes = &self.map[position as usize..(position + len) as usize];
                let corrupt = |e: protocol::batch::BatchError| Error::Corrupt {
                    path: self.path.clone(),
                    position,
                    reason: e.to_string(),
                };
                let view = BatchView::new(bytes).map_err(corrupt)?;
                view.verify_crc().map_err(corrupt)?;
                for record in view.records() {
                    let record = record.map_err(corrupt)?;
                    if record.offset >= from_offset && record.timestamp_ms >= timestamp_ms {
                        return Ok(Some(record.offset));
                    }
                }
            }
            position += len;
        }
        Ok(None)
    }

    /// Checks that the indexes are consistent with the data up to `end`: entries
    /// increase, point inside the data, and the last offset entry lands on a batch
    /// with the offset it claims. Cheap enough to run on every open.
    pub(crate) fn indexes_look_valid(&self, end: u64) -> bool {
        let mut previous: Option<format::OffsetEntry> = None;
        for entry in index::offset_entries(self.offset_index.entries()) {
            let position = u64::from(entry.position);
            if position < SEGMENT_HEADER_BYTES || position >= end {
                return false;
            }
            if previous.is_some_and(|p| {
                p.relative_offset >= entry.relative_offset || p.position >= entry.position
            }) {
                return false;
            }
            previous = Some(entry);
        }
        let last_ok = previous.is_none_or(|entry| {
            self.header_at(u64::from(entry.position), end)
                .is_ok_and(|h| h.base_offset == self.base_offset + u64::from(entry.relative_offset))
        });
        let mut previous_time: Option<format::TimeEntry> = None;
        for entry in index::time_entries(self.time_index.entries()) {
            let position = u64::from(entry.position);
            if position < SEGMENT_HEADER_BYTES || position >= end {
                return false;
            }
            if previous_time.is_some_and(|p| {
                p.max_timestamp_ms >= entry.max_timestamp_ms || p.position > entry.position
            }) {
                return false;
            }
            previous_time = Some(entry);
        }
        last_ok && (end == SEGMENT_HEADER_BYTES || self.offset_index.len() > 0)
    }

    /// The offset after the last batch below `end`, found by walking headers from the
    /// last offset-index entry. Fails if a header on the way is damaged.
    pub(crate) fn tail_next_offset(&self, end: u64) -> Result<u64> {
        let mut position = index::offset_entries(self.offset_index.entries())
            .last()
            .map_or(SEGMENT_HEADER_BYTES, |e| u64::from(e.position));
        let mut next = self.base_offset;
        while position < end {
            let header = self.header_at(position, end)?;
            next = header.next_offset();
            position += u64::from(header.batch_len);
        }
        Ok(next)
    }

    /// Writes index entries for a batch just appended.
    pub(crate) fn push_index(&self, update: &IndexUpdate) -> Result<()> {
        if let Some(entry) = update.offset {
            self.offset_index.push(&entry.encode())?;
        }
        if let Some(entry) = update.time {
            self.time_index.push(&entry.encode())?;
        }
        Ok(())
    }

    /// Makes the segment immutable on disk: closing time entry, indexes and data cut
    /// to size and synced.
    pub(crate) fn seal(&self, cursor: &mut IndexCursor) -> Result<()> {
        if let Some(entry) = cursor.final_time_entry() {
            self.time_index.push(&entry.encode())?;
        }
        self.offset_index.seal()?;
        self.time_index.seal()?;
        let end = self.end_position();
        self.file
            .set_len(end)
            .map_err(|e| Error::io("truncating segment", &self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| Error::io("syncing segment", &self.path, e))
    }
}

/// Reads the batch header at `position` of a segment's bytes, checking that the whole
/// batch lies below `end`.
fn header_at(
    map: &[u8],
    path: &Path,
    base_offset: u64,
    position: u64,
    end: u64,
) -> Result<BatchHeader> {
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        position,
        reason,
    };
    if position + BATCH_HEADER_BYTES as u64 > end {
        return Err(corrupt(
            "batch header runs past the end of the segment".into(),
        ));
    }
    let header = BatchHeader::parse(&map[position as usize..end as usize])
        .map_err(|e| corrupt(format!("bad batch header: {e}")))?;
    if position + u64::from(header.batch_len) > end {
        return Err(corrupt("batch runs past the end of the segment".into()));
    }
    if header.base_offset < base_offset {
        return Err(corrupt(format!(
            "batch offset {} below segment base {base_offset}",
            header.base_offset
        )));
    }
    Ok(header)
}

/// Walks the batch headers of a segment's bytes from the first batch up to `limit`,
/// checking that offsets are contiguous from `base_offset`; batches that reach
/// `crc_from_offset` or beyond also get their CRC checked. Stops at the first batch that
/// fails, recording where and why, and returns the index entries the walk implies.
pub(crate) fn walk(
    map: &[u8],
    path: &Path,
    base_offset: u64,
    limit: u64,
    crc_from_offset: u64,
    index_interval_bytes: u32,
) -> Walk {
    let limit = limit.min(map.len() as u64);
    let mut walk = Walk {
        end_position: SEGMENT_HEADER_BYTES,
        next_offset: base_offset,
        ..Walk::default()
    };
    let mut cursor = IndexCursor::new(index_interval_bytes);
    let mut position = SEGMENT_HEADER_BYTES;
    while position < limit {
        let header = match header_at(map, path, base_offset, position, limit) {
            Ok(header) => header,
            Err(e) => {
                walk.stopped = Some((position, e.to_string()));
                break;
            }
        };
        if header.base_offset != walk.next_offset {
            let reason = format!(
                "batch offset {} where {} was expected",
                header.base_offset, walk.next_offset
            );
            walk.stopped = Some((position, reason));
            break;
        }
        let len = u64::from(header.batch_len);
        if header.next_offset() > crc_from_offset {
            let bytes = &map[position as usize..(position + len) as usize];
            if let Err(e) = BatchView::new(bytes).and_then(|view| view.verify_crc()) {
                walk.stopped = Some((position, e.to_string()));
                break;
            }
        }
        let relative = u32::try_from(header.base_offset - base_offset).unwrap_or(u32::MAX);
        let update = cursor.on_batch(
            relative,
            position as u32,
            header.batch_len,
            header.max_timestamp_ms,
        );
        if let Some(entry) = update.offset {
            walk.offset_entries.extend_from_slice(&entry.encode());
        }
        if let Some(entry) = update.time {
            walk.time_entries.extend_from_slice(&entry.encode());
        }
        position += len;
        walk.end_position = position;
        walk.next_offset = header.next_offset();
    }
    if let Some(entry) = cursor.final_time_entry() {
        walk.time_entries.extend_from_slice(&entry.encode());
    }
    walk.max_timestamp_ms = cursor.max_timestamp_ms;
    walk
}

fn map_file(path: &Path, file: &dyn VfsFile, capacity: u64) -> Result<Mmap> {
    let len =
        usize::try_from(capacity).map_err(|_| Error::Config("segment too large to map".into()))?;
    // SAFETY: the log owns the file. The map may extend past the file's current size
    // (space is reserved in steps); readers only touch bytes below the published end
    // position, which is always inside the file.
    unsafe { MmapOptions::new().len(len).map(file.file()) }
        .map_err(|e| Error::io("mapping segment", path, e))
}
