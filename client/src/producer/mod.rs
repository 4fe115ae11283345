//! [`Producer`]: batches records per partition and keeps several batches in flight.
//!
//! `send` hands a record to a background task over a bounded queue (the bound is the
//! backpressure) and returns a [`SendFuture`] that resolves once the broker has
//! acknowledged the record's batch. The task:
//! - picks the partition: the record's own, else `partition_for_key` of its key (the
//!   broker's hash, so keyed records land where a `PartitionSelector::Key` would put
//!   them), else a *sticky* partition that moves on each time its batch is sent, so
//!   keyless records still make full batches;
//! - appends the record to that partition's open batch ([`Accumulator`], pure logic),
//!   sending the batch when it reaches `batch_max_bytes` or `linger` after it opened;
//! - keeps up to `max_in_flight_batches` Produce requests on the connection. The
//!   broker appends a connection's produces in arrival order and the task queues
//!   them in order, so one partition's batches are appended in the order sent.
//!
//! A failed batch fails each of its records' futures with the same error. An
//! idempotent producer (the default) first retries a batch whose answer was lost, for
//! up to `delivery_timeout`: each batch carries the producer's id and its sequence
//! number for the partition, so the broker recognises a retry of a batch it already
//! stored and answers with the original offset (see [`idempotence`]). A producer
//! with `idempotent(false)` retries nothing, since a Produce that timed out or lost
//! its connection may have been appended, and the caller decides.
//!
//! Four files, one job each, so that the batching rules can be read and tested apart
//! from the task that drives them:
//! - this one, the public API: [`ProducerConfig`], [`Record`], [`Client::producer`]
//!   and [`Producer`], whose methods check their arguments and queue a command;
//! - [`accumulator`]: partitioning and the open batch per partition, pure logic;
//! - [`sender`]: the background task, the one owner of the batches and of the
//!   Produce requests in flight;
//! - [`ack`]: the per-record [`SendFuture`] and how a batch's answer becomes each of
//!   its records' answers;
//! - [`idempotence`]: the producer id, the sequence numbers and which failures are
//!   retried, pure logic.

mod accumulator;
mod ack;
mod idempotence;
mod sender;

use std::time::Duration;

use bytes::Bytes;
use protocol::ops::produce::AckLevel;
use tokio::sync::{mpsc, oneshot};

use crate::connection::Client;
use crate::error::ClientError;

use accumulator::Accumulator;
pub use ack::{RecordMetadata, SendFuture};
use sender::{run, Command};

/// Default for [`ProducerConfig::batch_max_bytes`].
pub const DEFAULT_BATCH_MAX_BYTES: usize = 256 * 1024;
/// Default for [`ProducerConfig::linger`].
pub const DEFAULT_LINGER_MS: u64 = 5;
/// Default for [`ProducerConfig::max_in_flight_batches`] (an idempotent producer
/// keeps at most [`IDEMPOTENT_MAX_IN_FLIGHT_BATCHES`]).
pub const DEFAULT_MAX_IN_FLIGHT_BATCHES: usize = 8;
/// Default for [`ProducerConfig::ack_timeout`].
pub const DEFAULT_ACK_TIMEOUT_MS: u64 = 10_000;
/// Default for [`ProducerConfig::max_queued_records`].
pub const DEFAULT_MAX_QUEUED_RECORDS: usize = 8192;
/// Default for [`ProducerConfig::delivery_timeout`]: how long an idempotent producer
/// keeps retrying a batch (two minutes, Kafka's `delivery.timeout.ms`), long enough to
/// ride out a broker restart.
pub const DEFAULT_DELIVERY_TIMEOUT_MS: u64 = 120_000;
/// Default for [`ProducerConfig::retry_backoff`].
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 100;
/// Produce requests an idempotent producer keeps in flight, at most, whatever
/// [`ProducerConfig::max_in_flight_batches`] says: the broker remembers the last 5
/// batches of each producer per partition, and a retry must fall inside that window
/// to be recognised.
pub const IDEMPOTENT_MAX_IN_FLIGHT_BATCHES: usize = 5;

