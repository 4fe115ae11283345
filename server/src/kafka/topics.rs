//! CreateTopics and DeleteTopics, one native CreateTopic / DeleteTopic per topic.
//! Kafka topic configs are brokerd config keys, under Kafka's name where it means
//! the same (`retention.ms` is `retention_ms`, [`super::configs::native_key`]): a key
//! brokerd does not know is refused with INVALID_CONFIG, not ignored.

use kafka_protocol::messages::create_topics_request::CreateTopicsRequest;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicResult, CreateTopicsResponse,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use protocol::ops::topic::{ConfigEntry, CreateTopicRequest, DeleteTopicRequest};
use protocol::Request;

use super::error;
use super::session::Session;

/// Partitions of a topic created with Kafka's "broker default" (-1).
pub const DEFAULT_PARTITIONS: u32 = 1;

/// Creates each topic asked for; answers per topic.
pub async fn create(s: &mut Session, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let result = CreatableTopicResult::default().with_name(topic.name.clone());
        let refused = |kind: ResponseError, message: &str| {
            result
                .clone()
                .with_error_code(kind.code())
                .with_error_message(Some(StrBytes::from_string(message.to_owned())))
        };
        if topic.replication_factor > 1 {
            results.push(refused(
                ResponseError::InvalidReplicationFactor,
                "brokerd is a single node: the replication factor is 1",
            ));
            continue;
        }
        if !topic.assignments.is_empty() {
            results.push(refused(
                ResponseError::InvalidReplicaAssignment,
                "brokerd is a single node: replica assignments are not taken",
            ));
            continue;
        }
        if request.validate_only {
            results.push(refused(
                ResponseError::InvalidRequest,
                "validate_only is not supported",
            ));
            continue;
        }
        let partitions = match topic.num_partitions {
            -1 => DEFAULT_PARTITIONS,
            n if n >= 1 => n as u32,
            _ => {
                results.push(refused(
                    ResponseError::InvalidPartitions,
                    "partitions must be at least 1",
                ));
                continue;
            }
        };
        let config = topic
            .configs
            .iter()
            .map(|c| ConfigEntry {
                key: super::configs::native_key(&c.name)
                    .map_or_else(|| c.name.to_string(), str::to_owned),
                value: c.value.as_deref().unwrap_or_default().to_owned(),
            })
            .collect();
        let answer = s
            .call(Request::CreateTopic(CreateTopicRequest {
                name: topic.name.0.to_string(),
                partitions,
                config,
            }))
            .await;
        results.push(match answer {
            Ok(_) => result
                .with_num_partitions(partitions as i32)
                .with_replication_factor(1),
            Err(e) => result
                .with_error_code(error::code(&e))
                .with_error_message(Some(StrBytes::from_string(e.to_string()))),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// Deletes each topic named (versions up to 5 name them in `topic_names`).
pub async fn delete(s: &mut Session, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut results = Vec::with_capacity(request.topic_names.len());
    for name in request.topic_names {
        let answer = s
            .call(Request::DeleteTopic(DeleteTopicRequest {
                name: name.0.to_string(),
            }))
            .await;
        let result = DeletableTopicResult::default().with_name(Some(name));
        results.push(match answer {
            Ok(_) => result,
            Err(e) => result
                .with_error_code(error::code(&e))
                .with_error_message(Some(StrBytes::from_string(e.to_string()))),
        });
    }
    DeleteTopicsResponse::default().with_responses(results)
}
