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
//! A failed batch fails each of its records' futures with the same error. Nothing is
//! retried: a Produce that timed out or lost its connection may have been appended,
//! and retrying could duplicate it. The caller decides.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use protocol::batch::{BatchBuilder, BATCH_HEADER_BYTES, MAX_BATCH_BYTES};
use protocol::ops::produce::{partition_for_key, AckLevel, PartitionSelector, ProduceResponse};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::admin::{produce_request, produce_response};
use crate::connection::Client;
use crate::error::ClientError;

/// Default for [`ProducerConfig::batch_max_bytes`].
pub const DEFAULT_BATCH_MAX_BYTES: usize = 256 * 1024;
/// Default for [`ProducerConfig::linger`].
pub const DEFAULT_LINGER_MS: u64 = 5;
/// Default for [`ProducerConfig::max_in_flight_batches`].
pub const DEFAULT_MAX_IN_FLIGHT_BATCHES: usize = 8;
/// Default for [`ProducerConfig::ack_timeout`].
pub const DEFAULT_ACK_TIMEOUT_MS: u64 = 10_000;
/// Default for [`ProducerConfig::max_queued_records`].
pub const DEFAULT_MAX_QUEUED_RECORDS: usize = 8192;

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

/// Where an acknowledged record was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: u32,
    /// The record's offset; `None` only with [`AckLevel::None`], where the broker
    /// answers before appending.
    pub offset: Option<u64>,
}

type Waiter = oneshot::Sender<Result<RecordMetadata, ClientError>>;

/// Resolves when the record's batch is acknowledged (or failed). Created by
/// [`Producer::send`]. Dropping it does not cancel the send.
#[derive(Debug)]
#[must_use = "the record's outcome is only known by awaiting this future"]
pub struct SendFuture {
    rx: oneshot::Receiver<Result<RecordMetadata, ClientError>>,
}

impl Future for SendFuture {
    type Output = Result<RecordMetadata, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(ClientError::Closed("the producer"))))
    }
}

enum Command {
    Send(Record, Waiter),
    Flush(oneshot::Sender<()>),
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

/// A batch ready to send.
#[derive(Debug)]
struct ReadyBatch {
    id: u64,
    partition: u32,
    bytes: Bytes,
    waiters: Vec<Waiter>,
}

#[derive(Debug)]
struct OpenBatch {
    id: u64,
    builder: BatchBuilder,
    waiters: Vec<Waiter>,
}

/// Pure batching logic: open batches per partition, size and linger limits.
#[derive(Debug)]
struct Accumulator {
    batch_max_bytes: usize,
    linger: Duration,
    partitions: u32,
    /// Where keyless records without a partition go; moves on when its batch closes.
    sticky: u32,
    open: HashMap<u32, OpenBatch>,
    /// `(deadline, partition, batch id)` in opening order, which is deadline order
    /// because the linger is the same for every batch.
    lingering: VecDeque<(Instant, u32, u64)>,
    next_id: u64,
}

impl Accumulator {
    fn new(batch_max_bytes: usize, linger: Duration, partitions: u32) -> Accumulator {
        Accumulator {
            batch_max_bytes: batch_max_bytes.clamp(BATCH_HEADER_BYTES + 1, MAX_BATCH_BYTES),
            linger,
            partitions: partitions.max(1),
            sticky: 0,
            open: HashMap::new(),
            lingering: VecDeque::new(),
            next_id: 0,
        }
    }

    fn partition_of(&self, record: &Record) -> u32 {
        match (record.partition, &record.key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, self.partitions),
            (None, None) => self.sticky,
        }
    }

