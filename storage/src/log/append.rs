//! Appending: every batch is checked, then written with its log offset, then
//! published.
//!
//! A batch is validated in full (size, header, CRC, every record) before any byte of it
//! is written: the log never stores what it could not read back. The caller's bytes are
//! never copied or changed; each batch goes out as two buffers, an 8-byte base offset
//! and the rest of its bytes, and [`Log::append_all`] sends a whole run of batches with
//! one vectored write, so a pipelined burst costs one system call and one wake of the
//! syncer. Only after the write are the batches indexed and published (release stores
//! of the segment's end and the log's end offset), and only then reported to the
//! caller.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use protocol::batch::{BatchHeader, BatchView};

use crate::error::{Error, Result};
use crate::producers::{ProducerEntry, ProducerTag};
use crate::segment::Segment;

use super::Log;

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the batch's first record.
    pub base_offset: u64,
    /// Offset after the batch's last record; the batch is durable once the durable
    /// watermark reaches this.
    pub next_offset: u64,
    /// Base offset of the segment the batch went into.
    pub segment_base_offset: u64,
    /// Byte position of the batch in that segment.
    pub position: u64,
}

/// Most batches [`Log::append_all`] writes with one system call (two buffers each,
/// well within Linux's `IOV_MAX` of 1024).
pub const MAX_BATCHES_PER_WRITE: usize = 256;

impl Log {
    /// Appends one batch. The batch is validated (header, CRC, every record) and stored
    /// byte for byte, except that the log's offset goes into its `base_offset` field
    /// (written from a separate 8-byte buffer with one vectored write, so the caller's
    /// bytes are never copied or modified). On return it is visible to readers; it is
    /// durable once [`durable_offset`](crate::LogReader::durable_offset) reaches
    /// `next_offset` (see [`wait_durable`](Self::wait_durable)).
    ///
    /// A full disk gives [`Error::NoSpace`] with nothing written; any other write error
    /// fails the log.
    pub fn append(&mut self, batch: &[u8]) -> Result<AppendInfo> {
        let mut appended = None;
        self.append_chunk(&[batch], &[], &mut |info| appended = Some(info))?;
        // append_chunk stores at least its first batch or returns an error.
        debug_assert!(appended.is_some(), "a stored batch is reported");
        appended.ok_or(Error::Closed)
    }

    /// Appends `batches` back to back, exactly as one [`append`](Self::append) per
    /// batch would, but with one vectored write per segment they land in (at most
    /// [`MAX_BATCHES_PER_WRITE`] batches each) and one wake of the syncer: a pipelined
    /// burst costs one system call and shares one `fdatasync`.
    ///
    /// `on_appended` sees each stored batch in order. On an error, the batches it saw
    /// are stored and the others are not; the error belongs to the first batch it did
    /// not see, so a caller can report it and go on with the batches after that one.
    pub fn append_all<B: AsRef<[u8]>>(
        &mut self,
        batches: &[B],
        on_appended: impl FnMut(AppendInfo),
    ) -> Result<()> {
        self.append_all_tagged(batches, &[], on_appended)
    }

    /// [`append_all`](Self::append_all), recording who sent each batch that has a
    /// tag: `tags` is empty (no batch is tagged) or holds one entry per batch. Each
    /// tagged batch gets an entry in the producer journal, written before the batch
    /// and synced with it (see `producers.rs`), so the owner's producer table can be
    /// rebuilt after a restart ([`take_recovered_producers`](Self::take_recovered_producers)).
    pub fn append_all_tagged<B: AsRef<[u8]>>(
        &mut self,
        batches: &[B],
        tags: &[Option<ProducerTag>],
        mut on_appended: impl FnMut(AppendInfo),
    ) -> Result<()> {
        debug_assert!(
            tags.is_empty() || tags.len() == batches.len(),
            "one tag per batch, or none at all"
        );
        // Invariant: exactly one result per stored batch, in order, with contiguous
        // offsets, and the log grows by exactly the batches reported.
        let mut reported = 0usize;
        let mut expected_offset = self.shared.next_offset.load(Ordering::Relaxed);
        let mut report = |info: AppendInfo| {
            debug_assert_eq!(
                info.base_offset, expected_offset,
                "append_all: offsets of consecutive batches are contiguous"
            );
            expected_offset = info.next_offset;
            reported += 1;
            on_appended(info);
        };
        let mut rest = batches;
        let mut rest_tags = tags;
        let result = loop {
            if rest.is_empty() {
                break Ok(());
            }
            match self.append_chunk(rest, rest_tags, &mut report) {
                Ok(stored) => {
                    debug_assert!(stored > 0, "append_all: every chunk stores a batch");
                    rest = &rest[stored..];
                    rest_tags = rest_tags.get(stored..).unwrap_or_default();
                }
                Err(error) => break Err(error),
            }
        };
        debug_assert_eq!(
            reported,
            batches.len() - rest.len(),
            "append_all: one result per stored batch"
        );
        debug_assert_eq!(
            self.shared.next_offset.load(Ordering::Relaxed),
            expected_offset,
            "append_all: the log grew by exactly the reported batches"
        );
        result
    }

