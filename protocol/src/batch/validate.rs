//! Checking a batch before trusting it: its CRC, and that its records are exactly what
//! the header claims.
//!
//! The broker validates every batch before appending it, and a consumer may before
//! reading it, so [`BatchView::validate`] is the gate that makes iteration infallible:
//! after `Ok`, [`BatchView::records`] yields exactly `record_count` records and never an
//! error. The record count is checked against the smallest possible record first, so a
//! forged count costs nothing before it is refused. The CRC check stands alone
//! ([`BatchView::verify_crc`]) for the log, which re-checks stored bytes on every read
//! without walking their records.

use super::error::BatchError;
use super::header::compute_crc;
use super::layout::{BATCH_HEADER_BYTES, MIN_RECORD_BYTES};
use super::view::BatchView;

impl BatchView<'_> {
    /// Checks the CRC only.
    pub fn verify_crc(&self) -> Result<(), BatchError> {
        let computed = compute_crc(self.bytes);
        if computed != self.header.crc {
            return Err(BatchError::CrcMismatch {
                stored: self.header.crc,
                computed,
            });
        }
        Ok(())
    }

    /// Checks everything: CRC, record count against the bytes, every record's bounds,
    /// UTF-8 header keys, no trailing bytes. After `Ok`, [`records`](Self::records)
    /// yields exactly `record_count` records and never an error.
    pub fn validate(&self) -> Result<(), BatchError> {
        self.verify_crc()?;
        self.validate_structure()
    }

    /// Everything [`validate`](Self::validate) checks except the CRC.
    pub fn validate_structure(&self) -> Result<(), BatchError> {
        let count = self.header.record_count;
        if count == 0 {
            return Err(BatchError::Empty);
        }
        let body = self.bytes.len() - BATCH_HEADER_BYTES;
        let max = body / MIN_RECORD_BYTES;
        if count as usize > max {
            return Err(BatchError::AbsurdRecordCount {
                count,
                bytes: body,
                max,
            });
        }
        let mut records = self.records();
        for _ in 0..count {
            let record = records
                .next()
                .ok_or(BatchError::RecordTruncated { index: count })??;
            for header in record.headers() {
                header?;
            }
        }
        let rest = records.remaining_bytes();
        if rest != 0 {
            return Err(BatchError::TrailingBytes { count: rest });
        }
        Ok(())
    }
}
