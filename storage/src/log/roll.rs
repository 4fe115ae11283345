//! Rolling: sealing the active segment and starting the next one.
//!
//! A segment rolls when the next batch would take it past `segment_bytes`, when it is
//! older than `segment_ms`, or when its relative offsets (`u32`) would run out. The order
//! of the steps is what lets recovery trust every segment but the last without a scan:
//! the old segment is sealed (final time-index entry, indexes and data cut to size and
//! synced) and the directory synced before the new segment's file exists. If the new
//! segment cannot be created (typically a full disk), its half-made files are removed
//! and appends go on in the old segment until a later roll succeeds.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::SEGMENT_HEADER_BYTES;
use crate::recovery;
use crate::segment::{IndexCursor, Segment};

use super::Log;

impl Log {
    pub(super) fn maybe_roll(&mut self, batch_len: u64, record_count: u32) -> Result<()> {
        let segment = &self.active;
        let end = segment.end_position();
        if end == SEGMENT_HEADER_BYTES {
            if end + batch_len <= segment.capacity() {
                return Ok(());
            }
            // An empty segment too small for this batch: a batch larger than
            // segment_bytes. Replace it with one big enough.
            return self.roll(batch_len);
        }
        let full = end + batch_len > self.config.segment_bytes.min(segment.capacity());
        let aged = self.config.segment_ms.is_some_and(|ms| {
            self.options
                .clock
                .now_ms()
                .saturating_sub(segment.created_ms)
                >= ms as i64
        });
        let relative_full = segment.next_offset() - segment.base_offset + u64::from(record_count)
            > u64::from(u32::MAX);
        if full || aged || relative_full {
            self.roll(batch_len)?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the current end offset.
    fn roll(&mut self, min_capacity: u64) -> Result<()> {
        // No zeroing into a segment being sealed (and truncated).
        self.zero.detach();
        let durable = self.shared.durable.clone();
        let old = self.active.clone();
        let base = self.shared.next_offset.load(Ordering::Relaxed);
        let mut segments: Vec<Arc<Segment>> = self.shared.segments().as_ref().clone();
        if old.end_position() == SEGMENT_HEADER_BYTES {
            // Nothing in it: drop it instead of sealing an empty segment.
            segments.pop();
            self.shared.set_segments(segments.clone());
            let removed = recovery::remove_segment_files(
                self.options.vfs.as_ref(),
                &self.shared.dir,
                old.base_offset,
            );
            durable.fail_on_error(removed)?;
        } else {
            let sealed = old.seal(&mut self.cursor);
            durable.fail_on_error(sealed)?;
            // The sealed segment's name must be durable before a newer segment can
            // exist: recovery trusts every segment but the last without a scan.
            let dir = &self.shared.dir;
            let synced = self
                .options
                .vfs
                .sync_dir(dir)
                .map_err(|e| Error::io("syncing directory", dir, e));
            durable.fail_on_error(synced)?;
        }
        let created = Self::create_segment(
            &self.shared.dir,
            &self.config,
            &self.options,
            base,
            min_capacity,
        );
        let segment = match created {
            Ok(segment) => Arc::new(segment),
            Err(error) => {
                // Typically ENOSPC. Nothing was acknowledged in the new file: remove what
                // was made of it and keep appending to the old segment until a roll
                // succeeds. The old one is sealed on disk, which is still a valid state.
                let vfs = self.options.vfs.as_ref();
                let _ = recovery::remove_segment_files(vfs, &self.shared.dir, base);
                self.allocated_bytes = self.active.end_position();
                let end = self.active.end_position();
                self.zero.attach(self.active.clone(), end, end);
                if old.end_position() == SEGMENT_HEADER_BYTES {
                    // The empty old segment was removed above: a log must have one.
                    durable.fail(&error);
                }
                return Err(error);
            }
        };
        durable.note_dir_change(Some(&segment.file));
        segments.push(segment.clone());
        self.shared.set_segments(segments);
        self.allocated_bytes = segment
            .file
            .file()
            .metadata()
            .map_err(|e| Error::io("reading segment size", &segment.path, e))?
            .len();
        self.zero.attach(
            segment.clone(),
            segment.end_position(),
            self.allocated_bytes,
        );
        self.active = segment;
        self.cursor = IndexCursor::new(self.config.index_interval_bytes);
        Ok(())
    }
}
