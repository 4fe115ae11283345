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
use crate::vfs::VfsFile;

use super::{allocated_len, Log};

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
        let clock = self.options.clock.as_ref();
        let aged = self.config.segment_ms.is_some_and(|ms| {
            let age = self
                .ages
                .since_created(segment.base_offset, segment.created_ms, clock);
            age >= ms
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
        let base = self.shared.next_offset.load(Ordering::Relaxed);
        // Segments are contiguous: recovery reports a gap between them as lost data.
        assert_eq!(
            base,
            self.active.next_offset(),
            "a new segment starts where the active one ends"
        );
        let mut segments: Vec<Arc<Segment>> = self.shared.segments().as_ref().clone();
        let old_is_empty = self.active.end_position() == SEGMENT_HEADER_BYTES;
        if old_is_empty {
            // Nothing in it: drop it instead of sealing an empty segment.
            segments.pop();
            self.shared.set_segments(segments.clone());
            let removed = recovery::remove_segment_files(
                self.options.vfs.as_ref(),
                &self.shared.dir,
                self.active.base_offset,
            );
            self.shared.durable.fail_on_error(removed)?;
        } else {
            self.seal_active()?;
            let clock = self.options.clock.clone();
            self.ages.sealed(self.active.base_offset, clock.as_ref());
        }
        let created = Self::create_segment(
            &self.shared.dir,
            &self.config,
            &self.options,
            base,
            min_capacity,
        );
        match created {
            Ok((segment, file)) => self.start_segment(Arc::new(segment), file, segments),
            Err(error) => {
                self.stay_in_old_segment(base, old_is_empty, &error);
                Err(error)
            }
        }
    }

    /// Seals the active segment, then syncs the directory: the sealed segment's name
    /// must be durable before a newer segment can exist, since recovery trusts every
    /// segment but the last without a scan.
    fn seal_active(&mut self) -> Result<()> {
        let durable = &self.shared.durable;
        let sealed = self.active.seal(
            self.active_file.as_ref(),
            &self.active_maps,
            &mut self.cursor,
        );
        durable.fail_on_error(sealed)?;
        durable.note_sealed(&self.active_file);
        // Sealed: its maps are the budget's from now on, closed when others are read.
        self.active.hand_maps_to_budget();
        let dir = &self.shared.dir;
        let synced = self
            .options
            .vfs
            .sync_dir(dir)
            .map_err(|e| Error::io("syncing directory", dir, e));
        durable.fail_on_error(synced)
    }

    /// Makes a newly created segment the active one.
    fn start_segment(
        &mut self,
        segment: Arc<Segment>,
        file: Arc<dyn VfsFile>,
        mut segments: Vec<Arc<Segment>>,
    ) -> Result<()> {
        debug_assert!(
            segment.end_position() == SEGMENT_HEADER_BYTES
                && segment.base_offset == self.shared.next_offset.load(Ordering::Relaxed),
            "a new segment is empty and starts at the log's end offset"
        );
        self.shared.durable.note_dir_change(Some(&file));
        segments.push(segment.clone());
        self.shared.set_segments(segments);
        self.allocated_bytes = allocated_len(file.as_ref(), &segment.path)?;
        let maps = segment.maps()?;
        self.zero.attach(
            segment.clone(),
            file.clone(),
            segment.end_position(),
            self.allocated_bytes,
        );
        self.ages
            .created(segment.base_offset, self.options.clock.as_ref());
        self.active = segment;
        // The sealed segment's file closes here (its maps went to the budget).
        self.active_file = file;
        self.active_maps = maps;
        self.cursor = IndexCursor::new(self.config.index_interval_bytes);
        Ok(())
    }

    /// After the segment at `base` could not be created (typically ENOSPC). Nothing
    /// was acknowledged in the new file: remove what was made of it and keep appending
    /// to the old segment until a roll succeeds. The old one is sealed on disk, which
    /// is still a valid state, unless it was empty and so removed: then the log has no
    /// segment left to append to, and fails.
    fn stay_in_old_segment(&mut self, base: u64, old_was_removed: bool, error: &Error) {
        let vfs = self.options.vfs.as_ref();
        let _ = recovery::remove_segment_files(vfs, &self.shared.dir, base);
        self.allocated_bytes = self.active.end_position();
        let end = self.active.end_position();
        self.zero
            .attach(self.active.clone(), self.active_file.clone(), end, end);
        if old_was_removed {
            self.shared.durable.fail(error);
        }
    }
}
