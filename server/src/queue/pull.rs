//! Pulling: a member takes up to N messages now, in the answer to its own request,
//! instead of having the dispatcher push them under credit. For a listener whose
//! clients hold no connection (the HTTP gateway's `receive`).
//!
//! A pull is a dispatch round for one member, with the pull's limits as its credit:
//! under the group's lock it hands out due retries first and then new messages, by
//! the very code of the dispatcher's round (`hand_out_retries`, `hand_out_new`), so
//! attempts, leases (the group's ack deadline), the room for unsettled messages and
//! the spans are the same as for a pushed delivery; each hand-out is a `Delivered`
//! event on `__queue_state`, durable before the pull answers. What is pulled is then
//! settled by the same ack, nack and extend as any delivery, and a lease that runs
//! out is failed and retried by the dispatcher's expiry, like any other.
//!
//! The member is remembered as a puller until it leaves or its session expires
//! ([`QueueGroup::detach`]), so its leases are not failed as a gone member's when
//! another member leaves. Expiry, retries' timers and dead letters stay the
//! dispatcher's job.

use std::sync::Arc;
use std::time::Duration;

use protocol::ops::subscribe::Delivery;
use tokio::sync::mpsc;

use super::dispatch::Handout;
use super::group::{QueueGroup, Sink};
use super::state::Now;
use crate::delivery::{wait_for_any, Credit, Pushes};
use crate::error::BrokerError;

/// Deliveries (runs of consecutive messages of one partition, or one retried
/// message) one pull hands out at most.
pub const MAX_DELIVERIES_PER_PULL: usize = 256;

impl QueueGroup {
    /// Hands `member` up to `max_messages` messages (and about `max_bytes` of
    /// batches: at least one batch whatever its size) that are due now; answers once
    /// their delivery is durable. Empty when nothing is due; see
    /// [`wait_for_work`](Self::wait_for_work) to long-poll. A member with a push
    /// subscription does not pull.
    pub async fn pull(
        self: &Arc<Self>,
        member: &str,
        max_messages: u32,
        max_bytes: u64,
    ) -> Result<Vec<Delivery>, BrokerError> {
        let (deliveries, durable_at) = self.pull_round(member, max_messages, max_bytes)?;
        if !deliveries.is_empty() {
            // Nothing is answered before its delivery is recorded durably.
            self.log.wait_durable(durable_at).await?;
            // Counted like a pushed delivery: traffic out, latency, redeliveries.
            let now_wall_ms = self.clock.wall_ms();
            for delivery in &deliveries {
                self.count_delivery(delivery, now_wall_ms);
            }
        }
        Ok(deliveries)
    }

    /// The round of a pull, under the lock: the deliveries and the `__queue_state`
    /// offset to wait on.
    fn pull_round(
        self: &Arc<Self>,
        member: &str,
        max_messages: u32,
        max_bytes: u64,
    ) -> Result<(Vec<Delivery>, u64), BrokerError> {
        let member: Arc<str> = Arc::from(member);
        let mut inner = self.lock();
        if inner.sinks.contains_key(&member) {
            return Err(BrokerError::InvalidRequest(format!(
                "member {member:?} of queue group {:?} has a push subscription; it does not pull",
                self.name
            )));
        }
        if inner.pullers.insert(member.clone()) {
            // A new member: its leases need the dispatcher to expire them.
            self.start_dispatcher(&inner);
        }
        // The pull's limits are a credit of a sink that lives for this round only,
        // with room for as many deliveries as one pull may carry; the dispatcher never
        // sees it (the lock is held throughout).
        let (tx, _rx) = mpsc::channel(MAX_DELIVERIES_PER_PULL);
        let sink = Sink {
            subscription_id: 0,
            pushes: Pushes::new(tx),
            credit: Credit::new(max_messages, max_bytes),
            paused_until_mono_ms: None,
        };
        inner.sinks.insert(member.clone(), sink);
        let next_member = inner.next_member;
        let mut out = Handout {
            members: vec![member.clone()],
            now: Now::read(self.clock.as_ref()),
            events: Vec::new(),
            deliveries: Vec::new(),
        };
        self.hand_out_retries(&mut inner, &mut out);
        self.hand_out_new(&mut inner, &mut out);
        inner.sinks.remove(&member);
        inner.next_member = next_member;
        debug_assert!(out.deliveries.len() <= MAX_DELIVERIES_PER_PULL);
        let durable_at = self.persist(out.events)?;
        // The reserved places in the round's queue are dropped unused: the deliveries
        // go back in the answer.
        let deliveries = out.deliveries.into_iter().map(|(_, d)| d).collect();
        Ok((deliveries, durable_at))
    }

