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
/// let mut sub = client
///     .subscribe("orders", SubscribeTarget::Partition(0), StartPosition::Earliest, 100, 1 << 20)
///     .await?;
/// while let Some(delivery) = sub.next().await {
///     let mut records = std::collections::VecDeque::new();
///     let (from, to) = (delivery.from_offset, delivery.to_offset);
///     client::decode_records(delivery.partition, delivery.batches, from, Some(to), &mut records)?;
///     sub.credit(records.len() as u32, 1 << 20).await?; // ask for as much again
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

    /// Grants more credit.
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