    /// Checks one batch before it is written: size, header, CRC, every record. The
    /// [`Checked`] it returns is the only thing the write path accepts.
    fn check_batch<'b>(&self, batch: &'b [u8]) -> Result<Checked<'b>> {
        if batch.len() > self.config.max_batch_bytes {
            return Err(Error::BatchTooLarge {
                len: batch.len(),
                max: self.config.max_batch_bytes,
            });
        }
        let view = BatchView::new(batch)?;
        view.validate()?;
        Ok(Checked {
            bytes: batch,
            header: *view.header(),
        })
    }

    /// Writes the longest prefix of `batches` that is valid and fits the active segment
    /// (rolling first if the first batch does not) with one vectored write. Returns how
    /// many batches it stored: at least one, or an error for the first.
    fn append_chunk<B: AsRef<[u8]>>(
        &mut self,
        batches: &[B],
        tags: &[Option<ProducerTag>],
        on_appended: &mut dyn FnMut(AppendInfo),
    ) -> Result<usize> {
        self.shared.durable.check_failed()?;
        let Some((first, others)) = batches.split_first() else {
            return Ok(0);
        };
        let first = self.check_batch(first.as_ref())?;
        self.maybe_roll(first.bytes.len() as u64, first.header.record_count)?;
        let chunk = self.plan_chunk(first, others);
        self.reserve(chunk.end_position)?;
        if !self.zero.is_ready(chunk.end_position) {
            self.zero.claim(chunk.end_position, self.allocated_bytes);
        }
        // The journal first: a crash between the two writes leaves an entry for a
        // batch that is not there, which opening drops, rather than a batch without
        // its entry, which a retry would duplicate.
        let journal_before = self.producers.len_bytes();
        self.journal_chunk(&chunk, tags)?;
        if let Err(error) = self.write_chunk(&chunk) {
            let rewound = self.producers.rewind(journal_before);
            self.shared.durable.fail_on_error(rewound)?;
            return Err(error);
        }
        self.publish_chunk(&chunk)?;
        // Only now, with all of them stored and published, report them.
        for (info, _) in chunk.placements() {
            on_appended(info);
        }
        Ok(chunk.batches.len())
    }

    /// Picks the batches that go out with `first` in one write to the active segment:
    /// those after it that are valid and fit without a roll. The rest go in the next
    /// chunk; an invalid one gets its own error as the first batch of that chunk. (A
    /// first batch larger than `segment_bytes` got a segment of its own.)
    fn plan_chunk<'b, B: AsRef<[u8]>>(&self, first: Checked<'b>, others: &'b [B]) -> Chunk<'b> {
        let segment = self.active.clone();
        let base_offset = self.shared.next_offset.load(Ordering::Relaxed);
        // Offsets are contiguous: the batches written carry base offsets that continue
        // the active segment's, or the log would hold a gap or an offset twice.
        assert_eq!(
            base_offset,
            segment.next_offset(),
            "the log's end offset is the active segment's"
        );
        let position = segment.end_position();
        let limit = self.config.segment_bytes.min(segment.capacity());
        let mut end = position + first.bytes.len() as u64;
        let mut records = u64::from(first.header.record_count);
        let mut batches = vec![first];
        for batch in others.iter().take(MAX_BATCHES_PER_WRITE - 1) {
            let Ok(batch) = self.check_batch(batch.as_ref()) else {
                break;
            };
            let fits = end + batch.bytes.len() as u64 <= limit;
            let relative_fits =
                base_offset - segment.base_offset + records + u64::from(batch.header.record_count)
                    <= u64::from(u32::MAX);
            if !fits || !relative_fits {
                break;
            }
            end += batch.bytes.len() as u64;
            records += u64::from(batch.header.record_count);
            batches.push(batch);
        }
        Chunk {
            segment,
            base_offset,
            next_offset: base_offset + records,
            position,
            end_position: end,
            batches,
        }
    }

    /// Writes the producer journal's entries for the tagged batches of a chunk, and
    /// hands the journal to the syncer before the chunk's offsets reach it.
    fn journal_chunk(&mut self, chunk: &Chunk<'_>, tags: &[Option<ProducerTag>]) -> Result<()> {
        let entries: Vec<ProducerEntry> = chunk
            .placements()
            .zip(tags)
            .filter_map(|((info, _), tag)| {
                tag.map(|tag| ProducerEntry {
                    tag,
                    base_offset: info.base_offset,
                    next_offset: info.next_offset,
                })
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        match self.producers.append(&entries) {
            Ok(file) => {
                self.shared.durable.note_dirty(&file);
                Ok(())
            }
            // Like a segment write: a full disk leaves the log usable (the journal
            // was cut back), anything else fails it.
            Err(error) => {
                if !matches!(error, Error::NoSpace { .. }) {
                    self.shared.durable.fail(&error);
                }
                Err(error)
            }
        }
    }

    /// Writes a chunk at the end of the active segment with one vectored write. Each
    /// batch goes out as its log offset and its own bytes after the base-offset field,
    /// never copied. A full disk leaves the log usable; any other error fails it.
    fn write_chunk(&self, chunk: &Chunk<'_>) -> Result<()> {
        let segment = &chunk.segment;
        // A batch is validated before it is written (check_batch made every Checked;
        // checked again here, in debug builds, so that no path can skip it).
        debug_assert!(
            chunk.batches.iter().all(|batch| {
                BatchView::new(batch.bytes).is_ok_and(|view| view.verify_crc().is_ok())
            }),
            "only validated batches are written"
        );
        // Appends go at the end of the data, never over it, and inside the map.
        assert_eq!(
            chunk.position,
            segment.end_position(),
            "a chunk is written at the end of the active segment"
        );
        debug_assert!(
            chunk.end_position <= segment.capacity(),
            "a chunk fits the active segment's map"
        );
        let mut bases = Vec::with_capacity(chunk.batches.len());
        bases.extend(
            chunk
                .placements()
                .map(|(info, _)| info.base_offset.to_le_bytes()),
        );
        let mut bufs: Vec<&[u8]> = Vec::with_capacity(2 * chunk.batches.len());
        for (base, batch) in bases.iter().zip(&chunk.batches) {
            bufs.push(base);
            bufs.push(&batch.bytes[base.len()..]);
        }
        let written = self
            .active_file
            .write_vectored_all_at(&bufs, chunk.position)
            .map_err(|e| Error::io("appending to", &segment.path, e));
        if let Err(error) = &written {
            if !matches!(error, Error::NoSpace { .. }) {
                self.shared.durable.fail(error);
            }
        }
        written
    }

    /// Indexes a written chunk, then makes it visible: to readers (release stores of
    /// the segment's and the log's end) and to the syncer.
    fn publish_chunk(&mut self, chunk: &Chunk<'_>) -> Result<()> {
        let segment = &chunk.segment;
        let mut max_timestamp_ms = i64::MIN;
        for (info, batch) in chunk.placements() {
            let relative =
                u32::try_from(info.base_offset - segment.base_offset).unwrap_or(u32::MAX);
            let update = self.cursor.on_batch(
                relative,
                info.position as u32,
                batch.bytes.len() as u32,
                batch.header.max_timestamp_ms,
            );
            let indexed = segment.push_index(&self.active_maps, &update);
            self.shared.durable.fail_on_error(indexed)?;
            max_timestamp_ms = max_timestamp_ms.max(batch.header.max_timestamp_ms);
        }
        let next = chunk.next_offset;
        // The sync target handed to the syncer below is the end of the last batch
        // written, so the durable watermark (which only takes such values) lands on a
        // batch boundary.
        debug_assert_eq!(
            chunk.placements().last().map(|(info, _)| info.next_offset),
            Some(next),
            "the sync target is the end of the chunk's last batch"
        );
        segment.publish(chunk.end_position, next, max_timestamp_ms);
        self.zero.note_appended(chunk.end_position - chunk.position);
        self.shared.next_offset.store(next, Ordering::Release);
        self.shared.durable.note_append(
            next,
            chunk.end_position - chunk.position,
            &self.active_file,
        );
        Ok(())
    }

    /// Reserves disk space up to `needed` bytes of the active segment.
    fn reserve(&mut self, needed: u64) -> Result<()> {
        if needed <= self.allocated_bytes {
            return Ok(());
        }
        let target = next_reservation(
            self.allocated_bytes,
            needed,
            self.config.preallocate_bytes,
            self.active.capacity(),
        );
        self.active_file
            .allocate(target)
            .map_err(|e| Error::io("reserving space in", &self.active.path, e))?;
        self.active.reserve_indexes(&self.active_maps, target)?;
        self.allocated_bytes = target;
        Ok(())
    }
}

/// The first reservation of a new segment, at most: an idle log (an internal topic, a
/// quiet partition) holds a few KiB of reserved disk, not `preallocate_bytes`.
pub(crate) const FIRST_RESERVATION_BYTES: u64 = 64 * 1024;

/// How far a segment with `allocated` bytes reserved, about to need `needed`, reserves
/// to: the reservation doubles (from [`FIRST_RESERVATION_BYTES`]) up to steps of
/// `max_step`, so reserved space scales with what the segment really receives, and
/// never past its `capacity`.
pub(crate) fn next_reservation(allocated: u64, needed: u64, max_step: u64, capacity: u64) -> u64 {
    let step = allocated.clamp(FIRST_RESERVATION_BYTES.min(max_step), max_step);
    allocated.saturating_add(step).max(needed).min(capacity)
}

/// A batch that passed [`Log::check_batch`]. Only these are ever written.
#[derive(Debug, Clone, Copy)]
struct Checked<'b> {
    bytes: &'b [u8],
    header: BatchHeader,
}

