//! Typed messages: a [`Frame`]'s header and body decoded into a [`Request`],
//! [`Response`], error response or pushed [`Delivery`], and encoded back.
//!
//! A response body starts with a `u16` status. Status 0 is success and the operation's
//! response body follows; any other value is an [`ErrorCode`] followed by a
//! human-readable message (a string) and nothing else, whatever the operation — so a
//! client can read an error even for an operation it does not know.

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError, ErrorCode};
use crate::frame::{
    Frame, FrameError, FrameKind, Header, HEADER_BYTES, LENGTH_PREFIX_BYTES, MAX_FRAME_BYTES,
};
use crate::ops::subscribe::Delivery;
use crate::ops::{Body, OpCode, Request, Response};
use crate::wire::{self, Reader};
use crate::{HANDSHAKE_VERSION, SUPPORTED_VERSIONS};

/// The status value meaning success.
pub const STATUS_OK: u16 = 0;

/// A failed request's status and explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ErrorResponse {
    /// What kind of failure.
    pub code: ErrorCode,
    /// For humans: what went wrong and, where possible, what to do.
    pub message: String,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum Message {
    /// Client to server.
    Request {
        /// Chosen by the client; the response echoes it.
        correlation_id: u32,
        /// The request.
        request: Request,
    },
    /// Server to client: success.
    Response {
        /// The request's correlation id.
        correlation_id: u32,
        /// The response.
        response: Response,
    },
    /// Server to client: failure.
    Error {
        /// The request's correlation id (0 if it could not be read).
        correlation_id: u32,
        /// The request's raw op code, which may be one this side does not know.
        op: u16,
        /// Why it failed.
        error: ErrorResponse,
    },
    /// Server to client, unasked.
    Push(Delivery),
}

impl Message {
    /// The header's correlation id (0 for pushes).
    pub fn correlation_id(&self) -> u32 {
        match self {
            Message::Request { correlation_id, .. }
            | Message::Response { correlation_id, .. }
            | Message::Error { correlation_id, .. } => *correlation_id,
            Message::Push(_) => 0,
        }
    }

    /// The header this message is sent with on a connection of protocol `version`.
    pub fn header(&self, version: u16) -> Header {
        let (op, kind) = match self {
            Message::Request { request, .. } => (request.op_code().as_u16(), FrameKind::Request),
            Message::Response { response, .. } => {
                (response.op_code().as_u16(), FrameKind::Response)
            }
            Message::Error { op, .. } => (*op, FrameKind::Response),
            Message::Push(_) => (OpCode::Delivery.as_u16(), FrameKind::Push),
        };
        // Handshake frames use the one version every peer can read; see `ops::handshake`.
        let version = if op == OpCode::Handshake.as_u16() {
            HANDSHAKE_VERSION
        } else {
            version
        };
        Header {
            version,
            op,
            kind,
            correlation_id: self.correlation_id(),
        }
    }

    /// Appends the whole frame, length prefix included, to `dst`. On error nothing is
    /// appended.
    pub fn encode(&self, version: u16, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let start = dst.len();
        let result = self.encode_unchecked(version, dst, start);
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    fn encode_unchecked(
        &self,
        version: u16,
        dst: &mut BytesMut,
        start: usize,
    ) -> Result<(), EncodeError> {
        dst.put_u32_le(0); // patched below, once the body's length is known
        let header = self.header(version);
        header.encode(dst);
        // The body follows the header's version (the handshake's is fixed).
        let version = header.version;
        match self {
            Message::Request { request, .. } => request.encode_body(dst, version)?,
            Message::Response { response, .. } => {
                dst.put_u16_le(STATUS_OK);
                response.encode_body(dst, version)?;
            }
            Message::Error { error, .. } => {
                // A code the peer's version does not define reaches it as the older
                // code it stands in for.
                dst.put_u16_le(error.code.for_version(version).as_u16());
                wire::put_string(dst, "error message", &error.message)?;
            }
            Message::Push(delivery) => delivery.encode(dst, version)?,
        }
        let len = dst.len() - start - LENGTH_PREFIX_BYTES;
        debug_assert!(len >= HEADER_BYTES);
        if len > MAX_FRAME_BYTES {
            return Err(EncodeError::FrameTooLarge {
                len,
                max: MAX_FRAME_BYTES,
            });
        }
        // Fits: bounded by MAX_FRAME_BYTES above.
        dst[start..start + LENGTH_PREFIX_BYTES].copy_from_slice(&(len as u32).to_le_bytes());
        Ok(())
    }

    /// Decodes a frame's body according to its header. The error carries the frame's
    /// correlation id so a server can answer it.
    pub fn decode(frame: Frame) -> Result<Message, FrameError> {
        let Header {
            correlation_id, op, ..
        } = frame.header;
        Message::decode_inner(frame).map_err(|source| FrameError::Invalid {
            correlation_id,
            op,
            source,
        })
    }

    fn decode_inner(frame: Frame) -> Result<Message, DecodeError> {
        let Header {
            version,
            op,
            kind,
            correlation_id,
        } = frame.header;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(DecodeError::UnsupportedVersion { version });
        }
        let known_op = OpCode::from_u16_in(op, version);
        match kind {
            FrameKind::Request => {
                let op = known_op.ok_or(DecodeError::UnknownOperation { op })?;
                Ok(Message::Request {
                    correlation_id,
                    request: Request::decode_body(op, version, frame.body)?,
                })
            }
            FrameKind::Response => {
                let mut r = Reader::new(frame.body, version);
                let status = r.u16("status")?;
                let message = if status == STATUS_OK {
                    let op = known_op.ok_or(DecodeError::UnknownOperation { op })?;
                    Message::Response {
                        correlation_id,
                        response: Response::decode_from(op, &mut r)?,
                    }
                } else {
                    let code = ErrorCode::from_u16(status)
                        .ok_or(DecodeError::UnknownErrorCode { code: status })?;
                    Message::Error {
                        correlation_id,
                        op,
                        error: ErrorResponse {
                            code,
                            message: r.string("error message")?,
                        },
                    }
                };
                r.finish()?;
                Ok(message)
            }
            FrameKind::Push => {
                if known_op != Some(OpCode::Delivery) {
                    return Err(DecodeError::WrongDirection {
                        op,
                        flags: kind.flags(),
                    });
                }
                if correlation_id != 0 {
                    return Err(DecodeError::InvalidValue {
                        what: "push correlation_id",
                        value: u64::from(correlation_id),
                    });
                }
                let mut r = Reader::new(frame.body, version);
                let delivery = Delivery::decode(&mut r)?;
                r.finish()?;
                Ok(Message::Push(delivery))
            }
        }
    }
}

impl FrameError {
    /// The error response a server should send for this failure, if the correlation id
    /// is known. For a fatal error, send it and then close the connection.
    pub fn error_response(&self) -> Option<Message> {
        let correlation_id = self.correlation_id()?;
        let op = match self {
            FrameError::Invalid { op, .. } => *op,
            FrameError::TooLarge { .. } | FrameError::TooShort { .. } => 0,
        };
        Some(Message::Error {
            correlation_id,
            op,
            error: ErrorResponse {
                code: self.code(),
                message: self.to_string(),
            },
        })
    }
}

impl crate::FrameDecoder {
    /// [`decode`](Self::decode) and then [`Message::decode`].
    pub fn decode_message(&self, buf: &mut BytesMut) -> Result<Option<Message>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => Message::decode(frame).map(Some),
            None => Ok(None),
        }
    }
}
