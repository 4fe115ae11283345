//! The record-format mapping, pure (`docs/kafka.md`, "Records"): Kafka RecordBatch v2
//! to a brokerd batch on produce, and brokerd batches to Kafka RecordBatch v2 on
//! fetch, both through the `kafka-protocol` crate's record codec. brokerd stores its
//! own batch format (one definition of a batch, the same bytes for native and Kafka
//! consumers); conversion happens at this edge.
//!
//! What carries over: key, value (null stays null), headers (a null header value
//! becomes empty), and each record's timestamp. What does not: Kafka's offsets and
//! sequence numbers inside a batch (the log assigns offsets), compression (batches
//! are inflated here, within a bound, and stored uncompressed) and transactions
//! (refused). An idempotent producer's id, epoch and base sequence are
//! not stored in the batch: they are handed beside it ([`Sequenced`]) to the native
//! sequenced append, whose producer journal keeps them.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    BatchDecodeInfo, Compression, Record, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
};
use protocol::batch::{split_batches, BatchBuilder, BatchError, BatchView};

use super::decompress::{decompress, DecompressError};
use crate::producers::kafka::KafkaProducer;

/// The least bytes one Kafka v2 record takes (length, attributes, timestamp and
/// offset deltas, key and value lengths, header count: one varint byte each). A
/// batch announcing more records than its bytes can hold is refused before the
/// crate's decoder reserves room for them.
pub const MIN_KAFKA_RECORD_BYTES: usize = 7;
/// The Kafka RecordBatch v2 header's bytes, before its records.
pub const KAFKA_BATCH_HEADER_BYTES: usize = 61;

/// Why a produced Kafka record set cannot become a brokerd batch.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// Not RecordBatch v2, a bad CRC32C, or damaged records: nothing is appended.
    #[error("the record batch is corrupt: {0}")]
    Corrupt(String),
    /// A feature brokerd does not store (transactions).
    #[error("{0} is not supported on the Kafka listener yet")]
    Unsupported(&'static str),
    /// Compressed records that inflate past the bound.
    #[error("the compressed records inflate to more than {0} bytes")]
    TooLarge(usize),
    /// Empty, or the records do not fit one brokerd batch.
    #[error("the records do not make a brokerd batch: {0}")]
    Batch(#[from] BatchError),
    /// An idempotent producer's records that Kafka would refuse too (INVALID_RECORD).
    #[error("invalid record batch: {0}")]
    Invalid(String),
    /// A producer id no `InitProducerId` could have handed out.
    #[error("producer id {0} was not handed out by this broker; call InitProducerId")]
    UnknownProducer(i64),
}

/// An idempotent producer's tag on a produced record set: what the native sequenced
/// append checks it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequenced {
    /// Who sent it, at which epoch.
    pub producer: KafkaProducer,
    /// The Kafka base sequence, `0..=i32::MAX`.
    pub base_sequence: u64,
}

/// One produced partition's records as a brokerd batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The brokerd batch, in the buffer it was built in.
    pub batch: BytesMut,
    /// The idempotent producer's tag, if the records carry one.
    pub sequenced: Option<Sequenced>,
}

