//! Span ids. Each is derived from the trace id and what the span is about, so any
//! part of the broker can name a span's parent without keeping per-message state.

use protocol::trace::{derived_span_id, TraceParent};

use super::At;

/// Id of the broker's root span for a message: everything else hangs below it.
pub fn produce(context: &TraceParent, at: At<'_>) -> [u8; 8] {
    derived_span_id(
        &context.trace_id,
        &[
            b"produce",
            at.topic.as_bytes(),
            &at.partition.to_le_bytes(),
            &at.offset.to_le_bytes(),
        ],
    )
}

/// Id of delivery number `attempt` of a message to `group` (empty for a subscription
/// outside any group).
pub fn deliver(context: &TraceParent, group: &str, at: At<'_>, attempt: u32) -> [u8; 8] {
    derived_span_id(
        &context.trace_id,
        &[
            b"deliver",
            group.as_bytes(),
            at.topic.as_bytes(),
            &at.partition.to_le_bytes(),
            &at.offset.to_le_bytes(),
            &attempt.to_le_bytes(),
        ],
    )
}

/// Id of the nack (or expiry) that ended delivery number `attempt`.
pub fn nack(context: &TraceParent, group: &str, at: At<'_>, attempt: u32) -> [u8; 8] {
    derived_span_id(
        &context.trace_id,
        &[
            b"nack",
            group.as_bytes(),
            at.topic.as_bytes(),
            &at.partition.to_le_bytes(),
            &at.offset.to_le_bytes(),
            &attempt.to_le_bytes(),
        ],
    )
}

/// Id of a span that is the only one of its `kind` below `parent`.
pub fn child(context: &TraceParent, kind: &[u8], parent: &[u8; 8]) -> [u8; 8] {
    derived_span_id(&context.trace_id, &[kind, parent])
}

/// Id of the route span of record `index` of a published batch.
pub fn route(context: &TraceParent, routing_key: &str, index: u64) -> [u8; 8] {
    derived_span_id(
        &context.trace_id,
        &[b"route", routing_key.as_bytes(), &index.to_le_bytes()],
    )
}
