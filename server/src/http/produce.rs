//! `POST /v1/topics/{topic}/records`: a batch of JSON records in one request.
//!
//! The records are decoded and placed first ([`records::place`]: explicit partition,
//! key hash, or one round-robin partition for the rest), one batch is built per
//! partition ([`records::build_batch`], the protocol's `BatchBuilder`), and each
//! batch is one native Produce request through [`call`]; the requests run
//! concurrently. Everything the client can get wrong (JSON, base64, sizes, a
//! partition that does not exist, permission) is refused before the first append,
//! so a refused request stores nothing.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use protocol::ops::produce::{AckLevel, PartitionSelector, ProduceRequest};
use protocol::{ErrorCode, Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::{ApiPath, ApiQuery, JsonBody};
use super::call::{self, call, unexpected};
use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::records::{self, ProduceRecord, RecordBytes};
use super::state::HttpState;
use super::topics::TopicPath;
use crate::config::HttpConfig;

/// How long a produce waits for its acknowledgement unless told (`timeout_ms`).
pub const DEFAULT_PRODUCE_TIMEOUT_MS: u32 = 30_000;

/// When the answer is given.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ack {
    /// Once the records are appended (in the page cache).
    Appended,
    /// Once they are as durable as the topic's durability promises (synced, under
    /// `always` and `interval`). The default.
    #[default]
    Durable,
}

/// Produce parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProduceParams {
    /// `durable` (default) or `appended`.
    #[serde(default)]
    #[param(inline)]
    pub ack: Ack,
    /// How long to wait for the acknowledgement, ms (default 30000; less than
    /// `http.request_timeout_ms`).
    #[serde(default)]
    pub timeout_ms: Option<u32>,
}

/// `POST /v1/topics/{topic}/records` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceBody {
    /// The records, at least one, at most `http.max_records_per_produce`.
    #[serde(deserialize_with = "super::body::objects")]
    pub records: Vec<ProduceRecord>,
}

/// Where one record went.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordOffset {
    /// Its partition.
    pub partition: u32,
    /// Its offset; `null` when its batch failed (then `error` says why).
    pub offset: Option<u64>,
    /// Why its batch failed; `null` when it was stored.
    pub error: Option<ErrorDetail>,
}

/// Where each record went, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct Produced {
    /// One entry per record of the request.
    pub offsets: Vec<RecordOffset>,
}

/// Produces records.
#[utoipa::path(post, path = "/v1/topics/{topic}/records", tag = "records",
    params(TopicPath, ProduceParams), request_body = ProduceBody,
    responses(
        (status = 200, description = "Every record stored; its partition and offset.", body = Produced),
        (status = 207, description = "Some partitions' batches failed (each record says), others were stored.", body = Produced),
        (status = 404, description = "No such topic or partition.", body = ErrorBody),
        (status = 413, description = "The body or the record count is over the limit.", body = ErrorBody),
        (status = "4XX", description = "Refused: bad JSON or base64, not authorized. Nothing was stored.", body = ErrorBody),
        (status = 503, description = "Stored but not confirmed durable (`not_durable`), or the disk failed.", body = ErrorBody),
    ))]
pub async fn produce(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<TopicPath>,
    ApiQuery(params): ApiQuery<ProduceParams>,
    JsonBody(body): JsonBody<ProduceBody>,
) -> Result<(StatusCode, Json<Produced>), ApiError> {
    super::topics::check_topic_name(&path.topic)?;
    let broker = &state.broker;
    let limits = &broker.config.http;
    let count = body.records.len();
    check_count(limits, count)?;
    let timeout_ms = timeout_ms(limits, &params)?;
    let decoded = decode_all(&body.records)?;
    let request = |partition: PartitionSelector, batch: Bytes| ProduceRequest {
        topic: path.topic.clone(),
        partition,
        ack: match params.ack {
            Ack::Appended => AckLevel::Appended,
            Ack::Durable => AckLevel::Durable,
        },
        timeout_ms,
        producer: None,
        batch,
    };
    // Before the topic is looked at: one who may not write learns nothing of it.
    call::authorize(
        broker,
        &caller,
        &Request::Produce(request(PartitionSelector::Any, Bytes::new())),
    )?;
    let topic = broker.topics.get(&path.topic)?;
    let partitions = topic.partitions.len() as u32;
    let explicit: Vec<Option<u32>> = body.records.iter().map(|r| r.partition).collect();
    if let Some(&bad) = explicit.iter().flatten().find(|&&p| p >= partitions) {
        return Err(crate::error::BrokerError::InvalidPartition {
            topic: topic.name.clone(),
            partition: bad,
            count: partitions,
        }
        .into());
    }
    let placement = records::place(&decoded, &explicit, partitions);
    let now_ms = broker.clock.wall_ms();
    let mut groups = Vec::with_capacity(placement.by_partition.len() + 1);
    for (partition, indexes) in placement.by_partition {
        groups.push((PartitionSelector::Partition(partition), indexes));
    }
    if !placement.any.is_empty() {
        groups.push((PartitionSelector::Any, placement.any));
    }
    let mut requests = Vec::with_capacity(groups.len());
    for (selector, indexes) in &groups {
        let members: Vec<(usize, &RecordBytes)> =
            indexes.iter().map(|&i| (i, &decoded[i])).collect();
        let batch =
            records::build_batch(&members, now_ms).map_err(|e| ApiError::invalid(e.to_string()))?;
        requests.push(Request::Produce(request(selector.clone(), batch)));
    }
    let answers =
        futures_util::future::join_all(requests.into_iter().map(|r| call(broker, &caller, r)))
            .await;
    answer(count, &groups, answers)
}

