//! Where a request's answer goes: the connection's bounded outbound queue.

use protocol::ops::Response;
use protocol::{ErrorResponse, Message};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use crate::error::BrokerError;

/// Sends answers to the connection's writer task. A request's in-flight budget
/// (its permit) is held until its answer is queued.
#[derive(Clone)]
pub struct Reply {
    outbound: mpsc::Sender<Message>,
}

impl Reply {
    /// Answers through `outbound`.
    pub fn new(outbound: mpsc::Sender<Message>) -> Reply {
        Reply { outbound }
    }

    /// Queues the answer to one request, then releases its budget.
    pub async fn send(
        &self,
        correlation_id: u32,
        op: u16,
        result: Result<Response, BrokerError>,
        _permit: Option<OwnedSemaphorePermit>,
    ) {
        let message = match result {
            Ok(response) => Message::Response {
                correlation_id,
                response,
            },
            Err(error) => error_message(correlation_id, op, &error),
        };
        // A closed queue means the connection is going away; nothing to do.
        let _ = self.outbound.send(message).await;
    }

    /// Queues an error answer, for an error shared by several requests.
    pub async fn send_error(
        &self,
        correlation_id: u32,
        op: u16,
        error: &BrokerError,
        _permit: Option<OwnedSemaphorePermit>,
    ) {
        let _ = self
            .outbound
            .send(error_message(correlation_id, op, error))
            .await;
    }
}

/// The error frame answering request `correlation_id`.
pub fn error_message(correlation_id: u32, op: u16, error: &BrokerError) -> Message {
    Message::Error {
        correlation_id,
        op,
        error: ErrorResponse {
            code: error.code(),
            message: error.to_string(),
        },
    }
}
