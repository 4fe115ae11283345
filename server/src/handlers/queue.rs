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
