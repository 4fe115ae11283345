//! Server configuration: TOML file, command-line overrides, defaults, limits.
//!
//! Every option is documented in `docs/operations.md` with its default; keep the two
//! in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use storage::Durability;

use crate::topics::TopicConfig;

/// Address brokerd listens on when not told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7171";
/// Address the HTTP gateway listens on when not told otherwise.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:7172";
/// Data directory when not told otherwise.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// The whole configuration of a broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on (`host:port`; port 0 lets the OS pick).
    pub listen: SocketAddr,
    /// Where topics are stored.
    pub data_dir: PathBuf,
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// Connection and request limits.
    pub limits: LimitsConfig,
    /// Configuration of new topics unless overridden at creation.
    pub topic_defaults: TopicDefaultsConfig,
    /// Consumer group settings.
    pub groups: GroupConfig,
    /// Routing settings.
    pub routing: RoutingConfig,
    /// Tracing settings.
    pub tracing: TracingConfig,
    /// Retention settings.
    pub retention: RetentionConfig,
    /// TLS on the native listener; absent: plaintext.
    pub tls: Option<TlsConfig>,
    /// Authentication and authorization.
    pub security: SecurityConfig,
    /// The HTTP gateway (`[http]`).
    pub http: HttpConfig,
    /// The Kafka-protocol listener (`[kafka]`; `docs/kafka.md`); off by default.
    pub kafka: KafkaConfig,
    /// Storage settings shared by every log (`[storage]`).
    pub storage: StorageConfig,
}

/// Settings shared by every partition's log (`[storage]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Threads that group-commit every `always` and `interval` log
    /// (`docs/storage.md`, "Durability workers"): a fixed number, whatever the number
    /// of partitions. Default: 8, or the number of cores if more (at most 32);
    /// at most 64.
    pub sync_workers: usize,
    /// Most index files kept open for writing at once, across every partition
    /// (`docs/storage.md`, "Descriptors"): the two indexes of each active segment
    /// borrow descriptors from this budget, and past it the least recently written
    /// are closed and reopened on their next write. Segment data files of active
    /// segments hold one descriptor each; sealed segments hold none. Default: a
    /// quarter of the open-file limit brokerd runs under (at least 64); at least 2.
    pub index_handles: Option<usize>,
    /// Most sealed segments kept memory-mapped between reads, across every partition
    /// (`docs/storage.md`, "Descriptors"): a sealed segment is mapped when read and
    /// the least recently read are unmapped past this budget. Default: a sixth of
    /// `vm.max_map_count` (each segment takes three maps; at least 64); at least 1.
    pub mapped_segments: Option<usize>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            sync_workers: storage::default_sync_workers(),
            index_handles: None,
            mapped_segments: None,
        }
    }
}

/// The Kafka-protocol listener (`[kafka]`; `docs/kafka.md`): Kafka clients and tools
/// on the same topics, partitions and offsets. Off unless `listen` is set (or
/// `--kafka-listen`). It speaks TLS, with the native listener's certificate, when
/// `[tls]` is set (clients use `security.protocol` `SSL` or `SASL_SSL`), plaintext
/// otherwise. With authentication on, clients log in with SASL SCRAM-SHA-256 (and
/// PLAIN over TLS) as the broker's users, or with a verified client certificate,
/// or are `ANONYMOUS` where `security.allow_anonymous` admits them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Address to listen on (`host:port`; port 0 lets the OS pick); absent: no Kafka
    /// listener.
    pub listen: Option<SocketAddr>,
    /// The address Metadata tells clients to connect to (`host:port`); absent: the
    /// address the listener is bound to, port 0 resolved.
    pub advertised: Option<String>,
}

/// The HTTP gateway (`[http]`; `docs/http.md`): a REST/JSON listener beside the
/// native one, on by default on loopback. It serves HTTPS with the native listener's
/// certificate when `[tls]` is set, and its requests pass the same authentication
/// and ACLs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Whether the gateway listens at all (`false`: no HTTP listener).
    pub enabled: bool,
    /// Address to listen on (`host:port`; port 0 lets the OS pick).
    pub listen: SocketAddr,
    /// HTTP connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Largest request body accepted; a larger one is answered 413, unread.
    pub max_body_bytes: usize,
    /// How long one request may take, long polls included (a long poll's
    /// `max_wait_ms` is capped below this and by `limits.max_fetch_wait_ms`).
    pub request_timeout_ms: u64,
    /// Records one produce request may carry.
    pub max_records_per_produce: usize,
    /// Verified HTTP Basic logins remembered, so that a client sending its password
    /// on every request does not pay PBKDF2 on every request.
    pub login_cache_entries: usize,
    /// How long a remembered login is trusted before its password is checked again.
    pub login_cache_ttl_ms: u64,
    /// Whether the web console is served at `/` (`false`: only the API).
    pub console: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            listen: DEFAULT_HTTP_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7172))),
            max_connections: 1024,
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_ms: 60_000,
            max_records_per_produce: 10_000,
            login_cache_entries: 1024,
            login_cache_ttl_ms: 300_000,
            console: true,
        }
    }
}

