//! A topic's dead letters over HTTP: list (with each letter's record, so also a
//! peek), replay and purge, as `brokerctl dlq` does over the native protocol, through
//! the request layer (DescribeTopic, Fetch, Produce, DeleteRecords).
//!
//! Dead letters live in partition 0 of the topic's dead-letter topic
//! (`dead_letter_topic`, else `<topic>.dlq`), each with `dlq.*` headers saying where
//! it came from and why. A replay produces a letter back to its original topic and
//! partition without the `dlq.*` headers (so its attempts start again) with
//! `ack=durable`, and only once that answered deletes it from the dead-letter topic;
//! a replay that fails part way leaves the rest, and a letter whose copy was made but
//! whose delete failed is replayed again by the next replay (at least once).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use bytes::Bytes;
use protocol::batch::{BatchBuilder, BatchView, RecordView};
use protocol::ops::fetch::FetchRequest;
use protocol::ops::produce::{AckLevel, PartitionSelector, ProduceRequest};
use protocol::ops::topic::{DeleteRecordsRequest, DescribeTopicRequest, DescribeTopicResponse};
use protocol::{ErrorCode, Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::{ApiPath, ApiQuery};
use super::call::{call, unexpected};
use super::error::{ApiError, ErrorBody};
use super::records::{self, FetchedRecord};
use super::state::HttpState;
use super::topics::TopicPath;
use crate::queue::DEAD_LETTER_HEADER_PREFIX;

/// Dead letters one list or replay handles at most.
pub const MAX_DEAD_LETTERS_PER_REQUEST: usize = 1000;
/// Dead letters a list answers unless told.
pub const DEFAULT_DEAD_LETTERS: usize = 100;
/// Bytes of the dead-letter topic one read takes.
const DLQ_READ_BYTES: u32 = 1024 * 1024;
/// How long a replayed letter may take to become durable, ms.
const REPLAY_TIMEOUT_MS: u32 = 30_000;

/// `?limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DlqParams {
    /// Letters to handle at most, oldest first (default 100 for a list, all up to
    /// 1000 for a replay; at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One dead letter.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetter {
    /// Its offset in the dead-letter topic.
    pub dlq_offset: u64,
    /// `dlq.original_topic`.
    pub original_topic: Option<String>,
    /// `dlq.original_partition`.
    pub original_partition: Option<u32>,
    /// `dlq.original_offset`.
    pub original_offset: Option<u64>,
    /// `dlq.group`: the queue group that gave up on it.
    pub group: Option<String>,
    /// `dlq.attempts`.
    pub attempts: Option<u32>,
    /// `dlq.reason`: why its last delivery failed.
    pub reason: Option<String>,
    /// The whole record, `dlq.*` headers included.
    pub record: FetchedRecord,
}

/// A topic's dead letters.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetters {
    /// The dead-letter topic.
    pub dead_letter_topic: String,
    /// The letters, oldest first (none if the topic has no dead-letter topic yet).
    pub letters: Vec<DeadLetter>,
    /// How many the dead-letter topic holds in all.
    pub total: u64,
}

/// The dead-letter topic of a described topic.
fn dlq_name(described: &DescribeTopicResponse) -> String {
    described
        .config
        .iter()
        .find(|e| e.key == "dead_letter_topic")
        .map(|e| e.value.clone())
        .filter(|name| !name.is_empty() && name != "none")
        .unwrap_or_else(|| format!("{}.dlq", described.name))
}

async fn describe(
    state: &HttpState,
    caller: &Caller,
    topic: &str,
) -> Result<Option<DescribeTopicResponse>, ApiError> {
    let request = Request::DescribeTopic(DescribeTopicRequest {
        name: topic.to_string(),
    });
    match call(&state.broker, caller, request).await {
        Ok(Response::DescribeTopic(described)) => Ok(Some(described)),
        Ok(other) => Err(unexpected(&other)),
        Err(e) if e.code() == ErrorCode::UnknownTopic => Ok(None),
        Err(e) => Err(e),
    }
}

/// The dead-letter topic's name and its partition 0's (start, end), if it exists.
async fn dead_letter_topic(
    state: &HttpState,
    caller: &Caller,
    topic: &str,
) -> Result<(String, Option<(u64, u64)>), ApiError> {
    let Some(described) = describe(state, caller, topic).await? else {
        return Err(ApiError::new(
            ErrorCode::UnknownTopic,
            format!("unknown topic {:?}", super::error::sanitize(topic)),
        ));
    };
    let dlq = dlq_name(&described);
    let range = describe(state, caller, &dlq)
        .await?
        .and_then(|d| d.partitions.first().map(|p| (p.start_offset, p.end_offset)));
    Ok((dlq, range))
}

