//! Waiting for new data on any of several partitions.

use std::sync::Arc;
use std::time::Duration;

use crate::partition::Partition;

/// Waits until one of `reads` (a partition and the offset a reader is at) has data at
/// or after its offset, or `timeout` passes. With nothing to watch it sleeps for the
/// timeout, so a caller's loop never spins.
pub async fn wait_for_any(reads: &[(Arc<Partition>, u64)], timeout: Duration) {
    if reads.is_empty() {
        tokio::time::sleep(timeout).await;
        return;
    }
    // One timer for the whole wait, not one per partition: with a thousand partitions
    // a thousand timers set and cleared on every wait cost more than the waiting.
    let waits = reads
        .iter()
        .map(|(partition, offset)| Box::pin(partition.data_past(*offset)));
    let _ = tokio::time::timeout(timeout, futures_util::future::select_all(waits)).await;
}
