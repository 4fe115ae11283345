//! Produced Kafka records (RecordBatch v2, any compression) converted into a brokerd
//! batch. The input's CRC-32C and length are set right before decoding, so the
//! fuzzer explores what lies behind the checksum instead of being stopped by it
//! (with the input left alone half the time, so the checksum path is fuzzed too).
//! Nothing may panic; inflating may never pass its bound; whatever converts must be a
//! brokerd batch that validates, and must convert back to Kafka records.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use protocol::batch::{split_batches, BatchView};
use server::kafka::records::{batches_to_kafka, kafka_to_batch};

/// Inflated bytes allowed per produced partition: small, so the bound is reached.
const FUZZ_MAX_INFLATED_BYTES: usize = 256 * 1024;
/// RecordBatch v2 header: the CRC covers everything from `attributes` (byte 21) on.
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const HEADER_BYTES: usize = 61;

fuzz_target!(|data: &[u8]| {
    let Some((&fix, data)) = data.split_first() else {
        return;
    };
    let mut records = data.to_vec();
    if fix % 2 == 0 && records.len() >= HEADER_BYTES {
        let length = (records.len() - 12) as u32;
        records[8..12].copy_from_slice(&length.to_be_bytes());
        records[16] = 2; // magic
        let crc = crc32c::crc32c(&records[ATTRIBUTES_AT..]);
        records[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
    }
    let records = Bytes::from(records);
    let Ok(converted) = kafka_to_batch(&records, 0, FUZZ_MAX_INFLATED_BYTES, BytesMut::new())
    else {
        return;
    };
    let batch = converted.batch.freeze();
    let mut count = 0usize;
    for one in split_batches(batch.clone()) {
        let one = one.expect("a converted batch splits");
        let view = BatchView::new(&one).expect("a converted batch has a header");
        view.validate().expect("a converted batch validates");
        for record in view.records() {
            record.expect("a converted batch's records decode");
            count += 1;
        }
    }
    assert!(count > 0, "a conversion that succeeds carries records");
    batches_to_kafka(batch, 0).expect("a converted batch converts back");
});
