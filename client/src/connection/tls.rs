//! TLS to the broker: [`TlsConfig`] (which CA to trust, the client's own certificate,
//! the server name), turned once per [`Client`](crate::Client) into a [`Connector`]
//! that wraps each new TCP connection.
//!
//! Failures are sorted like every other connect failure (`OpenError`): a broker whose
//! certificate is not trusted, has expired or names another host, a broker that
//! refuses this client's certificate, and a peer that does not speak TLS fail at
//! once as [`ClientError::Tls`] with what to do, instead of being retried; a reset or
//! a refused connect is retried as before. Files that cannot be read are
//! [`ClientError::TlsFile`], before any connection is tried.
//!
//! Must never: hand-roll any part of TLS (rustls does it, on the ring provider), or
//! put the bytes of a key into an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, RootCertStore};
use rustls_pki_types::pem::{self, PemObject};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::open::OpenError;
use crate::error::ClientError;

/// How a client speaks TLS to the broker.
///
/// ```
/// use client::{ClientConfig, TlsConfig};
///
/// let tls = TlsConfig::new("ca.pem")
///     .client_certificate("me.pem", "me-key.pem")
///     .server_name("broker.internal");
/// let config = ClientConfig::default().tls(tls);
/// assert!(config.tls.is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The CA certificates (PEM) the broker's certificate must chain to.
    pub ca_file: PathBuf,
    /// The client's certificate chain (PEM), for brokers that ask for one (mutual TLS).
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// The name the broker's certificate must be valid for; unset: the host part of
    /// the broker address.
    pub server_name: Option<String>,
}

/// Environment variable naming [`TlsConfig::ca_file`].
pub const ENV_TLS_CA: &str = "BROKER_TLS_CA";

/// Encrypted bytes a connection may hold for the socket before a write waits. rustls
/// holds 64 KiB by default, so a 1 MiB produce went out in sixteen `writev` calls of
/// four TLS records each; with room for a whole batch it goes out in one or two
/// (rustls writes up to 64 records a call). Measured: TLS produce of 1 MiB batches
/// 5-10 % faster on 2 cores (`docs/benchmarks.md`, "TLS and SCRAM").
pub const TLS_SEND_BUFFER_BYTES: usize = 1 << 20;

/// ring's cipher suites, AES-128-GCM first. rustls lists AES-256-GCM first; both are
/// safe (AES-128-GCM is TLS 1.3's mandatory suite, and what Go's TLS prefers with AES
/// hardware), and 10 rounds instead of 14 make bulk encryption cheaper: TLS produce 5 %
/// faster here. ChaCha20-Poly1305 keeps its place, for brokers that prefer it.
fn provider() -> rustls::crypto::CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    // A stable sort: the other suites keep rustls's order.
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    provider
}
/// Environment variable naming [`TlsConfig::cert_file`].
pub const ENV_TLS_CERT: &str = "BROKER_TLS_CERT";
/// Environment variable naming [`TlsConfig::key_file`].
pub const ENV_TLS_KEY: &str = "BROKER_TLS_KEY";
/// Environment variable naming [`TlsConfig::server_name`].
pub const ENV_TLS_SERVER_NAME: &str = "BROKER_TLS_SERVER_NAME";

impl TlsConfig {
    /// TLS trusting the CAs in `ca_file`, without a client certificate.
    pub fn new(ca_file: impl Into<PathBuf>) -> TlsConfig {
        TlsConfig {
            ca_file: ca_file.into(),
            cert_file: None,
            key_file: None,
            server_name: None,
        }
    }

