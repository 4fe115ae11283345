//! Opening a connection: attempts with backoff, each a TCP connect and a handshake.
//!
//! A connection is opened only when a caller needs one and none is open
//! (`Client::connection`: at connect, and on the first request after the last
//! connection closed), never in the background, and concurrent callers share one
//! attempt. Each attempt is bounded by `connect_timeout`. Its failures are sorted into
//! those worth retrying (refused, reset, timed out, broker at its connection limit)
//! and those that are not (the broker refused the handshake), so that a client the
//! broker will never accept fails at once instead of after every attempt. The delays
//! between attempts come from the pure [`Backoff`](crate::Backoff) schedule.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::conn::{read_loop, write_loop, AbortOnDrop, Conn};
use super::handshake::handshake;
use super::multiplex::{ConnState, Shared};
use super::ClientConfig;
use crate::error::ClientError;

/// Why one connection attempt failed.
pub(super) enum OpenError {
    /// Worth retrying: refused, reset, timed out, broker at its connection limit.
    Retry(std::io::Error),
    /// Not worth retrying: the broker refused the handshake.
    Fatal(ClientError),
}

pub(super) async fn open_with_backoff(
    addr: &str,
    config: &ClientConfig,
) -> Result<Conn, ClientError> {
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
    let (reader, writer, negotiated) = handshake.await.map_err(|_| timed_out())??;
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
        max_frame_bytes: negotiated.max_frame_bytes,
        version: negotiated.version,
        _reader: AbortOnDrop(reader),
        _writer: AbortOnDrop(writer),
    })
}
