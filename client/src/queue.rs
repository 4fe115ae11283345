//! [`QueueConsumer`]: work-queue delivery with per-message acks.
//!
//! A queue consumer is a member of a queue-mode group. The broker pushes messages to
//! whichever member has credit, each with its delivery attempt; every message must be
//! settled with [`QueueMessage::ack`], [`QueueMessage::nack`] or
//! [`QueueMessage::nack_with_delay`] before its ack deadline, or the broker redelivers
//! it (after a backoff) and, once the topic's `max_delivery_attempts` are used up,
//! moves it to the dead-letter topic. Settling a message returns its credit, so at
//! most [`QueueConsumerConfig::max_in_flight`] messages are ever held by one member.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protocol::ops::ack::{AckRequest, ExtendDeadlineRequest, NackRequest};
use protocol::ops::subscribe::{CreditRequest, StartPosition, SubscribeTarget};
use protocol::Request;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::connection::Client;
use crate::error::ClientError;
use crate::records::{decode_records, ConsumerRecord};
use crate::subscription::Subscription;

/// Default number of unsettled messages a member holds at most.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 256;
/// Acks coalesced into one Ack request, at most.
pub const MAX_ACKS_PER_REQUEST: usize = 1024;
/// Byte credit granted with every message credit: effectively unlimited, the
/// message credit is what paces delivery.
const BYTE_CREDIT: u64 = 1 << 40;

/// Settings of a [`QueueConsumer`].
#[derive(Debug, Clone)]
pub struct QueueConsumerConfig {
    /// Unsettled messages this member holds at most (its credit).
    pub max_in_flight: u32,
    /// The broker drops the member (and redelivers its messages) after this long
    /// without a heartbeat.
    pub session_timeout: Duration,
    /// How often the background task heartbeats; not zero
    /// ([`Client::queue_consumer`] refuses that with
    /// [`ClientError::InvalidArgument`]).
    pub heartbeat_interval: Duration,
    /// Per-group overrides of the topic's queue settings, such as
    /// `("max_delivery_attempts", "3")` or `("ack_deadline_ms", "10000")`.
    pub overrides: Vec<(String, String)>,
}

impl QueueConsumerConfig {
    /// Refuses settings the consumer cannot run with.
    fn validate(&self) -> Result<(), ClientError> {
        if self.heartbeat_interval.is_zero() {
            return Err(ClientError::InvalidArgument(format!(
                "the queue consumer's heartbeat interval is zero (session timeout {:?}); \
                 give it a positive interval well below the session timeout",
                self.session_timeout
            )));
        }
        Ok(())
    }
}

impl Default for QueueConsumerConfig {
    fn default() -> Self {
        QueueConsumerConfig {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(1),
            overrides: Vec::new(),
        }
    }
}

/// Who to tell when an ack is confirmed.
type AckWaiter = oneshot::Sender<Result<(), ClientError>>;
/// An ack waiting to be sent: partition, offset, and who to tell.
type PendingAck = (u32, u64, AckWaiter);

/// What settling a message needs, shared by all messages of one consumer.
#[derive(Debug)]
struct Settler {
    client: Client,
    /// Acks go through the coalescing task: many acks issued together travel as one
    /// request per partition instead of one round trip each.
    acks: mpsc::Sender<PendingAck>,
    group: String,
    topic: String,
    subscription_id: u64,
    /// Credit earned back by settled messages, not yet granted.
    earned: AtomicU32,
    /// Set by [`QueueConsumer::stop_taking`]: settle without asking for more.
    stopped: std::sync::atomic::AtomicBool,
    grant_every: u32,
}

impl Settler {
    async fn settled(&self) -> Result<(), ClientError> {
        if self.stopped.load(Ordering::Acquire) {
            return Ok(());
        }
        let earned = self.earned.fetch_add(1, Ordering::AcqRel) + 1;
        if earned >= self.grant_every {
            let messages = self.earned.swap(0, Ordering::AcqRel);
            if messages > 0 {
                let request = Request::Credit(CreditRequest {
                    subscription_id: self.subscription_id,
                    messages,
                    bytes: BYTE_CREDIT,
                });
                self.client.request(request).await?;
            }
        }
        Ok(())
    }
}

/// One delivered message. Settle it exactly once.
#[derive(Debug)]
pub struct QueueMessage {
    /// The message itself.
    pub record: ConsumerRecord,
    /// Which delivery this is: 1 the first time, more on redeliveries.
    pub attempt: u32,
    settler: Arc<Settler>,
}

