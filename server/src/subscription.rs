//! Push subscriptions: the subscriptions of one session ([`Subscriptions`]), and the
//! task that delivers a stream subscription.
//!
//! A subscription to a partition, or to a stream group member's assigned partitions,
//! is a task of this module that reads from its partitions and pushes deliveries
//! under the consumer's credit, by the rules of [`crate::delivery`]. With no credit
//! the task sleeps until a Credit request arrives, so a slow consumer costs the server
//! one queue of bounded size, nothing more. A queue group member's subscription is
//! delivered by its group's dispatcher instead ([`crate::queue`]); this module only
//! routes its credit and its end there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use protocol::ops::subscribe::{Delivery, StartPosition, SubscribeRequest, SubscribeTarget};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::delivery::{cut_to_credit, wait_for_any, Credit, CreditCell, Pushes};
use crate::error::BrokerError;
use crate::partition::Partition;
use crate::traces::Recipient;

/// How long an idle subscription waits for data before re-checking its state.
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// Subscription ids are unique across sessions, because queue groups (shared by
/// sessions) track subscriptions by id.
static NEXT_SUBSCRIPTION_ID: AtomicU64 = AtomicU64::new(1);

enum Handle {
    /// A partition or stream-group subscription, run by a task of this module.
    Stream {
        credit: Arc<CreditCell>,
        task: JoinHandle<()>,
    },
    /// A queue-group subscription, run by the group's dispatcher.
    Queue,
}

/// The subscriptions of one session. Dropping it closes them all.
pub struct Subscriptions {
    open: HashMap<u64, Handle>,
    limit: usize,
    queues: Option<Arc<crate::queue::Queues>>,
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions")
            .field("open", &self.open.len())
            .finish()
    }
}

impl Subscriptions {
    /// No subscriptions; at most `limit` open at once.
    pub fn new(limit: usize) -> Subscriptions {
        Subscriptions {
            open: HashMap::new(),
            limit,
            queues: None,
        }
    }

    /// Opens a subscription whose deliveries go to `pushes`; returns its id.
    pub fn subscribe(
        &mut self,
        broker: &Arc<Broker>,
        request: SubscribeRequest,
        pushes: Pushes,
    ) -> Result<u64, BrokerError> {
        self.open
            .retain(|_, h| !matches!(h, Handle::Stream { task, .. } if task.is_finished()));
        if self.open.len() >= self.limit {
            return Err(BrokerError::ResourceLimit {
                what: "subscriptions per connection",
                limit: self.limit as u64,
            });
        }
        let topic = broker.topics.get(&request.topic)?;
        let id = NEXT_SUBSCRIPTION_ID.fetch_add(1, Ordering::Relaxed);
        let credit = Credit::new(request.credit_messages, request.credit_bytes);
        let (cursors, follow) = match request.target {
            SubscribeTarget::Partition(p) => {
                let partition = topic.partition(p)?.clone();
                let position = start_position(&partition, request.start)?;
                (
                    vec![Cursor {
                        partition,
                        position,
                    }],
                    None,
                )
            }
            SubscribeTarget::Group { group, member_id } if broker.queues.get(&group).is_some() => {
                broker.groups.assignment(&group, &member_id)?;
                broker
                    .queues
                    .subscribe(&group, &member_id, id, pushes, credit)?;
                self.queues = Some(broker.queues.clone());
                self.open.insert(id, Handle::Queue);
                return Ok(id);
            }
            SubscribeTarget::Group { group, member_id } => {
                broker.groups.assignment(&group, &member_id)?;
                let changes = broker.groups.watch(&group)?;
                let follow = Follow {
                    group,
                    member: member_id,
                    changes,
                    seen: None,
                };
                (Vec::new(), Some(follow))
            }
        };
        let credit = Arc::new(CreditCell::new(credit));
        let stream = Stream {
            id,
            topic: topic.name.clone(),
            cursors,
            follow,
            credit: credit.clone(),
            pushes,
            broker: broker.clone(),
            next: 0,
        };
        let task = tokio::spawn(stream.run());
        self.open.insert(id, Handle::Stream { credit, task });
        Ok(id)
    }

