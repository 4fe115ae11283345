//! brokerd's Kafka-protocol listener (`--kafka-listen`), through librdkafka and the
//! `rdkafka` crate (feature `kafka`, linked dynamically against the system's
//! librdkafka, so a default build needs neither).
//!
//! The same topics, durability and acknowledgement levels as the native driver, over
//! the other protocol, so the two can be compared in one run (`bench/kafka.sh`):
//! - Topics are made with CreateTopics (librdkafka's admin client) carrying the
//!   brokerd config `durability`, which the listener passes through unchanged.
//! - A producer is one `ThreadedProducer` (one connection): `--ack` none / appended /
//!   durable is `acks` 0 / 1 / all; a workload batch of `--batch` records is queued at
//!   once and librdkafka's `batch.num.messages` and `batch.size` are set so that it
//!   leaves as one ProduceRequest (`linger.ms` only bounds the wait for the rest of a
//!   batch); `--in-flight` is `max.in.flight.requests.per.connection`. Not idempotent,
//!   like the native raw producer. A workload batch's records share one
//!   acknowledgement ([`BatchAck`]) that librdkafka's delivery callback counts down:
//!   a `FutureProducer` would allocate a channel and a future per record, and on 2
//!   cores that client-side cost, not the protocol, set the pace (its malloc and
//!   futures were a fifth of all CPU in `perf record -a`).
//! - A consumer assigns its partitions directly (the same split as the native raw
//!   consumer, [`assigned_partitions`]): no group coordination, no commits, the fetch
//!   path alone. CRCs are checked, as the native consumer checks them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::FutureExt;
use futures_util::stream::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::driver::{
    AckFuture, ConsumerHandle, ConsumerSpec, Driver, DriverError, OutBatch, ProducerHandle, StartAt,
};
use crate::payload::template;
use crate::workload::{assigned_partitions, Ack, Workload};

/// How long librdkafka may take to deliver a message (queueing, retries, the ack).
pub const DELIVERY_TIMEOUT_MS: u64 = 30_000;
/// How long an admin request or a metadata or watermark query may take.
pub const ADMIN_TIMEOUT_MS: u64 = 10_000;
/// The longest a producer waits for the rest of a batch it has begun. A batch leaves
/// as soon as it holds `batch.num.messages` (`--batch`) records, so this only holds a
/// batch whose records are still being queued: with 1 ms, queueing 1,000 records on a
/// busy machine outlasted it, and each workload batch left as two or three requests.
pub const LINGER_MS: u64 = 10;
/// Largest fetch answer asked for, per partition (the native driver's figure).
pub const FETCH_MAX_PARTITION_BYTES: usize = 4 * 1024 * 1024;
/// How long the broker may hold a fetch that found nothing (a long poll).
pub const FETCH_WAIT_MAX_MS: u64 = 100;
/// Per-record overhead allowed for in `batch.size`: a Kafka v2 record's varints,
/// attributes and deltas are well under this for records without key or headers.
const RECORD_OVERHEAD_BYTES: usize = 32;
/// RecordBatch v2 header bytes (allowed once per batch in `batch.size`).
const BATCH_HEADER_BYTES: usize = 61;
/// Messages taken per `receive` once one has arrived.
const MESSAGES_PER_RECEIVE: usize = 4096;

fn peer<E: std::fmt::Display>(e: E) -> DriverError {
    DriverError::Peer {
        peer: "kafka",
        message: e.to_string(),
    }
}

/// Kafka's `acks` for a workload's acknowledgement level.
pub fn acks(ack: Ack) -> &'static str {
    match ack {
        Ack::None => "0",
        Ack::Appended => "1",
        Ack::Durable => "all",
    }
}

/// Drives brokerd's Kafka listener at `addr` (`host:port`).
#[derive(Debug, Clone)]
pub struct KafkaDriver {
    addr: String,
}

impl KafkaDriver {
    /// A driver for the Kafka listener at `addr`.
    pub fn new(addr: impl Into<String>) -> KafkaDriver {
        KafkaDriver { addr: addr.into() }
    }

