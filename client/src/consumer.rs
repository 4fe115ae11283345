//! [`Consumer`]: a member of a stream-mode consumer group.
//!
//! The consumer joins the group, then a background task heartbeats and publishes the
//! member's current assignment on a `watch` channel (rejoining as a new member if the
//! broker forgot this one: session expiry, broker restart). The consumer applies the
//! latest assignment at the top of every call: partitions it lost are dropped with
//! whatever was buffered for them; partitions it gained start at the group's committed
//! offset. Records come from the [fetch engine](crate::fetcher).
//!
//! Delivery is at least once. A commit records positions of records already
//! *returned* to the caller, never beyond; records returned but not committed when a
//! partition moves to another member (or when this process dies) are read again by
//! the next owner. Rebalances in this broker are immediate, so a member cannot commit
//! a partition after losing it: commit often (auto commit) to keep that window small.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::Stream;
use protocol::ops::group::GroupStart;
use protocol::ErrorCode;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::connection::Client;
use crate::error::ClientError;
use crate::fetcher::{Fetcher, DEFAULT_FETCH_MAX_BYTES, DEFAULT_FETCH_MAX_WAIT_MS};
use crate::records::ConsumerRecord;

/// Default for [`ConsumerConfig::session_timeout`].
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 10_000;
/// Default for [`ConsumerConfig::heartbeat_interval`].
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 1_000;
/// Default for [`ConsumerConfig::auto_commit`].
pub const DEFAULT_AUTO_COMMIT_INTERVAL_MS: u64 = 5_000;

/// Where a consumer starts on partitions for which its group has no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest retained record.
    Earliest,
    /// The end of the partition when the group is created: only new records.
    Latest,
    /// This offset (clamped to the records the partition still has).
    Offset(u64),
}

/// Settings of a [`Consumer`].
///
/// ```
/// use std::time::Duration;
/// use client::{ConsumerConfig, StartFrom};
///
/// let config = ConsumerConfig::default()
///     .start(StartFrom::Latest)
///     .auto_commit(None)
///     .session_timeout(Duration::from_secs(3));
/// assert_eq!(config.heartbeat_interval, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Where to start on partitions without a committed offset.
    pub start: StartFrom,
    /// The broker drops the member after this long without a heartbeat
    /// (the broker accepts 1 s to 300 s by default).
    pub session_timeout: Duration,
    /// How often the background task heartbeats; well below the session timeout.
    pub heartbeat_interval: Duration,
    /// Commit the positions of returned records at this interval (checked when
    /// [`Consumer::next`] is called), and on [`Consumer::close`]. `None`: only
    /// explicit [`Consumer::commit`] calls commit.
    pub auto_commit: Option<Duration>,
    /// Largest answer asked for per fetch, per partition.
    pub fetch_max_bytes: u32,
    /// How long the broker may hold a fetch on a partition that has no new data.
    pub fetch_max_wait: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> ConsumerConfig {
        ConsumerConfig {
            start: StartFrom::Earliest,
            session_timeout: Duration::from_millis(DEFAULT_SESSION_TIMEOUT_MS),
            heartbeat_interval: Duration::from_millis(DEFAULT_HEARTBEAT_INTERVAL_MS),
            auto_commit: Some(Duration::from_millis(DEFAULT_AUTO_COMMIT_INTERVAL_MS)),
            fetch_max_bytes: DEFAULT_FETCH_MAX_BYTES,
            fetch_max_wait: Duration::from_millis(DEFAULT_FETCH_MAX_WAIT_MS),
        }
    }
}

impl ConsumerConfig {
    /// Sets [`start`](Self::start).
    pub fn start(mut self, start: StartFrom) -> ConsumerConfig {
        self.start = start;
        self
    }

    /// Sets [`session_timeout`](Self::session_timeout), and the heartbeat interval to
    /// a third of it if that is shorter than the current interval.
    pub fn session_timeout(mut self, timeout: Duration) -> ConsumerConfig {
        self.session_timeout = timeout;
        self.heartbeat_interval = self.heartbeat_interval.min(timeout / 3);
        self
    }

