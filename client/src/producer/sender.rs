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
//! Each turn of the loop sends what is due, answers the flushes whose batches are all
//! answered, then waits for the first of: an answer; a command, taken only while
//! nothing is waiting to be sent, so a full in-flight window stops the intake; the
//! oldest open batch's linger deadline; the retry backoff.
//!
//! An idempotent producer (see `idempotence.rs`) retries a batch whose answer was
//! lost. Retries go out alone: once every other batch in flight is answered, in
//! sequence order per partition, so they reach the broker in the order it expects;
//! new batches wait behind them. A producer with `idempotent(false)` retries nothing:
//! a Produce that timed out or lost its connection may have been appended, and
//! sending it again could duplicate it. Its records fail and the caller decides.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use protocol::ops::produce::{PartitionSelector, ProduceResponse};
use protocol::ErrorCode;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::accumulator::{Accumulator, ReadyBatch};
use super::ack::{complete, Completed, Waiter};
use super::idempotence::Idempotence;
use super::{ProducerConfig, Record, IDEMPOTENT_MAX_IN_FLIGHT_BATCHES};
use crate::admin::{produce_request, produce_response};
use crate::connection::Client;
use crate::error::ClientError;

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
    let mut idem = config.idempotent.then(Idempotence::default);
    let max_in_flight = match idem {
        Some(_) => config
            .max_in_flight_batches
            .clamp(1, IDEMPOTENT_MAX_IN_FLIGHT_BATCHES),
        None => config.max_in_flight_batches.max(1),
    };
    let mut ready: VecDeque<ReadyBatch> = VecDeque::new();
    let mut in_flight: FuturesUnordered<BoxFuture<'static, Finished>> = FuturesUnordered::new();
    // Batches to send again (idempotent producers only), and not before when.
    let mut retry: Vec<ReadyBatch> = Vec::new();
    let mut retry_at = Instant::now();
    // While asking for a producer id fails for want of a connection: when to ask
    // again, and since when it fails (it gives up after `delivery_timeout`).
    let mut id_retry_at: Option<Instant> = None;
    let mut id_failing_since: Option<Instant> = None;
    // Ids of batches closed and not yet answered, and flushes waiting on them.
    let mut outstanding: BTreeSet<u64> = BTreeSet::new();
    let mut flushes: Vec<(u64, oneshot::Sender<()>)> = Vec::new();
    let mut input_open = true;
    loop {
        for batch in &ready {
            outstanding.insert(batch.id);
        }
        if !retry.is_empty() {
            if in_flight.is_empty() && Instant::now() >= retry_at {
                retry.sort_by_key(|b| (b.partition, b.producer.map(|p| p.sequence)));
                for batch in retry.drain(..) {
                    send(&client, &topic, &config, batch, &mut in_flight).await;
                }
            }
        } else {
            while in_flight.len() < max_in_flight {
                let Some(mut batch) = ready.pop_front() else {
                    break;
                };
                if let Some(state) = idem.as_mut() {
                    if state.needs_id() {
                        let backing_off = id_retry_at.is_some_and(|t| Instant::now() < t);
                        if state.has_unanswered() || backing_off {
                            // A start-over waits for the old id's last answer.
                            ready.push_front(batch);
                            break;
                        }
                        match client.init_producer().await {
                            Ok(id) => {
                                state.set_producer_id(id);
                                (id_retry_at, id_failing_since) = (None, None);
                            }
                            Err(error)
                                if matches!(error, ClientError::Unsupported(_))
                                    || error.code() == Some(ErrorCode::UnknownOperation) =>
                            {
                                tracing::warn!(
                                    %topic,
                                    "the broker does not speak protocol version 2: \
                                     producing without idempotence"
                                );
                                idem = None;
                            }
                            Err(error)
                                if error.is_connection_error()
                                    && id_failing_since
                                        .get_or_insert_with(Instant::now)
                                        .elapsed()
                                        < config.delivery_timeout =>
                            {
                                id_retry_at = Some(Instant::now() + config.retry_backoff);
                                ready.push_front(batch);
                                break;
                            }
                            Err(error) => {
                                outstanding.remove(&batch.id);
                                complete(batch.fail(error));
                                continue;
                            }
                        }
                    }
                }
                if let Some(state) = idem.as_mut() {
                    batch.producer = state.tag(batch.partition);
                    batch.first_sent = Some(Instant::now());
                }
                send(&client, &topic, &config, batch, &mut in_flight).await;
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
        if !input_open && ready.is_empty() && in_flight.is_empty() && retry.is_empty() {
            break;
        }
        let far = Instant::now() + Duration::from_secs(3600);
        let deadline = accumulator.next_deadline();
        tokio::select! {
            biased;
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(again) = finish(done, idem.as_mut(), &config, &mut outstanding) {
                    retry_at = Instant::now() + config.retry_backoff;
                    retry.push(again);
                }
            }
            command = commands.recv(), if input_open && ready.is_empty() && retry.is_empty() => {
                match command {
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
                }
            }
            _ = tokio::time::sleep_until(retry_at), if !retry.is_empty() && in_flight.is_empty() => {}
            _ = tokio::time::sleep_until(id_retry_at.unwrap_or(far)), if id_retry_at.is_some() => {
                id_retry_at = None;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                accumulator.expire(Instant::now(), &mut ready);
            }
        }
    }
    tracing::debug!(%topic, "producer finished");
}

