//! ListOffsets: Kafka's earliest (-2) and latest (-1) and its by-timestamp lookups,
//! all as the native ListOffsets through the time index: earliest is the first record
//! at or after the oldest time, latest the high watermark. A timestamp after every
//! record (where the native answer is the high watermark) answers offset -1, as
//! Kafka does (the Java client's `offsetsForTimes` then gives null): the lookup asks
//! for the latest offset in the same native request and compares. The timestamp of
//! a found record is not looked up: answers carry -1.

use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest as KafkaListOffsets;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::ResponseError;
use protocol::ops::fetch::{ListOffsetsRequest, PartitionTime};
use protocol::{Request, Response};

use super::error;
use super::session::{unexpected, Session};

/// Kafka's "latest" query.
pub const LATEST_TIMESTAMP: i64 = -1;
/// Kafka's "earliest" query.
pub const EARLIEST_TIMESTAMP: i64 = -2;

/// The native lookup time for a Kafka query; `None` for a special query not served.
pub fn lookup_time(timestamp: i64) -> Option<i64> {
    match timestamp {
        LATEST_TIMESTAMP => Some(i64::MAX),
        EARLIEST_TIMESTAMP => Some(i64::MIN),
        t if t >= 0 => Some(t),
        _ => None,
    }
}

/// Serves a ListOffsets, one native lookup per partition.
pub async fn list_offsets(s: &mut Session, request: KafkaListOffsets) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let answer = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1);
            let (Some(timestamp_ms), Ok(partition)) =
                (lookup_time(p.timestamp), u32::try_from(p.partition_index))
            else {
                partitions.push(answer.with_error_code(ResponseError::InvalidRequest.code()));
                continue;
            };
            let by_time = p.timestamp >= 0;
            let mut times = vec![PartitionTime {
                partition,
                timestamp_ms,
            }];
            if by_time {
                times.push(PartitionTime {
                    partition,
                    timestamp_ms: i64::MAX,
                });
            }
            let looked_up = s
                .call(Request::ListOffsets(ListOffsetsRequest {
                    topic: topic.name.0.to_string(),
                    partitions: times,
                }))
                .await;
            partitions.push(match looked_up {
                Ok(Response::ListOffsets(found)) => match found.offsets.as_slice() {
                    [o, end] if by_time && o.offset >= end.offset => answer,
                    [o, ..] => answer.with_offset(o.offset as i64),
                    [] => answer.with_error_code(ResponseError::UnknownServerError.code()),
                },
                Ok(other) => answer.with_error_code(error::code(&unexpected(&other))),
                Err(e) => answer.with_error_code(error::code(&e)),
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}
