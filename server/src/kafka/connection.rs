//! The loop of one Kafka connection: read a frame or see shutdown, decode it, serve
//! it, answer, in order. Requests are served one at a time, which keeps Kafka's rule
//! that responses come back in request order; a pipelining client waits on its
//! slowest request (a long-poll Fetch holds up a Produce on the same connection).
//! Garbage (a bad size, a request of a served API that does not decode) closes the
//! connection; an unsupported API is answered.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::frame::{next_frame, MAX_REQUEST_BYTES};
use super::session::{Advertised, Session};
use super::{apis, dispatch, request};
use crate::broker::Broker;
use crate::shutdown::Shutdown;

/// Bytes the read buffer starts with (it grows to a frame's checked size).
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Serves one connection until the client closes it, sends garbage, stays idle past
/// `limits.idle_timeout_ms`, or the broker shuts down.
pub async fn serve(
    mut socket: TcpStream,
    broker: Arc<Broker>,
    advertised: Advertised,
    mut shutdown: Shutdown,
) {
    let peer = socket.peer_addr().ok();
    let idle = Duration::from_millis(broker.config.limits.idle_timeout_ms);
    let login_deadline = Instant::now() + broker.security.authentication_timeout();
    let mut session = Session::new(broker, advertised, peer);
    let mut buf = BytesMut::with_capacity(READ_BUFFER_BYTES);
    loop {
        let frame = match next_frame(&mut buf, MAX_REQUEST_BYTES) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                // Until it has logged in, a connection has the authentication
                // timeout, not the idle one.
                let wait = match session.unauthenticated {
                    true => login_deadline
                        .saturating_duration_since(Instant::now())
                        .min(idle),
                    false => idle,
                };
                let read = tokio::select! {
                    read = tokio::time::timeout(wait, socket.read_buf(&mut buf)) => read,
                    _ = shutdown.recv() => return,
                };
                match read {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                    Ok(Ok(_)) => continue,
                }
            }
            Err(e) => {
                tracing::debug!(?peer, error = %e, "closing a Kafka connection");
                return;
            }
        };
        let parsed = match request::parse(frame) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::debug!(?peer, error = %e, "closing a Kafka connection");
                return;
            }
        };
        if session.unauthenticated {
            if let request::Body::Request(key, _) = &parsed.body {
                if !apis::before_login(*key) {
                    tracing::debug!(?peer, api = ?key, "closing a Kafka connection: a request before SASL authentication");
                    return;
                }
            }
        }
        let answer = match dispatch::respond(&mut session, parsed).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::error!(?peer, error = %e, "closing a Kafka connection");
                return;
            }
        };
        if let Some(bytes) = answer {
            if socket.write_all(&bytes).await.is_err() {
                return;
            }
        }
        if session.close_after_answer {
            return;
        }
    }
}
