//! Why a batch was rejected: one error type for decoding, validating and building.
//!
//! Every kind of damage has its own variant, carrying the numbers that show it (the
//! declared length and the bytes given, the stored and the computed CRC), so that the
//! server can answer a CRC mismatch with its own error code, the log can name the damage
//! in a corruption report, and fuzzers and tests can tell one failure from another. The
//! builder's two failures live here too, so a producer handles one type.

use thiserror::Error;

use super::layout::{BATCH_HEADER_BYTES, BATCH_MAGIC, MAX_BATCH_BYTES};

/// Why a batch was rejected. Each kind of damage has its own variant so that callers
/// (and fuzzers) can tell them apart.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than a batch header.
    #[error("batch too short: {len} bytes, a header alone is {BATCH_HEADER_BYTES}")]
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The magic byte names a format this code does not know.
    #[error("unsupported batch format version {0} (this build reads version {BATCH_MAGIC})")]
    UnsupportedMagic(u8),
    /// Attribute bits or reserved bytes that this version does not define are set.
    #[error("unsupported batch attributes {attributes:#04x} / reserved {reserved:#06x}")]
    UnsupportedAttributes {
        /// The attributes byte.
        attributes: u8,
        /// The reserved field.
        reserved: u16,
    },
    /// The declared batch length is outside `[BATCH_HEADER_BYTES, MAX_BATCH_BYTES]`.
    #[error("batch declares {declared} bytes, allowed range is {BATCH_HEADER_BYTES}..={MAX_BATCH_BYTES}")]
    BadLength {
        /// The `batch_len` field.
        declared: u32,
    },
    /// The declared length does not match the bytes given.
    #[error("batch declares {declared} bytes but {actual} were given")]
    LengthMismatch {
        /// The `batch_len` field.
        declared: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The CRC stored in the header does not match the contents.
    #[error("batch CRC mismatch: header says {stored:#010x}, contents give {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// A batch must hold at least one record.
    #[error("batch holds no records")]
    Empty,
    /// The record count is larger than the batch's bytes could possibly hold.
    #[error("batch claims {count} records but its {bytes} record bytes hold at most {max}")]
    AbsurdRecordCount {
        /// The declared count.
        count: u32,
        /// Bytes after the header.
        bytes: usize,
        /// Most records those bytes could hold.
        max: usize,
    },
    /// A record runs past the end of the batch, or a length inside it does.
    #[error("record {index} is truncated or its lengths are inconsistent")]
    RecordTruncated {
        /// Index of the record within the batch.
        index: u32,
    },
    /// Bytes remain after the last declared record.
    #[error("{count} unexpected bytes after the last record")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A header key is not valid UTF-8.
    #[error("record {index} has a header key that is not valid UTF-8")]
    InvalidHeaderKey {
        /// Index of the record within the batch.
        index: u32,
    },
    /// Building a batch: a record's timestamp is too far from the first record's.
    #[error("record timestamp {timestamp_ms} is more than i32::MAX ms from the batch's first timestamp {first_ms}")]
    TimestampOutOfRange {
        /// The record's timestamp.
        timestamp_ms: i64,
        /// The batch's first timestamp.
        first_ms: i64,
    },
    /// Building a batch: a field does not fit its length prefix, or the batch would
    /// exceed [`MAX_BATCH_BYTES`].
    #[error("{what} is too large for a batch")]
    FieldTooLarge {
        /// Which field.
        what: &'static str,
    },
}
