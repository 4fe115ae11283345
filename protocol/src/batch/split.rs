//! Splitting a run of concatenated batches (a fetch response, a slice of a segment)
//! into one `Bytes` per batch, without copying.
//!
//! Only each header is read, to find where the next batch starts; whether a batch is
//! sound is for [`BatchView`](super::BatchView) to say. A header that does not parse,
//! or a batch that runs past the end, is yielded once as an error and ends the split.

use bytes::Bytes;

use super::error::BatchError;
use super::header::BatchHeader;

/// Splits a run of concatenated batches (a fetch response, a slice of a segment) into
/// zero-copy `Bytes`, one per batch. Each item has passed
/// [`BatchView::new`](super::BatchView::new); the CRC is not checked here.
pub fn split_batches(bytes: Bytes) -> BatchSplitter {
    BatchSplitter { rest: bytes }
}

/// Iterator returned by [`split_batches`].
#[derive(Debug, Clone)]
pub struct BatchSplitter {
    rest: Bytes,
}

impl Iterator for BatchSplitter {
    type Item = Result<Bytes, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let header = match BatchHeader::parse(&self.rest) {
            Ok(header) => header,
            Err(e) => {
                self.rest.clear();
                return Some(Err(e));
            }
        };
        let len = header.batch_len as usize;
        if len > self.rest.len() {
            let actual = self.rest.len();
            self.rest.clear();
            return Some(Err(BatchError::LengthMismatch {
                declared: len,
                actual,
            }));
        }
        Some(Ok(self.rest.split_to(len)))
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::batch::tests::sample;

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
}
