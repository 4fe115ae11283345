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
//! are never resent automatically: the client cannot know whether the broker applied
//! them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use protocol::codec::ProtocolCodec;
use protocol::ops::handshake::HandshakeRequest;
use protocol::ops::subscribe::Delivery;
use protocol::{ErrorCode, Message, Request, Response};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

use crate::backoff::Backoff;
use crate::error::ClientError;

/// brokerd's default listen address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7171";
/// Default for [`ClientConfig::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Default for [`ClientConfig::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Default for [`ClientConfig::reconnect_backoff_initial`].
pub const DEFAULT_BACKOFF_INITIAL_MS: u64 = 50;
/// Default for [`ClientConfig::reconnect_backoff_max`].
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 2_000;
/// Default for [`ClientConfig::reconnect_max_attempts`].
pub const DEFAULT_RECONNECT_MAX_ATTEMPTS: u32 = 8;
/// Default for [`ClientConfig::max_in_flight_requests`].
pub const DEFAULT_MAX_IN_FLIGHT_REQUESTS: usize = 128;
/// Deliveries buffered per subscription before the client gives up on a reader that
/// does not keep up. Credit bounds what the broker sends, so this only overflows when
/// a subscriber grants far more credit than it reads.
pub const SUBSCRIPTION_BUFFER_DELIVERIES: usize = 1024;
/// Size of the writer's buffer; larger frames are written straight through.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Settings of a [`Client`]. Build with [`ClientConfig::default`] and the setters.
///
/// ```
/// use std::time::Duration;
/// use client::ClientConfig;
///
/// let config = ClientConfig::default()
///     .client_name("billing/1.2")
///     .request_timeout(Duration::from_secs(5))
///     .reconnect_max_attempts(3);
/// assert_eq!(config.reconnect_max_attempts, 3);
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Sent in the handshake; the broker shows it in group descriptions.
    pub client_name: String,
    /// How long a request may wait for its answer (long polls and produce acks get
    /// their own wait added on top).
    pub request_timeout: Duration,
    /// How long one TCP connect plus handshake may take.
    pub connect_timeout: Duration,
    /// Delay before the second connection attempt; it doubles on every later one.
    pub reconnect_backoff_initial: Duration,
    /// Largest delay between two connection attempts.
    pub reconnect_backoff_max: Duration,
    /// Connection attempts (the first included) before a request fails with
    /// [`ClientError::Connect`].
    pub reconnect_max_attempts: u32,
    /// Requests sent and not yet answered, at most; more wait for a slot.
    pub max_in_flight_requests: usize,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            client_name: format!("client/{}", env!("CARGO_PKG_VERSION")),
            request_timeout: Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS),
            connect_timeout: Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
            reconnect_backoff_initial: Duration::from_millis(DEFAULT_BACKOFF_INITIAL_MS),
            reconnect_backoff_max: Duration::from_millis(DEFAULT_BACKOFF_MAX_MS),
            reconnect_max_attempts: DEFAULT_RECONNECT_MAX_ATTEMPTS,
            max_in_flight_requests: DEFAULT_MAX_IN_FLIGHT_REQUESTS,
        }
    }
}

impl ClientConfig {
    /// Sets [`client_name`](Self::client_name).
    pub fn client_name(mut self, name: impl Into<String>) -> ClientConfig {
        self.client_name = name.into();
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the reconnect backoff's first and largest delay.
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> ClientConfig {
        self.reconnect_backoff_initial = initial;
        self.reconnect_backoff_max = max;
        self
    }

    /// Sets [`reconnect_max_attempts`](Self::reconnect_max_attempts).
    pub fn reconnect_max_attempts(mut self, attempts: u32) -> ClientConfig {
        self.reconnect_max_attempts = attempts;
        self
    }

    /// Sets [`max_in_flight_requests`](Self::max_in_flight_requests).
    pub fn max_in_flight_requests(mut self, requests: usize) -> ClientConfig {
        self.max_in_flight_requests = requests;
        self
    }

    fn backoff(&self) -> Backoff {
        Backoff {
            initial: self.reconnect_backoff_initial,
            max: self.reconnect_backoff_max,
            max_attempts: self.reconnect_max_attempts,
        }
    }
}

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
}

