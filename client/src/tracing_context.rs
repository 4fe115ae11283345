//! Starting and continuing W3C traces from the client.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

pub use protocol::trace::{Span, TraceParent, TRACEPARENT_HEADER, TRACES_TOPIC};

fn random_u64() -> u64 {
    // RandomState is seeded from the OS per instance: random enough for trace ids,
    // without a dependency for one line.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(std::process::id().into());
    hasher.finish().max(1)
}

/// A new sampled trace, as if started by a span of the application.
pub fn new_trace() -> TraceParent {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&random_u64().to_be_bytes());
    trace_id[8..].copy_from_slice(&random_u64().to_be_bytes());
    TraceParent {
        trace_id,
        parent_id: random_u64().to_be_bytes(),
        sampled: true,
    }
}

impl crate::Record {
    /// Carries `context` as the record's `traceparent` header: the broker records spans
    /// for it, and every consumer receives the header to continue the trace.
    pub fn with_trace(self, context: &TraceParent) -> crate::Record {
        self.with_header(TRACEPARENT_HEADER, context.to_header())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_traces_are_valid_and_distinct() {
        let a = new_trace();
        let b = new_trace();
        assert_ne!(a.trace_id, b.trace_id);
        assert_eq!(TraceParent::parse(a.to_header().as_bytes()), Some(a));
    }
}
