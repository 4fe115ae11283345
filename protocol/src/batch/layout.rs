//! Where each field of a batch sits, and how large a batch and its parts may be.
//!
//! These are the positions of the layout drawn in the module doc, as named constants,
//! so that the decoder ([`BatchHeader::parse`](super::BatchHeader::parse)) and the
//! builder write and read the same bytes and no other code spells an offset as a bare
//! number. The limits are public because producers, the log and consumers all check
//! against them; the field positions are private to `batch`: everyone else reads a
//! header through [`BatchHeader`](super::BatchHeader).

/// Size of the fixed batch header.
pub const BATCH_HEADER_BYTES: usize = 40;
/// The batch format version this crate writes and reads.
pub const BATCH_MAGIC: u8 = 1;
/// Largest batch accepted anywhere (producer, log, consumer). A frame carrying a batch
/// must also fit the frame limit.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Smallest possible encoded record: length, timestamp delta, key and value lengths,
/// header count. Used to reject absurd record counts before walking a batch.
pub const MIN_RECORD_BYTES: usize = 4 + 4 + 4 + 4 + 2;
/// Largest number of headers on one record.
pub const MAX_HEADERS_PER_RECORD: usize = u16::MAX as usize;

pub(super) const BASE_OFFSET_AT: usize = 0;
pub(super) const BATCH_LEN_AT: usize = 8;
pub(super) const CRC_AT: usize = 12;
/// The CRC covers everything from the magic byte to the end of the batch.
pub(super) const CRC_START: usize = 16;
pub(super) const MAGIC_AT: usize = 16;
pub(super) const ATTRIBUTES_AT: usize = 17;
pub(super) const RESERVED_AT: usize = 18;
pub(super) const RECORD_COUNT_AT: usize = 20;
pub(super) const FIRST_TIMESTAMP_AT: usize = 24;
pub(super) const MAX_TIMESTAMP_AT: usize = 32;
