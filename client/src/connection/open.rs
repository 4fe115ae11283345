//! Opening a connection: attempts with backoff, each a TCP connect, the TLS handshake
//! when the client has TLS, and the protocol handshake.
//!
//! A connection is opened only when a caller needs one and none is open
//! (`Client::connection`: at connect, and on the first request after the last
//! connection closed), never in the background, and concurrent callers share one
//! attempt. Each attempt is bounded by `connect_timeout`. Its failures are sorted into
//! those worth retrying (refused, reset, timed out, broker at its connection limit)
//! and those that are not (the broker refused the handshake or the credentials, or
//! failed to prove itself), so that a client the broker will never accept fails at
//! once instead of after every attempt. Every new connection authenticates again. The delays
//! between attempts come from the pure [`Backoff`](crate::Backoff) schedule. An
//! address that is not `host:port` is refused before the first attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::address;
use super::authenticate::{authenticate, Link};
use super::conn::{read_loop, write_loop, AbortOnDrop, Conn};
use super::handshake::handshake;
use super::multiplex::{ConnState, Shared};
use super::tls::Connector;
use super::ClientConfig;
use crate::error::ClientError;

/// Why one connection attempt failed.
pub(super) enum OpenError {
    /// Worth retrying: refused, reset, timed out, broker at its connection limit.
    Retry(std::io::Error),
    /// Not worth retrying: the broker refused the handshake or the credentials.
    Fatal(ClientError),
}

