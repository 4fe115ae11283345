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

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::batch::layout::{CRC_AT, CRC_START, MAGIC_AT, RECORD_COUNT_AT};
    use crate::batch::tests::sample;
    use crate::batch::BatchBuilder;

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
}
