//! [`QueueConsumer`]: work-queue delivery with per-message acks.
//!
//! A queue consumer is a member of a queue-mode group. The broker pushes messages to
//! whichever member has credit, each with its delivery attempt; every message must be
//! settled with [`QueueMessage::ack`], [`QueueMessage::nack`] or
//! [`QueueMessage::nack_with_delay`] before its ack deadline, or the broker redelivers
//! it (after a backoff) and, once the topic's `max_delivery_attempts` are used up,
//! moves it to the dead-letter topic. Settling a message returns its credit, so at
//! most [`QueueConsumerConfig::max_in_flight`] messages are ever held by one member.
//!
//! The files, one job each: this one, the consumer and its config; [`session`], one
//! member id's subscription and heartbeat, replaced when the broker restarts or
//! forgets the member; [`message`], [`QueueMessage`] and the credit its settling earns
//! back; [`acker`], the task coalescing acks.

mod acker;
mod message;
mod session;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::connection::Client;
use crate::error::ClientError;
use crate::records::decode_records;

pub use message::QueueMessage;
use session::Session;

/// Default number of unsettled messages a member holds at most.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 256;

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

/// A member of a queue group. Created by [`Client::queue_consumer`].
///
/// It stays a member across broker restarts and lost connections: when its
/// subscription ends or the broker forgets it, [`next`](Self::next) joins the group
/// again as a new member and carries on (the broker redelivers whatever the old member
/// held unsettled). If the broker cannot be reached, `next` returns the connection
/// error and the consumer stays usable: the next call tries again.
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
    shared: session::Shared,
    /// The member id of the current (or last) session.
    member_id: String,
    /// The current session; `None` between losing one and joining again.
    session: Option<Session>,
    /// A rejoin under way, in its own task so that cancelling `next` (a timeout)
    /// neither loses a joined member nor joins twice.
    joining: Option<JoinHandle<Result<Session, ClientError>>>,
    buffered: VecDeque<QueueMessage>,
    acker: JoinHandle<()>,
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
        let max_in_flight = config.max_in_flight.max(1);
        let (ack_tx, ack_rx) = mpsc::channel(max_in_flight as usize * 2);
        let shared = session::Shared {
            client: self.clone(),
            topic: topic.to_string(),
            group: group.to_string(),
            config,
            acks: ack_tx,
            stopped: Arc::new(AtomicBool::new(false)),
        };
        let session = session::open(shared.clone()).await?;
        let acker = tokio::spawn(acker::run_acker(
            self.clone(),
            group.to_string(),
            topic.to_string(),
            ack_rx,
        ));
        Ok(QueueConsumer {
            shared,
            member_id: session.member_id.clone(),
            session: Some(session),
            joining: None,
            buffered: VecDeque::new(),
            acker,
        })
    }
}

impl QueueConsumer {
    /// The member id the broker gave this consumer (a new one after each rejoin).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The next message, waiting as long as it takes, rejoining the group if the
    /// connection dropped or the broker forgot this member (see [`QueueConsumer`]).
    /// Fails with the error of a rejoin that failed: a connection error (call again to
    /// retry) or the broker's refusal (the topic was deleted, for instance). Never
    /// `None` today; the `Option` is kept so that the loop in the example above reads
    /// naturally. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<QueueMessage>, ClientError> {
        loop {
            if let Some(message) = self.buffered.pop_front() {
                return Ok(Some(message));
            }
            let Some(session) = self.session.as_mut() else {
                self.rejoin().await?;
                continue;
            };
            let delivery = tokio::select! {
                delivery = session.subscription.next() => delivery,
                () = session.lost.notified() => None,
            };
            let Some(delivery) = delivery else {
                if let Some(lost) = self.session.take() {
                    tracing::warn!(
                        group = %self.shared.group,
                        member = %lost.member_id,
                        "queue membership lost (connection dropped or broker forgot the member); rejoining"
                    );
                    lost.end();
                }
                continue;
            };
            let settler = session.settler.clone();
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
                    settler: settler.clone(),
                }));
        }
    }

    /// Joins again, in a task that survives this call being cancelled.
    async fn rejoin(&mut self) -> Result<(), ClientError> {
        let shared = &self.shared;
        let joining = self
            .joining
            .get_or_insert_with(|| tokio::spawn(session::open(shared.clone())));
        let joined = joining.await;
        self.joining = None;
        let session =
            joined.map_err(|_| ClientError::Closed("the queue consumer's rejoin task"))??;
        self.member_id = session.member_id.clone();
        self.session = Some(session);
        Ok(())
    }

    /// Stops asking the broker for more messages: settling the ones already here no
    /// longer returns credit. For a consumer that wants exactly N messages (whatever
    /// it is handed beyond them and does not settle is redelivered, and counts as an
    /// attempt).
    pub fn stop_taking(&self) {
        self.shared.stopped.store(true, Ordering::Release);
    }

    /// Unsubscribes and leaves the group. Unsettled messages are redelivered to other
    /// members (after the backoff). A member the broker already forgot (it restarted)
    /// has nothing to leave, and closes without error.
    pub async fn close(mut self) -> Result<(), ClientError> {
        if let Some(joining) = self.joining.take() {
            if let Ok(Ok(session)) = joining.await {
                self.session = Some(session);
            }
        }
        self.acker.abort();
        match self.session.take() {
            Some(session) => session.close().await,
            None => Ok(()),
        }
    }
}

impl Drop for QueueConsumer {
    fn drop(&mut self) {
        // The session's heartbeat stops with it; a rejoin under way is abandoned.
        if let Some(joining) = self.joining.take() {
            joining.abort();
        }
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
