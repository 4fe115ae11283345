//! [`Queues`]: every queue group of the broker, their shared log `__queue_state`, and
//! the subscriptions members hold on them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use protocol::internal::queue::{QueueEvent, QueueRecord};
use protocol::ops::topic::ConfigEntry;

use super::config::QueueConfig;
use super::group::{GroupParts, QueueGroup, Sink};
use super::state::Replayed;
use crate::clock::Clock;
use crate::delivery::{Credit, Pushes};
use crate::error::BrokerError;
use crate::internal::InternalLog;
use crate::metrics::Metrics;
use crate::tasks::Tasks;
use crate::topics::{Topic, TopicConfig, Topics};
use crate::traces::Traces;

/// One group's events as replayed at startup: its name, its topic, and its events with
/// the wall-clock time each was written.
type ReplayedGroup = (Arc<str>, Arc<str>, Vec<(QueueEvent, i64)>);

/// All queue groups.
#[derive(Debug)]
pub struct Queues {
    parts: GroupParts,
    groups: Mutex<HashMap<String, Arc<QueueGroup>>>,
    /// subscription id -> (group, member), for credit and unsubscribe.
    subscriptions: Mutex<HashMap<u64, (Arc<QueueGroup>, String)>>,
}

impl Queues {
    /// Opens the queue-state topic, replays it, and starts a dispatcher for every
    /// group found among `tasks` (blocking I/O; call inside the runtime). `overrides`
    /// gives the settings a group's join overrode, as recorded for `(group, topic)`.
    pub fn open(
        topics: Arc<Topics>,
        tasks: Arc<Tasks>,
        traces: Arc<Traces>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        overrides: impl Fn(&str, &str) -> Vec<ConfigEntry>,
    ) -> Result<Queues, BrokerError> {
        // Events by group, in log order; the topic each group consumes.
        let mut replayed: Vec<ReplayedGroup> = Vec::new();
        let mut index: HashMap<(Arc<str>, Arc<str>), usize> = HashMap::new();
        let config = TopicConfig::internal_default();
        let log = InternalLog::open(
            &topics,
            config,
            clock.clone(),
            |record: QueueRecord, written_ms| {
                let key = (record.group.clone(), record.topic.clone());
                let slot = *index.entry(key).or_insert_with(|| {
                    replayed.push((record.group.clone(), record.topic.clone(), Vec::new()));
                    replayed.len() - 1
                });
                match record.event {
                    Some(event) => replayed[slot].2.push((event, written_ms)),
                    // A tombstone: the group was deleted or purged; what came before
                    // is gone.
                    None => replayed[slot].2.clear(),
                }
            },
        )?;
        let queues = Queues {
            parts: GroupParts {
                log: Arc::new(log),
                topics,
                traces,
                clock,
                metrics,
                tasks,
            },
            groups: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashMap::new()),
        };
        // Every topic's end as recovered, read before any dispatcher can append to a
        // dead-letter topic: a recorded copy at or past its topic's end was lost in a
        // crash and is made again.
        let ends: HashMap<String, u64> = queues
            .parts
            .topics
            .list()
            .iter()
            .filter_map(|t| Some((t.name.clone(), t.partition(0).ok()?.end_offset())))
            .collect();
        for (group, topic, events) in replayed {
            let Ok(topic) = queues.parts.topics.get(&topic) else {
                continue;
            };
            if events.is_empty() {
                continue;
            }
            let recorded = overrides(&group, &topic.name);
            let queue_group = match queues.create_group(&group, topic.clone(), &recorded, false) {
                Ok(queue_group) => queue_group,
                // The topic's settings changed since so that the overrides no longer
                // make a valid policy: the topic's own settings still do.
                Err(error) => {
                    tracing::warn!(group = %group, %error, "recorded overrides are no longer valid; using the topic's settings");
                    queues.create_group(&group, topic, &[], false)?
                }
            };
            let dlq = queue_group.dead_letter_topic_name();
            let dlq_end = ends.get(&dlq).copied();
            let mut inner = queue_group.lock();
            let now_mono_ms = queues.parts.clock.monotonic_ms();
            for (event, written_wall_ms) in &events {
                let replayed = Replayed {
                    written_wall_ms: *written_wall_ms,
                    now_mono_ms,
                };
                inner.state.apply(event, replayed);
            }
            // A dead-letter topic deleted since holds no copy to check: the record stands.
            let exists = |dlq_offset: u64| dlq_end.is_none_or(|end| dlq_offset < end);
            let (settled, redone) = inner.state.confirm_copies(exists, dlq_end.unwrap_or(0));
            drop(inner);
            if redone > 0 {
                tracing::warn!(group = %group, dlq = %dlq, redone, "dead-letter copies lost in a crash; copying them again");
            }
            tracing::info!(group = %group, events = events.len(), dead_letters_confirmed = settled, "restored queue group");
        }
        Ok(queues)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<QueueGroup>>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn create_group(
        &self,
        name: &str,
        topic: Arc<Topic>,
        overrides: &[ConfigEntry],
        latest: bool,
    ) -> Result<Arc<QueueGroup>, BrokerError> {
        let config = QueueConfig::for_group(&topic.name, &topic.config, overrides)?;
        let starts: Vec<u64> = topic
            .partitions
            .iter()
            .map(|p| {
                if latest {
                    p.visible_end()
                } else {
                    p.start_offset()
                }
            })
            .collect();
        let group = Arc::new(QueueGroup::new(
            name,
            topic,
            config,
            &starts,
            self.parts.clone(),
        ));
        if latest {
            // Where "latest" was is recorded before anything is delivered: a group
            // without events is recreated by its next join, which would otherwise
            // start it wherever that join says.
            let positions = starts
                .iter()
                .zip(0u32..)
                .map(|(&at, partition)| QueueEvent::Position {
                    partition,
                    floor: at,
                    read: at,
                    dead_lettered: 0,
                })
                .collect();
            let _inner = group.lock();
            group.persist(positions)?;
        }
        self.lock().insert(name.to_string(), group.clone());
        // A new or restored group runs a dispatcher until it finds nothing to do (it
        // may hold leases from before a restart); members start it again.
        group.start_dispatcher(&group.lock());
        Ok(group)
    }