    /// The id the next batch will get; every batch opened so far has a smaller one.
    fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Adds a record; batches that fill up are appended to `ready`.
    fn push(
        &mut self,
        record: Record,
        waiter: Waiter,
        now: Instant,
        ready: &mut VecDeque<ReadyBatch>,
    ) {
        let partition = self.partition_of(&record);
        let headers: Vec<(&str, &[u8])> = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_ref()))
            .collect();
        let (key, value) = (record.key.as_deref(), record.value.as_deref());
        let size = BatchBuilder::record_size(key, value, &headers);
        if BATCH_HEADER_BYTES + size > MAX_BATCH_BYTES {
            let _ = waiter.send(Err(ClientError::InvalidArgument(format!(
                "a record of {size} bytes does not fit in a batch (at most {MAX_BATCH_BYTES} bytes)"
            ))));
            return;
        }
        let timestamp_ms = record.timestamp_ms.unwrap_or_else(now_ms);
        if let Some(open) = self.open.get(&partition) {
            if open.builder.len_bytes() + size > self.batch_max_bytes {
                self.close(partition, ready);
            }
        }
        for attempt in 0..2 {
            let batch = self.open_batch(partition, size, now);
            match batch.builder.push(timestamp_ms, key, value, &headers) {
                Ok(()) => {
                    batch.waiters.push(waiter);
                    if batch.builder.len_bytes() >= self.batch_max_bytes {
                        self.close(partition, ready);
                    }
                    return;
                }
                // A timestamp too far from the batch's first: start a new batch once.
                Err(_) if attempt == 0 && !batch.builder.is_empty() => self.close(partition, ready),
                Err(e) => {
                    let _ = waiter.send(Err(ClientError::InvalidArgument(format!(
                        "cannot batch the record: {e}"
                    ))));
                    return;
                }
            }
        }
    }

    fn open_batch(
        &mut self,
        partition: u32,
        first_record_bytes: usize,
        now: Instant,
    ) -> &mut OpenBatch {
        let id = self.next_id;
        let capacity =
            (BATCH_HEADER_BYTES + first_record_bytes).max(self.batch_max_bytes.min(64 * 1024));
        let lingering = &mut self.lingering;
        let linger = self.linger;
        let next_id = &mut self.next_id;
        self.open.entry(partition).or_insert_with(|| {
            *next_id += 1;
            lingering.push_back((now + linger, partition, id));
            OpenBatch {
                id,
                builder: BatchBuilder::with_capacity(capacity),
                waiters: Vec::new(),
            }
        })
    }

    fn close(&mut self, partition: u32, ready: &mut VecDeque<ReadyBatch>) {
        let Some(batch) = self.open.remove(&partition) else {
            return;
        };
        if partition == self.sticky {
            self.sticky = (self.sticky + 1) % self.partitions;
        }
        if batch.waiters.is_empty() {
            return;
        }
        debug_assert_eq!(batch.builder.record_count() as usize, batch.waiters.len());
        ready.push_back(ReadyBatch {
            id: batch.id,
            partition,
            bytes: batch.builder.finish(),
            waiters: batch.waiters,
        });
    }

    /// When the oldest open batch must be sent.
    fn next_deadline(&self) -> Option<Instant> {
        self.lingering.front().map(|(deadline, _, _)| *deadline)
    }

    /// Closes batches whose linger time has passed.
    fn expire(&mut self, now: Instant, ready: &mut VecDeque<ReadyBatch>) {
        while let Some(&(deadline, partition, id)) = self.lingering.front() {
            if deadline > now {
                break;
            }
            self.lingering.pop_front();
            // The batch may have been closed (full) and replaced since.
            if self.open.get(&partition).is_some_and(|b| b.id == id) {
                self.close(partition, ready);
            }
        }
    }

    /// Closes every open batch.
    fn drain(&mut self, ready: &mut VecDeque<ReadyBatch>) {
        let mut partitions: Vec<u32> = self.open.keys().copied().collect();
        partitions.sort_unstable();
        for p in partitions {
            self.close(p, ready);
        }
        self.lingering.clear();
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

struct Completed {
    id: u64,
    partition: u32,
    waiters: Vec<Waiter>,
    result: Result<ProduceResponse, ClientError>,
}

/// The producer's background task. Ends when every `Producer` handle is gone and
/// everything queued has its answer.
async fn run(
    client: Client,
    topic: String,
    config: ProducerConfig,
    mut commands: mpsc::Receiver<Command>,
    mut accumulator: Accumulator,
) {
    let max_in_flight = config.max_in_flight_batches.max(1);
    let mut ready: VecDeque<ReadyBatch> = VecDeque::new();
    let mut in_flight: FuturesUnordered<BoxFuture<'static, Completed>> = FuturesUnordered::new();
    // Ids of batches closed and not yet answered, and flushes waiting on them.
    let mut outstanding: BTreeSet<u64> = BTreeSet::new();
    let mut flushes: Vec<(u64, oneshot::Sender<()>)> = Vec::new();
    let mut input_open = true;
    loop {
        for batch in &ready {
            outstanding.insert(batch.id);
        }
        while in_flight.len() < max_in_flight {
            let Some(batch) = ready.pop_front() else {
                break;
            };
            match dispatch(&client, &topic, &config, batch).await {
                Ok(request) => in_flight.push(request),
                Err(failed) => {
                    outstanding.remove(&failed.id);
                    complete(failed);
                }
            }
        }
        // A flush is done when no batch opened before it is still outstanding.
        let oldest = outstanding.first().copied().unwrap_or(u64::MAX);
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut flushes)
            .into_iter()
            .partition(|(upto, _)| oldest >= *upto);
        flushes = waiting;
        for (_, tx) in done {
            let _ = tx.send(());
        }
        if !input_open && ready.is_empty() && in_flight.is_empty() {
            break;
        }
        let far = Instant::now() + Duration::from_secs(3600);
        let deadline = accumulator.next_deadline();
        tokio::select! {
            biased;
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                outstanding.remove(&done.id);
                complete(done);
            }
            command = commands.recv(), if input_open && ready.is_empty() => match command {
                Some(Command::Send(record, waiter)) => {
                    accumulator.push(record, waiter, Instant::now(), &mut ready);
                }
                Some(Command::Flush(tx)) => {
                    accumulator.drain(&mut ready);
                    flushes.push((accumulator.next_id(), tx));
                }
                None => {
                    input_open = false;
                    accumulator.drain(&mut ready);
                }
            },
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                accumulator.expire(Instant::now(), &mut ready);
            }
        }
    }
    tracing::debug!(%topic, "producer finished");
}

