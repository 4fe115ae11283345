//! One client connection of the native protocol: read frames, admit them, authorize
//! them ([`handlers::authorize`]), charge the in-flight budget, dispatch through
//! [`handlers::handle`], answer.
//!
//! The connection runs on any [`Transport`] (plain TCP, or TLS: [`accept`] does the
//! TLS handshake first), and knows who is at the other end ([`Peer`]).
//! The connection task owns the socket's read half and the session; a writer task
//! ([`writer`]) owns the write half and drains a bounded queue of outbound messages
//! (answers and pushed deliveries). Requests whose answer waits (long polls,
//! durability, group commits) run as their own tasks, so one slow request never holds
//! up the others; produces are appended inline, in arrival order, gathered into runs
//! ([`ProduceRun`]) while further frames are already read.
//!
//! Memory per connection is bounded: frames by `max_frame_bytes` (and by
//! [`MAX_HANDSHAKE_FRAME_BYTES`] until the handshake is done), requests in flight by
//! `max_inflight_bytes_per_connection` ([`budget`]), outbound messages by
//! `max_outbound_frames_per_connection`. Time is bounded too, so that stalled
//! connections cannot hold the connection limit: the handshake must come within
//! `handshake_timeout_ms`, a frame that began to arrive must keep arriving
//! (`frame_read_timeout_ms`, measured by [`progress`]), and a connection with nothing
//! in flight that sends nothing for `idle_timeout_ms` is closed.

pub mod accept;
mod authenticate;
pub mod budget;
pub mod inbound;
pub mod progress;
pub mod refuse;
pub mod session;
pub mod transport;
mod writer;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use protocol::codec::{CodecError, ProtocolCodec};
use protocol::{Frame, Message, Request, Response};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::handlers::{self, produce::ProduceRun, Context, Outcome};
use crate::reply::{Reply, ReplyTo};
use crate::security::login::Login;
use crate::shutdown::Shutdown;
use crate::stats::{Closed, ConnectionGuard};
use budget::Budget;
use inbound::Inbound;
use progress::{LastRead, Progressed};
use session::{Admission, Session};
pub use transport::{Peer, Transport};

/// Bytes read from the socket at a time once the handshake is done (and allocated
/// again when the frames cut from the last buffer are still held): a burst of pipelined
/// 1 KiB produces arrives in one read instead of several.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Largest frame, and the read buffer, before the handshake: a Handshake is small, and
/// a connection that has not said who it is may not make the broker reserve more.
pub const MAX_HANDSHAKE_FRAME_BYTES: usize = 4 * 1024;

/// Serves one connection from `peer` until the client leaves, a fatal protocol error,
/// or shutdown.
pub async fn serve<S: Transport>(stream: S, peer: Peer, broker: Arc<Broker>, shutdown: Shutdown) {
    let mut connection = Connection::open(stream, peer, broker, shutdown);
    while let Some(read) = connection.next_frame().await {
        let go_on = match inbound::classify(read) {
            Inbound::Request {
                version,
                correlation_id,
                request,
            } => {
                connection
                    .on_request(version, correlation_id, request)
                    .await
            }
            Inbound::Refused { answer, close } => {
                if let Some((correlation_id, op, error)) = answer {
                    connection.answer(correlation_id, op, Err(error)).await;
                }
                !close
            }
        };
        if !go_on {
            break;
        }
    }
    connection.close().await;
}

struct Connection<R> {
    broker: Arc<Broker>,
    /// Who is at the other end (address, TLS, certificate principal).
    peer: Peer,
    frames: FramedRead<Progressed<R>, ProtocolCodec>,
    /// When the socket last delivered a byte.
    last_read: LastRead,
    opened_at: Instant,
    /// When the last frame was read (or, while requests were in flight, checked).
    active_at: Instant,
    outbound: mpsc::Sender<Message>,
    writer: JoinHandle<()>,
    reply: Reply,
    budget: Budget,
    session: Session,
    /// The handlers' context, from the moment the connection has a principal: at the
    /// handshake, or once it authenticated where the broker requires that.
    context: Option<Context>,
    /// The client's handshake name while the connection still has to authenticate.
    awaiting_login: Option<Arc<str>>,
    /// The connection's Authenticate exchange.
    login: Login,
    /// The protocol version the handshake chose, shared with the writer.
    negotiated: Arc<OnceLock<u16>>,
    run: ProduceRun<Reply>,
    shutdown: Shutdown,
    /// Counts the connection in the stats while it lives.
    _counted: ConnectionGuard,
}

