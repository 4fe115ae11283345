//! Per consumer group and partition: committed offset and lag, exactly as
//! `DescribeGroup` (and so `brokerctl groups describe`) reports them, since they are
//! read through [`Groups::describe`]; for queue groups also the messages in flight,
//! waiting for a retry and dead-lettered, and the group's redeliveries. Groups are
//! read from the live list, so a deleted group's series are gone at the next scrape.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use protocol::ops::group::{DescribeGroupResponse, GroupMode};

use super::{counters, gauges};
use crate::group::{mode_name, Groups};
use crate::queue::Queues;

/// One described group, with its partition numbers as label values.
struct Described {
    group: DescribeGroupResponse,
    partitions: Vec<String>,
    /// Queue groups: messages redelivered since the broker started.
    redeliveries: Option<u64>,
}

type Labels<'a> = [(&'static str, &'a str); 3];

pub(super) fn encode(
    encoder: &mut DescriptorEncoder,
    groups: &Groups,
    queues: &Queues,
) -> fmt::Result {
    // A group whose topic was deleted a moment ago fails to describe: it is left out,
    // as it will be from the list at the next scrape.
    let described: Vec<Described> = groups
        .list()
        .into_iter()
        .filter_map(|summary| {
            let group = groups.describe(&summary.group).ok()?;
            let partitions = group
                .partitions
                .iter()
                .map(|p| p.partition.to_string())
                .collect();
            let redeliveries = (group.mode == GroupMode::Queue)
                .then(|| queues.get(&group.group).map(|q| q.redeliveries()))
                .flatten();
            Some(Described {
                group,
                partitions,
                redeliveries,
            })
        })
        .collect();
    gauges(
        encoder,
        "brokerd_group_members",
        "Members of the consumer group.",
        described.iter().map(|d| {
            let g = &d.group;
            let labels = [
                ("group", g.group.as_str()),
                ("topic", g.topic.as_str()),
                ("mode", mode_name(g.mode)),
            ];
            (labels, g.members.len() as u64)
        }),
    )?;
    let each = |value: fn(&protocol::ops::group::GroupPartitionInfo) -> Option<u64>| {
        described.iter().flat_map(move |d| {
            d.group
                .partitions
                .iter()
                .zip(&d.partitions)
                .filter_map(move |(p, id)| {
                    let labels: Labels = [
                        ("group", d.group.group.as_str()),
                        ("topic", d.group.topic.as_str()),
                        ("partition", id),
                    ];
                    value(p).map(|v| (labels, v))
                })
        })
    };
    gauges(
        encoder,
        "brokerd_group_committed_offset",
        "The group's committed offset on the partition (queue groups: the ack floor, below which everything is settled); absent until one is committed.",
        each(|p| p.committed_offset),
    )?;
    gauges(
        encoder,
        "brokerd_group_lag_messages",
        "Records between the group's committed offset (or the log start) and the partition's end: the lag of `brokerctl groups describe`.",
        each(|p| Some(p.lag)),
    )?;
    gauges(
        encoder,
        "brokerd_queue_in_flight_messages",
        "Queue group: messages delivered and not yet acked, nacked or expired.",
        each(|p| p.queue.map(|q| q.in_flight)),
    )?;
    gauges(
        encoder,
        "brokerd_queue_retry_scheduled_messages",
        "Queue group: messages nacked or expired, waiting for their redelivery time.",
        each(|p| p.queue.map(|q| q.waiting_retry)),
    )?;
    counters(
        encoder,
        "brokerd_queue_dead_lettered_messages",
        "Queue group: messages moved to the dead-letter topic after too many attempts (kept across restarts; a purge starts it over).",
        each(|p| p.queue.map(|q| q.dead_lettered)),
    )?;
    counters(
        encoder,
        "brokerd_queue_redeliveries",
        "Queue group: messages delivered again after a nack or an expired lease, since the broker started.",
        described.iter().filter_map(|d| {
            let labels = [("group", d.group.group.as_str()), ("topic", d.group.topic.as_str())];
            d.redeliveries.map(|n| (labels, n))
        }),
    )
}
