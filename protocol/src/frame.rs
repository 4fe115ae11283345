//! Framing: splitting a byte stream into frames, sans-IO.
//!
//! ```text
//! offset size field
//!      0    4 length          bytes after this field: header + body
//!      4    2 version         protocol version the frame is encoded in
//!      6    2 op              operation code
//!      8    2 flags           bit 0 RESPONSE, bit 1 PUSH, others must be 0
//!     10    4 correlation_id  chosen by the client, echoed by the response
//!     14    . body            operation-specific
//! ```
//!
//! [`FrameDecoder::decode`] looks at a buffer the caller filled from a socket and either
//! takes one whole frame off its front or reports that more bytes are needed, like
//! mini-redis's `Frame::parse`. The declared length is checked against the decoder's
//! maximum before a single byte is reserved, so a peer cannot make us allocate more
//! than that maximum. The body stays a zero-copy `Bytes` slice of the read buffer; the
//! typed layer ([`crate::Message`]) decodes it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::batch::MAX_BATCH_BYTES;
use crate::error::{DecodeError, ErrorCode};

/// Size of the length prefix.
pub const LENGTH_PREFIX_BYTES: usize = 4;
/// Size of the fixed header after the length prefix.
pub const HEADER_BYTES: usize = 10;
/// Room in a frame for everything that is not the record batch (topic name, header,
/// other fields), so that a maximum-size batch still fits.
pub const FRAME_OVERHEAD_ALLOWANCE_BYTES: usize = 64 * 1024;
/// Default largest frame (the `length` field: header + body) a decoder accepts.
pub const MAX_FRAME_BYTES: usize = MAX_BATCH_BYTES + FRAME_OVERHEAD_ALLOWANCE_BYTES;

/// Flag bit: the frame answers a request.
pub const FLAG_RESPONSE: u16 = 1 << 0;
/// Flag bit: the server sent the frame unasked (a subscription delivery).
pub const FLAG_PUSH: u16 = 1 << 1;

const CORRELATION_ID_AT: usize = LENGTH_PREFIX_BYTES + 6;

/// Who sent a frame and why, from its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Client to server; expects exactly one response with the same correlation id.
    Request,
    /// Server to client, answering the request with the same correlation id.
    Response,
    /// Server to client, unasked. The correlation id is 0 and means nothing.
    Push,
}

impl FrameKind {
    /// The flag bits for this kind.
    pub fn flags(self) -> u16 {
        match self {
            FrameKind::Request => 0,
            FrameKind::Response => FLAG_RESPONSE,
            FrameKind::Push => FLAG_PUSH,
        }
    }

    /// The kind named by `flags`; undefined bits, or RESPONSE and PUSH together, are
    /// an error.
    pub fn from_flags(flags: u16) -> Result<FrameKind, DecodeError> {
        match flags {
            0 => Ok(FrameKind::Request),
            FLAG_RESPONSE => Ok(FrameKind::Response),
            FLAG_PUSH => Ok(FrameKind::Push),
            _ => Err(DecodeError::InvalidFlags { flags }),
        }
    }
}

/// The fixed header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol version the frame is encoded in.
    pub version: u16,
    /// Operation code, raw: an unknown code still has a header a server can answer.
    pub op: u16,
    /// Request, response or push.
    pub kind: FrameKind,
    /// Pairs a response with its request.
    pub correlation_id: u32,
}

impl Header {
    /// Writes the header (not the length prefix).
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u16_le(self.version);
        dst.put_u16_le(self.op);
        dst.put_u16_le(self.kind.flags());
        dst.put_u32_le(self.correlation_id);
    }
}

/// One whole frame: its header and its still-encoded body, a zero-copy slice of the
/// bytes it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: Header,
    /// The body, decoded by [`crate::Message::decode`].
    pub body: Bytes,
}

