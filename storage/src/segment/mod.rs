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

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, Result};
use crate::format::{self, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::index::{IndexFile, IndexKind};
use crate::vfs::{Vfs, VfsFile};

mod index_cursor;
mod read;
mod walk;

pub(crate) use index_cursor::{index_capacity, IndexCursor, IndexUpdate};
pub use read::ReadChunk;
pub(crate) use walk::{walk, Walk};

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

fn map_file(path: &Path, file: &dyn VfsFile, capacity: u64) -> Result<Mmap> {
    let len =
        usize::try_from(capacity).map_err(|_| Error::Config("segment too large to map".into()))?;
    // SAFETY: the log owns the file. The map may extend past the file's current size
    // (space is reserved in steps); readers only touch bytes below the published end
    // position, which is always inside the file.
    unsafe { MmapOptions::new().len(len).map(file.file()) }
        .map_err(|e| Error::io("mapping segment", path, e))
}
