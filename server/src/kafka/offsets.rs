//! OffsetCommit and OffsetFetch: a Kafka group's committed offsets, kept where a
//! native group's are ([`crate::group::offsets::Offsets`] on `__consumer_offsets`,
//! durable before the commit is answered), so `brokerctl groups describe` shows
//! them and a group can move between protocols. Offsets are the same numbers on
//! both: the next offset to read.
//!
//! A commit is checked against the Kafka coordinator (the member and generation,
//! or no member at all for a group without members: tools, `assign()` consumers),
//! never against a native group that is live under the same name. The metadata
//! string a commit carries is stored with its offset (up to
//! [`MAX_OFFSET_METADATA_BYTES`]; longer: OFFSET_METADATA_TOO_LARGE) and OffsetFetch
//! answers it; a native commit clears it.

use kafka_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as K;
use protocol::internal::offsets::GroupSettings;
use protocol::ops::group::GroupMode;
use protocol::ops::security::Operation;

use super::error;
use super::group::state::MemberRef;
use super::groups::{admit, group_code, native_claims};
use super::session::Session;
use crate::group::offsets::{Commit, StoredGroup, MAX_OFFSET_METADATA_BYTES};
use crate::security::authorize::{topic_permission, Needs};

/// One partition's answer: partition, offset (-1: none), error code.
type PartitionAnswer = (i32, i64, i16);

/// One partition's OffsetFetch answer: partition, offset (-1: none), the metadata
/// committed with it, error code.
type FetchedPartition = (i32, i64, String, i16);

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

fn topic_allowed(s: &Session, topic: &str, operation: Operation) -> bool {
    s.broker
        .security
        .permits(
            s.principal(),
            &Needs::of(topic_permission(topic, operation), None),
        )
        .is_ok()
}

/// OffsetCommit: every partition is answered; those that pass are stored durably
/// before the answer.
pub async fn commit(s: &mut Session, r: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = r.group_id.0.to_string();
    let whole = match admit(s, &group, Operation::Read) {
        Err(code) => Some(code),
        Ok(()) if native_claims(s, &group) => Some(K::UnknownMemberId.code()),
        Ok(()) => s
            .broker
            .kafka_groups
            .may_commit(
                &group,
                MemberRef {
                    id: &r.member_id,
                    instance: r.group_instance_id.as_deref(),
                },
                r.generation_id_or_member_epoch,
            )
            .err()
            .map(group_code),
    };
    let mut topics = Vec::with_capacity(r.topics.len());
    for t in &r.topics {
        let name = t.name.0.to_string();
        let partitions: Vec<PartitionAnswer> = match whole {
            Some(code) => t
                .partitions
                .iter()
                .map(|p| (p.partition_index, 0, code))
                .collect(),
            None => {
                commit_topic(
                    s,
                    &group,
                    &name,
                    t.partitions.iter().map(|p| {
                        let metadata = p.committed_metadata.as_deref().unwrap_or_default();
                        (p.partition_index, p.committed_offset, metadata)
                    }),
                )
                .await
            }
        };
        let partitions = partitions
            .into_iter()
            .map(|(partition, _, code)| {
                OffsetCommitResponsePartition::default()
                    .with_partition_index(partition)
                    .with_error_code(code)
            })
            .collect();
        topics.push(
            OffsetCommitResponseTopic::default()
                .with_name(TopicName(text(name)))
                .with_partitions(partitions),
        );
    }
    OffsetCommitResponse::default().with_topics(topics)
}

/// Commits one topic's partitions that are valid; the answer for each.
async fn commit_topic(
    s: &Session,
    group: &str,
    topic: &str,
    asked: impl Iterator<Item = (i32, i64, &str)>,
) -> Vec<PartitionAnswer> {
    let asked: Vec<(i32, i64, &str)> = asked.collect();
    let refuse_all = |code: i16| asked.iter().map(|&(p, o, _)| (p, o, code)).collect();
    if !topic_allowed(s, topic, Operation::Read) {
        return refuse_all(K::TopicAuthorizationFailed.code());
    }
    let Ok(handle) = s.broker.topics.get(topic) else {
        return refuse_all(K::UnknownTopicOrPartition.code());
    };
    let count = handle.partitions.len();
    let mut answers = Vec::with_capacity(asked.len());
    let mut valid = Vec::with_capacity(asked.len());
    for &(partition, offset, metadata) in &asked {
        let known = usize::try_from(partition).is_ok_and(|p| p < count);
        let code = match (known, u64::try_from(offset)) {
            (false, _) => K::UnknownTopicOrPartition.code(),
            (true, Err(_)) => K::OffsetOutOfRange.code(),
            (true, Ok(_)) if metadata.len() > MAX_OFFSET_METADATA_BYTES => {
                K::OffsetMetadataTooLarge.code()
            }
            (true, Ok(offset)) => {
                valid.push(Commit {
                    partition: partition as u32,
                    offset,
                    metadata,
                });
                0
            }
        };
        answers.push((partition, offset, code));
    }
    if valid.is_empty() {
        return answers;
    }
    let offsets = s.broker.groups.offsets();
    // The registry learns of the group (its first topic), so that the native
    // ListGroups, DescribeGroup and `brokerctl groups describe` show it.
    let recorded = offsets
        .update_group(group, |stored| {
            Ok(stored.is_none().then(|| StoredGroup {
                topic: topic.to_owned(),
                settings: GroupSettings {
                    mode: GroupMode::Stream,
                    config: Vec::new(),
                },
            }))
        })
        .await;
    let stored = match recorded {
        Ok(()) => offsets.commit_with_metadata(group, topic, &valid).await,
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        tracing::warn!(group, topic, error = %e, "a Kafka offset commit failed");
        let code = error::code(&e);
        for answer in answers.iter_mut().filter(|a| a.2 == 0) {
            answer.2 = code;
        }
    }
    answers
}

