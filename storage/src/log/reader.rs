//! Reading: [`LogReader`], a clonable handle for any number of concurrent readers.
//!
//! A reader never blocks the writer and never takes a lock for longer than it takes to
//! clone the segment list. Reads are zero-copy: a [`ReadChunk`] is one `Bytes` slice of
//! a segment's memory map, which stays alive as long as the slice does, even after
//! retention unlinks the file. Every batch handed out has passed its CRC check.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::segment::ReadChunk;
use crate::sync::DurableMark;

use super::Shared;

/// A handle for reading the log from any thread. Clone freely.
#[derive(Debug, Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl LogReader {
    pub(super) fn new(shared: Arc<Shared>) -> LogReader {
        LogReader { shared }
    }

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
            return segment
                .read(from_offset, max_bytes, until_offset)
                .map_err(|error| self.below_start_or(error, from_offset));
        }
        Ok(ReadChunk::empty(from_offset))
    }

    /// A sealed segment that had to be mapped again may have been deleted by
    /// retention since this read took the segment list: then the read is below the
    /// log start, and says so, rather than report a missing file.
    fn below_start_or(&self, error: Error, from_offset: u64) -> Error {
        let start = self.start_offset();
        if from_offset < start {
            return Error::OffsetOutOfRange {
                requested: from_offset,
                start,
                end: self.end_offset(),
            };
        }
        error
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
