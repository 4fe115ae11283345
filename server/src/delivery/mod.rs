//! What every push delivery shares, whoever drives it: stream subscriptions
//! ([`crate::subscription`]) and queue dispatch ([`crate::queue`]) both hand out
//! batches under a consumer's [`Credit`], cut each read to that credit with
//! [`cut_to_credit`], and sleep in [`wait_for_any`] when no partition has anything new.
//!
//! The rules, stated once (`docs/protocol.md`, Subscribe): a delivery carries at most
//! the remaining message credit (its `to_offset` cuts the last batch short if needed),
//! is read with at most the remaining byte credit, and so may overdraw the byte credit
//! by at most one batch, so that a batch larger than the whole credit still gets
//! through.

mod credit;
mod cut;
mod wait;

pub use credit::{Credit, CreditCell};
pub use cut::{cut_to_credit, Cut};
pub use wait::wait_for_any;

use protocol::ops::subscribe::Delivery;
use protocol::Message;
use tokio::sync::mpsc;

/// Where one consumer's deliveries go: the bounded outbound queue of the session that
/// subscribed (a connection's writer, or another listener's stream), shared with that
/// session's responses so both stay in order and in one bound.
#[derive(Debug, Clone)]
pub struct Pushes(mpsc::Sender<Message>);

impl Pushes {
    /// Deliveries into `outbound`.
    pub fn new(outbound: mpsc::Sender<Message>) -> Pushes {
        Pushes(outbound)
    }

    /// Sends a delivery, waiting for room in the queue; `false` once the consumer is
    /// gone. Only a task that serves this one consumer may wait here.
    pub async fn push(&self, delivery: Delivery) -> bool {
        self.0.send(Message::Push(delivery)).await.is_ok()
    }

    /// A place in the queue for one delivery, if there is room now: a task that serves
    /// several consumers (a queue group's dispatcher) hands out only what it can queue
    /// without waiting, so a consumer that stops reading slows only itself.
    pub fn try_reserve(&self) -> Option<Slot> {
        self.0.clone().try_reserve_owned().ok().map(Slot)
    }
}

/// A reserved place in a consumer's queue ([`Pushes::try_reserve`]).
#[derive(Debug)]
pub struct Slot(mpsc::OwnedPermit<Message>);

impl Slot {
    /// Queues the delivery in the reserved place; never waits. (If the consumer went
    /// away meanwhile, the delivery is dropped; its lease expires as for any lost
    /// delivery.)
    pub fn push(self, delivery: Delivery) {
        self.0.send(Message::Push(delivery));
    }
}
