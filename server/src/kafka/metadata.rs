//! Metadata: brokerd as a cluster of one broker (node 0, at the advertised
//! address, the controller and every partition's leader), and its topics, from
//! ListTopics and DescribeTopic. Topics are never created by a Metadata request
//! (`allow_auto_topic_creation` is ignored): create them first.

use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use protocol::ops::topic::{DescribeTopicRequest, ListTopicsRequest};
use protocol::{Request, Response};

use super::error;
use super::session::{unexpected, Session};

/// The node id of the one broker.
pub const NODE_ID: i32 = 0;
/// The cluster id Metadata reports.
pub const CLUSTER_ID: &str = "brokerd";

/// Answers a Metadata request at `version`.
pub async fn metadata(s: &mut Session, request: MetadataRequest, version: i16) -> MetadataResponse {
    let names = match request.topics {
        // Version 0 asks for every topic with an empty list; later ones with null.
        Some(topics) if version == 0 && topics.is_empty() => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .filter_map(|t| t.name.map(|n| n.0.to_string()))
                .collect::<Vec<_>>(),
        ),
        None => None,
    };
    let names = match names {
        Some(names) => names,
        None => match s
            .call(Request::ListTopics(ListTopicsRequest {
                include_internal: false,
            }))
            .await
        {
            Ok(Response::ListTopics(list)) => list.topics.into_iter().map(|t| t.name).collect(),
            _ => Vec::new(),
        },
    };
    let mut topics = Vec::with_capacity(names.len());
    for name in names {
        topics.push(topic(s, name).await);
    }
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(StrBytes::from_string(s.advertised.host.clone()))
        .with_port(i32::from(s.advertised.port));
    MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER_ID)))
        .with_controller_id(BrokerId(NODE_ID))
        .with_topics(topics)
}

async fn topic(s: &mut Session, name: String) -> MetadataResponseTopic {
    let answer = s
        .call(Request::DescribeTopic(DescribeTopicRequest {
            name: name.clone(),
        }))
        .await;
    let entry =
        MetadataResponseTopic::default().with_name(Some(TopicName(StrBytes::from_string(name))));
    let described = match answer {
        Ok(Response::DescribeTopic(described)) => described,
        Ok(other) => return entry.with_error_code(error::code(&unexpected(&other))),
        Err(e) => return entry.with_error_code(error::code(&e)),
    };
    let partitions = described
        .partitions
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.partition as i32)
                .with_leader_id(BrokerId(NODE_ID))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(NODE_ID)])
                .with_isr_nodes(vec![BrokerId(NODE_ID)])
        })
        .collect();
    entry
        .with_is_internal(described.internal)
        .with_partitions(partitions)
}