    /// Presents the certificate in `cert_file`, with its key in `key_file`.
    pub fn client_certificate(
        mut self,
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> TlsConfig {
        self.cert_file = Some(cert_file.into());
        self.key_file = Some(key_file.into());
        self
    }

    /// Checks the broker's certificate against `name` instead of the address's host.
    pub fn server_name(mut self, name: impl Into<String>) -> TlsConfig {
        self.server_name = Some(name.into());
        self
    }

    /// From [`ENV_TLS_CA`], [`ENV_TLS_CERT`], [`ENV_TLS_KEY`] and
    /// [`ENV_TLS_SERVER_NAME`]: `None` (plaintext) unless `BROKER_TLS_CA` is set.
    pub fn from_env() -> Option<TlsConfig> {
        TlsConfig::from_vars(|name| std::env::var_os(name).filter(|v| !v.is_empty()))
    }

    /// [`from_env`](Self::from_env) with the variables read by `var` (pure, for tests).
    fn from_vars(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<TlsConfig> {
        Some(TlsConfig {
            ca_file: var(ENV_TLS_CA)?.into(),
            cert_file: var(ENV_TLS_CERT).map(PathBuf::from),
            key_file: var(ENV_TLS_KEY).map(PathBuf::from),
            server_name: var(ENV_TLS_SERVER_NAME).and_then(|v| v.into_string().ok()),
        })
    }
}

/// A [`TlsConfig`] made ready: files read, the server name settled.
#[derive(Clone)]
pub(crate) struct Connector {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    /// For messages: the CA file trusted.
    ca_file: PathBuf,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("server_name", &self.server_name)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Reads `config`'s files; the server name defaults to `addr`'s host.
    pub(crate) fn new(config: &TlsConfig, addr: &str) -> Result<Connector, ClientError> {
        let provider = Arc::new(provider());
        let mut roots = RootCertStore::empty();
        for certificate in certificates("ca", &config.ca_file)? {
            roots
                .add(certificate)
                .map_err(|e| file_error("ca", &config.ca_file, e.to_string()))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| file_error("ca", &config.ca_file, e.to_string()))?
            .with_root_certificates(roots);
        let tls = match (&config.cert_file, &config.key_file) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = certificates("cert", cert)?;
                let key_der = private_key(key)?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    file_error(
                        "key",
                        key,
                        format!(
                            "it cannot be used with the certificate {} ({e}); is it that \
                             certificate's key, and the certificate X.509 v3?",
                            cert.display()
                        ),
                    )
                })?
            }
            (Some(cert), None) => {
                return Err(file_error("cert", cert, "it needs its key file too".into()))
            }
            (None, Some(key)) => {
                return Err(file_error(
                    "key",
                    key,
                    "it needs its certificate file too".into(),
                ))
            }
        };
        let name = match &config.server_name {
            Some(name) => name.clone(),
            None => host_of(addr).to_string(),
        };
        let server_name = ServerName::try_from(name.clone()).map_err(|_| ClientError::Tls {
            addr: addr.to_string(),
            reason: format!(
                "{name:?} is not a host name or IP address to check the broker's \
                 certificate against; set one with --tls-server-name or BROKER_TLS_SERVER_NAME"
            ),
        })?;
        Ok(Connector {
            connector: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            server_name,
            ca_file: config.ca_file.clone(),
        })
    }

    /// The TLS handshake over `tcp`, to the broker at `addr`.
    pub(super) async fn connect(
        &self,
        tcp: TcpStream,
        addr: &str,
    ) -> Result<TlsStream<TcpStream>, OpenError> {
        let mut stream = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| self.sort(e, addr))?;
        stream
            .get_mut()
            .1
            .set_buffer_limit(Some(TLS_SEND_BUFFER_BYTES));
        Ok(stream)
    }

    /// Sorts an I/O error of a TLS connection (during the TLS handshake, or when the
    /// broker rejects this client's certificate, which TLS 1.3 reports only on the
    /// first read): TLS failures are fatal, anything else is retried.
    pub(super) fn sort(&self, error: std::io::Error, addr: &str) -> OpenError {
        let Some(tls) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        else {
            return OpenError::Retry(error);
        };
        OpenError::Fatal(ClientError::Tls {
            addr: addr.to_string(),
            reason: explain(tls, &self.server_name, &self.ca_file),
        })
    }
}

/// What a rustls error means to the person running the client.
fn explain(error: &rustls::Error, server_name: &ServerName<'_>, ca_file: &Path) -> String {
    use rustls::Error as E;
    let name = server_name.to_str();
    match error {
        E::InvalidCertificate(CertificateError::Expired)
        | E::InvalidCertificate(CertificateError::ExpiredContext { .. }) => {
            "the broker's certificate has expired; the broker needs a new one".to_string()
        }
        E::InvalidCertificate(CertificateError::NotValidForName)
        | E::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => format!(
            "the broker's certificate is not valid for {name:?}; connect by the name it was \
             issued for, or set that name with --tls-server-name or BROKER_TLS_SERVER_NAME"
        ),
        E::InvalidCertificate(reason) => format!(
            "the broker's certificate is not trusted ({reason:?}); is {} the CA that issued it? \
             (set it with --tls-ca or BROKER_TLS_CA)",
            ca_file.display()
        ),
        E::AlertReceived(AlertDescription::CertificateRequired) => {
            "the broker requires a client certificate; give one with --tls-cert and --tls-key \
             (BROKER_TLS_CERT, BROKER_TLS_KEY)"
                .to_string()
        }
        E::AlertReceived(
            alert @ (AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::AccessDenied),
        ) => format!(
            "the broker refused this client's certificate ({alert:?}): it must be current and \
             issued by the CA the broker trusts for clients"
        ),
        E::AlertReceived(AlertDescription::ProtocolVersion) => {
            "the broker and this client have no TLS version in common".to_string()
        }
        E::InvalidMessage(_) => {
            "the broker did not answer in TLS: does it listen in plaintext? (then connect \
             without --tls-ca / BROKER_TLS_CA)"
                .to_string()
        }
        other => other.to_string(),
    }
}

