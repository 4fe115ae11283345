//! A raw protocol connection for black-box tests: frames as bytes, no client library,
//! so a test can send what a real client never would (a stalled half frame, a bogus
//! length) and read exactly what brokerd answers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use protocol::ops::handshake::HandshakeRequest;
use protocol::{EncodeError, FrameDecoder, FrameError, Message, Request};

use crate::fail;

/// How long a read waits for the broker.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a raw exchange failed. The `try_` methods return it; the others are test
/// shorthands that panic with it (the way a test reports a failure).
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// The socket failed.
    #[error("{what}: {source}")]
    Io {
        /// The step.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The request could not be encoded.
    #[error("encoding the request: {0}")]
    Encode(#[from] EncodeError),
    /// The broker sent bytes that are not a frame, or a frame that does not decode.
    #[error("reading the answer: {0}")]
    Frame(#[from] FrameError),
    /// A frame after the handshake carried another version than the negotiated one.
    #[error("a frame carries version {got}, the connection negotiated {negotiated}")]
    WrongVersion {
        /// The frame's.
        got: u16,
        /// The connection's.
        negotiated: u16,
    },
    /// The broker closed the connection before answering.
    #[error("the broker closed the connection before answering")]
    Closed,
    /// The answer is not the one asked for.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> RawError {
    move |source| RawError::Io { what, source }
}

/// One raw connection to brokerd, with a read timeout of 10 s.
pub struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    next_id: u32,
    /// The version requests are encoded in, and every answer after the handshake's
    /// must carry: 1 until a handshake picks another.
    version: u16,
}

impl Raw {
    /// Connects, without a handshake.
    pub fn try_connect(addr: &str) -> Result<Raw, RawError> {
        let stream = TcpStream::connect(addr).map_err(io("connecting"))?;
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(io("setting the read timeout"))?;
        Ok(Raw {
            stream,
            buf: BytesMut::new(),
            next_id: 1,
            version: 1,
        })
    }

    /// Connects and handshakes offering `versions`; later requests use the one the
    /// broker picks.
    pub fn try_handshaken_at(addr: &str, versions: &[u16]) -> Result<Raw, RawError> {
        let mut raw = Raw::try_connect(addr)?;
        let hello = HandshakeRequest {
            versions: versions.to_vec(),
            client_name: "wire-test".into(),
            auth: None,
        };
        match raw.try_call(Request::Handshake(hello))? {
            Message::Response {
                response: protocol::Response::Handshake(answer),
                ..
            } => raw.version = answer.version,
            other => {
                return Err(RawError::Unexpected(format!(
                    "handshake refused: {other:?}"
                )))
            }
        }
        Ok(raw)
    }

    /// Writes raw bytes.
    pub fn try_send_bytes(&mut self, bytes: &[u8]) -> Result<(), RawError> {
        self.stream.write_all(bytes).map_err(io("writing"))
    }

    /// Sends a request; returns its correlation id.
    pub fn try_send(&mut self, request: Request) -> Result<u32, RawError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut out = BytesMut::new();
        Message::Request {
            correlation_id: id,
            request,
        }
        .encode(self.version, &mut out)?;
        self.try_send_bytes(&out)?;
        Ok(id)
    }

    /// The next message, or `None` once the server closed the connection (or the
    /// read failed or timed out).
    pub fn try_receive(&mut self) -> Result<Option<Message>, RawError> {
        loop {
            if let Some(frame) = FrameDecoder::new().decode(&mut self.buf)? {
                let header = frame.header;
                let message = Message::decode(frame)?;
                let handshake = matches!(
                    &message,
                    Message::Response {
                        response: protocol::Response::Handshake(_),
                        ..
                    }
                );
                // Every frame after the handshake carries the negotiated version.
                if !handshake && header.version != self.version {
                    return Err(RawError::WrongVersion {
                        got: header.version,
                        negotiated: self.version,
                    });
                }
                return Ok(Some(message));
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return Ok(None),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends a request and reads its answer.
    pub fn try_call(&mut self, request: Request) -> Result<Message, RawError> {
        let id = self.try_send(request)?;
        let message = self.try_receive()?.ok_or(RawError::Closed)?;
        if message.correlation_id() != id {
            return Err(RawError::Unexpected(format!(
                "an answer to request {} while waiting for {id}",
                message.correlation_id()
            )));
        }
        Ok(message)
    }

    /// The protocol version this connection speaks.
    pub fn version(&self) -> u16 {
        self.version
    }
}

/// Test shorthands: each panics with the [`RawError`] where its `try_` twin returns it.
impl Raw {
    /// [`Raw::try_connect`].
    pub fn connect(addr: &str) -> Raw {
        Raw::try_connect(addr).unwrap_or_else(|e| fail("raw connect", &e))
    }

    /// Connects and handshakes at protocol version 1, as the oldest client would:
    /// every version-1 layout must keep working against every later broker.
    pub fn handshaken(addr: &str) -> Raw {
        Raw::handshaken_at(addr, &[1])
    }

    /// [`Raw::try_handshaken_at`].
    pub fn handshaken_at(addr: &str, versions: &[u16]) -> Raw {
        Raw::try_handshaken_at(addr, versions).unwrap_or_else(|e| fail("raw handshake", &e))
    }

    /// [`Raw::try_send_bytes`].
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.try_send_bytes(bytes)
            .unwrap_or_else(|e| fail("raw send", &e))
    }

    /// [`Raw::try_send`].
    pub fn send(&mut self, request: Request) -> u32 {
        self.try_send(request)
            .unwrap_or_else(|e| fail("raw send", &e))
    }

    /// [`Raw::try_receive`].
    pub fn receive(&mut self) -> Option<Message> {
        self.try_receive()
            .unwrap_or_else(|e| fail("raw receive", &e))
    }

    /// [`Raw::try_call`].
    pub fn call(&mut self, request: Request) -> Message {
        self.try_call(request)
            .unwrap_or_else(|e| fail("raw call", &e))
    }
}