/// Checked batches that go out together with one vectored write, and where they land.
#[derive(Debug)]
struct Chunk<'b> {
    /// The active segment they are written to.
    segment: Arc<Segment>,
    /// Offset of the first batch's first record.
    base_offset: u64,
    /// Offset after the last batch's last record.
    next_offset: u64,
    /// Byte position of the first batch in the segment.
    position: u64,
    /// Byte position after the last batch.
    end_position: u64,
    batches: Vec<Checked<'b>>,
}

impl<'b> Chunk<'b> {
    /// Each batch with where it lands, in order: offsets follow on from
    /// `base_offset`, positions from `position`.
    fn placements(&self) -> impl Iterator<Item = (AppendInfo, Checked<'b>)> + '_ {
        let segment_base_offset = self.segment.base_offset;
        let start = (self.base_offset, self.position);
        self.batches.iter().scan(start, move |(next, at), batch| {
            let info = AppendInfo {
                base_offset: *next,
                next_offset: *next + u64::from(batch.header.record_count),
                segment_base_offset,
                position: *at,
            };
            *next = info.next_offset;
            *at += batch.bytes.len() as u64;
            Some((info, *batch))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_double_up_to_the_step_and_stop_at_capacity() {
        const MIB: u64 = 1024 * 1024;
        let mut allocated = 4096;
        let mut steps = Vec::new();
        while allocated < 64 * MIB {
            allocated = next_reservation(allocated, allocated + 1, 16 * MIB, 64 * MIB);
            steps.push(allocated);
        }
        assert_eq!(steps[0], 4096 + FIRST_RESERVATION_BYTES);
        assert!(steps
            .windows(2)
            .all(|w| w[1] - w[0] <= 16 * MIB && w[1] > w[0]));
        assert_eq!(*steps.last().unwrap(), 64 * MIB, "never past the capacity");
        assert!(steps.len() < 16, "geometric, not linear: {steps:?}");
        // A batch larger than the step gets all it needs at once.
        assert_eq!(next_reservation(0, 40 * MIB, 16 * MIB, 64 * MIB), 40 * MIB);
        // A step configured below the first reservation is honoured.
        assert_eq!(next_reservation(0, 1, 4096, MIB), 4096);
    }
}
