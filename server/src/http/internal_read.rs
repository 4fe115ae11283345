//! Reading an internal topic (`__registry`, `__traces`) through the request layer,
//! as the native client's registry watch and `brokerctl traces` do: DescribeTopic
//! for its bounds, then Fetch from an offset, each through [`call`], so the same ACLs
//! apply (Read on `__registry`; the trace resource for `__traces`). The record
//! walking is pure ([`records_of`]) and tested alone.

use std::sync::Arc;

use bytes::Bytes;
use protocol::batch::{split_batches, BatchError, BatchView};
use protocol::ops::fetch::FetchRequest;
use protocol::ops::topic::DescribeTopicRequest;
use protocol::{ErrorCode, Request, Response};

use super::auth::Caller;
use super::call::{call, unexpected};
use super::error::ApiError;
use crate::broker::Broker;

/// One record of an internal topic: its offset, and its key and value as slices of
/// the fetched bytes (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalRecord {
    /// Its offset.
    pub offset: u64,
    /// Its key.
    pub key: Option<Bytes>,
    /// Its value.
    pub value: Option<Bytes>,
    /// Whether it carries a header of the name asked for (the registry's snapshot
    /// mark).
    pub marked: bool,
}

/// The records of `batches` at or after `from`, at most `max_records`, each
/// [`InternalRecord::marked`] when it has a header named `mark`; and the offset to
/// read from next.
pub fn records_of(
    batches: &Bytes,
    from: u64,
    max_records: usize,
    mark: &str,
) -> Result<(Vec<InternalRecord>, u64), BatchError> {
    let mut out = Vec::new();
    let mut next = from;
    for batch in split_batches(batches.clone()) {
        let batch = batch?;
        let view = BatchView::new(&batch)?;
        for record in view.records() {
            let record = record?;
            if record.offset < from {
                continue;
            }
            if out.len() >= max_records {
                return Ok((out, next));
            }
            let mut marked = false;
            for header in record.headers() {
                marked |= header?.0 == mark;
            }
            out.push(InternalRecord {
                offset: record.offset,
                key: record.key.map(|k| batch.slice_ref(k)),
                value: record.value.map(|v| batch.slice_ref(v)),
                marked,
            });
            next = record.offset + 1;
        }
        next = next.max(view.header().next_offset());
    }
    Ok((out, next))
}

/// Partition 0's start and end offsets, or `None` when the topic does not exist yet.
pub async fn bounds(
    broker: &Arc<Broker>,
    caller: &Caller,
    topic: &str,
) -> Result<Option<(u64, u64)>, ApiError> {
    let request = Request::DescribeTopic(DescribeTopicRequest { name: topic.into() });
    match call(broker, caller, request).await {
        Ok(Response::DescribeTopic(described)) => Ok(described
            .partitions
            .first()
            .map(|p| (p.start_offset, p.end_offset))),
        Ok(other) => Err(unexpected(&other)),
        Err(e) if e.code() == ErrorCode::UnknownTopic => Ok(None),
        Err(e) => Err(e),
    }
}

/// How one internal topic is read.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    /// The topic.
    pub topic: &'a str,
    /// Bytes of batches one Fetch reads at most.
    pub max_bytes: u32,
    /// Records one read returns at most.
    pub max_records: usize,
    /// The header name [`InternalRecord::marked`] looks for.
    pub mark: &'a str,
}

/// One Fetch of partition 0 from `offset`, waiting up to `max_wait_ms` for records:
/// the records and the offset to read from next.
pub async fn read(
    broker: &Arc<Broker>,
    caller: &Caller,
    reading: Reading<'_>,
    offset: u64,
    max_wait_ms: u32,
) -> Result<(Vec<InternalRecord>, u64), ApiError> {
    let request = Request::Fetch(FetchRequest {
        topic: reading.topic.into(),
        partition: 0,
        offset,
        max_bytes: reading.max_bytes,
        max_wait_ms,
    });
    let fetched = match call(broker, caller, request).await? {
        Response::Fetch(fetched) => fetched,
        other => return Err(unexpected(&other)),
    };
    records_of(&fetched.batches, offset, reading.max_records, reading.mark).map_err(|e| {
        ApiError::new(
            ErrorCode::StorageError,
            format!("a stored batch of {} did not read back: {e}", reading.topic),
        )
    })
}

#[cfg(test)]
mod tests {
    use protocol::batch::BatchBuilder;

    use super::*;

    /// A record's value and headers.
    type Record<'a> = (&'a [u8], &'a [(&'a str, &'a [u8])]);

    fn batch(base: u64, records: &[Record<'_>]) -> Bytes {
        let mut builder = BatchBuilder::with_capacity(1024);
        for (value, headers) in records {
            builder.push(0, Some(b"k"), Some(value), headers).unwrap();
        }
        let mut bytes = bytes::BytesMut::from(&builder.finish()[..]);
        protocol::batch::set_base_offset(&mut bytes, base);
        bytes.freeze()
    }

    #[test]
    fn records_from_an_offset_with_marks_and_a_count() {
        let mut all = bytes::BytesMut::new();
        all.extend_from_slice(&batch(10, &[(b"a", &[]), (b"b", &[("snap", b"1")])]));
        all.extend_from_slice(&batch(12, &[(b"c", &[("other", b"1")])]));
        let all = all.freeze();
        let (records, next) = records_of(&all, 11, 100, "snap").unwrap();
        assert_eq!(
            records
                .iter()
                .map(|r| (r.offset, r.value.clone().unwrap(), r.marked))
                .collect::<Vec<_>>(),
            [
                (11, Bytes::from_static(b"b"), true),
                (12, Bytes::from_static(b"c"), false)
            ]
        );
        assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(next, 13);
        let (records, next) = records_of(&all, 10, 1, "snap").unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(next, 11, "the next read starts after the last record taken");
        let (records, next) = records_of(&Bytes::new(), 7, 100, "snap").unwrap();
        assert!(records.is_empty());
        assert_eq!(next, 7);
    }
}
