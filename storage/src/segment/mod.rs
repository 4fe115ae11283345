//! One segment: a file of batches named by its base offset, with its two indexes.
//!
//! The file is read through one read-only memory map that covers the segment's whole
//! capacity, so readers never remap while the writer appends. The writer appends with
//! `pwrite` (see `docs/storage.md` for the measurement behind that choice) and then
//! publishes the new end position with a release store; readers load it with acquire
//! and only ever look below it. Once sealed, the maps ([`Maps`]) belong to the
//! [`MappedSegments`] budget, which may unmap them between reads; a read maps the
//! segment again when it finds it unmapped ([`Segment::maps`]).
//!
//! This file is the segment's shared state and what readers load of it; the rest is
//! one file per job: `file.rs` creates and opens the file and its maps (and maps a
//! sealed segment again), `read.rs` reads
//! batches below the published end, `write.rs` is what the writer does after its
//! write (index entries, publishing, sealing), `index_cursor.rs` decides where sparse
//! index entries go, `walk.rs` is what recovery asks of a segment found on disk, and
//! `repair.rs` is what a reader does when an index entry turns out to be damaged.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use memmap2::Mmap;

use crate::error::Result;
use crate::format::SEGMENT_HEADER_BYTES;
use crate::index::IndexFile;
use crate::maps::MappedSegments;

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

/// What a segment has mapped: its data and its two indexes. A sealed segment's maps
/// are owned by the [`MappedSegments`] budget and may be closed between reads; a
/// reader works on one `Arc<Maps>` for the whole of a read.
#[derive(Debug)]
pub(crate) struct Maps {
    pub(crate) data: Arc<Mmap>,
    pub(crate) offset_index: IndexFile,
    pub(crate) time_index: IndexFile,
    /// The budget's clock at the last read (eviction closes the oldest).
    last_used: AtomicU64,
}

impl Maps {
    pub(crate) fn new(data: Mmap, offset_index: IndexFile, time_index: IndexFile) -> Maps {
        Maps {
            data: Arc::new(data),
            offset_index,
            time_index,
            last_used: AtomicU64::new(0),
        }
    }

    pub(crate) fn touch(&self, tick: u64) {
        self.last_used.store(tick, Ordering::Relaxed);
    }

    pub(crate) fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }
}

/// Who owns a segment's maps.
#[derive(Debug)]
enum MapSlot {
    /// The segment itself: the active segment, whose writer needs them.
    Held(Arc<Maps>),
    /// The budget, if it still counts them (a sealed segment); dead once closed.
    Budgeted(Weak<Maps>),
}

/// State of a segment shared by the writer and readers. It holds no file descriptor:
/// readers go through the maps, and only the log's writer holds the active segment's
/// file (`Log::active_file`). A sealed segment's maps are opened on demand under the
/// [`MappedSegments`] budget, so a sealed segment at rest costs neither descriptors
/// nor maps.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: u64,
    pub(crate) path: PathBuf,
    pub(crate) created_ms: i64,
    /// Bytes the data map covers (for the active segment, the most it may hold).
    capacity: u64,
    maps: Mutex<MapSlot>,
    budget: MappedSegments,
    /// This segment's key in the budget.
    budget_id: u64,
    end_position: AtomicU64,
    next_offset: AtomicU64,
    max_timestamp_ms: AtomicI64,
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
        self.capacity
    }

    /// The segment's maps, mapping a sealed segment again if the budget closed it.
    /// Held under the slot's lock, so that readers that find it closed at once map it
    /// once; the budget is told after the lock is released.
    pub(crate) fn maps(&self) -> Result<Arc<Maps>> {
        let mut slot = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        let open = match &*slot {
            MapSlot::Held(maps) => return Ok(maps.clone()),
            MapSlot::Budgeted(maps) => maps.upgrade(),
        };
        if let Some(maps) = open {
            maps.touch(self.budget.tick());
            return Ok(maps);
        }
        let maps = Arc::new(self.reopen()?);
        *slot = MapSlot::Budgeted(Arc::downgrade(&maps));
        drop(slot);
        self.budget.insert(self.budget_id, maps.clone(), true);
        Ok(maps)
    }

    /// The segment is sealed: its maps pass to the budget, which may close them.
    pub(crate) fn hand_maps_to_budget(&self) {
        let mut slot = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        let MapSlot::Held(maps) = &*slot else {
            return;
        };
        let maps = maps.clone();
        *slot = MapSlot::Budgeted(Arc::downgrade(&maps));
        drop(slot);
        self.budget.insert(self.budget_id, maps, false);
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // A removed segment's files stay on disk while mapped: the budget must let go.
        self.budget.forget(self.budget_id);
    }
}
