//! Turning a connection away at the connection limit, so that the client reads why:
//! `too_many_connections`, answered to its handshake, not a bare close or a reset.
//!
//! A socket closed while input it sent is still unread makes the kernel answer with a
//! reset, which can destroy the answer before the client reads it. So the refusal
//! reads the handshake (to answer it by its correlation id), answers, closes its own
//! side, and keeps reading until the client closes too, within
//! [`REFUSAL_LINGER`] and [`MAX_REFUSAL_READ_BYTES`]. At most
//! [`MAX_LINGERING_REFUSALS`] linger at once; past that a connection is closed at once,
//! so a flood of refused connections costs a bounded amount.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol::codec::ProtocolCodec;
use protocol::OpCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{FramedRead, FramedWrite};

use super::{Transport, MAX_HANDSHAKE_FRAME_BYTES};
use crate::error::{error_frame, BrokerError};

/// How long a refused connection is given to send its handshake, and then to close.
pub const REFUSAL_LINGER: Duration = Duration::from_secs(2);
/// Refused connections answered at once; more are closed without an answer.
pub const MAX_LINGERING_REFUSALS: usize = 64;
/// Input read from a refused connection, at most.
pub const MAX_REFUSAL_READ_BYTES: usize = 64 * 1024;

/// Answers `stream` with `too_many_connections` and closes it.
pub async fn refuse<S: Transport>(stream: S) {
    let (read_half, write_half) = stream.split();
    let codec = ProtocolCodec::with_max_frame_bytes(MAX_HANDSHAKE_FRAME_BYTES);
    let mut frames = FramedRead::with_capacity(read_half, codec, MAX_HANDSHAKE_FRAME_BYTES);
    let correlation_id = match tokio::time::timeout(REFUSAL_LINGER, frames.next()).await {
        Ok(Some(Ok(frame))) => frame.header.correlation_id,
        _ => 0,
    };
    let mut sink = FramedWrite::new(write_half, ProtocolCodec::new());
    let op = OpCode::Handshake.as_u16();
    let refusal = error_frame(correlation_id, op, &BrokerError::TooManyConnections);
    if sink.send(refusal).await.is_err() {
        return;
    }
    let _ = sink.into_inner().shutdown().await;
    let mut read_half = frames.into_inner();
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut read = 0;
        while read < MAX_REFUSAL_READ_BYTES {
            match read_half.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read += n,
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, drain).await;
}
