//! Our broker, through the `client` crate.
//!
//! Two ways to produce and consume, chosen with `--api`:
//! - `raw` (default): producers build each batch themselves with
//!   [`protocol::batch::BatchBuilder`] and send it with `Client::produce_batch`;
//!   consumers pipeline one long-polling `Fetch` per assigned partition and iterate
//!   the returned batches in place (CRC checked). This is what a high-performance
//!   client does, and measures the broker rather than per-record client overhead.
//! - `client`: the client library's batching [`client::Producer`] (one `send` future
//!   per record) and group [`client::Consumer`] (`next()` per record), as an
//!   application would use them.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
pub use client::Credentials;
use client::{
    AckLevel, Client, ClientConfig, ConsumerConfig, ConsumerRecord, Producer, ProducerConfig,
    QueueConsumer, QueueConsumerConfig, QueueMessage, Record, StartFrom, StartPosition,
    SubscribeTarget, TlsConfig,
};
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{FuturesUnordered, StreamExt};
use protocol::batch::{
    split_batches, BatchBuilder, BatchView, BATCH_HEADER_BYTES, MIN_RECORD_BYTES,
};
use protocol::ops::fetch::FetchResponse;
use protocol::ops::group::GroupStart;
use protocol::ops::produce::PartitionSelector;
use protocol::ops::subscribe::Delivery;

use crate::driver::{
    AckFuture, ConsumerHandle, ConsumerSpec, Driver, DriverError, OutBatch, ProducerHandle, StartAt,
};
use crate::payload::template;
use crate::workload::{assigned_partitions, Ack, Workload, WorkloadKind};

/// How long the broker may take to acknowledge a produce before answering `timeout`.
pub const PRODUCE_ACK_TIMEOUT_MS: u64 = 30_000;
/// Largest fetch answer asked for, per partition.
pub const FETCH_MAX_BYTES: u32 = 4 * 1024 * 1024;
/// Pipelined requests per connection; above any in-flight setting a run uses.
pub const MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION: usize = 2048;

/// Which client API drives the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Api {
    /// Raw record batches and fetches.
    Raw,
    /// The client library's `Producer` (idempotent, its default) and group `Consumer`.
    Client,
    /// The same with `ProducerConfig::idempotent(false)`: the A/B of what idempotence
    /// costs (a tag per batch, the producer journal, at most 5 batches in flight).
    ClientPlain,
    /// Raw record batches; each consumer joins one group per topic and takes what the
    /// broker pushes to a group subscription (Subscribe with a group target), so a
    /// partition without data costs no request, however many there are.
    Push,
}

/// Drives a running `brokerd` at `addr`.
#[derive(Debug, Clone)]
pub struct BrokerdDriver {
    addr: String,
    api: Api,
    /// TLS to the broker; `None`: plaintext.
    tls: Option<TlsConfig>,
    /// Every connection logs in with these; `None`: no authentication.
    credentials: Option<Credentials>,
}

impl BrokerdDriver {
    /// A driver for the broker at `addr`, using `api`.
    pub fn new(addr: impl Into<String>, api: Api) -> BrokerdDriver {
        BrokerdDriver {
            addr: addr.into(),
            api,
            tls: None,
            credentials: None,
        }
    }

    /// Logs every connection in with `credentials` (a broker with `[security]`).
    pub fn with_credentials(mut self, credentials: Credentials) -> BrokerdDriver {
        self.credentials = Some(credentials);
        self
    }

    /// Connects over TLS, as `tls` says (every connection of the run).
    pub fn with_tls(mut self, tls: TlsConfig) -> BrokerdDriver {
        self.tls = Some(tls);
        self
    }

    async fn connect(&self, name: &str) -> Result<Client, DriverError> {
        let config = ClientConfig::default()
            .client_name(format!("broker-bench/{name}"))
            .request_timeout(Duration::from_millis(PRODUCE_ACK_TIMEOUT_MS))
            .max_in_flight_requests(MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION);
        let config = match &self.tls {
            Some(tls) => config.tls(tls.clone()),
            None => config,
        };
        let config = match &self.credentials {
            Some(credentials) => config.credentials(credentials.clone()),
            None => config,
        };
        Ok(Client::connect_with(self.addr.clone(), config).await?)
    }
}

