//! The loop of one Kafka connection: read a frame or see shutdown, decode it, serve
//! it, answer, in order.
//!
//! Kafka's rule is that responses come back in request order. A Produce is appended
//! as soon as it is read, in order, and its answer waits in a queue of
//! [`MAX_IN_FLIGHT`] answers while the connection reads and starts the next
//! requests: a client that pipelines durable produces (librdkafka does, up to
//! `max.in.flight`) gets them covered by shared syncs instead of one sync each. The
//! writer sends the queue's answers in order as each is ready. Every other request
//! is served to its end before the next is read (a long-poll Fetch holds up the
//! requests behind it, as on a Kafka broker). Garbage (a bad size, a request of a
//! served API that does not decode) closes the connection; an unsupported API is
//! answered.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::BytesMut;
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

use super::buffers::BatchBuffers;
use super::dispatch::Reply;
use super::frame::{next_frame, MAX_REQUEST_BYTES};
use super::session::{Advertised, Session};
use super::{apis, dispatch, request};
use crate::broker::Broker;
use crate::connection::{Peer, Transport};
use crate::shutdown::Shutdown;

/// Bytes the read buffer starts with (it grows to a frame's checked size).
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Bytes of answers the writer gathers into one write before it sends them (a
/// larger answer, a big Fetch, is written straight through).
pub const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Answers one connection may have started and not yet written. When the queue is
/// full the connection stops reading until the oldest answer is written. Kafka's
/// Java producer sends at most 5 requests ahead, librdkafka as many as it has
/// batches; past a few dozen, more in flight only holds more memory.
pub const MAX_IN_FLIGHT: usize = 32;

/// Serves one connection until the client closes it, sends garbage, stays idle past
/// `limits.idle_timeout_ms`, or the broker shuts down. Answers already started are
/// written before the connection closes.
/// Plain TCP and TLS each get their own copy ([`Transport`]).
pub async fn serve<S: Transport>(
    stream: S,
    peer: Peer,
    broker: Arc<Broker>,
    advertised: Advertised,
    buffers: Arc<BatchBuffers>,
    shutdown: Shutdown,
) {
    let (reader, writer) = stream.split();
    let (replies, queued) = mpsc::channel(MAX_IN_FLIGHT);
    let remote = peer.remote;
    let session = Session::new(broker, advertised, buffers, peer);
    tokio::join!(
        read_requests(reader, session, replies, shutdown),
        write_answers(writer, queued, remote),
    );
}

/// Reads, checks and serves requests, queueing each answer for the writer.
async fn read_requests(
    mut socket: impl AsyncRead + Unpin,
    mut session: Session,
    replies: mpsc::Sender<Reply>,
    mut shutdown: Shutdown,
) {
    let peer = session.peer;
    let idle = Duration::from_millis(session.broker.config.limits.idle_timeout_ms);
    let login_deadline = Instant::now() + session.broker.security.authentication_timeout();
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
                tracing::debug!(%peer, error = %e, "closing a Kafka connection");
                return;
            }
        };
        let parsed = match request::parse(frame) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "closing a Kafka connection");
                return;
            }
        };
        if session.unauthenticated {
            if let request::Body::Request(key, _) = &parsed.body {
                if !apis::before_login(*key) {
                    tracing::debug!(%peer, api = ?key, "closing a Kafka connection: a request before SASL authentication");
                    return;
                }
            }
        }
        let reply = match dispatch::respond(&mut session, parsed).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!(%peer, error = %e, "closing a Kafka connection");
                return;
            }
        };
        // A request without an answer (`acks = 0`) has nothing to keep in order; a
        // send fails when the writer stopped: the client is gone.
        let answered = !matches!(reply, Reply::Now(None));
        if answered && replies.send(reply).await.is_err() {
            return;
        }
        if session.close_after_answer {
            return;
        }
    }
}

/// Writes the queued answers in request order, each once it is ready, until the
/// reader stops and the queue is empty or a write fails. Answers that are ready
/// back to back (a run of produces one sync covered) go out in one write; what is
/// buffered is flushed before the writer waits for anything, so no answer waits
/// behind a later one.
async fn write_answers(
    socket: impl AsyncWrite + Unpin,
    mut queued: mpsc::Receiver<Reply>,
    peer: std::net::SocketAddr,
) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, socket);
    loop {
        let reply = match queued.try_recv() {
            Ok(reply) => reply,
            Err(TryRecvError::Empty) => {
                if out.flush().await.is_err() {
                    return;
                }
                match queued.recv().await {
                    Some(reply) => reply,
                    None => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        let frame = match reply {
            Reply::Now(frame) => Ok(frame),
            Reply::Later(mut answer) => match (&mut answer).now_or_never() {
                Some(done) => done,
                None => {
                    if out.flush().await.is_err() {
                        return;
                    }
                    answer.await
                }
            },
        };
        match frame {
            Ok(Some(bytes)) => {
                if out.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(%peer, error = %e, "closing a Kafka connection");
                break;
            }
        }
    }
    // The answers written so far, then (over TLS) close_notify.
    let _ = out.shutdown().await;
}
