//! The primitive layer every message body is built from: fixed-width little-endian
//! integers, length-prefixed strings and byte fields, counted arrays and optional
//! values.
//!
//! Reading works on a [`Reader`] over one frame's body (`Bytes`), so byte fields come
//! out as zero-copy slices of the frame. Every read checks the bytes remaining before it
//! touches memory, and every array count is checked against `remaining bytes / smallest
//! possible element` *before* anything is allocated: a 20-byte frame cannot make the
//! decoder reserve room for four billion elements.
//!
//! | type    | encoding                                             |
//! |---------|------------------------------------------------------|
//! | integer | `u8`/`u16`/`u32`/`u64`, little-endian                |
//! | bool    | `u8`, 0 or 1                                          |
//! | string  | `u16` byte length, then that many bytes of UTF-8      |
//! | bytes   | `u32` byte length, then the bytes                     |
//! | array   | `u32` element count, then the elements                |
//! | option  | `u8` presence (0 absent, 1 present), then the value   |

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};

/// Longest string a `u16` length prefix can describe.
pub const MAX_STRING_BYTES: usize = u16::MAX as usize;

/// Encoded size of an empty string: its length prefix.
pub(crate) const MIN_STRING_BYTES: usize = 2;
/// Encoded size of an empty array: its count.
pub(crate) const MIN_ARRAY_BYTES: usize = 4;
/// Encoded size of an absent optional value: its presence byte.
pub(crate) const MIN_OPTION_BYTES: usize = 1;

/// A cursor over one message body. Reads consume from the front.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
    version: u16,
}

impl Reader {
    /// A reader over `buf`, holding a body in the layout of protocol `version`.
    pub(crate) fn new(buf: Bytes, version: u16) -> Reader {
        Reader { buf, version }
    }

    /// A reader over an internal-topic record value. Those records are on disk, so
    /// they never follow the wire protocol's versions: any shared piece they contain
    /// keeps its version-1 layout, and they version themselves by their own tags.
    pub(crate) fn internal(buf: Bytes) -> Reader {
        Reader { buf, version: 1 }
    }

    /// The protocol version whose layout the body is in.
    pub(crate) fn version(&self) -> u16 {
        self.version
    }

    fn need(&self, what: &'static str, needed: usize) -> Result<(), DecodeError> {
        if self.buf.len() < needed {
            return Err(DecodeError::Truncated {
                what,
                needed,
                remaining: self.buf.len(),
            });
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        self.need(what, 1)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.need(what, 2)?;
        Ok(self.buf.get_u16_le())
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.need(what, 4)?;
        Ok(self.buf.get_u32_le())
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.need(what, 8)?;
        Ok(self.buf.get_u64_le())
    }

    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::InvalidValue {
                what,
                value: u64::from(other),
            }),
        }
    }

    /// A `u16`-length-prefixed UTF-8 string. Allocates at most 64 KiB, and only after
    /// the bytes are known to be present.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let len = usize::from(self.u16(what)?);
        self.need(what, len)?;
        let raw = self.buf.split_to(len);
        match std::str::from_utf8(&raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(DecodeError::InvalidUtf8 { what }),
        }
    }

    /// A `u32`-length-prefixed byte field, as a zero-copy slice of the frame.
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u32(what)? as usize;
        self.need(what, len)?;
        Ok(self.buf.split_to(len))
    }

    /// An array count, checked against what the remaining bytes could possibly hold
    /// given that each element takes at least `min_element_bytes`.
    pub(crate) fn count(
        &mut self,
        what: &'static str,
        min_element_bytes: usize,
    ) -> Result<usize, DecodeError> {
        debug_assert!(min_element_bytes > 0, "every element takes at least a byte");
        let count = self.u32(what)?;
        let max = self.buf.len() / min_element_bytes.max(1);
        if count as usize > max {
            return Err(DecodeError::AbsurdCount {
                what,
                count,
                remaining: self.buf.len(),
                min_element_bytes,
            });
        }
        Ok(count as usize)
    }

    /// A counted array; see [`count`](Self::count) for the allocation bound.
    pub(crate) fn array<T>(
        &mut self,
        what: &'static str,
        min_element_bytes: usize,
        mut element: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.count(what, min_element_bytes)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(element(self)?);
        }
        Ok(items)
    }

    /// An optional value behind a presence byte.
    pub(crate) fn option<T>(
        &mut self,
        what: &'static str,
        value: impl FnOnce(&mut Reader) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => value(self).map(Some),
            other => Err(DecodeError::InvalidValue {
                what,
                value: u64::from(other),
            }),
        }
    }

    /// Whether every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Ends decoding: a body must be consumed exactly.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if !self.buf.is_empty() {
            return Err(DecodeError::TrailingBytes {
                count: self.buf.len(),
            });
        }
        Ok(())
    }
}