/// The topics a request names, as `(topic, partitions)`; `None` for all. The same
/// for v1–7's and v8's request types, whose fields have the same names.
macro_rules! asked_topics {
    ($topics:expr) => {
        $topics.as_ref().map(|topics| {
            topics
                .iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                .collect()
        })
    };
}

/// One group's answers as the response's topics: v1–7 and v8 have a type of their
/// own for the topic and the partition, with the same builders.
macro_rules! answer_topics {
    ($topics:expr, $topic:ident, $partition:ident) => {
        $topics
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|(partition, offset, metadata, code)| {
                        $partition::default()
                            .with_partition_index(partition)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(-1)
                            .with_metadata(Some(text(metadata)))
                            .with_error_code(code)
                    })
                    .collect();
                $topic::default()
                    .with_name(TopicName(text(name)))
                    .with_partitions(partitions)
            })
            .collect()
    };
}

/// OffsetFetch: one group (v1–7) or several (v8); every topic the group committed
/// when none are named (v2 on).
pub fn fetch(s: &mut Session, r: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version < 8 {
        let (code, topics) = fetch_group(s, &r.group_id.0, asked_topics!(r.topics));
        return OffsetFetchResponse::default()
            .with_error_code(code)
            .with_topics(answer_topics!(
                topics,
                OffsetFetchResponseTopic,
                OffsetFetchResponsePartition
            ));
    }
    let groups = r
        .groups
        .iter()
        .map(|g| {
            let (code, topics) = fetch_group(s, &g.group_id.0, asked_topics!(g.topics));
            OffsetFetchResponseGroup::default()
                .with_group_id(g.group_id.clone())
                .with_error_code(code)
                .with_topics(answer_topics!(
                    topics,
                    OffsetFetchResponseTopics,
                    OffsetFetchResponsePartitions
                ))
        })
        .collect();
    OffsetFetchResponse::default().with_groups(groups)
}

/// One group's committed offsets for `asked` (topic, partitions), or for every
/// topic it committed (`None`); the group's error code and the topics' answers.
fn fetch_group(
    s: &Session,
    group: &str,
    asked: Option<Vec<(String, Vec<i32>)>>,
) -> (i16, Vec<(String, Vec<FetchedPartition>)>) {
    if let Err(code) = admit(s, group, Operation::Describe) {
        return (code, Vec::new());
    }
    let offsets = s.broker.groups.offsets();
    let Some(asked) = asked else {
        let mut topics: Vec<(String, Vec<FetchedPartition>)> = Vec::new();
        for (topic, partition, offset) in offsets.committed_by(group) {
            if !topic_allowed(s, &topic, Operation::Describe) {
                continue;
            }
            let metadata = offsets.metadata(group, &topic, partition);
            let answer = (partition as i32, offset as i64, metadata, 0);
            match topics.last_mut() {
                Some((last, partitions)) if *last == topic => partitions.push(answer),
                _ => topics.push((topic, vec![answer])),
            }
        }
        return (0, topics);
    };
    let topics = asked
        .into_iter()
        .map(|(topic, partitions)| {
            let allowed = topic_allowed(s, &topic, Operation::Describe);
            let answers = partitions
                .into_iter()
                .map(|p| {
                    if !allowed {
                        return (p, -1, String::new(), K::TopicAuthorizationFailed.code());
                    }
                    let Ok(partition) = u32::try_from(p) else {
                        return (p, -1, String::new(), 0);
                    };
                    match offsets.get(group, &topic, partition) {
                        Some(o) => (p, o as i64, offsets.metadata(group, &topic, partition), 0),
                        None => (p, -1, String::new(), 0),
                    }
                })
                .collect();
            (topic, answers)
        })
        .collect();
    (0, topics)
}
