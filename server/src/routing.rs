//! Choosing a partition for a produce request.

use protocol::ops::produce::PartitionSelector;

use crate::error::BrokerError;
use crate::topics::Topic;

/// The partition for a record key: FNV-1a (32-bit) of the key, modulo the partition
/// count. Clients that partition on their side use the same function
/// (`protocol::ops::produce::partition_for_key`), so both agree.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    protocol::ops::produce::partition_for_key(key, partitions)
}

/// Resolves a selector to a partition number of `topic`.
pub fn select(topic: &Topic, selector: &PartitionSelector) -> Result<u32, BrokerError> {
    let partition = match selector {
        PartitionSelector::Partition(p) => *p,
        PartitionSelector::Key(key) => partition_for_key(key, topic.config.partitions),
        PartitionSelector::Any => topic.next_round_robin(),
    };
    topic.partition(partition).map(|p| p.id)
}