/// Writes a string, refusing one longer than its `u16` prefix can describe.
pub(crate) fn put_string(
    buf: &mut BytesMut,
    what: &'static str,
    s: &str,
) -> Result<(), EncodeError> {
    let len = u16::try_from(s.len()).map_err(|_| EncodeError::FieldTooLong {
        what,
        len: s.len(),
        max: MAX_STRING_BYTES,
    })?;
    buf.put_u16_le(len);
    buf.put_slice(s.as_bytes());
    Ok(())
}

/// Writes a byte field, refusing one longer than its `u32` prefix can describe.
pub(crate) fn put_bytes(
    buf: &mut BytesMut,
    what: &'static str,
    b: &[u8],
) -> Result<(), EncodeError> {
    buf.put_u32_le(len_u32(what, b.len())?);
    buf.put_slice(b);
    Ok(())
}

/// Writes an array count.
pub(crate) fn put_count(
    buf: &mut BytesMut,
    what: &'static str,
    len: usize,
) -> Result<(), EncodeError> {
    buf.put_u32_le(len_u32(what, len)?);
    Ok(())
}

/// Writes a counted array.
pub(crate) fn put_array<T>(
    buf: &mut BytesMut,
    what: &'static str,
    items: &[T],
    mut element: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    put_count(buf, what, items.len())?;
    for item in items {
        element(buf, item)?;
    }
    Ok(())
}

/// Writes an optional value behind a presence byte.
pub(crate) fn put_option<T>(
    buf: &mut BytesMut,
    value: Option<&T>,
    put: impl FnOnce(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    match value {
        Some(v) => {
            buf.put_u8(1);
            put(buf, v)
        }
        None => {
            buf.put_u8(0);
            Ok(())
        }
    }
}

/// Writes a bool as 0 or 1.
pub(crate) fn put_bool(buf: &mut BytesMut, value: bool) {
    buf.put_u8(u8::from(value));
}

fn len_u32(what: &'static str, len: usize) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError::FieldTooLong {
        what,
        len,
        max: u32::MAX as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_count_is_rejected_before_allocating() {
        let mut r = Reader::internal(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
        let err = r.array("items", 8, |r| r.u64("item")).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::AbsurdCount {
                count: u32::MAX,
                ..
            }
        ));
    }

    #[test]
    fn strings_reject_bad_utf8_and_truncation() {
        let mut r = Reader::internal(Bytes::from_static(&[2, 0, 0xc3, 0x28]));
        assert!(matches!(
            r.string("name"),
            Err(DecodeError::InvalidUtf8 { what: "name" })
        ));
        let mut r = Reader::internal(Bytes::from_static(&[5, 0, b'a']));
        assert!(matches!(
            r.string("name"),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn byte_fields_are_zero_copy() {
        let body = Bytes::from_static(&[3, 0, 0, 0, 7, 8, 9]);
        let mut r = Reader::internal(body.clone());
        let field = r.bytes("value").unwrap();
        assert_eq!(field.as_ptr(), body[4..].as_ptr());
        r.finish().unwrap();
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut r = Reader::internal(Bytes::from_static(&[1, 0, 9]));
        r.u16("x").unwrap();
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes { count: 1 }));
    }
}
