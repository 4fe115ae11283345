//! The test's own TLS client (tokio-rustls), for what the client library cannot be
//! made to do: offer only TLS 1.2, read the server's certificate, send raw frames.

use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use protocol::ops::handshake::HandshakeRequest;
use protocol::{FrameDecoder, Message, Request, Response, HANDSHAKE_VERSION};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use super::DEADLINE;

/// A TLS client configuration trusting `ca`, offering `versions`, presenting
/// `identity` (certificate and key files) if given.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    Arc::new(config)
}

pub const BOTH_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Our Handshake frame, encoded.
pub fn hello_bytes() -> BytesMut {
    let mut buf = BytesMut::new();
    Message::Request {
        correlation_id: 1,
        request: Request::Handshake(HandshakeRequest {
            versions: protocol::SUPPORTED_VERSIONS.to_vec(),
            client_name: "tls-test".into(),
            auth: None,
        }),
    }
    .encode(HANDSHAKE_VERSION, &mut buf)
    .unwrap();
    buf
}

/// A raw protocol connection over the test's own TLS client.
pub struct TlsRaw {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    buf: BytesMut,
    /// The version the handshake chose.
    pub version: u16,
    next_id: u32,
}

impl TlsRaw {
    /// Connects over TLS with `config` and handshakes. `Err` says why TLS or the
    /// handshake failed.
    pub async fn connect(addr: &str, config: Arc<rustls::ClientConfig>) -> Result<TlsRaw, String> {
        let open = async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let name = ServerName::try_from("localhost").unwrap();
            let stream = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            let mut raw = TlsRaw {
                stream,
                buf: BytesMut::new(),
                version: HANDSHAKE_VERSION,
                next_id: 1,
            };
            raw.stream
                .write_all(&hello_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            raw.next_id = 2;
            match raw.receive().await? {
                Message::Response {
                    response: Response::Handshake(answer),
                    ..
                } => raw.version = answer.version,
                other => return Err(format!("answered {other:?}")),
            }
            Ok(raw)
        };
        tokio::time::timeout(DEADLINE, open)
            .await
            .unwrap_or_else(|_| Err("no answer within the deadline".to_string()))
    }

    /// The server's certificate chain.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.stream
            .get_ref()
            .1
            .peer_certificates()
            .unwrap_or_default()
            .to_vec()
    }

    /// Sends `request` and reads the answer.
    pub async fn call(&mut self, request: Request) -> Result<Message, String> {
        let mut out = BytesMut::new();
        Message::Request {
            correlation_id: self.next_id,
            request,
        }
        .encode(self.version, &mut out)
        .unwrap();
        self.next_id += 1;
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| format!("write: {e}"))?;
        tokio::time::timeout(DEADLINE, self.receive())
            .await
            .unwrap_or_else(|_| Err("no answer within the deadline".to_string()))
    }

    /// Whether the server closes the connection within [`DEADLINE`] without sending
    /// another frame (a TLS-level error on the way counts as the close).
    pub async fn closed(&mut self) -> bool {
        matches!(
            tokio::time::timeout(DEADLINE, self.receive()).await,
            Ok(Err(_))
        )
    }

    /// Reads the next frame.
    pub async fn receive(&mut self) -> Result<Message, String> {
        loop {
            if let Some(frame) = FrameDecoder::new().decode(&mut self.buf).unwrap() {
                return Ok(Message::decode(frame).unwrap());
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Err("closed".to_string()),
                Ok(_) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }
}

/// Connects over TLS with `config` and handshakes; returns the server's certificate
/// chain.
pub async fn tls_hello(
    addr: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    Ok(TlsRaw::connect(addr, config).await?.chain())
}
