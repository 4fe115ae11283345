//! A `tokio_util::codec` adapter over the sans-IO [`FrameDecoder`], for use with
//! `Framed` at the connection's edge.
//!
//! The decoder yields raw [`Frame`]s rather than [`Message`]s on purpose: a frame whose
//! body does not decode leaves the stream in step, and the server should answer it
//! ([`FrameError::error_response`]) and carry on, but `Framed` ends the stream after
//! any decoder error. So only errors that lose the framing (too large, too short) are
//! decoder errors; body errors come from [`Message::decode`] per frame.

use bytes::BytesMut;
use thiserror::Error;
use tokio_util::codec::{Decoder, Encoder};

use crate::{EncodeError, Frame, FrameDecoder, FrameError, Message};

/// Errors of [`ProtocolCodec`].
#[derive(Debug, Error)]
pub enum CodecError {
    /// The stream could not be split into frames; close the connection.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// An outgoing message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Frames in, messages (or frames) out. Messages are encoded in the connection's
/// protocol version: version 1 until [`set_version`](Self::set_version) records the
/// negotiated one.
#[derive(Debug, Clone, Copy)]
pub struct ProtocolCodec {
    decoder: FrameDecoder,
    version: u16,
}

impl Default for ProtocolCodec {
    fn default() -> ProtocolCodec {
        ProtocolCodec::with_max_frame_bytes(crate::MAX_FRAME_BYTES)
    }
}

impl ProtocolCodec {
    /// A codec accepting frames up to [`crate::MAX_FRAME_BYTES`].
    pub fn new() -> ProtocolCodec {
        ProtocolCodec::default()
    }

    /// A codec with its own frame size limit.
    pub fn with_max_frame_bytes(max_frame_bytes: usize) -> ProtocolCodec {
        ProtocolCodec {
            decoder: FrameDecoder::with_max_frame_bytes(max_frame_bytes),
            version: crate::HANDSHAKE_VERSION,
        }
    }

    /// Encodes later messages in protocol `version` (the negotiated one).
    pub fn set_version(&mut self, version: u16) {
        self.version = version;
    }

    /// Changes the frame size limit for frames not yet read (a server raises it once
    /// the handshake is done).
    pub fn set_max_frame_bytes(&mut self, max_frame_bytes: usize) {
        self.decoder = FrameDecoder::with_max_frame_bytes(max_frame_bytes);
    }
}

impl Decoder for ProtocolCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(self.decoder.decode(src)?)
    }
}

impl Encoder<&Message> for ProtocolCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(item.encode(self.version, dst)?)
    }
}

impl Encoder<Message> for ProtocolCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(item.encode(self.version, dst)?)
    }
}

impl Encoder<Frame> for ProtocolCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(item.encode(dst)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::topic::ListTopicsRequest;
    use crate::Request;

    #[test]
    fn codec_round_trip_over_split_reads() {
        let msg = Message::Request {
            correlation_id: 9,
            request: Request::ListTopics(ListTopicsRequest {
                include_internal: true,
            }),
        };
        let mut codec = ProtocolCodec::new();
        let mut wire = BytesMut::new();
        codec.encode(&msg, &mut wire).unwrap();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for byte in wire.iter() {
            buf.extend_from_slice(&[*byte]);
            if let Some(frame) = codec.decode(&mut buf).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(Message::decode(frames.remove(0)).unwrap(), msg);
    }
}
