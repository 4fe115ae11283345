//! [`Client`]: one pipelined TCP connection to the broker, reconnected on demand.
//!
//! Shape (mini-redis's `connection.rs` idea: one owner per half of the socket):
//! - a **writer task** owns the socket's write half and drains a queue of encoded
//!   frames, writing everything queued with one flush, so pipelined requests share
//!   syscalls;
//! - a **reader task** owns the read half, decodes each frame and routes it: a response
//!   to the oneshot channel registered under its correlation id, a pushed delivery to
//!   its subscription's channel;
//! - callers register a pending entry (which holds one of `max_in_flight_requests`
//!   permits), hand the encoded frame to the writer and await their oneshot.
//!
//! When the connection fails, every pending request fails with
//! [`ClientError::ConnectionLost`] and the connection is marked closed; the next
//! request opens a new one (with exponential backoff, redoing the handshake). Requests
//! are never resent at this layer: the client cannot know whether the broker applied
//! them. (The idempotent [`Producer`](crate::Producer) resends its batches itself,
//! tagged so that the broker recognises a retry.)
//!
//! The files, one job each:
//! - this one: [`Client`], the handle the rest of the crate calls (`request`, and
//!   the crate's `call` and `start`), and opening a connection when there is none;
//! - [`config`]: [`ClientConfig`], its defaults and the client's limits;
//! - [`multiplex`]: correlation ids and the routing of answers and pushes to their
//!   callers, the state shared by callers and the reader task;
//! - [`conn`]: one open connection and the two tasks owning its socket's halves;
//! - [`open`]: opening a connection, attempt after attempt with backoff;
//! - [`address`]: the check of a `host:port` address before the first attempt;
//! - [`handshake`]: the first exchange on every new connection;
//! - [`tls`]: [`TlsConfig`], and the TLS handshake under it when it is set;
//! - [`authenticate`]: the SASL exchange after it, for a client with credentials.

mod address;
mod authenticate;
mod config;
mod conn;
mod handshake;
mod multiplex;
mod open;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use protocol::ops::subscribe::Delivery;
use protocol::{EncodeError, Message, Request, Response};
use tokio::sync::{mpsc, Semaphore};

use crate::error::ClientError;

pub use config::{
    ClientConfig, DEFAULT_ADDR, DEFAULT_BACKOFF_INITIAL_MS, DEFAULT_BACKOFF_MAX_MS,
    DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_MAX_IN_FLIGHT_REQUESTS, DEFAULT_RECONNECT_MAX_ATTEMPTS,
    DEFAULT_REQUEST_TIMEOUT_MS, SUBSCRIPTION_BUFFER_DELIVERIES,
};
use conn::Conn;
pub(crate) use multiplex::PendingReply;
use open::open_with_backoff;
pub use tls::{TlsConfig, ENV_TLS_CA, ENV_TLS_CERT, ENV_TLS_KEY, ENV_TLS_SERVER_NAME};

/// A handle to the broker: cheap to clone (an `Arc` inside), safe to use from many
/// tasks at once. All clones share one connection, on which requests are pipelined.
///
/// ```no_run
/// # async fn demo() -> Result<(), client::ClientError> {
/// let client = client::Client::connect("127.0.0.1:7171").await?;
/// client.create_topic("orders", 4, &[("retention_ms", "86400000")]).await?;
/// for topic in client.list_topics(false).await? {
///     println!("{} has {} partitions", topic.name, topic.partitions);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    addr: String,
    config: ClientConfig,
    /// The current connection; replaced when it closes. An async mutex because
    /// opening a connection awaits, and concurrent callers should share one attempt.
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    in_flight: Arc<Semaphore>,
    /// `config.tls` made ready (its files read once, at connect).
    tls: Option<tls::Connector>,
}

impl Client {
    /// Connects with the default [`ClientConfig`]. See [`connect_with`](Self::connect_with).
    pub async fn connect(addr: impl Into<String>) -> Result<Client, ClientError> {
        Client::connect_with(addr, ClientConfig::default()).await
    }

