//! Topic endpoints: list, create, describe, delete, and deleting records below an
//! offset. Each is one native request through [`call`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use protocol::ops::topic::{
    ConfigEntry, CreateTopicRequest, DeleteRecordsRequest, DeleteTopicRequest,
    DescribeTopicRequest, ListTopicsRequest,
};
use protocol::{Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::{ApiPath, ApiQuery, JsonBody};
use super::call::{call, unexpected};
use super::error::{sanitize, ApiError, ErrorBody};
use super::state::HttpState;

/// Checks a topic name the client sent before it reaches the broker, so that a
/// refusal quotes it only cut ([`sanitize`]).
pub fn check_topic_name(name: &str) -> Result<(), ApiError> {
    crate::topics::validate_topic_name(name).map_err(|_| {
        ApiError::invalid(format!(
            "invalid topic name {:?}: use 1 to {} characters from A-Z a-z 0-9 . _ -",
            sanitize(name),
            crate::topics::MAX_TOPIC_NAME_BYTES
        ))
    })
}

/// `GET /v1/topics` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Include the broker's internal topics (`__consumer_offsets`, ...).
    #[serde(default)]
    pub include_internal: bool,
}

/// One topic of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicSummary {
    /// The topic's name.
    pub name: String,
    /// Its partitions.
    pub partitions: u32,
    /// Records held, across partitions.
    pub messages: u64,
    /// Bytes held, across partitions.
    pub size_bytes: u64,
    /// Whether it is one of the broker's own.
    pub internal: bool,
}

/// The topics the caller may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicList {
    /// Sorted by name.
    pub topics: Vec<TopicSummary>,
}

/// Lists topics.
#[utoipa::path(get, path = "/v1/topics", tag = "topics", params(ListParams),
    responses(
        (status = 200, description = "The topics the caller may describe.", body = TopicList),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<TopicList>, ApiError> {
    let request = Request::ListTopics(ListTopicsRequest {
        include_internal: params.include_internal,
    });
    match call(&state.broker, &caller, request).await? {
        Response::ListTopics(list) => Ok(Json(TopicList {
            topics: list
                .topics
                .into_iter()
                .map(|t| TopicSummary {
                    name: t.name,
                    partitions: t.partitions,
                    messages: t.messages,
                    size_bytes: t.size_bytes,
                    internal: t.internal,
                })
                .collect(),
        })),
        other => Err(unexpected(&other)),
    }
}

/// A config value: a string, or an integer or boolean written as one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ConfigValue {
    /// Text, as `brokerctl topics create --config key=value` takes it.
    Text(String),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Bool(bool),
}

impl ConfigValue {
    fn text(&self) -> String {
        match self {
            ConfigValue::Text(text) => text.clone(),
            ConfigValue::Integer(n) => n.to_string(),
            ConfigValue::Bool(b) => b.to_string(),
        }
    }
}

/// `POST /v1/topics` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    /// The topic's name: 1 to 200 characters from `A-Z a-z 0-9 . _ -`.
    #[schema(example = "orders")]
    pub name: String,
    /// Partitions (default 1).
    #[serde(default = "one")]
    pub partitions: u32,
    /// Settings overriding the broker's defaults (`docs/operations.md`, "Topic
    /// configuration"), e.g. `{"retention_ms": 86400000}`.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
}

fn one() -> u32 {
    1
}

/// What was created.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The topic's name.
    pub name: String,
    /// Its partitions.
    pub partitions: u32,
}

/// Creates a topic.
#[utoipa::path(post, path = "/v1/topics", tag = "topics", request_body = CreateTopic,
    responses(
        (status = 201, description = "Created.", body = Created),
        (status = 409, description = "The topic exists (`topic_exists`).", body = ErrorBody),
        (status = "4XX", description = "Refused: bad name or config, not authorized.", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateTopic>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    check_topic_name(&body.name)?;
    let request = Request::CreateTopic(CreateTopicRequest {
        name: body.name.clone(),
        partitions: body.partitions,
        config: body
            .config
            .iter()
            .map(|(key, value)| ConfigEntry {
                key: key.clone(),
                value: value.text(),
            })
            .collect(),
    });
    match call(&state.broker, &caller, request).await? {
        Response::CreateTopic(_) => Ok((
            StatusCode::CREATED,
            Json(Created {
                name: body.name,
                partitions: body.partitions,
            }),
        )),
        other => Err(unexpected(&other)),
    }
}

/// One partition of a described topic.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionDescription {
    /// The partition's number.
    pub partition: u32,
    /// Offset of the oldest record held (the log start offset).
    pub start_offset: u64,
    /// Offset the next record will get.
    pub end_offset: u64,
    /// Offset below which every record is synced to disk (readers see up to here
    /// under `always` and `interval` durability).
    pub durable_offset: u64,
    /// Bytes held.
    pub size_bytes: u64,
}

