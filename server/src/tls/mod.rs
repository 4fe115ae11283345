//! TLS on the native listener: the current rustls configuration, built from the PEM
//! files of `[tls]`, and rebuilt from them on SIGHUP.
//!
//! [`Tls`] holds the `Arc<rustls::ServerConfig>` new handshakes use behind a short
//! lock. A reload builds a whole new configuration from the files first and swaps it
//! in only if that succeeded, so a half-written certificate never reaches a client:
//! the old one stays and the error is reported. Connections already open keep the
//! configuration they were accepted with (rustls holds its own `Arc`).
//!
//! The HTTP gateway uses the same certificate, key and client CA: [`Tls::http_acceptor`]
//! hands out the same configuration with ALPN offering `h2` and `http/1.1`, built and
//! swapped together with the native one, so one SIGHUP reloads both listeners.
//!
//! The parts: [`load`] reads the files into a `rustls::ServerConfig` (every failure
//! names its file, and never prints key material); [`principal`] reads the principal
//! a verified client certificate names (pure).
//!
//! Must never: hand-roll any part of TLS (rustls does it all, on the ring provider),
//! log or return the bytes of a key, or hold its lock across `.await`.

pub mod load;
pub mod principal;

use std::sync::{Arc, PoisonError, RwLock};

use rustls_pki_types::CertificateDer;
use tokio_rustls::TlsAcceptor;

use crate::config::{PrincipalFrom, TlsConfig};
pub use load::TlsError;

/// The listener's TLS settings and its current rustls configuration.
#[derive(Debug)]
pub struct Tls {
    settings: TlsConfig,
    current: RwLock<Current>,
}

/// The configurations in use: the native listener's, and the HTTP gateway's (the
/// same plus ALPN).
#[derive(Debug)]
struct Current {
    native: Arc<rustls::ServerConfig>,
    http: Arc<rustls::ServerConfig>,
}

/// What the HTTP gateway offers in ALPN, preferred first.
pub const HTTP_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

impl Current {
    fn load(settings: &TlsConfig) -> Result<Current, TlsError> {
        let native = load::server_config(settings)?;
        let mut http = native.clone();
        http.alpn_protocols = HTTP_ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Current {
            native: Arc::new(native),
            http: Arc::new(http),
        })
    }
}

impl Tls {
    /// Reads the files `settings` names; fails naming the file that is wrong.
    pub fn load(settings: TlsConfig) -> Result<Tls, TlsError> {
        let current = Current::load(&settings)?;
        Ok(Tls {
            settings,
            current: RwLock::new(current),
        })
    }

    /// Reads the files again and, if they make a valid configuration, makes new
    /// handshakes use it. On failure the configuration in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let current = Current::load(&self.settings)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = current;
        Ok(())
    }

    /// An acceptor with the current configuration, for one handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .native
            .clone();
        TlsAcceptor::from(config)
    }

    /// An acceptor for one HTTPS handshake: the same certificate, with ALPN `h2` and
    /// `http/1.1`.
    pub fn http_acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .http
            .clone();
        TlsAcceptor::from(config)
    }

    /// The principal a verified client certificate chain names, if its leaf has the
    /// name `principal_from` asks for.
    pub fn principal(&self, chain: &[CertificateDer<'_>]) -> Option<Arc<str>> {
        let leaf = chain.first()?;
        principal::of(leaf.as_ref(), self.settings.principal_from).map(Arc::from)
    }

    /// Which name of a client certificate is its principal.
    pub fn principal_from(&self) -> PrincipalFrom {
        self.settings.principal_from
    }
}