impl QueueMessage {
    /// The value (`None` for a tombstone).
    pub fn value(&self) -> Option<&Bytes> {
        self.record.value.as_ref()
    }

    /// The headers, in order.
    pub fn headers(&self) -> &[(String, Bytes)] {
        &self.record.headers
    }

    /// Done: the message is never delivered again. Resolves once the broker has
    /// recorded the ack durably.
    pub async fn ack(self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        let pending = (self.record.partition, self.record.offset, tx);
        let acked = match self.settler.acks.send(pending).await {
            Ok(()) => rx
                .await
                .unwrap_or(Err(ClientError::Closed("the queue consumer"))),
            Err(_) => Err(ClientError::Closed("the queue consumer")),
        };
        // Settled either way (a refused ack means the broker no longer holds the
        // message for us): its credit comes back, or the consumer would starve.
        let credit = self.settler.settled().await;
        acked.and(credit)
    }

    /// Failed: redeliver after the backoff, or dead-letter it if this was the last
    /// attempt. The reason travels to the dead-letter headers.
    pub async fn nack(self, reason: &str) -> Result<(), ClientError> {
        self.nack_inner(reason, None).await
    }

    /// Failed: redeliver after `delay` (instead of the backoff), or dead-letter it.
    pub async fn nack_with_delay(self, reason: &str, delay: Duration) -> Result<(), ClientError> {
        let delay_ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
        self.nack_inner(reason, Some(delay_ms)).await
    }

    async fn nack_inner(self, reason: &str, delay_ms: Option<u32>) -> Result<(), ClientError> {
        let request = Request::Nack(NackRequest {
            group: self.settler.group.clone(),
            topic: self.settler.topic.clone(),
            partition: self.record.partition,
            offset: self.record.offset,
            reason: reason.to_string(),
            redelivery_delay_ms: delay_ms,
        });
        let nacked = self.settler.client.request(request).await.map(drop);
        // As for `ack`: the credit comes back whatever the answer.
        let credit = self.settler.settled().await;
        nacked.and(credit)
    }

    /// Still working on it: move the ack deadline to `by` from now.
    pub async fn extend_deadline(&self, by: Duration) -> Result<(), ClientError> {
        let request = Request::ExtendDeadline(ExtendDeadlineRequest {
            group: self.settler.group.clone(),
            topic: self.settler.topic.clone(),
            partition: self.record.partition,
            offset: self.record.offset,
            extend_ms: u32::try_from(by.as_millis()).unwrap_or(u32::MAX),
        });
        self.settler.client.request(request).await.map(drop)
    }
}

/// A member of a queue group. Created by [`Client::queue_consumer`].
///
/// ```no_run
/// use client::{Client, QueueConsumerConfig};
///
/// # async fn demo() -> Result<(), client::ClientError> {
/// let client = Client::connect("127.0.0.1:7171").await?;
/// let mut jobs = client.queue_consumer("jobs", "workers", QueueConsumerConfig::default()).await?;
/// while let Some(message) = jobs.next().await? {
///     match message.value().map(|v| v.len()) {
///         Some(len) if len > 0 => message.ack().await?,
///         _ => message.nack("empty job").await?,
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct QueueConsumer {
    client: Client,
    group: String,
    member_id: String,
    subscription: Option<Subscription>,
    buffered: VecDeque<QueueMessage>,
    settler: Arc<Settler>,
    heartbeat: JoinHandle<()>,
    acker: JoinHandle<()>,
}

/// Sends acks in batches: whatever is queued when a request goes out travels together,
/// one Ack request per partition, several requests in flight.
async fn run_acker(
    client: Client,
    group: String,
    topic: String,
    mut acks: mpsc::Receiver<PendingAck>,
) {
    while let Some(first) = acks.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_ACKS_PER_REQUEST {
            match acks.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let mut by_partition: BTreeMap<u32, Vec<(u64, AckWaiter)>> = BTreeMap::new();
        for (partition, offset, done) in batch {
            by_partition
                .entry(partition)
                .or_default()
                .push((offset, done));
        }
        for (partition, waiters) in by_partition {
            let request = Request::Ack(AckRequest {
                group: group.clone(),
                topic: topic.clone(),
                partition,
                offsets: waiters.iter().map(|(offset, _)| *offset).collect(),
            });
            let client = client.clone();
            tokio::spawn(async move {
                let result = client.request(request).await.map(drop);
                for (_, done) in waiters {
                    let _ = done.send(result.clone());
                }
            });
        }
    }
}