/// A topic: its effective configuration and its partitions.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicDescription {
    /// The topic's name.
    pub name: String,
    /// Whether it is one of the broker's own.
    pub internal: bool,
    /// Every setting with its effective value, defaults included.
    pub config: BTreeMap<String, String>,
    /// In partition order.
    pub partitions: Vec<PartitionDescription>,
}

/// A topic in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TopicPath {
    /// The topic's name.
    pub topic: String,
}

/// Describes a topic.
#[utoipa::path(get, path = "/v1/topics/{topic}", tag = "topics", params(TopicPath),
    responses(
        (status = 200, description = "The topic.", body = TopicDescription),
        (status = 404, description = "No such topic (`unknown_topic`).", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn describe(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<TopicPath>,
) -> Result<Json<TopicDescription>, ApiError> {
    check_topic_name(&path.topic)?;
    let request = Request::DescribeTopic(DescribeTopicRequest {
        name: path.topic.clone(),
    });
    let described = match call(&state.broker, &caller, request).await? {
        Response::DescribeTopic(described) => described,
        other => return Err(unexpected(&other)),
    };
    // The native answer has no durable watermark; read it beside, once the request
    // layer has authorized the describe.
    let topic = state.broker.topics.get(&described.name).ok();
    let durable = |partition: u32| {
        topic
            .as_ref()
            .and_then(|t| t.partition(partition).ok())
            .map(|p| p.durable_offset())
    };
    Ok(Json(TopicDescription {
        partitions: described
            .partitions
            .iter()
            .map(|p| PartitionDescription {
                partition: p.partition,
                start_offset: p.start_offset,
                end_offset: p.end_offset,
                durable_offset: durable(p.partition).unwrap_or(p.start_offset),
                size_bytes: p.size_bytes,
            })
            .collect(),
        name: described.name,
        internal: described.internal,
        config: described
            .config
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect(),
    }))
}

/// Deletes a topic, its data, its routing rules and its groups.
#[utoipa::path(delete, path = "/v1/topics/{topic}", tag = "topics", params(TopicPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such topic (`unknown_topic`).", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<TopicPath>,
) -> Result<StatusCode, ApiError> {
    check_topic_name(&path.topic)?;
    let request = Request::DeleteTopic(DeleteTopicRequest { name: path.topic });
    match call(&state.broker, &caller, request).await? {
        Response::DeleteTopic(_) => Ok(StatusCode::NO_CONTENT),
        other => Err(unexpected(&other)),
    }
}

/// A partition in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PartitionPath {
    /// The topic's name.
    pub topic: String,
    /// The partition's number.
    pub partition: u32,
}

/// `DELETE .../records` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteRecordsParams {
    /// Records below this offset are deleted (whole segments; the log start offset
    /// becomes this offset).
    pub before_offset: u64,
}

/// What deleting records left.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordsDeleted {
    /// The partition.
    pub partition: u32,
    /// The partition's log start offset now.
    pub log_start_offset: u64,
}

/// Deletes a partition's records below an offset.
#[utoipa::path(delete, path = "/v1/topics/{topic}/partitions/{partition}/records", tag = "topics",
    params(PartitionPath, DeleteRecordsParams),
    responses(
        (status = 200, description = "Deleted; the new log start offset.", body = RecordsDeleted),
        (status = 404, description = "No such topic or partition.", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn delete_records(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<PartitionPath>,
    ApiQuery(params): ApiQuery<DeleteRecordsParams>,
) -> Result<Json<RecordsDeleted>, ApiError> {
    check_topic_name(&path.topic)?;
    let request = Request::DeleteRecords(DeleteRecordsRequest {
        topic: path.topic,
        partition: path.partition,
        before_offset: params.before_offset,
    });
    match call(&state.broker, &caller, request).await? {
        Response::DeleteRecords(deleted) => Ok(Json(RecordsDeleted {
            partition: path.partition,
            log_start_offset: deleted.log_start_offset,
        })),
        other => Err(unexpected(&other)),
    }
}
