//! [`QueueMessage`] and what settling one needs: the ack path and the credit it earns
//! back.
//!
//! Credit belongs to one subscription, and a consumer has a new subscription after
//! every rejoin. Each message therefore holds the [`Settler`] of the session that
//! received it; when that session ends, its settler is *retired*: its messages can
//! still be acked or nacked (the broker knows them by group, partition and offset),
//! but settling them returns no credit, which would go to a subscription that no
//! longer exists (or, worse, inflate the new one past `max_in_flight`).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protocol::ops::ack::{ExtendDeadlineRequest, NackRequest};
use protocol::ops::subscribe::CreditRequest;
use protocol::Request;
use tokio::sync::mpsc;

use super::acker::PendingAck;
use crate::connection::Client;
use crate::error::ClientError;
use crate::records::ConsumerRecord;

/// Byte credit granted with every message credit: effectively unlimited, the
/// message credit is what paces delivery.
pub(super) const BYTE_CREDIT: u64 = 1 << 40;

/// What settling a message needs, shared by the messages of one session.
#[derive(Debug)]
pub(super) struct Settler {
    pub(super) client: Client,
    /// Acks go through the coalescing task: many acks issued together travel as one
    /// request per partition instead of one round trip each.
    pub(super) acks: mpsc::Sender<PendingAck>,
    pub(super) group: String,
    pub(super) topic: String,
    /// The session's subscription, which settled messages give credit back to.
    pub(super) subscription_id: u64,
    /// Credit earned back by settled messages, not yet granted.
    pub(super) earned: AtomicU32,
    /// Set by [`QueueConsumer::stop_taking`](super::QueueConsumer::stop_taking), for
    /// every session of the consumer: settle without asking for more.
    pub(super) stopped: Arc<AtomicBool>,
    /// Set when this settler's session ended: its subscription is gone.
    pub(super) retired: AtomicBool,
    pub(super) grant_every: u32,
}

impl Settler {
    async fn settled(&self) -> Result<(), ClientError> {
        if self.stopped.load(Ordering::Acquire) || self.retired.load(Ordering::Acquire) {
            return Ok(());
        }
        let earned = self.earned.fetch_add(1, Ordering::AcqRel) + 1;
        if earned >= self.grant_every {
            let messages = self.earned.swap(0, Ordering::AcqRel);
            if messages > 0 {
                let request = Request::Credit(CreditRequest {
                    subscription_id: self.subscription_id,
                    messages,
                    bytes: BYTE_CREDIT,
                });
                match self.client.request(request).await {
                    Ok(_) => {}
                    // The session ended while the grant was on its way: nothing to give
                    // credit to any more, and the ack itself stands.
                    Err(_) if self.retired.load(Ordering::Acquire) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// One delivered message. Settle it exactly once.
#[derive(Debug)]
pub struct QueueMessage {
    /// The message itself.
    pub record: ConsumerRecord,
    /// Which delivery this is: 1 the first time, more on redeliveries.
    pub attempt: u32,
    pub(super) settler: Arc<Settler>,
}

impl QueueMessage {
    /// The value (`None` for a tombstone).
    pub fn value(&self) -> Option<&Bytes> {
        self.record.value.as_ref()
    }

    /// The headers, in order.
    pub fn headers(&self) -> &[(String, Bytes)] {
        &self.record.headers
    }

    /// Done: the message is never delivered again. Resolves once the broker has
    /// recorded the ack durably.
    pub async fn ack(self) -> Result<(), ClientError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let pending = (self.record.partition, self.record.offset, tx);
        let acked = match self.settler.acks.send(pending).await {
            Ok(()) => rx
                .await
                .unwrap_or(Err(ClientError::Closed("the queue consumer"))),
            Err(_) => Err(ClientError::Closed("the queue consumer")),
        };
        // Settled either way (a refused ack means the broker no longer holds the
        // message for us): its credit comes back, or the consumer would starve.
        let credit = self.settler.settled().await;
        acked.and(credit)
    }

    /// Failed: redeliver after the backoff, or dead-letter it if this was the last
    /// attempt. The reason travels to the dead-letter headers.
    pub async fn nack(self, reason: &str) -> Result<(), ClientError> {
        self.nack_inner(reason, None).await
    }

    /// Failed: redeliver after `delay` (instead of the backoff), or dead-letter it.
    pub async fn nack_with_delay(self, reason: &str, delay: Duration) -> Result<(), ClientError> {
        let delay_ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
        self.nack_inner(reason, Some(delay_ms)).await
    }

    async fn nack_inner(self, reason: &str, delay_ms: Option<u32>) -> Result<(), ClientError> {
        let request = Request::Nack(NackRequest {
            group: self.settler.group.clone(),
            topic: self.settler.topic.clone(),
            partition: self.record.partition,
            offset: self.record.offset,
            reason: reason.to_string(),
            redelivery_delay_ms: delay_ms,
        });
        let nacked = self.settler.client.request(request).await.map(drop);
        // As for `ack`: the credit comes back whatever the answer.
        let credit = self.settler.settled().await;
        nacked.and(credit)
    }

    /// Still working on it: move the ack deadline to `by` from now.
    pub async fn extend_deadline(&self, by: Duration) -> Result<(), ClientError> {
        let request = Request::ExtendDeadline(ExtendDeadlineRequest {
            group: self.settler.group.clone(),
            topic: self.settler.topic.clone(),
            partition: self.record.partition,
            offset: self.record.offset,
            extend_ms: u32::try_from(by.as_millis()).unwrap_or(u32::MAX),
        });
        self.settler.client.request(request).await.map(drop)
    }
}