/// Calls `each` on up to `limit` raw dead letters from `from`, oldest first.
async fn read_letters(
    state: &HttpState,
    caller: &Caller,
    dlq: &str,
    (from, end): (u64, u64),
    limit: usize,
    mut each: impl FnMut(&RecordView<'_>) -> Result<(), ApiError>,
) -> Result<usize, ApiError> {
    let mut at = from;
    let mut seen = 0;
    while at < end && seen < limit {
        let request = Request::Fetch(FetchRequest {
            topic: dlq.to_string(),
            partition: 0,
            offset: at,
            max_bytes: DLQ_READ_BYTES,
            max_wait_ms: 0,
        });
        let fetched = match call(&state.broker, caller, request).await? {
            Response::Fetch(fetched) => fetched,
            other => return Err(unexpected(&other)),
        };
        let before = at;
        for batch in protocol::batch::split_batches(fetched.batches) {
            let batch = batch.map_err(stored)?;
            let view = BatchView::new(&batch).map_err(stored)?;
            for record in view.records() {
                let record = record.map_err(stored)?;
                if record.offset < at || seen >= limit {
                    continue;
                }
                each(&record)?;
                seen += 1;
                at = record.offset + 1;
            }
            at = at.max(view.header().next_offset().min(end));
        }
        if at == before {
            // Nothing readable there yet (not durable): what is readable was read.
            break;
        }
    }
    Ok(seen)
}

fn stored(e: protocol::batch::BatchError) -> ApiError {
    ApiError::new(
        ErrorCode::StorageError,
        format!("a stored batch did not read back: {e}"),
    )
}

/// A `dlq.*` header's value as text.
fn dlq_header(record: &RecordView<'_>, name: &str) -> Option<String> {
    record
        .headers()
        .flatten()
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok().map(str::to_string))
}

/// A dead letter as it goes back to its topic (pure): the same timestamp, key,
/// value and headers, less the `dlq.*` ones; and the original topic and partition
/// its headers name.
pub fn replay_batch(
    record: &RecordView<'_>,
) -> Result<(Bytes, Option<String>, Option<u32>), protocol::batch::BatchError> {
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    for header in record.headers() {
        let (key, value) = header?;
        if !key.starts_with(DEAD_LETTER_HEADER_PREFIX) {
            headers.push((key, value));
        }
    }
    let mut builder = BatchBuilder::new();
    builder.push(record.timestamp_ms, record.key, record.value, &headers)?;
    let topic = dlq_header(record, "dlq.original_topic");
    let partition = dlq_header(record, "dlq.original_partition").and_then(|p| p.parse().ok());
    Ok((builder.finish(), topic, partition))
}

/// Lists a topic's dead letters, oldest first, each with its whole record.
#[utoipa::path(get, path = "/v1/topics/{topic}/dlq", tag = "dead letters",
    params(TopicPath, DlqParams),
    responses(
        (status = 200, description = "The dead letters.", body = DeadLetters),
        (status = 404, description = "No such topic.", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<TopicPath>,
    ApiQuery(params): ApiQuery<DlqParams>,
) -> Result<Json<DeadLetters>, ApiError> {
    let limit = limit(params.limit, DEFAULT_DEAD_LETTERS)?;
    let (dlq, range) = dead_letter_topic(&state, &caller, &path.topic).await?;
    let mut letters = Vec::new();
    let Some(range) = range else {
        return Ok(Json(DeadLetters {
            dead_letter_topic: dlq,
            letters,
            total: 0,
        }));
    };
    read_letters(&state, &caller, &dlq, range, limit, |record| {
        let json = records::to_json(record).map_err(stored)?;
        letters.push(DeadLetter {
            dlq_offset: record.offset,
            original_topic: dlq_header(record, "dlq.original_topic"),
            original_partition: dlq_header(record, "dlq.original_partition")
                .and_then(|v| v.parse().ok()),
            original_offset: dlq_header(record, "dlq.original_offset").and_then(|v| v.parse().ok()),
            group: dlq_header(record, "dlq.group"),
            attempts: dlq_header(record, "dlq.attempts").and_then(|v| v.parse().ok()),
            reason: dlq_header(record, "dlq.reason"),
            record: json,
        });
        Ok(())
    })
    .await?;
    Ok(Json(DeadLetters {
        dead_letter_topic: dlq,
        letters,
        total: range.1 - range.0,
    }))
}

fn limit(given: Option<usize>, default: usize) -> Result<usize, ApiError> {
    let limit = given.unwrap_or(default);
    if limit == 0 || limit > MAX_DEAD_LETTERS_PER_REQUEST {
        return Err(ApiError::invalid(format!(
            "limit must be from 1 to {MAX_DEAD_LETTERS_PER_REQUEST}"
        )));
    }
    Ok(limit)
}

/// What a replay or purge did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLettersHandled {
    /// The dead-letter topic.
    pub dead_letter_topic: String,
    /// How many letters were replayed (or purged).
    pub count: u64,
}

