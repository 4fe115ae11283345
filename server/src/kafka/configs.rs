//! DescribeConfigs: a topic's brokerd config under Kafka's names where they mean the
//! same (`retention.ms`, `retention.bytes`, `segment.bytes`, and the fixed
//! `cleanup.policy=delete` and `max.message.bytes`), the rest under brokerd's own
//! names; and the broker resource (node 0, or "" for the cluster default) as a few
//! read-only entries. Each resource is answered on its own: an unknown topic is
//! UNKNOWN_TOPIC_OR_PARTITION for that one, another resource type INVALID_REQUEST.
//! The same name table lets CreateTopics take the Kafka names ([`native_key`]).

use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use protocol::ops::topic::{DescribeTopicRequest, DescribeTopicResponse};
use protocol::{Request, Response};

use super::error;
use super::metadata::NODE_ID;
use super::session::{unexpected, Session};
use super::topics::DEFAULT_PARTITIONS;
use crate::error::BrokerError;

/// Kafka's resource type of a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// Kafka's resource type of a broker.
pub const RESOURCE_BROKER: i8 = 4;

/// Kafka's config sources (`DescribeConfigsResponse` v1+).
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// Kafka's config types (v3+).
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

/// A brokerd topic setting that Kafka has under another name, with the same meaning.
struct Renamed {
    kafka: &'static str,
    native: &'static str,
    config_type: i8,
}

/// The brokerd topic settings Kafka names differently: unlimited ("none") is -1.
const RENAMED: &[Renamed] = &[
    Renamed {
        kafka: "retention.ms",
        native: "retention_ms",
        config_type: TYPE_LONG,
    },
    Renamed {
        kafka: "retention.bytes",
        native: "retention_bytes",
        config_type: TYPE_LONG,
    },
    Renamed {
        kafka: "segment.bytes",
        native: "segment_bytes",
        config_type: TYPE_INT,
    },
];

/// The brokerd key for a Kafka topic config name, if Kafka's means a brokerd one.
pub fn native_key(kafka: &str) -> Option<&'static str> {
    RENAMED.iter().find(|r| r.kafka == kafka).map(|r| r.native)
}

/// Serves a DescribeConfigs, resource by resource.
pub async fn describe_configs(
    s: &mut Session,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let configs = match resource.resource_type {
            RESOURCE_TOPIC => topic_configs(s, &resource.resource_name).await,
            RESOURCE_BROKER => broker_configs(&resource.resource_name),
            other => Err((
                ResponseError::InvalidRequest.code(),
                format!("resource type {other} is not served: only topics (2) and the broker (4)"),
            )),
        };
        results.push(match configs {
            Ok(configs) => result.with_configs(only_asked(configs, &resource)),
            Err((code, message)) => result
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    DescribeConfigsResponse::default().with_results(results)
}

/// The entries `resource` names, or all when it names none.
fn only_asked(
    configs: Vec<DescribeConfigsResourceResult>,
    resource: &DescribeConfigsResource,
) -> Vec<DescribeConfigsResourceResult> {
    match &resource.configuration_keys {
        None => configs,
        Some(keys) => configs
            .into_iter()
            .filter(|c| keys.contains(&c.name))
            .collect(),
    }
}

fn entry(name: &str, value: String, source: i8, config_type: i8) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_owned()))
        .with_value(Some(StrBytes::from_string(value)))
        .with_read_only(source != SOURCE_TOPIC)
        .with_config_source(source)
        .with_config_type(config_type)
}

async fn topic_configs(
    s: &mut Session,
    name: &str,
) -> Result<Vec<DescribeConfigsResourceResult>, (i16, String)> {
    let described = describe_topic(s, name)
        .await
        .map_err(|e| (error::code(&e), e.to_string()))?;
    let mut configs: Vec<DescribeConfigsResourceResult> = described
        .config
        .into_iter()
        .map(|c| match RENAMED.iter().find(|r| r.native == c.key) {
            Some(r) => {
                let value = if c.value == "none" {
                    "-1".into()
                } else {
                    c.value
                };
                entry(r.kafka, value, SOURCE_TOPIC, r.config_type)
            }
            None => entry(&c.key, c.value, SOURCE_TOPIC, TYPE_STRING),
        })
        .collect();
    configs.push(entry(
        "cleanup.policy",
        "delete".into(),
        SOURCE_DEFAULT,
        TYPE_LIST,
    ));
    configs.push(entry(
        "max.message.bytes",
        protocol::batch::MAX_BATCH_BYTES.to_string(),
        SOURCE_DEFAULT,
        TYPE_INT,
    ));
    Ok(configs)
}

fn broker_configs(name: &str) -> Result<Vec<DescribeConfigsResourceResult>, (i16, String)> {
    if !name.is_empty() && name != NODE_ID.to_string() {
        return Err((
            ResponseError::InvalidRequest.code(),
            format!("broker {name:?} is not this one: brokerd is node {NODE_ID}"),
        ));
    }
    let fixed =
        |name, value: String, config_type| entry(name, value, SOURCE_STATIC_BROKER, config_type);
    Ok(vec![
        fixed("broker.id", NODE_ID.to_string(), TYPE_INT),
        fixed("num.partitions", DEFAULT_PARTITIONS.to_string(), TYPE_INT),
        fixed("default.replication.factor", "1".into(), TYPE_INT),
        fixed("auto.create.topics.enable", "false".into(), TYPE_BOOLEAN),
        fixed(
            "message.max.bytes",
            protocol::batch::MAX_BATCH_BYTES.to_string(),
            TYPE_INT,
        ),
    ])
}

/// The native DescribeTopic of `name`.
pub async fn describe_topic(
    s: &mut Session,
    name: &str,
) -> Result<DescribeTopicResponse, BrokerError> {
    let request = Request::DescribeTopic(DescribeTopicRequest {
        name: name.to_owned(),
    });
    match s.call(request).await? {
        Response::DescribeTopic(described) => Ok(described),
        other => Err(unexpected(&other)),
    }
}
