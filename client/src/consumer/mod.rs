//! [`Consumer`]: a member of a stream-mode consumer group.
//!
//! The consumer joins the group, then a background task heartbeats and publishes the
//! member's current assignment on a `watch` channel (rejoining as a new member if the
//! broker forgot this one: session expiry, broker restart). The consumer applies the
//! latest assignment at the top of every call: partitions it lost are committed (the
//! positions of the records it returned) and dropped with whatever was buffered for
//! them; partitions it gained start at the group's committed offset. Records come
//! from the [fetch engine](crate::fetcher).
//!
//! Delivery is at least once. A commit records positions of records already
//! *returned* to the caller, never beyond. The broker hands a partition over in two
//! phases: it stops telling this member about it, and gives it to the next member only
//! once this one heartbeats that it applied that change, by which time it has committed
//! the partition. So a rebalance re-delivers nothing; what is read again is what a
//! member that died (or stopped polling for a whole session timeout) had returned
//! since its last commit: commit often (auto commit) to keep that window small.
//!
//! The files, one job each:
//! - this one: [`Consumer`], its creation ([`Client::consumer`]), reading
//!   ([`next`](Consumer::next), [`stream`](Consumer::stream)) and leaving the group;
//! - [`config`]: [`ConsumerConfig`], [`StartFrom`] and their defaults;
//! - [`membership`]: this member's place in the group, and the heartbeat task that
//!   keeps it (rejoining when the broker forgot the member);
//! - [`assignment`]: following the membership: the pure plan of which partitions keep
//!   their positions, and applying it to the fetcher;
//! - [`commit`]: committing the positions of returned records, explicitly or at the
//!   auto-commit interval.

mod assignment;
mod commit;
mod config;
mod membership;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use futures_util::Stream;
use protocol::ErrorCode;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::connection::Client;
use crate::error::ClientError;
use crate::fetcher::Fetcher;
use crate::records::ConsumerRecord;

pub use config::{
    ConsumerConfig, StartFrom, DEFAULT_AUTO_COMMIT_INTERVAL_MS, DEFAULT_HEARTBEAT_INTERVAL_MS,
    DEFAULT_SESSION_TIMEOUT_MS,
};
use membership::{heartbeat_loop, Heartbeater, Membership};

/// A consumer-group member reading one topic. Created by [`Client::consumer`].
///
/// ```no_run
/// use client::{Client, ConsumerConfig};
///
/// # async fn demo() -> Result<(), client::ClientError> {
/// let client = Client::connect("127.0.0.1:7171").await?;
/// let mut consumer = client.consumer("orders", "billing", ConsumerConfig::default()).await?;
/// for _ in 0..100 {
///     let record = consumer.next().await?;
///     println!("partition {} offset {}: {:?}", record.partition, record.offset, record.value);
/// }
/// consumer.close().await?; // commits (auto-commit is on by default) and leaves the group
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Consumer {
    client: Client,
    topic: String,
    group: String,
    config: ConsumerConfig,
    membership: watch::Receiver<Membership>,
    heartbeater: Arc<Heartbeater>,
    applied: Option<Membership>,
    fetcher: Fetcher,
    /// Per owned partition: the offset after the last record returned to the caller.
    returned: BTreeMap<u32, u64>,
    /// Per owned partition: the offset last committed (or found committed).
    committed: HashMap<u32, u64>,
    last_commit: Instant,
    heartbeat: Option<JoinHandle<()>>,
    closed: bool,
}

impl Client {
    /// Joins `group` (creating it if needed) to read `topic`, and starts heartbeating.
    pub async fn consumer(
        &self,
        topic: &str,
        group: &str,
        config: ConsumerConfig,
    ) -> Result<Consumer, ClientError> {
        config.validate()?;
        let joined = self
            .join_group(
                group,
                topic,
                "",
                config.session_timeout,
                config.group_start(),
            )
            .await?;
        let membership = Membership::new(joined.member_id, joined.generation, joined.partitions);
        tracing::debug!(group, topic, ?membership, "joined");
        let (tx, rx) = watch::channel(membership);
        let heartbeater = Arc::new(Heartbeater::new(
            self.clone(),
            group,
            topic,
            config.session_timeout,
            config.group_start(),
            tx,
        ));
        let heartbeat = tokio::spawn(heartbeat_loop(
            heartbeater.clone(),
            config.heartbeat_interval,
        ));
        let fetcher = Fetcher::new(
            self.clone(),
            topic,
            config.fetch_max_bytes,
            config.fetch_max_wait,
        );
        let mut consumer = Consumer {
            client: self.clone(),
            topic: topic.to_string(),
            group: group.to_string(),
            config,
            membership: rx,
            heartbeater,
            applied: None,
            fetcher,
            returned: BTreeMap::new(),
            committed: HashMap::new(),
            last_commit: Instant::now(),
            heartbeat: Some(heartbeat),
            closed: false,
        };
        consumer.apply_membership().await?;
        Ok(consumer)
    }
}