fn ack_level(ack: Ack) -> AckLevel {
    match ack {
        Ack::None => AckLevel::None,
        Ack::Appended => AckLevel::Appended,
        Ack::Durable => AckLevel::Durable,
    }
}

impl Driver for BrokerdDriver {
    type Producer = BrokerdProducer;
    type Consumer = BrokerdConsumer;

    fn name(&self) -> &'static str {
        // The report says which transport was measured.
        match (&self.tls, &self.credentials) {
            (Some(_), Some(_)) => "brokerd over TLS, authenticated",
            (Some(_), None) => "brokerd over TLS",
            (None, Some(_)) => "brokerd, authenticated",
            (None, None) => "brokerd",
        }
    }

    async fn durability_note(&self, workload: &Workload) -> String {
        format!(
            "topic durability={}, ack={:?} ({})",
            workload.durability,
            workload.ack,
            match self.api {
                Api::Raw => "raw batches",
                Api::Client => "client Producer/Consumer",
                Api::ClientPlain => "client Producer (not idempotent)/Consumer",
                Api::Push => "raw batches, pushed to group subscriptions",
            }
        )
        .to_lowercase()
    }

    async fn create_topics(
        &self,
        topics: &[String],
        workload: &Workload,
    ) -> Result<(), DriverError> {
        let client = self.connect("admin").await?;
        let durability = workload.durability.to_string();
        for topic in topics {
            // A leftover of an earlier run would skew counts; absence is fine.
            let _ = client.delete_topic(topic).await;
            client
                .create_topic(
                    topic,
                    workload.partitions,
                    &[("durability", durability.as_str())],
                )
                .await?;
        }
        Ok(())
    }

    async fn producer(
        &self,
        topic: &str,
        workload: &Workload,
    ) -> Result<BrokerdProducer, DriverError> {
        let client = self.connect("producer").await?;
        let ack = ack_level(workload.ack);
        let payload = template(workload.message_size_bytes);
        let inner = match self.api {
            Api::Raw | Api::Push => ProducerKind::Raw { client },
            Api::Client | Api::ClientPlain => {
                let record_bytes = MIN_RECORD_BYTES + workload.message_size_bytes;
                let config = ProducerConfig::default()
                    .ack(ack)
                    // Exactly --batch records fill a batch, so batches close by size, not linger.
                    .batch_max_bytes(BATCH_HEADER_BYTES + workload.batch_records * record_bytes)
                    .linger(Duration::from_millis(1))
                    .max_in_flight_batches(workload.in_flight_batches)
                    .max_queued_records(workload.batch_records * workload.in_flight_batches)
                    .ack_timeout(Duration::from_millis(PRODUCE_ACK_TIMEOUT_MS))
                    .idempotent(self.api == Api::Client);
                ProducerKind::Library(client.producer(topic, config).await?)
            }
        };
        Ok(BrokerdProducer {
            inner,
            topic: topic.to_string(),
            ack,
            payload,
            trace: workload.trace,
            traced: 0,
        })
    }

    async fn consumer(
        &self,
        spec: ConsumerSpec,
        workload: &Workload,
    ) -> Result<BrokerdConsumer, DriverError> {
        let client = self
            .connect(&format!("{}-{}", spec.group, spec.member))
            .await?;
        if workload.kind == WorkloadKind::Queue {
            if spec.topics.len() != 1 {
                return Err(DriverError::Unsupported(
                    "--workload queue reads one topic per consumer: use --topics 1".into(),
                ));
            }
            let config = QueueConsumerConfig {
                max_in_flight: QUEUE_MAX_IN_FLIGHT,
                ..QueueConsumerConfig::default()
            };
            let queue = client
                .queue_consumer(&spec.topics[0], &spec.group, config)
                .await?;
            return Ok(BrokerdConsumer::Queue(Box::new(queue)));
        }
        match self.api {
            Api::Raw => {
                let mut positions = HashMap::new();
                for (t, p) in assigned_partitions(
                    workload.topics,
                    workload.partitions,
                    spec.member,
                    spec.members,
                ) {
                    let topic = spec.topics[t as usize].clone();
                    let offset = match spec.start {
                        StartAt::Earliest => 0,
                        StartAt::Latest => {
                            let described = client.describe_topic(&topic).await?;
                            described
                                .partitions
                                .iter()
                                .find(|d| d.partition == p)
                                .map_or(0, |d| d.end_offset)
                        }
                    };
                    positions.insert((topic, p), offset);
                }
                let mut consumer = RawConsumer {
                    client,
                    positions,
                    in_flight: FuturesUnordered::new(),
                };
                let keys: Vec<(String, u32)> = consumer.positions.keys().cloned().collect();
                for key in keys {
                    consumer.start_fetch(key);
                }
                Ok(BrokerdConsumer::Raw(consumer))
            }
            Api::Push => Ok(BrokerdConsumer::Push(
                PushConsumer::start(client, &spec).await?,
            )),
            Api::Client | Api::ClientPlain => {
                if spec.topics.len() != 1 {
                    return Err(DriverError::Unsupported(
                        "--api client reads one topic per consumer: use --topics 1".into(),
                    ));
                }
                drop(client);
                Ok(BrokerdConsumer::Library(
                    LibraryConsumer::start(self.clone(), spec).await?,
                ))
            }
        }
    }

    fn supports_queue(&self) -> bool {
        true
    }

    fn settle_delay(&self, members: u32) -> Duration {
        match self.api {
            Api::Client | Api::ClientPlain if members > 1 => {
                Duration::from_millis(3 * LIBRARY_HEARTBEAT_INTERVAL_MS)
            }
            // Each join rebalances; the subscriptions follow the group on their own.
            Api::Push if members > 1 => Duration::from_millis(3 * PUSH_HEARTBEAT_INTERVAL_MS),
            _ => Duration::ZERO,
        }
    }

    async fn stored_messages(&self, topics: &[String]) -> Result<Option<u64>, DriverError> {
        let client = self.connect("admin").await?;
        let mut total = 0;
        for topic in topics {
            let described = client.describe_topic(topic).await?;
            total += described
                .partitions
                .iter()
                .map(|p| p.end_offset.saturating_sub(p.start_offset))
                .sum::<u64>();
        }
        Ok(Some(total))
    }

    async fn delete_topics(&self, topics: &[String]) -> Result<(), DriverError> {
        let client = self.connect("admin").await?;
        for topic in topics {
            client.delete_topic(topic).await?;
        }
        Ok(())
    }
}