    fn config(&self, role: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.addr)
            .set("client.id", format!("broker-bench/{role}"))
            // One node on loopback: the default 1 s retry backoff only hides errors.
            .set("retry.backoff.ms", "10");
        config
    }

    fn admin(&self) -> Result<AdminClient<DefaultClientContext>, DriverError> {
        self.config("admin").create().map_err(peer)
    }

    /// The low and high watermarks (first and next offset) of each `(topic, partition)`,
    /// in order, asked with ListOffsets.
    async fn watermarks(
        &self,
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<(i64, i64)>, DriverError> {
        let config = self.config("admin");
        // librdkafka's watermark queries block: off the runtime's threads.
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create().map_err(peer)?;
            let timeout = Duration::from_millis(ADMIN_TIMEOUT_MS);
            partitions
                .iter()
                .map(|(topic, partition)| {
                    consumer
                        .fetch_watermarks(topic, *partition, timeout)
                        .map_err(peer)
                })
                .collect()
        })
        .await
        .map_err(peer)?
    }

    fn admin_options() -> AdminOptions {
        AdminOptions::new().request_timeout(Some(Duration::from_millis(ADMIN_TIMEOUT_MS)))
    }
}

/// The producer settings for `workload`: acks, and batches of exactly `--batch`
/// records per ProduceRequest.
fn producer_config(mut config: ClientConfig, workload: &Workload) -> ClientConfig {
    let record_bytes = workload.message_size_bytes + RECORD_OVERHEAD_BYTES;
    let batch_bytes = BATCH_HEADER_BYTES + record_bytes * workload.batch_records;
    // Every batch the workload may have in flight, queued in librdkafka at once.
    let queued_messages = workload.batch_records * (workload.in_flight_batches + 1);
    let queued_kbytes = (record_bytes * queued_messages).div_ceil(1024);
    config
        .set("acks", acks(workload.ack))
        .set("enable.idempotence", "false")
        .set("compression.type", "none")
        .set("linger.ms", LINGER_MS.to_string())
        .set("batch.num.messages", workload.batch_records.to_string())
        .set("batch.size", batch_bytes.to_string())
        // A ProduceRequest must be able to carry a whole batch (the default is 1 MB).
        .set(
            "message.max.bytes",
            (2 * batch_bytes).max(1_000_000).to_string(),
        )
        .set(
            "max.in.flight.requests.per.connection",
            workload.in_flight_batches.to_string(),
        )
        .set("queue.buffering.max.messages", queued_messages.to_string())
        .set("queue.buffering.max.kbytes", queued_kbytes.to_string())
        .set("delivery.timeout.ms", DELIVERY_TIMEOUT_MS.to_string());
    config
}

impl Driver for KafkaDriver {
    type Producer = KafkaProducer;
    type Consumer = KafkaConsumer;