/// The answer: every record's partition and offset; the error alone when every batch
/// failed; 207 when some did.
fn answer(
    count: usize,
    groups: &[(PartitionSelector, Vec<usize>)],
    answers: Vec<Result<Response, ApiError>>,
) -> Result<(StatusCode, Json<Produced>), ApiError> {
    let mut offsets: Vec<Option<RecordOffset>> = (0..count).map(|_| None).collect();
    let mut failed = 0;
    let mut first_error = None;
    for ((selector, indexes), answer) in groups.iter().zip(answers) {
        let asked = match selector {
            PartitionSelector::Partition(p) => *p,
            _ => 0,
        };
        let (partition, base, error) = match answer {
            Ok(Response::Produce(produced)) => (produced.partition, produced.base_offset, None),
            Ok(other) => (asked, None, Some(unexpected(&other))),
            Err(error) => (asked, None, Some(error)),
        };
        let detail = error.as_ref().map(|e| ErrorDetail {
            code: e.code().name().to_string(),
            message: e.message().to_string(),
        });
        if let Some(error) = error {
            failed += 1;
            first_error.get_or_insert(error);
        }
        for (i, &index) in indexes.iter().enumerate() {
            offsets[index] = Some(RecordOffset {
                partition,
                offset: base.map(|b| b + i as u64),
                error: detail.as_ref().map(|d| ErrorDetail {
                    code: d.code.clone(),
                    message: d.message.clone(),
                }),
            });
        }
    }
    if let Some(error) = first_error.filter(|_| failed == groups.len()) {
        return Err(error);
    }
    let status = if failed == 0 {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((
        status,
        Json(Produced {
            offsets: offsets.into_iter().flatten().collect(),
        }),
    ))
}

/// Refuses an empty request, and one over `http.max_records_per_produce` (413).
pub fn check_count(limits: &HttpConfig, count: usize) -> Result<(), ApiError> {
    if count == 0 {
        return Err(ApiError::invalid(
            "records is empty: send at least one record",
        ));
    }
    if count > limits.max_records_per_produce {
        return Err(ApiError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ResourceLimit,
            format!(
                "{count} records; one request may carry at most http.max_records_per_produce ({})",
                limits.max_records_per_produce
            ),
        ));
    }
    Ok(())
}

/// The durability wait a produce may ask for: below `http.request_timeout_ms`, so the
/// answer comes before the request's own timeout.
pub fn timeout_ms(limits: &HttpConfig, params: &ProduceParams) -> Result<u32, ApiError> {
    let timeout_ms = params.timeout_ms.unwrap_or(DEFAULT_PRODUCE_TIMEOUT_MS);
    if u64::from(timeout_ms) >= limits.request_timeout_ms {
        return Err(ApiError::invalid(format!(
            "timeout_ms must be less than http.request_timeout_ms ({})",
            limits.request_timeout_ms
        )));
    }
    Ok(timeout_ms)
}

/// Every record's key, value and headers as bytes; the first bad one (bad base64,
/// both `value` and `value_base64`) refuses the request.
pub fn decode_all(records: &[ProduceRecord]) -> Result<Vec<RecordBytes>, ApiError> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| records::decode(i, r))
        .collect::<Result<Vec<RecordBytes>, _>>()
        .map_err(|e| ApiError::invalid(e.to_string()))
}
