//! An async client for `brokerd`.
//!
//! - [`Client`]: one pipelined connection, shared by clones, reconnected with backoff
//!   when it drops; typed admin calls (`create_topic`, `describe_topic`,
//!   `list_groups`, `server_stats`, ...) and the raw `request`.
//! - [`Producer`]: batches records per partition (by size and linger time),
//!   partitions by key the way the broker does, keeps several batches in flight, and
//!   gives a future per record that resolves to its partition and offset.
//! - [`Consumer`]: joins a consumer group, follows rebalances, yields records one by
//!   one (or as a `Stream`), and commits offsets of returned records only —
//!   automatically at an interval, or explicitly.
//! - [`QueueConsumer`]: a member of a queue group: messages pushed one at a time to
//!   any member, each acked, nacked (retried with backoff, then dead-lettered) or
//!   given more time.
//! - [`PartitionReader`] and [`Subscription`]: reading without a group, by fetch or
//!   by push.
//! - Service discovery: [`Client::register_instance`] (heartbeats in the background),
//!   [`Client::discover`], [`Client::watch_services`], [`RoundRobin`].
//! - TLS to the broker, with an optional client certificate: [`TlsConfig`] in
//!   [`ClientConfig::tls`].
//! - Security: [`Credentials`] (SCRAM-SHA-256 or PLAIN, set with
//!   [`ClientConfig::credentials`]; every connection authenticates after its
//!   handshake), [`Client::whoami`], and the administration of users
//!   ([`Client::create_user`], ...) and ACLs ([`Client::create_acls`], ...).
//!
//! The wire format lives in the [`protocol`] crate (re-exported); this crate is the
//! I/O around it. `docs/client.md` is the user guide.
//!
//! ```no_run
//! use client::{Client, ConsumerConfig, ProducerConfig, Record};
//!
//! # async fn demo() -> Result<(), client::ClientError> {
//! let client = Client::connect("127.0.0.1:7171").await?;
//! client.create_topic("greetings", 2, &[]).await?;
//!
//! let producer = client.producer("greetings", ProducerConfig::default()).await?;
//! let stored = producer.send(Record::new("hello").with_key("en")).await?.await?;
//! println!("stored at partition {} offset {:?}", stored.partition, stored.offset);
//!
//! let mut consumer = client.consumer("greetings", "printer", ConsumerConfig::default()).await?;
//! let record = consumer.next().await?;
//! assert_eq!(record.value.as_deref(), Some(&b"hello"[..]));
//! consumer.commit().await?;
//! consumer.close().await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
// Production code must not unwrap data it did not create; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod admin;
mod backoff;
mod connection;
mod consumer;
mod credentials;
mod error;
mod fetcher;
mod producer;
mod queue;
mod records;
mod registry;
mod routes;
mod security;
mod subscription;
pub mod tracing_context;

pub use backoff::Backoff;
pub use connection::{
    Client, ClientConfig, TlsConfig, DEFAULT_ADDR, DEFAULT_BACKOFF_INITIAL_MS,
    DEFAULT_BACKOFF_MAX_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_MAX_IN_FLIGHT_REQUESTS,
    DEFAULT_RECONNECT_MAX_ATTEMPTS, DEFAULT_REQUEST_TIMEOUT_MS, ENV_TLS_CA, ENV_TLS_CERT,
    ENV_TLS_KEY, ENV_TLS_SERVER_NAME, SUBSCRIPTION_BUFFER_DELIVERIES,
};
pub use consumer::{
    Consumer, ConsumerConfig, StartFrom, DEFAULT_AUTO_COMMIT_INTERVAL_MS,
    DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_SESSION_TIMEOUT_MS,
};
pub use credentials::{
    Credentials, CredentialsError, Mechanism, MECHANISM_ENV, PASSWORD_ENV, USER_ENV,
};
pub use error::{AuthFailure, ClientError};
pub use fetcher::{
    PartitionReader, DEFAULT_FETCH_MAX_BYTES, DEFAULT_FETCH_MAX_WAIT_MS,
    MAX_BUFFERED_CHUNKS_PER_PARTITION,
};
pub use producer::{
    Producer, ProducerConfig, Record, RecordMetadata, SendFuture, DEFAULT_ACK_TIMEOUT_MS,
    DEFAULT_BATCH_MAX_BYTES, DEFAULT_DELIVERY_TIMEOUT_MS, DEFAULT_LINGER_MS,
    DEFAULT_MAX_IN_FLIGHT_BATCHES, DEFAULT_MAX_QUEUED_RECORDS, DEFAULT_RETRY_BACKOFF_MS,
    IDEMPOTENT_MAX_IN_FLIGHT_BATCHES,
};
pub use protocol::ops::registry::{InstanceInfo, RegistryEvent, ServiceSummary};
pub use protocol::ops::routes::{RouteInfo, Routed};
pub use queue::{QueueConsumer, QueueConsumerConfig, QueueMessage, DEFAULT_MAX_IN_FLIGHT};
pub use records::{decode_records, ConsumerRecord};
pub use registry::{InstanceHandle, Registration, RoundRobin, ServiceWatch};
pub use security::USER_ITERATIONS;
pub use subscription::Subscription;

/// The wire protocol crate, for the request and response types the client returns.
pub use protocol;
pub use protocol::ops::group::{DescribeGroupResponse, GroupSummary};
pub use protocol::ops::produce::AckLevel;
pub use protocol::ops::security::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType, UserInfo,
    WhoAmIResponse, ANONYMOUS, ANY_PRINCIPAL, CLUSTER_RESOURCE,
};
pub use protocol::ops::stats::{ServerStatsResponse, TopicStatsResponse};
pub use protocol::ops::subscribe::{StartPosition, SubscribeTarget};
pub use protocol::ops::topic::{DescribeTopicResponse, TopicSummary};
pub use protocol::ErrorCode;
