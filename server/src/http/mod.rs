//! The HTTP gateway: a REST/JSON listener beside the native one (`docs/http.md`).
//!
//! It is another transport for the same request layer, not a second broker: every
//! endpoint turns its JSON into the typed [`protocol::Request`] the native protocol
//! carries, and calls [`crate::handlers::serve`] (authorization, then the dispatch
//! table) with a [`crate::handlers::Context`] built for the request, so an operation
//! behaves, is authorized and is audited exactly as over the native port; only the
//! encoding differs.
//!
//! The parts: this file binds and serves the listener (the connection limit, TLS
//! with ALPN `h2`/`http/1.1` on the native listener's certificate, graceful
//! shutdown); [`router`] is the one table of routes; [`state`] what every request
//! reaches; [`call`] the calls into the request layer; [`auth`] who a request is (HTTP Basic against the users' SCRAM
//! verifiers, a client certificate, or anonymous) with [`login_cache`] in front of
//! PBKDF2; [`error`] the JSON error body and the status of each error code;
//! [`body`] the extractors that turn every bad input into a JSON 4xx; [`records`]
//! (pure) records as JSON to a batch and back; one module per family of endpoints
//! ([`topics`], [`produce`], [`fetch`], [`health`], [`metrics`]; [`services`] and
//! [`registry_watch`], [`routes`], [`traces`], [`stats`], the last ones reading
//! internal topics with [`internal_read`]); [`openapi`] the OpenAPI 3.1 document
//! generated from all of them.
//!
//! Consumers without a connection: [`members`] holds the group members the gateway
//! keeps for stateless clients (per principal, topic and group; bounded, expiring with
//! their session); [`queues`] (receive with a lease, ack, nack, extend), [`groups`]
//! (read as a group, commit what was read; group administration), [`stream`]
//! (Server-Sent Events, read only as fast as the client takes them) and [`dlq`]
//! (dead letters) build on it and on the request layer's pull
//! ([`crate::handlers::queue::receive`]).
//!
//! HTTP/1.1 (keep-alive) and HTTP/2 are served on the same port: HTTP/2 by ALPN over
//! TLS, by prior knowledge (h2c) on plaintext. Memory is bounded by
//! `http.max_connections`, [`MAX_STREAMS_PER_CONNECTION`], `http.max_body_bytes` and
//! `http.max_records_per_produce`; time by `http.request_timeout_ms` and
//! [`HEADER_READ_TIMEOUT`].
//!
//! Must never: copy a handler's logic, answer a client error with a 5xx or a panic,
//! or echo client input beyond a bounded, sanitised name.

pub mod auth;
pub mod body;
pub mod call;
pub mod console;
pub mod dlq;
pub mod error;
pub mod fetch;
pub mod groups;
pub mod health;
pub mod internal_read;
pub mod login_cache;
pub mod members;
pub mod metrics;
pub mod openapi;
pub mod produce;
pub mod queues;
pub mod records;
pub mod registry_watch;
pub mod router;
pub mod routes;
pub mod services;
pub mod state;
pub mod stats;
pub mod stream;
pub mod topics;
pub mod traces;
pub mod whoami;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::stats::ListenerKind;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::broker::Broker;
use crate::connection::Peer;
use crate::shutdown::Shutdown;
use crate::tls::Tls;
use state::HttpState;

/// HTTP/2 streams (requests) one connection may have open at once.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 128;
/// A client must send a request's headers within this long of starting it (and a new
/// HTTP/1.1 connection its first request's), or the connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// An HTTP/2 connection is pinged after this long without traffic, and closed if the
/// ping is not answered within [`HTTP2_PING_TIMEOUT`] (a vanished peer). A live but
/// idle HTTP/2 connection stays open (and counts against `http.max_connections`)
/// until the client closes it; an idle HTTP/1.1 one is closed after
/// [`HEADER_READ_TIMEOUT`].
pub const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(30);
/// How long an HTTP/2 keep-alive ping may go unanswered.
pub const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// How long shutdown lets HTTP connections finish their requests.
pub const HTTP_SHUTDOWN_GRACE: Duration = crate::SHUTDOWN_GRACE;

/// The gateway's bound socket, and its TLS configuration when `[tls]` is set.
#[derive(Debug)]
pub struct HttpListener {
    tcp: TcpListener,
    tls: Option<Arc<Tls>>,
}

