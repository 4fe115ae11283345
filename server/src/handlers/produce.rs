//! Produce: route a batch to a partition, append it, acknowledge at the asked level.
//!
//! The append itself runs inline on the connection task, in the order requests
//! arrived, so pipelined produces from one connection land in order. Only waiting for
//! durability is asynchronous.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protocol::batch::BatchHeader;
use protocol::ops::produce::{AckLevel, ProduceRequest, ProduceResponse};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::partition::Partition;
use crate::routing;
use crate::traces::{self, Traced, Tracer};
use protocol::trace::derived_span_id;

/// An append that happened and may still need to become durable.
#[derive(Debug)]
pub struct Appended {
    /// Where it went.
    pub partition: Arc<Partition>,
    /// Its first offset.
    pub base_offset: u64,
    /// Its end offset.
    pub next_offset: u64,
    /// Traced records in it, with what their durable span needs.
    traced: Option<TracedAppend>,
}

/// What the `durable` spans of a traced batch need.
#[derive(Debug)]
struct TracedAppend {
    tracer: Arc<Tracer>,
    topic: String,
    partition: u32,
    records: Vec<Traced>,
    appended_us: u64,
}

/// Routes and appends. Returns the partition number and the append, or the error.
pub fn append(
    broker: &Broker,
    request: &ProduceRequest,
    batch: Bytes,
) -> Result<(u32, Appended), BrokerError> {
    let topic = broker.topics.get(&request.topic)?;
    if topic.internal {
        return Err(BrokerError::InvalidRequest(format!(
            "{:?} is an internal topic; clients cannot produce to it",
            topic.name
        )));
    }
    let partition_id = routing::select(&topic, &request.partition)?;
    let partition = topic.partition(partition_id)?.clone();
    let records = BatchHeader::parse(&batch)
        .map(|h| h.record_count)
        .unwrap_or(0);
    let received_us = traces::now_us();
    let info = partition.append(&batch, records)?;
    // Traced messages: a `produce` span from receipt to the end of the append, with
    // the `append` (the log write) below it.
    let found = broker.tracer.traced(&batch, info.base_offset, 0, u64::MAX);
    let traced = (!found.is_empty()).then(|| {
        let appended_us = traces::now_us();
        for t in &found {
            let id = traces::produce_span_id(&t.context, &topic.name, partition_id, t.offset);
            let attributes = traces::message_attributes(&topic.name, partition_id, t.offset);
            let tracer = &broker.tracer;
            tracer.span(
                &t.context,
                id,
                t.context.parent_id,
                "produce",
                received_us,
                appended_us,
                attributes.clone(),
            );
            let append = derived_span_id(&t.context.trace_id, &[b"append", &id]);
            tracer.span(
                &t.context,
                append,
                id,
                "append",
                received_us,
                appended_us,
                attributes,
            );
        }
        TracedAppend {
            tracer: broker.tracer.clone(),
            topic: topic.name.clone(),
            partition: partition_id,
            records: found,
            appended_us,
        }
    });
    Ok((
        partition_id,
        Appended {
            partition,
            base_offset: info.base_offset,
            next_offset: info.next_offset,
            traced,
        },
    ))
}

/// Completes a produce at its acknowledgement level.
pub async fn acknowledge(
    appended: Appended,
    partition: u32,
    ack: AckLevel,
    timeout_ms: u32,
) -> Result<ProduceResponse, BrokerError> {
    if ack == AckLevel::Durable {
        let timeout = Duration::from_millis(u64::from(timeout_ms.max(1)));
        appended
            .partition
            .wait_durable(appended.next_offset, timeout)
            .await?;
        if let Some(traced) = &appended.traced {
            let durable_us = traces::now_us();
            for t in &traced.records {
                let parent =
                    traces::produce_span_id(&t.context, &traced.topic, traced.partition, t.offset);
                let id = derived_span_id(&t.context.trace_id, &[b"durable", &parent]);
                let attributes =
                    traces::message_attributes(&traced.topic, traced.partition, t.offset);
                traced.tracer.span(
                    &t.context,
                    id,
                    parent,
                    "durable",
                    traced.appended_us,
                    durable_us,
                    attributes,
                );
            }
        }
    }
    Ok(appended_response(&appended, partition))
}

/// The answer to a produce whose batch is appended (all an `appended` ack waits for).
pub fn appended_response(appended: &Appended, partition: u32) -> ProduceResponse {
    ProduceResponse {
        partition,
        base_offset: Some(appended.base_offset),
    }
}
