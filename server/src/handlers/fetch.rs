//! Fetch with long polling.

use std::sync::Arc;
use std::time::Duration;

use protocol::ops::fetch::{FetchRequest, FetchResponse};

use crate::broker::Broker;
use crate::error::BrokerError;

/// Reads from `offset`; if nothing is there yet, waits up to `max_wait_ms` (at most
/// the server's limit) for data.
pub async fn fetch(
    broker: Arc<Broker>,
    request: FetchRequest,
) -> Result<FetchResponse, BrokerError> {
    let limits = &broker.config.limits;
    let topic = broker.topics.get(&request.topic)?;
    let partition = topic.partition(request.partition)?.clone();
    let max_bytes = request.max_bytes.clamp(1, limits.max_fetch_bytes) as usize;
    let wait = Duration::from_millis(u64::from(request.max_wait_ms.min(limits.max_fetch_wait_ms)));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let chunk = partition.read(request.offset, max_bytes)?;
        let now = tokio::time::Instant::now();
        if !chunk.is_empty() || now >= deadline {
            return Ok(FetchResponse {
                high_watermark: partition.visible_end(),
                log_start_offset: partition.start_offset(),
                batches: chunk.bytes,
            });
        }
        partition
            .wait_for_data(request.offset, deadline - now)
            .await;
    }
}
