//! Iterating a batch's records and a record's headers as borrowed views.
//!
//! Nothing here allocates: a [`RecordView`] holds slices of the batch, and its headers
//! are decoded only when [`RecordView::headers`] is walked. The iterators never panic
//! on any bytes; a structural problem is yielded once as an error and then iteration
//! ends, so a caller that did not validate first still sees the damage rather than a
//! silently shorter batch. The `take_*` readers at the bottom are the cursor both
//! iterators decode with: each takes from the front of the remaining bytes or answers
//! `None` when they run out.

use super::error::BatchError;
use super::layout::BATCH_HEADER_BYTES;
use super::view::BatchView;

impl<'a> BatchView<'a> {
    /// Iterates the records as borrowed views. Yields at most `record_count` items; a
    /// structural problem is yielded as an error, after which iteration ends.
    pub fn records(&self) -> RecordIter<'a> {
        RecordIter {
            rest: &self.bytes[BATCH_HEADER_BYTES..],
            index: 0,
            count: self.header.record_count,
            base_offset: self.header.base_offset,
            first_timestamp_ms: self.header.first_timestamp_ms,
            failed: false,
        }
    }
}

/// One record, borrowed from its batch.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// Absolute offset (the batch's base offset plus the record's index).
    pub offset: u64,
    /// Record timestamp in ms since the epoch.
    pub timestamp_ms: i64,
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The value, if any (`None` is a tombstone).
    pub value: Option<&'a [u8]>,
    header_count: u16,
    header_bytes: &'a [u8],
    index: u32,
}

impl<'a> RecordView<'a> {
    /// Iterates the record's headers.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            rest: self.header_bytes,
            left: self.header_count,
            index: self.index,
        }
    }

    /// Number of headers.
    pub fn header_count(&self) -> u16 {
        self.header_count
    }
}

/// Iterator over the records of a batch. See [`BatchView::records`].
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    rest: &'a [u8],
    index: u32,
    count: u32,
    base_offset: u64,
    first_timestamp_ms: i64,
    failed: bool,
}

impl<'a> RecordIter<'a> {
    /// Bytes not yet consumed by the iteration.
    pub fn remaining_bytes(&self) -> usize {
        self.rest.len()
    }

    fn parse_next(&mut self) -> Result<RecordView<'a>, BatchError> {
        let index = self.index;
        let truncated = BatchError::RecordTruncated { index };
        let record_len = take_u32(&mut self.rest).ok_or(truncated.clone())? as usize;
        if record_len > self.rest.len() {
            return Err(truncated);
        }
        let (mut record, rest) = self.rest.split_at(record_len);
        self.rest = rest;
        let delta = take_u32(&mut record).ok_or(truncated.clone())? as i32;
        let key = take_optional_bytes(&mut record).ok_or(truncated.clone())?;
        let value = take_optional_bytes(&mut record).ok_or(truncated.clone())?;
        let header_count = take_u16(&mut record).ok_or(truncated)?;
        Ok(RecordView {
            offset: self.base_offset.wrapping_add(u64::from(index)),
            timestamp_ms: self.first_timestamp_ms.wrapping_add(i64::from(delta)),
            key,
            value,
            header_count,
            header_bytes: record,
            index,
        })
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordView<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.index >= self.count {
            return None;
        }
        let item = self.parse_next();
        self.failed = item.is_err();
        self.index += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.failed {
            0
        } else {
            (self.count - self.index) as usize
        };
        (0, Some(left))
    }
}

/// Iterator over a record's headers: `(key, value)` pairs borrowed from the batch.
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    rest: &'a [u8],
    left: u16,
    index: u32,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Result<(&'a str, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            if !self.rest.is_empty() {
                // Bytes inside the record after its last header: the record is malformed.
                self.rest = &[];
                return Some(Err(BatchError::RecordTruncated { index: self.index }));
            }
            return None;
        }
        self.left -= 1;
        let item = self.parse_next();
        if item.is_err() {
            self.left = 0;
            self.rest = &[];
        }
        Some(item)
    }
}

impl<'a> HeaderIter<'a> {
    fn parse_next(&mut self) -> Result<(&'a str, &'a [u8]), BatchError> {
        let truncated = BatchError::RecordTruncated { index: self.index };
        let key_len = take_u16(&mut self.rest).ok_or(truncated.clone())? as usize;
        let key = take_slice(&mut self.rest, key_len).ok_or(truncated.clone())?;
        let key = std::str::from_utf8(key)
            .map_err(|_| BatchError::InvalidHeaderKey { index: self.index })?;
        let value_len = take_u32(&mut self.rest).ok_or(truncated.clone())? as usize;
        let value = take_slice(&mut self.rest, value_len).ok_or(truncated)?;
        Ok((key, value))
    }
}

fn take_slice<'a>(rest: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if rest.len() < len {
        return None;
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Some(head)
}

fn take_u16(rest: &mut &[u8]) -> Option<u16> {
    take_slice(rest, 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn take_u32(rest: &mut &[u8]) -> Option<u32> {
    take_slice(rest, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// `Some(None)` for length -1, `Some(Some(bytes))` for a present field, `None` when the
/// length is negative otherwise or runs past the end.
fn take_optional_bytes<'a>(rest: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    let len = take_u32(rest)? as i32;
    match len {
        -1 => Some(None),
        len if len < 0 => None,
        len => take_slice(rest, len as usize).map(Some),
    }
}
