//! Where the native connection's answers go: its bounded outbound queue. A request's
//! in-flight budget (its permit) is held until its answer is queued.

use std::sync::Arc;

use protocol::Message;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use crate::error::error_frame;
use crate::handlers::{Answer, Answers};
use crate::metrics::Metrics;

/// The request an answer belongs to, and the budget it holds.
#[derive(Debug)]
pub struct ReplyTo {
    /// The request's correlation id.
    pub correlation_id: u32,
    /// Its operation code.
    pub op: u16,
    /// Its charge against the connection's in-flight budget, released once the
    /// answer is queued.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// Sends answers to the connection's writer task.
#[derive(Debug, Clone)]
pub struct Reply {
    outbound: mpsc::Sender<Message>,
    /// Where every answer is counted, by operation and error code.
    metrics: Arc<Metrics>,
}

impl Reply {
    /// Answers through `outbound`, counting each answer in `metrics`.
    pub fn new(outbound: mpsc::Sender<Message>, metrics: Arc<Metrics>) -> Reply {
        Reply { outbound, metrics }
    }

    /// Queues the answer to one request, then releases its budget.
    pub async fn send(&self, to: ReplyTo, answer: Answer) {
        self.metrics.requests.count(to.op, &answer);
        let message = match answer {
            Ok(response) => Message::Response {
                correlation_id: to.correlation_id,
                response,
            },
            Err(error) => error_frame(to.correlation_id, to.op, &error),
        };
        // A closed queue means the connection is going away; nothing to do.
        let _ = self.outbound.send(message).await;
        drop(to.permit);
    }
}

impl Answers for Reply {
    type Ticket = ReplyTo;

    async fn answer(&self, ticket: ReplyTo, answer: Answer) {
        self.send(ticket, answer).await
    }
}