    fn name(&self) -> &'static str {
        "brokerd over Kafka"
    }

    async fn durability_note(&self, workload: &Workload) -> String {
        let (_, version) = rdkafka::util::get_rdkafka_version();
        format!(
            "topic durability={}, acks={} (Kafka protocol, librdkafka {version})",
            workload.durability,
            acks(workload.ack),
        )
    }

    async fn create_topics(
        &self,
        topics: &[String],
        workload: &Workload,
    ) -> Result<(), DriverError> {
        let admin = self.admin()?;
        let options = Self::admin_options();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        // A leftover of an earlier run would skew counts; absence is fine.
        let _ = admin.delete_topics(&names, &options).await;
        let partitions = i32::try_from(workload.partitions)
            .map_err(|_| DriverError::Unsupported("too many partitions for Kafka".into()))?;
        let durability = workload.durability.to_string();
        let new_topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|name| {
                NewTopic::new(name, partitions, TopicReplication::Fixed(1))
                    .set("durability", &durability)
            })
            .collect();
        for result in admin
            .create_topics(&new_topics, &options)
            .await
            .map_err(peer)?
        {
            result.map_err(|(topic, code)| peer(format!("creating topic {topic}: {code}")))?;
        }
        Ok(())
    }

    async fn producer(
        &self,
        topic: &str,
        workload: &Workload,
    ) -> Result<KafkaProducer, DriverError> {
        let producer: ThreadedProducer<AckContext> =
            producer_config(self.config("producer"), workload)
                .create_with_context(AckContext)
                .map_err(peer)?;
        let producer = Arc::new(producer);
        // librdkafka connects lazily: without this the first batches wait for the
        // connection, ApiVersions and the topic's metadata (about a second in all),
        // where the native driver has connected before the run starts.
        let warm = producer.clone();
        let topic_name = topic.to_string();
        tokio::task::spawn_blocking(move || {
            warm.client()
                .fetch_metadata(Some(&topic_name), Duration::from_millis(ADMIN_TIMEOUT_MS))
                .map(drop)
                .map_err(peer)
        })
        .await
        .map_err(peer)??;
        Ok(KafkaProducer {
            producer,
            topic: topic.to_string(),
            payload: template(workload.message_size_bytes),
        })
    }

    async fn consumer(
        &self,
        spec: ConsumerSpec,
        workload: &Workload,
    ) -> Result<KafkaConsumer, DriverError> {
        let mut config = self.config(&format!("{}-{}", spec.group, spec.member));
        config
            // Needed by librdkafka for a consumer; with assign() it joins no group.
            .set("group.id", &spec.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("check.crcs", "true")
            .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS.to_string())
            .set(
                "max.partition.fetch.bytes",
                FETCH_MAX_PARTITION_BYTES.to_string(),
            );
        let consumer: StreamConsumer = config.create().map_err(peer)?;
        let mut partitions = Vec::new();
        for (t, p) in assigned_partitions(
            workload.topics,
            workload.partitions,
            spec.member,
            spec.members,
        ) {
            let partition = i32::try_from(p)
                .map_err(|_| DriverError::Unsupported("partition out of Kafka's range".into()))?;
            partitions.push((spec.topics[t as usize].clone(), partition));
        }
        // The end is resolved here, not left to librdkafka (Offset::End), which looks it
        // up after assign() returns: producers start as soon as this returns, and their
        // first messages would fall before a late-resolved end.
        let starts: Vec<Offset> = match spec.start {
            StartAt::Earliest => vec![Offset::Beginning; partitions.len()],
            StartAt::Latest => self
                .watermarks(partitions.clone())
                .await?
                .into_iter()
                .map(|(_, high)| Offset::Offset(high))
                .collect(),
        };
        let mut assignment = TopicPartitionList::new();
        for ((topic, partition), start) in partitions.iter().zip(starts) {
            assignment
                .add_partition_offset(topic, *partition, start)
                .map_err(peer)?;
        }
        consumer.assign(&assignment).map_err(peer)?;
        Ok(KafkaConsumer { consumer })
    }

    async fn stored_messages(&self, topics: &[String]) -> Result<Option<u64>, DriverError> {
        let config = self.config("admin");
        let topics = topics.to_vec();
        // librdkafka's metadata queries block: off the runtime's threads.
        let partitions = tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create().map_err(peer)?;
            let timeout = Duration::from_millis(ADMIN_TIMEOUT_MS);
            let mut partitions = Vec::new();
            for topic in &topics {
                let metadata = consumer
                    .fetch_metadata(Some(topic), timeout)
                    .map_err(peer)?;
                for described in metadata.topics() {
                    for partition in described.partitions() {
                        partitions.push((topic.clone(), partition.id()));
                    }
                }
            }
            Ok::<_, DriverError>(partitions)
        })
        .await
        .map_err(peer)??;
        let total = self
            .watermarks(partitions)
            .await?
            .into_iter()
            .map(|(low, high)| u64::try_from(high.saturating_sub(low)).unwrap_or(0))
            .sum();
        Ok(Some(total))
    }

    async fn delete_topics(&self, topics: &[String]) -> Result<(), DriverError> {
        let admin = self.admin()?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        for result in admin
            .delete_topics(&names, &Self::admin_options())
            .await
            .map_err(peer)?
        {
            result.map_err(|(topic, code)| peer(format!("deleting topic {topic}: {code}")))?;
        }
        Ok(())
    }
}

