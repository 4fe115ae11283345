//! Typed request/response calls: topic administration, stats, group inspection, and
//! the raw fetch and group-membership calls the producer and consumer are built on.
//!
//! Each method sends one request and unpacks the one response variant it expects;
//! any other variant is a [`ClientError::Protocol`]. Results are the protocol crate's
//! own types, re-exported from this crate's root, so there is one definition of each.

use std::time::Duration;

use bytes::Bytes;
use protocol::ops::fetch::{FetchRequest, FetchResponse};
use protocol::ops::group::{
    DescribeGroupRequest, DescribeGroupResponse, GroupMode, GroupStart, GroupSummary,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
};
use protocol::ops::group_admin::{
    DeleteGroupRequest, PurgeGroupRequest, ResetOffsetsRequest, ResetOffsetsResponse, ResetTarget,
};
use protocol::ops::offsets::{
    CommitOffsetsRequest, CommittedOffset, FetchOffsetsRequest, PartitionOffset,
};
use protocol::ops::produce::{
    AckLevel, PartitionSelector, ProduceRequest, ProduceResponse, ProducerSequence,
};
use protocol::ops::stats::{ServerStatsResponse, TopicStatsRequest, TopicStatsResponse};
use protocol::ops::topic::{
    AlterTopicRequest, ConfigEntry, CreatePartitionsRequest, CreateTopicRequest,
    DeleteTopicRequest, DescribeTopicRequest, DescribeTopicResponse, ListTopicsRequest,
    TopicSummary,
};
use protocol::ops::Empty;
use protocol::{Request, Response};

use crate::connection::Client;
use crate::error::ClientError;

/// Unpacks the expected response variant, or reports what came instead.
macro_rules! expect_response {
    ($response:expr, $variant:ident) => {
        match $response {
            Response::$variant(body) => Ok(body),
            other => Err(ClientError::unexpected(stringify!($variant), &other)),
        }
    };
}
pub(crate) use expect_response;

/// Key-value pairs as the protocol's config entries (topic settings, group
/// overrides, route headers, registry tags).
pub(crate) fn entries<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Vec<ConfigEntry> {
    pairs
        .iter()
        .map(|(key, value)| ConfigEntry {
            key: key.as_ref().to_string(),
            value: value.as_ref().to_string(),
        })
        .collect()
}

impl Client {
    /// Asks the broker for a new idempotent producer id (protocol version 2). The
    /// [`Producer`](crate::Producer) does this itself; use it to tag `Produce`
    /// requests sent with [`request`](Self::request).
    pub async fn init_producer(&self) -> Result<u64, ClientError> {
        let response = self.request(Request::InitProducer(Empty)).await?;
        Ok(expect_response!(response, InitProducer)?.producer_id)
    }

