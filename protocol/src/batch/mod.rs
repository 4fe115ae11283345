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

mod builder;
mod error;
mod header;
mod layout;
mod records;
mod split;
mod validate;
mod view;

pub use builder::BatchBuilder;
pub use error::BatchError;
pub use header::{compute_crc, set_base_offset, BatchHeader};
pub use layout::{
    BATCH_HEADER_BYTES, BATCH_MAGIC, MAX_BATCH_BYTES, MAX_HEADERS_PER_RECORD, MIN_RECORD_BYTES,
};
pub use records::{HeaderIter, RecordIter, RecordView};
pub use split::{split_batches, BatchSplitter};
pub use view::BatchView;

#[cfg(test)]
mod tests;