/// One workload batch's acknowledgement, shared by its records: how many librdkafka
/// has yet to report, then the first failure and the waiting `send`.
pub struct BatchAck {
    remaining: AtomicU32,
    outcome: Mutex<AckOutcome>,
}

/// What a batch's last delivery report sends, and to whom.
struct AckOutcome {
    failure: Option<String>,
    done: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
}

/// Counts each delivery report against its batch's [`BatchAck`].
pub struct AckContext;

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Arc<BatchAck>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Arc<BatchAck>) {
        if let Err((error, _)) = result {
            let mut outcome = ack.outcome.lock().unwrap_or_else(PoisonError::into_inner);
            outcome.failure.get_or_insert_with(|| error.to_string());
        }
        if ack.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut outcome = ack.outcome.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(done) = outcome.done.take() {
                let _ = done.send(outcome.failure.take().map_or(Ok(()), Err));
            }
        }
    }
}

/// A librdkafka producer on its own connection.
pub struct KafkaProducer {
    producer: Arc<ThreadedProducer<AckContext>>,
    topic: String,
    /// The payload buffer reused for every message (librdkafka copies it).
    payload: Vec<u8>,
}

impl ProducerHandle for KafkaProducer {
    async fn send(&mut self, batch: OutBatch) -> Result<AckFuture, DriverError> {
        let partition = i32::try_from(batch.partition)
            .map_err(|_| DriverError::Unsupported("partition out of Kafka's range".into()))?;
        if batch.count == 0 {
            return Ok(async { Ok(()) }.boxed());
        }
        let (done, acked) = tokio::sync::oneshot::channel();
        let ack = Arc::new(BatchAck {
            remaining: AtomicU32::new(batch.count),
            outcome: Mutex::new(AckOutcome {
                failure: None,
                done: Some(done),
            }),
        });
        for i in 0..batch.count {
            let payload = batch.payload(i, &mut self.payload);
            let mut record = BaseRecord::<(), [u8], _>::with_opaque_to(&self.topic, ack.clone())
                .partition(partition)
                .payload(payload);
            // The queue is sized for every batch in flight; if it is full anyway,
            // wait for librdkafka to send some rather than fail the run.
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => return Err(peer(e)),
                }
            }
        }
        Ok(async move {
            match acked.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(peer(e)),
                Err(_) => Err(peer("the producer was closed before the ack")),
            }
        }
        .boxed())
    }

    async fn close(self) -> Result<(), DriverError> {
        let producer = self.producer;
        tokio::task::spawn_blocking(move || {
            producer
                .flush(Duration::from_millis(DELIVERY_TIMEOUT_MS))
                .map_err(peer)
        })
        .await
        .map_err(peer)?
    }
}

/// A librdkafka consumer of directly assigned partitions.
pub struct KafkaConsumer {
    consumer: StreamConsumer,
}

impl ConsumerHandle for KafkaConsumer {
    async fn receive(
        &mut self,
        max_wait: Duration,
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(), DriverError> {
        let mut stream = self.consumer.stream();
        let Ok(first) = tokio::time::timeout(max_wait, stream.next()).await else {
            return Ok(());
        };
        let Some(first) = first else {
            return Err(peer("the consumer's message stream ended"));
        };
        sink(first.map_err(peer)?.payload().unwrap_or_default());
        for _ in 1..MESSAGES_PER_RECEIVE {
            match stream.next().now_or_never() {
                Some(Some(message)) => sink(message.map_err(peer)?.payload().unwrap_or_default()),
                _ => break,
            }
        }
        Ok(())
    }

    async fn close(self) -> Result<(), DriverError> {
        Ok(())
    }
}
