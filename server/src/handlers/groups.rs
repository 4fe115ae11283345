//! Consumer group requests, and their administration (version 2: DeleteGroup,
//! ResetOffsets, PurgeGroup), each of which writes one audit line (`target: "audit"`)
//! naming the client and what changed.

use protocol::ops::group::{
    DescribeGroupRequest, DescribeGroupResponse, GroupMode, GroupSummary, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, ListGroupsResponse,
    MemberInfo,
};
use protocol::ops::offsets::{
    CommitOffsetsRequest, CommittedOffset, FetchOffsetsRequest, FetchOffsetsResponse,
};

use std::sync::Arc;

use protocol::ops::group_admin::{
    DeleteGroupRequest, PurgeGroupRequest, PurgeGroupResponse, ResetOffset, ResetOffsetsRequest,
    ResetOffsetsResponse, ResetTarget,
};

use super::Actor;
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::group::JoinRequest;
use crate::traces;

use super::members::SessionMembers;

/// Joins (or rejoins) a group; the session remembers a stream membership.
pub async fn join(
    broker: Arc<Broker>,
    request: JoinGroupRequest,
    client_name: Arc<str>,
    members: SessionMembers,
) -> Result<JoinGroupResponse, BrokerError> {
    if broker.kafka_groups.is_live(&request.group) {
        return Err(BrokerError::InvalidRequest(format!(
            "group {:?} has Kafka-protocol members; a group uses one protocol at a time",
            request.group
        )));
    }
    let joined = broker
        .groups
        .join(JoinRequest {
            group: &request.group,
            topic: &request.topic,
            member_id: &request.member_id,
            session_timeout_ms: request.session_timeout_ms,
            mode: request.mode,
            start: request.start,
            client_name: &client_name,
            config: &request.config,
        })
        .await?;
    if request.mode == GroupMode::Stream {
        members.record(&request.group, &joined.member_id, &request.topic);
    }
    Ok(joined)
}

/// Keeps a membership alive, releases what the member's applied generation revoked
/// from it, and reports what it is told now.
///
/// The session learns (or forgets) the membership here too, so a client that
/// reconnected with the member id it had is known again by its next heartbeat.
pub fn heartbeat(
    broker: &Broker,
    members: &SessionMembers,
    request: HeartbeatRequest,
) -> Result<HeartbeatResponse, BrokerError> {
    let (group, member_id) = (&request.group, &request.member_id);
    let assignment = match broker
        .groups
        .heartbeat(group, member_id, request.generation)
    {
        Ok(assignment) => assignment,
        Err(error) => {
            members.forget(group, member_id);
            return Err(error);
        }
    };
    if !members.knows(group, member_id) {
        if let Some(topic) = broker.groups.stream_topic(group) {
            members.record(group, member_id, &topic);
        }
    }
    Ok(HeartbeatResponse {
        generation: assignment.generation,
        partitions: assignment.partitions,
    })
}

/// Leaves a group.
pub fn leave(
    broker: &Broker,
    members: &SessionMembers,
    request: LeaveGroupRequest,
) -> Result<(), BrokerError> {
    members.forget(&request.group, &request.member_id);
    broker.groups.leave(&request.group, &request.member_id)
}

/// Commits offsets durably, and records the commit spans of the traced messages it
/// passed.
pub async fn commit(
    broker: Arc<Broker>,
    request: CommitOffsetsRequest,
    members: SessionMembers,
) -> Result<(), BrokerError> {
    let received_us = traces::now_us();
    let offsets: Vec<(u32, u64)> = request
        .offsets
        .iter()
        .map(|o| (o.partition, o.offset))
        .collect();
    let topic = broker.topics.get(&request.topic)?;
    for (partition, _) in &offsets {
        topic.partition(*partition)?;
    }
    broker
        .groups
        .commit(
            &request.group,
            &request.member_id,
            request.generation,
            &request.topic,
            &offsets,
        )
        .await?;
    if !members.knows(&request.group, &request.member_id) {
        members.record(&request.group, &request.member_id, &request.topic);
    }
    broker
        .traces
        .on_commit(&request.group, &request.topic, &offsets, received_us);
    Ok(())
}

/// Committed offsets of every partition of the topic.
pub fn fetch_offsets(
    broker: &Broker,
    request: FetchOffsetsRequest,
) -> Result<FetchOffsetsResponse, BrokerError> {
    let topic = broker.topics.get(&request.topic)?;
    let store = broker.groups.offsets();
    let offsets = topic
        .partitions
        .iter()
        .map(|p| CommittedOffset {
            partition: p.id,
            offset: store.get(&request.group, &request.topic, p.id),
        })
        .collect();
    Ok(FetchOffsetsResponse { offsets })
}