/// A batch whose Produce has finished, with its answer.
struct Finished {
    batch: ReadyBatch,
    result: Result<ProduceResponse, ClientError>,
}

impl ReadyBatch {
    /// The batch's records, to be failed with `error`.
    fn fail(self, error: ClientError) -> Completed {
        Completed {
            partition: self.partition,
            waiters: self.waiters,
            result: Err(error),
        }
    }
}

/// Settles a finished Produce: its records get their answer, or (an idempotent
/// producer's batch whose failure is worth retrying, within its delivery timeout) the
/// batch comes back to be sent again.
fn finish(
    done: Finished,
    idem: Option<&mut Idempotence>,
    config: &ProducerConfig,
    outstanding: &mut BTreeSet<u64>,
) -> Option<ReadyBatch> {
    let Finished { batch, result } = done;
    if let (Some(state), Some(tag)) = (idem, batch.producer) {
        if let Err(error) = &result {
            let in_time = batch
                .first_sent
                .is_some_and(|t| t.elapsed() < config.delivery_timeout);
            if in_time && state.should_retry(batch.partition, tag, error) {
                tracing::debug!(partition = batch.partition, sequence = tag.sequence, %error, "retrying a produce");
                return Some(batch);
            }
        }
        state.finished(batch.partition, tag, result.is_err());
    }
    outstanding.remove(&batch.id);
    complete(Completed {
        partition: batch.partition,
        waiters: batch.waiters,
        result,
    });
    None
}

/// Queues a batch's Produce; a batch that could not even be queued (no connection)
/// finishes at once with that error, so it is retried or failed like any other.
async fn send(
    client: &Client,
    topic: &str,
    config: &ProducerConfig,
    batch: ReadyBatch,
    in_flight: &mut FuturesUnordered<BoxFuture<'static, Finished>>,
) {
    match dispatch(client, topic, config, batch).await {
        Ok(request) => in_flight.push(request),
        Err(failed) => in_flight.push(async move { failed }.boxed()),
    }
}

/// Queues one batch's Produce request on the connection. On failure the batch comes
/// back, carrying the error.
async fn dispatch(
    client: &Client,
    topic: &str,
    config: &ProducerConfig,
    batch: ReadyBatch,
) -> Result<BoxFuture<'static, Finished>, Finished> {
    let selector = PartitionSelector::Partition(batch.partition);
    let (request, wait) = produce_request(
        topic,
        selector,
        config.ack,
        config.ack_timeout,
        batch.producer,
        batch.bytes.clone(),
    );
    let timeout = client.config().request_timeout.saturating_add(wait);
    match client.start(request, timeout, None).await {
        Ok(pending) => Ok(async move {
            let result = pending.wait().await.and_then(produce_response);
            Finished { batch, result }
        }
        .boxed()),
        Err(error) => Err(Finished {
            batch,
            result: Err(error),
        }),
    }
}
