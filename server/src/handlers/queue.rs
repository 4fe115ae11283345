//! Settling queue deliveries: ack, nack, extend.

use std::sync::Arc;

use protocol::ops::ack::{AckRequest, ExtendDeadlineRequest, NackRequest};

use crate::broker::Broker;
use crate::error::BrokerError;

/// Acks messages; answered once the acks are durable.
pub async fn ack(broker: Arc<Broker>, request: AckRequest) -> Result<(), BrokerError> {
    let group = broker.queues.checked(&request.group, &request.topic)?;
    group.ack(request.partition, &request.offsets).await
}

/// Nacks a message: redelivered after the delay (or the backoff), or dead-lettered.
pub async fn nack(broker: Arc<Broker>, request: NackRequest) -> Result<(), BrokerError> {
    let group = broker.queues.checked(&request.group, &request.topic)?;
    let delay_ms = request.redelivery_delay_ms.map(u64::from);
    group
        .nack(request.partition, request.offset, &request.reason, delay_ms)
        .await
}

/// Extends a message's ack deadline.
pub fn extend(broker: &Broker, request: ExtendDeadlineRequest) -> Result<(), BrokerError> {
    let group = broker.queues.checked(&request.group, &request.topic)?;
    group.extend(
        request.partition,
        request.offset,
        u64::from(request.extend_ms),
    )
}

/// A pull of queue messages by a member without a push subscription: what a
/// listener whose clients hold no connection (the HTTP gateway) serves a receive
/// with. Not a wire operation; it is authorized as the Subscribe of the same member
/// would be ([`ReceiveRequest::authorized_as`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveRequest {
    /// The queue group.
    pub group: String,
    /// The group's topic.
    pub topic: String,
    /// The member pulling (joined in queue mode).
    pub member_id: String,
    /// Messages to take at most.
    pub max_messages: u32,
    /// Bytes of batches to read at most (at least one batch is read).
    pub max_bytes: u64,
    /// If nothing is due, wait up to this long for something (capped by
    /// `limits.max_fetch_wait_ms`).
    pub max_wait_ms: u32,
    /// Each message's lease: its ack deadline from now; absent, the group's
    /// `ack_deadline_ms`.
    pub lease_ms: Option<u32>,
}

impl ReceiveRequest {
    /// The wire request whose authorization a receive needs: a Subscribe of the same
    /// member to the same group (read on the group and on the topic).
    pub fn authorized_as(&self) -> protocol::Request {
        use protocol::ops::subscribe::{StartPosition, SubscribeRequest, SubscribeTarget};
        protocol::Request::Subscribe(SubscribeRequest {
            topic: self.topic.clone(),
            target: SubscribeTarget::Group {
                group: self.group.clone(),
                member_id: self.member_id.clone(),
            },
            start: StartPosition::Earliest,
            credit_messages: self.max_messages,
            credit_bytes: self.max_bytes,
        })
    }
}

/// Pulls up to `max_messages` messages for a member, long-polling up to
/// `max_wait_ms` while nothing is due; answers once their delivery is durable. The
/// caller must have authorized [`ReceiveRequest::authorized_as`].
pub async fn receive(
    broker: Arc<Broker>,
    request: ReceiveRequest,
) -> Result<Vec<protocol::ops::subscribe::Delivery>, BrokerError> {
    if request.max_messages == 0 || request.max_bytes == 0 {
        return Err(BrokerError::InvalidRequest(
            "a receive of 0 messages or 0 bytes takes nothing".into(),
        ));
    }
    let group = broker.queues.checked(&request.group, &request.topic)?;
    // The member must be one the coordinator knows, as for a Subscribe.
    broker
        .groups
        .assignment(&request.group, &request.member_id)?;
    let max_wait_ms = request
        .max_wait_ms
        .min(broker.config.limits.max_fetch_wait_ms);
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_millis(u64::from(max_wait_ms));
    loop {
        let pulled = group
            .pull(&request.member_id, request.max_messages, request.max_bytes)
            .await?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !pulled.is_empty() || left.is_zero() {
            if let Some(lease_ms) = request.lease_ms {
                for delivery in &pulled {
                    for offset in delivery.from_offset..delivery.to_offset {
                        // Only a message settled meanwhile (acked by a quick
                        // client) can refuse; it needs no lease.
                        let _ = group.extend(delivery.partition, offset, u64::from(lease_ms));
                    }
                }
            }
            return Ok(pulled);
        }
        group.wait_for_work(left).await;
    }
}