impl Frame {
    /// Writes the frame, length prefix included. Fails if the frame is larger than
    /// [`MAX_FRAME_BYTES`].
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), crate::EncodeError> {
        let len = HEADER_BYTES + self.body.len();
        if len > MAX_FRAME_BYTES {
            return Err(crate::EncodeError::FrameTooLarge {
                len,
                max: MAX_FRAME_BYTES,
            });
        }
        dst.reserve(LENGTH_PREFIX_BYTES + len);
        // Fits: bounded by MAX_FRAME_BYTES above.
        dst.put_u32_le(len as u32);
        self.header.encode(dst);
        dst.put_slice(&self.body);
        Ok(())
    }
}

/// Why the byte stream could not be split into a frame, or a frame not decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix exceeds the decoder's maximum. Nothing was consumed or
    /// allocated; the connection cannot continue, as the rest of the frame was not read.
    #[error("frame declares {declared} bytes, the limit is {max}")]
    TooLarge {
        /// The length prefix.
        declared: u32,
        /// The decoder's limit.
        max: usize,
        /// The correlation id, if enough bytes had arrived to read it.
        correlation_id: Option<u32>,
    },
    /// The length prefix is smaller than a header. The connection cannot continue.
    #[error("frame declares {declared} bytes, less than the {HEADER_BYTES}-byte header")]
    TooShort {
        /// The length prefix.
        declared: u32,
    },
    /// The frame was split off the stream but its header or body does not decode. The
    /// stream is still in step, so a server may answer and carry on.
    #[error("frame (op {op}, correlation id {correlation_id}): {source}")]
    Invalid {
        /// The header's correlation id.
        correlation_id: u32,
        /// The header's raw op code.
        op: u16,
        /// What was wrong.
        #[source]
        source: DecodeError,
    },
}

impl FrameError {
    /// The correlation id of the offending frame, when it could be read, so a server
    /// can answer with an error before it closes the connection.
    pub fn correlation_id(&self) -> Option<u32> {
        match self {
            FrameError::TooLarge { correlation_id, .. } => *correlation_id,
            FrameError::TooShort { .. } => None,
            FrameError::Invalid { correlation_id, .. } => Some(*correlation_id),
        }
    }

    /// The status to answer with.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            FrameError::TooShort { .. } => ErrorCode::MalformedFrame,
            FrameError::Invalid { source, .. } => source.code(),
        }
    }

    /// True when the byte stream is out of step and the connection must be closed
    /// (after answering, if [`correlation_id`](Self::correlation_id) is known).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, FrameError::Invalid { .. })
    }
}

