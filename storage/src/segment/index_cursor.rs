//! [`IndexCursor`]: deciding which batches get an entry in a segment's sparse offset and
//! time indexes.
//!
//! An offset entry every `index_interval_bytes` of data, starting with the first batch;
//! a time entry at the same spacing but only where the segment's largest timestamp grew,
//! so the time index strictly increases; and, when a segment is sealed, a closing time
//! entry carrying its true maximum. The cursor only decides: it hands back an
//! [`IndexUpdate`] and the caller writes it (the append path through
//! `Segment::push_index`, recovery's walk into its buffers). Both use this one cursor so
//! that an index rebuilt from the data is the index the appends wrote.

use crate::format;

/// Builds the sparse index entries while walking or appending batches. Shared by the
/// append path and recovery so that both produce identical indexes.
#[derive(Debug, Clone)]
pub(crate) struct IndexCursor {
    interval_bytes: u64,
    bytes_since_offset_entry: u64,
    bytes_since_time_entry: u64,
    last_time_entry_ms: Option<i64>,
    pub(crate) max_timestamp_ms: Option<i64>,
    last_batch: Option<(u32, u32)>,
}

/// Index entries to append for one batch.
#[derive(Debug, Default)]
pub(crate) struct IndexUpdate {
    pub(crate) offset: Option<format::OffsetEntry>,
    pub(crate) time: Option<format::TimeEntry>,
}

impl IndexCursor {
    pub(crate) fn new(interval_bytes: u32) -> IndexCursor {
        IndexCursor {
            interval_bytes: u64::from(interval_bytes),
            bytes_since_offset_entry: u64::MAX,
            bytes_since_time_entry: u64::MAX,
            last_time_entry_ms: None,
            max_timestamp_ms: None,
            last_batch: None,
        }
    }

    /// Resumes after the given existing entries (a clean reopen of the active segment).
    pub(crate) fn resume(
        interval_bytes: u32,
        last_time_entry_ms: Option<i64>,
        max_timestamp_ms: Option<i64>,
    ) -> IndexCursor {
        IndexCursor {
            interval_bytes: u64::from(interval_bytes),
            bytes_since_offset_entry: 0,
            bytes_since_time_entry: 0,
            last_time_entry_ms,
            max_timestamp_ms,
            last_batch: None,
        }
    }

    /// Accounts for a batch at `position`; returns the entries to write for it.
    pub(crate) fn on_batch(
        &mut self,
        relative_offset: u32,
        position: u32,
        len: u32,
        max_timestamp_ms: i64,
    ) -> IndexUpdate {
        let mut update = IndexUpdate::default();
        if self.bytes_since_offset_entry >= self.interval_bytes {
            update.offset = Some(format::OffsetEntry {
                relative_offset,
                position,
            });
            self.bytes_since_offset_entry = 0;
        }
        let max = self
            .max_timestamp_ms
            .map_or(max_timestamp_ms, |m| m.max(max_timestamp_ms));
        self.max_timestamp_ms = Some(max);
        let grew = self.last_time_entry_ms.is_none_or(|last| max > last);
        if grew && self.bytes_since_time_entry >= self.interval_bytes {
            update.time = Some(format::TimeEntry {
                max_timestamp_ms: max,
                relative_offset,
                position,
            });
            self.last_time_entry_ms = Some(max);
            self.bytes_since_time_entry = 0;
        }
        self.bytes_since_offset_entry =
            self.bytes_since_offset_entry.saturating_add(u64::from(len));
        self.bytes_since_time_entry = self.bytes_since_time_entry.saturating_add(u64::from(len));
        self.last_batch = Some((relative_offset, position));
        update
    }

    /// The closing time entry for a segment being sealed: makes the last entry carry
    /// the segment's true maximum timestamp.
    pub(crate) fn final_time_entry(&mut self) -> Option<format::TimeEntry> {
        let max = self.max_timestamp_ms?;
        let (relative_offset, position) = self.last_batch?;
        if self.last_time_entry_ms.is_some_and(|last| last >= max) {
            return None;
        }
        self.last_time_entry_ms = Some(max);
        Some(format::TimeEntry {
            max_timestamp_ms: max,
            relative_offset,
            position,
        })
    }
}

/// Entries an index of a segment of `capacity_bytes` may need, at one per interval plus
/// the first batch and a closing time entry.
pub(crate) fn index_capacity(capacity_bytes: u64, interval_bytes: u32) -> u32 {
    u32::try_from(capacity_bytes / u64::from(interval_bytes.max(1)) + 2).unwrap_or(u32::MAX)
}
