//! Records as JSON, to a batch and back (pure).
//!
//! A record's bytes travel two ways, and the JSON carries both, so a Python, Go or
//! shell client can take whichever it finds natural:
//!
//! - `value`, for text and JSON. Producing: a JSON string is stored as its UTF-8
//!   text (no quotes); any other JSON value (object, array, number, boolean) as its
//!   compact JSON text, object keys in the order sent; `null` (or leaving it out) stores a record without a value.
//!   Fetching: a value whose bytes are JSON other than a string (an object, an
//!   array, a number, a boolean) comes back as that JSON; any other UTF-8 text comes
//!   back as a string; bytes that are not UTF-8 come back as `null` (see
//!   `value_base64`).
//! - `value_base64`, exact bytes (standard base64, with padding). Producing: use it
//!   instead of `value` for binary data. Fetching: always present when the record has
//!   a value.
//!
//! So text produced as `value` reads back byte for byte, JSON produced as `value`
//! reads back as the same JSON, and `value_base64` is exact for everything. Keys and
//! header values follow the same two-field rule, except that they are always text
//! (`key`) or base64 (`key_base64`), never parsed as JSON.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use protocol::batch::{BatchBuilder, BatchView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One record to produce.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceRecord {
    /// The key as text (UTF-8). Records with a key and no `partition` go to the
    /// partition the key hashes to, as with the native client.
    #[serde(default)]
    pub key: Option<String>,
    /// The key as base64 bytes, instead of `key`.
    #[serde(default)]
    pub key_base64: Option<String>,
    /// The value: a string is stored as its text, other JSON as its compact JSON
    /// text; `null` or absent stores no value.
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// The value as base64 bytes, instead of `value`.
    #[serde(default)]
    pub value_base64: Option<String>,
    /// Headers, in order (names may repeat).
    #[serde(default)]
    #[serde(deserialize_with = "super::body::objects")]
    pub headers: Vec<ProduceHeader>,
    /// The partition; absent: by key, or (without a key) the broker's round-robin.
    #[serde(default)]
    pub partition: Option<u32>,
    /// The record's timestamp, ms since the epoch; absent: the broker's clock.
    #[serde(default)]
    pub timestamp_ms: Option<i64>,
}

/// One header of a record to produce.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceHeader {
    /// The header's name.
    pub key: String,
    /// The value as text.
    #[serde(default)]
    pub value: Option<String>,
    /// The value as base64 bytes, instead of `value`.
    #[serde(default)]
    pub value_base64: Option<String>,
}

/// One fetched record.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FetchedRecord {
    /// The record's offset in its partition.
    pub offset: u64,
    /// The record's timestamp, ms since the epoch (the producer's).
    pub timestamp_ms: i64,
    /// The key as text; `null` without a key or when it is not UTF-8.
    pub key: Option<String>,
    /// The key's bytes, base64; `null` without a key.
    pub key_base64: Option<String>,
    /// The value: JSON when its bytes are JSON other than a string, else the text;
    /// `null` without a value or when it is not UTF-8.
    pub value: Option<serde_json::Value>,
    /// The value's bytes, base64; `null` without a value.
    pub value_base64: Option<String>,
    /// Headers, in order.
    pub headers: Vec<FetchedHeader>,
}

/// One header of a fetched record.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FetchedHeader {
    /// The header's name.
    pub key: String,
    /// The value as text; `null` when it is not UTF-8.
    pub value: Option<String>,
    /// The value's bytes, base64.
    pub value_base64: String,
}

/// Why records could not become a batch. Messages name the record by its index in
/// the request and never repeat its contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Both the text and the base64 form of a field.
    #[error("record {index}: give either {field} or {field}_base64, not both")]
    Both {
        /// The record's index in the request.
        index: usize,
        /// The field.
        field: &'static str,
    },
    /// Base64 that does not decode.
    #[error(
        "record {index}: {field}_base64 is not valid base64 (standard alphabet, with padding)"
    )]
    Base64 {
        /// The record's index in the request.
        index: usize,
        /// The field.
        field: &'static str,
    },
    /// The protocol's batch layout refused the record (too large, a timestamp too
    /// far from the batch's first).
    #[error("record {index}: {reason}")]
    Batch {
        /// The record's index in the request.
        index: usize,
        /// What the batch builder said.
        reason: String,
    },
}