    /// Waits, at most `max_wait`, until something a pull could take may have come:
    /// new data on a partition, or a retry (or lease) coming due. It may return
    /// early (at most the dispatcher's idle wait later), never late; the caller pulls
    /// again and waits again while time is left.
    pub async fn wait_for_work(&self, max_wait: Duration) {
        let (sleep, reads) = self.idle();
        wait_for_any(&reads, sleep.min(max_wait)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use protocol::batch::BatchBuilder;
    use protocol::ops::topic::ConfigEntry;

    use crate::clock::ManualClock;
    use crate::queue::Queues;
    use crate::tasks::Tasks;
    use crate::topics::{TopicConfig, Topics};
    use std::sync::Arc;

    fn entry(key: &str, value: &str) -> ConfigEntry {
        ConfigEntry {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Queues over a one-partition topic `jobs` holding `count` durable messages,
    /// without dispatchers (the tests drive the rounds), on a manual clock.
    async fn jobs(
        dir: &std::path::Path,
        count: usize,
        config: &[ConfigEntry],
    ) -> (Queues, Arc<ManualClock>) {
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
        let traces = crate::traces::Traces::open(&topics, &tasks, 0.0, clock.clone()).unwrap();
        let queues = Queues::open(
            topics.clone(),
            tasks,
            traces,
            clock.clone(),
            Default::default(),
            |_, _| Vec::new(),
        )
        .unwrap();
        let partition = topics.get("jobs").unwrap().partition(0).unwrap().clone();
        let mut builder = BatchBuilder::new();
        for i in 0..count {
            builder
                .push(1, None, Some(format!("job-{i}").as_bytes()), &[])
                .unwrap();
        }
        let end = partition.append(&builder.finish()).unwrap().next_offset;
        partition
            .wait_durable(end, Duration::from_secs(10))
            .await
            .unwrap();
        (queues, clock)
    }

    fn offsets(deliveries: &[protocol::ops::subscribe::Delivery]) -> Vec<(u64, u32)> {
        deliveries
            .iter()
            .flat_map(|d| (d.from_offset..d.to_offset).map(move |o| (o, d.attempt)))
            .collect()
    }

    #[tokio::test]
    async fn a_pull_takes_at_most_what_it_asks_and_the_next_pull_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (queues, _clock) = jobs(dir.path(), 5, &[]).await;
        let group = queues.ensure_group("workers", "jobs", &[], false).unwrap();
        let first = group.pull("http-1", 3, 1 << 20).await.unwrap();
        assert_eq!(offsets(&first), [(0, 1), (1, 1), (2, 1)]);
        let second = group.pull("http-1", 10, 1 << 20).await.unwrap();
        assert_eq!(offsets(&second), [(3, 1), (4, 1)], "the rest, once");
        assert!(group.pull("http-1", 10, 1 << 20).await.unwrap().is_empty());
        assert_eq!(group.counts(0).in_flight, 5, "all leased");
        group.ack(0, &[0, 1, 2, 3, 4]).await.unwrap();
        assert_eq!(group.counts(0).in_flight, 0);
    }

    #[tokio::test]
    async fn a_pulled_lease_that_runs_out_is_pulled_again_as_attempt_two_then_dead_lettered() {
        let dir = tempfile::tempdir().unwrap();
        let config = [
            entry("ack_deadline_ms", "1000"),
            entry("retry_backoff_ms", "10"),
            entry("retry_jitter", "0"),
            entry("max_delivery_attempts", "2"),
        ];
        let (queues, clock) = jobs(dir.path(), 1, &config).await;
        let group = queues.ensure_group("workers", "jobs", &[], false).unwrap();
        assert_eq!(
            offsets(&group.pull("http-1", 10, 1 << 20).await.unwrap()),
            [(0, 1)]
        );
        clock.advance(1001);
        // The dispatcher's round expires the lease; the retry is due after its backoff.
        group.dispatch_round().unwrap();
        assert!(group.pull("http-1", 10, 1 << 20).await.unwrap().is_empty());
        clock.advance(10);
        assert_eq!(group.redeliveries(), 0);
        let again = group.pull("http-1", 10, 1 << 20).await.unwrap();
        assert_eq!(offsets(&again), [(0, 2)]);
        assert_eq!(
            group.redeliveries(),
            1,
            "a pulled retry counts as a redelivery"
        );
        group.nack(0, 0, "still bad", None).await.unwrap();
        let round = group.dispatch_round().unwrap();
        assert_eq!(round.dead.len(), 1, "out of attempts");
        assert_eq!(round.dead[0].reason, "still bad");
    }

    #[tokio::test]
    async fn a_puller_keeps_its_leases_when_another_member_leaves_and_loses_them_when_it_does() {
        let dir = tempfile::tempdir().unwrap();
        let (queues, clock) = jobs(dir.path(), 2, &[entry("ack_deadline_ms", "60000")]).await;
        let group = queues.ensure_group("workers", "jobs", &[], false).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        queues
            .subscribe(
                "workers",
                "native",
                7,
                crate::delivery::Pushes::new(tx),
                crate::delivery::Credit::new(1, 1 << 20),
            )
            .unwrap();
        assert_eq!(group.dispatch_round().unwrap().deliveries.len(), 1);
        assert_eq!(group.pull("http-1", 10, 1 << 20).await.unwrap().len(), 1);
        queues.member_gone("workers", "native");
        group.dispatch_round().unwrap();
        assert_eq!(group.counts(0).in_flight, 1, "the puller's lease stands");
        queues.member_gone("workers", "http-1");
        group.dispatch_round().unwrap();
        let counts = group.counts(0);
        assert_eq!((counts.in_flight, counts.waiting_retry), (0, 2));
        // Their retries are due after the backoff, for whoever pulls next.
        clock.advance(60_000);
        let again = group.pull("http-2", 10, 1 << 20).await.unwrap();
        assert_eq!(offsets(&again), [(0, 2), (1, 2)]);
    }

    #[tokio::test]
    async fn a_member_with_a_subscription_does_not_pull() {
        let dir = tempfile::tempdir().unwrap();
        let (queues, _clock) = jobs(dir.path(), 1, &[]).await;
        let group = queues.ensure_group("workers", "jobs", &[], false).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        queues
            .subscribe(
                "workers",
                "m",
                1,
                crate::delivery::Pushes::new(tx),
                crate::delivery::Credit::new(0, 0),
            )
            .unwrap();
        assert!(group.pull("m", 1, 1 << 20).await.is_err());
    }
}