    /// Connects to `addr` (`host:port`) and performs the handshake (and, with
    /// [`ClientConfig::credentials`], authenticates), retrying with the configured
    /// backoff. Fails with [`ClientError::Connect`] when every attempt failed,
    /// [`ClientError::Server`] when the broker refused the handshake,
    /// [`ClientError::TlsFile`] when a TLS file cannot be used,
    /// [`ClientError::Tls`] when TLS with the broker fails and
    /// [`ClientError::Authentication`] when it refused the credentials (none of those
    /// retried).
    pub async fn connect_with(
        addr: impl Into<String>,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let addr = addr.into();
        let in_flight = Arc::new(Semaphore::new(config.max_in_flight_requests.max(1)));
        let tls = match &config.tls {
            Some(settings) => Some(tls::Connector::new(settings, &addr)?),
            None => None,
        };
        let client = Client {
            inner: Arc::new(Inner {
                addr,
                config,
                conn: tokio::sync::Mutex::new(None),
                in_flight,
                tls,
            }),
        };
        client.connection().await?;
        Ok(client)
    }

    /// The broker address this client connects to.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// The client's settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Sends any request and waits (up to the request timeout) for its answer. The
    /// typed methods ([`create_topic`](Self::create_topic), ...) are built on this;
    /// use it for operations they do not cover.
    pub async fn request(&self, request: Request) -> Result<Response, ClientError> {
        self.call(request, self.inner.config.request_timeout).await
    }

    /// Sends a request and waits up to `timeout` for the answer.
    pub(crate) async fn call(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        self.start(request, timeout, None).await?.wait().await
    }

    /// Queues a request on the connection and returns a handle to await its answer.
    /// Requests started one after another by the same task reach the broker in that
    /// order, which the producer relies on to keep a partition's batches in order.
    pub(crate) async fn start(
        &self,
        request: Request,
        timeout: Duration,
        deliveries: Option<mpsc::Sender<Delivery>>,
    ) -> Result<PendingReply, ClientError> {
        let op = request.op_code().name();
        let permit = self
            .inner
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ClientError::Closed("the client"))?;
        let conn = self.connection().await?;
        let (correlation_id, rx) = conn.shared.register(op, permit, deliveries)?;
        let pending = PendingReply {
            rx,
            op,
            timeout,
            correlation_id,
            shared: conn.shared.clone(),
        };
        let mut buf = BytesMut::new();
        let message = Message::Request {
            correlation_id,
            request,
        };
        message
            .encode(conn.version, &mut buf)
            .map_err(|e| match e {
                EncodeError::NotInVersion { .. } => ClientError::Unsupported(format!(
                    "{e}: the broker at {} is older than this client",
                    conn.shared.addr
                )),
                e => ClientError::InvalidArgument(format!("cannot encode {op}: {e}")),
            })?;
        if buf.len() > conn.max_frame_bytes {
            return Err(ClientError::InvalidArgument(format!(
                "the {op} request is {} bytes; the broker accepts frames of at most {} bytes",
                buf.len(),
                conn.max_frame_bytes
            )));
        }
        // The queue holds at most max_in_flight_requests frames (one per permit), so
        // this waits only for the writer to catch up.
        conn.outbound
            .send(buf.freeze())
            .await
            .map_err(|_| conn.shared.lost())?;
        Ok(pending)
    }

    /// The open connection, or a new one (with backoff) if there is none.
    async fn connection(&self) -> Result<Arc<Conn>, ClientError> {
        let mut slot = self.inner.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            if conn.shared.is_open() {
                return Ok(conn.clone());
            }
        }
        // Drop the dead connection (aborting its tasks) before opening another.
        *slot = None;
        let conn = Arc::new(
            open_with_backoff(
                &self.inner.addr,
                &self.inner.config,
                self.inner.tls.as_ref(),
            )
            .await?,
        );
        *slot = Some(conn.clone());
        Ok(conn)
    }
}

impl Client {
    /// Stops routing deliveries of a subscription (used by `Subscription`).
    pub(crate) async fn forget_subscription(&self, subscription_id: u64) {
        if let Some(conn) = self.inner.conn.lock().await.as_ref() {
            conn.shared.forget_subscription(subscription_id);
        }
    }
}
