//! The seam between the workloads and a broker: a [`Driver`] creates topics and opens
//! producers and consumers; the runner does all timing and accounting.
//!
//! Drivers see only [`OutBatch`] descriptions and hand back raw payload bytes, so every
//! broker is measured by the same code: the same payload header, the same clock, the
//! same histograms, the same loss and duplicate accounting.

use std::future::Future;
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{Stream, StreamExt};
use thiserror::Error;

use crate::payload::{write_header, PayloadHeader};
use crate::workload::Workload;

/// A broker's answer to one produced batch, resolved when it was acknowledged.
pub type AckFuture = BoxFuture<'static, Result<(), DriverError>>;

/// Why a driver call failed.
#[derive(Debug, Error)]
pub enum DriverError {
    /// Our broker's client reported an error.
    #[error("brokerd: {0}")]
    Brokerd(#[from] client::ClientError),
    /// A peer broker's client reported an error.
    #[error("{peer}: {message}")]
    Peer {
        /// Which peer.
        peer: &'static str,
        /// What it said.
        message: String,
    },
    /// A received batch or payload failed its checks.
    #[error("corrupt data from {what}: {message}")]
    Corrupt {
        /// Where it came from.
        what: String,
        /// What was wrong.
        message: String,
    },
    /// The workload asks for something this driver cannot do.
    #[error("{0}")]
    Unsupported(String),
}

/// One batch a producer is to send: `count` messages of `message_size_bytes` with
/// sequences `first_sequence..`, all stamped `sent_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutBatch {
    /// The partition to send to.
    pub partition: u32,
    /// The sending producer's index.
    pub producer: u32,
    /// Sequence number of the first message.
    pub first_sequence: u64,
    /// Messages in the batch.
    pub count: u32,
    /// Send time on the run's clock.
    pub sent_ns: u64,
}

impl OutBatch {
    /// Writes message `i`'s header into `buf` (a reused payload buffer) and returns it.
    pub fn payload<'a>(&self, i: u32, buf: &'a mut [u8]) -> &'a [u8] {
        debug_assert!(i < self.count);
        write_header(
            buf,
            PayloadHeader {
                producer: self.producer,
                sequence: self.first_sequence + u64::from(i),
                sent_ns: self.sent_ns,
            },
        );
        buf
    }
}

/// Which messages a new consumer starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Everything retained.
    Earliest,
    /// Only messages produced after it started.
    Latest,
}

/// A consumer to open.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Every topic of the run (consumers read all of them).
    pub topics: Vec<String>,
    /// The consumer group's name.
    pub group: String,
    /// This consumer's index in its group.
    pub member: u32,
    /// Consumers in the group.
    pub members: u32,
    /// Where to start.
    pub start: StartAt,
}

/// A broker under test.
pub trait Driver: Send + Sync + 'static {
    /// A producer connection.
    type Producer: ProducerHandle;
    /// A consumer connection.
    type Consumer: ConsumerHandle;

    /// Short name for reports (`brokerd`, `nats`, `redis`).
    fn name(&self) -> &'static str;

    /// What the workload's durability and ack settings mean on this broker, in words,
    /// for the report (e.g. which fsync policy the server was configured with).
    fn durability_note(&self, workload: &Workload) -> impl Future<Output = String> + Send;

    /// Creates the topics (deleting leftovers of the same name first).
    fn create_topics(
        &self,
        topics: &[String],
        workload: &Workload,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Prepares consumer groups that must exist before producing (e.g. Redis groups
    /// created at the stream's end); `start` says where they begin. Nothing to do by
    /// default.
    fn prepare_group(
        &self,
        _topics: &[String],
        _workload: &Workload,
        _group: &str,
        _start: StartAt,
    ) -> impl Future<Output = Result<(), DriverError>> + Send {
        async { Ok(()) }
    }

    /// Opens a producer writing to `topic`.
    fn producer(
        &self,
        topic: &str,
        workload: &Workload,
    ) -> impl Future<Output = Result<Self::Producer, DriverError>> + Send;

    /// Opens a consumer.
    fn consumer(
        &self,
        spec: ConsumerSpec,
        workload: &Workload,
    ) -> impl Future<Output = Result<Self::Consumer, DriverError>> + Send;

    /// Messages stored in the topics, if the broker can say (a produce-only run checks
    /// it against the acknowledged count).
    fn stored_messages(
        &self,
        topics: &[String],
    ) -> impl Future<Output = Result<Option<u64>, DriverError>> + Send;

    /// How long to wait after opening a group's consumers before producing, so that
    /// every member has learnt its final assignment (a member that has not yet heard
    /// of a rebalance keeps reading partitions that moved, which shows as duplicates).
    fn settle_delay(&self, _members: u32) -> Duration {
        Duration::ZERO
    }

    /// Whether `--workload queue` (per-message acknowledgements) can run here.
    fn supports_queue(&self) -> bool {
        false
    }

    /// Deletes the topics.
    fn delete_topics(
        &self,
        topics: &[String],
    ) -> impl Future<Output = Result<(), DriverError>> + Send;
}

/// A connection that produces.
pub trait ProducerHandle: Send + 'static {
    /// Queues `batch` and returns the future of its acknowledgement. The batch is on its
    /// way (or will be once the returned future is first polled) when this returns.
    fn send(
        &mut self,
        batch: OutBatch,
    ) -> impl Future<Output = Result<AckFuture, DriverError>> + Send;

    /// Sends whatever the driver buffered and closes.
    fn close(self) -> impl Future<Output = Result<(), DriverError>> + Send;
}

/// A connection that consumes.
pub trait ConsumerHandle: Send + 'static {
    /// Waits up to `max_wait` for messages and passes each payload to `sink`. Returning
    /// with none is fine.
    fn receive(
        &mut self,
        max_wait: Duration,
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Leaves the group and closes.
    fn close(self) -> impl Future<Output = Result<(), DriverError>> + Send;
}

/// Fills `chunk` (cleared first) from a consumer's message stream: waits up to
/// `max_wait` for a first message, then takes whatever else is ready, `max` in all.
/// `chunk` stays empty when nothing arrived in time; a stream that ended is an error.
/// Dropping a `next()` that is not ready loses nothing, as the peers' streams buffer.
pub async fn take_ready<S, T, E>(
    stream: &mut S,
    max_wait: Duration,
    max: usize,
    chunk: &mut Vec<T>,
    error: fn(E) -> DriverError,
) -> Result<(), DriverError>
where
    S: Stream<Item = Result<T, E>> + Unpin,
{
    chunk.clear();
    let Ok(first) = tokio::time::timeout(max_wait, stream.next()).await else {
        return Ok(());
    };
    let Some(first) = first else {
        return Err(DriverError::Unsupported(
            "the consumer's message stream ended".into(),
        ));
    };
    chunk.push(first.map_err(error)?);
    while chunk.len() < max {
        match stream.next().now_or_never() {
            Some(Some(message)) => chunk.push(message.map_err(error)?),
            _ => break,
        }
    }
    Ok(())
}
