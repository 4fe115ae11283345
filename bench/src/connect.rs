//! Connection set-up time (`broker-bench --connect-only N`): opens N connections to
//! brokerd one after the other, each doing TCP connect, the TLS handshake (with
//! `--tls-ca`), the protocol Handshake and, with `--scram-user`, a SCRAM-SHA-256
//! exchange, and times each from the connect to the end of the last step.
//!
//! It speaks protocol frames itself, with the client side of SCRAM from the `auth`
//! crate (as any client would), so that it measures the set-up alone: no client
//! library, no pool, no background task. Connections are opened in sequence, never
//! two at a time, so a figure is one connection's latency, not a queue's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use auth::scram::ClientExchange;
use bytes::{Bytes, BytesMut};
use protocol::ops::handshake::HandshakeRequest;
use protocol::ops::security::AuthenticateRequest;
use protocol::{
    EncodeError, FrameDecoder, FrameError, Message, Request, Response, HANDSHAKE_VERSION,
    SUPPORTED_VERSIONS,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Serialize;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::stats::{Latency, Percentiles};

/// Connections opened before the measured ones, left out of the figures (the first
/// pays for cold caches: the broker's and this process's).
pub const WARMUP_CONNECTIONS: u32 = 5;
/// Most connections one run opens.
pub const MAX_CONNECTIONS: u32 = 100_000;
/// Largest answer this benchmark reads (a Handshake or Authenticate answer is tiny).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What the TLS side of a connection uses.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA certificates (PEM) the broker's certificate must chain to.
    pub ca: PathBuf,
    /// A client certificate and its key (PEM), for a broker that asks for one.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The name the broker's certificate must be valid for.
    pub server_name: String,
}

/// A SCRAM user to log in as. `Debug` leaves the password out.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// One `--connect-only` run.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The broker's address.
    pub addr: String,
    /// TLS, or plaintext if `None`.
    pub tls: Option<TlsFiles>,
    /// SCRAM login, or none if `None`.
    pub scram: Option<Credentials>,
    /// Measured connections (after [`WARMUP_CONNECTIONS`]).
    pub connections: u32,
}

/// What a run measured: per-connection set-up time.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectReport {
    /// Whether the connections used TLS.
    pub tls: bool,
    /// Whether each ran a SCRAM-SHA-256 login.
    pub scram: bool,
    /// Set-up time percentiles, µs (connect to the last step's answer).
    pub setup_us: Option<Percentiles>,
}

impl ConnectReport {
    /// A short table, like the workload reports'.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "connection set-up (tls: {}, scram: {})\n",
            self.tls, self.scram
        );
        if let Some(p) = &self.setup_us {
            out.push_str(&format!(
                "  connections {}\n  p50 {} µs  p90 {} µs  p99 {} µs  max {} µs\n",
                p.samples, p.p50, p.p90, p.p99, p.max
            ));
        }
        out
    }
}