pub(super) async fn open_with_backoff(
    addr: &str,
    config: &ClientConfig,
    tls: Option<&Connector>,
) -> Result<Conn, ClientError> {
    // A malformed address fails the same way every time: not worth an attempt.
    address::check(addr)?;
    let backoff = config.backoff();
    let mut attempt = 0;
    let mut last_error = std::io::Error::other("no connection attempt was made");
    while let Some(delay) = backoff.delay_before(attempt) {
        tokio::time::sleep(delay).await;
        attempt += 1;
        match open(addr, config, tls).await {
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

/// One attempt: TCP connect, TLS if configured, handshake, then start the reader and
/// writer tasks; all within `connect_timeout`.
async fn open(
    addr: &str,
    config: &ClientConfig,
    tls: Option<&Connector>,
) -> Result<Conn, OpenError> {
    let timed_out = || {
        OpenError::Retry(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no handshake within {} ms",
                config.connect_timeout.as_millis()
            ),
        ))
    };
    let attempt = async {
        let stream = TcpStream::connect(addr).await.map_err(OpenError::Retry)?;
        // Requests are small and latency-bound; the writer batches them itself.
        stream.set_nodelay(true).map_err(OpenError::Retry)?;
        match tls {
            // Plain TCP keeps its two owned halves; TLS shares one session state.
            None => {
                let (read, write) = stream.into_split();
                start(read, write, addr, config, false, OpenError::Retry).await
            }
            Some(tls) => {
                let stream = tls.connect(stream, addr).await?;
                let (read, write) = tokio::io::split(stream);
                start(read, write, addr, config, true, |e| tls.sort(e, addr)).await
            }
        }
    };
    tokio::time::timeout(config.connect_timeout, attempt)
        .await
        .map_err(|_| timed_out())?
}

/// The handshake on an open stream's halves (`encrypted` if TLS), authentication if
/// the client has credentials, then the reader and writer tasks.
async fn start<R, W>(
    read: R,
    write: W,
    addr: &str,
    config: &ClientConfig,
    encrypted: bool,
    sort: impl Fn(std::io::Error) -> OpenError,
) -> Result<Conn, OpenError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer, negotiated) = handshake(read, write, addr, config, &sort).await?;
    // 1 was the handshake's; an Authenticate exchange takes the next ones.
    let mut next_id = 2;
    if let Some(credentials) = &config.credentials {
        next_id = super::authenticate::FIRST_ID_AFTER_AUTHENTICATION;
        let link = Link {
            addr,
            version: negotiated.version,
            encrypted,
        };
        authenticate(&mut reader, &mut writer, link, credentials, &sort).await?;
    }
    let shared = Arc::new(Shared {
        addr: addr.to_string(),
        state: Mutex::new(ConnState {
            open: true,
            next_id,
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
        max_frame_bytes: negotiated.max_frame_bytes,
        version: negotiated.version,
        _reader: AbortOnDrop(reader),
        _writer: AbortOnDrop(writer),
    })
}

#[cfg(test)]
mod tests {
    //! Opening against fake servers: a port nobody listens on, a listener that closes
    //! or resets every connection, and one that answers with another protocol.

    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const ATTEMPTS: u32 = 3;

    fn config() -> ClientConfig {
        ClientConfig::default()
            .reconnect_max_attempts(ATTEMPTS)
            .reconnect_backoff(Duration::from_millis(1), Duration::from_millis(2))
    }

    /// What a fake server does with each connection it accepts.
    #[derive(Clone, Copy)]
    enum Peer {
        /// Closes it at once (FIN).
        Close,
        /// Resets it once the client's hello has arrived (RST).
        Reset,
        /// Writes these bytes once the hello has arrived, then closes.
        Answer(&'static [u8]),
    }

    /// A listener doing `peer` to every connection; returns its address and how many
    /// connections it accepted.
    async fn fake_server(peer: Peer) -> (String, Arc<AtomicU32>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicU32::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut hello = [0u8; 8];
                match peer {
                    Peer::Close => drop(socket),
                    Peer::Reset => {
                        let _ = socket.read(&mut hello).await;
                        socket.set_zero_linger().unwrap();
                        drop(socket);
                    }
                    Peer::Answer(bytes) => {
                        let _ = socket.read(&mut hello).await;
                        let _ = socket.write_all(bytes).await;
                        let _ = socket.shutdown().await;
                    }
                }
            }
        });
        (addr, accepted)
    }

    async fn open_error(addr: &str) -> ClientError {
        match open_with_backoff(addr, &config(), None).await {
            Ok(_) => panic!("{addr}: connected to a fake server"),
            Err(error) => error,
        }
    }

    #[tokio::test]
    async fn a_malformed_address_fails_at_once() {
        for addr in ["localhost", "127.0.0.1:notaport", ":7171"] {
            let error = open_error(addr).await;
            assert!(
                matches!(error, ClientError::InvalidAddress { .. }),
                "{addr}: {error}"
            );
            assert!(!error.to_string().contains("running"), "{error}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_asks_whether_brokerd_runs_there() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let error = open_error(&addr).await;
        assert!(
            matches!(
                error,
                ClientError::Connect {
                    attempts: ATTEMPTS,
                    ..
                }
            ),
            "{error}"
        );
        let text = error.to_string();
        assert!(
            text.contains(&format!("is brokerd running at {addr}?")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn closed_and_reset_handshakes_are_retried_then_explained() {
        for peer in [Peer::Close, Peer::Reset] {
            let (addr, accepted) = fake_server(peer).await;
            let error = open_error(&addr).await;
            assert!(
                matches!(
                    error,
                    ClientError::Connect {
                        attempts: ATTEMPTS,
                        ..
                    }
                ),
                "{error}"
            );
            assert_eq!(accepted.load(Ordering::SeqCst), ATTEMPTS, "retried");
            let text = error.to_string();
            assert!(text.contains("closed them during the handshake"), "{text}");
            assert!(!text.contains("different versions"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_peer_speaking_another_protocol_is_not_a_brokerd() {
        for answer in [
            &b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"[..],
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"hi\n",
            // A length prefix too small to hold a frame header.
            &[1, 0, 0, 0, 0xff],
        ] {
            let (addr, accepted) = fake_server(Peer::Answer(answer)).await;
            let error = open_error(&addr).await;
            assert!(
                matches!(error, ClientError::NotABroker { .. }),
                "{:?}: {error}",
                answer.escape_ascii().to_string()
            );
            assert_eq!(accepted.load(Ordering::SeqCst), 1, "not retried");
            let text = error.to_string();
            assert!(text.contains(&format!("{addr} is not a brokerd")), "{text}");
            assert!(!text.contains("different versions"), "{text}");
        }
    }
}
