//! Server and topic statistics.

use protocol::ops::stats::{
    PartitionCounters, ServerStatsResponse, TopicCounters, TopicStatsRequest, TopicStatsResponse,
};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::stats::sum;

/// Uptime, connections, per-topic counters and rates.
pub fn server(broker: &Broker) -> ServerStatsResponse {
    let topics = broker
        .topics
        .list()
        .into_iter()
        .filter(|t| !t.internal)
        .map(|t| TopicCounters {
            topic: t.name.clone(),
            counters: sum(t
                .partitions
                .iter()
                .map(|p| broker.stats.partition_counters(&t.name, p.id, p.counters()))),
        })
        .collect();
    ServerStatsResponse {
        uptime_ms: broker.stats.uptime_ms(),
        connections: broker.stats.connections(),
        topics,
    }
}

/// One topic's counters, total and per partition.
pub fn topic(
    broker: &Broker,
    request: TopicStatsRequest,
) -> Result<TopicStatsResponse, BrokerError> {
    let topic = broker.topics.get(&request.topic)?;
    let partitions: Vec<PartitionCounters> = topic
        .partitions
        .iter()
        .map(|p| PartitionCounters {
            partition: p.id,
            counters: broker
                .stats
                .partition_counters(&topic.name, p.id, p.counters()),
        })
        .collect();
    let total = sum(partitions.iter().map(|p| p.counters));
    Ok(TopicStatsResponse {
        topic: topic.name.clone(),
        total,
        partitions,
    })
}