/// Settings of a [`Producer`].
///
/// ```
/// use std::time::Duration;
/// use client::{AckLevel, ProducerConfig};
///
/// let config = ProducerConfig::default()
///     .ack(AckLevel::Appended)
///     .linger(Duration::from_millis(20))
///     .batch_max_bytes(64 * 1024);
/// assert_eq!(config.max_in_flight_batches, 8);
/// ```
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// A batch is sent once it holds this many bytes (a single larger record is sent
    /// alone, up to the protocol's 16 MiB batch limit).
    pub batch_max_bytes: usize,
    /// A batch is sent at the latest this long after its first record arrived.
    pub linger: Duration,
    /// Produce requests awaiting their answer, at most.
    pub max_in_flight_batches: usize,
    /// When the broker acknowledges: `None` (accepted), `Appended`, `Durable` (fsynced).
    pub ack: AckLevel,
    /// How long the broker may take to reach the ack level before answering `timeout`.
    pub ack_timeout: Duration,
    /// Records handed to `send` and not yet in a batch, at most; `send` waits beyond.
    pub max_queued_records: usize,
    /// Tag every batch with a producer id and a per-partition sequence number, and
    /// retry a batch whose answer was lost (connection lost, no answer in time): the
    /// broker recognises a retry of a batch it stored and answers with the original
    /// offset instead of storing it twice. On by default; needs a broker speaking
    /// protocol version 2 (against an older one the producer works as with `false`).
    /// Keeps at most [`IDEMPOTENT_MAX_IN_FLIGHT_BATCHES`] batches in flight.
    pub idempotent: bool,
    /// How long an idempotent producer retries a batch before failing its records.
    pub delivery_timeout: Duration,
    /// How long an idempotent producer waits before retrying.
    pub retry_backoff: Duration,
}

impl Default for ProducerConfig {
    fn default() -> ProducerConfig {
        ProducerConfig {
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            linger: Duration::from_millis(DEFAULT_LINGER_MS),
            max_in_flight_batches: DEFAULT_MAX_IN_FLIGHT_BATCHES,
            ack: AckLevel::Durable,
            ack_timeout: Duration::from_millis(DEFAULT_ACK_TIMEOUT_MS),
            max_queued_records: DEFAULT_MAX_QUEUED_RECORDS,
            idempotent: true,
            delivery_timeout: Duration::from_millis(DEFAULT_DELIVERY_TIMEOUT_MS),
            retry_backoff: Duration::from_millis(DEFAULT_RETRY_BACKOFF_MS),
        }
    }
}

impl ProducerConfig {
    /// Sets [`batch_max_bytes`](Self::batch_max_bytes).
    pub fn batch_max_bytes(mut self, bytes: usize) -> ProducerConfig {
        self.batch_max_bytes = bytes;
        self
    }

    /// Sets [`linger`](Self::linger).
    pub fn linger(mut self, linger: Duration) -> ProducerConfig {
        self.linger = linger;
        self
    }

    /// Sets [`max_in_flight_batches`](Self::max_in_flight_batches).
    pub fn max_in_flight_batches(mut self, batches: usize) -> ProducerConfig {
        self.max_in_flight_batches = batches;
        self
    }

    /// Sets [`ack`](Self::ack).
    pub fn ack(mut self, ack: AckLevel) -> ProducerConfig {
        self.ack = ack;
        self
    }

    /// Sets [`ack_timeout`](Self::ack_timeout).
    pub fn ack_timeout(mut self, timeout: Duration) -> ProducerConfig {
        self.ack_timeout = timeout;
        self
    }

    /// Sets [`idempotent`](Self::idempotent).
    pub fn idempotent(mut self, idempotent: bool) -> ProducerConfig {
        self.idempotent = idempotent;
        self
    }

    /// Sets [`delivery_timeout`](Self::delivery_timeout).
    pub fn delivery_timeout(mut self, timeout: Duration) -> ProducerConfig {
        self.delivery_timeout = timeout;
        self
    }

    /// Sets [`retry_backoff`](Self::retry_backoff).
    pub fn retry_backoff(mut self, backoff: Duration) -> ProducerConfig {
        self.retry_backoff = backoff;
        self
    }

    /// Sets [`max_queued_records`](Self::max_queued_records).
    pub fn max_queued_records(mut self, records: usize) -> ProducerConfig {
        self.max_queued_records = records;
        self
    }
}

