//! The fixed header of a batch: decoding it, and the two things done to a batch's
//! header without decoding the records (writing the base offset, computing the CRC).
//!
//! [`BatchHeader::parse`] checks only what the header alone can tell (magic, attributes,
//! declared length), so the log can walk a segment batch by batch and a reader can
//! split a run of batches without touching their records; the CRC and the records are
//! checked by [`BatchView::validate`](super::BatchView::validate). The base offset sits
//! before the CRC'd range, which is what lets the log assign it without re-checksumming.

use super::error::BatchError;
use super::layout::{
    ATTRIBUTES_AT, BASE_OFFSET_AT, BATCH_HEADER_BYTES, BATCH_LEN_AT, BATCH_MAGIC, CRC_AT,
    CRC_START, FIRST_TIMESTAMP_AT, MAGIC_AT, MAX_BATCH_BYTES, MAX_TIMESTAMP_AT, RECORD_COUNT_AT,
    RESERVED_AT,
};

/// The fixed header of a batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record (0 until the log assigns it).
    pub base_offset: u64,
    /// Total bytes of the batch, header included.
    pub batch_len: u32,
    /// Stored CRC-32 of bytes `[16, batch_len)`.
    pub crc: u32,
    /// Format version.
    pub magic: u8,
    /// Attribute bits (0 in this version).
    pub attributes: u8,
    /// Number of records.
    pub record_count: u32,
    /// Timestamp of the first record.
    pub first_timestamp_ms: i64,
    /// Largest record timestamp.
    pub max_timestamp_ms: i64,
}

impl BatchHeader {
    /// Decodes a header from the first [`BATCH_HEADER_BYTES`] of `bytes`, checking the
    /// magic, attributes and declared length, but not the CRC or the records.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::TooShort { len: bytes.len() });
        }
        let magic = bytes[MAGIC_AT];
        if magic != BATCH_MAGIC {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let batch_len = read_u32(bytes, BATCH_LEN_AT);
        if (batch_len as usize) < BATCH_HEADER_BYTES || batch_len as usize > MAX_BATCH_BYTES {
            return Err(BatchError::BadLength {
                declared: batch_len,
            });
        }
        let attributes = bytes[ATTRIBUTES_AT];
        let reserved = read_u16(bytes, RESERVED_AT);
        if attributes != 0 || reserved != 0 {
            return Err(BatchError::UnsupportedAttributes {
                attributes,
                reserved,
            });
        }
        Ok(BatchHeader {
            base_offset: read_u64(bytes, BASE_OFFSET_AT),
            batch_len,
            crc: read_u32(bytes, CRC_AT),
            magic,
            attributes,
            record_count: read_u32(bytes, RECORD_COUNT_AT),
            first_timestamp_ms: read_i64(bytes, FIRST_TIMESTAMP_AT),
            max_timestamp_ms: read_i64(bytes, MAX_TIMESTAMP_AT),
        })
    }

    /// Offset one past the last record: where the next batch starts.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + u64::from(self.record_count)
    }
}

/// Writes `base_offset` into a batch's header. The field is outside the CRC, so the
/// batch stays valid; this is the only change the log makes to a producer's bytes.
///
/// # Panics
/// If `batch` is shorter than a header: callers hold a validated batch.
pub fn set_base_offset(batch: &mut [u8], base_offset: u64) {
    assert!(
        batch.len() >= BATCH_HEADER_BYTES,
        "set_base_offset on a non-batch"
    );
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_le_bytes());
}

/// Computes the CRC a batch's header should hold.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32fast::hash(batch.get(CRC_START..).unwrap_or(&[]))
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    let mut word = [0; 2];
    word.copy_from_slice(&bytes[at..at + 2]);
    u16::from_le_bytes(word)
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn read_i64(bytes: &[u8], at: usize) -> i64 {
    read_u64(bytes, at) as i64
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::batch::tests::sample;
    use crate::batch::BatchView;

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
}
