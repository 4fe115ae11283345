//! What recovery asks of a segment found on disk: where its data really ends, and
//! whether its indexes can be trusted.
//!
//! A sealed segment, or the active one after a clean close, is trusted after cheap
//! checks: [`Segment::indexes_look_valid`] (entries increase, point inside the data, and
//! the last offset entry lands on the batch it claims) and, for a sealed one,
//! [`Segment::tail_next_offset`] (a walk from the last offset entry only). Otherwise
//! [`walk`] reads every batch header from the first: offsets must be contiguous, and
//! batches reaching past `crc_from_offset` also have their CRC checked (recovery passes
//! the durable watermark for the active segment after a crash, and 0 to check every
//! batch of a sealed one). It stops at the first batch that fails and says where and
//! why, so recovery can tell a torn tail (cut) from damage below the watermark
//! (reported), and it rebuilds the index entries with the same [`IndexCursor`] the
//! append path uses. It works on a map's bytes rather than a [`Segment`], because
//! recovery walks before it knows the end to assemble one with.

use std::path::Path;

use protocol::batch::BatchView;

use super::read::header_at;
use super::{IndexCursor, Maps, Segment};
use crate::error::Result;
use crate::format::{self, SEGMENT_HEADER_BYTES};
use crate::index;

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
    /// Checks that the indexes are consistent with the data up to `end`: entries
    /// increase, point inside the data, and the last offset entry lands on a batch
    /// with the offset it claims. Cheap enough to run on every open.
    pub(crate) fn indexes_look_valid(&self, maps: &Maps, end: u64) -> bool {
        let mut previous: Option<format::OffsetEntry> = None;
        for entry in index::offset_entries(maps.offset_index.entries()) {
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
            self.header_at(maps, u64::from(entry.position), end)
                .is_ok_and(|h| h.base_offset == self.base_offset + u64::from(entry.relative_offset))
        });
        let mut previous_time: Option<format::TimeEntry> = None;
        for entry in index::time_entries(maps.time_index.entries()) {
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
        last_ok && (end == SEGMENT_HEADER_BYTES || maps.offset_index.len() > 0)
    }

    /// The offset after the last batch below `end`, found by walking headers from the
    /// last offset-index entry. Fails if a header on the way is damaged.
    pub(crate) fn tail_next_offset(&self, maps: &Maps, end: u64) -> Result<u64> {
        let mut position = index::offset_entries(maps.offset_index.entries())
            .last()
            .map_or(SEGMENT_HEADER_BYTES, |e| u64::from(e.position));
        let mut next = self.base_offset;
        while position < end {
            let header = self.header_at(maps, position, end)?;
            next = header.next_offset();
            position += u64::from(header.batch_len);
        }
        Ok(next)
    }
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
