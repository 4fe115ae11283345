//! Record batches: the unit of I/O from producer to disk to consumer.
//!
//! A producer encodes a batch once with [`BatchBuilder`] and checksums it. The broker
//! checks it with [`BatchView::validate`], writes the log offset into the header with
//! [`set_base_offset`] (the one field the CRC does not cover) and appends the bytes
//! unchanged; a consumer receives those same bytes and iterates them with
//! [`BatchView::records`], which borrows keys, values and headers from the batch and
//! allocates nothing.
//!
//! This module is the single definition of the layout; `storage` uses it too. All
//! integers are little-endian. The normative description is in `docs/protocol.md`
//! ("Record batch") and `docs/storage.md`.
//!
//! ```text
//! offset size field
//!      0    8 base_offset        assigned by the log; a producer writes 0
//!      8    4 batch_len          total bytes of the batch, this header included
//!     12    4 crc32              CRC-32 (IEEE, crc32fast) of bytes [16, batch_len)
//!     16    1 magic              batch format version, currently 1
//!     17    1 attributes         must be 0 (bits reserved for compression)
//!     18    2 reserved           must be 0
//!     20    4 record_count       >= 1
//!     24    8 first_timestamp_ms timestamp of the first record (ms since the epoch)
//!     32    8 max_timestamp_ms   largest record timestamp in the batch
//!     40    . records            record_count records, back to back
//!
//! record:
//!      0    4 record_len         bytes that follow in this record
//!      4    4 timestamp_delta    i32, ms relative to first_timestamp_ms
//!      8    4 key_len            i32, -1 = no key
//!     12    . key
//!      .    4 value_len          i32, -1 = no value (a tombstone)
//!      .    . value
//!      .    2 header_count       u16
//!      .    . headers            header_count x (u16 key_len, UTF-8 key, u32 value_len, value)
//! ```

use bytes::{BufMut, Bytes, BytesMut};

mod error;
mod header;
mod layout;
mod records;
mod split;
mod validate;
mod view;

pub use error::BatchError;
pub use header::{compute_crc, set_base_offset, BatchHeader};
pub use layout::{
    BATCH_HEADER_BYTES, BATCH_MAGIC, MAX_BATCH_BYTES, MAX_HEADERS_PER_RECORD, MIN_RECORD_BYTES,
};
use layout::{
    BATCH_LEN_AT, CRC_AT, FIRST_TIMESTAMP_AT, MAGIC_AT, MAX_TIMESTAMP_AT, RECORD_COUNT_AT,
};
pub use records::{HeaderIter, RecordIter, RecordView};
pub use split::{split_batches, BatchSplitter};
pub use view::BatchView;

/// Encodes records into one batch. The output of [`finish`](Self::finish) is ready to
/// send: header filled in, CRC computed, base offset 0.
///
/// ```
/// use protocol::batch::{BatchBuilder, BatchView};
///
/// let mut builder = BatchBuilder::new();
/// builder.push(1_700_000_000_000, Some(b"user-1"), Some(b"hello"), &[("trace", b"abc")])?;
/// builder.push(1_700_000_000_005, None, Some(b"world"), &[])?;
/// let bytes = builder.finish();
///
/// let batch = BatchView::new(&bytes)?;
/// batch.validate()?;
/// let values: Vec<_> = batch.records().map(|r| r.unwrap().value.unwrap()).collect();
/// assert_eq!(values, [&b"hello"[..], &b"world"[..]]);
/// # Ok::<(), protocol::batch::BatchError>(())
/// ```
#[derive(Debug)]
pub struct BatchBuilder {
    buf: BytesMut,
    record_count: u32,
    first_timestamp_ms: i64,
    max_timestamp_ms: i64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> BatchBuilder {
        Self::with_capacity(BATCH_HEADER_BYTES)
    }

    /// An empty builder with room for `bytes` of batch without reallocating.
    pub fn with_capacity(bytes: usize) -> BatchBuilder {
        let mut buf = BytesMut::with_capacity(bytes.max(BATCH_HEADER_BYTES));
        buf.put_bytes(0, BATCH_HEADER_BYTES);
        BatchBuilder {
            buf,
            record_count: 0,
            first_timestamp_ms: 0,
            max_timestamp_ms: i64::MIN,
        }
    }

    /// Bytes the batch would have if finished now.
    pub fn len_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Records pushed so far.
    pub fn record_count(&self) -> u32 {
        self.record_count
    }