enum ProducerKind {
    Raw { client: Client },
    Library(Producer),
}

/// A producer connection to brokerd.
pub struct BrokerdProducer {
    inner: ProducerKind,
    topic: String,
    ack: AckLevel,
    /// The payload buffer reused for every message.
    payload: Vec<u8>,
    /// Give every message a traceparent.
    trace: bool,
    /// Messages traced so far (each gets its own trace id).
    traced: u64,
}

impl ProducerHandle for BrokerdProducer {
    async fn send(&mut self, batch: OutBatch) -> Result<AckFuture, DriverError> {
        let timestamp_ms = wall_clock_ms();
        match &self.inner {
            ProducerKind::Raw { client } => {
                let record_bytes = MIN_RECORD_BYTES + self.payload.len();
                let mut builder = BatchBuilder::with_capacity(
                    BATCH_HEADER_BYTES + record_bytes * batch.count as usize,
                );
                for i in 0..batch.count {
                    let traceparent = self.trace.then(|| {
                        self.traced += 1;
                        // Unique per producer and message: producer index in bits
                        // 64..96, its count below, bit 100 so the id is never zero.
                        let trace_id = (1u128 << 100)
                            | (u128::from(batch.producer) << 64)
                            | u128::from(self.traced);
                        format!("00-{trace_id:032x}-{:016x}-01", self.traced)
                    });
                    let headers: Vec<(&str, &[u8])> = traceparent
                        .iter()
                        .map(|t| ("traceparent", t.as_bytes()))
                        .collect();
                    let value = batch.payload(i, &mut self.payload);
                    builder
                        .push(timestamp_ms, None, Some(value), &headers)
                        .map_err(|e| {
                            DriverError::Unsupported(format!("cannot build a batch: {e}"))
                        })?;
                }
                let bytes = builder.finish();
                let (client, topic, ack) = (client.clone(), self.topic.clone(), self.ack);
                Ok(async move {
                    client
                        .produce_batch(
                            &topic,
                            PartitionSelector::Partition(batch.partition),
                            ack,
                            Duration::from_millis(PRODUCE_ACK_TIMEOUT_MS),
                            bytes,
                        )
                        .await?;
                    Ok(())
                }
                .boxed())
            }
            ProducerKind::Library(producer) => {
                let mut acks = Vec::with_capacity(batch.count as usize);
                for i in 0..batch.count {
                    let value = Bytes::copy_from_slice(batch.payload(i, &mut self.payload));
                    let record = Record::new(value).with_partition(batch.partition);
                    acks.push(producer.send(record).await?);
                }
                Ok(async move {
                    for ack in acks {
                        ack.await?;
                    }
                    Ok(())
                }
                .boxed())
            }
        }
    }