impl<R: tokio::io::AsyncRead + Unpin + Send + 'static> Connection<R> {
    fn open<S: Transport<Read = R>>(
        stream: S,
        peer: Peer,
        broker: Arc<Broker>,
        shutdown: Shutdown,
    ) -> Connection<R> {
        tracing::debug!(
            remote = %peer.remote,
            tls = peer.tls,
            principal = peer.certificate_principal.as_deref(),
            "connection opened"
        );
        let limits = broker.config.limits.clone();
        let (read_half, write_half) = stream.split();
        let first_frame_bytes = MAX_HANDSHAKE_FRAME_BYTES.min(limits.max_frame_bytes);
        let codec = ProtocolCodec::with_max_frame_bytes(first_frame_bytes);
        let (outbound, queued) = mpsc::channel(limits.max_outbound_frames_per_connection);
        let reply = Reply::new(outbound.clone(), broker.metrics.clone());
        let last_read = LastRead::new();
        let read_half = Progressed::new(read_half, last_read.clone());
        let negotiated = Arc::new(OnceLock::new());
        Connection {
            frames: FramedRead::with_capacity(read_half, codec, first_frame_bytes),
            last_read,
            opened_at: peer.accepted_at,
            peer,
            active_at: Instant::now(),
            writer: writer::spawn(
                write_half,
                queued,
                limits.max_frame_bytes,
                negotiated.clone(),
            ),
            negotiated,
            run: ProduceRun::new(reply.clone()),
            reply,
            outbound,
            budget: Budget::new(limits.max_inflight_bytes_per_connection),
            session: Session::new(limits.max_frame_bytes as u32),
            context: None,
            awaiting_login: None,
            login: Login::Idle,
            _counted: broker
                .stats
                .connection_opened(crate::stats::ListenerKind::Native),
            broker,
            shutdown,
        }
    }

    /// The next frame; `None` when the client left, shutdown began, or the connection
    /// timed out. A produce run grows while frames are already read and waiting, and is
    /// appended before this waits for more (`next()` is cancel-safe: polling it once
    /// loses nothing).
    async fn next_frame(&mut self) -> Option<Result<Frame, CodecError>> {
        if !self.run.is_empty() {
            if let Some(ready) = self.frames.next().now_or_never() {
                self.active_at = Instant::now();
                return ready;
            }
        }
        self.run.flush(&self.broker).await;
        loop {
            let (deadline, why) = self.deadline();
            tokio::select! {
                next = self.frames.next() => {
                    self.active_at = Instant::now();
                    return next;
                }
                _ = self.shutdown.recv() => return None,
                _ = tokio::time::sleep_until(deadline) => {
                    if self.timed_out(why) {
                        self.broker.stats.count_closed(why);
                        tracing::debug!(reason = ?why, "closing a stalled connection");
                        return None;
                    }
                }
            }
        }
    }

    /// When the connection times out if nothing arrives, and why it would.
    fn deadline(&self) -> (Instant, Closed) {
        let ms = |ms| Duration::from_millis(ms);
        let limits = &self.broker.config.limits;
        if self.context.is_none() {
            let timeout = if self.broker.security.enabled() {
                self.broker.security.authentication_timeout()
            } else {
                ms(limits.handshake_timeout_ms)
            };
            return (self.opened_at + timeout, Closed::HandshakeTimeout);
        }
        if !self.frames.read_buffer().is_empty() {
            return (
                self.last_read.at() + ms(limits.frame_read_timeout_ms),
                Closed::StalledFrame,
            );
        }
        (self.active_at + ms(limits.idle_timeout_ms), Closed::Idle)
    }

    /// Whether the connection must close for `why` now that its deadline passed. A
    /// connection that waits for answers or holds subscriptions is not idle: its idle
    /// time starts over.
    fn timed_out(&mut self, why: Closed) -> bool {
        let (deadline, now_why) = self.deadline();
        if now_why != why || Instant::now() < deadline {
            return false;
        }
        let busy = self.budget.in_use()
            || self
                .context
                .as_ref()
                .is_some_and(|cx| !cx.subscriptions.is_empty());
        if why == Closed::Idle && busy {
            self.active_at = Instant::now();
            return false;
        }
        true
    }

    async fn answer(&self, correlation_id: u32, op: u16, answer: handlers::Answer) {
        let to = ReplyTo {
            correlation_id,
            op,
            permit: None,
        };
        self.reply.send(to, answer).await;
    }

    /// Admits and serves one request; `false` when the connection must close.
    async fn on_request(&mut self, version: u16, correlation_id: u32, request: Request) -> bool {
        let op = request.op_code().as_u16();
        let client = match self.session.admit(version, &request) {
            Admission::Serve => None,
            Admission::Opened { response, client } => Some((response, client)),
            Admission::Refused { error, close } => {
                self.answer(correlation_id, op, Err(error)).await;
                return !close;
            }
        };
        if let Some((response, client)) = client {
            // Every later frame goes out in the negotiated version (the handshake's
            // own answer is always version 1, whatever the writer is told).
            let _ = self.negotiated.set(response.version);
            let certificate = self.peer.certificate_principal.clone();
            match self.broker.security.initial_principal(certificate) {
                Some(principal) => self.admit(client, principal),
                None => self.awaiting_login = Some(client),
            }
            self.answer(correlation_id, op, Ok(Response::Handshake(response)))
                .await;
            return true;
        }
        if let Request::Authenticate(step) = &request {
            return self.authenticate(correlation_id, op, step).await;
        }
        let Some(cx) = self.context.as_ref() else {
            // Handshaken, not authenticated, and the broker admits nobody anonymous.
            self.answer(correlation_id, op, Err(BrokerError::AuthenticationRequired))
                .await;
            return false;
        };
        // The request layer's one authorization check, before the budget is charged
        // or the run flushed: a refused request changes nothing.
        if let Err(refused) = handlers::authorize(&self.broker, cx, &request) {
            self.answer(correlation_id, op, Err(refused)).await;
            return true;
        }
        // Anything but a produce ends the run first, so requests take effect in order.
        if !matches!(request, Request::Produce(_)) {
            self.run.flush(&self.broker).await;
        }
        let permit = match self.budget.try_charge(&request) {
            Some(permit) => permit,
            None => {
                // The run holds budget of its own: append and answer it before waiting.
                self.run.flush(&self.broker).await;
                let charged = tokio::select! {
                    permit = self.budget.charge(&request) => permit,
                    _ = self.shutdown.recv() => None,
                };
                let Some(permit) = charged else { return false };
                permit
            }
        };
        let to = ReplyTo {
            correlation_id,
            op,
            permit: Some(permit),
        };
        match request {
            Request::Produce(produce) => {
                self.run.offer(&self.broker, produce, to).await;
                true
            }
            other => self.dispatch(other, to).await,
        }
    }

    async fn dispatch(&mut self, request: Request, to: ReplyTo) -> bool {
        let Some(cx) = self.context.as_mut() else {
            return false;
        };
        match handlers::handle(&self.broker, cx, request) {
            Outcome::Now(answer) => self.reply.send(to, answer).await,
            Outcome::Later(pending) => {
                let reply = self.reply.clone();
                tokio::spawn(async move { reply.send(to, pending.await).await });
            }
        }
        true
    }

    /// Stops reading; lets in-flight requests finish and their answers go out.
    async fn close(mut self) {
        self.run.flush(&self.broker).await;
        drop(self.context.take());
        let Connection {
            run,
            reply,
            outbound,
            budget,
            writer,
            ..
        } = self;
        drop((run, reply, outbound));
        budget.drain().await;
        let _ = writer.await;
    }
}