impl Client {
    /// Connects with the default [`ClientConfig`]. See [`connect_with`](Self::connect_with).
    pub async fn connect(addr: impl Into<String>) -> Result<Client, ClientError> {
        Client::connect_with(addr, ClientConfig::default()).await
    }

    /// Connects to `addr` (`host:port`) and performs the handshake, retrying with
    /// the configured backoff. Fails with [`ClientError::Connect`] when every attempt
    /// failed, or [`ClientError::Server`] when the broker refused the handshake.
    pub async fn connect_with(
        addr: impl Into<String>,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let in_flight = Arc::new(Semaphore::new(config.max_in_flight_requests.max(1)));
        let client = Client {
            inner: Arc::new(Inner {
                addr: addr.into(),
                config,
                conn: tokio::sync::Mutex::new(None),
                in_flight,
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
            .encode(&mut buf)
            .map_err(|e| ClientError::InvalidArgument(format!("cannot encode {op}: {e}")))?;
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
        let conn = Arc::new(open_with_backoff(&self.inner.addr, &self.inner.config).await?);
        *slot = Some(conn.clone());
        Ok(conn)
    }
}

/// A request on the wire, awaiting its answer. Dropping it forgets the request (its
/// answer, if it comes, is discarded) and frees its in-flight slot.
#[derive(Debug)]
pub(crate) struct PendingReply {
    rx: oneshot::Receiver<Result<Response, ClientError>>,
    op: &'static str,
    timeout: Duration,
    correlation_id: u32,
    shared: Arc<Shared>,
}

impl PendingReply {
    /// Waits for the answer, up to the request's timeout.
    pub(crate) async fn wait(mut self) -> Result<Response, ClientError> {
        match tokio::time::timeout(self.timeout, &mut self.rx).await {
            Ok(Ok(result)) => result,
            // The reader dropped the sender without answering: the connection closed.
            Ok(Err(_)) => Err(self.shared.lost()),
            Err(_) => Err(ClientError::Timeout {
                op: self.op,
                timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        self.shared.forget(self.correlation_id);
    }
}

/// One open connection: the queue to its writer task and its reader task.
#[derive(Debug)]
struct Conn {
    shared: Arc<Shared>,
    outbound: mpsc::Sender<Bytes>,
    max_frame_bytes: usize,
    _reader: AbortOnDrop,
    _writer: AbortOnDrop,
}

/// State shared by callers and the connection's tasks. The lock is held only for map
/// operations, never across an `.await`.
#[derive(Debug)]
struct Shared {
    addr: String,
    state: Mutex<ConnState>,
}

#[derive(Debug)]
struct ConnState {
    open: bool,
    next_id: u32,
    pending: HashMap<u32, Pending>,
    subscriptions: HashMap<u64, mpsc::Sender<Delivery>>,
}

#[derive(Debug)]
struct Pending {
    reply: oneshot::Sender<Result<Response, ClientError>>,
    /// For Subscribe: where the subscription's deliveries go. Registered by the reader
    /// when the answer arrives, before any delivery that follows it is routed.
    deliveries: Option<mpsc::Sender<Delivery>>,
    /// Held until the answer arrives or the caller gives up.
    _permit: OwnedSemaphorePermit,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ConnState> {
        // A panic while holding this lock leaves only maps behind, still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_open(&self) -> bool {
        self.lock().open
    }

    fn lost(&self) -> ClientError {
        ClientError::ConnectionLost {
            addr: self.addr.clone(),
        }
    }

    fn register(
        &self,
        op: &'static str,
        permit: OwnedSemaphorePermit,
        deliveries: Option<mpsc::Sender<Delivery>>,
    ) -> Result<(u32, oneshot::Receiver<Result<Response, ClientError>>), ClientError> {
        let mut state = self.lock();
        if !state.open {
            return Err(self.lost());
        }
        // Ids are unique among pending requests; 0 is skipped because the broker uses
        // it for errors it cannot attribute to a request.
        let mut id = state.next_id;
        while id == 0 || state.pending.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        state.next_id = id.wrapping_add(1);
        let (reply, rx) = oneshot::channel();
        state.pending.insert(
            id,
            Pending {
                reply,
                deliveries,
                _permit: permit,
            },
        );
        tracing::trace!(op, correlation_id = id, "request queued");
        Ok((id, rx))
    }

    fn forget(&self, correlation_id: u32) {
        self.lock().pending.remove(&correlation_id);
    }

    fn forget_subscription(&self, subscription_id: u64) {
        self.lock().subscriptions.remove(&subscription_id);
    }

    /// Marks the connection closed and fails everything waiting on it.
    fn close(&self) {
        let mut state = self.lock();
        state.open = false;
        for (_, pending) in state.pending.drain() {
            let _ = pending.reply.send(Err(self.lost()));
        }
        // Dropping the senders ends every subscription's stream.
        state.subscriptions.clear();
    }

    /// Routes one frame from the broker.
    fn dispatch(&self, frame: protocol::Frame) {
        let message = match Message::decode(frame) {
            Ok(message) => message,
            Err(error) => {
                let pending = error
                    .correlation_id()
                    .and_then(|id| self.lock().pending.remove(&id));
                match pending {
                    Some(p) => {
                        let _ = p.reply.send(Err(ClientError::Protocol(error.to_string())));
                    }
                    None => tracing::warn!(%error, "undecodable frame from the broker"),
                }
                return;
            }
        };
        let mut state = self.lock();
        match message {
            Message::Response {
                correlation_id,
                response,
            } => match state.pending.remove(&correlation_id) {
                Some(pending) => {
                    if let (Response::Subscribe(s), Some(tx)) = (&response, pending.deliveries) {
                        state.subscriptions.insert(s.subscription_id, tx);
                    }
                    let _ = pending.reply.send(Ok(response));
                }
                None => tracing::debug!(correlation_id, "answer to a request nobody awaits"),
            },
            Message::Error {
                correlation_id,
                error,
                ..
            } => match state.pending.remove(&correlation_id) {
                Some(pending) => {
                    let _ = pending.reply.send(Err(ClientError::Server {
                        code: error.code,
                        message: error.message,
                    }));
                }
                None => tracing::warn!(
                    correlation_id,
                    code = %error.code,
                    message = %error.message,
                    "broker error for no pending request"
                ),
            },
            Message::Push(delivery) => {
                let id = delivery.subscription_id;
                let Some(tx) = state.subscriptions.get(&id) else {
                    tracing::debug!(subscription_id = id, "delivery for a closed subscription");
                    return;
                };
                if let Err(e) = tx.try_send(delivery) {
                    if let mpsc::error::TrySendError::Full(_) = e {
                        tracing::warn!(
                            subscription_id = id,
                            "subscriber is {SUBSCRIPTION_BUFFER_DELIVERIES} deliveries behind; \
                             ending the subscription (grant less credit)"
                        );
                    }
                    state.subscriptions.remove(&id);
                }
            }
            Message::Request { .. } => tracing::warn!("the broker sent a request frame; ignored"),
        }
    }
}

/// Aborts a task when dropped, so a connection's tasks never outlive it.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why one connection attempt failed.
enum OpenError {
    /// Worth retrying: refused, reset, timed out, broker at its connection limit.
    Retry(std::io::Error),
    /// Not worth retrying: the broker refused the handshake.
    Fatal(ClientError),
}

async fn open_with_backoff(addr: &str, config: &ClientConfig) -> Result<Conn, ClientError> {
    let backoff = config.backoff();
    let mut attempt = 0;
    let mut last_error = std::io::Error::other("no connection attempt was made");
    while let Some(delay) = backoff.delay_before(attempt) {
        tokio::time::sleep(delay).await;
        attempt += 1;
        match open(addr, config).await {
            Ok(conn) => {
                tracing::debug!(addr, attempt, "connected");
                return Ok(conn);
            }
            Err(OpenError::Fatal(error)) => return Err(error),
            Err(OpenError::Retry(error)) => {
                tracing::debug!(addr, attempt, %error, "connection attempt failed");
                last_error = error;
            }
        }
    }
    Err(ClientError::Connect {
        addr: addr.to_string(),
        attempts: attempt,
        cause: Arc::new(last_error),
    })
}

/// One attempt: TCP connect, handshake, then start the reader and writer tasks.
async fn open(addr: &str, config: &ClientConfig) -> Result<Conn, OpenError> {
    let timed_out = || {
        OpenError::Retry(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no handshake within {} ms",
                config.connect_timeout.as_millis()
            ),
        ))
    };
    let handshake = tokio::time::timeout(config.connect_timeout, handshake(addr, config));
    let (reader, writer, max_frame_bytes) = handshake.await.map_err(|_| timed_out())??;
    let shared = Arc::new(Shared {
        addr: addr.to_string(),
        state: Mutex::new(ConnState {
            open: true,
            // 1 was the handshake's.
            next_id: 2,
            pending: HashMap::new(),
            subscriptions: HashMap::new(),
        }),
    });
    let (outbound, rx) = mpsc::channel(config.max_in_flight_requests.max(1));
    let reader = tokio::spawn(read_loop(reader, shared.clone()));
    let writer = tokio::spawn(write_loop(rx, writer, shared.clone()));
    Ok(Conn {
        shared,
        outbound,
        max_frame_bytes,
        _reader: AbortOnDrop(reader),
        _writer: AbortOnDrop(writer),
    })
}

type Frames = FramedRead<OwnedReadHalf, ProtocolCodec>;

async fn handshake(
    addr: &str,
    config: &ClientConfig,
) -> Result<(Frames, OwnedWriteHalf, usize), OpenError> {
    let stream = TcpStream::connect(addr).await.map_err(OpenError::Retry)?;
    // Requests are small and latency-bound; the writer batches them itself.
    stream.set_nodelay(true).map_err(OpenError::Retry)?;
    let (read, mut write) = stream.into_split();
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
    hello.encode(&mut buf).map_err(|e| {
        OpenError::Fatal(ClientError::InvalidArgument(format!(
            "cannot encode the handshake (is the client name over 65535 bytes?): {e}"
        )))
    })?;
    write.write_all(&buf).await.map_err(OpenError::Retry)?;
    let frame = match frames.next().await {
        Some(Ok(frame)) => frame,
        Some(Err(e)) => return Err(OpenError::Fatal(ClientError::Protocol(e.to_string()))),
        None => {
            return Err(OpenError::Retry(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the broker closed the connection during the handshake",
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
            let max_frame_bytes = usize::try_from(answer.max_frame_bytes).unwrap_or(usize::MAX);
            Ok((frames, write, max_frame_bytes))
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
        Err(e) => Err(OpenError::Fatal(ClientError::Protocol(e.to_string()))),
    }
}

async fn read_loop(mut frames: Frames, shared: Arc<Shared>) {
    loop {
        match frames.next().await {
            Some(Ok(frame)) => shared.dispatch(frame),
            Some(Err(error)) => {
                tracing::warn!(addr = %shared.addr, %error, "connection failed");
                break;
            }
            None => {
                tracing::debug!(addr = %shared.addr, "connection closed by the broker");
                break;
            }
        }
    }
    shared.close();
}

async fn write_loop(mut rx: mpsc::Receiver<Bytes>, write: OwnedWriteHalf, shared: Arc<Shared>) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write);
    while let Some(first) = rx.recv().await {
        let mut result = out.write_all(&first).await;
        // Everything queued meanwhile goes out with the same flush.
        while result.is_ok() {
            match rx.try_recv() {
                Ok(more) => result = out.write_all(&more).await,
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = out.flush().await;
        }
        if let Err(error) = result {
            tracing::warn!(addr = %shared.addr, %error, "write failed");
            shared.close();
            return;
        }
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