/// All groups: the registry's, the live native ones, and the live Kafka-protocol
/// ones (their members counted), even before their first commit.
pub fn list(broker: &Broker) -> ListGroupsResponse {
    let mut groups = broker.groups.list();
    let known = groups.len();
    for kafka in broker.kafka_groups.list() {
        let members = u32::try_from(kafka.members).unwrap_or(u32::MAX);
        let generation = u32::try_from(kafka.generation).unwrap_or(0);
        match groups[..known].binary_search_by(|g| g.group.as_str().cmp(&kafka.group)) {
            // In the registry from an earlier commit; its members are Kafka's.
            Ok(i) if groups[i].members == 0 => {
                groups[i].members = members;
                groups[i].generation = generation;
            }
            Ok(_) => {}
            // Not yet committed: only the Kafka coordinator knows it, and its members
            // name its topic.
            Err(_) => groups.push(GroupSummary {
                topic: broker
                    .kafka_groups
                    .describe(&kafka.group)
                    .and_then(|d| d.topic())
                    .unwrap_or_default(),
                group: kafka.group,
                mode: GroupMode::Stream,
                members,
                generation,
            }),
        }
    }
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    ListGroupsResponse { groups }
}

/// One group in detail; a group with Kafka-protocol members lists them, with the
/// partitions of the group's topic their assignment names. A Kafka group that has
/// not committed yet is described from its members alone (no registry entry names
/// its topic: [`crate::kafka::group::Described::topic`] picks one).
pub fn describe(
    broker: &Broker,
    request: DescribeGroupRequest,
) -> Result<DescribeGroupResponse, BrokerError> {
    let kafka = broker.kafka_groups.describe(&request.group);
    let mut described = match (broker.groups.describe(&request.group), &kafka) {
        (Err(BrokerError::UnknownGroup(_)), Some(kafka)) => broker
            .groups
            .describe_unregistered(&request.group, kafka.topic().as_deref())?,
        (described, _) => described?,
    };
    if let Some(kafka) = kafka.filter(|_| described.members.is_empty()) {
        let topic = described.topic.clone();
        described.generation = u32::try_from(kafka.generation).unwrap_or(0);
        described.members = kafka
            .members
            .iter()
            .map(|m| MemberInfo {
                member_id: m.join.member_id.clone(),
                client_name: m.join.client_id.clone(),
                session_timeout_ms: u32::try_from(m.join.session_timeout_ms).unwrap_or(u32::MAX),
                partitions: crate::kafka::group::assigned_partitions(&m.assignment, &topic),
            })
            .collect();
    }
    Ok(described)
}

/// Deletes a group without active members, with its commits or queue state.
pub async fn delete(
    broker: Arc<Broker>,
    request: DeleteGroupRequest,
    actor: Actor,
) -> Result<(), BrokerError> {
    let topic = broker.groups.delete(&request.group).await?;
    tracing::info!(target: "audit", op = "DeleteGroup", client = %actor.client, principal = %actor.principal, group = %request.group, topic = %topic, "group deleted");
    Ok(())
}

/// Moves a stream group's committed offsets.
pub async fn reset_offsets(
    broker: Arc<Broker>,
    request: ResetOffsetsRequest,
    actor: Actor,
) -> Result<ResetOffsetsResponse, BrokerError> {
    let (topic, offsets) = broker
        .groups
        .reset_offsets(
            &request.group,
            &request.topic,
            request.partition,
            request.to,
        )
        .await?;
    let to = match request.to {
        ResetTarget::Earliest => "earliest".to_string(),
        ResetTarget::Latest => "latest".to_string(),
        ResetTarget::Offset(offset) => format!("offset {offset}"),
        ResetTarget::Timestamp(ms) => format!("time {ms} ms"),
    };
    tracing::info!(target: "audit", op = "ResetOffsets", client = %actor.client, principal = %actor.principal, group = %request.group, topic = %topic, to = %to, offsets = ?offsets, "group offsets reset");
    Ok(ResetOffsetsResponse {
        topic,
        offsets: offsets
            .into_iter()
            .map(|(partition, offset)| ResetOffset { partition, offset })
            .collect(),
    })
}

/// Drops a queue group's pending, in-flight and retry state: it starts at the end.
pub async fn purge(
    broker: Arc<Broker>,
    request: PurgeGroupRequest,
    actor: Actor,
) -> Result<PurgeGroupResponse, BrokerError> {
    let (topic, dropped) = broker.groups.purge(&request.group).await?;
    tracing::info!(target: "audit", op = "PurgeGroup", client = %actor.client, principal = %actor.principal, group = %request.group, topic = %topic, dropped, "queue group purged");
    Ok(PurgeGroupResponse { dropped })
}