    /// The group, created if new (starting at each partition's start, or its end with
    /// `latest`); `overrides` (from a join) replace its policy.
    pub fn ensure_group(
        &self,
        name: &str,
        topic: &str,
        overrides: &[ConfigEntry],
        latest: bool,
    ) -> Result<Arc<QueueGroup>, BrokerError> {
        let topic = self.parts.topics.get(topic)?;
        if let Some(group) = self.lock().get(name).cloned() {
            if group.topic.name != topic.name {
                return Err(BrokerError::InvalidRequest(format!(
                    "queue group {name:?} consumes {:?}",
                    group.topic.name
                )));
            }
            if !overrides.is_empty() {
                group.reconfigure(QueueConfig::for_group(
                    &topic.name,
                    &topic.config,
                    overrides,
                )?);
            }
            return Ok(group);
        }
        self.create_group(name, topic, overrides, latest)
    }

    /// The names of the queue groups consuming `topic`, sorted.
    pub fn groups_of(&self, topic: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, group)| group.topic.name == topic)
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// `topic`'s queue defaults changed from `old` to `new`: every group consuming it
    /// takes each new default it did not override at its join.
    pub fn topic_altered(&self, topic: &str, old: &QueueConfig, new: &QueueConfig) {
        let groups: Vec<Arc<QueueGroup>> = self
            .lock()
            .values()
            .filter(|group| group.topic.name == topic)
            .cloned()
            .collect();
        for group in groups {
            let current = group
                .config
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let rebased = current.rebased(old, new);
            if rebased != current {
                tracing::info!(group = %group.name, topic, "queue group takes the topic's new settings");
                group.reconfigure(rebased);
            }
        }
    }

    /// Deletes the group: no more deliveries or settlements, its dispatcher stops, its
    /// subscriptions end, and its state is forgotten (a tombstone on `__queue_state`).
    /// Returns once that is durable; `false` if there was no such group.
    pub async fn delete(&self, name: &str) -> Result<bool, BrokerError> {
        let Some(group) = self.lock().remove(name) else {
            return Ok(false);
        };
        self.subscriptions()
            .retain(|_, (g, _)| !Arc::ptr_eq(g, &group));
        let wait = group.close(Vec::new())?;
        self.parts.log.wait_durable(wait).await?;
        Ok(true)
    }

    /// Purges the group: everything pending, in flight or waiting for a retry is
    /// dropped and the group starts again at every partition's end, keeping its
    /// settings. Returns how many messages were dropped (between each partition's
    /// ack floor and its end), once the purge is durable.
    pub async fn purge(&self, name: &str) -> Result<u64, BrokerError> {
        let old = self.group(name)?;
        let config = old.config();
        let ends: Vec<u64> = old
            .topic
            .partitions
            .iter()
            .map(|p| p.visible_end())
            .collect();
        let dropped: u64 = old
            .topic
            .partitions
            .iter()
            .zip(&ends)
            .map(|(p, end)| end.saturating_sub(old.floor(p.id).unwrap_or(p.start_offset())))
            .sum();
        let fresh = ends
            .iter()
            .zip(0u32..)
            .map(|(&end, partition)| QueueEvent::Position {
                partition,
                floor: end,
                read: end,
                dead_lettered: 0,
            })
            .collect();
        self.subscriptions()
            .retain(|_, (g, _)| !Arc::ptr_eq(g, &old));
        let group = Arc::new(QueueGroup::new(
            name,
            old.topic.clone(),
            config,
            &ends,
            self.parts.clone(),
        ));
        // The new group is listed before the old one's records are written, so a
        // compaction that keeps only what follows those records snapshots the new one.
        self.lock().insert(name.to_string(), group.clone());
        let wait = old.close(fresh)?;
        group.start_dispatcher(&group.lock());
        self.parts.log.wait_durable(wait).await?;
        Ok(dropped)
    }

    /// Returns once everything appended to `__queue_state` so far is durable.
    pub async fn wait_durable(&self) -> Result<(), BrokerError> {
        let end = self.parts.log.end_offset();
        self.parts.log.wait_durable(end).await
    }

    /// The group, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<QueueGroup>> {
        self.lock().get(name).cloned()
    }

    fn group(&self, name: &str) -> Result<Arc<QueueGroup>, BrokerError> {
        self.get(name)
            .ok_or_else(|| BrokerError::UnknownGroup(name.to_string()))
    }

    fn subscriptions(&self) -> MutexGuard<'_, HashMap<u64, (Arc<QueueGroup>, String)>> {
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Attaches a member's push subscription.
    pub fn subscribe(
        &self,
        group: &str,
        member: &str,
        subscription_id: u64,
        pushes: Pushes,
        credit: Credit,
    ) -> Result<(), BrokerError> {
        let queue_group = self.group(group)?;
        queue_group.attach(
            member,
            Sink {
                subscription_id,
                pushes,
                credit,
                paused_until_mono_ms: None,
            },
        );
        self.subscriptions()
            .insert(subscription_id, (queue_group, member.to_string()));
        Ok(())
    }

    /// Adds credit to a queue subscription; `false` if it is not one.
    pub fn credit(&self, subscription_id: u64, messages: u32, bytes: u64) -> bool {
        match self.subscriptions().get(&subscription_id) {
            Some((group, member)) => group.credit(member, subscription_id, messages, bytes),
            None => false,
        }
    }

    /// Closes a queue subscription; `false` if it is not one.
    pub fn unsubscribe(&self, subscription_id: u64) -> bool {
        let removed = self.subscriptions().remove(&subscription_id);
        match removed {
            Some((group, member)) => {
                group.detach(&member, Some(subscription_id));
                true
            }
            None => false,
        }
    }

    /// A member left or expired: its deliveries in flight go back to the queue.
    pub fn member_gone(&self, group: &str, member: &str) {
        if let Some(group) = self.get(group) {
            group.detach(member, None);
        }
    }

    /// The group `group`, checked to consume `topic` (ack, nack and extend name both).
    pub fn checked(&self, group: &str, topic: &str) -> Result<Arc<QueueGroup>, BrokerError> {
        let queue_group = self.group(group)?;
        if queue_group.topic.name != topic {
            return Err(BrokerError::InvalidRequest(format!(
                "queue group {group:?} consumes {:?}, not {topic:?}",
                queue_group.topic.name
            )));
        }
        Ok(queue_group)
    }

    /// Groups known (live or restored), with their topic.
    pub fn groups(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = self
            .lock()
            .values()
            .map(|g| (g.name().to_string(), g.topic.name.clone()))
            .collect();
        out.sort();
        out
    }

    /// Compacts `__queue_state` if the policy says so: every group appends a snapshot
    /// and the log is truncated before the first (blocking I/O). The list of groups is
    /// taken after the truncation point is read, so every live group with events below
    /// it is in the list and keeps its state; a group created meanwhile has all its
    /// events above it. A group deleted or purged is out of the map before its
    /// tombstone is written (a purge's new group in it before), so its old state either
    /// vanishes with the truncation or is forgotten by a tombstone above it; a closed
    /// group in the list snapshots nothing.
    pub fn compact(&self) -> Result<(), BrokerError> {
        let live = self.all();
        let snapshot_records = live.iter().map(|g| g.snapshot_records()).sum();
        self.parts
            .log
            .compact(snapshot_records, || {
                self.all().iter().try_for_each(|group| group.snapshot())
            })
            .map(|_| ())
    }

    fn all(&self) -> Vec<Arc<QueueGroup>> {
        self.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::partition::Partition;
    use crate::tasks::Tasks;
    use protocol::batch::{split_batches, BatchBuilder, BatchView};
    use std::time::Duration;

    fn entry(key: &str, value: &str) -> ConfigEntry {
        ConfigEntry {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Queues over one topic `jobs` with `config`, whose dispatchers never start: the
    /// tests drive the rounds themselves, on a clock of their own.
    async fn queues(dir: &std::path::Path, config: &[ConfigEntry]) -> (Queues, Arc<ManualClock>) {
        let topics = Arc::new(Topics::open(dir).unwrap());
        let mut topic = TopicConfig {
            partitions: 1,
            ..TopicConfig::internal_default()
        };
        topic.apply(config).unwrap();
        topics.create("jobs", topic, false).unwrap();
        let tasks = Arc::new(Tasks::new());
        tasks.stop(Duration::ZERO).await;
        let clock = Arc::new(ManualClock::new(1_000_000));
        let traces = Traces::open(&topics, &tasks, 0.0, clock.clone()).unwrap();
        let queues = Queues::open(
            topics,
            tasks,
            traces,
            clock.clone(),
            Default::default(),
            |_, _| Vec::new(),
        )
        .unwrap();
        (queues, clock)
    }

    /// Partition 0 of the topic `jobs` that [`queues`] creates.
    fn jobs_partition(queues: &Queues) -> Arc<Partition> {
        queues
            .parts
            .topics
            .get("jobs")
            .unwrap()
            .partition(0)
            .unwrap()
            .clone()
    }

    /// Appends `records` (key, value) to `partition` as one batch and waits until it
    /// is durable; the end offset after it.
    async fn append_durable(partition: &Partition, records: &[(Option<&[u8]>, &[u8])]) -> u64 {
        let mut builder = BatchBuilder::new();
        for (key, value) in records {
            builder.push(5, *key, Some(value), &[]).unwrap();
        }
        let end = partition.append(&builder.finish()).unwrap().next_offset;
        partition
            .wait_durable(end, Duration::from_secs(10))
            .await
            .unwrap();
        end
    }

    /// Waits (up to 10 s) until the group's dispatcher task has ended or runs.
    async fn until_dispatching(group: &QueueGroup, dispatching: bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while group.is_dispatching() != dispatching {
            assert!(
                tokio::time::Instant::now() < deadline,
                "dispatching is still {}",
                !dispatching
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_group_without_members_runs_no_dispatcher_until_one_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Arc::new(Topics::open(dir.path()).unwrap());
        let topic = TopicConfig {
            partitions: 1,
            ..TopicConfig::internal_default()
        };
        topics.create("jobs", topic, false).unwrap();
        // Live tasks: the dispatchers run on their own here.
        let tasks = Arc::new(Tasks::new());
        let clock = Arc::new(ManualClock::new(1_000_000));
        let traces = Traces::open(&topics, &tasks, 0.0, clock.clone()).unwrap();
        let queues = Queues::open(
            topics,
            tasks.clone(),
            traces,
            clock.clone(),
            Default::default(),
            |_, _| Vec::new(),
        )
        .unwrap();
        let group = queues.ensure_group("idle", "jobs", &[], false).unwrap();
        // The dispatcher started with the group finds nothing to do and ends.
        until_dispatching(&group, false).await;

        // A member subscribes: a dispatcher runs again and delivers to it.
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let id = 1;
        queues
            .subscribe("idle", "m", id, Pushes::new(tx), Credit::new(10, 1 << 20))
            .unwrap();
        assert!(group.is_dispatching());
        append_durable(&jobs_partition(&queues), &[(None, b"job")]).await;
        let delivery = match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(protocol::Message::Push(delivery))) => delivery,
            other => panic!("no delivery: {other:?}"),
        };
        assert_eq!(group.counts(0).in_flight, 1);
        // The member leaves: the dispatcher fails its delivery (which then waits for
        // a member, not for the dispatcher) and ends.
        assert!(queues.unsubscribe(id));
        until_dispatching(&group, false).await;
        assert_eq!(group.counts(0).in_flight, 0);
        assert_eq!(group.counts(0).waiting_retry, 1);

        // A puller is a member too: once the backoff has passed the redelivery
        // reaches it, and its lease keeps a dispatcher running.
        clock.advance(600_000);
        let pulled = group.pull("p", 10, 1 << 20).await.unwrap();
        assert!(group.is_dispatching());
        assert_eq!(pulled.len(), 1);
        assert_eq!(pulled[0].from_offset, delivery.from_offset);
        assert_eq!(pulled[0].attempt, 2);
        tasks.stop(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn overrides_are_checked_the_same_on_a_new_and_an_existing_group() {
        let dir = tempfile::tempdir().unwrap();
        let (manager, _) = queues(dir.path(), &[]).await;
        let unknown = [entry("segment_bytes", "4096")];
        assert!(manager.ensure_group("g", "jobs", &unknown, false).is_err());
        manager
            .ensure_group("g", "jobs", &[entry("max_delivery_attempts", "7")], false)
            .unwrap();
        assert!(
            manager.ensure_group("g", "jobs", &unknown, false).is_err(),
            "an existing group refuses non-queue settings too"
        );
        let group = manager.get("g").unwrap();
        assert_eq!(group.lock().state.policy.max_attempts, 7);
    }

    #[tokio::test]
    async fn a_passed_deadline_retries_after_the_backoff_then_dead_letters() {
        let dir = tempfile::tempdir().unwrap();
        let config = [
            entry("ack_deadline_ms", "1000"),
            entry("max_delivery_attempts", "2"),
            entry("retry_backoff_ms", "100"),
            entry("retry_jitter", "0"),
        ];
        let (queues, clock) = queues(dir.path(), &config).await;
        append_durable(&jobs_partition(&queues), &[(Some(b"k"), b"job-1")]).await;
        let group = queues.ensure_group("workers", "jobs", &[], false).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        queues
            .subscribe(
                "workers",
                "m-1",
                1,
                Pushes::new(tx),
                Credit::new(10, 1 << 20),
            )
            .unwrap();
        let attempts = |round: &super::super::dispatch::Round| -> Vec<(u64, u32)> {
            round
                .deliveries
                .iter()
                .map(|(_, d)| (d.from_offset, d.attempt))
                .collect()
        };

        let round = group.dispatch_round().unwrap();
        assert_eq!(attempts(&round), [(0, 1)], "the first delivery");
        clock.advance(999);
        assert!(
            !group.dispatch_round().unwrap().is_busy(),
            "the deadline has not passed"
        );
        clock.advance(1);
        let round = group.dispatch_round().unwrap();
        assert!(
            round.deliveries.is_empty(),
            "expired, waiting for its backoff"
        );
        assert_eq!(group.counts(0).waiting_retry, 1);
        clock.advance(99);
        assert!(group.dispatch_round().unwrap().deliveries.is_empty());
        clock.advance(1);
        let round = group.dispatch_round().unwrap();
        assert_eq!(
            attempts(&round),
            [(0, 2)],
            "redelivered once the backoff passed"
        );
        clock.advance(1000);
        let round = group.dispatch_round().unwrap();
        assert!(round.deliveries.is_empty());
        assert_eq!(round.dead.len(), 1, "out of attempts");
        assert_eq!(round.dead[0].reason, "ack deadline expired");

        group.dead_letter_round(&round.dead).await.unwrap();
        let counts = group.counts(0);
        assert_eq!(
            (counts.in_flight, counts.waiting_retry, counts.dead_lettered),
            (0, 0, 1)
        );
        let dlq = queues.parts.topics.get("jobs.dlq").unwrap();
        let chunk = dlq.partition(0).unwrap().read(0, 1 << 20).unwrap();
        let batch = split_batches(chunk.bytes).next().unwrap().unwrap();
        let view = BatchView::new(&batch).unwrap();
        let record = view.records().next().unwrap().unwrap();
        assert_eq!(record.value, Some(&b"job-1"[..]));
        let header = |name: &str| {
            record
                .headers()
                .flatten()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(header("dlq.attempts").as_deref(), Some("2"));
        assert_eq!(header("dlq.first_delivery_ms").as_deref(), Some("1000000"));
        assert_eq!(header("dlq.last_delivery_ms").as_deref(), Some("1001100"));
        assert!(
            !group.dispatch_round().unwrap().is_busy(),
            "settled: nothing left"
        );
    }

    #[tokio::test]
    async fn wall_clock_steps_neither_expire_leases_nor_fire_retries_early_nor_freeze_them() {
        let dir = tempfile::tempdir().unwrap();
        let config = [
            entry("ack_deadline_ms", "5000"),
            entry("retry_backoff_ms", "60000"),
            entry("retry_backoff_max_ms", "60000"),
            entry("retry_jitter", "0"),
        ];
        let (queues, clock) = queues(dir.path(), &config).await;
        append_durable(&jobs_partition(&queues), &[(None, b"a"), (None, b"b")]).await;
        let group = queues.ensure_group("workers", "jobs", &[], false).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        queues
            .subscribe(
                "workers",
                "m-1",
                1,
                Pushes::new(tx),
                Credit::new(10, 1 << 20),
            )
            .unwrap();
        assert_eq!(group.dispatch_round().unwrap().deliveries.len(), 1);
        // Offset 1 waits 60 s for its retry; offset 0 stays leased for 5 s.
        group.nack(0, 1, "later", None).await.unwrap();

        clock.step_wall(2 * 3_600_000);
        clock.advance(1_000);
        let round = group.dispatch_round().unwrap();
        assert!(
            !round.is_busy(),
            "two hours ahead by the wall clock, one second later"
        );
        assert_eq!(group.counts(0).in_flight, 1, "the lease holds");

        clock.step_wall(-4 * 3_600_000);
        clock.advance(4_000);
        group.dispatch_round().unwrap();
        let counts = group.counts(0);
        assert_eq!(
            (counts.in_flight, counts.waiting_retry),
            (0, 2),
            "the lease expired on time"
        );
        clock.advance(55_000);
        let round = group.dispatch_round().unwrap();
        let redelivered: Vec<u64> = round
            .deliveries
            .iter()
            .map(|(_, d)| d.from_offset)
            .collect();
        assert_eq!(
            redelivered,
            [1],
            "the retry fires at 60 s, not before, not frozen"
        );
    }

    /// Reopens the queues of `dir` on `clock`, with no dispatcher running.
    async fn reopen(dir: &std::path::Path, clock: Arc<ManualClock>) -> Queues {
        let topics = Arc::new(Topics::open(dir).unwrap());
        let tasks = Arc::new(Tasks::new());
        tasks.stop(Duration::ZERO).await;
        let traces = Traces::open(&topics, &tasks, 0.0, clock.clone()).unwrap();
        Queues::open(topics, tasks, traces, clock, Default::default(), |_, _| {
            Vec::new()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_deleted_group_stops_its_dispatcher_and_a_purged_one_starts_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let (queues, clock) = queues(dir.path(), &[]).await;
        let partition = jobs_partition(&queues);
        let end = append_durable(&partition, &[(None, b"a"), (None, b"b"), (None, b"c")]).await;
        for name in ["gone", "purged"] {
            let group = queues.ensure_group(name, "jobs", &[], false).unwrap();
            let (tx, _rx) = tokio::sync::mpsc::channel(16);
            let credit = Credit::new(1, 1 << 20);
            queues
                .subscribe(name, "m", 1, Pushes::new(tx), credit)
                .unwrap();
            let round = group.dispatch_round().unwrap();
            group.log.wait_durable(round.durable_at).await.unwrap();
            assert_eq!(group.counts(0).in_flight, 1);
        }
        let gone = queues.get("gone").unwrap();
        let signal = crate::shutdown::ShutdownSignal::new();
        let dispatcher = tokio::spawn(super::super::dispatch::run_dispatcher(
            gone.clone(),
            signal.subscribe(),
        ));
        assert!(queues.delete("gone").await.unwrap());
        tokio::time::timeout(Duration::from_secs(10), dispatcher)
            .await
            .expect("the dispatcher of a deleted group stops")
            .unwrap();
        assert!(
            gone.ack(0, &[0]).await.is_err(),
            "nothing is recorded after the tombstone"
        );
        assert!(!queues.delete("gone").await.unwrap());
        assert_eq!(
            queues.purge("purged").await.unwrap(),
            3,
            "a, b and c dropped"
        );
        assert_eq!(queues.get("purged").unwrap().floor(0), Some(end));
        drop(queues);

        let queues = reopen(dir.path(), clock).await;
        assert!(
            queues.get("gone").is_none(),
            "the tombstone forgets the group"
        );
        let purged = queues.get("purged").unwrap();
        assert_eq!(purged.floor(0), Some(end), "the purge survives the restart");
        assert_eq!(purged.counts(0).in_flight, 0);
    }

    #[tokio::test]
    async fn a_group_created_at_latest_stays_there_across_a_restart_without_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let (queues, clock) = queues(dir.path(), &[]).await;
        let partition = jobs_partition(&queues);
        let end = append_durable(&partition, &[(None, b"old")]).await;
        let group = queues.ensure_group("late", "jobs", &[], true).unwrap();
        group
            .log
            .wait_durable(group.log.end_offset())
            .await
            .unwrap();
        drop((group, queues));
        let queues = reopen(dir.path(), clock).await;
        let late = queues
            .get("late")
            .expect("restored from its recorded start");
        assert_eq!(late.floor(0), Some(end), "the old message is not for it");
    }

    /// Runs one message out of its single attempt; returns the group with the
    /// message's intent to dead-letter durable, and the letter.
    async fn out_of_attempts(
        dir: &std::path::Path,
    ) -> (
        Queues,
        Arc<QueueGroup>,
        super::super::dispatch::DeadLetter,
        Arc<ManualClock>,
    ) {
        let config = [entry("max_delivery_attempts", "1")];
        let (queues, clock) = queues(dir, &config).await;
        let partition = jobs_partition(&queues);
        append_durable(&partition, &[(Some(b"k"), b"poison")]).await;
        let group = queues.ensure_group("workers", "jobs", &[], false).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        queues
            .subscribe(
                "workers",
                "m-1",
                1,
                Pushes::new(tx),
                Credit::new(10, 1 << 20),
            )
            .unwrap();
        let round = group.dispatch_round().unwrap();
        group.log.wait_durable(round.durable_at).await.unwrap();
        group.nack(0, 0, "bad", None).await.unwrap();
        let mut dead = group.dispatch_round().unwrap().dead;
        assert_eq!(dead.len(), 1);
        (queues, group, dead.remove(0), clock)
    }

    /// The dead-letter topic's records, as (dlq.original_offset, dlq.attempts).
    fn dead_letters(queues: &Queues) -> Vec<(String, String)> {
        let dlq = queues.parts.topics.get("jobs.dlq").unwrap();
        let chunk = dlq.partition(0).unwrap().read(0, 1 << 20).unwrap();
        let mut out = Vec::new();
        for batch in split_batches(chunk.bytes) {
            let batch = batch.unwrap();
            for record in BatchView::new(&batch).unwrap().records() {
                let record = record.unwrap();
                let header = |name: &str| {
                    let (_, v) = record
                        .headers()
                        .flatten()
                        .find(|(k, _)| *k == name)
                        .unwrap();
                    String::from_utf8(v.to_vec()).unwrap()
                };
                out.push((header("dlq.original_offset"), header("dlq.attempts")));
            }
        }
        out
    }

    #[tokio::test]
    async fn a_copy_made_before_a_crash_is_found_not_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let (queues, group, letter, clock) = out_of_attempts(dir.path()).await;
        // The copy is made and durable; the crash comes before its record.
        let dlq = group.dead_letter_topic("jobs.dlq").await.unwrap();
        let target = dlq.partition(0).unwrap().clone();
        let (dlq_offset, _) = group.copy(&letter, &target).unwrap();
        target
            .wait_durable(dlq_offset + 1, Duration::from_secs(10))
            .await
            .unwrap();
        drop((group, queues));

        let queues = reopen(dir.path(), clock).await;
        let group = queues.get("workers").unwrap();
        let round = group.dispatch_round().unwrap();
        assert_eq!(round.dead.len(), 1, "still to be settled");
        group.dead_letter_round(&round.dead).await.unwrap();
        assert_eq!(
            dead_letters(&queues),
            [("0".to_string(), "1".to_string())],
            "one copy"
        );
        let counts = group.counts(0);
        assert_eq!((counts.waiting_retry, counts.dead_lettered), (0, 1));
    }

    #[tokio::test]
    async fn a_copy_recorded_but_lost_in_a_crash_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let (queues, group, letter, clock) = out_of_attempts(dir.path()).await;
        // The record of a copy at offset 0 is durable; the copy itself never made it.
        group.dead_letter_topic("jobs.dlq").await.unwrap();
        let recorded = {
            let event = group
                .lock()
                .state
                .dead_lettered(letter.partition, letter.offset, 0)
                .unwrap();
            group.persist(vec![event]).unwrap()
        };
        group.log.wait_durable(recorded).await.unwrap();
        drop((group, queues));

        let queues = reopen(dir.path(), clock).await;
        let group = queues.get("workers").unwrap();
        let round = group.dispatch_round().unwrap();
        assert_eq!(round.dead.len(), 1, "to be copied again");
        group.dead_letter_round(&round.dead).await.unwrap();
        assert_eq!(dead_letters(&queues), [("0".to_string(), "1".to_string())]);
        assert_eq!(group.counts(0).dead_lettered, 1);

        // And a record whose copy is there settles at the restart, copying nothing.
        drop((group, queues));
        let queues = reopen(dir.path(), Arc::new(ManualClock::new(2_000_000))).await;
        let group = queues.get("workers").unwrap();
        assert!(group.dispatch_round().unwrap().dead.is_empty());
        assert_eq!(dead_letters(&queues).len(), 1);
    }

    #[tokio::test]
    async fn after_a_restart_leases_and_retries_keep_what_they_had_left_whatever_the_wall_clock_says(
    ) {
        for step_ms in [2 * 3_600_000, -2 * 3_600_000] {
            let dir = tempfile::tempdir().unwrap();
            let config = [
                entry("ack_deadline_ms", "5000"),
                entry("retry_backoff_ms", "60000"),
                entry("retry_backoff_max_ms", "60000"),
                entry("retry_jitter", "0"),
            ];
            let (queues, clock) = queues(dir.path(), &config).await;
            let partition = jobs_partition(&queues);
            append_durable(&partition, &[(None, b"a"), (None, b"b")]).await;
            let group = queues.ensure_group("workers", "jobs", &[], false).unwrap();
            let (tx, _rx) = tokio::sync::mpsc::channel(16);
            queues
                .subscribe(
                    "workers",
                    "m-1",
                    1,
                    Pushes::new(tx),
                    Credit::new(10, 1 << 20),
                )
                .unwrap();
            let round = group.dispatch_round().unwrap();
            group.log.wait_durable(round.durable_at).await.unwrap();
            group.nack(0, 1, "later", None).await.unwrap();
            drop((group, queues));

            // A new process: its monotonic clock starts over, the wall clock jumped.
            let later = Arc::new(ManualClock::new(clock.wall_ms() + step_ms));
            let queues = reopen(dir.path(), later.clone()).await;
            let group = queues.get("workers").unwrap();
            group.dispatch_round().unwrap();
            let counts = group.counts(0);
            assert_eq!(
                (counts.in_flight, counts.waiting_retry),
                (1, 1),
                "step {step_ms}: nothing expired at once"
            );
            later.advance(5_000);
            group.dispatch_round().unwrap();
            assert_eq!(
                group.counts(0).in_flight,
                0,
                "step {step_ms}: the lease ran out on time"
            );
            later.advance(54_999);
            let (tx, _rx) = tokio::sync::mpsc::channel(16);
            queues
                .subscribe(
                    "workers",
                    "m-2",
                    2,
                    Pushes::new(tx),
                    Credit::new(10, 1 << 20),
                )
                .unwrap();
            let round = group.dispatch_round().unwrap();
            let retried: Vec<u64> = round
                .deliveries
                .iter()
                .map(|(_, d)| d.from_offset)
                .collect();
            assert!(!retried.contains(&1), "step {step_ms}: not before its 60 s");
            later.advance(1);
            let round = group.dispatch_round().unwrap();
            let retried: Vec<u64> = round
                .deliveries
                .iter()
                .map(|(_, d)| d.from_offset)
                .collect();
            assert!(
                retried.contains(&1),
                "step {step_ms}: the retry fires after its 60 s"
            );
        }
    }

    #[tokio::test]
    async fn a_member_whose_lease_expired_gets_redeliveries_only_when_no_other_can() {
        let dir = tempfile::tempdir().unwrap();
        let config = [
            entry("ack_deadline_ms", "1000"),
            entry("retry_backoff_ms", "10"),
            entry("retry_jitter", "0"),
        ];
        let (queues, clock) = queues(dir.path(), &config).await;
        let partition = jobs_partition(&queues);
        let mut end = 0;
        for job in [&b"job-1"[..], b"job-2"] {
            let mut builder = BatchBuilder::new();
            builder.push(5, None, Some(job), &[]).unwrap();
            end = partition.append(&builder.finish()).unwrap().next_offset;
        }
        partition
            .wait_durable(end, Duration::from_secs(10))
            .await
            .unwrap();
        let group = queues.ensure_group("workers", "jobs", &[], false).unwrap();
        // Both members read what they are sent; "a-hung" never settles it.
        let (hung_tx, _hung_rx) = tokio::sync::mpsc::channel(16);
        let (other_tx, _other_rx) = tokio::sync::mpsc::channel(16);
        let credit = Credit::new(10, 1 << 20);
        queues
            .subscribe("workers", "a-hung", 1, Pushes::new(hung_tx), credit)
            .unwrap();
        let given = |expected: usize| -> Vec<(u64, u64, u32)> {
            let mut out = Vec::new();
            while out.len() < expected {
                let round = group.dispatch_round().unwrap();
                assert!(!round.deliveries.is_empty(), "got only {out:?}");
                for (_, d) in &round.deliveries {
                    let each = |offset| (d.subscription_id, offset, d.attempt);
                    out.extend((d.from_offset..d.to_offset).map(each));
                }
            }
            out.sort();
            out
        };
        assert_eq!(
            given(2),
            [(1, 0, 1), (1, 1, 1)],
            "both go to the only member"
        );
        queues
            .subscribe("workers", "b-other", 2, Pushes::new(other_tx), credit)
            .unwrap();

        clock.advance(1000);
        assert!(
            group.dispatch_round().unwrap().deliveries.is_empty(),
            "backing off"
        );
        clock.advance(10);
        assert_eq!(
            given(2),
            [(2, 0, 2), (2, 1, 2)],
            "the redeliveries skip the member whose leases expired"
        );
        // Alone, a paused member still gets its redeliveries on time: see
        // `a_passed_deadline_retries_after_the_backoff_then_dead_letters`.
    }

    #[tokio::test]
    async fn a_member_that_stops_reading_slows_only_itself_and_its_leases_expire() {
        let dir = tempfile::tempdir().unwrap();
        let config = [
            entry("ack_deadline_ms", "5000"),
            entry("retry_backoff_ms", "1"),
            entry("retry_jitter", "0"),
        ];
        let (queues, clock) = queues(dir.path(), &config).await;
        let partition = jobs_partition(&queues);
        let group = queues.ensure_group("workers", "jobs", &[], false).unwrap();
        // The stalled member (first in round-robin order): a queue of one delivery,
        // never read, and credit to spare.
        let (stalled_tx, _stalled_rx) = tokio::sync::mpsc::channel(1);
        let credit = Credit::new(20_000, 1 << 30);
        queues
            .subscribe("workers", "a-stalled", 1, Pushes::new(stalled_tx), credit)
            .unwrap();
        let (tx, mut healthy) = tokio::sync::mpsc::channel(64);
        queues
            .subscribe("workers", "b-healthy", 2, Pushes::new(tx), credit)
            .unwrap();
        let signal = crate::shutdown::ShutdownSignal::new();
        tokio::spawn(super::super::dispatch::run_dispatcher(
            group.clone(),
            signal.subscribe(),
        ));

        // Batches arrive one at a time, so the dispatcher hands them out one by one.
        let mut acked = std::collections::BTreeSet::new();
        let mut end = 0;
        for batch in 0..50 {
            let mut builder = BatchBuilder::new();
            for i in 0..10 {
                builder
                    .push(5, None, Some(format!("{batch}-{i}").as_bytes()), &[])
                    .unwrap();
            }
            end = partition.append(&builder.finish()).unwrap().next_offset;
            partition
                .wait_durable(end, Duration::from_secs(10))
                .await
                .unwrap();
            // The healthy member keeps up: all but what the stalled one was given.
            while let Ok(Some(protocol::Message::Push(delivery))) =
                tokio::time::timeout(Duration::from_millis(20), healthy.recv()).await
            {
                let offsets: Vec<u64> = (delivery.from_offset..delivery.to_offset).collect();
                group.ack(delivery.partition, &offsets).await.unwrap();
                acked.extend(offsets);
            }
        }
        let leased_to_stalled = end - acked.len() as u64;
        assert!(
            leased_to_stalled <= 10,
            "only what fits its queue: {leased_to_stalled}"
        );
        assert_eq!(group.counts(0).in_flight, leased_to_stalled);

        // Its lease expires on time, and the messages go to the healthy member.
        clock.advance(5_001);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while (acked.len() as u64) < end {
            assert!(
                tokio::time::Instant::now() < deadline,
                "acked {} of {end}",
                acked.len()
            );
            match tokio::time::timeout(Duration::from_millis(300), healthy.recv()).await {
                Ok(Some(protocol::Message::Push(delivery))) => {
                    assert_eq!(delivery.attempt, 2, "a redelivery");
                    let offsets: Vec<u64> = (delivery.from_offset..delivery.to_offset).collect();
                    group.ack(delivery.partition, &offsets).await.unwrap();
                    acked.extend(offsets);
                }
                // The retries' 1 ms backoff passes.
                _ => clock.advance(10),
            }
        }
        let counts = group.counts(0);
        assert_eq!((counts.in_flight, counts.waiting_retry), (0, 0));
        signal.trigger();
    }
}
