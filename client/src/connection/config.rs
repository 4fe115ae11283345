//! [`ClientConfig`]: a client's settings, their defaults, and the client's limits.
//!
//! Plain data with builder-style setters, apart from the connection code so that
//! what can be tuned is read in one place. The defaults of times and counts are named
//! constants with their units in their names, re-exported from the crate root. The
//! reconnect schedule is the pure [`Backoff`], built from the `reconnect_*` fields.

use std::time::Duration;

use super::tls::TlsConfig;
use crate::backoff::Backoff;
use crate::credentials::Credentials;

/// brokerd's default listen address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7171";
/// Default for [`ClientConfig::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Default for [`ClientConfig::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Default for [`ClientConfig::reconnect_backoff_initial`].
pub const DEFAULT_BACKOFF_INITIAL_MS: u64 = 50;
/// Default for [`ClientConfig::reconnect_backoff_max`].
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 2_000;
/// Default for [`ClientConfig::reconnect_max_attempts`].
pub const DEFAULT_RECONNECT_MAX_ATTEMPTS: u32 = 8;
/// Default for [`ClientConfig::max_in_flight_requests`].
pub const DEFAULT_MAX_IN_FLIGHT_REQUESTS: usize = 128;
/// Deliveries buffered per subscription before the client gives up on a reader that
/// does not keep up. Credit bounds what the broker sends, so this only overflows when
/// a subscriber grants far more credit than it reads.
pub const SUBSCRIPTION_BUFFER_DELIVERIES: usize = 1024;

/// Settings of a [`Client`](crate::Client). Build with [`ClientConfig::default`] and the
/// setters.
///
/// ```
/// use std::time::Duration;
/// use client::ClientConfig;
///
/// let config = ClientConfig::default()
///     .client_name("billing/1.2")
///     .request_timeout(Duration::from_secs(5))
///     .reconnect_max_attempts(3);
/// assert_eq!(config.reconnect_max_attempts, 3);
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Sent in the handshake; the broker shows it in group descriptions.
    pub client_name: String,
    /// How long a request may wait for its answer (long polls and produce acks get
    /// their own wait added on top).
    pub request_timeout: Duration,
    /// How long one TCP connect plus handshake (and authentication) may take.
    pub connect_timeout: Duration,
    /// Delay before the second connection attempt; it doubles on every later one.
    pub reconnect_backoff_initial: Duration,
    /// Largest delay between two connection attempts.
    pub reconnect_backoff_max: Duration,
    /// Connection attempts (the first included) before a request fails with
    /// [`ClientError::Connect`](crate::ClientError::Connect).
    pub reconnect_max_attempts: u32,
    /// Requests sent and not yet answered, at most; more wait for a slot.
    pub max_in_flight_requests: usize,
    /// TLS to the broker; `None`: plaintext.
    pub tls: Option<TlsConfig>,
    /// Who to authenticate as after the handshake of every connection; `None` (the
    /// default) for a broker without authentication.
    pub credentials: Option<Credentials>,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            client_name: format!("client/{}", env!("CARGO_PKG_VERSION")),
            request_timeout: Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS),
            connect_timeout: Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
            reconnect_backoff_initial: Duration::from_millis(DEFAULT_BACKOFF_INITIAL_MS),
            reconnect_backoff_max: Duration::from_millis(DEFAULT_BACKOFF_MAX_MS),
            reconnect_max_attempts: DEFAULT_RECONNECT_MAX_ATTEMPTS,
            max_in_flight_requests: DEFAULT_MAX_IN_FLIGHT_REQUESTS,
            tls: None,
            credentials: None,
        }
    }
}

impl ClientConfig {
    /// Sets [`client_name`](Self::client_name).
    pub fn client_name(mut self, name: impl Into<String>) -> ClientConfig {
        self.client_name = name.into();
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the reconnect backoff's first and largest delay.
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> ClientConfig {
        self.reconnect_backoff_initial = initial;
        self.reconnect_backoff_max = max;
        self
    }

    /// Sets [`reconnect_max_attempts`](Self::reconnect_max_attempts).
    pub fn reconnect_max_attempts(mut self, attempts: u32) -> ClientConfig {
        self.reconnect_max_attempts = attempts;
        self
    }

    /// Sets [`max_in_flight_requests`](Self::max_in_flight_requests).
    pub fn max_in_flight_requests(mut self, requests: usize) -> ClientConfig {
        self.max_in_flight_requests = requests;
        self
    }

    /// Speaks TLS to the broker, as `tls` says (see [`TlsConfig::from_env`] for the
    /// environment's settings).
    pub fn tls(mut self, tls: TlsConfig) -> ClientConfig {
        self.tls = Some(tls);
        self
    }

    /// Sets [`credentials`](Self::credentials): every connection the client opens
    /// authenticates with them after its handshake. A broker that refuses them fails
    /// the connection with [`ClientError::Authentication`](crate::ClientError::Authentication),
    /// at once (it is not retried).
    ///
    /// ```
    /// use client::{ClientConfig, Credentials};
    ///
    /// let config = ClientConfig::default()
    ///     .credentials(Credentials::scram_sha_256("alice", "correct horse battery staple"));
    /// assert_eq!(config.credentials.as_ref().map(|c| c.user()), Some("alice"));
    /// ```
    pub fn credentials(mut self, credentials: Credentials) -> ClientConfig {
        self.credentials = Some(credentials);
        self
    }

    pub(super) fn backoff(&self) -> Backoff {
        Backoff {
            initial: self.reconnect_backoff_initial,
            max: self.reconnect_backoff_max,
            max_attempts: self.reconnect_max_attempts,
        }
    }
}