impl Client {
    /// Joins queue group `group` on `topic` and subscribes for deliveries.
    pub async fn queue_consumer(
        &self,
        topic: &str,
        group: &str,
        config: QueueConsumerConfig,
    ) -> Result<QueueConsumer, ClientError> {
        config.validate()?;
        let overrides: Vec<(&str, &str)> = config
            .overrides
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let joined = self
            .join_queue_group(group, topic, "", config.session_timeout, &overrides)
            .await?;
        let member_id = joined.member_id.clone();
        let target = SubscribeTarget::Group {
            group: group.to_string(),
            member_id: member_id.clone(),
        };
        let max_in_flight = config.max_in_flight.max(1);
        let subscription = self
            .subscribe(
                topic,
                target,
                StartPosition::Earliest,
                max_in_flight,
                BYTE_CREDIT,
            )
            .await?;
        let (ack_tx, ack_rx) = mpsc::channel(max_in_flight as usize * 2);
        let acker = tokio::spawn(run_acker(
            self.clone(),
            group.to_string(),
            topic.to_string(),
            ack_rx,
        ));
        let settler = Arc::new(Settler {
            client: self.clone(),
            acks: ack_tx,
            group: group.to_string(),
            topic: topic.to_string(),
            subscription_id: subscription.id(),
            earned: AtomicU32::new(0),
            stopped: std::sync::atomic::AtomicBool::new(false),
            grant_every: (max_in_flight / 8).max(1),
        });
        let heartbeat = {
            let client = self.clone();
            let (group, member) = (group.to_string(), member_id.clone());
            let mut generation = joined.generation;
            let interval = config.heartbeat_interval;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                loop {
                    tick.tick().await;
                    match client.heartbeat(&group, &member, generation).await {
                        Ok(answer) => generation = answer.generation,
                        Err(error) if error.is_connection_error() => continue,
                        Err(error) => {
                            tracing::warn!(%group, %member, %error, "queue member heartbeat refused; stopping");
                            return;
                        }
                    }
                }
            })
        };
        Ok(QueueConsumer {
            client: self.clone(),
            group: group.to_string(),
            member_id,
            subscription: Some(subscription),
            buffered: VecDeque::new(),
            settler,
            heartbeat,
            acker,
        })
    }
}

impl QueueConsumer {
    /// The member id the broker gave this consumer.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The next message, waiting as long as it takes; `None` if the subscription
    /// ended (the connection dropped). Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<QueueMessage>, ClientError> {
        loop {
            if let Some(message) = self.buffered.pop_front() {
                return Ok(Some(message));
            }
            let Some(subscription) = self.subscription.as_mut() else {
                return Ok(None);
            };
            let Some(delivery) = subscription.next().await else {
                return Ok(None);
            };
            let mut records = VecDeque::new();
            decode_records(
                delivery.partition,
                delivery.batches,
                delivery.from_offset,
                Some(delivery.to_offset),
                &mut records,
            )?;
            self.buffered
                .extend(records.into_iter().map(|record| QueueMessage {
                    record,
                    attempt: delivery.attempt,
                    settler: self.settler.clone(),
                }));
        }
    }

    /// Stops asking the broker for more messages: settling the ones already here no
    /// longer returns credit. For a consumer that wants exactly N messages (whatever
    /// it is handed beyond them and does not settle is redelivered, and counts as an
    /// attempt).
    pub fn stop_taking(&self) {
        self.settler.stopped.store(true, Ordering::Release);
    }

    /// Unsubscribes and leaves the group. Unsettled messages are redelivered to other
    /// members (after the backoff).
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.heartbeat.abort();
        self.acker.abort();
        if let Some(subscription) = self.subscription.take() {
            let _ = subscription.unsubscribe().await;
        }
        self.client.leave_group(&self.group, &self.member_id).await
    }
}

impl Drop for QueueConsumer {
    fn drop(&mut self) {
        self.heartbeat.abort();
        // The acker ends by itself once every message (holding a sender) is gone.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_heartbeat_interval_is_refused() {
        assert!(QueueConsumerConfig::default().validate().is_ok());
        let config = QueueConsumerConfig {
            heartbeat_interval: Duration::ZERO,
            ..QueueConsumerConfig::default()
        };
        let error = config.validate().unwrap_err();
        assert!(matches!(error, ClientError::InvalidArgument(_)), "{error}");
        assert!(
            error.to_string().contains("heartbeat interval is zero"),
            "{error}"
        );
    }
}
