//! Retention and truncation: moving the log start forward and deleting whole sealed
//! segments below it.
//!
//! Both come down to one step, `delete_prefix`: the new log start is written to the
//! checkpoint and synced before any file is unlinked, so a crash in between finishes the
//! deletion at the next open instead of bringing the data back. The active segment is
//! never deleted, and readers that still hold a deleted segment keep its mapping.

use std::sync::atomic::Ordering;

use crate::error::Result;
use crate::recovery;

use super::Log;

/// What [`Log::enforce_retention`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Base offsets of the deleted segments.
    pub deleted_segments: Vec<u64>,
    /// Batch bytes deleted.
    pub deleted_bytes: u64,
}

impl Log {
    /// Changes the retention limits of a live log; the next
    /// [`enforce_retention`](Self::enforce_retention) applies them. Nothing else of the
    /// configuration can change while the log is open.
    pub fn set_retention(&mut self, retention_bytes: Option<u64>, retention_ms: Option<u64>) {
        self.config.retention_bytes = retention_bytes;
        self.config.retention_ms = retention_ms;
    }

    /// Deletes whole sealed segments beyond the configured size and age retention,
    /// oldest first. The active segment is never deleted.
    pub fn enforce_retention(&mut self) -> Result<RetentionOutcome> {
        // A failed log may have no segment at all (a roll that could not create the
        // next one): it refuses, like appends do, until it is reopened.
        self.shared.durable.check_failed()?;
        let segments = self.shared.segments();
        let Some(sealed_count) = segments.len().checked_sub(1) else {
            return Ok(RetentionOutcome::default());
        };
        let mut total: u64 = segments.iter().map(|s| s.data_bytes()).sum();
        let clock = self.options.clock.as_ref();
        let mut delete = 0;
        // A sealed segment's age is the time since its last append, by the broker's
        // clock (`age.rs`), never by the timestamps producers put in their records.
        for pair in segments[..sealed_count + 1].windows(2) {
            let (segment, next) = (&pair[0], &pair[1]);
            let over_size = self.config.retention_bytes.is_some_and(|max| total > max);
            let too_old = self.config.retention_ms.is_some_and(|ms| {
                let base = segment.base_offset;
                self.ages
                    .since_last_append(base, next.base_offset, next.created_ms, clock)
                    > ms
            });
            if !(over_size || too_old) {
                break;
            }
            total -= segment.data_bytes();
            delete += 1;
        }
        if delete == 0 {
            return Ok(RetentionOutcome::default());
        }
        let new_start = segments[delete].base_offset;
        self.delete_prefix(
            delete,
            new_start.max(self.shared.log_start_offset.load(Ordering::Acquire)),
        )
    }

    /// Makes `offset` the first offset of the log: reads below it fail from now on and
    /// sealed segments wholly below it are deleted. For compaction and DLQ purges.
    /// Offsets beyond the end are clamped to the end.
    pub fn truncate_before(&mut self, offset: u64) -> Result<RetentionOutcome> {
        self.shared.durable.check_failed()?;
        let offset = offset.min(self.shared.next_offset.load(Ordering::Acquire));
        if offset <= self.shared.log_start_offset.load(Ordering::Acquire) {
            return Ok(RetentionOutcome::default());
        }
        let segments = self.shared.segments();
        let sealed_count = segments.len().saturating_sub(1);
        let delete = segments[..sealed_count]
            .iter()
            .take_while(|s| s.next_offset() <= offset)
            .count();
        self.delete_prefix(delete, offset)
    }

    /// Makes `new_start` the log start, then deletes the first `count` segments.
    fn delete_prefix(&mut self, count: usize, new_start: u64) -> Result<RetentionOutcome> {
        let segments = self.shared.segments();
        // Offsets only move forward: the log start never goes back, nor past the end.
        assert!(
            new_start >= self.shared.log_start_offset.load(Ordering::Acquire),
            "the log start only moves forward"
        );
        debug_assert!(
            new_start <= self.shared.next_offset.load(Ordering::Acquire),
            "the log start never passes the end offset"
        );
        // Only sealed segments wholly below the new start go: never the active one,
        // never a record at or above the log start.
        assert!(
            count < segments.len(),
            "the active segment is never deleted"
        );
        assert!(
            segments[..count]
                .iter()
                .all(|s| s.next_offset() <= new_start),
            "only segments wholly below the log start are deleted"
        );
        // Persist the new start first: a crash after this point finishes the removal
        // at open instead of resurrecting the data.
        self.shared.durable.set_log_start(new_start)?;
        self.shared
            .log_start_offset
            .store(new_start, Ordering::Release);
        let (gone, kept) = segments.split_at(count);
        for segment in gone {
            self.ages.forget(segment.base_offset);
        }
        debug_assert!(
            kept[0].base_offset <= new_start,
            "the first segment kept holds the log start"
        );
        self.shared.set_segments(kept.to_vec());
        let mut outcome = RetentionOutcome::default();
        for segment in gone {
            // Readers holding the segment keep its map; unlinking does not disturb them.
            recovery::remove_segment_files(
                self.options.vfs.as_ref(),
                &self.shared.dir,
                segment.base_offset,
            )?;
            outcome.deleted_segments.push(segment.base_offset);
            outcome.deleted_bytes += segment.data_bytes();
        }
        if !gone.is_empty() {
            self.shared.durable.note_dir_change(None);
        }
        Ok(outcome)
    }
}