impl Consumer {
    /// The member id the broker gave this consumer.
    pub fn member_id(&self) -> String {
        self.membership.borrow().member_id.clone()
    }

    /// The partitions this consumer currently reads (as last applied), sorted.
    pub fn assignment(&self) -> Vec<u32> {
        self.applied
            .as_ref()
            .map(|m| m.partitions.clone())
            .unwrap_or_default()
    }

    /// The group generation of the applied assignment.
    pub fn generation(&self) -> Option<u32> {
        self.applied.as_ref().map(|m| m.generation)
    }

    /// Per owned partition, the offset after the last record returned: what
    /// [`commit`](Self::commit) would commit.
    pub fn positions(&self) -> Vec<(u32, u64)> {
        self.returned.iter().map(|(&p, &o)| (p, o)).collect()
    }

    /// Takes back `record`, the last one [`next`](Self::next) returned for its
    /// partition, as if it had not been returned: [`commit`](Self::commit) stops short
    /// of it, and the partition is read again from it. For a caller that could not
    /// hand the record on (brokerctl, when the reader of its output went away), so
    /// that it is neither committed nor lost. Refused with
    /// [`ClientError::InvalidArgument`] for any other record.
    pub fn give_back(&mut self, record: &ConsumerRecord) -> Result<(), ClientError> {
        let position = self.returned.get_mut(&record.partition);
        match position {
            Some(position) if *position == record.offset + 1 => {
                *position = record.offset;
                self.fetcher.assign(record.partition, record.offset);
                Ok(())
            }
            _ => Err(ClientError::InvalidArgument(format!(
                "give_back takes the last record returned for a partition; offset {} of \
                 partition {} is not",
                record.offset, record.partition
            ))),
        }
    }

    /// The next record from any assigned partition, waiting as long as it takes.
    ///
    /// Cancel-safe: wrapping it in `tokio::time::timeout` loses no records. Records of
    /// one partition come in offset order. Auto commit, if configured, runs here.
    pub async fn next(&mut self) -> Result<ConsumerRecord, ClientError> {
        if self.closed {
            return Err(ClientError::Closed("the consumer"));
        }
        loop {
            self.apply_membership().await?;
            self.maybe_auto_commit().await;
            if let Some(record) = self.fetcher.pop() {
                debug_assert!(
                    self.returned.get(&record.partition).copied().unwrap_or(0) <= record.offset,
                    "records of a partition are returned in offset order"
                );
                self.returned.insert(record.partition, record.offset + 1);
                return Ok(record);
            }
            tokio::select! {
                result = self.fetcher.fill() => result?,
                changed = self.membership.changed() => {
                    if changed.is_err() {
                        return Err(ClientError::Closed("the consumer's heartbeat task"));
                    }
                }
            }
        }
    }

    /// The records as a `Stream` (each item is what [`next`](Self::next) returns).
    pub fn stream(&mut self) -> impl Stream<Item = Result<ConsumerRecord, ClientError>> + '_ {
        futures_util::stream::unfold(self, |consumer| async move {
            let item = consumer.next().await;
            Some((item, consumer))
        })
    }

    /// Commits (if auto commit is on), leaves the group and stops heartbeating. The
    /// group rebalances at once instead of waiting for the session to time out. A
    /// member the broker has already forgotten (it restarted) has nothing to leave:
    /// that is not an error.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let committed = if self.config.auto_commit.is_some() {
            self.commit().await
        } else {
            Ok(())
        };
        self.stop_heartbeat();
        self.closed = true;
        let member_id = self.member_id();
        let left = match self.client.leave_group(&self.group, &member_id).await {
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::UnknownMember | ErrorCode::UnknownGroup)
                ) =>
            {
                tracing::debug!(group = %self.group, member = %member_id, "already forgotten by the broker");
                Ok(())
            }
            other => other,
        };
        committed.and(left)
    }

    fn stop_heartbeat(&mut self) {
        if let Some(task) = self.heartbeat.take() {
            task.abort();
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.stop_heartbeat();
        if self.closed {
            return;
        }
        // Best effort: leave now so the group need not wait for the session timeout.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            let group = self.group.clone();
            let member_id = self.member_id();
            runtime.spawn(async move {
                let _ = client.leave_group(&group, &member_id).await;
            });
        }
    }
}

#[cfg(test)]
mod send_tests {
    use super::*;

    fn assert_send<T: Send>(_: T) {}

    /// A consumer must be usable inside `tokio::spawn` on a multi-thread runtime.
    #[allow(dead_code, unreachable_code, clippy::diverging_sub_expression)]
    fn consumer_futures_are_send(client: Client, mut consumer: Consumer) {
        assert_send(client.consumer("t", "g", ConsumerConfig::default()));
        assert_send(consumer.next());
        assert_send(consumer.commit());
        assert_send(consumer.close());
    }
}
