//! What the single writer does to a segment around its write: index entries,
//! publishing, sealing.
//!
//! The bytes themselves are written by the log (`log/append.rs`, one `pwritev` for a
//! run of batches); then [`Segment::push_index`] writes the entries the [`IndexCursor`]
//! chose, and [`Segment::publish`] makes the batches visible: the largest timestamp,
//! then the next offset, then the end position, the end last, so a reader that loads
//! the end (acquire) also sees the rest. When the log rolls to a new segment or
//! closes, [`Segment::seal`] makes this one immutable on disk.

use std::sync::atomic::Ordering;

use super::{index_capacity, IndexCursor, IndexUpdate, Maps, Segment};
use crate::error::{Error, Result};
use crate::vfs::VfsFile;

impl Segment {
    /// Makes a batch written at the current end visible to readers.
    pub(crate) fn publish(&self, end_position: u64, next_offset: u64, max_timestamp_ms: i64) {
        debug_assert!(end_position > self.end_position.load(Ordering::Relaxed));
        self.max_timestamp_ms
            .fetch_max(max_timestamp_ms, Ordering::AcqRel);
        self.next_offset.store(next_offset, Ordering::Release);
        self.end_position.store(end_position, Ordering::Release);
    }

    /// Reserves index space for the entries of `data_bytes` of segment (what the
    /// writer has reserved for data), so that no index write needs space of its own.
    pub(crate) fn reserve_indexes(&self, maps: &Maps, data_bytes: u64) -> Result<()> {
        let entries = index_capacity(data_bytes, self.repair.index_interval_bytes());
        maps.offset_index.reserve(entries)?;
        maps.time_index.reserve(entries)
    }

    /// Writes index entries for a batch just appended.
    pub(crate) fn push_index(&self, maps: &Maps, update: &IndexUpdate) -> Result<()> {
        if let Some(entry) = update.offset {
            maps.offset_index.push(&entry.encode())?;
        }
        if let Some(entry) = update.time {
            maps.time_index.push(&entry.encode())?;
        }
        Ok(())
    }

    /// Makes the segment immutable on disk: closing time entry, indexes and data cut
    /// to size and synced. `file` and `maps` are the segment's, held by its writer.
    pub(crate) fn seal(
        &self,
        file: &dyn VfsFile,
        maps: &Maps,
        cursor: &mut IndexCursor,
    ) -> Result<()> {
        if let Some(entry) = cursor.final_time_entry() {
            maps.time_index.push(&entry.encode())?;
        }
        maps.offset_index.seal()?;
        maps.time_index.seal()?;
        if self.repair.was_damaged() {
            // Readers found these indexes damaged; the files on disk hold what was
            // rebuilt then. Now that the end is final, rebuild them whole.
            self.rewrite_indexes(maps)?;
        }
        let end = self.end_position();
        file.set_len(end)
            .map_err(|e| Error::io("truncating segment", &self.path, e))?;
        file.sync_data()
            .map_err(|e| Error::io("syncing segment", &self.path, e))
    }
}
