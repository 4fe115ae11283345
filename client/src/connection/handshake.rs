//! The handshake: the first exchange on every new connection.
//!
//! The client offers the protocol versions it speaks and its name (shown in group
//! descriptions); the broker answers with the version it chose and its largest frame,
//! which every later request is checked against before it is sent. It runs on the
//! bare socket, before the reader and writer tasks exist, because nothing else can be
//! on the connection yet; it uses correlation id 1, so the connection's requests start
//! at 2. Its failures are sorted for the retry loop as an [`OpenError`]: a busy broker
//! (`too_many_connections`) or a connection reset or closed mid-way (a broker shutting
//! down or restarting) is retried like a refused connect; a refusal, or an answer this
//! client cannot speak, is not. An answer that is not even the broker's framing (an
//! HTTP server's `HTTP/1.1 400`, an SSH banner: bytes whose length prefix is absurd,
//! or bytes left over that make no frame when the peer closes) is another service on
//! that port, [`ClientError::NotABroker`], and not retried either.

use bytes::BytesMut;
use futures_util::StreamExt;
use protocol::codec::{CodecError, ProtocolCodec};
use protocol::ops::handshake::HandshakeRequest;
use protocol::{ErrorCode, Message, Request, Response, HANDSHAKE_VERSION};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;

use super::conn::Frames;
use super::open::OpenError;
use super::ClientConfig;
use crate::error::ClientError;

/// What the handshake settled for the connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Negotiated {
    /// The largest frame the broker accepts.
    pub(super) max_frame_bytes: usize,
    /// The protocol version every later frame is encoded in.
    pub(super) version: u16,
}

/// The handshake over a connected stream's halves. `sort` tells an I/O error worth
/// retrying from a fatal one (for TLS: a refused certificate shows on the first read).
pub(super) async fn handshake<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    read: R,
    mut write: W,
    addr: &str,
    config: &ClientConfig,
    sort: impl Fn(std::io::Error) -> OpenError,
) -> Result<(Frames<R>, W, Negotiated), OpenError> {
    let mut frames = FramedRead::new(read, ProtocolCodec::new());
    let hello = Message::Request {
        correlation_id: 1,
        request: Request::Handshake(HandshakeRequest {
            versions: protocol::SUPPORTED_VERSIONS.to_vec(),
            client_name: config.client_name.clone(),
            auth: None,
        }),
    };
    let mut buf = BytesMut::new();
    hello.encode(HANDSHAKE_VERSION, &mut buf).map_err(|e| {
        OpenError::Fatal(ClientError::InvalidArgument(format!(
            "cannot encode the handshake (is the client name over 65535 bytes?): {e}"
        )))
    })?;
    write.write_all(&buf).await.map_err(&sort)?;
    write.flush().await.map_err(&sort)?;
    let not_a_broker = |detail: String| {
        OpenError::Fatal(ClientError::NotABroker {
            addr: addr.to_string(),
            detail,
        })
    };
    let frame = match frames.next().await {
        Some(Ok(frame)) => frame,
        Some(Err(CodecError::Io(e))) if frames.read_buffer().is_empty() => return Err(sort(e)),
        Some(Err(_)) if super::tls::looks_like_tls(frames.read_buffer()) => {
            return Err(OpenError::Fatal(ClientError::Tls {
                addr: addr.to_string(),
                reason: "the broker speaks TLS and this client does not; give the CA that \
                         issued its certificate with --tls-ca or BROKER_TLS_CA"
                    .to_string(),
            }))
        }
        // Bytes that did not make a frame before the peer closed (`FramedRead` reports
        // them as an I/O error at the end of the stream).
        Some(Err(CodecError::Io(_))) => {
            return Err(not_a_broker(format!(
                "{} byte(s) that are no frame, starting {}",
                frames.read_buffer().len(),
                printable_prefix(frames.read_buffer())
            )))
        }
        Some(Err(e)) => {
            return Err(not_a_broker(format!(
                "{e}; the answer starts {}",
                printable_prefix(frames.read_buffer())
            )))
        }
        None => {
            return Err(OpenError::Retry(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the connection was closed during the handshake",
            )))
        }
    };
    match Message::decode(frame) {
        Ok(Message::Response {
            response: Response::Handshake(answer),
            ..
        }) => {
            if !protocol::SUPPORTED_VERSIONS.contains(&answer.version) {
                return Err(OpenError::Fatal(ClientError::Protocol(format!(
                    "the broker chose protocol version {}, which this client does not speak",
                    answer.version
                ))));
            }
            let negotiated = Negotiated {
                max_frame_bytes: usize::try_from(answer.max_frame_bytes).unwrap_or(usize::MAX),
                version: answer.version,
            };
            Ok((frames, write, negotiated))
        }
        Ok(Message::Error { error, .. }) if error.code == ErrorCode::TooManyConnections => {
            Err(OpenError::Retry(std::io::Error::other(format!(
                "broker busy: {}",
                error.message
            ))))
        }
        Ok(Message::Error { error, .. }) => Err(OpenError::Fatal(ClientError::Server {
            code: error.code,
            message: error.message,
        })),
        Ok(other) => Err(OpenError::Fatal(ClientError::Protocol(format!(
            "expected a Handshake answer, got {other:?}"
        )))),
        Err(e) => Err(not_a_broker(format!("a frame that does not decode: {e}"))),
    }
}

/// Bytes the handshake found in place of an answer, for the error message: the first
/// few, quoted, with anything unprintable escaped.
fn printable_prefix(bytes: &[u8]) -> String {
    /// Enough to recognise `HTTP/1.1 400` or `SSH-2.0-OpenSSH`.
    const SHOWN_BYTES: usize = 16;
    let shown = &bytes[..bytes.len().min(SHOWN_BYTES)];
    format!("\"{}\"", shown.escape_ascii())
}