/// Converts the `records` of one produced partition (one or more Kafka RecordBatch
/// v2, CRC32C checked by the decoder) into one brokerd batch. `now_ms` stamps
/// records whose timestamp is absent (-1) or that ask for log-append time. An
/// idempotent producer's records must be exactly one batch (Kafka's rule since
/// Produce v3), whose tag comes back beside the batch. The batch is built in
/// `buffer` (its contents discarded; [`super::buffers`] hands out reused ones).
pub fn kafka_to_batch(
    records: &Bytes,
    now_ms: i64,
    max_inflated_bytes: usize,
    buffer: BytesMut,
) -> Result<Converted, RecordsError> {
    let infos = RecordBatchDecoder::decode_batch_info(&mut records.clone())
        .map_err(|e| RecordsError::Corrupt(e.to_string()))?;
    // Uncompressed records are checked against their own bytes now; compressed ones
    // against the bound now, and against what they inflate to as each is inflated.
    let room = |i: &BatchDecodeInfo| match i.compression {
        Compression::None => 0,
        _ => max_inflated_bytes,
    };
    let announced: usize = infos.iter().map(|i| i.record_count.max(0) as usize).sum();
    let room_total = records.len() + infos.iter().map(room).sum::<usize>();
    if infos.is_empty() || announced > room_total / MIN_KAFKA_RECORD_BYTES {
        return Err(RecordsError::Corrupt(format!(
            "{announced} records announced in {} bytes",
            records.len()
        )));
    }
    for info in &infos {
        if info.transactional || info.control {
            return Err(RecordsError::Unsupported("a transactional record batch"));
        }
    }
    let sequenced = sequenced(&infos)?;
    // Each batch is inflated within what is left of the bound, and must hold the
    // records it announced, before the crate's decoder reserves room for them.
    let inflated = std::cell::Cell::new(0usize);
    let next = std::cell::Cell::new(0usize);
    let too_large = std::cell::Cell::new(false);
    let inflate = |buf: &mut Bytes, compression: Compression| -> anyhow::Result<Bytes> {
        let info = infos.get(next.get());
        next.set(next.get() + 1);
        let left = max_inflated_bytes.saturating_sub(inflated.get());
        let out = decompress(buf, compression, left).inspect_err(|e| {
            too_large.set(matches!(e, DecompressError::TooLarge { .. }));
        })?;
        if compression != Compression::None {
            inflated.set(inflated.get() + out.len());
        }
        let count = info.map_or(0, |i| i.record_count.max(0) as usize);
        if count > out.len() / MIN_KAFKA_RECORD_BYTES {
            anyhow::bail!("{count} records announced in {} inflated bytes", out.len());
        }
        check_header_counts(&out, count)?;
        Ok(out)
    };
    let mut sets = Vec::with_capacity(infos.len());
    let mut rest = records.clone();
    while !rest.is_empty() {
        let set = RecordBatchDecoder::decode_with_custom_compression(&mut rest, Some(&inflate))
            .map_err(|e| match too_large.get() {
                true => RecordsError::TooLarge(max_inflated_bytes),
                false => RecordsError::Corrupt(e.to_string()),
            })?;
        sets.push(set);
    }
    let mut builder = BatchBuilder::in_buffer(buffer, records.len());
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    for record in sets.iter().flat_map(|s| &s.records) {
        headers.clear();
        headers.extend(
            record
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or_default())),
        );
        let timestamp_ms = match record.timestamp_type {
            TimestampType::LogAppend => now_ms,
            TimestampType::Creation if record.timestamp < 0 => now_ms,
            TimestampType::Creation => record.timestamp,
        };
        builder.push(
            timestamp_ms,
            record.key.as_deref(),
            record.value.as_deref(),
            &headers,
        )?;
    }
    // A RecordBatch may announce no records (the fuzzer found one that decodes, CRC
    // and all); brokerd has no empty batch, so it is refused here, before anything
    // is built on it.
    if sets.iter().all(|s| s.records.is_empty()) {
        return Err(RecordsError::Batch(BatchError::Empty));
    }
    let batch = builder.finish_mut();
    debug_assert!(BatchView::new(&batch).and_then(|b| b.validate()).is_ok());
    Ok(Converted { batch, sequenced })
}

/// Refuses records whose header count cannot fit in the record, before the crate's
/// decoder sees them: it reserves room for the count it reads (`IndexMap::
/// with_capacity`) before decoding a header, so one 70-byte record announcing two
/// billion headers made it allocate and initialise gigabytes (found by the
/// `kafka_records` fuzz target). Walks the records as the crate will (each is a
/// length and that many bytes: attributes, timestamp and offset deltas, key, value,
/// header count) and checks each count against what is left of its record, two
/// bytes at least per header (its key and value lengths). Anything else malformed is
/// left to the crate's decoder.
fn check_header_counts(records: &Bytes, count: usize) -> anyhow::Result<()> {
    use bytes::Buf;
    let mut buf = records.clone();
    for _ in 0..count {
        let size = usize::try_from(var_int(&mut buf)?)
            .ok()
            .filter(|size| *size <= buf.len() && *size > 0)
            .ok_or_else(|| anyhow::anyhow!("a record's size is past its batch"))?;
        let mut record = buf.split_to(size);
        record.advance(1); // attributes (the size is at least 1)
        var_long(&mut record)?; // timestamp delta
        var_int(&mut record)?; // offset delta
        for _ in 0..2 {
            // key, then value: -1 for none
            let len = var_int(&mut record)?;
            if len > 0 {
                let len = usize::try_from(len)
                    .ok()
                    .filter(|len| *len <= record.len())
                    .ok_or_else(|| anyhow::anyhow!("a record's key or value is past it"))?;
                record.advance(len);
            }
        }
        let headers = var_int(&mut record)?;
        if headers > 0 && headers as usize > record.len() / 2 {
            anyhow::bail!("{headers} headers announced in {} bytes", record.len());
        }
    }
    Ok(())
}

