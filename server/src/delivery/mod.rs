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
    /// gone.
    pub async fn push(&self, delivery: Delivery) -> bool {
        self.0.send(Message::Push(delivery)).await.is_ok()
    }
}