/// TLS on the native listener (`[tls]`): with it, the listener speaks TLS only.
/// Relative paths are relative to brokerd's working directory, like `data_dir`. The
/// files are read again on SIGHUP ([`crate::tls::Tls::reload`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM: the server's certificate first, then the
    /// intermediates.
    pub cert: PathBuf,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates, PEM, that client certificates must chain to; set: mutual TLS.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: whether a client must present a certificate (`true`, the
    /// default) or may connect without one (`false`; one it does present must still
    /// verify). Only allowed together with `client_ca`.
    #[serde(default)]
    pub require_client_certificate: Option<bool>,
    /// The oldest TLS version accepted: `"1.3"` (the default) or `"1.2"`.
    #[serde(default)]
    pub min_version: TlsVersion,
    /// Which name of a verified client certificate is its principal.
    #[serde(default)]
    pub principal_from: PrincipalFrom,
}

impl TlsConfig {
    /// Whether a client must present a certificate: only with a `client_ca`, and then
    /// unless `require_client_certificate = false`.
    pub fn requires_client_certificate(&self) -> bool {
        self.client_ca.is_some() && self.require_client_certificate.unwrap_or(true)
    }
}

/// The oldest TLS protocol version a listener accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[default]
    #[serde(rename = "1.3")]
    Tls13,
}

/// Which name of a client certificate is its principal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalFrom {
    /// The subject's common name (CN).
    #[default]
    Cn,
    /// The first DNS name or email address among the subject alternative names.
    San,
}

/// Authentication and authorization (`[security]`; `docs/operations.md`, "Security").
///
/// With no mechanism listed and no client certificates asked for (`tls.client_ca`),
/// authentication is off: every client may do everything, as on a laptop. With
/// either, every connection must authenticate (or be admitted as anonymous, if
/// allowed) and every request is checked against the ACLs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// SASL mechanisms clients may authenticate with: `SCRAM-SHA-256`, `PLAIN` (only
    /// accepted over TLS).
    pub mechanisms: Vec<String>,
    /// Principals allowed everything, whatever the ACLs say.
    pub superusers: Vec<String>,
    /// With authentication on: admit connections that do not authenticate, as the
    /// principal `ANONYMOUS` (ACLs still apply). With it off: allow listening on an
    /// address other than loopback.
    pub allow_anonymous: bool,
    /// A connection must have completed its handshake and authentication this long
    /// after it opened, or it is closed.
    pub authentication_timeout_ms: u64,
    /// How long a failed authentication waits before its answer (and the close).
    pub failure_delay_ms: u64,
    /// Failed authentications one remote address may make per minute; more are
    /// refused without being checked.
    pub max_failures_per_minute: u32,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            mechanisms: Vec::new(),
            superusers: Vec::new(),
            allow_anonymous: false,
            authentication_timeout_ms: 10_000,
            failure_delay_ms: 1_000,
            max_failures_per_minute: 10,
        }
    }
}

/// How retention runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// How often every topic's retention is enforced, ms (at least 100).
    pub check_interval_ms: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            check_interval_ms: DEFAULT_RETENTION_CHECK_INTERVAL_MS,
        }
    }
}

/// Default for [`RetentionConfig::check_interval_ms`].
pub const DEFAULT_RETENTION_CHECK_INTERVAL_MS: u64 = 30_000;
/// Smallest [`RetentionConfig::check_interval_ms`].
pub const MIN_RETENTION_CHECK_INTERVAL_MS: u64 = 100;