    async fn close(self) -> Result<(), DriverError> {
        if let ProducerKind::Library(producer) = self.inner {
            producer.close().await?;
        }
        Ok(())
    }
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

type FetchDone = (
    (String, u32),
    u64,
    Result<FetchResponse, client::ClientError>,
);

/// Fetches assigned partitions itself, one long poll in flight per partition.
pub struct RawConsumer {
    client: Client,
    positions: HashMap<(String, u32), u64>,
    in_flight: FuturesUnordered<BoxFuture<'static, FetchDone>>,
}

impl RawConsumer {
    fn start_fetch(&mut self, key: (String, u32)) {
        let Some(&offset) = self.positions.get(&key) else {
            return;
        };
        let client = self.client.clone();
        self.in_flight.push(
            async move {
                let result = client
                    .fetch(
                        &key.0,
                        key.1,
                        offset,
                        FETCH_MAX_BYTES,
                        Duration::from_millis(100),
                    )
                    .await;
                (key, offset, result)
            }
            .boxed(),
        );
    }

    /// Passes the records at or after `offset` in `answer` to `sink`; returns the next
    /// offset to fetch.
    fn deliver(
        key: &(String, u32),
        offset: u64,
        answer: FetchResponse,
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<u64, DriverError> {
        let corrupt = |e: protocol::batch::BatchError| DriverError::Corrupt {
            what: format!("{} partition {}", key.0, key.1),
            message: e.to_string(),
        };
        let mut next = offset;
        for batch in split_batches(answer.batches) {
            let batch = batch.map_err(corrupt)?;
            let view = BatchView::new(&batch).map_err(corrupt)?;
            // The client library checks every batch's CRC; so does this consumer.
            view.validate().map_err(corrupt)?;
            for record in view.records() {
                let record = record.map_err(corrupt)?;
                if record.offset < next {
                    continue;
                }
                if let Some(value) = record.value {
                    sink(value);
                }
                next = record.offset + 1;
            }
            next = next.max(view.header().next_offset());
        }
        Ok(next)
    }
}

/// A consumer connection to brokerd.
pub enum BrokerdConsumer {
    /// `--api raw`.
    Raw(RawConsumer),
    /// `--api client`.
    Library(LibraryConsumer),
    /// `--workload queue`: a queue-group member that acks every message.
    Queue(Box<QueueConsumer>),
    /// `--api push`.
    Push(PushConsumer),
}

/// Unsettled messages a queue consumer holds at most (its credit).
pub const QUEUE_MAX_IN_FLIGHT: u32 = 1024;

/// Records taken from the library consumer per `receive` once one has arrived.
const LIBRARY_RECORDS_PER_RECEIVE: usize = 4096;

impl ConsumerHandle for BrokerdConsumer {
    async fn receive(
        &mut self,
        max_wait: Duration,
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(), DriverError> {
        match self {
            BrokerdConsumer::Raw(raw) => {
                if raw.in_flight.is_empty() {
                    tokio::time::sleep(max_wait).await;
                    return Ok(());
                }
                let Ok(Some((key, offset, result))) =
                    tokio::time::timeout(max_wait, raw.in_flight.next()).await
                else {
                    return Ok(());
                };
                let next = RawConsumer::deliver(&key, offset, result?, sink)?;
                raw.positions.insert(key.clone(), next);
                raw.start_fetch(key);
                Ok(())
            }
            BrokerdConsumer::Push(push) => {
                let Ok(next) = tokio::time::timeout(max_wait, push.deliveries.recv()).await else {
                    return Ok(());
                };
                let delivery = next.ok_or_else(|| {
                    DriverError::Unsupported("every push subscription ended".into())
                })??;
                client::decode_records(
                    delivery.partition,
                    delivery.batches,
                    delivery.from_offset,
                    Some(delivery.to_offset),
                    &mut push.records,
                )?;
                for record in push.records.drain(..) {
                    if let Some(value) = &record.value {
                        sink(value);
                    }
                }
                Ok(())
            }
            BrokerdConsumer::Queue(queue) => {
                let Ok(first) = tokio::time::timeout(max_wait, queue.next()).await else {
                    return Ok(());
                };
                let mut messages: Vec<QueueMessage> = first?.into_iter().collect();
                // `next()` is cancel-safe, so polling it once and dropping it loses nothing.
                while messages.len() < LIBRARY_RECORDS_PER_RECEIVE {
                    match queue.next().now_or_never() {
                        Some(Ok(Some(message))) => messages.push(message),
                        Some(Err(e)) => return Err(e.into()),
                        _ => break,
                    }
                }
                for message in &messages {
                    if let Some(value) = message.value() {
                        sink(value);
                    }
                }
                // Every message is acknowledged on its own (the acks are pipelined).
                for result in
                    futures_util::future::join_all(messages.into_iter().map(QueueMessage::ack))
                        .await
                {
                    result?;
                }
                Ok(())
            }
            BrokerdConsumer::Library(library) => {
                let Ok(chunk) = tokio::time::timeout(max_wait, library.chunks.recv()).await else {
                    return Ok(());
                };
                match chunk {
                    Some(Ok(values)) => {
                        for value in &values {
                            sink(value);
                        }
                        Ok(())
                    }
                    Some(Err(e)) => Err(e.into()),
                    None => Err(DriverError::Unsupported(
                        "the library consumer thread ended".into(),
                    )),
                }
            }
        }
    }

    async fn close(self) -> Result<(), DriverError> {
        match self {
            BrokerdConsumer::Library(library) => library.close().await,
            BrokerdConsumer::Queue(queue) => Ok(queue.close().await?),
            BrokerdConsumer::Raw(_) => Ok(()),
            BrokerdConsumer::Push(push) => push.close().await,
        }
    }
}

/// Heartbeat (and commit) interval of push consumers' group memberships.
const PUSH_HEARTBEAT_INTERVAL_MS: u64 = 200;
/// Session timeout of push consumers' memberships: many heartbeats long.
const PUSH_SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages a push subscription may have delivered and not yet read (its credit).
const PUSH_CREDIT_MESSAGES: u32 = 10_000;
/// Bytes a push subscription may have delivered and not yet read.
const PUSH_CREDIT_BYTES: u64 = 16 * 1024 * 1024;
/// Deliveries handed from the subscriptions' tasks to `receive` and not yet taken.
const PUSH_DELIVERIES_BUFFERED: usize = 64;

/// Reads every topic of the run through one group subscription per topic: the
/// member joins a stream group for the topic (`<group>-t<n>`), and the broker pushes
/// the partitions assigned to it as data arrives. A task per subscription hands each
/// delivery on, notes its end as the partition's position and grants back the credit
/// used once it reaches half the window; one more commits the positions and then heartbeats, every
/// [`PUSH_HEARTBEAT_INTERVAL_MS`], so that a partition revoked in a rebalance is
/// released with its position committed and its new owner reads on from there.
pub struct PushConsumer {
    client: Client,
    deliveries: tokio::sync::mpsc::Receiver<Result<Delivery, DriverError>>,
    /// `(group, member id, topic, positions)` of each membership, to commit and
    /// leave at close.
    memberships: Vec<Closing>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Reused for decoding each delivery.
    records: VecDeque<ConsumerRecord>,
}

/// What a push consumer commits and leaves at close, per membership.
type Closing = (String, String, String, Positions);

/// Next offset per partition, as far as delivered to a push consumer.
type Positions = std::sync::Arc<std::sync::Mutex<HashMap<u32, u64>>>;

/// One group membership of a push consumer, as its heartbeat task keeps it.
struct PushMembership {
    group: String,
    member: String,
    generation: u32,
    topic: String,
    /// Next offset per partition, as far as delivered to this consumer.
    positions: Positions,
}

/// The positions in `positions`, as a commit takes them.
fn offsets_of(positions: &Positions) -> Vec<(u32, u64)> {
    positions
        .lock()
        .map(|p| p.iter().map(|(&k, &v)| (k, v)).collect())
        .unwrap_or_default()
}

impl PushMembership {
    /// Commits the positions, then heartbeats (which releases revoked partitions once
    /// the beat carries the generation that revoked them). A failure is retried at the
    /// next beat; the session outlasts many.
    async fn beat(&mut self, client: &Client) {
        let offsets = offsets_of(&self.positions);
        if !offsets.is_empty() {
            let _ = client
                .commit_offsets(
                    &self.group,
                    &self.member,
                    self.generation,
                    &self.topic,
                    &offsets,
                )
                .await;
        }
        if let Ok(answer) = client
            .heartbeat(&self.group, &self.member, self.generation)
            .await
        {
            self.generation = answer.generation;
        }
    }
}

impl PushConsumer {
    async fn start(client: Client, spec: &ConsumerSpec) -> Result<PushConsumer, DriverError> {
        let start = match spec.start {
            StartAt::Earliest => GroupStart::Earliest,
            StartAt::Latest => GroupStart::Latest,
        };
        let (tx, deliveries) = tokio::sync::mpsc::channel(PUSH_DELIVERIES_BUFFERED);
        let mut memberships = Vec::new();
        let mut tasks = Vec::new();
        for (t, topic) in spec.topics.iter().enumerate() {
            let group = format!("{}-t{t}", spec.group);
            let joined = client
                .join_group(&group, topic, "", PUSH_SESSION_TIMEOUT, start)
                .await?;
            let target = SubscribeTarget::Group {
                group: group.clone(),
                member_id: joined.member_id.clone(),
            };
            // The start position is the group's (committed offsets, else `start`).
            let mut subscription = client
                .subscribe(
                    topic,
                    target,
                    StartPosition::Earliest,
                    PUSH_CREDIT_MESSAGES,
                    PUSH_CREDIT_BYTES,
                )
                .await?;
            let positions = std::sync::Arc::new(std::sync::Mutex::new(HashMap::new()));
            let noted = positions.clone();
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                // Credit used and not yet granted back: granted once it reaches half
                // the window, so a delivery costs no Credit round trip of its own and
                // the broker always has at least half the window left to push into.
                let (mut used_messages, mut used_bytes) = (0u64, 0u64);
                while let Some(delivery) = subscription.next().await {
                    used_messages += delivery.to_offset.saturating_sub(delivery.from_offset);
                    used_bytes += delivery.batches.len() as u64;
                    if let Ok(mut positions) = noted.lock() {
                        positions.insert(delivery.partition, delivery.to_offset);
                    }
                    if tx.send(Ok(delivery)).await.is_err() {
                        return;
                    }
                    if used_messages < u64::from(PUSH_CREDIT_MESSAGES / 2)
                        && used_bytes < PUSH_CREDIT_BYTES / 2
                    {
                        continue;
                    }
                    let messages = u32::try_from(used_messages).unwrap_or(u32::MAX);
                    if let Err(e) = subscription.credit(messages, used_bytes).await {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                    (used_messages, used_bytes) = (0, 0);
                }
                let _ = tx
                    .send(Err(DriverError::Unsupported(
                        "a push subscription ended".into(),
                    )))
                    .await;
            }));
            memberships.push(PushMembership {
                group,
                member: joined.member_id,
                generation: joined.generation,
                topic: topic.clone(),
                positions,
            });
        }
        let closing: Vec<Closing> = memberships
            .iter()
            .map(|m| {
                let positions = m.positions.clone();
                (
                    m.group.clone(),
                    m.member.clone(),
                    m.topic.clone(),
                    positions,
                )
            })
            .collect();
        let beating = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut every =
                tokio::time::interval(Duration::from_millis(PUSH_HEARTBEAT_INTERVAL_MS));
            loop {
                every.tick().await;
                for membership in &mut memberships {
                    membership.beat(&beating).await;
                }
            }
        }));
        Ok(PushConsumer {
            client,
            deliveries,
            memberships: closing,
            tasks,
            records: VecDeque::new(),
        })
    }

    async fn close(self) -> Result<(), DriverError> {
        for task in &self.tasks {
            task.abort();
        }
        // Commit where this member got to before leaving, so that whoever gains its
        // partitions starts there, not at the last heartbeat's commit. Commits are
        // checked by ownership, not generation: a member may commit what it owns
        // whatever generation it names.
        for (group, member, topic, positions) in &self.memberships {
            let offsets = offsets_of(positions);
            if !offsets.is_empty() {
                self.client
                    .commit_offsets(group, member, 0, topic, &offsets)
                    .await?;
            }
            self.client.leave_group(group, member).await?;
        }
        Ok(())
    }
}