    /// Whether no subscription is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Adds credit.
    pub fn credit(&self, id: u64, messages: u32, bytes: u64) -> Result<(), BrokerError> {
        match self
            .open
            .get(&id)
            .ok_or(BrokerError::UnknownSubscription(id))?
        {
            Handle::Stream { credit, .. } => credit.grant(messages, bytes),
            Handle::Queue => {
                if !self
                    .queues
                    .as_ref()
                    .is_some_and(|q| q.credit(id, messages, bytes))
                {
                    return Err(BrokerError::UnknownSubscription(id));
                }
            }
        }
        Ok(())
    }

    /// Closes a subscription.
    pub fn unsubscribe(&mut self, id: u64) -> Result<(), BrokerError> {
        let handle = self
            .open
            .remove(&id)
            .ok_or(BrokerError::UnknownSubscription(id))?;
        self.close(id, handle);
        Ok(())
    }

    fn close(&self, id: u64, handle: Handle) {
        match handle {
            Handle::Stream { credit, task } => {
                credit.close();
                task.abort();
            }
            // The member's deliveries in flight go back to the queue.
            Handle::Queue => {
                if let Some(queues) = &self.queues {
                    queues.unsubscribe(id);
                }
            }
        }
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        let open: Vec<(u64, Handle)> = self.open.drain().collect();
        for (id, handle) in open {
            self.close(id, handle);
        }
    }
}

/// Where a partition subscription starts.
fn start_position(partition: &Partition, start: StartPosition) -> Result<u64, BrokerError> {
    Ok(match start {
        StartPosition::Earliest => partition.start_offset(),
        StartPosition::Latest => partition.visible_end(),
        StartPosition::Offset(offset) => {
            if offset < partition.start_offset() || offset > partition.end_offset() {
                return Err(BrokerError::Storage(storage::Error::OffsetOutOfRange {
                    requested: offset,
                    start: partition.start_offset(),
                    end: partition.end_offset(),
                }));
            }
            offset
        }
        StartPosition::Timestamp(timestamp_ms) => partition.offset_for_time(timestamp_ms)?,
    })
}

/// One partition a subscription reads, and where it is.
#[derive(Debug, Clone)]
struct Cursor {
    partition: Arc<Partition>,
    position: u64,
}

/// A stream group member whose assignment the subscription follows.
struct Follow {
    group: String,
    member: String,
    /// Moves whenever what a member of the group is told may have changed.
    changes: watch::Receiver<u64>,
    /// The value of `changes` the cursors were last brought in line with.
    seen: Option<u64>,
}

/// A stream subscription's task.
struct Stream {
    id: u64,
    topic: String,
    cursors: Vec<Cursor>,
    follow: Option<Follow>,
    credit: Arc<CreditCell>,
    pushes: Pushes,
    broker: Arc<Broker>,
    /// The cursor the round-robin over partitions goes on from.
    next: usize,
}

/// What one attempt to deliver found.
enum Step {
    Delivered,
    CaughtUp,
    Stop,
}

impl Stream {
    async fn run(mut self) {
        loop {
            if !self.follow_assignment() {
                return; // the member is gone: nothing more to deliver
            }
            let Some(credit) = self.credit.available().await else {
                return;
            };
            match self.deliver(credit).await {
                Step::Delivered => {}
                Step::CaughtUp => self.wait().await,
                Step::Stop => return,
            }
        }
    }