/// A zigzag varint read exactly as `kafka-protocol` 0.18 reads one (`types::VarInt`:
/// at most 5 bytes, whatever the fifth says), so that [`check_header_counts`] lands
/// where the crate's decoder will; the crate keeps its decoders private.
fn var_int(buf: &mut Bytes) -> anyhow::Result<i32> {
    let zigzag = unsigned_var(buf, 5)? as u32;
    Ok(((zigzag >> 1) as i32) ^ -((zigzag & 1) as i32))
}

/// As [`var_int`], for `types::VarLong` (at most 10 bytes).
fn var_long(buf: &mut Bytes) -> anyhow::Result<i64> {
    let zigzag = unsigned_var(buf, 10)?;
    Ok(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64))
}

fn unsigned_var(buf: &mut Bytes, max_bytes: u32) -> anyhow::Result<u64> {
    use bytes::Buf;
    let width = if max_bytes == 5 { 32 } else { 64 };
    let mut value = 0u64;
    for i in 0..max_bytes {
        if !buf.has_remaining() {
            anyhow::bail!("a record ends inside a varint");
        }
        let b = u64::from(buf.get_u8());
        // The crate shifts in a u32 (VarInt) or u64 (VarLong): bits past the width
        // are lost, as there.
        value |= ((b & 0x7f) << (i * 7)) & if width == 32 { 0xffff_ffff } else { u64::MAX };
        if b < 0x80 {
            break;
        }
    }
    Ok(value)
}

/// The idempotent producer's tag of a produced record set, if it has one.
fn sequenced(infos: &[BatchDecodeInfo]) -> Result<Option<Sequenced>, RecordsError> {
    let tagged = infos
        .iter()
        .filter(|i| i.producer_id != NO_PRODUCER_ID)
        .count();
    let Some(info) = infos.first().filter(|_| tagged > 0) else {
        return Ok(None);
    };
    if infos.len() > 1 {
        return Err(RecordsError::Invalid(format!(
            "an idempotent producer's records must be one batch, not {}",
            infos.len()
        )));
    }
    if info.producer_epoch < 0 || info.base_sequence < 0 {
        return Err(RecordsError::Invalid(format!(
            "producer {} sent epoch {} and base sequence {}; both must be 0 or more",
            info.producer_id, info.producer_epoch, info.base_sequence
        )));
    }
    let producer = KafkaProducer::new(info.producer_id, info.producer_epoch)
        .ok_or(RecordsError::UnknownProducer(info.producer_id))?;
    Ok(Some(Sequenced {
        producer,
        base_sequence: info.base_sequence as u64,
    }))
}

/// Converts stored brokerd batches (a fetch answer, back to back) into Kafka
/// RecordBatch v2, one Kafka batch per brokerd batch, leaving out the records below
/// `from_offset` (a fetch answers whole stored batches). Keys, values and header
/// values are zero-copy slices of `stored`.
pub fn batches_to_kafka(stored: Bytes, from_offset: u64) -> Result<Bytes, RecordsError> {
    let mut out = BytesMut::with_capacity(stored.len() + stored.len() / 4);
    let mut records: Vec<Record> = Vec::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    for batch in split_batches(stored) {
        let batch = batch?;
        let view = BatchView::new(&batch)?;
        view.validate()?;
        records.clear();
        let base = view.header().base_offset.max(from_offset);
        for record in view.records() {
            let record = record?;
            if record.offset < from_offset {
                continue;
            }
            records.push(kafka_record(&batch, &record, base)?);
        }
        if records.is_empty() {
            continue;
        }
        RecordBatchEncoder::encode(&mut out, records.iter(), &options)
            .map_err(|e| RecordsError::Corrupt(e.to_string()))?;
    }
    Ok(out.freeze())
}

