//! What a native connection runs on: a byte stream that splits into a read half and a
//! write half (plain TCP, or TLS over TCP), and who is at its other end ([`Peer`]).
//!
//! The connection code is generic over [`Transport`], so each kind of stream gets its
//! own monomorphised copy: plain TCP keeps `TcpStream::into_split` (two owned halves,
//! no lock between them, no cost added by TLS existing), and TLS uses
//! `tokio::io::split` (one TLS session state, which both halves must reach).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

/// A stream a connection can be served on.
pub trait Transport: Send + 'static {
    /// The half the connection task reads from.
    type Read: AsyncRead + Unpin + Send + 'static;
    /// The half the writer task writes to.
    type Write: AsyncWrite + Unpin + Send + 'static;

    /// Splits the stream into its two halves.
    fn split(self) -> (Self::Read, Self::Write);
}

impl Transport for TcpStream {
    type Read = OwnedReadHalf;
    type Write = OwnedWriteHalf;

    fn split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }
}

impl Transport for TlsStream<TcpStream> {
    type Read = ReadHalf<TlsStream<TcpStream>>;
    type Write = WriteHalf<TlsStream<TcpStream>>;

    fn split(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}

/// Who is at the other end of a connection, as far as the transport can tell.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address.
    pub remote: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The principal the client's verified TLS certificate names (`[tls]
    /// principal_from`); `None` without TLS, without a client certificate, or when
    /// the certificate has no such name.
    pub certificate_principal: Option<Arc<str>>,
    /// When the TCP connection was accepted: the handshake timeout counts from here,
    /// TLS handshake included.
    pub accepted_at: Instant,
}

impl Peer {
    /// A plaintext connection from `remote`, accepted at `accepted_at`.
    pub fn plain(remote: SocketAddr, accepted_at: Instant) -> Peer {
        Peer {
            remote,
            tls: false,
            certificate_principal: None,
            accepted_at,
        }
    }
}