    /// Creates a topic with `partitions` partitions and settings that differ from the
    /// broker's defaults: `retention_bytes`, `retention_ms`, `segment_bytes`,
    /// `durability` (`always`, `os` or `interval:<ms>`).
    ///
    /// ```no_run
    /// # async fn demo(client: client::Client) -> Result<(), client::ClientError> {
    /// client.create_topic("events", 8, &[("durability", "interval:100")]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        config: &[(&str, &str)],
    ) -> Result<(), ClientError> {
        let request = Request::CreateTopic(CreateTopicRequest {
            name: name.to_string(),
            partitions,
            config: entries(config),
        });
        let _: Empty = expect_response!(self.request(request).await?, CreateTopic)?;
        Ok(())
    }

    /// Changes settings of an existing topic while it serves (protocol version 2):
    /// `retention_ms`, `retention_bytes` and the queue settings; `durability` and
    /// `segment_bytes` are fixed at creation (`invalid_config`), partitions grow with
    /// [`create_partitions`](Self::create_partitions).
    ///
    /// ```no_run
    /// # async fn demo(client: client::Client) -> Result<(), client::ClientError> {
    /// client.alter_topic("events", &[("retention_ms", "3600000")]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn alter_topic(
        &self,
        name: &str,
        config: &[(&str, &str)],
    ) -> Result<(), ClientError> {
        let request = Request::AlterTopic(AlterTopicRequest {
            name: name.to_string(),
            config: entries(config),
        });
        let _: Empty = expect_response!(self.request(request).await?, AlterTopic)?;
        Ok(())
    }

    /// Grows a topic to `count` partitions, more than it has (protocol version 2).
    /// Keyed records then mostly go to other partitions than before; stream groups
    /// read the new partitions from their start.
    ///
    /// ```no_run
    /// # async fn demo(client: client::Client) -> Result<(), client::ClientError> {
    /// client.create_partitions("events", 16).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_partitions(&self, name: &str, count: u32) -> Result<(), ClientError> {
        let request = Request::CreatePartitions(CreatePartitionsRequest {
            name: name.to_string(),
            count,
        });
        let _: Empty = expect_response!(self.request(request).await?, CreatePartitions)?;
        Ok(())
    }

    /// Deletes a topic and all its data, and the routing rules whose destination it
    /// was.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ClientError> {
        let request = Request::DeleteTopic(DeleteTopicRequest {
            name: name.to_string(),
        });
        let _: Empty = expect_response!(self.request(request).await?, DeleteTopic)?;
        Ok(())
    }

    /// Lists topics, sorted by name; `include_internal` adds the broker's own.
    pub async fn list_topics(
        &self,
        include_internal: bool,
    ) -> Result<Vec<TopicSummary>, ClientError> {
        let request = Request::ListTopics(ListTopicsRequest { include_internal });
        Ok(expect_response!(self.request(request).await?, ListTopics)?.topics)
    }

    /// A topic's effective config and each partition's start and end offsets and size.
    pub async fn describe_topic(&self, name: &str) -> Result<DescribeTopicResponse, ClientError> {
        let request = Request::DescribeTopic(DescribeTopicRequest {
            name: name.to_string(),
        });
        expect_response!(self.request(request).await?, DescribeTopic)
    }

    /// Uptime, connection count and per-topic produce rates.
    pub async fn server_stats(&self) -> Result<ServerStatsResponse, ClientError> {
        expect_response!(
            self.request(Request::ServerStats(Empty)).await?,
            ServerStats
        )
    }

    /// One topic's produce counters, in total and per partition.
    pub async fn topic_stats(&self, topic: &str) -> Result<TopicStatsResponse, ClientError> {
        let request = Request::TopicStats(TopicStatsRequest {
            topic: topic.to_string(),
        });
        expect_response!(self.request(request).await?, TopicStats)
    }

    /// Every consumer group, sorted by name.
    pub async fn list_groups(&self) -> Result<Vec<GroupSummary>, ClientError> {
        Ok(expect_response!(self.request(Request::ListGroups(Empty)).await?, ListGroups)?.groups)
    }

    /// A group's members, assignments, committed offsets and lag per partition.
    pub async fn describe_group(&self, group: &str) -> Result<DescribeGroupResponse, ClientError> {
        let request = Request::DescribeGroup(DescribeGroupRequest {
            group: group.to_string(),
        });
        expect_response!(self.request(request).await?, DescribeGroup)
    }

    /// Appends one ready-made record batch (see [`protocol::batch::BatchBuilder`]).
    /// The [`Producer`](crate::Producer) batches for you; this is the raw call.
    pub async fn produce_batch(
        &self,
        topic: &str,
        partition: PartitionSelector,
        ack: AckLevel,
        timeout: Duration,
        batch: Bytes,
    ) -> Result<ProduceResponse, ClientError> {
        let (request, wait) = produce_request(topic, partition, ack, timeout, None, batch);
        let total = self.config().request_timeout.saturating_add(wait);
        expect_response!(self.call(request, total).await?, Produce)
    }

    /// Reads batches from one partition starting at `offset`, waiting up to `max_wait`
    /// for data if there is none yet. The answer's batches are whole stored batches:
    /// the first may start before `offset` (see [`decode_records`](crate::decode_records)).
    pub async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: u32,
        max_wait: Duration,
    ) -> Result<FetchResponse, ClientError> {
        let max_wait_ms = millis_u32(max_wait);
        let request = Request::Fetch(FetchRequest {
            topic: topic.to_string(),
            partition,
            offset,
            max_bytes,
            max_wait_ms,
        });
        let total = self.config().request_timeout.saturating_add(max_wait);
        expect_response!(self.call(request, total).await?, Fetch)
    }

    /// A group's committed offset for every partition of `topic` (`None` where
    /// nothing was committed).
    pub async fn fetch_offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Vec<CommittedOffset>, ClientError> {
        let request = Request::FetchOffsets(FetchOffsetsRequest {
            group: group.to_string(),
            topic: topic.to_string(),
        });
        Ok(expect_response!(self.request(request).await?, FetchOffsets)?.offsets)
    }

    /// Joins a stream-mode group as a new member (`member_id` empty) or rejoins.
    /// The [`Consumer`](crate::Consumer) does this for you.
    pub async fn join_group(
        &self,
        group: &str,
        topic: &str,
        member_id: &str,
        session_timeout: Duration,
        start: GroupStart,
    ) -> Result<JoinGroupResponse, ClientError> {
        let request = Request::JoinGroup(JoinGroupRequest {
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: member_id.to_string(),
            session_timeout_ms: millis_u32(session_timeout),
            mode: GroupMode::Stream,
            start,
            config: Vec::new(),
        });
        expect_response!(self.request(request).await?, JoinGroup)
    }

    /// Joins a queue-mode group (per-message acks, retries, dead letters), with
    /// optional per-group overrides of the topic's queue settings such as
    /// `("max_delivery_attempts", "3")`. The [`QueueConsumer`](crate::QueueConsumer)
    /// does this for you.
    pub async fn join_queue_group(
        &self,
        group: &str,
        topic: &str,
        member_id: &str,
        session_timeout: Duration,
        config: &[(&str, &str)],
    ) -> Result<JoinGroupResponse, ClientError> {
        let request = Request::JoinGroup(JoinGroupRequest {
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: member_id.to_string(),
            session_timeout_ms: millis_u32(session_timeout),
            mode: GroupMode::Queue,
            start: GroupStart::Earliest,
            config: entries(config),
        });
        expect_response!(self.request(request).await?, JoinGroup)
    }

    /// Deletes group `group` with its committed offsets or queue state. Refused
    /// (`invalid_request`) while the group has active members; needs a version-2
    /// broker.
    pub async fn delete_group(&self, group: &str) -> Result<(), ClientError> {
        let request = Request::DeleteGroup(DeleteGroupRequest {
            group: group.to_string(),
        });
        let _: Empty = expect_response!(self.request(request).await?, DeleteGroup)?;
        Ok(())
    }

    /// Moves stream group `group`'s committed offsets to `to`, on `partition` or on
    /// every partition; `topic` is the group's (or `""`), or the topic of a group that
    /// does not exist yet. Returns the topic and the offsets now committed. Refused
    /// while the group has active members; needs a version-2 broker.
    pub async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        partition: Option<u32>,
        to: ResetTarget,
    ) -> Result<ResetOffsetsResponse, ClientError> {
        let request = Request::ResetOffsets(ResetOffsetsRequest {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
            to,
        });
        expect_response!(self.request(request).await?, ResetOffsets)
    }

    /// Drops everything queue group `group` has pending, in flight or waiting for a
    /// retry, so that it starts at every partition's end; returns how many messages
    /// it dropped. Refused while the group has active members; needs a version-2
    /// broker.
    pub async fn purge_group(&self, group: &str) -> Result<u64, ClientError> {
        let request = Request::PurgeGroup(PurgeGroupRequest {
            group: group.to_string(),
        });
        Ok(expect_response!(self.request(request).await?, PurgeGroup)?.dropped)
    }

    /// Deletes a partition's records below `before_offset`; returns the new log start.
    pub async fn delete_records(
        &self,
        topic: &str,
        partition: u32,
        before_offset: u64,
    ) -> Result<u64, ClientError> {
        let request = Request::DeleteRecords(protocol::ops::topic::DeleteRecordsRequest {
            topic: topic.to_string(),
            partition,
            before_offset,
        });
        Ok(expect_response!(self.request(request).await?, DeleteRecords)?.log_start_offset)
    }

    /// Keeps a membership alive; the answer is the current generation and assignment.
    pub async fn heartbeat(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
    ) -> Result<HeartbeatResponse, ClientError> {
        let request = Request::Heartbeat(HeartbeatRequest {
            group: group.to_string(),
            member_id: member_id.to_string(),
            generation,
        });
        expect_response!(self.request(request).await?, Heartbeat)
    }

    /// Leaves a group now rather than when the session times out.
    pub async fn leave_group(&self, group: &str, member_id: &str) -> Result<(), ClientError> {
        let request = Request::LeaveGroup(LeaveGroupRequest {
            group: group.to_string(),
            member_id: member_id.to_string(),
        });
        let _: Empty = expect_response!(self.request(request).await?, LeaveGroup)?;
        Ok(())
    }

    /// Commits `(partition, next offset to read)` pairs for a member in a generation.
    /// Refused with `stale_generation` if the group has moved on.
    pub async fn commit_offsets(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
        topic: &str,
        offsets: &[(u32, u64)],
    ) -> Result<(), ClientError> {
        let request = Request::CommitOffsets(CommitOffsetsRequest {
            group: group.to_string(),
            member_id: member_id.to_string(),
            generation,
            topic: topic.to_string(),
            offsets: offsets
                .iter()
                .map(|&(partition, offset)| PartitionOffset { partition, offset })
                .collect(),
        });
        let _: Empty = expect_response!(self.request(request).await?, CommitOffsets)?;
        Ok(())
    }
}

