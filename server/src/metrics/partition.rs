//! One partition's traffic counters: records and bytes appended (in) and delivered to
//! consumers (out). They live inside the partition, so the produce and delivery paths
//! reach them through the `Arc<Partition>` they already hold: one relaxed atomic add
//! per counter per appended run or delivery, no lookup. A deleted partition takes its
//! counters with it, and the scrape, which walks the live topics, stops showing them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Records and bytes in and out of one partition since the broker started.
#[derive(Debug, Default)]
pub struct PartitionCounters {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
}

/// A reading of [`PartitionCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Records appended.
    pub messages_in: u64,
    /// Batch bytes appended.
    pub bytes_in: u64,
    /// Records delivered (fetched, pushed to subscriptions, handed to queue members;
    /// a redelivery counts again).
    pub messages_out: u64,
    /// Batch bytes delivered.
    pub bytes_out: u64,
}

impl PartitionCounters {
    /// Counts an append of `messages` records in `bytes`.
    pub fn appended(&self, messages: u64, bytes: u64) {
        self.messages_in.fetch_add(messages, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a delivery of `messages` records in `bytes`.
    pub fn delivered(&self, messages: u64, bytes: u64) {
        self.messages_out.fetch_add(messages, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn read(&self) -> Traffic {
        Traffic {
            messages_in: self.messages_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}
