//! What converting at the Kafka edge costs against storing Kafka batches as received
//! (`docs/kafka.md`, "Records"), for one ProduceRequest partition as librdkafka sends
//! it: 1,000 records of 1 KiB (and of 100 bytes) in one uncompressed RecordBatch v2.
//!
//! * `as_received`: the least a store-as-received design must do with a produced
//!   batch, the CRC32C check and header decode (`decode_batch_info`);
//! * `to_batch_fresh` / `to_batch_pooled`: the converted path, `kafka_to_batch` into a
//!   new buffer each time / into one reused buffer (what the listener does);
//! * `to_kafka`: the fetch side of the converted path, the stored batch re-encoded as
//!   a RecordBatch v2 (a stored-as-received fetch would send the stored bytes).
//!
//! `cargo bench -p server --bench kafka_records`

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use server::kafka::buffers::BatchBuffers;
use server::kafka::records::{batches_to_kafka, kafka_to_batch};

const RECORDS: usize = 1000;
const MAX_INFLATED_BYTES: usize = 8 << 20;

/// One RecordBatch v2 of `RECORDS` records of `value_bytes` each, no key, no header.
fn kafka_batch(value_bytes: usize) -> Bytes {
    let value = Bytes::from(vec![b'x'; value_bytes]);
    let records: Vec<Record> = (0..RECORDS as i64)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: i as i32,
            timestamp: 1_700_000_000_000 + i,
            key: None,
            value: Some(value.clone()),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
    buf.freeze()
}

fn edge(c: &mut Criterion) {
    for value_bytes in [1024, 100] {
        let produced = kafka_batch(value_bytes);
        let mut group = c.benchmark_group(format!("kafka_records_1000x{value_bytes}B"));
        group.throughput(Throughput::Bytes(produced.len() as u64));
        group.bench_function("as_received", |b| {
            b.iter(|| {
                RecordBatchDecoder::decode_batch_info(&mut black_box(&produced).clone()).unwrap()
            })
        });
        group.bench_function("to_batch_fresh", |b| {
            b.iter(|| {
                let converted =
                    kafka_to_batch(black_box(&produced), 0, MAX_INFLATED_BYTES, BytesMut::new());
                black_box(converted.unwrap().batch.freeze())
            })
        });
        let buffers = BatchBuffers::new();
        group.bench_function("to_batch_pooled", |b| {
            b.iter(|| {
                let buffer = buffers.take(produced.len());
                let converted = kafka_to_batch(black_box(&produced), 0, MAX_INFLATED_BYTES, buffer);
                black_box(buffers.keep(converted.unwrap().batch))
            })
        });
        let stored = kafka_to_batch(&produced, 0, MAX_INFLATED_BYTES, BytesMut::new())
            .unwrap()
            .batch
            .freeze();
        group.bench_function("to_kafka", |b| {
            b.iter(|| black_box(batches_to_kafka(black_box(stored.clone()), 0).unwrap()))
        });
        group.finish();
    }
}

criterion_group!(benches, edge);
criterion_main!(benches);