/// One stored record as a Kafka record of the batch starting at `base`. Its sequence
/// is chosen so that the crate's encoder keeps a stored batch's records in one Kafka
/// batch, whose base sequence is then -1 (no producer).
fn kafka_record(
    batch: &Bytes,
    record: &protocol::batch::RecordView<'_>,
    base: u64,
) -> Result<Record, RecordsError> {
    let slice = |part: &[u8]| batch.slice_ref(part);
    let mut headers = IndexMap::with_capacity(usize::from(record.header_count()));
    for header in record.headers() {
        let (key, value) = header?;
        headers.insert(StrBytes::from_string(key.to_owned()), Some(slice(value)));
    }
    let offset = i64::try_from(record.offset)
        .map_err(|_| RecordsError::Corrupt(format!("offset {} is past i64", record.offset)))?;
    let index = i32::try_from(record.offset - base).unwrap_or(i32::MAX);
    Ok(Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: index.wrapping_sub(1),
        timestamp: record.timestamp_ms,
        key: record.key.map(slice),
        value: record.value.map(slice),
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inflation bound of these tests.
    const MAX: usize = 1 << 20;

    /// `records` as one gzip-compressed Kafka batch (the crate encodes, flate2
    /// compresses).
    fn gzip_batch(records: &[Record]) -> Bytes {
        use std::io::Write;
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::Gzip,
        };
        let gzip = |plain: &mut BytesMut, out: &mut BytesMut, _: Compression| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(plain)?;
            out.extend_from_slice(&e.finish()?);
            Ok(())
        };
        RecordBatchEncoder::encode_with_custom_compression(&mut buf, records, &options, Some(gzip))
            .unwrap();
        buf.freeze()
    }

    #[test]
    fn a_compressed_batch_is_stored_inflated_with_every_record() {
        let records: Vec<Record> = (0..50)
            .map(|i| record(i, b"key", Some(b"the same value, over and over")))
            .collect();
        let produced = gzip_batch(&records);
        let stored = kafka_to_batch(&produced, 0, MAX, BytesMut::new())
            .unwrap()
            .batch;
        let view = BatchView::new(&stored).unwrap();
        assert_eq!(view.header().record_count, 50);
        let plain = kafka_to_batch(&kafka_batch(&records), 0, MAX, BytesMut::new())
            .unwrap()
            .batch;
        assert_eq!(
            stored, plain,
            "the same brokerd batch as uncompressed records"
        );
    }

    #[test]
    fn a_compressed_batch_that_inflates_past_the_bound_is_refused() {
        let big = vec![b'x'; 64 << 10];
        let records: Vec<Record> = (0..40)
            .map(|i| {
                let mut r = record(i, b"k", None);
                r.value = Some(Bytes::from(big.clone()));
                r
            })
            .collect();
        let produced = gzip_batch(&records);
        assert!(produced.len() < 64 << 10, "{}", produced.len());
        assert!(matches!(
            kafka_to_batch(&produced, 0, MAX, BytesMut::new()),
            Err(RecordsError::TooLarge(MAX))
        ));
        assert!(kafka_to_batch(&produced, 0, 4 << 20, BytesMut::new()).is_ok());
    }

    fn kafka_batch(records: &[Record]) -> Bytes {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
        buf.freeze()
    }

    fn record(offset: i64, key: &'static [u8], value: Option<&'static [u8]>) -> Record {
        let mut headers = IndexMap::new();
        headers.insert(
            StrBytes::from_static_str("h"),
            Some(Bytes::from_static(b"v")),
        );
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: -1,
            timestamp: 1_700_000_000_000 + offset,
            key: Some(Bytes::from_static(key)),
            value: value.map(Bytes::from_static),
            headers,
        }
    }

    #[test]
    fn records_survive_kafka_to_brokerd_and_back() {
        let produced = kafka_batch(&[record(0, b"k0", Some(b"v0")), record(1, b"k1", None)]);
        let mut stored = BytesMut::from(
            &kafka_to_batch(&produced, 5, MAX, BytesMut::new())
                .unwrap()
                .batch[..],
        );
        protocol::batch::set_base_offset(&mut stored, 40);
        let fetched = batches_to_kafka(stored.freeze(), 0).unwrap();
        let sets = RecordBatchDecoder::decode_all(&mut fetched.clone()).unwrap();
        assert_eq!(sets.len(), 1, "one stored batch is one Kafka batch");
        let got = &sets[0].records;
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].offset, got[1].offset), (40, 41));
        assert_eq!(got[0].key.as_deref(), Some(&b"k0"[..]));
        assert_eq!(got[0].value.as_deref(), Some(&b"v0"[..]));
        assert_eq!(got[1].value, None, "a null value stays null");
        assert_eq!(got[1].timestamp, 1_700_000_000_001);
        assert_eq!(
            got[0].headers.get(&StrBytes::from_static_str("h")),
            Some(&Some(Bytes::from_static(b"v")))
        );
        // From an offset inside the stored batch, the records below it are left out.
        let mut stored = BytesMut::from(
            &kafka_to_batch(&produced, 5, MAX, BytesMut::new())
                .unwrap()
                .batch[..],
        );
        protocol::batch::set_base_offset(&mut stored, 40);
        let fetched = batches_to_kafka(stored.freeze(), 41).unwrap();
        let sets = RecordBatchDecoder::decode_all(&mut fetched.clone()).unwrap();
        assert_eq!(sets[0].records.len(), 1);
        assert_eq!(sets[0].records[0].offset, 41);
    }

    #[test]
    fn an_idempotent_producers_tag_comes_beside_the_batch() {
        // The crate's encoder keeps records in one batch while offset - sequence stays.
        let tagged = |sequence: i32| {
            let mut r = record(i64::from(sequence), b"k", Some(b"v"));
            (r.producer_id, r.producer_epoch, r.sequence) = (12, 3, sequence);
            r
        };
        let produced = kafka_batch(&[tagged(40), tagged(41)]);
        let converted = kafka_to_batch(&produced, 0, MAX, BytesMut::new()).unwrap();
        assert_eq!(
            converted.sequenced,
            Some(Sequenced {
                producer: KafkaProducer {
                    producer_id: 12,
                    epoch: 3
                },
                base_sequence: 40
            })
        );
        let plain = kafka_batch(&[record(0, b"k", Some(b"v"))]);
        assert_eq!(
            kafka_to_batch(&plain, 0, MAX, BytesMut::new())
                .unwrap()
                .sequenced,
            None
        );
        // Two batches of one producer in one partition's records: Kafka refuses it.
        let two = [produced.clone(), kafka_batch(&[tagged(42)])].concat();
        assert!(matches!(
            kafka_to_batch(&Bytes::from(two), 0, MAX, BytesMut::new()),
            Err(RecordsError::Invalid(_))
        ));
        let mut bad_epoch = tagged(0);
        bad_epoch.producer_epoch = -1;
        assert!(matches!(
            kafka_to_batch(&kafka_batch(&[bad_epoch]), 0, MAX, BytesMut::new()),
            Err(RecordsError::Invalid(_))
        ));
    }

    #[test]
    fn a_damaged_batch_is_refused() {
        let produced = kafka_batch(&[record(0, b"k", Some(b"v"))]);
        let mut damaged = produced.to_vec();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(matches!(
            kafka_to_batch(&Bytes::from(damaged), 0, MAX, BytesMut::new()),
            Err(RecordsError::Corrupt(_))
        ));
        // A record count no batch of this size can hold, CRC and all correct.
        let mut inflated = produced.to_vec();
        inflated[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crc32c_of(&inflated[21..]);
        inflated[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            kafka_to_batch(&Bytes::from(inflated), 0, MAX, BytesMut::new()),
            Err(RecordsError::Corrupt(_))
        ));
        assert!(kafka_to_batch(&Bytes::from_static(b"garbage"), 0, MAX, BytesMut::new()).is_err());
    }

    /// A RecordBatch announcing no records, its CRC right (found by the
    /// `kafka_records` fuzz target): refused as empty, never built into a batch that
    /// fails its own validation (which panicked a debug build's `debug_assert`).
    #[test]
    fn a_batch_without_records_is_refused() {
        let mut empty = vec![0u8; 61];
        empty[8..12].copy_from_slice(&49u32.to_be_bytes()); // length after this field
        empty[16] = 2; // magic
        let crc = crc32c_of(&empty[21..]);
        empty[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            kafka_to_batch(&Bytes::from(empty), 0, MAX, BytesMut::new()),
            Err(RecordsError::Batch(BatchError::Empty))
        ));
    }

    /// A record announcing more headers than its bytes can hold (found by the
    /// `kafka_records` fuzz target, where it made the crate's decoder allocate 5.6
    /// GB): refused before the decoder reserves room for them.
    #[test]
    fn a_record_announcing_more_headers_than_it_holds_is_refused() {
        let mut bare = record(0, b"k", Some(b"v"));
        bare.headers.clear();
        let produced = kafka_batch(&[bare]);
        let mut forged = produced.to_vec();
        // The record is the batch's last bytes: size, attributes, timestamp delta,
        // offset delta, key (length 1, "k"), value (length 1, "v"), header count 0.
        let last = forged.len() - 1;
        assert_eq!(forged[last], 0, "no headers in the produced record");
        // Header count i32::MAX as a zigzag varint: five bytes where one was.
        forged.truncate(last);
        forged.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]);
        let record_at = 61;
        forged[record_at] += 8; // the record's size varint (zigzag: 2 per byte)
        let length = (forged.len() - 12) as u32;
        forged[8..12].copy_from_slice(&length.to_be_bytes());
        let crc = crc32c_of(&forged[21..]);
        forged[17..21].copy_from_slice(&crc.to_be_bytes());
        let refused = kafka_to_batch(&Bytes::from(forged), 0, MAX, BytesMut::new());
        match refused {
            Err(RecordsError::Corrupt(reason)) => {
                assert!(reason.contains("headers announced"), "{reason}")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    /// CRC32C (Castagnoli), bitwise: only to forge a test batch.
    fn crc32c_of(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