/// A record decoded to bytes, borrowed from nothing: what a batch is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBytes {
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Timestamp, if given.
    pub timestamp_ms: Option<i64>,
}

/// The bytes of one side of a text-or-base64 field.
fn text_or_base64(
    index: usize,
    field: &'static str,
    text: Option<&str>,
    base64: Option<&str>,
) -> Result<Option<Vec<u8>>, RecordError> {
    match (text, base64) {
        (Some(_), Some(_)) => Err(RecordError::Both { index, field }),
        (Some(text), None) => Ok(Some(text.as_bytes().to_vec())),
        (None, Some(encoded)) => BASE64
            .decode(encoded)
            .map(Some)
            .map_err(|_| RecordError::Base64 { index, field }),
        (None, None) => Ok(None),
    }
}

/// The bytes a JSON `value` is stored as: a string's text, other JSON's compact text.
pub fn value_bytes(value: &serde_json::Value) -> Vec<u8> {
    match value {
        serde_json::Value::String(text) => text.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

/// Decodes `record` (the `index`th of its request) to bytes.
pub fn decode(index: usize, record: &ProduceRecord) -> Result<RecordBytes, RecordError> {
    let key = text_or_base64(
        index,
        "key",
        record.key.as_deref(),
        record.key_base64.as_deref(),
    )?;
    let value = match (&record.value, &record.value_base64) {
        (Some(_), Some(_)) => {
            return Err(RecordError::Both {
                index,
                field: "value",
            })
        }
        (Some(value), None) => Some(value_bytes(value)),
        (None, encoded) => text_or_base64(index, "value", None, encoded.as_deref())?,
    };
    let mut headers = Vec::with_capacity(record.headers.len());
    for header in &record.headers {
        let bytes = text_or_base64(
            index,
            "headers[].value",
            header.value.as_deref(),
            header.value_base64.as_deref(),
        )?
        .unwrap_or_default();
        headers.push((header.key.clone(), bytes));
    }
    Ok(RecordBytes {
        key,
        value,
        headers,
        timestamp_ms: record.timestamp_ms,
    })
}

/// One batch of `records` (indexes into the request, for error messages), stamped
/// `now_ms` where a record has no timestamp.
pub fn build_batch(records: &[(usize, &RecordBytes)], now_ms: i64) -> Result<Bytes, RecordError> {
    let size: usize = records
        .iter()
        .map(|(_, r)| {
            let headers: Vec<(&str, &[u8])> = r
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            BatchBuilder::record_size(r.key.as_deref(), r.value.as_deref(), &headers)
        })
        .sum();
    let mut builder = BatchBuilder::with_capacity(protocol::batch::BATCH_HEADER_BYTES + size);
    for (index, record) in records {
        let headers: Vec<(&str, &[u8])> = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        builder
            .push(
                record.timestamp_ms.unwrap_or(now_ms),
                record.key.as_deref(),
                record.value.as_deref(),
                &headers,
            )
            .map_err(|e| RecordError::Batch {
                index: *index,
                reason: e.to_string(),
            })?;
    }
    Ok(builder.finish())
}

/// Where the records of one produce request go: by explicit partition, by key hash
/// (the function the native client and the broker use), or, for records with
/// neither, together to the one partition the broker's round-robin picks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// Record indexes per partition, in request order.
    pub by_partition: BTreeMap<u32, Vec<usize>>,
    /// Records without a partition or key, in request order.
    pub any: Vec<usize>,
}

/// Places `records` on a topic of `partitions` partitions.
pub fn place(records: &[RecordBytes], explicit: &[Option<u32>], partitions: u32) -> Placement {
    let mut placement = Placement::default();
    for (index, (record, partition)) in records.iter().zip(explicit).enumerate() {
        let target = match (partition, &record.key) {
            (Some(p), _) => Some(*p),
            (None, Some(key)) => Some(protocol::ops::produce::partition_for_key(key, partitions)),
            (None, None) => None,
        };
        match target {
            Some(p) => placement.by_partition.entry(p).or_default().push(index),
            None => placement.any.push(index),
        }
    }
    placement
}

/// The records of `batches` (concatenated batches, as a fetch answers them) at or
/// after `from`, at most `max_records`, as JSON; and the offset after the last one
/// read (or after the last batch, when fewer than `max_records` were there).
pub fn fetched(
    batches: &Bytes,
    from: u64,
    max_records: usize,
) -> Result<(Vec<FetchedRecord>, Option<u64>), protocol::batch::BatchError> {
    let mut out = Vec::new();
    let mut next = None;
    for batch in protocol::batch::split_batches(batches.clone()) {
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
            out.push(to_json(&record)?);
            next = Some(record.offset + 1);
        }
        next = Some(view.header().next_offset().max(next.unwrap_or(0)));
    }
    Ok((out, next))
}