/// Replays dead letters to their original topic and partition (attempts start
/// again), oldest first; each is deleted from the dead-letter topic only once its
/// copy is durable.
#[utoipa::path(post, path = "/v1/topics/{topic}/dlq/replay", tag = "dead letters",
    params(TopicPath, DlqParams),
    responses(
        (status = 200, description = "Replayed.", body = DeadLettersHandled),
        (status = 404, description = "No such topic.", body = ErrorBody),
        (status = "4XX", description = "Refused (what was replayed before stays replayed).", body = ErrorBody),
    ))]
pub async fn replay(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<TopicPath>,
    ApiQuery(params): ApiQuery<DlqParams>,
) -> Result<Json<DeadLettersHandled>, ApiError> {
    let limit = limit(params.limit, MAX_DEAD_LETTERS_PER_REQUEST)?;
    let (dlq, range) = dead_letter_topic(&state, &caller, &path.topic).await?;
    let Some(range) = range else {
        return Ok(Json(DeadLettersHandled {
            dead_letter_topic: dlq,
            count: 0,
        }));
    };
    // Read first (bounded by the limit), then replay one by one, in order.
    let mut letters: Vec<(u64, Bytes, Option<String>, Option<u32>)> = Vec::new();
    read_letters(&state, &caller, &dlq, range, limit, |record| {
        let (batch, topic, partition) = replay_batch(record).map_err(stored)?;
        letters.push((record.offset, batch, topic, partition));
        Ok(())
    })
    .await?;
    let mut count = 0;
    for (dlq_offset, batch, topic, partition) in letters {
        let request = Request::Produce(ProduceRequest {
            topic: topic.unwrap_or_else(|| path.topic.clone()),
            partition: partition.map_or(PartitionSelector::Any, PartitionSelector::Partition),
            ack: AckLevel::Durable,
            timeout_ms: REPLAY_TIMEOUT_MS,
            producer: None,
            batch,
        });
        call(&state.broker, &caller, request).await?;
        // Durably back: only now does it leave the dead-letter topic.
        let request = Request::DeleteRecords(DeleteRecordsRequest {
            topic: dlq.clone(),
            partition: 0,
            before_offset: dlq_offset + 1,
        });
        call(&state.broker, &caller, request).await?;
        count += 1;
    }
    Ok(Json(DeadLettersHandled {
        dead_letter_topic: dlq,
        count,
    }))
}

/// Deletes every dead letter of the topic.
#[utoipa::path(delete, path = "/v1/topics/{topic}/dlq", tag = "dead letters",
    params(TopicPath),
    responses(
        (status = 200, description = "Purged.", body = DeadLettersHandled),
        (status = 404, description = "No such topic.", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn purge(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<TopicPath>,
) -> Result<Json<DeadLettersHandled>, ApiError> {
    let (dlq, range) = dead_letter_topic(&state, &caller, &path.topic).await?;
    let Some((start, end)) = range else {
        return Ok(Json(DeadLettersHandled {
            dead_letter_topic: dlq,
            count: 0,
        }));
    };
    let request = Request::DeleteRecords(DeleteRecordsRequest {
        topic: dlq.clone(),
        partition: 0,
        before_offset: end,
    });
    call(&state.broker, &caller, request).await?;
    Ok(Json(DeadLettersHandled {
        dead_letter_topic: dlq,
        count: end - start,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_letter_keeps_its_record_but_not_its_dlq_headers() {
        let mut builder = BatchBuilder::new();
        builder
            .push(
                42,
                Some(b"k"),
                Some(b"v"),
                &[
                    ("trace", b"t"),
                    ("dlq.original_topic", b"jobs"),
                    ("dlq.original_partition", b"2"),
                    ("dlq.reason", b"boom"),
                ],
            )
            .unwrap();
        let batch = builder.finish();
        let view = BatchView::new(&batch).unwrap();
        let record = view.records().next().unwrap().unwrap();
        let (replayed, topic, partition) = replay_batch(&record).unwrap();
        assert_eq!((topic.as_deref(), partition), (Some("jobs"), Some(2)));
        let view = BatchView::new(&replayed).unwrap();
        let record = view.records().next().unwrap().unwrap();
        assert_eq!(
            (record.timestamp_ms, record.key, record.value),
            (42, Some(&b"k"[..]), Some(&b"v"[..]))
        );
        let headers: Vec<(&str, &[u8])> = record.headers().flatten().collect();
        assert_eq!(headers, [("trace", &b"t"[..])]);
    }
}
