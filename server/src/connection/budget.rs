//! The in-flight budget of one connection: request bytes received and not yet
//! answered, at most `max_inflight_bytes_per_connection`. A request holds its charge
//! (a semaphore permit) until its answer is queued, so a client that pipelines
//! without reading answers stalls itself, not the broker.

use std::sync::Arc;

use protocol::Request;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes charged for a request without a batch.
const BASE_REQUEST_BYTES: usize = 512;

/// What a request costs against the budget.
pub fn request_bytes(request: &Request) -> usize {
    match request {
        Request::Produce(p) => BASE_REQUEST_BYTES + p.batch.len(),
        Request::Publish(p) => BASE_REQUEST_BYTES + p.batch.len(),
        _ => BASE_REQUEST_BYTES,
    }
}

/// A connection's budget.
#[derive(Debug, Clone)]
pub struct Budget {
    permits: Arc<Semaphore>,
    max_bytes: usize,
}

impl Budget {
    /// A budget of `max_bytes`.
    pub fn new(max_bytes: usize) -> Budget {
        Budget {
            permits: Arc::new(Semaphore::new(max_bytes)),
            max_bytes,
        }
    }

    fn cost(&self, request: &Request) -> u32 {
        // A request larger than the budget is charged the whole budget: it runs alone.
        request_bytes(request).min(self.max_bytes) as u32
    }

    /// Charges `request` if the budget has room now.
    pub fn try_charge(&self, request: &Request) -> Option<OwnedSemaphorePermit> {
        self.permits
            .clone()
            .try_acquire_many_owned(self.cost(request))
            .ok()
    }

    /// Charges `request`, waiting for answers to free room.
    pub async fn charge(&self, request: &Request) -> Option<OwnedSemaphorePermit> {
        self.permits
            .clone()
            .acquire_many_owned(self.cost(request))
            .await
            .ok()
    }

    /// Whether some charged request still waits for its answer.
    pub fn in_use(&self) -> bool {
        self.permits.available_permits() < self.max_bytes
    }

    /// Waits until every charged request was answered.
    pub async fn drain(&self) {
        let _ = self.permits.acquire_many(self.max_bytes as u32).await;
    }
}