    /// Sets [`heartbeat_interval`](Self::heartbeat_interval).
    pub fn heartbeat_interval(mut self, interval: Duration) -> ConsumerConfig {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets [`auto_commit`](Self::auto_commit).
    pub fn auto_commit(mut self, interval: Option<Duration>) -> ConsumerConfig {
        self.auto_commit = interval;
        self
    }

    /// Sets [`fetch_max_bytes`](Self::fetch_max_bytes).
    pub fn fetch_max_bytes(mut self, bytes: u32) -> ConsumerConfig {
        self.fetch_max_bytes = bytes;
        self
    }

    /// Sets [`fetch_max_wait`](Self::fetch_max_wait).
    pub fn fetch_max_wait(mut self, wait: Duration) -> ConsumerConfig {
        self.fetch_max_wait = wait;
        self
    }

    fn group_start(&self) -> GroupStart {
        match self.start {
            StartFrom::Latest => GroupStart::Latest,
            StartFrom::Earliest | StartFrom::Offset(_) => GroupStart::Earliest,
        }
    }
}

/// This member's place in the group, as last reported by the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Membership {
    member_id: String,
    generation: u32,
    /// Sorted.
    partitions: Vec<u32>,
}

impl Membership {
    fn new(member_id: String, generation: u32, mut partitions: Vec<u32>) -> Membership {
        partitions.sort_unstable();
        Membership {
            member_id,
            generation,
            partitions,
        }
    }
}

/// How to get from one applied assignment to the next: which partitions keep their
/// positions, and which must be (re)started from the group's committed offsets.
#[derive(Debug, PartialEq, Eq)]
struct AssignmentChange {
    keep: Vec<u32>,
    start: Vec<u32>,
    drop: Vec<u32>,
}

