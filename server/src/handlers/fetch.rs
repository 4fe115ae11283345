//! Fetch with long polling, and the delivery spans of what a group member fetched;
//! ListOffsets, where to fetch from to read from a point in time.

use std::sync::Arc;
use std::time::Duration;

use protocol::ops::fetch::{FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse};
use protocol::ops::offsets::PartitionOffset;
use storage::ReadChunk;

use super::members::Membership;
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::partition::Partition;

/// Reads from `offset`; if nothing is there yet, waits up to `max_wait_ms` (at most
/// the server's limit) for data. `members` are the session's stream-group memberships
/// reading the topic (usually none): the traced messages of the answer are spanned as
/// delivered to those that own the partition.
pub async fn fetch(
    broker: Arc<Broker>,
    request: FetchRequest,
    members: Vec<Membership>,
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
            if !chunk.is_empty() {
                count_delivery(&broker, &partition, &request, &chunk);
            }
            if !members.is_empty() && !chunk.is_empty() {
                span_deliveries(&broker, &request, &chunk, &members);
            }
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

/// Counts a fetch answer as a delivery of the records from the offset asked for (a
/// fetch answers whole batches; the records below its offset are not delivered).
fn count_delivery(
    broker: &Broker,
    partition: &Partition,
    request: &FetchRequest,
    chunk: &ReadChunk,
) {
    let from = request.offset.max(chunk.first_offset);
    let messages = chunk.next_offset.saturating_sub(from);
    broker
        .metrics
        .delivered(partition, messages, &chunk.bytes, broker.clock.wall_ms());
}

/// Spans the traced messages of `chunk` as delivered to each of `members` that owns
/// the partition. The ownership check (the coordinator's lock) is made only once a
/// traced message was found.
fn span_deliveries(
    broker: &Broker,
    request: &FetchRequest,
    chunk: &ReadChunk,
    members: &[Membership],
) {
    // A fetch answers whole batches; the records below its offset are not delivered.
    let from = request.offset.max(chunk.first_offset);
    let traced = broker
        .traces
        .traced_fetch(&chunk.bytes, from, chunk.next_offset);
    if traced.is_empty() {
        return;
    }
    for m in members {
        if broker
            .groups
            .owns(&m.group, &m.member_id, request.partition)
        {
            broker.traces.on_fetch(
                &request.topic,
                request.partition,
                &traced,
                &m.group,
                &m.member_id,
            );
        }
    }
}

/// Per partition asked about, where to fetch from to read from its time on
/// ([`Partition::offset_for_time`](crate::partition::Partition::offset_for_time)).
pub fn list_offsets(
    broker: &Broker,
    request: ListOffsetsRequest,
) -> Result<ListOffsetsResponse, BrokerError> {
    let topic = broker.topics.get(&request.topic)?;
    let offsets = request
        .partitions
        .iter()
        .map(|asked| {
            let partition = topic.partition(asked.partition)?;
            Ok(PartitionOffset {
                partition: asked.partition,
                offset: partition.offset_for_time(asked.timestamp_ms)?,
            })
        })
        .collect::<Result<Vec<_>, BrokerError>>()?;
    Ok(ListOffsetsResponse { offsets })
}