/// The Produce request and how long the broker may take to acknowledge it.
pub(crate) fn produce_request(
    topic: &str,
    partition: PartitionSelector,
    ack: AckLevel,
    timeout: Duration,
    producer: Option<ProducerSequence>,
    batch: Bytes,
) -> (Request, Duration) {
    let request = Request::Produce(ProduceRequest {
        topic: topic.to_string(),
        partition,
        ack,
        timeout_ms: millis_u32(timeout),
        producer,
        batch,
    });
    (request, timeout)
}

/// Unpacks a Produce answer.
pub(crate) fn produce_response(response: Response) -> Result<ProduceResponse, ClientError> {
    expect_response!(response, Produce)
}

/// Unpacks a Subscribe answer.
pub(crate) fn subscribe_response(response: Response) -> Result<u64, ClientError> {
    Ok(expect_response!(response, Subscribe)?.subscription_id)
}

/// A duration as whole milliseconds for a `u32` wire field, saturating.
pub(crate) fn millis_u32(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_milliseconds_saturate() {
        assert_eq!(millis_u32(Duration::from_millis(1500)), 1500);
        assert_eq!(millis_u32(Duration::from_secs(u64::MAX)), u32::MAX);
    }

    #[test]
    fn wrong_response_kind_is_a_protocol_error() {
        let stats = Response::ServerStats(ServerStatsResponse {
            uptime_ms: 0,
            connections: 0,
            topics: Vec::new(),
        });
        let result: Result<HeartbeatResponse, _> = expect_response!(stats, Heartbeat);
        let err = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("Heartbeat") && err.contains("ServerStats"),
            "{err}"
        );
    }
}
