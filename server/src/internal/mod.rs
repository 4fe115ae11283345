//! The broker's internal topics: the one plumbing every piece of broker state that
//! lives on a topic of its own goes through.
//!
//! Committed offsets (`__consumer_offsets`), queue delivery state (`__queue_state`),
//! the service registry (`__registry`), routing rules (`__routes`) and trace spans
//! (`__traces`) each keep an in-memory state and an [`InternalLog`] of its changes.
//! The log does the rest, the same way for all of them: open (creating the topic) and
//! replay, append records in batches of at most [`MAX_BATCH_BYTES`], wait for
//! durability for at most [`DURABLE_TIMEOUT`], and compact by the one policy of
//! [`compaction_due`]. Their record layouts live in `protocol::internal`, since
//! clients read them too; this module never parses bytes itself.
//!
//! What the users of this module keep is only their own: the state, how a record
//! changes it (`apply`), and what restates it (`snapshot`).

mod log;

use std::time::Duration;

pub use log::InternalLog;

/// Largest batch appended to an internal topic, bytes: records are gathered into
/// batches up to this size, far below `protocol::batch::MAX_BATCH_BYTES`, so a
/// snapshot of any size appends as several batches instead of failing.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// How long an internal append waits to become durable before its request fails.
pub const DURABLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Records an internal topic holds at least before it is compacted.
pub const COMPACT_AFTER_RECORDS: u64 = 10_000;
/// How often every compactable internal topic is considered for compaction.
pub const COMPACTION_INTERVAL: Duration = Duration::from_secs(10);

/// The one compaction policy: a log of `records` records whose live state restates
/// as `snapshot_records` records is compacted once it holds at least
/// [`COMPACT_AFTER_RECORDS`] and at least twice the snapshot. So the topic stays
/// proportional to the live state, and a large live state is not rewritten on every
/// check. Stated in `docs/storage.md` ("Internal topics").
pub fn compaction_due(records: u64, snapshot_records: u64) -> bool {
    records >= COMPACT_AFTER_RECORDS && records >= snapshot_records.saturating_mul(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_waits_for_enough_records_and_twice_the_snapshot() {
        assert!(!compaction_due(COMPACT_AFTER_RECORDS - 1, 0));
        assert!(compaction_due(COMPACT_AFTER_RECORDS, 0));
        assert!(compaction_due(
            COMPACT_AFTER_RECORDS,
            COMPACT_AFTER_RECORDS / 2
        ));
        assert!(!compaction_due(
            COMPACT_AFTER_RECORDS,
            COMPACT_AFTER_RECORDS / 2 + 1
        ));
        assert!(compaction_due(60_000, 30_000));
        assert!(!compaction_due(u64::MAX - 1, u64::MAX / 2 + 1));
    }
}
