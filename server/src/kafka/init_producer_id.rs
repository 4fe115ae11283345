//! InitProducerId: an idempotent producer's id, from the same allocator as the
//! native `InitProducer` (so ids are unique across both protocols and restarts), at
//! epoch 0. As Kafka does for a producer without a transactional id, every call
//! hands out a new id, also when the client names its current one (KIP-360's epoch
//! bump, which librdkafka asks for after an error): a new id starts its sequences
//! over just as a new epoch would. A transactional id is refused with
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients treat as fatal: brokerd has
//! no transactions (an empty one with INVALID_REQUEST, as Kafka answers it).

use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::ProducerId;
use kafka_protocol::records::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use kafka_protocol::ResponseError;
use protocol::ops::Empty;
use protocol::{Request, Response};

use super::error;
use super::session::{unexpected, Session};
use crate::error::BrokerError;
use crate::producers::kafka::MAX_KAFKA_PRODUCER_ID;

/// Serves an InitProducerId.
pub async fn init_producer_id(
    s: &mut Session,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let refused = |code: i16| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(NO_PRODUCER_ID))
            .with_producer_epoch(NO_PRODUCER_EPOCH)
    };
    match &request.transactional_id {
        None => {}
        // Kafka's answer to an empty one.
        Some(id) if id.is_empty() => return refused(ResponseError::InvalidRequest.code()),
        Some(_) => return refused(ResponseError::TransactionalIdAuthorizationFailed.code()),
    }
    // Kafka's own check: an id and an epoch come together or not at all.
    if (request.producer_id.0 == NO_PRODUCER_ID) != (request.producer_epoch == NO_PRODUCER_EPOCH) {
        return refused(ResponseError::InvalidRequest.code());
    }
    let allocated = match s.call(Request::InitProducer(Empty)).await {
        Ok(Response::InitProducer(done)) => done.producer_id,
        Ok(other) => return refused(error::code(&unexpected(&other))),
        Err(e) => return refused(error::code(&e)),
    };
    if allocated > MAX_KAFKA_PRODUCER_ID {
        let e = BrokerError::Internal(format!(
            "producer id {allocated} does not fit a Kafka producer's native id"
        ));
        tracing::error!(%e, "InitProducerId");
        return refused(error::code(&e));
    }
    InitProducerIdResponse::default()
        .with_producer_id(ProducerId(allocated as i64))
        .with_producer_epoch(0)
}