impl HttpListener {
    /// Binds `address`; with `tls`, connections are HTTPS.
    pub async fn bind(address: SocketAddr, tls: Option<Arc<Tls>>) -> std::io::Result<HttpListener> {
        Ok(HttpListener {
            tcp: TcpListener::bind(address).await?,
            tls,
        })
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Serves HTTP until `shutdown`, then stops accepting and gives open connections
/// [`HTTP_SHUTDOWN_GRACE`] to finish their requests (HTTP/1.1 connections close after
/// the answer in flight, HTTP/2 ones get a GOAWAY).
pub async fn serve(listener: HttpListener, broker: Arc<Broker>, mut shutdown: Shutdown) {
    let HttpListener { tcp, tls } = listener;
    let state = Arc::new(HttpState::new(broker.clone()));
    let app = router::router(state);
    let limits = &broker.config.http;
    let connections_allowed = Arc::new(Semaphore::new(limits.max_connections));
    let request_timeout = Duration::from_millis(limits.request_timeout_ms);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .keep_alive_interval(HTTP2_PING_INTERVAL)
        .keep_alive_timeout(HTTP2_PING_TIMEOUT);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = tcp.accept() => accepted,
            _ = shutdown.recv() => break,
        };
        let (socket, remote) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        broker.stats.count_accepted(ListenerKind::Http);
        while connections.try_join_next().is_some() {}
        let Ok(permit) = connections_allowed.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "refusing an HTTP connection: too many open");
            drop(socket);
            continue;
        };
        let connection = Connection {
            builder: builder.clone(),
            app: app.clone(),
            watcher: graceful.watcher(),
            request_timeout,
            handshake_timeout: Duration::from_millis(broker.config.limits.handshake_timeout_ms),
            shutdown: shutdown.clone(),
        };
        let tls = tls.clone();
        let counted = broker.stats.connection_opened(ListenerKind::Http);
        connections.spawn(async move {
            connection.serve(socket, remote, tls).await;
            drop(counted);
            drop(permit);
        });
    }
    drop(tcp);
    // Connections still in their TLS handshake are not watched yet: they end with
    // the rest below.
    if tokio::time::timeout(HTTP_SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still busy after {HTTP_SHUTDOWN_GRACE:?}; closing anyway");
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// What serving one accepted connection needs.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    app: axum::Router,
    watcher: hyper_util::server::graceful::Watcher,
    request_timeout: Duration,
    handshake_timeout: Duration,
    /// The listener's shutdown, in every request's extensions, so that streams
    /// (Server-Sent Events) end with it instead of holding graceful shutdown up.
    shutdown: Shutdown,
}

impl Connection {
    /// The TLS handshake first when the listener has TLS, then HTTP.
    async fn serve(self, socket: TcpStream, remote: SocketAddr, tls: Option<Arc<Tls>>) {
        let accepted_at = Instant::now();
        let _ = socket.set_nodelay(true);
        let Some(tls) = tls else {
            return self.http(socket, Peer::plain(remote, accepted_at)).await;
        };
        let handshake =
            tokio::time::timeout(self.handshake_timeout, tls.http_acceptor().accept(socket)).await;
        let stream = match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%remote, %error, "HTTPS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "closing an HTTPS connection that did not finish its TLS handshake in time");
                return;
            }
        };
        let certificate_principal = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| tls.principal(chain));
        let peer = Peer {
            remote,
            tls: true,
            certificate_principal,
            accepted_at,
        };
        self.http(stream, peer).await
    }

    /// Serves HTTP/1.1 or HTTP/2 (whichever the client speaks) on `stream`.
    async fn http<S>(self, stream: S, peer: Peer)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            builder,
            app,
            watcher,
            request_timeout,
            shutdown,
            ..
        } = self;
        let remote = peer.remote;
        let peer = Arc::new(peer);
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(peer.clone());
                request.extensions_mut().insert(shutdown.clone());
                let app = app.clone();
                async move {
                    let answer = tokio::time::timeout(
                        request_timeout,
                        app.oneshot(request.map(axum::body::Body::new)),
                    )
                    .await;
                    Ok::<_, std::convert::Infallible>(match answer {
                        Ok(Ok(response)) => response,
                        Ok(Err(never)) => match never {},
                        Err(_) => error::ApiError::request_timeout(request_timeout).into_response(),
                    })
                }
            },
        );
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        if let Err(error) = watcher.watch(connection).await {
            tracing::debug!(%remote, %error, "HTTP connection ended with an error");
        }
    }
}
