//! Push subscriptions with credit-based flow control.
//!
//! Each subscription is a task that reads from its partitions and pushes `Delivery`
//! frames into the connection's bounded outbound queue, never beyond the credit the
//! consumer granted: a delivery carries at most the remaining message credit (its
//! `to_offset` cuts a batch short if needed) and may overdraw the byte credit by at
//! most one batch. With no credit the task sleeps until a Credit request arrives, so a
//! slow consumer costs the server one queue of bounded size, nothing more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::batch::split_batches;
use protocol::ops::subscribe::{Delivery, StartPosition, SubscribeRequest, SubscribeTarget};
use protocol::Message;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::partition::Partition;

/// How long an idle subscription waits for data before re-checking its state.
const IDLE_WAIT: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
struct Credit {
    messages: u64,
    bytes: u64,
    closed: bool,
}

#[derive(Debug, Default)]
struct CreditCell {
    credit: Mutex<Credit>,
    changed: Notify,
}

impl CreditCell {
    fn lock(&self) -> std::sync::MutexGuard<'_, Credit> {
        self.credit.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, messages: u32, bytes: u64) {
        let mut credit = self.lock();
        credit.messages = credit.messages.saturating_add(u64::from(messages));
        credit.bytes = credit.bytes.saturating_add(bytes);
        drop(credit);
        self.changed.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_one();
    }

    /// Waits for credit in both units; `None` once closed.
    async fn available(&self) -> Option<(u64, u64)> {
        loop {
            let notified = self.changed.notified();
            {
                let credit = self.lock();
                if credit.closed {
                    return None;
                }
                if credit.messages > 0 && credit.bytes > 0 {
                    return Some((credit.messages, credit.bytes));
                }
            }
            notified.await;
        }
    }

    fn spend(&self, messages: u64, bytes: u64) {
        let mut credit = self.lock();
        credit.messages = credit.messages.saturating_sub(messages);
        credit.bytes = credit.bytes.saturating_sub(bytes);
    }
}

enum Handle {
    /// A partition or stream-group subscription, run by a task of this module.
    Stream {
        credit: Arc<CreditCell>,
        task: JoinHandle<()>,
    },
    /// A queue-group subscription, run by the group's dispatcher.
    Queue,
}

/// Subscription ids are unique across connections, because queue groups (shared by
/// connections) track subscriptions by id.
static NEXT_SUBSCRIPTION_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The subscriptions of one connection.
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

/// One partition a subscription reads, and where it is.
#[derive(Debug, Clone)]
struct Cursor {
    partition: Arc<Partition>,
    position: u64,
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

    /// Opens a subscription whose deliveries go to `outbound`.
    pub fn subscribe(
        &mut self,
        broker: &Arc<Broker>,
        request: SubscribeRequest,
        outbound: mpsc::Sender<Message>,
    ) -> Result<u64, BrokerError> {
        self.open
            .retain(|_, h| !matches!(h, Handle::Stream { task, .. } if task.is_finished()));
        if self.open.len() >= self.limit {
            return Err(BrokerError::ResourceLimit(format!(
                "at most {} subscriptions per connection",
                self.limit
            )));
        }
        let topic = broker.topics.get(&request.topic)?;
        let id = NEXT_SUBSCRIPTION_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let credit = Arc::new(CreditCell::default());
        credit.add(request.credit_messages, request.credit_bytes);
        let task = match request.target {
            SubscribeTarget::Partition(p) => {
                let partition = topic.partition(p)?.clone();
                let position = match request.start {
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
                };
                let cursors = vec![Cursor {
                    partition,
                    position,
                }];
                tokio::spawn(run(
                    id,
                    topic.name.clone(),
                    cursors,
                    None,
                    credit.clone(),
                    outbound,
                    broker.clone(),
                ))
            }
            SubscribeTarget::Group { group, member_id } if broker.queues.get(&group).is_some() => {
                broker.groups.assignment(&group, &member_id)?;
                broker.queues.subscribe(
                    &group,
                    &member_id,
                    id,
                    outbound,
                    request.credit_messages,
                    request.credit_bytes,
                )?;
                self.queues = Some(broker.queues.clone());
                self.open.insert(id, Handle::Queue);
                return Ok(id);
            }
            SubscribeTarget::Group { group, member_id } => {
                broker.groups.assignment(&group, &member_id)?;
                let follow = Some((group, member_id, topic.name.clone()));
                tokio::spawn(run(
                    id,
                    topic.name.clone(),
                    Vec::new(),
                    follow,
                    credit.clone(),
                    outbound,
                    broker.clone(),
                ))
            }
        };
        self.open.insert(id, Handle::Stream { credit, task });
        Ok(id)
    }

