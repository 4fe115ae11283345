//! Hot paths of the batch layout and the Produce frame, measured on one batch of
//! 1000 records with 1 KiB values (about 1 MiB).
//!
//! Targets: encoding >= 1 GB/s; CRC verify + record iteration >= 2 GB/s.
//! Run: `cargo bench -p protocol --bench batch`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use protocol::batch::{BatchBuilder, BatchView};
use protocol::ops::produce::{AckLevel, PartitionSelector, ProduceRequest};
use protocol::{FrameDecoder, Message, Request, PROTOCOL_VERSION};

const RECORDS: usize = 1000;
const VALUE_BYTES: usize = 1024;
const FIRST_TIMESTAMP_MS: i64 = 1_700_000_000_000;

fn build(keys: &[[u8; 8]], value: &[u8]) -> Bytes {
    let size = BatchBuilder::record_size(Some(&keys[0]), Some(value), &[]) * RECORDS;
    let mut builder = BatchBuilder::with_capacity(protocol::batch::BATCH_HEADER_BYTES + size);
    for (i, key) in keys.iter().enumerate() {
        builder
            .push(FIRST_TIMESTAMP_MS + i as i64, Some(key), Some(value), &[])
            .expect("1 MiB batch fits");
    }
    builder.finish()
}

fn bench(c: &mut Criterion) {
    let keys: Vec<[u8; 8]> = (0..RECORDS as u64).map(u64::to_le_bytes).collect();
    let value: Vec<u8> = (0..VALUE_BYTES).map(|i| i as u8).collect();
    let batch = build(&keys, &value);

    let mut group = c.benchmark_group("batch_1000x1KiB");
    group.throughput(Throughput::Bytes(batch.len() as u64));

    group.bench_function("encode", |b| {
        b.iter(|| build(black_box(&keys), black_box(&value)))
    });

    group.bench_function("crc_verify_and_iterate", |b| {
        b.iter(|| {
            let view = BatchView::new(black_box(&batch)).expect("valid");
            view.verify_crc().expect("crc");
            let mut value_bytes = 0;
            for record in view.records() {
                value_bytes += record.expect("valid").value.map_or(0, <[u8]>::len);
            }
            value_bytes
        })
    });

    group.bench_function("validate_then_iterate", |b| {
        b.iter(|| {
            let view = BatchView::new(black_box(&batch)).expect("valid");
            view.validate().expect("valid");
            let mut value_bytes = 0;
            for record in view.records() {
                value_bytes += record.expect("valid").value.map_or(0, <[u8]>::len);
            }
            value_bytes
        })
    });

    group.bench_function("iterate_without_crc", |b| {
        b.iter(|| {
            let view = BatchView::new(black_box(&batch)).expect("valid");
            let mut value_bytes = 0;
            for record in view.records() {
                value_bytes += record.expect("valid").value.map_or(0, <[u8]>::len);
            }
            value_bytes
        })
    });

    let produce = Message::Request {
        correlation_id: 1,
        request: Request::Produce(ProduceRequest {
            topic: "orders".into(),
            partition: PartitionSelector::Any,
            ack: AckLevel::Appended,
            timeout_ms: 5000,
            producer: None,
            batch: batch.clone(),
        }),
    };
    let mut wire = BytesMut::new();
    produce.encode(PROTOCOL_VERSION, &mut wire).expect("fits");
    let wire = wire.freeze();
    let decoder = FrameDecoder::new();
    // Copying the frame into a read buffer is setup, not measured: a server reads it
    // from the socket into that buffer anyway.
    group.bench_function("decode_produce_frame", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&wire[..]),
            |buf| decoder.decode_message(buf).expect("valid").expect("whole"),
            BatchSize::LargeInput,
        )
    });

    group.bench_function("encode_produce_frame", |b| {
        let mut out = BytesMut::with_capacity(wire.len());
        b.iter(|| {
            out.clear();
            produce.encode(PROTOCOL_VERSION, &mut out).expect("fits");
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