/// Pure: a partition keeps this member's position only if the member is the same and
/// the generation moved by at most one. Across two or more generations the partition
/// may have been owned by someone else in between, who may have committed further.
fn plan_change(old: Option<&Membership>, new: &Membership) -> AssignmentChange {
    let Some(old) = old else {
        return AssignmentChange {
            keep: Vec::new(),
            start: new.partitions.clone(),
            drop: Vec::new(),
        };
    };
    let continuous = old.member_id == new.member_id
        && (new.generation == old.generation || new.generation == old.generation.wrapping_add(1));
    let mut change = AssignmentChange {
        keep: Vec::new(),
        start: Vec::new(),
        drop: Vec::new(),
    };
    for &p in &new.partitions {
        if continuous && old.partitions.binary_search(&p).is_ok() {
            change.keep.push(p);
        } else {
            change.start.push(p);
        }
    }
    for &p in &old.partitions {
        if change.keep.binary_search(&p).is_err() {
            change.drop.push(p);
        }
    }
    change
}

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
        let heartbeater = Arc::new(Heartbeater {
            client: self.clone(),
            group: group.to_string(),
            topic: topic.to_string(),
            session_timeout: config.session_timeout,
            start: config.group_start(),
            membership: tx,
            beating: tokio::sync::Mutex::new(()),
        });
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

    /// Commits, for each partition this consumer owns, the offset after the last
    /// record returned by [`next`](Self::next) — never past it. Partitions with
    /// nothing new are skipped.
    ///
    /// If the broker refuses with `stale_generation` (the group rebalanced since the
    /// assignment was applied), the consumer heartbeats to learn the new assignment,
    /// applies it, and commits once more the partitions it still owns, whose
    /// positions stay valid; positions of partitions it lost are dropped (their new
    /// owner resumes from the last commit). A second refusal is returned as the error.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        match self.commit_returned().await {
            Err(e) if e.code() == Some(ErrorCode::StaleGeneration) => {
                tracing::debug!(group = %self.group, error = %e, "commit raced a rebalance");
                self.heartbeater.beat().await;
                self.commit_returned().await
            }
            other => other,
        }
    }

    async fn commit_returned(&mut self) -> Result<(), ClientError> {
        self.apply_membership().await?;
        let offsets: Vec<(u32, u64)> = self
            .returned
            .iter()
            .filter(|(p, o)| self.committed.get(p) != Some(o))
            .map(|(&p, &o)| (p, o))
            .collect();
        self.commit_offsets(&offsets).await
    }

    /// Commits explicit `(partition, next offset to read)` pairs in the applied
    /// generation. The broker refuses partitions this member does not own.
    pub async fn commit_offsets(&mut self, offsets: &[(u32, u64)]) -> Result<(), ClientError> {
        self.last_commit = Instant::now();
        if offsets.is_empty() {
            return Ok(());
        }
        let Some(membership) = &self.applied else {
            return Err(ClientError::Closed("the consumer"));
        };
        self.client
            .commit_offsets(
                &self.group,
                &membership.member_id,
                membership.generation,
                &self.topic,
                offsets,
            )
            .await?;
        for &(p, o) in offsets {
            self.committed.insert(p, o);
        }
        tracing::debug!(group = %self.group, ?offsets, "committed");
        Ok(())
    }

    /// Commits (if auto commit is on), leaves the group and stops heartbeating. The
    /// group rebalances at once instead of waiting for the session to time out.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let committed = if self.config.auto_commit.is_some() {
            self.commit().await
        } else {
            Ok(())
        };
        self.stop_heartbeat();
        self.closed = true;
        let member_id = self.member_id();
        let left = self.client.leave_group(&self.group, &member_id).await;
        committed.and(left)
    }

    fn stop_heartbeat(&mut self) {
        if let Some(task) = self.heartbeat.take() {
            task.abort();
        }
    }

    async fn maybe_auto_commit(&mut self) {
        let Some(interval) = self.config.auto_commit else {
            return;
        };
        if self.last_commit.elapsed() < interval {
            return;
        }
        if let Err(error) = self.commit().await {
            // Expected around rebalances; the positions stay and the next commit
            // (in the new generation) covers them if the partitions stayed ours.
            tracing::warn!(group = %self.group, %error, "auto commit failed");
        }
    }

    /// Brings the fetcher in line with the latest assignment. Cancel-safe: the
    /// lookups come first, the state changes after them, all at once.
    async fn apply_membership(&mut self) -> Result<(), ClientError> {
        let current = self.membership.borrow().clone();
        if self.applied.as_ref() == Some(&current) {
            return Ok(());
        }
        let change = plan_change(self.applied.as_ref(), &current);
        let starts = if change.start.is_empty() {
            Vec::new()
        } else {
            Self::starting_offsets(
                &self.client,
                &self.group,
                &self.topic,
                self.config.start,
                &change.start,
            )
            .await?
        };
        for p in &change.drop {
            self.fetcher.revoke(*p);
            self.returned.remove(p);
            self.committed.remove(p);
        }
        for (p, offset, committed) in starts {
            self.fetcher.assign(p, offset);
            self.returned.insert(p, offset);
            // An untouched partition is not committed again; with no committed offset
            // the start position stands in for one.
            self.committed.insert(p, committed.unwrap_or(offset));
        }
        tracing::debug!(group = %self.group, ?current, ?change, "assignment applied");
        self.applied = Some(current);
        Ok(())
    }

    /// `(partition, start offset, committed offset)` for newly owned partitions.
    ///
    /// An associated function over the fields it needs, not `&self`: a future holding
    /// `&Consumer` would need `Consumer: Sync`, and its fetcher is not, which would make
    /// the consumer unusable inside `tokio::spawn`.
    async fn starting_offsets(
        client: &Client,
        group: &str,
        topic: &str,
        start_from: StartFrom,
        partitions: &[u32],
    ) -> Result<Vec<(u32, u64, Option<u64>)>, ClientError> {
        let committed: HashMap<u32, Option<u64>> = client
            .fetch_offsets(group, topic)
            .await?
            .into_iter()
            .map(|c| (c.partition, c.offset))
            .collect();
        let needs_bounds = partitions
            .iter()
            .any(|p| committed.get(p).copied().flatten().is_none());
        let bounds: HashMap<u32, (u64, u64)> = if needs_bounds {
            client
                .describe_topic(topic)
                .await?
                .partitions
                .into_iter()
                .map(|p| (p.partition, (p.start_offset, p.end_offset)))
                .collect()
        } else {
            HashMap::new()
        };
        let mut starts = Vec::with_capacity(partitions.len());
        for &p in partitions {
            let committed = committed.get(&p).copied().flatten();
            let offset = match committed {
                Some(offset) => offset,
                None => {
                    let (start, end) = bounds.get(&p).copied().unwrap_or((0, 0));
                    match start_from {
                        StartFrom::Earliest => start,
                        StartFrom::Latest => end,
                        StartFrom::Offset(o) => o.clamp(start, end),
                    }
                }
            };
            starts.push((p, offset, committed));
        }
        Ok(starts)
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

/// Heartbeats for one member and publishes its membership. Shared by the background
/// task and the consumer (which heartbeats at once when a commit finds the group has
/// moved on); the lock keeps the two from both rejoining after the broker forgot us.
#[derive(Debug)]
struct Heartbeater {
    client: Client,
    group: String,
    topic: String,
    session_timeout: Duration,
    start: GroupStart,
    membership: watch::Sender<Membership>,
    beating: tokio::sync::Mutex<()>,
}

impl Heartbeater {
    /// One heartbeat; publishes the membership if it changed.
    async fn beat(&self) {
        let _one_at_a_time = self.beating.lock().await;
        let current = self.membership.borrow().clone();
        let group = &self.group;
        match self
            .client
            .heartbeat(group, &current.member_id, current.generation)
            .await
        {
            Ok(answer) => {
                let next = Membership::new(
                    current.member_id.clone(),
                    answer.generation,
                    answer.partitions,
                );
                if next != current {
                    tracing::debug!(%group, ?next, "rebalanced");
                    self.membership.send_replace(next);
                }
            }
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::UnknownMember | ErrorCode::UnknownGroup)
                ) =>
            {
                // The broker forgot us (session expired, broker restarted): join again
                // as a new member; the consumer restarts from committed offsets.
                tracing::warn!(%group, error = %e, "membership lost; rejoining");
                let joined = self
                    .client
                    .join_group(group, &self.topic, "", self.session_timeout, self.start)
                    .await;
                match joined {
                    Ok(joined) => {
                        self.membership.send_replace(Membership::new(
                            joined.member_id,
                            joined.generation,
                            joined.partitions,
                        ));
                    }
                    Err(error) => tracing::warn!(%group, %error, "rejoin failed; retrying"),
                }
            }
            Err(error) => tracing::warn!(%group, %error, "heartbeat failed; retrying"),
        }
    }
}

