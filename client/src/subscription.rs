//! [`Subscription`]: records pushed by the broker, paced by credit.
//!
//! The connection's reader task routes each pushed `Delivery` to the subscription's
//! channel. The channel is registered by the reader itself when the Subscribe answer
//! arrives, so no delivery that follows the answer can be missed. A subscription lives
//! on one connection: if the connection drops, [`Subscription::next`] returns `None`
//! and the caller subscribes again (from its last position).

use protocol::ops::subscribe::{
    CreditRequest, Delivery, StartPosition, SubscribeRequest, SubscribeTarget, UnsubscribeRequest,
};
use protocol::Request;
use tokio::sync::mpsc;

use crate::admin::subscribe_response;
use crate::connection::{Client, SUBSCRIPTION_BUFFER_DELIVERIES};
use crate::error::ClientError;

/// An open push subscription. Created by [`Client::subscribe`].
///
/// ```no_run
/// use client::protocol::ops::subscribe::{StartPosition, SubscribeTarget};
///
/// # async fn demo(client: client::Client) -> Result<(), client::ClientError> {
/// let (window_messages, window_bytes) = (1000u32, 1u64 << 20);
/// let mut sub = client
///     .subscribe("orders", SubscribeTarget::Partition(0), StartPosition::Earliest,
///                window_messages, window_bytes)
///     .await?;
/// let (mut used_messages, mut used_bytes) = (0u32, 0u64);
/// while let Some(delivery) = sub.next().await {
///     let mut records = std::collections::VecDeque::new();
///     let (from, to) = (delivery.from_offset, delivery.to_offset);
///     // The broker counts the offsets and bytes a delivery spans.
///     used_messages += u32::try_from(to - from).unwrap_or(u32::MAX);
///     used_bytes += delivery.batches.len() as u64;
///     client::decode_records(delivery.partition, delivery.batches, from, Some(to), &mut records)?;
///     // Give back what was used once it reaches half the window: the broker keeps
///     // pushing into the other half, and a delivery costs no Credit round trip.
///     if used_messages >= window_messages / 2 || used_bytes >= window_bytes / 2 {
///         sub.credit(used_messages, used_bytes).await?;
///         (used_messages, used_bytes) = (0, 0);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Subscription {
    client: Client,
    id: u64,
    deliveries: mpsc::Receiver<Delivery>,
}

impl Client {
    /// Opens a subscription with an initial credit of `credit_messages` messages and
    /// `credit_bytes` bytes; the broker pushes while both remain.
    pub async fn subscribe(
        &self,
        topic: &str,
        target: SubscribeTarget,
        start: StartPosition,
        credit_messages: u32,
        credit_bytes: u64,
    ) -> Result<Subscription, ClientError> {
        let (tx, deliveries) = mpsc::channel(SUBSCRIPTION_BUFFER_DELIVERIES);
        let request = Request::Subscribe(SubscribeRequest {
            topic: topic.to_string(),
            target,
            start,
            credit_messages,
            credit_bytes,
        });
        let timeout = self.config().request_timeout;
        let response = self.start(request, timeout, Some(tx)).await?.wait().await?;
        Ok(Subscription {
            client: self.clone(),
            id: subscribe_response(response)?,
            deliveries,
        })
    }
}

impl Subscription {
    /// The broker's id for this subscription.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next delivery, or `None` once the subscription ended (unsubscribed, topic
    /// deleted, connection lost, or this reader fell too far behind).
    pub async fn next(&mut self) -> Option<Delivery> {
        self.deliveries.recv().await
    }

    /// Grants more credit: `messages` and `bytes` are added to what is left. One
    /// request and answer each; granting back in steps (say, half the window at a
    /// time) rather than per delivery keeps it off every delivery's path.
    pub async fn credit(&self, messages: u32, bytes: u64) -> Result<(), ClientError> {
        let request = Request::Credit(CreditRequest {
            subscription_id: self.id,
            messages,
            bytes,
        });
        self.client.request(request).await.map(drop)
    }

    /// Closes the subscription. Deliveries already pushed are discarded.
    pub async fn unsubscribe(self) -> Result<(), ClientError> {
        self.client.forget_subscription(self.id).await;
        let request = Request::Unsubscribe(UnsubscribeRequest {
            subscription_id: self.id,
        });
        self.client.request(request).await.map(drop)
    }
}
