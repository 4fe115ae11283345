//! Finding the traced records of a batch: a scan of record headers for a valid
//! `traceparent`. A message without one costs this scan and nothing else, and a batch
//! in which the header's name does not occur at all (the common case) costs one
//! `memmem` over its bytes, which is several times cheaper than walking its records.

use std::sync::OnceLock;

use bytes::Bytes;
use memchr::memmem;
use protocol::batch::{split_batches, BatchHeader, BatchView};
use protocol::trace::{TraceParent, TRACEPARENT_HEADER};

/// A traced record: its offset and trace context.
#[derive(Debug, Clone, Copy)]
pub struct Traced {
    /// Offset of the record.
    pub offset: u64,
    /// Its trace context.
    pub context: TraceParent,
}

/// The traced records of a stored batch (base offset already assigned) whose offsets
/// are in `[from, to)`.
pub fn traced_records(batch: &[u8], base_offset: u64, from: u64, to: u64) -> Vec<Traced> {
    let mut out = Vec::new();
    if header_name().find(batch).is_none() {
        return out; // no record can have the header: skip the walk
    }
    let Ok(view) = BatchView::new(batch) else {
        return out;
    };
    for (index, record) in view.records().enumerate() {
        let Ok(record) = record else { break };
        let offset = base_offset + index as u64;
        if offset < from || offset >= to {
            continue;
        }
        for header in record.headers().flatten() {
            if header.0 == TRACEPARENT_HEADER {
                if let Some(context) = TraceParent::parse(header.1) {
                    out.push(Traced { offset, context });
                }
                break;
            }
        }
    }
    out
}

/// The searcher for the header's name, built once: building one per batch would cost
/// more than searching a small batch.
fn header_name() -> &'static memmem::Finder<'static> {
    static FINDER: OnceLock<memmem::Finder<'static>> = OnceLock::new();
    FINDER.get_or_init(|| memmem::Finder::new(TRACEPARENT_HEADER.as_bytes()))
}

/// The traced records of a run of concatenated stored batches.
pub fn traced_in(batches: &Bytes, from: u64, to: u64) -> Vec<Traced> {
    let mut out = Vec::new();
    if header_name().find(batches).is_none() {
        return out; // one search over the whole run instead of one per batch
    }
    for batch in split_batches(batches.clone()).flatten() {
        let base = BatchHeader::parse(&batch)
            .map(|h| h.base_offset)
            .unwrap_or(0);
        out.extend(traced_records(&batch, base, from, to));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::batch::BatchBuilder;

    #[test]
    fn only_records_with_a_valid_traceparent_are_found() {
        let context = TraceParent {
            trace_id: [5; 16],
            parent_id: [1; 8],
            sampled: true,
        };
        let mut builder = BatchBuilder::new();
        let header = context.to_header();
        builder
            .push(
                1,
                None,
                Some(b"a"),
                &[(TRACEPARENT_HEADER, header.as_bytes())],
            )
            .unwrap();
        builder.push(1, None, Some(b"b"), &[]).unwrap();
        builder
            .push(
                1,
                None,
                Some(b"c"),
                &[(TRACEPARENT_HEADER, b"not a traceparent")],
            )
            .unwrap();
        let found = traced_records(&builder.finish(), 100, 0, u64::MAX);
        assert_eq!(found.iter().map(|t| t.offset).collect::<Vec<_>>(), [100]);
    }
}