    /// Adds credit.
    pub fn credit(&self, id: u64, messages: u32, bytes: u64) -> Result<(), BrokerError> {
        match self
            .open
            .get(&id)
            .ok_or(BrokerError::UnknownSubscription(id))?
        {
            Handle::Stream { credit, .. } => credit.add(messages, bytes),
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
}

impl Subscriptions {
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

/// Cursors for a group member's current assignment, starting at committed offsets.
fn group_cursors(
    broker: &Broker,
    group: &str,
    member: &str,
    topic: &str,
    old: &[Cursor],
) -> Option<(u32, Vec<Cursor>)> {
    let assignment = broker.groups.assignment(group, member).ok()?;
    let topic_handle = broker.topics.get(topic).ok()?;
    let cursors = assignment
        .partitions
        .iter()
        .filter_map(|p| {
            let partition = topic_handle.partition(*p).ok()?.clone();
            let kept = old
                .iter()
                .find(|c| c.partition.id == *p)
                .map(|c| c.position);
            let committed = broker.groups.offsets().get(group, topic, *p);
            let position = kept
                .or(committed)
                .unwrap_or(partition.start_offset())
                .max(partition.start_offset());
            Some(Cursor {
                partition,
                position,
            })
        })
        .collect();
    Some((assignment.generation, cursors))
}

async fn run(
    id: u64,
    topic: String,
    mut cursors: Vec<Cursor>,
    follow: Option<(String, String, String)>,
    credit: Arc<CreditCell>,
    outbound: mpsc::Sender<Message>,
    broker: Arc<Broker>,
) {
    let mut generation_watch = follow
        .as_ref()
        .and_then(|(group, _, _)| broker.groups.watch(group).ok());
    let mut generation = None;
    let mut next = 0usize;
    loop {
        if let (Some((group, member, topic)), Some(watch)) = (&follow, &mut generation_watch) {
            let current = *watch.borrow_and_update();
            if generation != Some(current) {
                match group_cursors(&broker, group, member, topic, &cursors) {
                    Some((g, c)) => {
                        generation = Some(g);
                        cursors = c;
                    }
                    None => return, // the member is gone: nothing more to deliver
                }
            }
        }
        let Some((messages, bytes)) = credit.available().await else {
            return;
        };
        let mut delivered = false;
        for _ in 0..cursors.len() {
            next = (next + 1) % cursors.len();
            let cursor = &mut cursors[next];
            let chunk = match cursor.partition.read(
                cursor.position,
                bytes.min(broker.config.limits.max_fetch_bytes as u64) as usize,
            ) {
                Ok(chunk) => chunk,
                Err(e) => {
                    tracing::warn!(subscription = id, error = %e, "subscription read failed; closing it");
                    return;
                }
            };
            if chunk.is_empty() {
                continue;
            }
            let from = cursor.position.max(chunk.first_offset);
            // Trim to the message credit: whole batches while they fit, and `to_offset`
            // cuts the last one if even that is too many.
            let limit = from.saturating_add(messages);
            let mut end_bytes = 0;
            let mut to = from;
            for batch in split_batches(chunk.bytes.clone()).flatten() {
                let header = protocol::batch::BatchHeader::parse(&batch).ok();
                let Some(header) = header else { break };
                if to >= limit {
                    break;
                }
                end_bytes += batch.len();
                to = header.next_offset().min(limit);
            }
            let delivery = Delivery {
                subscription_id: id,
                partition: cursor.partition.id,
                from_offset: from,
                to_offset: to,
                attempt: 1,
                batches: chunk.bytes.slice(..end_bytes),
            };
            credit.spend(to - from, end_bytes as u64);
            cursor.position = to;
            trace_push(
                &broker,
                &topic,
                &delivery,
                follow.as_ref().map(|(group, _, _)| group.as_str()),
            );
            if outbound.send(Message::Push(delivery)).await.is_err() {
                return; // connection gone
            }
            delivered = true;
            break;
        }
        if !delivered {
            // Caught up everywhere: wait for data on one partition, or for a rebalance.
            let waits: Vec<_> = cursors
                .iter()
                .map(|c| Box::pin(c.partition.wait_for_data(c.position, IDLE_WAIT)))
                .collect();
            let wait = async move {
                if waits.is_empty() {
                    tokio::time::sleep(IDLE_WAIT).await;
                } else {
                    futures_util::future::select_all(waits).await;
                }
            };
            match &mut generation_watch {
                Some(watch) => {
                    tokio::select! {
                        _ = wait => {}
                        _ = watch.changed() => {}
                    }
                }
                None => wait.await,
            }
        }
    }
}

/// `deliver` spans for the traced messages of a pushed delivery (stream subscriptions
/// deliver each message once: attempt 1). Plain fetches are not spanned: the broker
/// does not know who reads them.
fn trace_push(broker: &Broker, topic: &str, delivery: &Delivery, group: Option<&str>) {
    let found =
        broker
            .traces
            .traced_in(&delivery.batches, delivery.from_offset, delivery.to_offset);
    if found.is_empty() {
        return;
    }
    let now = crate::traces::now_us();
    for t in found {
        let parent =
            crate::traces::produce_span_id(&t.context, topic, delivery.partition, t.offset);
        let id = crate::traces::deliver_span_id(
            &t.context,
            group.unwrap_or(""),
            topic,
            delivery.partition,
            t.offset,
            1,
        );
        let mut attributes = crate::traces::message_attributes(topic, delivery.partition, t.offset);
        attributes.push(("subscription".into(), delivery.subscription_id.to_string()));
        if let Some(group) = group {
            attributes.push(("group".into(), group.into()));
        }
        attributes.push(("attempt".into(), "1".into()));
        broker
            .traces
            .span(&t.context, id, parent, "deliver", now, now, attributes);
    }
}