/// One stored record as JSON.
pub fn to_json(
    record: &protocol::batch::RecordView<'_>,
) -> Result<FetchedRecord, protocol::batch::BatchError> {
    let mut headers = Vec::with_capacity(record.header_count() as usize);
    for header in record.headers() {
        let (key, value) = header?;
        headers.push(FetchedHeader {
            key: key.to_string(),
            value: std::str::from_utf8(value).ok().map(str::to_string),
            value_base64: BASE64.encode(value),
        });
    }
    Ok(FetchedRecord {
        offset: record.offset,
        timestamp_ms: record.timestamp_ms,
        key: record
            .key
            .and_then(|k| std::str::from_utf8(k).ok())
            .map(str::to_string),
        key_base64: record.key.map(|k| BASE64.encode(k)),
        value: record.value.and_then(value_json),
        value_base64: record.value.map(|v| BASE64.encode(v)),
        headers,
    })
}

/// A value's `value` field: JSON other than a string as itself, other UTF-8 as text.
pub fn value_json(bytes: &[u8]) -> Option<serde_json::Value> {
    let text = std::str::from_utf8(bytes).ok()?;
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::String(_)) | Err(_) => {
            Some(serde_json::Value::String(text.to_string()))
        }
        Ok(json) => Some(json),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(json: serde_json::Value) -> ProduceRecord {
        serde_json::from_value(json).unwrap()
    }

    fn round_trip(records: &[ProduceRecord]) -> Vec<FetchedRecord> {
        let decoded: Vec<RecordBytes> = records
            .iter()
            .enumerate()
            .map(|(i, r)| decode(i, r).unwrap())
            .collect();
        let refs: Vec<(usize, &RecordBytes)> = decoded.iter().enumerate().collect();
        let mut batch = bytes::BytesMut::from(&build_batch(&refs, 1_000).unwrap()[..]);
        protocol::batch::set_base_offset(&mut batch, 40);
        let (out, next) = fetched(&batch.freeze(), 0, usize::MAX).unwrap();
        assert_eq!(next, Some(40 + records.len() as u64));
        out
    }

    #[test]
    fn text_json_and_bytes_come_back_as_they_went() {
        let out = round_trip(&[
            record(
                json!({"key": "k", "value": "plain text", "headers": [{"key": "h", "value": "v"}]}),
            ),
            record(json!({"value": {"a": [1, 2]}, "timestamp_ms": 5})),
            record(json!({"key_base64": "AP8=", "value_base64": "AAEC"})),
            record(json!({"value": null})),
            record(json!({"value": "42"})),
        ]);
        assert_eq!(out[0].offset, 40);
        assert_eq!(out[0].key.as_deref(), Some("k"));
        assert_eq!(out[0].value, Some(json!("plain text")));
        assert_eq!(
            out[0].value_base64.as_deref(),
            Some(BASE64.encode("plain text").as_str())
        );
        assert_eq!(
            out[0].headers,
            vec![FetchedHeader {
                key: "h".into(),
                value: Some("v".into()),
                value_base64: BASE64.encode("v")
            }]
        );
        assert_eq!(out[0].timestamp_ms, 1_000, "the broker's clock");
        assert_eq!(out[1].value, Some(json!({"a": [1, 2]})));
        assert_eq!(
            out[1].value_base64.as_deref(),
            Some(BASE64.encode(r#"{"a":[1,2]}"#).as_str())
        );
        assert_eq!(out[1].timestamp_ms, 5);
        assert_eq!(out[2].key, None, "not UTF-8");
        assert_eq!(out[2].key_base64.as_deref(), Some("AP8="));
        assert_eq!(out[2].value, Some(json!("\u{0}\u{1}\u{2}")));
        assert_eq!(out[2].value_base64.as_deref(), Some("AAEC"));
        assert_eq!(out[3].value, None);
        assert_eq!(out[3].value_base64, None, "no value at all");
        assert_eq!(
            out[4].value,
            Some(json!(42)),
            "text that is JSON reads as JSON"
        );
        assert_eq!(
            out[4].value_base64.as_deref(),
            Some(BASE64.encode("42").as_str())
        );
    }

    #[test]
    fn a_json_string_literal_stays_text() {
        assert_eq!(value_json(br#""quoted""#), Some(json!("\"quoted\"")));
        assert_eq!(value_json(b"not json"), Some(json!("not json")));
        assert_eq!(value_json(&[0xff, 0xfe]), None);
    }

    #[test]
    fn bad_records_are_refused_by_index_without_their_contents() {
        let both = record(json!({"value": "x", "value_base64": "eA=="}));
        assert_eq!(
            decode(3, &both).unwrap_err(),
            RecordError::Both {
                index: 3,
                field: "value"
            }
        );
        let bad = record(json!({"value_base64": "not base64!"}));
        let error = decode(0, &bad).unwrap_err();
        assert_eq!(
            error,
            RecordError::Base64 {
                index: 0,
                field: "value"
            }
        );
        assert!(!error.to_string().contains("not base64!"));
        let header =
            record(json!({"headers": [{"key": "h", "value": "a", "value_base64": "YQ=="}]}));
        assert!(matches!(
            decode(1, &header),
            Err(RecordError::Both { index: 1, .. })
        ));
        assert!(
            serde_json::from_value::<ProduceRecord>(json!({"valeu": 1})).is_err(),
            "unknown fields are refused"
        );
    }

    #[test]
    fn placement_follows_partition_then_key_then_round_robin() {
        let records: Vec<RecordBytes> = [
            Some(b"user-1".to_vec()),
            None,
            None,
            Some(b"user-1".to_vec()),
        ]
        .into_iter()
        .map(|key| RecordBytes {
            key,
            value: None,
            headers: vec![],
            timestamp_ms: None,
        })
        .collect();
        let explicit = [None, Some(2), None, None];
        let placement = place(&records, &explicit, 4);
        let by_key = protocol::ops::produce::partition_for_key(b"user-1", 4);
        let mut expected = BTreeMap::new();
        expected
            .entry(by_key)
            .or_insert_with(Vec::new)
            .extend([0, 3]);
        expected.entry(2).or_insert_with(Vec::new).push(1);
        assert_eq!(placement.by_partition, expected);
        assert_eq!(placement.any, vec![2]);
    }

    #[test]
    fn fetched_skips_records_before_the_offset_and_stops_at_the_count() {
        let decoded: Vec<RecordBytes> = (0..5)
            .map(|i| RecordBytes {
                key: None,
                value: Some(vec![b'a' + i]),
                headers: vec![],
                timestamp_ms: None,
            })
            .collect();
        let refs: Vec<(usize, &RecordBytes)> = decoded.iter().enumerate().collect();
        let batch = build_batch(&refs, 0).unwrap();
        let (out, next) = fetched(&batch, 2, 2).unwrap();
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(next, Some(4));
        let (out, next) = fetched(&batch, 2, 100).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(next, Some(5));
        let (out, next) = fetched(&Bytes::new(), 7, 100).unwrap();
        assert!(out.is_empty());
        assert_eq!(next, None);
    }
}