/// Heartbeat interval of library consumers: a member learns of a rebalance only at its
/// next heartbeat, so this bounds how long two members may read the same partition.
const LIBRARY_HEARTBEAT_INTERVAL_MS: u64 = 100;

/// Chunks of values the library consumer's thread hands over at most.
const LIBRARY_CHUNKS_BUFFERED: usize = 64;

/// The client library's group [`client::Consumer`], run on a thread of its own.
///
/// Why a thread: `Consumer::next()` and `Client::consumer()` return futures that are
/// not `Send` (the consumer holds `&self` across an `.await` while its fetcher is not
/// `Sync`), so they cannot run in a task of the multi-threaded runtime. The thread runs
/// a current-thread runtime and passes values over a channel; the receive time is taken
/// after that hop, so `--api client` end-to-end latency includes it (a few µs).
pub struct LibraryConsumer {
    chunks: tokio::sync::mpsc::Receiver<Result<Vec<Bytes>, client::ClientError>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), client::ClientError>>>,
}

impl LibraryConsumer {
    async fn start(
        driver: BrokerdDriver,
        spec: ConsumerSpec,
    ) -> Result<LibraryConsumer, DriverError> {
        let (tx, chunks) = tokio::sync::mpsc::channel(LIBRARY_CHUNKS_BUFFERED);
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) =
            tokio::sync::oneshot::channel::<Result<(), client::ClientError>>();
        let thread = std::thread::Builder::new()
            .name(format!("consumer-{}-{}", spec.group, spec.member))
            .spawn(move || -> Result<(), client::ClientError> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        client::ClientError::InvalidArgument(format!("cannot start a runtime: {e}"))
                    })?;
                runtime.block_on(async move {
                    let opened = async {
                        let client = driver
                            .connect(&format!("{}-{}", spec.group, spec.member))
                            .await
                            .map_err(|e| client::ClientError::InvalidArgument(e.to_string()))?;
                        let start = match spec.start {
                            StartAt::Earliest => StartFrom::Earliest,
                            StartAt::Latest => StartFrom::Latest,
                        };
                        let config = ConsumerConfig::default()
                            .start(start)
                            .auto_commit(Some(Duration::from_secs(1)))
                            .fetch_max_bytes(FETCH_MAX_BYTES)
                            .fetch_max_wait(Duration::from_millis(100))
                            .heartbeat_interval(Duration::from_millis(
                                LIBRARY_HEARTBEAT_INTERVAL_MS,
                            ));
                        client.consumer(&spec.topics[0], &spec.group, config).await
                    }
                    .await;
                    let mut consumer = match opened {
                        Ok(consumer) => {
                            let _ = ready_tx.send(Ok(()));
                            consumer
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.clone()));
                            return Err(e);
                        }
                    };
                    loop {
                        let first = tokio::select! {
                            _ = &mut stopped => break,
                            record = consumer.next() => record,
                        };
                        let mut values = Vec::new();
                        let mut failed = None;
                        match first {
                            Ok(record) => values.extend(record.value),
                            Err(e) => failed = Some(e),
                        }
                        // `next()` is cancel-safe, so polling it once and dropping it loses nothing.
                        while failed.is_none() && values.len() < LIBRARY_RECORDS_PER_RECEIVE {
                            match consumer.next().now_or_never() {
                                Some(Ok(record)) => values.extend(record.value),
                                Some(Err(e)) => failed = Some(e),
                                None => break,
                            }
                        }
                        if !values.is_empty() && tx.send(Ok(values)).await.is_err() {
                            break;
                        }
                        if let Some(e) = failed {
                            let _ = tx.send(Err(e)).await;
                            break;
                        }
                    }
                    consumer.close().await
                })
            })
            .map_err(|e| {
                DriverError::Unsupported(format!("cannot start a consumer thread: {e}"))
            })?;
        match ready_rx.await {
            Ok(Ok(())) => Ok(LibraryConsumer {
                chunks,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(DriverError::Unsupported(
                "the consumer thread died while starting".into(),
            )),
        }
    }

    async fn close(mut self) -> Result<(), DriverError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.chunks.close();
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let joined = tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| DriverError::Unsupported(e.to_string()))?;
        match joined {
            Ok(result) => Ok(result?),
            Err(_) => Err(DriverError::Unsupported(
                "the consumer thread panicked".into(),
            )),
        }
    }
}