/// Why a run stopped. No variant carries the password or a SCRAM message.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// A socket step failed.
    #[error("{step}: {source}")]
    Io {
        /// The step.
        step: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A TLS file could not be read or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// A request could not be encoded.
    #[error("encoding a request: {0}")]
    Encode(#[from] EncodeError),
    /// The broker's bytes are not a frame.
    #[error("reading an answer: {0}")]
    Frame(#[from] FrameError),
    /// The broker refused a step.
    #[error("{step} refused: {message}")]
    Refused {
        /// The step.
        step: &'static str,
        /// The broker's message.
        message: String,
    },
    /// The broker answered something else than the step's answer.
    #[error("{step}: unexpected answer")]
    Unexpected {
        /// The step.
        step: &'static str,
    },
    /// The SCRAM exchange failed on this side (the server's proof did not verify).
    #[error("SCRAM: {0}")]
    Scram(#[from] auth::scram::ScramError),
    /// More connections than [`MAX_CONNECTIONS`].
    #[error("--connect-only takes at most {MAX_CONNECTIONS} connections")]
    TooMany,
}

fn io(step: &'static str) -> impl FnOnce(std::io::Error) -> ConnectError {
    move |source| ConnectError::Io { step, source }
}

/// Opens the connections and reports their set-up times.
pub async fn measure(options: &ConnectOptions) -> Result<ConnectReport, ConnectError> {
    if options.connections > MAX_CONNECTIONS {
        return Err(ConnectError::TooMany);
    }
    let tls = options.tls.as_ref().map(tls_connector).transpose()?;
    let mut latency = Latency::new();
    for i in 0..WARMUP_CONNECTIONS + options.connections {
        let started = Instant::now();
        open(options, tls.as_ref()).await?;
        if i >= WARMUP_CONNECTIONS {
            let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            latency.record(ns, 1);
        }
    }
    Ok(ConnectReport {
        tls: tls.is_some(),
        scram: options.scram.is_some(),
        setup_us: latency.percentiles(),
    })
}

/// A TLS connector and the server name, made once per run.
struct Tls {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

fn tls_connector(files: &TlsFiles) -> Result<Tls, ConnectError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| ConnectError::Tls(format!("{what}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&files.ca).map_err(|e| bad("--tls-ca", &e))? {
        let cert = cert.map_err(|e| bad("--tls-ca", &e))?;
        roots.add(cert).map_err(|e| bad("--tls-ca", &e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS versions", &e))?
        .with_root_certificates(roots);
    let config = match &files.identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| bad("--tls-cert", &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("--tls-cert", &e))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("--tls-key", &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("--tls-cert", &e))?
        }
    };
    let server_name = ServerName::try_from(files.server_name.clone())
        .map_err(|e| bad("--tls-server-name", &e))?;
    Ok(Tls {
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        server_name,
    })
}

/// One connection, set up and dropped.
async fn open(options: &ConnectOptions, tls: Option<&Tls>) -> Result<(), ConnectError> {
    let tcp = tokio::net::TcpStream::connect(&options.addr)
        .await
        .map_err(io("connect"))?;
    tcp.set_nodelay(true).map_err(io("TCP_NODELAY"))?;
    match tls {
        None => set_up(tcp, options.scram.as_ref()).await.map(drop),
        Some(tls) => {
            let stream = tls
                .connector
                .connect(tls.server_name.clone(), tcp)
                .await
                .map_err(io("TLS handshake"))?;
            set_up(stream, options.scram.as_ref()).await.map(drop)
        }
    }
}

/// Opens `count` plaintext connections to `addr`, each through its Handshake, and
/// returns them open and silent (`broker-bench --idle-connections`): the idle load
/// a broker carries for services that connect and wait. brokerd closes a connection
/// idle for `limits.idle_timeout_ms` (10 minutes by default), so a run must be
/// shorter than that.
pub async fn hold_idle(addr: &str, count: u32) -> Result<Vec<tokio::net::TcpStream>, ConnectError> {
    if count > MAX_CONNECTIONS {
        return Err(ConnectError::TooMany);
    }
    let mut held = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(io("connect"))?;
        held.push(set_up(tcp, None).await?);
    }
    Ok(held)
}

/// The protocol Handshake, then the SCRAM exchange if asked for; the stream, set up.
async fn set_up<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    scram: Option<&Credentials>,
) -> Result<S, ConnectError> {
    let mut frames = Frames {
        stream,
        buf: BytesMut::new(),
        version: HANDSHAKE_VERSION,
        next_id: 1,
    };
    let hello = Request::Handshake(HandshakeRequest {
        versions: SUPPORTED_VERSIONS.to_vec(),
        client_name: "broker-bench".into(),
        auth: None,
    });
    match frames.call(hello, "Handshake").await? {
        Response::Handshake(answer) => frames.version = answer.version,
        _ => return Err(ConnectError::Unexpected { step: "Handshake" }),
    }
    let Some(credentials) = scram else {
        return Ok(frames.stream);
    };
    let (client, first) = ClientExchange::new(
        &credentials.user,
        &credentials.password,
        &mut rand::thread_rng(),
    )?;
    let server_first = authenticate(&mut frames, first, "SCRAM client-first").await?;
    let (client, last) = client.respond(&server_first)?;
    let server_final = authenticate(&mut frames, last, "SCRAM client-final").await?;
    client.verify(&server_final)?;
    Ok(frames.stream)
}

async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    frames: &mut Frames<S>,
    payload: Vec<u8>,
    step: &'static str,
) -> Result<Bytes, ConnectError> {
    let request = Request::Authenticate(AuthenticateRequest {
        mechanism: auth::scram::MECHANISM.into(),
        payload: Bytes::from(payload),
    });
    match frames.call(request, step).await? {
        Response::Authenticate(answer) => Ok(answer.payload),
        _ => Err(ConnectError::Unexpected { step }),
    }
}

/// Request and answer frames over one stream.
struct Frames<S> {
    stream: S,
    buf: BytesMut,
    version: u16,
    next_id: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Frames<S> {
    async fn call(
        &mut self,
        request: Request,
        step: &'static str,
    ) -> Result<Response, ConnectError> {
        let mut out = BytesMut::new();
        Message::Request {
            correlation_id: self.next_id,
            request,
        }
        .encode(self.version, &mut out)?;
        self.next_id = self.next_id.wrapping_add(1);
        self.stream.write_all(&out).await.map_err(io(step))?;
        let decoder = FrameDecoder::with_max_frame_bytes(MAX_ANSWER_BYTES);
        loop {
            if let Some(frame) = decoder.decode(&mut self.buf)? {
                return match Message::decode(frame)? {
                    Message::Response { response, .. } => Ok(response),
                    Message::Error { error, .. } => Err(ConnectError::Refused {
                        step,
                        message: error.message,
                    }),
                    _ => Err(ConnectError::Unexpected { step }),
                };
            }
            let read = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(io(step))?;
            if read == 0 {
                return Err(ConnectError::Io {
                    step,
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                });
            }
        }
    }
}
