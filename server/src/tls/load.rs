//! Reading `[tls]`'s PEM files into a `rustls::ServerConfig`.
//!
//! Every failure is a [`TlsError`] naming the setting and the file, and saying what
//! is wrong in words of our own: PEM errors are described by kind, never quoted, so
//! that no line of a key file reaches a log or the terminal.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{TlsConfig, TlsVersion};

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read as PEM.
    #[error("tls.{setting}: cannot read {path}: {reason}")]
    Read {
        /// The setting naming the file (`cert`, `key`, `client_ca`).
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong, in words (never the file's content).
        reason: String,
    },
    /// A file holds nothing of what it should.
    #[error("tls.{setting}: {path} holds no {what}")]
    Empty {
        /// The setting naming the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What was looked for.
        what: &'static str,
    },
    /// rustls refused what a file holds (a certificate that does not parse, a key
    /// that does not match the certificate, an unsupported key type).
    #[error("tls.{setting}: {path}: {reason}")]
    Invalid {
        /// The setting naming the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// rustls's reason.
        reason: String,
    },
}

/// The crypto provider every TLS configuration of the broker uses: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS versions a listener with oldest version `min` accepts.
pub fn versions(min: TlsVersion) -> &'static [&'static SupportedProtocolVersion] {
    static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    static TLS12_AND_13: [&SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    match min {
        TlsVersion::Tls13 => &TLS13_ONLY,
        TlsVersion::Tls12 => &TLS12_AND_13,
    }
}

/// Builds the server configuration from the files `settings` names.
pub fn server_config(settings: &TlsConfig) -> Result<ServerConfig, TlsError> {
    let chain = certificates("cert", &settings.cert)?;
    let key = private_key(&settings.key)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(settings.min_version))
        .map_err(|e| TlsError::Invalid {
            setting: "min_version",
            path: PathBuf::new(),
            reason: e.to_string(),
        })?;
    let builder = match &settings.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates("client_ca", path)? {
                roots
                    .add(certificate)
                    .map_err(|e| invalid("client_ca", path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if settings.requires_client_certificate() {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| invalid("client_ca", path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    // rustls checks here that the key is the certificate's.
    builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid {
            setting: "key",
            path: settings.key.clone(),
            reason: format!(
                "it cannot be used with tls.cert {} ({e}); is it that certificate's key, \
                 and the certificate X.509 v3?",
                settings.cert.display()
            ),
        })
}

/// Every certificate in the PEM file at `path`; at least one.
pub fn certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |e| read_error(setting, path, e);
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(setting, path, e))?;
    if chain.is_empty() {
        return Err(TlsError::Empty {
            setting,
            path: path.to_path_buf(),
            what: "certificate (a -----BEGIN CERTIFICATE----- section)",
        });
    }
    Ok(chain)
}

/// The first private key in the PEM file at `path`.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::Empty {
            setting: "key",
            path: path.to_path_buf(),
            what: "private key (a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section)",
        },
        e => read_error("key", path, e),
    })
}

fn invalid(setting: &'static str, path: &Path, error: impl std::fmt::Display) -> TlsError {
    TlsError::Invalid {
        setting,
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// A PEM error, described by its kind only: some kinds carry a line of the file.
fn read_error(setting: &'static str, path: &Path, error: pem::Error) -> TlsError {
    let reason = match error {
        pem::Error::Io(e) => e.to_string(),
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".to_string(),
        pem::Error::IllegalSectionStart { .. } => {
            "a line starting with -----BEGIN is not a valid PEM section start".to_string()
        }
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".to_string(),
        pem::Error::NoItemsFound => "it holds no PEM section".to_string(),
        _ => "it is not a valid PEM file".to_string(),
    };
    TlsError::Read {
        setting,
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PrincipalFrom;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Files {
            let dir = tempfile::tempdir().unwrap();
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
            std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
            Files { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn settings(&self) -> TlsConfig {
            TlsConfig {
                cert: self.path("cert.pem"),
                key: self.path("key.pem"),
                client_ca: None,
                require_client_certificate: None,
                min_version: TlsVersion::Tls13,
                principal_from: PrincipalFrom::Cn,
            }
        }
    }

    #[test]
    fn good_files_make_a_configuration_with_and_without_a_client_ca() {
        let files = Files::new();
        server_config(&files.settings()).unwrap();
        let mutual = TlsConfig {
            client_ca: Some(files.path("cert.pem")),
            min_version: TlsVersion::Tls12,
            ..files.settings()
        };
        server_config(&mutual).unwrap();
    }

    #[test]
    fn every_bad_file_is_named_and_no_key_material_is_printed() {
        let files = Files::new();
        let key_pem = std::fs::read_to_string(files.path("key.pem")).unwrap();
        let key_body = key_pem.lines().nth(1).unwrap().to_string();
        // A key file whose END line is missing: the error must not quote it.
        let torn: String = key_pem.lines().take(2).collect::<Vec<_>>().join("\n");
        std::fs::write(files.path("torn-key.pem"), torn).unwrap();
        std::fs::write(files.path("empty.pem"), "").unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(files.path("other-key.pem"), other.serialize_pem()).unwrap();
        let cases = [
            (
                TlsConfig {
                    cert: files.path("missing.pem"),
                    ..files.settings()
                },
                "tls.cert",
                "missing.pem",
            ),
            (
                TlsConfig {
                    cert: files.path("empty.pem"),
                    ..files.settings()
                },
                "tls.cert",
                "holds no certificate",
            ),
            (
                TlsConfig {
                    cert: files.path("key.pem"),
                    ..files.settings()
                },
                "tls.cert",
                "holds no certificate",
            ),
            (
                TlsConfig {
                    key: files.path("cert.pem"),
                    ..files.settings()
                },
                "tls.key",
                "holds no private key",
            ),
            (
                TlsConfig {
                    key: files.path("torn-key.pem"),
                    ..files.settings()
                },
                "tls.key",
                "no END line",
            ),
            (
                TlsConfig {
                    key: files.path("other-key.pem"),
                    ..files.settings()
                },
                "tls.key",
                "is it that certificate's key",
            ),
            (
                TlsConfig {
                    client_ca: Some(files.path("empty.pem")),
                    ..files.settings()
                },
                "tls.client_ca",
                "holds no certificate",
            ),
        ];
        for (settings, setting, says) in cases {
            let error = server_config(&settings).unwrap_err().to_string();
            assert!(error.starts_with(setting), "{error}");
            assert!(error.contains(says), "{says}: {error}");
            assert!(!error.contains(&key_body), "key material in {error}");
        }
    }
}