    /// True before the first push.
    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// Encoded size of a record with these fields.
    pub fn record_size(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> usize {
        MIN_RECORD_BYTES
            + key.map_or(0, <[u8]>::len)
            + value.map_or(0, <[u8]>::len)
            + headers
                .iter()
                .map(|(k, v)| 2 + k.len() + 4 + v.len())
                .sum::<usize>()
    }

    /// Appends one record. Fails, leaving the builder unchanged, if a field does not fit
    /// its length prefix, the batch would pass [`MAX_BATCH_BYTES`], or the timestamp is
    /// more than `i32::MAX` ms away from the first record's.
    pub fn push(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> Result<(), BatchError> {
        let first_ms = if self.record_count == 0 {
            timestamp_ms
        } else {
            self.first_timestamp_ms
        };
        let delta = i32::try_from(timestamp_ms.wrapping_sub(first_ms)).map_err(|_| {
            BatchError::TimestampOutOfRange {
                timestamp_ms,
                first_ms,
            }
        })?;
        let size = Self::record_size(key, value, headers);
        if self.buf.len() + size > MAX_BATCH_BYTES {
            return Err(BatchError::FieldTooLarge { what: "record" });
        }
        if headers.len() > MAX_HEADERS_PER_RECORD {
            return Err(BatchError::FieldTooLarge {
                what: "header count",
            });
        }
        for (k, _) in headers {
            if k.len() > u16::MAX as usize {
                return Err(BatchError::FieldTooLarge { what: "header key" });
            }
        }
        // The size check above bounds every length below by MAX_BATCH_BYTES < i32::MAX.
        self.buf.reserve(size);
        self.buf.put_u32_le((size - 4) as u32);
        self.buf.put_i32_le(delta);
        put_optional_bytes(&mut self.buf, key);
        put_optional_bytes(&mut self.buf, value);
        self.buf.put_u16_le(headers.len() as u16);
        for (k, v) in headers {
            self.buf.put_u16_le(k.len() as u16);
            self.buf.put_slice(k.as_bytes());
            self.buf.put_u32_le(v.len() as u32);
            self.buf.put_slice(v);
        }
        self.first_timestamp_ms = first_ms;
        self.max_timestamp_ms = self.max_timestamp_ms.max(timestamp_ms);
        self.record_count += 1;
        Ok(())
    }

    /// Fills in the header, computes the CRC and returns the batch. Finishing an empty
    /// builder gives a batch that [`BatchView::validate`] rejects as [`BatchError::Empty`].
    pub fn finish(self) -> Bytes {
        let mut buf = self.buf;
        let len = buf.len() as u32;
        let max_ts = if self.record_count == 0 {
            0
        } else {
            self.max_timestamp_ms
        };
        buf[BATCH_LEN_AT..BATCH_LEN_AT + 4].copy_from_slice(&len.to_le_bytes());
        buf[MAGIC_AT] = BATCH_MAGIC;
        buf[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&self.record_count.to_le_bytes());
        buf[FIRST_TIMESTAMP_AT..FIRST_TIMESTAMP_AT + 8]
            .copy_from_slice(&self.first_timestamp_ms.to_le_bytes());
        buf[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_ts.to_le_bytes());
        let crc = compute_crc(&buf);
        buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        buf.freeze()
    }
}

fn put_optional_bytes(buf: &mut BytesMut, field: Option<&[u8]>) {
    match field {
        Some(bytes) => {
            buf.put_i32_le(bytes.len() as i32);
            buf.put_slice(bytes);
        }
        None => buf.put_i32_le(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::layout::CRC_START;
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Bytes {
        let mut b = BatchBuilder::new();
        b.push(1000, Some(b"k1"), Some(b"v1"), &[("h", b"x")])
            .unwrap();
        b.push(990, None, None, &[]).unwrap();
        b.push(1010, Some(b""), Some(b"v3"), &[("a", b""), ("bb", b"yy")])
            .unwrap();
        b.finish()
    }

    #[test]
    fn round_trip_and_header_fields() {
        let bytes = sample();
        let view = BatchView::new(&bytes).unwrap();
        view.validate().unwrap();
        let h = view.header();
        assert_eq!(h.record_count, 3);
        assert_eq!(h.first_timestamp_ms, 1000);
        assert_eq!(h.max_timestamp_ms, 1010);
        assert_eq!(h.batch_len as usize, bytes.len());
        let recs: Vec<_> = view.records().map(Result::unwrap).collect();
        assert_eq!(recs[1].timestamp_ms, 990);
        assert_eq!(recs[1].key, None);
        assert_eq!(recs[1].value, None);
        assert_eq!(recs[2].key, Some(&b""[..]));
        let hs: Vec<_> = recs[2].headers().map(Result::unwrap).collect();
        assert_eq!(hs, [("a", &b""[..]), ("bb", &b"yy"[..])]);
    }

    #[test]
    fn base_offset_is_outside_the_crc() {
        let mut bytes = BytesMut::from(&sample()[..]);
        set_base_offset(&mut bytes, 42);
        let view = BatchView::new(&bytes).unwrap();
        view.validate().unwrap();
        assert_eq!(view.header().base_offset, 42);
        assert_eq!(view.header().next_offset(), 45);
        let offsets: Vec<_> = view.records().map(|r| r.unwrap().offset).collect();
        assert_eq!(offsets, [42, 43, 44]);
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let good = sample();
        for at in 0..good.len() {
            if at < CRC_START && at != MAGIC_AT {
                continue; // base offset, length and crc fields: covered by other checks
            }
            let mut bad = BytesMut::from(&good[..]);
            bad[at] ^= 0x40;
            let result = BatchView::new(&bad).and_then(|v| v.validate());
            assert!(result.is_err(), "flip at {at} went unnoticed");
        }
    }

    #[test]
    fn distinct_errors() {
        let good = sample();
        assert_eq!(
            BatchView::new(&good[..10]).unwrap_err(),
            BatchError::TooShort { len: 10 }
        );
        assert!(matches!(
            BatchView::new(&good[..good.len() - 1]).unwrap_err(),
            BatchError::LengthMismatch { .. }
        ));
        let mut bad = BytesMut::from(&good[..]);
        bad[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
        let crc = compute_crc(&bad);
        bad[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            BatchView::new(&bad).unwrap().validate().unwrap_err(),
            BatchError::AbsurdRecordCount { .. }
        ));
        bad[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&2u32.to_le_bytes());
        let crc = compute_crc(&bad);
        bad[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            BatchView::new(&bad).unwrap().validate().unwrap_err(),
            BatchError::TrailingBytes { .. }
        ));
        let empty = BatchBuilder::new().finish();
        assert_eq!(
            BatchView::new(&empty).unwrap().validate().unwrap_err(),
            BatchError::Empty
        );
    }

    #[test]
    fn split_batches_is_zero_copy() {
        let one = sample();
        let mut both = BytesMut::new();
        both.extend_from_slice(&one);
        both.extend_from_slice(&one);
        let both = both.freeze();
        let parts: Vec<_> = split_batches(both.clone()).map(Result::unwrap).collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].as_ptr(), both[one.len()..].as_ptr());
    }

    type Rec = (
        i64,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Vec<(String, Vec<u8>)>,
    );

    fn record() -> impl Strategy<Value = Rec> {
        (
            -1_000_000i64..1_000_000,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            proptest::collection::vec(
                ("\\PC{0,8}", proptest::collection::vec(any::<u8>(), 0..8)),
                0..4,
            ),
        )
    }

    proptest! {
        #[test]
        fn prop_round_trip(records in proptest::collection::vec(record(), 1..20), base in any::<u64>()) {
            let mut b = BatchBuilder::new();
            for (ts, k, v, hs) in &records {
                let hs: Vec<(&str, &[u8])> = hs.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
                b.push(*ts, k.as_deref(), v.as_deref(), &hs).unwrap();
            }
            let mut bytes = BytesMut::from(&b.finish()[..]);
            set_base_offset(&mut bytes, base);
            let view = BatchView::new(&bytes).unwrap();
            view.validate().unwrap();
            prop_assert_eq!(view.header().record_count as usize, records.len());
            for (i, (rec, (ts, k, v, hs))) in view.records().zip(&records).enumerate() {
                let rec = rec.unwrap();
                prop_assert_eq!(rec.offset, base.wrapping_add(i as u64));
                prop_assert_eq!(rec.timestamp_ms, *ts);
                prop_assert_eq!(rec.key, k.as_deref());
                prop_assert_eq!(rec.value, v.as_deref());
                let got: Vec<(String, Vec<u8>)> = rec.headers().map(|h| h.map(|(k, v)| (k.to_string(), v.to_vec()))).collect::<Result<_, _>>().unwrap();
                prop_assert_eq!(&got, hs);
            }
        }

        #[test]
        fn prop_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(view) = BatchView::new(&bytes) {
                let _ = view.validate();
                for rec in view.records().flatten() {
                    for _ in rec.headers() {}
                }
            }
            for _ in split_batches(Bytes::from(bytes)) {}
        }

        #[test]
        fn prop_mutated_batches_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut bytes = BytesMut::from(&sample()[..]);
            for (at, x) in flips {
                let at = at % bytes.len();
                bytes[at] ^= x;
            }
            if let Ok(view) = BatchView::new(&bytes) {
                let valid = view.validate_structure().is_ok();
                let walked_cleanly = view.records().all(|rec| {
                    rec.is_ok_and(|rec| rec.headers().all(|h| h.is_ok()))
                });
                if valid {
                    prop_assert!(walked_cleanly);
                    prop_assert_eq!(view.records().count(), view.header().record_count as usize);
                }
            }
        }
    }
}
