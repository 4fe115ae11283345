//! The Kafka-protocol listener (`docs/kafka.md`): Kafka clients and tools (kcat,
//! librdkafka, the Java client) on brokerd's own topics, partitions and offsets.
//!
//! It is one more caller of the request layer, like the HTTP gateway: each Kafka
//! request becomes the native typed requests it means, served by
//! [`crate::handlers::serve`] (the one authorization check, then the dispatch table)
//! with a [`crate::handlers::Context`] per connection ([`session`]), so topics,
//! offsets, durability and ACLs are the same on every port. Every Kafka request and
//! response is decoded and encoded by the `kafka-protocol` crate; nothing here
//! hand-writes a Kafka codec.
//!
//! The parts: [`frame`] (pure: the size-prefixed frame, capped before allocation),
//! [`request`] (a frame as the crate's request), [`apis`] (the supported-API table),
//! [`dispatch`] (request to handler, response to frame), [`connection`] (the loop of
//! one connection), [`buffers`] (the reused buffers produced records are converted
//! into), [`records`] (pure: Kafka RecordBatch v2 to brokerd batches and
//! back), [`decompress`] (pure: compressed batches inflated within a bound), [`error`] (brokerd's errors as Kafka codes), and one module per API:
//! [`metadata`], [`topics`], [`produce`], [`fetch`], [`list_offsets`], [`groups`]
//! and [`offsets`] (consumer groups, on the coordinator in [`group`]), [`sasl`].
//!
//! Must never: decode or encode Kafka bytes by hand, allocate for a frame before its
//! size is checked, append from a batch whose CRC32C failed, or drop a connection
//! over an API it does not serve.

pub mod apis;
pub mod buffers;
pub mod configs;
pub mod connection;
pub mod decompress;
pub mod dispatch;
pub mod error;
pub mod fetch;
pub mod frame;
pub mod group;
pub mod groups;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod offsets;
pub mod partitions;
pub mod produce;
pub mod records;
pub mod request;
pub mod sasl;
pub mod session;
pub mod topics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::connection::{accept, Peer};
use crate::shutdown::Shutdown;
use crate::tls::Tls;
use buffers::BatchBuffers;
use session::Advertised;

/// Kafka connections served at once; more are closed as soon as they are accepted.
pub const MAX_KAFKA_CONNECTIONS: usize = 1024;
/// How long shutdown lets Kafka connections finish the request they are serving.
pub const KAFKA_SHUTDOWN_GRACE: Duration = crate::SHUTDOWN_GRACE;

/// The Kafka listener's bound socket, the address Metadata advertises, and its TLS
/// configuration when `[tls]` is set (the native listener's certificate; Kafka
/// clients then connect with `security.protocol` `SSL` or `SASL_SSL`).
#[derive(Debug)]
pub struct KafkaListener {
    tcp: TcpListener,
    advertised: Advertised,
    tls: Option<Arc<Tls>>,
}

impl KafkaListener {
    /// Binds `address`; Metadata advertises `advertised` (`host:port`), or the bound
    /// address (port 0 resolved) without one. With `tls`, connections are TLS only.
    pub async fn bind(
        address: SocketAddr,
        advertised: Option<&str>,
        tls: Option<Arc<Tls>>,
    ) -> std::io::Result<KafkaListener> {
        let tcp = TcpListener::bind(address).await?;
        let advertised = match advertised {
            Some(text) => parse_advertised(text)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
            None => Advertised::from(tcp.local_addr()?),
        };
        Ok(KafkaListener {
            tcp,
            advertised,
            tls,
        })
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Parses `kafka.advertised`: `host:port`, the host a name or an address (IPv6 in
/// brackets).
pub fn parse_advertised(text: &str) -> Result<Advertised, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{text:?}: the port is not a number from 0 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    Ok(Advertised {
        host: host.to_owned(),
        port,
    })
}

/// Serves Kafka connections until `shutdown`, then stops accepting and gives open
/// connections [`KAFKA_SHUTDOWN_GRACE`] to finish.
pub async fn serve(listener: KafkaListener, broker: Arc<Broker>, mut shutdown: Shutdown) {
    let KafkaListener {
        tcp,
        advertised,
        tls,
    } = listener;
    let allowed = Arc::new(Semaphore::new(MAX_KAFKA_CONNECTIONS));
    let buffers = Arc::new(BatchBuffers::new());
    let mut connections = JoinSet::new();
    let expiry = tokio::spawn(group::run_expiry(
        broker.kafka_groups.clone(),
        shutdown.clone(),
    ));
    loop {
        let accepted = tokio::select! {
            accepted = tcp.accept() => accepted,
            _ = shutdown.recv() => break,
        };
        let (socket, remote) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "Kafka accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let Ok(permit) = allowed.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "refusing a Kafka connection: too many open");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let broker = broker.clone();
        let advertised = advertised.clone();
        let buffers = buffers.clone();
        let mut shutdown = shutdown.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let accepted_at = Instant::now();
            match tls {
                None => {
                    let peer = Peer::plain(remote, accepted_at);
                    connection::serve(socket, peer, broker, advertised, buffers, shutdown).await;
                }
                Some(tls) => {
                    let shaken = accept::handshake(
                        socket,
                        remote,
                        accepted_at,
                        &tls,
                        &broker,
                        &mut shutdown,
                    )
                    .await;
                    if let Some((stream, peer)) = shaken {
                        connection::serve(stream, peer, broker, advertised, buffers, shutdown)
                            .await;
                    }
                }
            }
            drop(permit);
        });
    }
    drop(tcp);
    let drained = tokio::time::timeout(KAFKA_SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "Kafka connections still busy after {KAFKA_SHUTDOWN_GRACE:?}; closing anyway"
        );
        connections.abort_all();
    }
    expiry.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_addresses_are_host_and_port() {
        let parsed = parse_advertised("broker.example:9092").unwrap();
        assert_eq!(
            (parsed.host.as_str(), parsed.port),
            ("broker.example", 9092)
        );
        let parsed = parse_advertised("[::1]:19092").unwrap();
        assert_eq!((parsed.host.as_str(), parsed.port), ("::1", 19092));
        for bad in ["broker", ":9092", "broker:x", "broker:70000"] {
            assert!(parse_advertised(bad).is_err(), "{bad}");
        }
    }
}
