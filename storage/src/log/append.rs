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

use protocol::batch::{BatchHeader, BatchView};

use crate::config::Durability;
use crate::error::{Error, Result};

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
        self.append_chunk(&[batch], &mut |info| appended = Some(info))?;
        // append_chunk stores at least its first batch or returns an error.
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
        mut on_appended: impl FnMut(AppendInfo),
    ) -> Result<()> {
        let mut rest = batches;
        while !rest.is_empty() {
            let stored = self.append_chunk(rest, &mut on_appended)?;
            rest = &rest[stored..];
        }
        Ok(())
    }

    /// Checks one batch before it is written: size, header, CRC, every record.
    fn check_batch(&self, batch: &[u8]) -> Result<BatchHeader> {
        if batch.len() > self.config.max_batch_bytes {
            return Err(Error::BatchTooLarge {
                len: batch.len(),
                max: self.config.max_batch_bytes,
            });
        }
        let view = BatchView::new(batch)?;
        view.validate()?;
        Ok(*view.header())
    }

    /// Writes the longest prefix of `batches` that is valid and fits the active segment
    /// (rolling first if the first batch does not) with one vectored write. Returns how
    /// many batches it stored: at least one, or an error for the first.
    fn append_chunk<B: AsRef<[u8]>>(
        &mut self,
        batches: &[B],
        on_appended: &mut dyn FnMut(AppendInfo),
    ) -> Result<usize> {
        self.shared.durable.check_failed()?;
        let Some((first, others)) = batches.split_first() else {
            return Ok(0);
        };
        let first = first.as_ref();
        let first_header = self.check_batch(first)?;
        self.maybe_roll(first.len() as u64, first_header.record_count)?;

        let segment = self.active.clone();
        let base_offset = self.shared.next_offset.load(Ordering::Relaxed);
        debug_assert_eq!(base_offset, segment.next_offset());
        let position = segment.end_position();
        // Later batches join only if they fit without a roll; the rest go in the next
        // chunk. (A first batch larger than `segment_bytes` got a segment of its own.)
        let limit = self.config.segment_bytes.min(segment.capacity());
        let mut headers = vec![first_header];
        let mut end = position + first.len() as u64;
        let mut records = u64::from(first_header.record_count);
        for batch in others.iter().take(MAX_BATCHES_PER_WRITE - 1) {
            let batch = batch.as_ref();
            let Ok(header) = self.check_batch(batch) else {
                break; // It gets its own error as the first batch of the next chunk.
            };
            let fits = end + batch.len() as u64 <= limit;
            let relative_fits =
                base_offset - segment.base_offset + records + u64::from(header.record_count)
                    <= u64::from(u32::MAX);
            if !fits || !relative_fits {
                break;
            }
            headers.push(header);
            end += batch.len() as u64;
            records += u64::from(header.record_count);
        }
        let batches = &batches[..headers.len()];
        self.reserve(end)?;
        if !self.zero.is_ready(end) {
            self.zero.claim(end, self.allocated_bytes);
        }

        // Each batch goes out as its log offset (from `bases`) and its own bytes after
        // the base-offset field, never copied.
        let mut bases = Vec::with_capacity(batches.len());
        let mut next = base_offset;
        for header in &headers {
            bases.push(next.to_le_bytes());
            next += u64::from(header.record_count);
        }
        let mut bufs: Vec<&[u8]> = Vec::with_capacity(2 * batches.len());
        for (base, batch) in bases.iter().zip(batches) {
            bufs.push(base);
            bufs.push(&batch.as_ref()[base.len()..]);
        }
        let written = segment
            .file
            .write_vectored_all_at(&bufs, position)
            .map_err(|e| Error::io("appending to", &segment.path, e));
        if let Err(error) = written {
            if !matches!(error, Error::NoSpace { .. }) {
                self.shared.durable.fail(&error);
            }
            return Err(error);
        }

        let mut at = position;
        let mut next = base_offset;
        let mut max_timestamp_ms = i64::MIN;
        for (header, batch) in headers.iter().zip(batches) {
            let relative = u32::try_from(next - segment.base_offset).unwrap_or(u32::MAX);
            let len = batch.as_ref().len() as u32;
            let update = self
                .cursor
                .on_batch(relative, at as u32, len, header.max_timestamp_ms);
            let indexed = segment.push_index(&update);
            self.shared.durable.fail_on_error(indexed)?;
            at += u64::from(len);
            next += u64::from(header.record_count);
            max_timestamp_ms = max_timestamp_ms.max(header.max_timestamp_ms);
        }
        segment.publish(end, next, max_timestamp_ms);
        self.zero.note_appended(end - position);
        self.shared.next_offset.store(next, Ordering::Release);
        self.shared.durable.note_append(
            next,
            &segment.file,
            self.config.durability == Durability::Always,
        );
        // Only now, with all of them stored and published, report them.
        let (mut at, mut next) = (position, base_offset);
        for (header, batch) in headers.iter().zip(batches) {
            let next_offset = next + u64::from(header.record_count);
            on_appended(AppendInfo {
                base_offset: next,
                next_offset,
                segment_base_offset: segment.base_offset,
                position: at,
            });
            at += batch.as_ref().len() as u64;
            next = next_offset;
        }
        Ok(batches.len())
    }

    /// Reserves disk space up to `needed` bytes of the active segment.
    fn reserve(&mut self, needed: u64) -> Result<()> {
        if needed <= self.allocated_bytes {
            return Ok(());
        }
        let target = (self.allocated_bytes + self.config.preallocate_bytes)
            .max(needed)
            .min(self.active.capacity());
        self.active
            .file
            .allocate(target)
            .map_err(|e| Error::io("reserving space in", &self.active.path, e))?;
        self.allocated_bytes = target;
        Ok(())
    }
}
