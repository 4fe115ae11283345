//! What finding traced records costs a fetch of 1 MiB of small records: with no
//! `traceparent` anywhere (one `memmem` over the bytes), and with one traced record per
//! batch (the `memmem`, then the walk over every record's headers that an untraced
//! fetch no longer pays).
//! `cargo bench -p server --bench trace_scan`

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use protocol::batch::BatchBuilder;
use protocol::trace::{TraceParent, TRACEPARENT_HEADER};
use server::traces::scan::traced_in;

const CHUNK_BYTES: usize = 1 << 20;
const RECORDS_PER_BATCH: usize = 100;

/// 1 MiB of batches of 100-byte records with one ordinary header each; with `traced`,
/// the last record of every batch carries a `traceparent`.
fn chunk(traced: bool) -> Bytes {
    let context = TraceParent {
        trace_id: [7; 16],
        parent_id: [1; 8],
        sampled: true,
    }
    .to_header();
    let value = [b'x'; 100];
    let mut out = BytesMut::new();
    while out.len() < CHUNK_BYTES {
        let mut builder = BatchBuilder::new();
        for i in 0..RECORDS_PER_BATCH {
            let header: &[(&str, &[u8])] = if traced && i == RECORDS_PER_BATCH - 1 {
                &[("source", b"web"), (TRACEPARENT_HEADER, context.as_bytes())]
            } else {
                &[("source", b"web")]
            };
            builder.push(1, None, Some(&value), header).unwrap();
        }
        out.extend_from_slice(&builder.finish());
    }
    out.freeze()
}

fn scanning(c: &mut Criterion) {
    let mut group = c.benchmark_group("trace_scan_1MiB");
    for (name, traced) in [("untraced", false), ("one_traced_per_batch", true)] {
        let bytes = chunk(traced);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| black_box(traced_in(black_box(&bytes), 0, u64::MAX)))
        });
    }
    group.finish();
}

criterion_group!(benches, scanning);
criterion_main!(benches);