/// Which traced messages get broker spans, and where else spans go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// Fraction (0 to 1) of messages whose `traceparent` is *not* flagged sampled that
    /// are traced anyway; messages flagged sampled always are, messages without a
    /// `traceparent` never are.
    pub sample_unsampled: f64,
    /// Base URL of an OTLP/HTTP collector (`http://host:4318`): every span written
    /// to `__traces` is also exported to `<otlp_endpoint>/v1/traces`. Absent: no
    /// export.
    pub otlp_endpoint: Option<String>,
    /// The exported resource's `service.name`.
    pub otlp_service_name: String,
    /// The exported resource's `service.instance.id`; absent: the address the
    /// native listener is bound to.
    pub otlp_instance_id: Option<String>,
    /// Spans waiting for export, at most; more are dropped (and counted).
    pub otlp_queue_spans: usize,
    /// Spans per export request, at most.
    pub otlp_batch_spans: usize,
    /// How long a span may wait for a batch to fill before it is sent anyway, ms.
    pub otlp_flush_interval_ms: u64,
    /// One export request (connect, send, answer) may take this long, ms.
    pub otlp_timeout_ms: u64,
    /// Retries of a request that failed in a way worth retrying (no connection, a
    /// timeout, 429, 502, 503, 504) before its spans are dropped (and counted).
    pub otlp_max_retries: u32,
    /// Wait before the first retry, ms; each further retry waits twice as long...
    pub otlp_retry_backoff_ms: u64,
    /// ...up to this, ms.
    pub otlp_retry_backoff_max_ms: u64,
}

/// Largest [`TracingConfig::otlp_queue_spans`]: spans are at most a few KiB (their
/// attributes are clipped), so this bounds the export queue to a few hundred MiB
/// whatever the file says.
pub const MAX_OTLP_QUEUE_SPANS: usize = 1 << 20;
/// Most [`TracingConfig::otlp_max_retries`].
pub const MAX_OTLP_RETRIES: u32 = 10;

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            sample_unsampled: 0.0,
            otlp_endpoint: None,
            otlp_service_name: "brokerd".into(),
            otlp_instance_id: None,
            otlp_queue_spans: 8192,
            otlp_batch_spans: 512,
            otlp_flush_interval_ms: 1000,
            otlp_timeout_ms: 5000,
            otlp_max_retries: 2,
            otlp_retry_backoff_ms: 200,
            otlp_retry_backoff_max_ms: 5000,
        }
    }
}

impl TracingConfig {
    /// Checks the export settings (the endpoint is parsed where it is used, by
    /// [`crate::traces::otlp::Endpoint::parse`]).
    fn validate_otlp(&self) -> Result<(), ConfigError> {
        if let Some(endpoint) = &self.otlp_endpoint {
            crate::traces::otlp::Endpoint::parse(endpoint)
                .map_err(|e| ConfigError(format!("tracing.otlp_endpoint: {e}")))?;
        }
        if self.otlp_service_name.is_empty() {
            return Err(ConfigError(
                "tracing.otlp_service_name must not be empty".into(),
            ));
        }
        if !(1..=MAX_OTLP_QUEUE_SPANS).contains(&self.otlp_queue_spans) {
            return Err(ConfigError(format!(
                "tracing.otlp_queue_spans is {}; it must be from 1 to {MAX_OTLP_QUEUE_SPANS}",
                self.otlp_queue_spans
            )));
        }
        if !(1..=self.otlp_queue_spans).contains(&self.otlp_batch_spans) {
            return Err(ConfigError(format!(
                "tracing.otlp_batch_spans is {}; it must be from 1 to tracing.otlp_queue_spans ({})",
                self.otlp_batch_spans, self.otlp_queue_spans
            )));
        }
        for (name, value) in [
            (
                "tracing.otlp_flush_interval_ms",
                self.otlp_flush_interval_ms,
            ),
            ("tracing.otlp_timeout_ms", self.otlp_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        if self.otlp_max_retries > MAX_OTLP_RETRIES {
            return Err(ConfigError(format!(
                "tracing.otlp_max_retries is {}; it must be at most {MAX_OTLP_RETRIES}",
                self.otlp_max_retries
            )));
        }
        if self.otlp_retry_backoff_ms > self.otlp_retry_backoff_max_ms {
            return Err(ConfigError(
                "tracing.otlp_retry_backoff_ms exceeds tracing.otlp_retry_backoff_max_ms".into(),
            ));
        }
        Ok(())
    }
}

/// Publishing by routing key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Topic that receives publishes no rule matches; absent: they are refused. A
    /// topic of this name is created at startup (with the topic defaults) if it does
    /// not exist, so that the setting never points nowhere.
    pub unroutable_topic: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// LimitsConfig that bound the memory one connection can make the server hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest frame accepted, header included.
    pub max_frame_bytes: usize,
    /// Connections served at once; more are answered `too_many_connections` and closed.
    pub max_connections: usize,
    /// Request bytes a connection may have in flight (received, not yet answered).
    pub max_inflight_bytes_per_connection: usize,
    /// Responses and pushes queued for one connection's socket.
    pub max_outbound_frames_per_connection: usize,
    /// Open subscriptions per connection.
    pub max_subscriptions_per_connection: usize,
    /// Longest long-poll wait a fetch may ask for.
    pub max_fetch_wait_ms: u32,
    /// Largest `max_bytes` a fetch may ask for.
    pub max_fetch_bytes: u32,
    /// A connection that has not completed its handshake this long after it opened is
    /// closed.
    pub handshake_timeout_ms: u64,
    /// A connection with nothing in flight (no request waiting for its answer, no open
    /// subscription) that sends nothing for this long is closed.
    pub idle_timeout_ms: u64,
    /// A frame that has begun to arrive and then receives no byte for this long closes
    /// its connection.
    pub frame_read_timeout_ms: u64,
}

/// Defaults for new topics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicDefaultsConfig {
    /// Segment size in bytes.
    pub segment_bytes: u64,
    /// Retention by size per partition, bytes; `None` (`"none"` in the file, or
    /// omitted) = unlimited.
    #[serde(deserialize_with = "limit_or_none")]
    pub retention_bytes: Option<u64>,
    /// Retention by age, ms; `None` (`"none"` in the file) = unlimited. Omitted: 7
    /// days.
    #[serde(deserialize_with = "limit_or_none")]
    pub retention_ms: Option<u64>,
    /// `always`, `interval:<ms>` or `os`.
    pub durability: String,
}

