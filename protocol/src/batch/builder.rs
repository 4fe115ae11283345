//! [`BatchBuilder`]: encoding records into one batch, on the producer's side.
//!
//! The builder reserves a zeroed header, appends every record straight into one
//! `BytesMut`, and fills in the header and the CRC only in
//! [`finish`](BatchBuilder::finish): a batch costs one buffer and one pass of the CRC.
//! Every limit is checked in [`push`](BatchBuilder::push) before a byte is written, so
//! a failed push leaves the builder as it was, and
//! [`record_size`](BatchBuilder::record_size) and [`len_bytes`](BatchBuilder::len_bytes)
//! let a producer decide before pushing whether a record still fits its batch.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::BatchError;
use super::header::compute_crc;
use super::layout::{
    BATCH_HEADER_BYTES, BATCH_LEN_AT, BATCH_MAGIC, CRC_AT, FIRST_TIMESTAMP_AT, MAGIC_AT,
    MAX_BATCH_BYTES, MAX_HEADERS_PER_RECORD, MAX_TIMESTAMP_AT, MIN_RECORD_BYTES, RECORD_COUNT_AT,
};

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
/// let values = batch.records().map(|r| r.map(|r| r.value)).collect::<Result<Vec<_>, _>>()?;
/// assert_eq!(values, [Some(&b"hello"[..]), Some(&b"world"[..])]);
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
        Self::in_buffer(BytesMut::new(), bytes)
    }

    /// An empty builder that writes into `buf` (its contents are discarded), with
    /// room for `bytes` of batch: with [`finish_mut`](Self::finish_mut), a caller
    /// can hand the same allocation to batch after batch instead of faulting in a
    /// fresh one for each.
    pub fn in_buffer(mut buf: BytesMut, bytes: usize) -> BatchBuilder {
        buf.clear();
        buf.reserve(bytes.max(BATCH_HEADER_BYTES));
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
    /// builder gives a batch that [`BatchView::validate`](super::BatchView::validate)
    /// rejects as [`BatchError::Empty`].
    pub fn finish(self) -> Bytes {
        self.finish_mut().freeze()
    }

    /// [`finish`](Self::finish), the batch still in its `BytesMut` (with whatever
    /// spare capacity the buffer has past it).
    pub fn finish_mut(self) -> BytesMut {
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
        buf
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
