//! Reading a set of partitions with long-polling Fetch: the engine under
//! [`Consumer`](crate::Consumer), and [`PartitionReader`] for reading without a group.
//!
//! Each partition has at most one fetch in flight (all pipelined on the client's one
//! connection, so a partition with no data never holds up one that has some) and at
//! most [`MAX_BUFFERED_CHUNKS_PER_PARTITION`] fetched chunks waiting to be read, which
//! bounds memory to about `partitions * (chunks + 1) * fetch_max_bytes`. Chunks are
//! read in the order they arrived, which interleaves partitions fairly.
//!
//! Every state change happens synchronously after an `.await` completes, so dropping a
//! `next()` future half way (a timeout around it) loses nothing: an in-flight fetch
//! stays in the set, and a record counts as returned only once it is handed over.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use protocol::ops::fetch::{FetchResponse, ListOffsetsRequest, PartitionTime};
use protocol::ops::{Request, Response};
use protocol::ErrorCode;

use crate::admin::expect_response;
use crate::connection::Client;
use crate::error::ClientError;
use crate::records::{decode_records, ConsumerRecord};

/// Fetched chunks a partition may have waiting before its next fetch is held back.
pub const MAX_BUFFERED_CHUNKS_PER_PARTITION: usize = 2;
/// Default for the largest fetch answer asked for, per partition.
pub const DEFAULT_FETCH_MAX_BYTES: u32 = 1024 * 1024;
/// Default for how long the broker may hold a fetch while a partition has no data.
pub const DEFAULT_FETCH_MAX_WAIT_MS: u64 = 500;

#[derive(Debug)]
struct PartitionState {
    /// Changes on every (re)assignment, so answers to older fetches are ignored.
    epoch: u64,
    /// Where the next fetch starts.
    fetch_offset: u64,
    fetching: bool,
    buffered_chunks: usize,
}

struct Chunk {
    partition: u32,
    epoch: u64,
    records: VecDeque<ConsumerRecord>,
}

struct FetchDone {
    partition: u32,
    epoch: u64,
    offset: u64,
    result: Result<FetchResponse, ClientError>,
}

