//! Publish: append a batch to every topic whose routing rule matches its key.

use protocol::ops::routes::PublishRequest;
use protocol::ops::Response;

use super::Outcome;
use crate::broker::Broker;

/// Appends now (so publishes from one session land in the order sent) and answers
/// once every destination reached the asked acknowledgement level.
pub fn publish(broker: &Broker, request: PublishRequest) -> Outcome {
    let appended = match broker.routes.append_routed(&request) {
        Ok(appended) => appended,
        Err(error) => return Outcome::Now(Err(error)),
    };
    let (ack, timeout_ms) = (request.ack, request.timeout_ms);
    Outcome::Later(Box::pin(async move {
        crate::routes::acknowledge(appended, ack, timeout_ms)
            .await
            .map(Response::Publish)
    }))
}
