//! The producer's background task: the one owner of the open batches and of the
//! Produce requests in flight.
//!
//! One task, fed by one bounded channel, because the order of a partition's batches
//! comes from it: it closes batches in order and queues each one's Produce on the
//! connection before the next (requests started one after another by one task reach
//! the broker in that order), and the broker appends a connection's produces in
//! arrival order. The channel's bound is the producer's backpressure: `send` waits
//! while it is full.
//!
//! Each turn of the loop queues ready batches up to `max_in_flight_batches`, answers
//! the flushes whose batches are all answered, then waits for the first of: an answer;
//! a command, taken only while nothing is waiting to be sent, so a full in-flight
//! window stops the intake; the oldest open batch's linger deadline.
//!
//! Nothing is retried: a Produce that timed out or lost its connection may have been
//! appended, and sending it again could duplicate it. Its records fail and the caller
//! decides.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use protocol::ops::produce::PartitionSelector;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::accumulator::{Accumulator, ReadyBatch};
use super::ack::{complete, Completed, Waiter};
use super::{ProducerConfig, Record};
use crate::admin::{produce_request, produce_response};
use crate::connection::Client;

/// What a [`Producer`](super::Producer) handle asks of the task.
pub(super) enum Command {
    Send(Record, Waiter),
    Flush(oneshot::Sender<()>),
}

/// The producer's background task. Ends when every `Producer` handle is gone and
/// everything queued has its answer.
pub(super) async fn run(
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
