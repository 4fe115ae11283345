//! From an accepted TCP socket to a served connection: the TLS handshake first when
//! the listener has TLS, bounded by the handshake timeout ([`handshake`], which the
//! Kafka listener shares), then [`serve`].
//!
//! A client that sends plaintext (our own Handshake frame, say) to a TLS listener is
//! refused by rustls, which reads a TLS record header and rejects anything that is
//! not one before allocating for its length (records are at most 16 KiB plus
//! overhead, checked before they are buffered); the connection is closed. The other
//! way round, a TLS ClientHello on a plaintext listener is a frame whose length
//! prefix is checked against [`super::MAX_HANDSHAKE_FRAME_BYTES`] before anything is
//! read for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

use super::refuse;
use super::transport::Peer;
use crate::broker::Broker;
use crate::shutdown::Shutdown;
use crate::stats::Closed;
use crate::tls::Tls;

/// Serves `socket`, accepted from `remote`: over TLS with `tls`'s current
/// configuration if there is one, else in plaintext.
pub async fn serve_socket(
    socket: TcpStream,
    remote: SocketAddr,
    tls: Option<Arc<Tls>>,
    broker: Arc<Broker>,
    mut shutdown: Shutdown,
) {
    let accepted_at = Instant::now();
    // Requests are small and latency-bound; the writer batches answers itself.
    let _ = socket.set_nodelay(true);
    let Some(tls) = tls else {
        return super::serve(socket, Peer::plain(remote, accepted_at), broker, shutdown).await;
    };
    let Some((stream, peer)) =
        handshake(socket, remote, accepted_at, &tls, &broker, &mut shutdown).await
    else {
        return;
    };
    super::serve(stream, peer, broker, shutdown).await
}

/// The server side of the TLS handshake on `socket`, accepted from `remote` at
/// `accepted_at`, within `limits.handshake_timeout_ms` of that: the TLS stream and
/// who is at its other end (the principal a verified client certificate names), or
/// `None` when the handshake failed, timed out (counted) or shutdown came first.
/// Every listener that speaks TLS (native, Kafka) shakes hands here.
pub async fn handshake(
    socket: TcpStream,
    remote: SocketAddr,
    accepted_at: Instant,
    tls: &Tls,
    broker: &Broker,
    shutdown: &mut Shutdown,
) -> Option<(TlsStream<TcpStream>, Peer)> {
    let timeout = Duration::from_millis(broker.config.limits.handshake_timeout_ms);
    let handshake = tokio::time::timeout_at(accepted_at + timeout, tls.acceptor().accept(socket));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%remote, %error, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                broker.stats.count_closed(Closed::HandshakeTimeout);
                tracing::debug!(%remote, "closing a connection that did not finish its TLS handshake in time");
                return None;
            }
        },
        _ = shutdown.recv() => return None,
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
    Some((stream, peer))
}

/// Turns `socket` away at the connection limit: over TLS when the listener has it
/// (so the client can read the refusal), within [`refuse::REFUSAL_LINGER`].
pub async fn refuse_socket(socket: TcpStream, tls: Option<Arc<Tls>>) {
    let Some(tls) = tls else {
        return refuse::refuse(socket).await;
    };
    let handshake = tokio::time::timeout(refuse::REFUSAL_LINGER, tls.acceptor().accept(socket));
    if let Ok(Ok(stream)) = handshake.await {
        refuse::refuse(stream).await;
    }
}