/// Consumer group settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupConfig {
    /// Smallest session timeout a member may ask for.
    pub min_session_timeout_ms: u32,
    /// Largest session timeout a member may ask for.
    pub max_session_timeout_ms: u32,
    /// Members per group.
    pub max_members_per_group: usize,
    /// A group with no member (native or Kafka) for this long is deleted with its
    /// committed offsets and queue state, as Kafka's `offsets.retention.minutes`
    /// does (`docs/operations.md`, "Consumer groups"). Timed from when this run of
    /// the broker first finds it empty. Default 7 days; 0 = never; else at least
    /// 1000.
    pub empty_group_retention_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 7171))),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            log_format: LogFormat::Text,
            limits: LimitsConfig::default(),
            topic_defaults: TopicDefaultsConfig::default(),
            groups: GroupConfig::default(),
            routing: RoutingConfig::default(),
            tracing: TracingConfig::default(),
            retention: RetentionConfig::default(),
            tls: None,
            security: SecurityConfig::default(),
            http: HttpConfig::default(),
            kafka: KafkaConfig::default(),
            storage: StorageConfig::default(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_frame_bytes: protocol::MAX_FRAME_BYTES,
            max_connections: 1024,
            max_inflight_bytes_per_connection: 64 * 1024 * 1024,
            max_outbound_frames_per_connection: 256,
            max_subscriptions_per_connection: 64,
            max_fetch_wait_ms: 30_000,
            max_fetch_bytes: 8 * 1024 * 1024,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 600_000,
            frame_read_timeout_ms: 30_000,
        }
    }
}

/// Reads a limit that is a number or the string `"none"` (TOML has no null, so
/// "unlimited" must be spelled out to override a default that is not).
fn limit_or_none<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Limit {
        Value(u64),
        Word(String),
    }
    match Limit::deserialize(deserializer)? {
        Limit::Value(value) => Ok(Some(value)),
        Limit::Word(word) if word == "none" => Ok(None),
        Limit::Word(word) => Err(serde::de::Error::custom(format!(
            "expected a number or \"none\", got {word:?}"
        ))),
    }
}