async fn heartbeat_loop(heartbeater: Arc<Heartbeater>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; the join just happened
    while !heartbeater.membership.is_closed() {
        ticker.tick().await;
        heartbeater.beat().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(member: &str, generation: u32, partitions: &[u32]) -> Membership {
        Membership::new(member.into(), generation, partitions.to_vec())
    }

    #[test]
    fn first_assignment_starts_everything() {
        let change = plan_change(None, &m("a", 1, &[2, 0]));
        assert_eq!(change.start, [0, 2]);
        assert!(change.keep.is_empty() && change.drop.is_empty());
    }

    #[test]
    fn next_generation_keeps_positions_of_kept_partitions() {
        let change = plan_change(Some(&m("a", 1, &[0, 1, 2, 3])), &m("a", 2, &[0, 2]));
        assert_eq!(change.keep, [0, 2]);
        assert!(change.start.is_empty());
        assert_eq!(change.drop, [1, 3]);
    }

    #[test]
    fn skipped_generations_or_a_new_member_id_restart_from_commits() {
        // Partition 0 may have belonged to another member in generation 2.
        let change = plan_change(Some(&m("a", 1, &[0, 1])), &m("a", 3, &[0]));
        assert_eq!(change.start, [0]);
        assert_eq!(change.drop, [0, 1]);
        let change = plan_change(Some(&m("a", 1, &[0])), &m("b", 2, &[0]));
        assert_eq!(change.start, [0]);
        assert_eq!(change.drop, [0]);
    }

    #[test]
    fn session_timeout_pulls_the_heartbeat_interval_down() {
        let config = ConsumerConfig::default().session_timeout(Duration::from_millis(1500));
        assert_eq!(config.heartbeat_interval, Duration::from_millis(500));
        let config = ConsumerConfig::default().session_timeout(Duration::from_secs(60));
        assert_eq!(config.heartbeat_interval, Duration::from_secs(1));
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