/// One record to produce.
///
/// ```
/// use client::Record;
///
/// let record = Record::new("order #1 paid")
///     .with_key("customer-42")
///     .with_header("trace-id", "abc123");
/// assert_eq!(record.key.as_deref(), Some(&b"customer-42"[..]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Records with the same key go to the same partition.
    pub key: Option<Bytes>,
    /// The payload; `None` makes a tombstone.
    pub value: Option<Bytes>,
    /// Headers: UTF-8 names, byte values.
    pub headers: Vec<(String, Bytes)>,
    /// Milliseconds since the Unix epoch; `None` means "now" when it is batched.
    pub timestamp_ms: Option<i64>,
    /// Send to this partition, whatever the key.
    pub partition: Option<u32>,
}

impl Record {
    /// A record with this value and nothing else.
    pub fn new(value: impl Into<Bytes>) -> Record {
        Record {
            value: Some(value.into()),
            ..Record::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Record {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Record {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the timestamp.
    pub fn with_timestamp_ms(mut self, timestamp_ms: i64) -> Record {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// Sends the record to this partition.
    pub fn with_partition(mut self, partition: u32) -> Record {
        self.partition = Some(partition);
        self
    }
}

/// Batches and sends records to one topic. Created by [`Client::producer`]; clones
/// share the same batches and background task.
///
/// ```no_run
/// use client::{Client, ProducerConfig, Record};
///
/// # async fn demo() -> Result<(), client::ClientError> {
/// let client = Client::connect("127.0.0.1:7171").await?;
/// let producer = client.producer("orders", ProducerConfig::default()).await?;
/// let mut acks = Vec::new();
/// for i in 0..1000 {
///     let record = Record::new(format!("order {i}")).with_key(format!("customer-{}", i % 10));
///     acks.push(producer.send(record).await?); // queued; batched with its neighbours
/// }
/// for ack in acks {
///     let stored = ack.await?;
///     println!("partition {} offset {:?}", stored.partition, stored.offset);
/// }
/// producer.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Producer {
    commands: mpsc::Sender<Command>,
    topic: String,
    partitions: u32,
}

impl Client {
    /// A producer for `topic`. Looks up the topic's partition count once, to partition
    /// by key on this side.
    pub async fn producer(
        &self,
        topic: &str,
        config: ProducerConfig,
    ) -> Result<Producer, ClientError> {
        let partitions = u32::try_from(self.describe_topic(topic).await?.partitions.len())
            .map_err(|_| ClientError::Protocol("absurd partition count".into()))?;
        if partitions == 0 {
            return Err(ClientError::Protocol(format!(
                "topic {topic:?} reports no partitions"
            )));
        }
        let (commands, rx) = mpsc::channel(config.max_queued_records.max(1));
        let accumulator = Accumulator::new(config.batch_max_bytes, config.linger, partitions);
        tokio::spawn(run(
            self.clone(),
            topic.to_string(),
            config,
            rx,
            accumulator,
        ));
        Ok(Producer {
            commands,
            topic: topic.to_string(),
            partitions,
        })
    }
}

impl Producer {
    /// The topic this producer writes to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The topic's partition count (as of the producer's creation).
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Queues a record. Waits only while the queue is full; the returned future
    /// resolves once the broker acknowledged the record (at the configured level).
    pub async fn send(&self, record: Record) -> Result<SendFuture, ClientError> {
        if let Some(p) = record.partition {
            if p >= self.partitions {
                return Err(ClientError::InvalidArgument(format!(
                    "topic {:?} has {} partitions; partition {p} does not exist",
                    self.topic, self.partitions
                )));
            }
        }
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Send(record, tx))
            .await
            .map_err(|_| ClientError::Closed("the producer"))?;
        Ok(SendFuture { rx })
    }

    /// Sends every open batch now and waits until every record queued before this
    /// call has its answer. Individual failures are reported by the records' futures.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Flush(tx))
            .await
            .map_err(|_| ClientError::Closed("the producer"))?;
        rx.await.map_err(|_| ClientError::Closed("the producer"))
    }

    /// Flushes, then releases this handle. The background task ends once every clone
    /// is closed or dropped (dropping also sends what is queued, without waiting).
    pub async fn close(self) -> Result<(), ClientError> {
        self.flush().await
    }
}