/// Queues one batch's Produce request on the connection. On failure the batch comes
/// back, carrying the error, for its records to be failed.
async fn dispatch(
    client: &Client,
    topic: &str,
    config: &ProducerConfig,
    batch: ReadyBatch,
) -> Result<BoxFuture<'static, Completed>, Completed> {
    let selector = PartitionSelector::Partition(batch.partition);
    let (request, wait) =
        produce_request(topic, selector, config.ack, config.ack_timeout, batch.bytes);
    let timeout = client.config().request_timeout.saturating_add(wait);
    let (id, partition, waiters) = (batch.id, batch.partition, batch.waiters);
    match client.start(request, timeout, None).await {
        Ok(pending) => Ok(async move {
            let result = pending.wait().await.and_then(produce_response);
            Completed {
                id,
                partition,
                waiters,
                result,
            }
        }
        .boxed()),
        Err(error) => Err(Completed {
            id,
            partition,
            waiters,
            result: Err(error),
        }),
    }
}

/// Resolves every record future of a finished batch.
fn complete(done: Completed) {
    match done.result {
        Ok(answer) => {
            debug_assert_eq!(answer.partition, done.partition);
            for (i, waiter) in done.waiters.into_iter().enumerate() {
                let _ = waiter.send(Ok(RecordMetadata {
                    partition: answer.partition,
                    offset: answer.base_offset.map(|base| base + i as u64),
                }));
            }
        }
        Err(error) => {
            tracing::debug!(partition = done.partition, %error, "produce failed");
            for waiter in done.waiters {
                let _ = waiter.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::batch::BatchView;

    fn waiter() -> (
        Waiter,
        oneshot::Receiver<Result<RecordMetadata, ClientError>>,
    ) {
        oneshot::channel()
    }

    fn push(acc: &mut Accumulator, record: Record, ready: &mut VecDeque<ReadyBatch>) {
        acc.push(record, waiter().0, Instant::now(), ready);
    }

    #[test]
    fn keyed_records_go_to_the_brokers_partition() {
        let mut acc = Accumulator::new(1 << 20, Duration::from_secs(1), 4);
        let mut ready = VecDeque::new();
        for i in 0..100 {
            push(
                &mut acc,
                Record::new("v").with_key(format!("key-{i}")),
                &mut ready,
            );
        }
        acc.drain(&mut ready);
        let mut total = 0;
        for batch in &ready {
            let view = BatchView::new(&batch.bytes).unwrap();
            view.validate().unwrap();
            for record in view.records() {
                let key = record.unwrap().key.unwrap();
                assert_eq!(partition_for_key(key, 4), batch.partition);
                total += 1;
            }
        }
        assert_eq!(total, 100);
        assert!(ready.len() <= 4);
    }

    #[test]
    fn a_full_batch_is_sent_and_a_new_one_opened() {
        let mut acc = Accumulator::new(1000, Duration::from_secs(1), 1);
        let mut ready = VecDeque::new();
        let value = vec![7u8; 300];
        for _ in 0..5 {
            push(
                &mut acc,
                Record::new(value.clone()).with_partition(0),
                &mut ready,
            );
        }
        // 40 header + 3 * 318 = 994 fits; a 4th record would pass 1000.
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].waiters.len(), 3);
        assert!(ready[0].bytes.len() <= 1000);
        acc.drain(&mut ready);
        assert_eq!(ready.len(), 2);
        assert_eq!(ready[1].waiters.len(), 2);
        assert!(ready[0].id < ready[1].id);
    }

    #[test]
    fn an_oversized_record_goes_alone() {
        let mut acc = Accumulator::new(100, Duration::from_secs(1), 1);
        let mut ready = VecDeque::new();
        push(&mut acc, Record::new(vec![1u8; 500]), &mut ready);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].waiters.len(), 1);
    }

    #[test]
    fn linger_closes_batches_in_opening_order() {
        let mut acc = Accumulator::new(1 << 20, Duration::from_millis(10), 3);
        let mut ready = VecDeque::new();
        let t0 = Instant::now();
        acc.push(
            Record::new("a").with_partition(2),
            waiter().0,
            t0,
            &mut ready,
        );
        acc.push(
            Record::new("b").with_partition(0),
            waiter().0,
            t0 + Duration::from_millis(5),
            &mut ready,
        );
        assert_eq!(acc.next_deadline(), Some(t0 + Duration::from_millis(10)));
        acc.expire(t0 + Duration::from_millis(9), &mut ready);
        assert!(ready.is_empty());
        acc.expire(t0 + Duration::from_millis(10), &mut ready);
        assert_eq!(ready.iter().map(|b| b.partition).collect::<Vec<_>>(), [2]);
        acc.expire(t0 + Duration::from_millis(15), &mut ready);
        assert_eq!(
            ready.iter().map(|b| b.partition).collect::<Vec<_>>(),
            [2, 0]
        );
        assert_eq!(acc.next_deadline(), None);
    }

    #[test]
    fn keyless_records_stick_to_a_partition_until_its_batch_closes() {
        let mut acc = Accumulator::new(1 << 20, Duration::from_millis(10), 3);
        let mut ready = VecDeque::new();
        for _ in 0..5 {
            push(&mut acc, Record::new("x"), &mut ready);
        }
        acc.drain(&mut ready);
        for _ in 0..5 {
            push(&mut acc, Record::new("y"), &mut ready);
        }
        acc.drain(&mut ready);
        let parts: Vec<(u32, usize)> = ready
            .iter()
            .map(|b| (b.partition, b.waiters.len()))
            .collect();
        assert_eq!(parts, [(0, 5), (1, 5)]);
    }

    #[test]
    fn a_stale_linger_entry_does_not_close_the_next_batch() {
        let mut acc = Accumulator::new(200, Duration::from_millis(10), 1);
        let mut ready = VecDeque::new();
        let t0 = Instant::now();
        acc.push(Record::new(vec![0u8; 150]), waiter().0, t0, &mut ready); // fills: sent
        assert_eq!(ready.len(), 1);
        acc.push(
            Record::new("small"),
            waiter().0,
            t0 + Duration::from_millis(8),
            &mut ready,
        );
        acc.expire(t0 + Duration::from_millis(10), &mut ready);
        assert_eq!(
            ready.len(),
            1,
            "the second batch lingers until its own deadline"
        );
        acc.expire(t0 + Duration::from_millis(18), &mut ready);
        assert_eq!(ready.len(), 2);
    }

    #[tokio::test]
    async fn failures_reach_every_record_of_the_batch() {
        let (a, ra) = waiter();
        let (b, rb) = waiter();
        complete(Completed {
            id: 0,
            partition: 1,
            waiters: vec![a, b],
            result: Err(ClientError::Timeout {
                op: "Produce",
                timeout_ms: 5,
            }),
        });
        assert!(matches!(
            ra.await.unwrap(),
            Err(ClientError::Timeout { .. })
        ));
        assert!(matches!(
            rb.await.unwrap(),
            Err(ClientError::Timeout { .. })
        ));
        let (a, ra) = waiter();
        let (b, rb) = waiter();
        complete(Completed {
            id: 1,
            partition: 1,
            waiters: vec![a, b],
            result: Ok(ProduceResponse {
                partition: 1,
                base_offset: Some(40),
            }),
        });
        assert_eq!(ra.await.unwrap().unwrap().offset, Some(40));
        assert_eq!(rb.await.unwrap().unwrap().offset, Some(41));
    }
}