impl Default for TopicDefaultsConfig {
    fn default() -> Self {
        TopicDefaultsConfig {
            segment_bytes: storage::DEFAULT_SEGMENT_BYTES,
            retention_bytes: None,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            durability: "always".into(),
        }
    }
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 1000,
            max_session_timeout_ms: 300_000,
            max_members_per_group: 1000,
            empty_group_retention_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

/// A configuration problem, reported before the server starts.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ServerConfig {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        toml::from_str(&text)
            .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))
    }

    /// Checks limits and defaults.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.retention.check_interval_ms < MIN_RETENTION_CHECK_INTERVAL_MS {
            return Err(ConfigError(format!(
                "retention.check_interval_ms must be at least {MIN_RETENTION_CHECK_INTERVAL_MS}"
            )));
        }
        if !(1..=storage::MAX_SYNC_WORKERS).contains(&self.storage.sync_workers) {
            return Err(ConfigError(format!(
                "storage.sync_workers must be between 1 and {}",
                storage::MAX_SYNC_WORKERS
            )));
        }
        if self.storage.mapped_segments == Some(0) {
            return Err(ConfigError(
                "storage.mapped_segments must be at least 1".into(),
            ));
        }
        if let Some(budget) = self.storage.index_handles {
            if budget < storage::MIN_INDEX_HANDLES {
                return Err(ConfigError(format!(
                    "storage.index_handles must be at least {}",
                    storage::MIN_INDEX_HANDLES
                )));
            }
        }
        let limits = &self.limits;
        if limits.max_frame_bytes < 1024 {
            return Err(ConfigError(
                "limits.max_frame_bytes must be at least 1024".into(),
            ));
        }
        if limits.max_inflight_bytes_per_connection < limits.max_frame_bytes {
            return Err(ConfigError(
                "limits.max_inflight_bytes_per_connection must be at least limits.max_frame_bytes"
                    .into(),
            ));
        }
        for (name, value) in [
            ("limits.handshake_timeout_ms", limits.handshake_timeout_ms),
            ("limits.idle_timeout_ms", limits.idle_timeout_ms),
            ("limits.frame_read_timeout_ms", limits.frame_read_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        for (name, value) in [
            ("limits.max_connections", limits.max_connections),
            (
                "limits.max_outbound_frames_per_connection",
                limits.max_outbound_frames_per_connection,
            ),
            (
                "limits.max_subscriptions_per_connection",
                limits.max_subscriptions_per_connection,
            ),
            (
                "groups.max_members_per_group",
                self.groups.max_members_per_group,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        let sample = self.tracing.sample_unsampled;
        if !(0.0..=1.0).contains(&sample) {
            return Err(ConfigError(format!(
                "tracing.sample_unsampled is {sample}; it is a fraction from 0 to 1"
            )));
        }
        self.tracing.validate_otlp()?;
        if let Some(topic) = &self.routing.unroutable_topic {
            crate::topics::validate_topic_name(topic)
                .map_err(|e| ConfigError(format!("routing.unroutable_topic: {e}")))?;
            if topic.starts_with(crate::topics::INTERNAL_PREFIX) {
                return Err(ConfigError(format!(
                    "routing.unroutable_topic: {topic:?} is an internal topic name (they start with {:?})",
                    crate::topics::INTERNAL_PREFIX
                )));
            }
        }
        let retention = self.groups.empty_group_retention_ms;
        if retention != 0 && retention < crate::group::MIN_EMPTY_GROUP_RETENTION_MS {
            return Err(ConfigError(format!(
                "groups.empty_group_retention_ms must be 0 (never) or at least {}",
                crate::group::MIN_EMPTY_GROUP_RETENTION_MS
            )));
        }
        if self.groups.min_session_timeout_ms > self.groups.max_session_timeout_ms {
            return Err(ConfigError(
                "groups.min_session_timeout_ms exceeds max_session_timeout_ms".into(),
            ));
        }
        if let Some(tls) = &self.tls {
            if tls.require_client_certificate.is_some() && tls.client_ca.is_none() {
                return Err(ConfigError(
                    "tls.require_client_certificate needs tls.client_ca (the CA client certificates are checked against)".into(),
                ));
            }
        }
        self.validate_security()?;
        self.validate_http()?;
        self.validate_kafka()?;
        self.default_topic_config().map(|_| ())
    }

    /// Whether connections must authenticate (and requests pass the ACLs): a SASL
    /// mechanism is offered, or the listener asks for client certificates (mutual
    /// TLS: a certificate's principal is an authentication like any other, so it
    /// must be checked against the ACLs, not let through as anonymous).
    pub fn authentication_enabled(&self) -> bool {
        !self.security.mechanisms.is_empty()
            || self.tls.as_ref().is_some_and(|tls| tls.client_ca.is_some())
    }

    fn validate_security(&self) -> Result<(), ConfigError> {
        let security = &self.security;
        for mechanism in &security.mechanisms {
            if !crate::security::MECHANISMS.contains(&mechanism.as_str()) {
                return Err(ConfigError(format!(
                    "security.mechanisms: {mechanism:?} is not a mechanism this broker offers; it offers {:?}",
                    crate::security::MECHANISMS
                )));
            }
        }
        if security
            .mechanisms
            .iter()
            .any(|m| m == auth::plain::MECHANISM)
            && self.tls.is_none()
        {
            return Err(ConfigError(
                "security.mechanisms: PLAIN sends the password itself, so it needs [tls]; offer SCRAM-SHA-256 instead, or configure TLS".into(),
            ));
        }
        if security.authentication_timeout_ms == 0 {
            return Err(ConfigError(
                "security.authentication_timeout_ms must be at least 1".into(),
            ));
        }
        // Like Redis's protected mode: an open broker on a reachable address is a
        // mistake until the operator says otherwise.
        if !self.authentication_enabled()
            && !security.allow_anonymous
            && !self.listen.ip().is_loopback()
        {
            return Err(ConfigError(format!(
                "refusing to listen on {} without authentication: set security.mechanisms (see docs/operations.md, \"Security\"), or security.allow_anonymous = true to serve anyone who can reach it",
                self.listen
            )));
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        let http = &self.http;
        if !http.enabled {
            return Ok(());
        }
        for (name, value) in [
            ("http.max_connections", http.max_connections),
            ("http.max_body_bytes", http.max_body_bytes),
            ("http.max_records_per_produce", http.max_records_per_produce),
            ("http.login_cache_entries", http.login_cache_entries),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        if http.request_timeout_ms <= u64::from(self.limits.max_fetch_wait_ms) {
            return Err(ConfigError(format!(
                "http.request_timeout_ms ({}) must exceed limits.max_fetch_wait_ms ({}), so that a long poll can finish",
                http.request_timeout_ms, self.limits.max_fetch_wait_ms
            )));
        }
        // Protected mode covers the gateway too: it serves the same operations.
        if !self.authentication_enabled()
            && !self.security.allow_anonymous
            && !http.listen.ip().is_loopback()
        {
            return Err(ConfigError(format!(
                "refusing to listen for HTTP on {} without authentication: set security.mechanisms (see docs/operations.md, \"Security\"), or security.allow_anonymous = true to serve anyone who can reach it",
                http.listen
            )));
        }
        Ok(())
    }

    fn validate_kafka(&self) -> Result<(), ConfigError> {
        let Some(listen) = self.kafka.listen else {
            return Ok(());
        };
        // Protected mode covers the Kafka port too.
        if !self.authentication_enabled()
            && !self.security.allow_anonymous
            && !listen.ip().is_loopback()
        {
            return Err(ConfigError(format!(
                "refusing to listen for Kafka clients on {listen} without authentication: set security.mechanisms (Kafka clients log in with SCRAM-SHA-256, or PLAIN over [tls]), use a loopback address, or security.allow_anonymous = true to serve anyone who can reach it"
            )));
        }
        if let Some(advertised) = &self.kafka.advertised {
            crate::kafka::parse_advertised(advertised)
                .map_err(|e| ConfigError(format!("kafka.advertised: {e}")))?;
        }
        Ok(())
    }

    /// The configuration a new topic gets before its own overrides (one partition
    /// until the request says how many).
    pub fn default_topic_config(&self) -> Result<TopicConfig, ConfigError> {
        let defaults = &self.topic_defaults;
        let durability = Durability::parse(&defaults.durability)
            .map_err(|e| ConfigError(format!("topic_defaults.durability: {e}")))?;
        let config = TopicConfig {
            partitions: 1,
            segment_bytes: defaults.segment_bytes,
            retention_bytes: defaults.retention_bytes,
            retention_ms: defaults.retention_ms,
            durability,
            queue: crate::queue::QueueConfig::default(),
        };
        config
            .validate()
            .map_err(|e| ConfigError(format!("topic_defaults: {e}")))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_group_retention_is_read_and_bounded() {
        assert_eq!(
            ServerConfig::default().groups.empty_group_retention_ms,
            604_800_000
        );
        for ok in ["0", "1000", "86400000"] {
            let text = format!("[groups]\nempty_group_retention_ms = {ok}\n");
            let config: ServerConfig = toml::from_str(&text).unwrap();
            config.validate().unwrap();
        }
        let config: ServerConfig =
            toml::from_str("[groups]\nempty_group_retention_ms = 999\n").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("groups.empty_group_retention_ms"), "{error}");
    }

    #[test]
    fn index_handles_are_read_and_bounded() {
        let config: ServerConfig = toml::from_str("[storage]\nindex_handles = 300\n").unwrap();
        assert_eq!(config.storage.index_handles, Some(300));
        config.validate().unwrap();
        assert_eq!(ServerConfig::default().storage.index_handles, None);
        let config: ServerConfig = toml::from_str("[storage]\nindex_handles = 1\n").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("storage.index_handles"), "{error}");
        let config: ServerConfig = toml::from_str("[storage]\nmapped_segments = 9\n").unwrap();
        assert_eq!(config.storage.mapped_segments, Some(9));
        config.validate().unwrap();
        let config: ServerConfig = toml::from_str("[storage]\nmapped_segments = 0\n").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("storage.mapped_segments"), "{error}");
    }

    #[test]
    fn sync_workers_are_read_and_bounded() {
        let config: ServerConfig = toml::from_str("[storage]\nsync_workers = 3\n").unwrap();
        assert_eq!(config.storage.sync_workers, 3);
        config.validate().unwrap();
        for bad in ["0", "65"] {
            let text = format!("[storage]\nsync_workers = {bad}\n");
            let config: ServerConfig = toml::from_str(&text).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains("storage.sync_workers"), "{error}");
        }
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let config = ServerConfig::default();
        config.validate().unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.data_dir, Path::new("./data"));
    }

    #[test]
    fn toml_overrides_and_rejects_unknown_keys() {
        let config: ServerConfig = toml::from_str(
            "listen = \"127.0.0.1:0\"\n[limits]\nmax_connections = 3\n[topic_defaults]\ndurability = \"os\"\n",
        )
        .unwrap();
        assert_eq!(config.limits.max_connections, 3);
        assert_eq!(config.limits.max_frame_bytes, protocol::MAX_FRAME_BYTES);
        config.validate().unwrap();
        assert!(toml::from_str::<ServerConfig>("bogus = 1").is_err());
        let bad: ServerConfig =
            toml::from_str("[topic_defaults]\ndurability = \"sometimes\"\n").unwrap();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn retention_defaults_can_be_set_to_none_in_the_file() {
        let default: ServerConfig = toml::from_str("").unwrap();
        assert_eq!(default.topic_defaults.retention_ms, Some(604_800_000));
        let none: ServerConfig = toml::from_str(
            "[topic_defaults]\nretention_ms = \"none\"\nretention_bytes = \"none\"\n",
        )
        .unwrap();
        assert_eq!(none.topic_defaults.retention_ms, None);
        assert_eq!(none.topic_defaults.retention_bytes, None);
        let set: ServerConfig =
            toml::from_str("[topic_defaults]\nretention_bytes = 1000\n").unwrap();
        assert_eq!(set.topic_defaults.retention_bytes, Some(1000));
        assert!(
            toml::from_str::<ServerConfig>("[topic_defaults]\nretention_ms = \"forever\"\n")
                .is_err()
        );
    }

    #[test]
    fn out_of_range_sampling_and_bad_unroutable_topics_are_refused() {
        for bad in [
            "[tracing]\nsample_unsampled = 2.0\n",
            "[tracing]\nsample_unsampled = -0.5\n",
            "[tracing]\nsample_unsampled = nan\n",
            "[routing]\nunroutable_topic = \"no spaces\"\n",
            "[routing]\nunroutable_topic = \"__internal\"\n",
        ] {
            let config: ServerConfig = toml::from_str(bad).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(
                error.contains("sample_unsampled") || error.contains("unroutable_topic"),
                "{bad}: {error}"
            );
        }
        let fine: ServerConfig = toml::from_str(
            "[tracing]\nsample_unsampled = 0.25\n[routing]\nunroutable_topic = \"lost\"\n",
        )
        .unwrap();
        fine.validate().unwrap();
    }

    #[test]
    fn otlp_export_is_off_by_default_and_its_limits_are_checked() {
        let default = ServerConfig::default();
        assert_eq!(default.tracing.otlp_endpoint, None);
        assert_eq!(default.tracing.otlp_service_name, "brokerd");
        let on: ServerConfig = toml::from_str(
            "[tracing]\notlp_endpoint = \"http://127.0.0.1:4318\"\notlp_batch_spans = 10\n",
        )
        .unwrap();
        on.validate().unwrap();
        assert_eq!(on.tracing.otlp_batch_spans, 10);
        for (bad, names) in [
            ("otlp_endpoint = \"ftp://collector\"", "otlp_endpoint"),
            (
                "otlp_endpoint = \"https://collector:4318\"",
                "otlp_endpoint",
            ),
            ("otlp_endpoint = \"not a url\"", "otlp_endpoint"),
            ("otlp_queue_spans = 0", "otlp_queue_spans"),
            ("otlp_queue_spans = 100000000", "otlp_queue_spans"),
            (
                "otlp_queue_spans = 10\notlp_batch_spans = 11",
                "otlp_batch_spans",
            ),
            ("otlp_flush_interval_ms = 0", "otlp_flush_interval_ms"),
            ("otlp_timeout_ms = 0", "otlp_timeout_ms"),
            ("otlp_max_retries = 11", "otlp_max_retries"),
            (
                "otlp_retry_backoff_ms = 10\notlp_retry_backoff_max_ms = 5",
                "otlp_retry_backoff_ms",
            ),
            ("otlp_service_name = \"\"", "otlp_service_name"),
        ] {
            let config: ServerConfig = toml::from_str(&format!("[tracing]\n{bad}\n")).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(names), "{bad}: {error}");
        }
    }

    #[test]
    fn tls_is_off_by_default_and_its_section_is_checked() {
        assert!(ServerConfig::default().tls.is_none());
        let config: ServerConfig =
            toml::from_str("[tls]\ncert = \"s.pem\"\nkey = \"k.pem\"\n").unwrap();
        let tls = config.tls.clone().unwrap();
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert_eq!(tls.principal_from, PrincipalFrom::Cn);
        assert!(!tls.requires_client_certificate());
        config.validate().unwrap();

        let mutual: ServerConfig = toml::from_str(
            "[tls]\ncert = \"s.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\nmin_version = \"1.2\"\nprincipal_from = \"san\"\n",
        )
        .unwrap();
        let tls = mutual.tls.unwrap();
        assert!(tls.requires_client_certificate());
        assert_eq!(tls.min_version, TlsVersion::Tls12);
        assert_eq!(tls.principal_from, PrincipalFrom::San);

        let optional: ServerConfig = toml::from_str(
            "[tls]\ncert = \"s.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\nrequire_client_certificate = false\n",
        )
        .unwrap();
        assert!(!optional.tls.unwrap().requires_client_certificate());

        let without_ca: ServerConfig = toml::from_str(
            "[tls]\ncert = \"s.pem\"\nkey = \"k.pem\"\nrequire_client_certificate = true\n",
        )
        .unwrap();
        let error = without_ca.validate().unwrap_err().to_string();
        assert!(error.contains("tls.client_ca"), "{error}");

        for bad in [
            "[tls]\ncert = \"s.pem\"\n",
            "[tls]\ncert = \"s.pem\"\nkey = \"k.pem\"\nmin_version = \"1.1\"\n",
            "[tls]\ncert = \"s.pem\"\nkey = \"k.pem\"\nprincipal_from = \"ou\"\n",
            "[tls]\ncert = \"s.pem\"\nkey = \"k.pem\"\nbogus = 1\n",
        ] {
            assert!(toml::from_str::<ServerConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_http_gateway_is_checked_like_the_native_listener() {
        let mut config = ServerConfig::default();
        assert!(config.http.enabled);
        assert_eq!(config.http.listen.to_string(), DEFAULT_HTTP_LISTEN);
        config.validate().unwrap();

        config.http.listen = "0.0.0.0:7172".parse().unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("refusing to listen for HTTP on 0.0.0.0:7172"),
            "{error}"
        );
        config.security.allow_anonymous = true;
        config.validate().unwrap();

        let mut config = ServerConfig::default();
        config.http.request_timeout_ms = u64::from(config.limits.max_fetch_wait_ms);
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("http.request_timeout_ms"), "{error}");

        let mut config = ServerConfig::default();
        config.http.max_body_bytes = 0;
        assert!(config.validate().is_err());
        config.http.enabled = false;
        config
            .validate()
            .expect("an HTTP listener that is off is not checked");
    }

    #[test]
    fn the_kafka_listener_is_off_by_default_and_checked_when_on() {
        let config = ServerConfig::default();
        assert!(config.kafka.listen.is_none());
        let config: ServerConfig = toml::from_str(
            "[kafka]\nlisten = \"127.0.0.1:9092\"\nadvertised = \"broker.example:9092\"\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.kafka.listen.unwrap().port(), 9092);
        let mut open = config.clone();
        open.kafka.listen = Some("0.0.0.0:9092".parse().unwrap());
        let error = open.validate().unwrap_err().to_string();
        assert!(error.contains("security.allow_anonymous"), "{error}");
        let mut with_sasl = open.clone();
        with_sasl.security.mechanisms = vec!["SCRAM-SHA-256".into()];
        with_sasl.validate().unwrap();
        open.security.allow_anonymous = true;
        open.validate().unwrap();
        let mut bad = config;
        bad.kafka.advertised = Some("no-port".into());
        let error = bad.validate().unwrap_err().to_string();
        assert!(error.contains("kafka.advertised"), "{error}");
        assert!(toml::from_str::<ServerConfig>("[kafka]\nport = 1\n").is_err());
    }

    #[test]
    fn the_http_section_parses() {
        let config: ServerConfig = toml::from_str(
            "[http]\nenabled = false\nlisten = \"127.0.0.1:9\"\nmax_body_bytes = 10\n",
        )
        .unwrap();
        assert!(!config.http.enabled);
        assert_eq!(config.http.listen.port(), 9);
        assert_eq!(config.http.max_body_bytes, 10);
        assert!(toml::from_str::<ServerConfig>("[http]\nlisten_port = 1\n").is_err());
    }
}
