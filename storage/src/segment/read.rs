//! Reading a segment: whole batches by offset or by time, as zero-copy slices of its map.
//!
//! Readers run on any thread while the single writer appends. They load the published
//! end position once (acquire) and never look past it, so they see only whole batches
//! the writer finished. A read first finds its batch through the sparse offset (or time)
//! index and a short walk over batch headers, then checks the CRC of every batch it
//! hands out: a [`ReadChunk`] is a `Bytes` that keeps the map alive through
//! [`MapOwner`], so a consumer's bytes are the segment's bytes, never a copy. Every
//! header is read through [`header_at`], which refuses a batch that would run past the
//! end, so damage on disk becomes an error that names the file and the position (and
//! is logged). An index entry is used only once the header it points at confirms it
//! (`repair.rs` handles one that does not), and a read never answers with a batch that
//! starts past the offset asked for.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use memmap2::Mmap;
use protocol::batch::{BatchHeader, BatchView, BATCH_HEADER_BYTES};

use super::repair::DamagedEntry;
use super::{Maps, Segment};
use crate::error::{Error, Result};
use crate::format::SEGMENT_HEADER_BYTES;

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

impl Segment {
    pub(super) fn header_at(&self, maps: &Maps, position: u64, end: u64) -> Result<BatchHeader> {
        header_at(&maps.data, &self.path, self.base_offset, position, end)
    }

    /// Position of the batch that contains `offset` (or the first batch after it),
    /// found through the offset index and a short walk over batch headers. The entry
    /// the walk starts from must land on a batch with the offset it claims; one that
    /// does not is index damage ([`index_damaged`](Self::index_damaged)), and the walk
    /// starts from the first batch instead.
    fn position_of(
        &self,
        maps: &Maps,
        offset: u64,
        end: u64,
    ) -> Result<(u64, Option<BatchHeader>)> {
        let relative = u32::try_from(offset.saturating_sub(self.base_offset)).unwrap_or(u32::MAX);
        let mut position = SEGMENT_HEADER_BYTES;
        if let Some(entry) = self.offset_entry_floor(maps, relative) {
            let claimed = self.base_offset + u64::from(entry.relative_offset);
            let at = u64::from(entry.position);
            match self.landing(maps, at, claimed, end) {
                Ok(header) if header.next_offset() > offset => return Ok((at, Some(header))),
                Ok(header) => position = at + u64::from(header.batch_len),
                Err(found) => self.index_damaged(maps, DamagedEntry::Offset(entry), &found),
            }
        }
        while position < end {
            let header = self.header_at(maps, position, end)?;
            if header.next_offset() > offset {
                return Ok((position, Some(header)));
            }
            position += u64::from(header.batch_len);
        }
        Ok((position, None))
    }

    /// The header at an index entry's `position`, if it is a whole batch starting at
    /// `claimed`; if not, what is there instead.
    fn landing(
        &self,
        maps: &Maps,
        position: u64,
        claimed: u64,
        end: u64,
    ) -> std::result::Result<BatchHeader, String> {
        if position < SEGMENT_HEADER_BYTES {
            return Err(format!("position {position} is inside the segment header"));
        }
        match self.header_at(maps, position, end) {
            Ok(header) if header.base_offset == claimed => Ok(header),
            Ok(header) => Err(format!("a batch starting at offset {}", header.base_offset)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// A read found damage: logs it at ERROR with the file, byte and offset (once per
    /// place, since a consumer retries the same read), and returns it as the error.
    fn damage_on_read(&self, error: Error, offset: u64) -> Error {
        if let Error::Corrupt {
            position, reason, ..
        } = &error
        {
            let last = self.last_damage_reported.swap(*position, Ordering::Relaxed);
            if last != *position {
                tracing::error!(segment = %self.path.display(), position, offset, %reason, "damaged batch found on read");
            }
        }
        error
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
        let maps = self.maps()?;
        let end = self.end_position();
        let (start, first) = self
            .position_of(&maps, from_offset, end)
            .map_err(|e| self.damage_on_read(e, from_offset))?;
        let Some(first) = first else {
            return Ok(ReadChunk::empty(from_offset));
        };
        if from_offset >= self.base_offset && first.base_offset > from_offset {
            // Offsets in a segment are contiguous, so this is a batch missing from the
            // data, not a seek to correct: refuse rather than skip records.
            let reason = format!(
                "the batch here starts at offset {}, past offset {from_offset} that was asked for",
                first.base_offset
            );
            let error = Error::Corrupt {
                path: self.path.clone(),
                position: start,
                reason,
            };
            return Err(self.damage_on_read(error, from_offset));
        }
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
            let bytes = &maps.data[position as usize..(position + len) as usize];
            if let Err(e) = BatchView::new(bytes).and_then(|view| view.verify_crc()) {
                if count == 0 {
                    let error = Error::Corrupt {
                        path: self.path.clone(),
                        position,
                        reason: e.to_string(),
                    };
                    return Err(self.damage_on_read(error, from_offset));
                }
                break;
            }
            count += 1;
            next_offset = header.next_offset();
            position += len;
            if position >= end {
                break;
            }
            header = match self.header_at(&maps, position, end) {
                Ok(header) => header,
                Err(_) => break, // reported by the read that starts here
            };
        }
        if count == 0 {
            return Ok(ReadChunk::empty(from_offset));
        }
        let bytes =
            Bytes::from_owner(MapOwner(maps.data.clone())).slice(start as usize..position as usize);
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
        let maps = self.maps()?;
        self.search_time(&maps, timestamp_ms, from_offset)
            .map_err(|e| self.damage_on_read(e, from_offset))
    }

    fn search_time(&self, maps: &Maps, timestamp_ms: i64, from_offset: u64) -> Result<Option<u64>> {
        let end = self.end_position();
        let mut position = SEGMENT_HEADER_BYTES;
        if let Some(entry) = self.time_entry_floor(maps, timestamp_ms) {
            let claimed = self.base_offset + u64::from(entry.relative_offset);
            match self.landing(maps, u64::from(entry.position), claimed, end) {
                Ok(_) => position = u64::from(entry.position),
                Err(found) => self.index_damaged(maps, DamagedEntry::Time(entry), &found),
            }
        }
        while position < end {
            let header = self.header_at(maps, position, end)?;
            let len = u64::from(header.batch_len);
            if header.max_timestamp_ms >= timestamp_ms && header.next_offset() > from_offset {
                let bytes = &maps.data[position as usize..(position + len) as usize];
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
}

/// Reads the batch header at `position` of a segment's bytes, checking that the whole
/// batch lies below `end`.
pub(super) fn header_at(
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
