//! One segment: a file of batches named by its base offset, with its two indexes.
//!
//! The file is read through one read-only memory map that covers the segment's whole
//! capacity, so readers never remap while the writer appends. The writer appends with
//! `pwrite` (see `docs/storage.md` for the measurement behind that choice) and then
//! publishes the new end position with a release store; readers load it with acquire
//! and only ever look below it.
//!
//! This file is the segment's shared state and what readers load of it; the rest is
//! one file per job: `file.rs` creates and opens the file and its map, `read.rs` reads
//! batches below the published end, `write.rs` is what the writer does after its
//! write (index entries, publishing, sealing), `index_cursor.rs` decides where sparse
//! index entries go, `walk.rs` is what recovery asks of a segment found on disk, and
//! `repair.rs` is what a reader does when an index entry turns out to be damaged.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::Mmap;

use crate::format::SEGMENT_HEADER_BYTES;
use crate::index::IndexFile;

mod file;
mod index_cursor;
mod read;
mod repair;
mod walk;
mod write;

pub(crate) use index_cursor::{index_capacity, IndexCursor, IndexUpdate};
pub use read::ReadChunk;
pub(crate) use repair::IndexRepair;
pub(crate) use walk::{walk, Walk};

/// State of a segment shared by the writer and readers. It holds no file descriptor:
/// readers go through the maps, and only the log's writer holds the active segment's
/// file (`Log::active_file`), so a sealed segment costs maps, never descriptors.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: u64,
    pub(crate) path: PathBuf,
    pub(crate) created_ms: i64,
    map: Arc<Mmap>,
    end_position: AtomicU64,
    next_offset: AtomicU64,
    max_timestamp_ms: AtomicI64,
    pub(crate) offset_index: IndexFile,
    pub(crate) time_index: IndexFile,
    /// Index damage found by readers, and the entries rebuilt for it.
    repair: IndexRepair,
    /// Byte position of the last damage a read logged (`u64::MAX`: none), so that a
    /// consumer retrying one damaged read does not flood the log.
    last_damage_reported: AtomicU64,
}

impl Segment {
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
}
