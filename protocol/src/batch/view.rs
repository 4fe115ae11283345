//! [`BatchView`]: one whole batch, borrowed, with its header decoded.
//!
//! Wrapping checks only the header and that the bytes are exactly one batch, which is
//! all a reader needs before deciding whether to look further. Trusting the records is
//! a separate, explicit step ([`validate`](BatchView::validate), in `validate.rs`), and
//! iterating them is `records.rs`: the view itself is two words and copies nothing.

use super::error::BatchError;
use super::header::BatchHeader;

/// A borrowed view of one whole batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchView<'a> {
    pub(super) header: BatchHeader,
    pub(super) bytes: &'a [u8],
}

impl<'a> BatchView<'a> {
    /// Wraps exactly one batch: `bytes.len()` must equal the declared length. Checks the
    /// header only; call [`validate`](Self::validate) before trusting the records.
    pub fn new(bytes: &'a [u8]) -> Result<BatchView<'a>, BatchError> {
        let header = BatchHeader::parse(bytes)?;
        if header.batch_len as usize != bytes.len() {
            return Err(BatchError::LengthMismatch {
                declared: header.batch_len as usize,
                actual: bytes.len(),
            });
        }
        Ok(BatchView { header, bytes })
    }

    /// The decoded header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The whole batch, header included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}
