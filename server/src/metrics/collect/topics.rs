//! Per partition: traffic in and out, log start and end offsets, size; per internal
//! topic: records and bytes held. Read from the live topics, so a deleted topic's
//! series are gone at the next scrape.

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::DescriptorEncoder;

use super::{counters, gauges};
use crate::partition::Partition;
use crate::topics::{Topic, Topics};

/// A partition's labels.
type PartitionLabels<'a> = [(&'static str, &'a str); 2];

pub(super) fn encode(encoder: &mut DescriptorEncoder, topics: &Topics) -> fmt::Result {
    encode_budgets(encoder, topics)?;
    let topics = topics.list();
    // Partition numbers as label values, formatted once per scrape.
    let numbers: Vec<Vec<String>> = topics
        .iter()
        .map(|t| t.partitions.iter().map(|p| p.id.to_string()).collect())
        .collect();
    let each = |value: fn(&Partition) -> u64| {
        let numbers = &numbers;
        topics.iter().zip(numbers).flat_map(move |(topic, ids)| {
            topic.partitions.iter().zip(ids).map(move |(p, id)| {
                let labels: PartitionLabels = [("topic", topic.name.as_str()), ("partition", id)];
                (labels, value(p))
            })
        })
    };
    counters(
        encoder,
        "brokerd_partition_messages_in",
        "Records appended to the partition since the broker started.",
        each(|p| p.traffic().read().messages_in),
    )?;
    counters(
        encoder,
        "brokerd_partition_bytes_in",
        "Batch bytes appended to the partition since the broker started.",
        each(|p| p.traffic().read().bytes_in),
    )?;
    counters(
        encoder,
        "brokerd_partition_messages_out",
        "Records delivered from the partition (fetches, subscription pushes, queue deliveries; a redelivery counts again) since the broker started.",
        each(|p| p.traffic().read().messages_out),
    )?;
    counters(
        encoder,
        "brokerd_partition_bytes_out",
        "Batch bytes delivered from the partition since the broker started.",
        each(|p| p.traffic().read().bytes_out),
    )?;
    gauges(
        encoder,
        "brokerd_partition_log_start_offset",
        "First offset the partition's log holds.",
        each(Partition::start_offset),
    )?;
    gauges(
        encoder,
        "brokerd_partition_log_end_offset",
        "Offset the partition's next append gets.",
        each(Partition::end_offset),
    )?;
    gauges(
        encoder,
        "brokerd_partition_size_bytes",
        "Batch bytes the partition's log holds.",
        each(Partition::size_bytes),
    )?;
    encode_internal(encoder, &topics)
}

fn encode_internal(encoder: &mut DescriptorEncoder, topics: &[Arc<Topic>]) -> fmt::Result {
    let internal = || {
        topics
            .iter()
            .filter(|t| t.internal)
            .map(|t| ([("topic", t.name.as_str())], t))
    };
    gauges(
        encoder,
        "brokerd_internal_topic_messages",
        "Records an internal topic holds (committed offsets, queue state, registry, routes, spans, users, ACLs); compaction brings it down.",
        internal().map(|(l, t)| (l, t.messages())),
    )?;
    gauges(
        encoder,
        "brokerd_internal_topic_size_bytes",
        "Batch bytes an internal topic holds.",
        internal().map(|(l, t)| (l, t.size_bytes())),
    )
}

/// The index write handle budget (`[storage] index_handles`) and the mapped segment
/// budget (`[storage] mapped_segments`): how full each is, and how often a write or a
/// read had to open again what the budget closed.
fn encode_budgets(encoder: &mut DescriptorEncoder, topics: &Topics) -> fmt::Result {
    let handles = topics.index_handles();
    let none: [(&str, &str); 0] = [];
    gauges(
        encoder,
        "brokerd_index_handles_open",
        "Index files of active segments held open for writing now (at most brokerd_index_handles_budget).",
        [(none, handles.open as u64)],
    )?;
    gauges(
        encoder,
        "brokerd_index_handles_budget",
        "Most index files held open for writing at once ([storage] index_handles).",
        [(none, handles.budget as u64)],
    )?;
    counters(
        encoder,
        "brokerd_index_handles_reopened",
        "Index writes that found their file closed by the budget and opened it again; a steady rise means the budget, not the partitions' traffic, decides the descriptors.",
        [(none, handles.reopened)],
    )?;
    let mapped = topics.mapped_segments();
    gauges(
        encoder,
        "brokerd_mapped_segments_open",
        "Sealed segments mapped now and counted against the budget (three maps each); active segments are not counted.",
        [(none, mapped.open as u64)],
    )?;
    gauges(
        encoder,
        "brokerd_mapped_segments_budget",
        "Most sealed segments kept mapped between reads ([storage] mapped_segments).",
        [(none, mapped.budget as u64)],
    )?;
    counters(
        encoder,
        "brokerd_mapped_segments_reopened",
        "Reads that found their sealed segment unmapped and mapped it again.",
        [(none, mapped.reopened)],
    )
}
