//! Choosing a partition for a produce request: explicit, by key, or round-robin.
//! (Routing *rules*, which choose topics by routing key, are [`crate::routes`].)

use protocol::ops::produce::{partition_for_key, PartitionSelector};

use crate::error::BrokerError;
use crate::topics::Topic;

/// Resolves a selector to a partition number of `topic`.
pub fn select(topic: &Topic, selector: &PartitionSelector) -> Result<u32, BrokerError> {
    let partition = match selector {
        PartitionSelector::Partition(p) => *p,
        // FNV-1a of the key, the same function clients that partition on their
        // side use, so both agree.
        PartitionSelector::Key(key) => partition_for_key(key, topic.config.partitions),
        PartitionSelector::Any => topic.next_round_robin(),
    };
    topic.partition(partition).map(|p| p.id)
}