/// The fetch engine. Not public: [`PartitionReader`] and the consumer wrap it.
pub(crate) struct Fetcher {
    client: Client,
    topic: String,
    max_bytes: u32,
    max_wait: Duration,
    partitions: HashMap<u32, PartitionState>,
    ready: VecDeque<Chunk>,
    in_flight: FuturesUnordered<BoxFuture<'static, FetchDone>>,
    next_epoch: u64,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .field("ready_chunks", &self.ready.len())
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl Fetcher {
    pub(crate) fn new(client: Client, topic: &str, max_bytes: u32, max_wait: Duration) -> Fetcher {
        Fetcher {
            client,
            topic: topic.to_string(),
            max_bytes: max_bytes.max(1),
            max_wait,
            partitions: HashMap::new(),
            ready: VecDeque::new(),
            in_flight: FuturesUnordered::new(),
            next_epoch: 0,
        }
    }

    /// Starts reading `partition` at `offset`, forgetting anything read before.
    pub(crate) fn assign(&mut self, partition: u32, offset: u64) {
        self.revoke(partition);
        self.next_epoch += 1;
        self.partitions.insert(
            partition,
            PartitionState {
                epoch: self.next_epoch,
                fetch_offset: offset,
                fetching: false,
                buffered_chunks: 0,
            },
        );
    }

    /// The partitions being read, sorted.
    pub(crate) fn partitions(&self) -> Vec<u32> {
        let mut partitions: Vec<u32> = self.partitions.keys().copied().collect();
        partitions.sort_unstable();
        partitions
    }

    /// The topic read.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// The client fetches go through.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Stops reading `partition` and drops what was fetched from it and not read.
    pub(crate) fn revoke(&mut self, partition: u32) {
        self.partitions.remove(&partition);
        self.ready.retain(|chunk| chunk.partition != partition);
    }

    /// The next fetched record, if one is buffered.
    pub(crate) fn pop(&mut self) -> Option<ConsumerRecord> {
        loop {
            let chunk = self.ready.front_mut()?;
            let live = self
                .partitions
                .get(&chunk.partition)
                .is_some_and(|state| state.epoch == chunk.epoch);
            let record = if live {
                chunk.records.pop_front()
            } else {
                None
            };
            if record.is_some() && !chunk.records.is_empty() {
                return record;
            }
            // The chunk is used up (or stale): drop it so its partition may fetch again.
            let partition = chunk.partition;
            self.ready.pop_front();
            if live {
                if let Some(state) = self.partitions.get_mut(&partition) {
                    state.buffered_chunks = state.buffered_chunks.saturating_sub(1);
                }
            }
            if record.is_some() {
                return record;
            }
        }
    }

    /// Sends a fetch for every partition that has none in flight and room to buffer,
    /// then waits until one answer has been handled. Never completes when there is
    /// nothing to fetch (no partitions assigned).
    pub(crate) async fn fill(&mut self) -> Result<(), ClientError> {
        self.send_fetches();
        let Some(done) = self.in_flight.next().await else {
            return std::future::pending().await;
        };
        self.handle(done).await
    }

    fn send_fetches(&mut self) {
        for (&partition, state) in self.partitions.iter_mut() {
            if state.fetching || state.buffered_chunks >= MAX_BUFFERED_CHUNKS_PER_PARTITION {
                continue;
            }
            state.fetching = true;
            let client = self.client.clone();
            let topic = self.topic.clone();
            let (epoch, offset) = (state.epoch, state.fetch_offset);
            let (max_bytes, max_wait) = (self.max_bytes, self.max_wait);
            self.in_flight.push(
                async move {
                    let result = client
                        .fetch(&topic, partition, offset, max_bytes, max_wait)
                        .await;
                    FetchDone {
                        partition,
                        epoch,
                        offset,
                        result,
                    }
                }
                .boxed(),
            );
        }
    }

    async fn handle(&mut self, done: FetchDone) -> Result<(), ClientError> {
        let Some(state) = self.partitions.get_mut(&done.partition) else {
            return Ok(());
        };
        if state.epoch != done.epoch || state.fetch_offset != done.offset {
            return Ok(());
        }
        state.fetching = false;
        match done.result {
            Ok(answer) => {
                let mut records = VecDeque::new();
                let next = decode_records(
                    done.partition,
                    answer.batches,
                    done.offset,
                    None,
                    &mut records,
                )?;
                debug_assert!(next >= done.offset, "fetch positions only move forward");
                state.fetch_offset = next;
                if !records.is_empty() {
                    state.buffered_chunks += 1;
                    self.ready.push_back(Chunk {
                        partition: done.partition,
                        epoch: done.epoch,
                        records,
                    });
                }
                Ok(())
            }
            Err(e) if e.code() == Some(ErrorCode::OffsetOutOfRange) => {
                // Retention removed the records (or the offset is past the end): move
                // to the nearest offset that exists, like a fresh reader would.
                let described = self.client.describe_topic(&self.topic).await?;
                let Some(info) = described
                    .partitions
                    .iter()
                    .find(|p| p.partition == done.partition)
                else {
                    return Err(e);
                };
                let offset = done.offset.clamp(info.start_offset, info.end_offset);
                tracing::warn!(
                    topic = %self.topic,
                    partition = done.partition,
                    from = done.offset,
                    to = offset,
                    "fetch offset out of range; skipping to the nearest retained offset"
                );
                if let Some(state) = self.partitions.get_mut(&done.partition) {
                    if state.epoch == done.epoch {
                        state.fetch_offset = offset;
                    }
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Reads chosen partitions from chosen offsets without a consumer group: no
/// assignment, no committed offsets. Created by [`Client::partition_reader`].
///
/// ```no_run
/// # async fn demo(client: client::Client) -> Result<(), client::ClientError> {
/// let mut reader = client.partition_reader("orders", &[(0, 0), (1, 0)]);
/// let record = reader.next().await?;
/// println!("{}@{}: {:?}", record.partition, record.offset, record.value);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PartitionReader {
    fetcher: Fetcher,
}

impl Client {
    /// A reader of `topic` starting at the given `(partition, offset)` positions,
    /// fetching up to [`DEFAULT_FETCH_MAX_BYTES`] per partition at a time.
    pub fn partition_reader(&self, topic: &str, positions: &[(u32, u64)]) -> PartitionReader {
        let mut fetcher = Fetcher::new(
            self.clone(),
            topic,
            DEFAULT_FETCH_MAX_BYTES,
            Duration::from_millis(DEFAULT_FETCH_MAX_WAIT_MS),
        );
        for &(partition, offset) in positions {
            fetcher.assign(partition, offset);
        }
        PartitionReader { fetcher }
    }
}

impl Client {
    /// Per partition of `topic` asked about, the first offset whose record timestamp
    /// is at or after `timestamp_ms` (milliseconds since the epoch), or the
    /// partition's end if every record is older: where to read from to see what was
    /// produced from then on. The timestamps are the records' own, as their producers
    /// set them (the [`Producer`](crate::Producer) stamps each record when it is sent,
    /// unless it carries one). Needs protocol version 2 (a broker speaking only 1
    /// answers `unknown_operation`).
    pub async fn offsets_for_time(
        &self,
        topic: &str,
        partitions: &[u32],
        timestamp_ms: i64,
    ) -> Result<Vec<(u32, u64)>, ClientError> {
        let request = Request::ListOffsets(ListOffsetsRequest {
            topic: topic.to_string(),
            partitions: partitions
                .iter()
                .map(|&partition| PartitionTime {
                    partition,
                    timestamp_ms,
                })
                .collect(),
        });
        let answer = expect_response!(self.request(request).await?, ListOffsets)?;
        Ok(answer
            .offsets
            .iter()
            .map(|o| (o.partition, o.offset))
            .collect())
    }
}

impl PartitionReader {
    /// Moves every partition the reader reads to the first record at or after
    /// `timestamp_ms` (see [`Client::offsets_for_time`]), dropping what was fetched
    /// and not read yet.
    ///
    /// ```no_run
    /// # async fn demo(client: client::Client) -> Result<(), client::ClientError> {
    /// let mut reader = client.partition_reader("orders", &[(0, 0), (1, 0)]);
    /// // A clock set before 1970 reads as the epoch.
    /// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    /// let ten_minutes_ago = now.as_millis() as i64 - 10 * 60 * 1000;
    /// reader.seek_to_time(ten_minutes_ago).await?;
    /// let record = reader.next().await?; // the first of partition 0 or 1 since then
    /// # Ok(()) }
    /// ```
    pub async fn seek_to_time(&mut self, timestamp_ms: i64) -> Result<(), ClientError> {
        let partitions = self.fetcher.partitions();
        let offsets = self
            .fetcher
            .client()
            .offsets_for_time(self.fetcher.topic(), &partitions, timestamp_ms)
            .await?;
        // Only after the last `.await`: a cancelled seek changes nothing.
        for (partition, offset) in offsets {
            self.fetcher.assign(partition, offset);
        }
        Ok(())
    }

    /// The next record of any of the partitions, waiting for one as long as it takes
    /// (wrap it in `tokio::time::timeout` to bound the wait; that loses nothing).
    pub async fn next(&mut self) -> Result<ConsumerRecord, ClientError> {
        loop {
            if let Some(record) = self.fetcher.pop() {
                return Ok(record);
            }
            self.fetcher.fill().await?;
        }
    }
}