/// Whether `bytes`, received where a frame was expected, start like a TLS record (an
/// alert or a handshake, version 3.x): a TLS broker answering a plaintext client.
pub(super) fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x15 | 0x16, 0x03, 0x00..=0x04, ..])
}

/// The host part of a `host:port` address, without an IPv6 literal's brackets.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn file_error(setting: &'static str, path: &Path, reason: String) -> ClientError {
    ClientError::TlsFile {
        setting,
        path: path.display().to_string(),
        reason,
    }
}

/// Every certificate in the PEM file at `path`; at least one.
fn certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(setting, path, describe(e)))?;
    if chain.is_empty() {
        return Err(file_error(
            setting,
            path,
            "it holds no certificate (a -----BEGIN CERTIFICATE----- section)".into(),
        ));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, ClientError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        let reason = match e {
            pem::Error::NoItemsFound => {
                "it holds no private key (a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section)"
                    .to_string()
            }
            e => describe(e),
        };
        file_error("key", path, reason)
    })
}

/// A PEM error by its kind only: some kinds carry a line of the file, which for a key
/// file is secret.
fn describe(error: pem::Error) -> String {
    match error {
        pem::Error::Io(e) => e.to_string(),
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".to_string(),
        pem::Error::IllegalSectionStart { .. } => {
            "a line starting with -----BEGIN is not a valid PEM section start".to_string()
        }
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".to_string(),
        pem::Error::NoItemsFound => "it holds no PEM section".to_string(),
        _ => "it is not a valid PEM file".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn aes_128_gcm_is_offered_first_and_every_ring_suite_still_offered() {
        let ours: Vec<_> = provider().cipher_suites.iter().map(|s| s.suite()).collect();
        let ring: Vec<_> = rustls::crypto::ring::default_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        assert_eq!(ours[0], rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
        assert_eq!(ours.len(), ring.len());
        assert!(ring.iter().all(|s| ours.contains(s)));
    }

    use super::*;

    #[test]
    fn the_server_name_defaults_to_the_host() {
        assert_eq!(host_of("broker.example.com:7171"), "broker.example.com");
        assert_eq!(host_of("127.0.0.1:7171"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7171"), "::1");
    }

    #[test]
    fn the_environment_turns_tls_on_only_with_a_ca() {
        let vars = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert_eq!(TlsConfig::from_vars(vars(&[(ENV_TLS_CERT, "c.pem")])), None);
        let all = TlsConfig::from_vars(vars(&[
            (ENV_TLS_CA, "ca.pem"),
            (ENV_TLS_CERT, "c.pem"),
            (ENV_TLS_KEY, "k.pem"),
            (ENV_TLS_SERVER_NAME, "b.internal"),
        ]));
        assert_eq!(
            all,
            Some(
                TlsConfig::new("ca.pem")
                    .client_certificate("c.pem", "k.pem")
                    .server_name("b.internal")
            )
        );
    }

    #[test]
    fn tls_records_are_told_from_frames() {
        assert!(looks_like_tls(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]));
        assert!(looks_like_tls(&[0x16, 0x03, 0x01, 0x00]));
        assert!(!looks_like_tls(&[0x00, 0x00, 0x00, 0x20]));
        assert!(!looks_like_tls(b"HTTP/1.1 400"));
    }

    #[test]
    fn unreadable_files_are_named_and_not_retried() {
        let dir = std::env::temp_dir().join("client-tls-missing-dir");
        let missing = TlsConfig::new(dir.join("ca.pem"));
        let error = Connector::new(&missing, "127.0.0.1:1").unwrap_err();
        assert!(
            matches!(error, ClientError::TlsFile { setting: "ca", .. }),
            "{error}"
        );
        let text = error.to_string();
        assert!(
            text.contains("ca.pem") && text.contains("--tls-ca"),
            "{text}"
        );
        assert!(text.contains("BROKER_TLS_CA"), "{text}");
        assert!(!error.is_connection_error());
    }
}
