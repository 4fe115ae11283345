//! Fetch: one native Fetch per partition asked for, each within the partition's
//! `partition_max_bytes` and what is left of the request's `max_bytes`; the stored
//! batches are re-encoded as Kafka RecordBatch v2 ([`super::records`]). When the
//! first round has fewer than `min_bytes`, the listener long-polls every partition
//! asked for at once, up to `max_wait_ms`, and answers with a second round as soon
//! as any of them has data. Only what the native Fetch would return is returned, so
//! a durable topic's consumers see only data below its durable watermark.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::select_all;
use kafka_protocol::messages::fetch_request::FetchRequest as KafkaFetch;
use kafka_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::BrokerId;
use kafka_protocol::ResponseError;
use protocol::ops::fetch::{FetchRequest, ListOffsetsRequest, PartitionTime};
use protocol::{Request, Response};

use super::error;
use super::records::batches_to_kafka;
use super::session::{unexpected, Session};
use crate::handlers::Outcome;

/// Partitions one Fetch may name; more is refused as INVALID_REQUEST, so that one
/// request cannot start an unbounded number of reads.
pub const MAX_PARTITIONS_PER_FETCH: usize = 1024;

/// Serves a Fetch.
pub async fn fetch(s: &mut Session, request: KafkaFetch) -> FetchResponse {
    let asked: usize = request.topics.iter().map(|t| t.partitions.len()).sum();
    if asked > MAX_PARTITIONS_PER_FETCH {
        return FetchResponse::default().with_error_code(ResponseError::InvalidRequest.code());
    }
    let first = round(s, &request).await;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let wait_ms = u32::try_from(request.max_wait_ms).unwrap_or(0);
    if first.bytes >= min_bytes.max(1) || wait_ms == 0 {
        return first.response;
    }
    wait_for_any(s, &request, wait_ms).await;
    round(s, &request).await.response
}

/// One answer, and the record bytes it carries.
struct Round {
    response: FetchResponse,
    bytes: usize,
}

/// Reads every partition asked for once, without waiting.
async fn round(s: &mut Session, request: &KafkaFetch) -> Round {
    // The whole answer, not only each partition, stays within the broker's fetch
    // limit, whatever the client asks for.
    let limit = s.broker.config.limits.max_fetch_bytes as usize;
    let mut left = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .clamp(1, limit.max(1));
    let mut total = 0;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let data = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_aborted_transactions(Some(Vec::new()))
                .with_preferred_read_replica(BrokerId(-1));
            if left == 0 {
                // The answer is full: this partition answers no records, only where
                // it ends, so a consumer's lag stays right.
                partitions.push(end_only(s, &topic.topic.0, p.partition, data).await);
                continue;
            }
            let max = usize::try_from(p.partition_max_bytes)
                .unwrap_or(0)
                .min(left)
                .max(1);
            let native = native_fetch(&topic.topic.0, p.partition, p.fetch_offset, max, 0);
            let answer = match native {
                Some(native) => s.call(native).await,
                None => {
                    partitions.push(data.with_error_code(ResponseError::OffsetOutOfRange.code()));
                    continue;
                }
            };
            let from = p.fetch_offset.max(0) as u64;
            partitions.push(match answer {
                Ok(Response::Fetch(read)) => match batches_to_kafka(read.batches, from) {
                    Ok(records) => {
                        total += records.len();
                        left = left.saturating_sub(records.len());
                        data.with_high_watermark(read.high_watermark as i64)
                            .with_last_stable_offset(read.high_watermark as i64)
                            .with_log_start_offset(read.log_start_offset as i64)
                            .with_records(Some(records))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "a stored batch could not be sent to a Kafka consumer");
                        data.with_error_code(ResponseError::KafkaStorageError.code())
                    }
                },
                Ok(other) => data.with_error_code(error::code(&unexpected(&other))),
                Err(e) => data.with_error_code(error::code(&e)),
            });
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions),
        );
    }
    Round {
        response: FetchResponse::default().with_responses(topics),
        bytes: total,
    }
}

/// A partition's answer without records: its high watermark (the native
/// ListOffsets of "after every record").
async fn end_only(
    s: &mut Session,
    topic: &str,
    partition: i32,
    data: PartitionData,
) -> PartitionData {
    let Ok(partition) = u32::try_from(partition) else {
        return data.with_error_code(ResponseError::UnknownTopicOrPartition.code());
    };
    let looked_up = s
        .call(Request::ListOffsets(ListOffsetsRequest {
            topic: topic.to_owned(),
            partitions: vec![PartitionTime {
                partition,
                timestamp_ms: i64::MAX,
            }],
        }))
        .await;
    match looked_up {
        Ok(Response::ListOffsets(found)) => match found.offsets.first() {
            Some(end) => data
                .with_high_watermark(end.offset as i64)
                .with_last_stable_offset(end.offset as i64)
                .with_records(Some(Bytes::new())),
            None => data.with_error_code(ResponseError::UnknownServerError.code()),
        },
        Ok(other) => data.with_error_code(error::code(&unexpected(&other))),
        Err(e) => data.with_error_code(error::code(&e)),
    }
}

/// Waits until any partition asked for has data at its fetch offset, or `wait_ms`
/// passed: every partition's native long poll at once, the first to answer wins.
async fn wait_for_any(s: &mut Session, request: &KafkaFetch, wait_ms: u32) {
    let mut polls = Vec::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            let Some(native) =
                native_fetch(&topic.topic.0, p.partition, p.fetch_offset, 1, wait_ms)
            else {
                continue;
            };
            match s.start(native) {
                Outcome::Later(pending) => polls.push(pending),
                // Refused or answered at once: the next round says how.
                Outcome::Now(_) => return,
            }
        }
    }
    if polls.is_empty() {
        return;
    }
    // The native fetch caps its wait by the broker's limit; this is the backstop.
    let deadline = Duration::from_millis(u64::from(wait_ms));
    let _ = tokio::time::timeout(deadline, select_all(polls)).await;
}

/// The native Fetch for one partition; `None` for a negative partition or offset.
fn native_fetch(
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    wait_ms: u32,
) -> Option<Request> {
    Some(Request::Fetch(FetchRequest {
        topic: topic.to_owned(),
        partition: u32::try_from(partition).ok()?,
        offset: u64::try_from(offset).ok()?,
        max_bytes: u32::try_from(max_bytes).unwrap_or(u32::MAX),
        max_wait_ms: wait_ms,
    }))
}