    /// After a change in the group, reads the partitions the member is told now:
    /// keeping the positions of those it kept, starting the others at their committed
    /// offsets. A revoked partition is dropped at once; a gained one arrives only once
    /// its old owner released it (having committed its position), so two members'
    /// subscriptions never read a partition at the same time. `false` once the member
    /// is gone.
    fn follow_assignment(&mut self) -> bool {
        let Some(follow) = &mut self.follow else {
            return true;
        };
        let current = *follow.changes.borrow_and_update();
        if follow.seen == Some(current) {
            return true;
        }
        let broker = &self.broker;
        let Ok(assignment) = broker.groups.assignment(&follow.group, &follow.member) else {
            return false;
        };
        let Ok(topic) = broker.topics.get(&self.topic) else {
            return false;
        };
        let offsets = broker.groups.offsets();
        self.cursors = assignment
            .partitions
            .iter()
            .filter_map(|&p| {
                let partition = topic.partition(p).ok()?.clone();
                let kept = self.cursors.iter().find(|c| c.partition.id == p);
                let position = kept
                    .map(|c| c.position)
                    .or(offsets.get(&follow.group, &self.topic, p))
                    .unwrap_or(partition.start_offset())
                    .max(partition.start_offset());
                Some(Cursor {
                    partition,
                    position,
                })
            })
            .collect();
        follow.seen = Some(current);
        true
    }

    /// Pushes one delivery from the next partition with data, cut to `credit`.
    async fn deliver(&mut self, credit: Credit) -> Step {
        let read_cap = self.broker.config.limits.max_fetch_bytes as usize;
        for _ in 0..self.cursors.len() {
            self.next = (self.next + 1) % self.cursors.len();
            let cursor = &mut self.cursors[self.next];
            // Most partitions of a large assignment have nothing new: an offset check
            // passes over them without a read (a refused one is read, to stop on its
            // error as before).
            if cursor.position >= cursor.partition.visible_end()
                && cursor.partition.refusal().is_none()
            {
                continue;
            }
            let chunk = match cursor
                .partition
                .read(cursor.position, credit.read_bytes(read_cap))
            {
                Ok(chunk) => chunk,
                Err(error) => {
                    tracing::warn!(subscription = self.id, %error, "subscription read failed; closing it");
                    return Step::Stop;
                }
            };
            if chunk.is_empty() {
                continue;
            }
            let from = cursor.position.max(chunk.first_offset);
            let cut = cut_to_credit(&chunk.bytes, from, credit.messages);
            if cut.to <= from {
                continue; // nothing readable fits: never push an empty delivery
            }
            debug_assert!(
                cut.to - from <= credit.messages,
                "never beyond the message credit"
            );
            let delivery = Delivery {
                subscription_id: self.id,
                partition: cursor.partition.id,
                from_offset: from,
                to_offset: cut.to,
                attempt: 1,
                batches: chunk.bytes.slice(..cut.bytes),
            };
            self.credit.spend(cut.to - from, cut.bytes as u64);
            cursor.position = cut.to;
            let group = self.follow.as_ref().map(|f| f.group.as_str());
            let to = Recipient::Subscription { id: self.id, group };
            self.broker.traces.on_deliver(&self.topic, &delivery, to);
            let now_wall_ms = self.broker.clock.wall_ms();
            self.broker.metrics.delivered(
                &cursor.partition,
                cut.to - from,
                &delivery.batches,
                now_wall_ms,
            );
            if !self.pushes.push(delivery).await {
                return Step::Stop; // the session is gone
            }
            return Step::Delivered;
        }
        Step::CaughtUp
    }

    /// Caught up everywhere: waits for data on one partition, or for a change in the
    /// group.
    async fn wait(&mut self) {
        let reads: Vec<(Arc<Partition>, u64)> = self
            .cursors
            .iter()
            .map(|c| (c.partition.clone(), c.position))
            .collect();
        let data = wait_for_any(&reads, IDLE_WAIT);
        match &mut self.follow {
            Some(follow) => {
                tokio::select! {
                    _ = data => {}
                    _ = follow.changes.changed() => {}
                }
            }
            None => data.await,
        }
    }
}
