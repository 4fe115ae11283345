//! Records as a consumer sees them, decoded from fetched or pushed batches.
//!
//! A fetch answer is whole stored batches back to back; a record's key, value and
//! header values are `Bytes` slices of that answer, so decoding copies no payload.
//! Each batch's CRC and structure are checked before any of its records is trusted.

use std::collections::VecDeque;

use bytes::Bytes;
use protocol::batch::{split_batches, BatchView};

use crate::error::ClientError;

/// One record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The partition it was read from.
    pub partition: u32,
    /// Its offset in that partition.
    pub offset: u64,
    /// Its timestamp, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The key, if the producer set one.
    pub key: Option<Bytes>,
    /// The value; `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in the order the producer added them.
    pub headers: Vec<(String, Bytes)>,
}

/// Decodes the records with offsets in `[from_offset, to_offset)` (no upper bound if
/// `to_offset` is `None`) from concatenated batches, appending them to `out` in
/// offset order. Returns the offset after the last record seen in the batches (at
/// least `from_offset`): where the next fetch starts. On an error `out` is left as it
/// was.
///
/// Records below `from_offset` are skipped because a fetch returns whole batches and
/// the first may start before the offset asked for; but the first batch must hold
/// `from_offset` and each next one must start where the one before ended, or the
/// batches are refused ([`ClientError::MisplacedBatch`]) rather than records skipped.
///
/// ```
/// use std::collections::VecDeque;
/// use protocol::batch::BatchBuilder;
///
/// let mut builder = BatchBuilder::new();
/// builder.push(1_700_000_000_000, Some(b"k"), Some(b"a"), &[])?;
/// builder.push(1_700_000_000_001, None, Some(b"b"), &[("trace", b"t1")])?;
/// let batches = builder.finish(); // base offset 0, as a fetch of offset 1 might return
///
/// let mut out = VecDeque::new();
/// let next = client::decode_records(3, batches, 1, None, &mut out)?;
/// assert_eq!(next, 2);
/// assert_eq!(out.len(), 1);
/// assert_eq!(out[0].offset, 1);
/// assert_eq!(out[0].value.as_deref(), Some(&b"b"[..]));
/// assert_eq!(out[0].headers[0].0, "trace");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decode_records(
    partition: u32,
    batches: Bytes,
    from_offset: u64,
    to_offset: Option<u64>,
    out: &mut VecDeque<ConsumerRecord>,
) -> Result<u64, ClientError> {
    let before = out.len();
    let decoded = decode_into(partition, batches, from_offset, to_offset, out);
    if decoded.is_err() {
        // All or nothing: no record of a refused answer reaches the caller.
        out.truncate(before);
    }
    decoded
}

fn decode_into(
    partition: u32,
    batches: Bytes,
    from_offset: u64,
    to_offset: Option<u64>,
    out: &mut VecDeque<ConsumerRecord>,
) -> Result<u64, ClientError> {
    let corrupt = |cause| ClientError::CorruptBatch { partition, cause };
    let mut next_offset = from_offset;
    for batch in split_batches(batches) {
        let batch = batch.map_err(corrupt)?;
        let view = BatchView::new(&batch).map_err(corrupt)?;
        view.validate().map_err(corrupt)?;
        let base_offset = view.header().base_offset;
        if base_offset > next_offset {
            return Err(ClientError::MisplacedBatch {
                partition,
                offset: next_offset,
                first: base_offset,
            });
        }
        for record in view.records() {
            let record = record.map_err(corrupt)?;
            if record.offset < next_offset || to_offset.is_some_and(|to| record.offset >= to) {
                continue;
            }
            let mut headers = Vec::with_capacity(usize::from(record.header_count()));
            for header in record.headers() {
                let (key, value) = header.map_err(corrupt)?;
                headers.push((key.to_string(), batch.slice_ref(value)));
            }
            out.push_back(ConsumerRecord {
                partition,
                offset: record.offset,
                timestamp_ms: record.timestamp_ms,
                key: record.key.map(|k| batch.slice_ref(k)),
                value: record.value.map(|v| batch.slice_ref(v)),
                headers,
            });
            next_offset = record.offset + 1;
        }
        // Batches never overlap, so the next one starts at or after this one's end.
        next_offset = next_offset.max(view.header().next_offset());
    }
    if let Some(to) = to_offset {
        next_offset = next_offset.min(to.max(from_offset));
    }
    Ok(next_offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::batch::{set_base_offset, BatchBuilder};

    fn batch(base: u64, values: &[&str]) -> Bytes {
        let mut builder = BatchBuilder::new();
        for (i, v) in values.iter().enumerate() {
            builder
                .push(1_000 + i as i64, None, Some(v.as_bytes()), &[])
                .unwrap();
        }
        let mut bytes = builder.finish().to_vec();
        set_base_offset(&mut bytes, base);
        Bytes::from(bytes)
    }

    fn concat(parts: &[Bytes]) -> Bytes {
        Bytes::from(parts.concat())
    }

    #[test]
    fn skips_records_before_the_offset_and_after_the_end() {
        let bytes = concat(&[batch(10, &["a", "b", "c"]), batch(13, &["d", "e"])]);
        let mut out = VecDeque::new();
        let next = decode_records(0, bytes.clone(), 11, None, &mut out).unwrap();
        let offsets: Vec<u64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [11, 12, 13, 14]);
        assert_eq!(next, 15);
        assert_eq!(out[0].timestamp_ms, 1_001);

        out.clear();
        let next = decode_records(0, bytes, 11, Some(14), &mut out).unwrap();
        let offsets: Vec<u64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [11, 12, 13]);
        assert_eq!(next, 14);
    }

    #[test]
    fn batches_that_would_skip_records_are_refused() {
        let mut out = VecDeque::new();
        let late = decode_records(4, batch(13, &["d"]), 11, None, &mut out);
        assert!(matches!(
            late,
            Err(ClientError::MisplacedBatch {
                partition: 4,
                offset: 11,
                first: 13
            })
        ));
        let gap = concat(&[batch(10, &["a", "b"]), batch(13, &["d"])]);
        let gapped = decode_records(4, gap, 10, None, &mut out);
        assert!(matches!(
            gapped,
            Err(ClientError::MisplacedBatch {
                offset: 12,
                first: 13,
                ..
            })
        ));
        assert!(out.is_empty(), "nothing of a refused answer is kept");
    }

    #[test]
    fn values_are_slices_of_the_fetched_bytes() {
        let bytes = batch(0, &["hello"]);
        let mut out = VecDeque::new();
        decode_records(0, bytes.clone(), 0, None, &mut out).unwrap();
        let value = out[0].value.clone().unwrap();
        let inside = bytes.as_ptr_range();
        assert!(inside.contains(&value.as_ptr()), "the value was copied");
    }

    #[test]
    fn damaged_batches_are_reported_not_skipped() {
        let mut bytes = batch(0, &["hello"]).to_vec();
        let last = bytes.len() - 3;
        bytes[last] ^= 0xff;
        let mut out = VecDeque::new();
        let err = decode_records(7, Bytes::from(bytes), 0, None, &mut out).unwrap_err();
        assert!(
            matches!(err, ClientError::CorruptBatch { partition: 7, .. }),
            "{err}"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn empty_answer_keeps_the_position() {
        let mut out = VecDeque::new();
        assert_eq!(
            decode_records(0, Bytes::new(), 42, None, &mut out).unwrap(),
            42
        );
    }
}
