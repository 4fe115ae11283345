//! ListOffsets: Kafka's earliest (-2) and latest (-1) and its by-timestamp lookups,
//! all as the native ListOffsets through the time index: earliest is the first record
//! at or after the oldest time, latest the high watermark. A timestamp after every
//! record (where the native answer is the high watermark) answers offset -1, as
//! Kafka does (the Java client's `offsetsForTimes` then gives null): the lookup asks
//! for the latest offset in the same native request and compares. A record found by
//! time is answered with its own timestamp, read by a native Fetch of its batch (as
//! Kafka does; `offsetsForTimes` returns it); earliest and latest carry -1, as on a
//! Kafka broker.

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest as KafkaListOffsets;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::ResponseError;
use protocol::batch::{split_batches, BatchView};
use protocol::ops::fetch::{FetchRequest, ListOffsetsRequest, PartitionTime};
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
            let answer = match looked_up {
                Ok(Response::ListOffsets(found)) => match found.offsets.as_slice() {
                    [o, end] if by_time && o.offset >= end.offset => answer,
                    [o, ..] if by_time => {
                        let timestamp =
                            record_timestamp(s, &topic.name.0, partition, o.offset).await;
                        answer
                            .with_offset(o.offset as i64)
                            .with_timestamp(timestamp.unwrap_or(-1))
                    }
                    [o, ..] => answer.with_offset(o.offset as i64),
                    [] => answer.with_error_code(ResponseError::UnknownServerError.code()),
                },
                Ok(other) => answer.with_error_code(error::code(&unexpected(&other))),
                Err(e) => answer.with_error_code(error::code(&e)),
            };
            partitions.push(answer);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// The timestamp of the record at `offset`, read with a native Fetch of the batch that
/// holds it (at once, no wait); `None` when it cannot be read (retention moved past
/// it, or it is not yet readable), and the answer then carries -1 as before.
async fn record_timestamp(
    s: &mut Session,
    topic: &str,
    partition: u32,
    offset: u64,
) -> Option<i64> {
    let fetched = s
        .call(Request::Fetch(FetchRequest {
            topic: topic.to_owned(),
            partition,
            offset,
            // At least one whole batch comes back whatever the cap: the one holding
            // `offset`.
            max_bytes: 1,
            max_wait_ms: 0,
        }))
        .await;
    match fetched {
        Ok(Response::Fetch(data)) => timestamp_at(data.batches, offset),
        _ => None,
    }
}

/// The timestamp of the record at `offset` among fetched batches, pure; `None` if no
/// sound batch holds it.
fn timestamp_at(batches: Bytes, offset: u64) -> Option<i64> {
    for batch in split_batches(batches) {
        let batch = batch.ok()?;
        let view = BatchView::new(&batch).ok()?;
        let header = view.header();
        if offset < header.base_offset || offset >= header.next_offset() {
            continue;
        }
        return view
            .records()
            .filter_map(Result::ok)
            .find(|record| record.offset == offset)
            .map(|record| record.timestamp_ms);
    }
    None
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use protocol::batch::{set_base_offset, BatchBuilder};

    use super::*;

    fn batch(base_offset: u64, timestamps: &[i64]) -> Bytes {
        let mut builder = BatchBuilder::new();
        for &t in timestamps {
            builder.push(t, None, Some(b"v"), &[]).unwrap();
        }
        let mut bytes = BytesMut::from(&builder.finish()[..]);
        set_base_offset(&mut bytes, base_offset);
        bytes.freeze()
    }

    #[test]
    fn the_timestamp_comes_from_the_record_at_the_offset_in_whichever_batch_holds_it() {
        let mut run = BytesMut::new();
        run.extend_from_slice(&batch(10, &[100, 300, 200]));
        run.extend_from_slice(&batch(13, &[400, 500]));
        let run = run.freeze();
        assert_eq!(timestamp_at(run.clone(), 10), Some(100));
        assert_eq!(timestamp_at(run.clone(), 12), Some(200));
        assert_eq!(timestamp_at(run.clone(), 14), Some(500));
        assert_eq!(timestamp_at(run.clone(), 15), None, "past every batch");
        assert_eq!(timestamp_at(run.clone(), 9), None, "before every batch");
        assert_eq!(timestamp_at(Bytes::new(), 10), None, "nothing fetched");
        assert_eq!(timestamp_at(run.slice(..20), 10), None, "a torn batch");
    }
}