/// Splits frames off the front of a read buffer. Holds only its limit; the buffer is
/// the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder accepting frames up to [`MAX_FRAME_BYTES`].
    pub fn new() -> FrameDecoder {
        FrameDecoder {
            max_frame_bytes: MAX_FRAME_BYTES,
        }
    }

    /// A decoder with another limit on the `length` field (header + body). A limit
    /// below [`HEADER_BYTES`] is raised to it.
    pub fn with_max_frame_bytes(max_frame_bytes: usize) -> FrameDecoder {
        FrameDecoder {
            max_frame_bytes: max_frame_bytes.max(HEADER_BYTES),
        }
    }

    /// The limit on the `length` field.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Takes one frame off the front of `buf`. `Ok(None)`: the frame is incomplete;
    /// nothing was consumed, and `buf` has been reserved room for the rest (never more
    /// than the limit). On [`FrameError::Invalid`] the bad frame has been consumed.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use protocol::{FrameDecoder, FrameKind, Message, Request};
    /// use protocol::ops::topic::DeleteTopicRequest;
    ///
    /// let msg = Message::Request {
    ///     correlation_id: 7,
    ///     request: Request::DeleteTopic(DeleteTopicRequest { name: "orders".into() }),
    /// };
    /// let mut wire = BytesMut::new();
    /// msg.encode(protocol::PROTOCOL_VERSION, &mut wire)?;
    ///
    /// let decoder = FrameDecoder::new();
    /// let mut buf = BytesMut::from(&wire[..5]);
    /// assert!(decoder.decode(&mut buf)?.is_none()); // incomplete: read more
    /// buf.extend_from_slice(&wire[5..]);
    /// let frame = decoder.decode(&mut buf)?.ok_or("still incomplete")?;
    /// assert_eq!(frame.header.kind, FrameKind::Request);
    /// assert_eq!(Message::decode(frame)?, msg);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < LENGTH_PREFIX_BYTES {
            return Ok(None);
        }
        let declared = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let len = declared as usize;
        if len > self.max_frame_bytes {
            let correlation_id = buf
                .get(CORRELATION_ID_AT..CORRELATION_ID_AT + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            return Err(FrameError::TooLarge {
                declared,
                max: self.max_frame_bytes,
                correlation_id,
            });
        }
        if len < HEADER_BYTES {
            return Err(FrameError::TooShort { declared });
        }
        let total = LENGTH_PREFIX_BYTES + len;
        if buf.len() < total {
            // Bounded by the limit check above.
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let mut frame = buf.split_to(total).freeze();
        frame.advance(LENGTH_PREFIX_BYTES);
        let version = frame.get_u16_le();
        let op = frame.get_u16_le();
        let flags = frame.get_u16_le();
        let correlation_id = frame.get_u32_le();
        let kind = FrameKind::from_flags(flags).map_err(|source| FrameError::Invalid {
            correlation_id,
            op,
            source,
        })?;
        Ok(Some(Frame {
            header: Header {
                version,
                op,
                kind,
                correlation_id,
            },
            body: frame,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(flags: u16, body: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_u32_le((HEADER_BYTES + body.len()) as u32);
        b.put_u16_le(1);
        b.put_u16_le(10);
        b.put_u16_le(flags);
        b.put_u32_le(0xabcd);
        b.put_slice(body);
        b
    }

    #[test]
    fn incomplete_until_the_last_byte() {
        let whole = frame_bytes(0, b"xyz");
        let decoder = FrameDecoder::new();
        for cut in 0..whole.len() {
            let mut part = BytesMut::from(&whole[..cut]);
            assert_eq!(decoder.decode(&mut part), Ok(None), "cut at {cut}");
            assert_eq!(part.len(), cut, "nothing consumed");
        }
        let mut buf = whole.clone();
        buf.extend_from_slice(b"next");
        let frame = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.header.correlation_id, 0xabcd);
        assert_eq!(&frame.body[..], b"xyz");
        assert_eq!(&buf[..], b"next");
    }

    #[test]
    fn too_large_is_rejected_before_reserving() {
        let decoder = FrameDecoder::with_max_frame_bytes(100);
        let mut buf = BytesMut::new();
        buf.put_u32_le(101);
        let capacity = buf.capacity();
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::TooLarge {
                declared: 101,
                max: 100,
                correlation_id: None
            })
        );
        assert_eq!(buf.capacity(), capacity);
        let mut buf = frame_bytes(0, &[0; 200]);
        let err = decoder.decode(&mut buf).unwrap_err();
        assert_eq!(err.correlation_id(), Some(0xabcd));
        assert_eq!(err.code(), ErrorCode::FrameTooLarge);
        assert!(err.is_fatal());
    }

    #[test]
    fn too_short_and_bad_flags() {
        let mut buf = BytesMut::from(&[3, 0, 0, 0, 1, 2, 3][..]);
        assert_eq!(
            FrameDecoder::new().decode(&mut buf),
            Err(FrameError::TooShort { declared: 3 })
        );
        let mut buf = frame_bytes(FLAG_RESPONSE | FLAG_PUSH, b"");
        let err = FrameDecoder::new().decode(&mut buf).unwrap_err();
        assert_eq!(err.correlation_id(), Some(0xabcd));
        assert!(!err.is_fatal());
        assert!(buf.is_empty(), "the bad frame was consumed");
    }
}
