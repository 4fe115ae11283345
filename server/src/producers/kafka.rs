//! Kafka's idempotent producers in the native table's terms, pure.
//!
//! A Kafka producer differs from a native one in three ways, all adapted here so
//! that the same [`ProducerTable`](super::table::ProducerTable), the same producer
//! journal and the same append path deduplicate both (`docs/kafka.md`, "Records"):
//!
//! - it has an **epoch** beside its id: the Java client bumps it itself (sequences
//!   start over at 0) and a lower epoch than the partition last saw is fenced;
//! - its **sequences count records**, not batches: the batch after one with base
//!   sequence `s` and `n` records starts at `s + n`;
//! - they **wrap** from `i32::MAX` to 0.
//!
//! The native tag has room for all of it: a Kafka producer's native id is
//! [`KAFKA_PRODUCER_BIT`] | id << [`EPOCH_BITS`] | epoch, so the id comes from the
//! same allocator (`InitProducerId` is `InitProducer`), the journal stores epoch and
//! id without a format change, and the table tells the two kinds apart by the bit.
//! Its sequence is the Kafka base sequence, `0..=i32::MAX`.

/// Marks a native producer id as a Kafka producer's (see the module documentation).
pub const KAFKA_PRODUCER_BIT: u64 = 1 << 63;
/// Bits of a Kafka producer's native id that hold its epoch.
pub const EPOCH_BITS: u32 = 16;
/// The largest Kafka producer id that fits a native id beside the bit and the epoch
/// (about 1.4 * 10^14; the allocator hands out a few thousand per restart at most).
pub const MAX_KAFKA_PRODUCER_ID: u64 = (1 << (63 - EPOCH_BITS)) - 1;
/// Kafka sequences run `0..=i32::MAX` and wrap to 0.
pub const SEQUENCE_MODULUS: u64 = 1 << 31;

/// A Kafka producer's id and epoch, as its batches carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KafkaProducer {
    /// The id `InitProducerId` handed out (a native producer id).
    pub producer_id: u64,
    /// The epoch, `0..=i16::MAX`.
    pub epoch: u16,
}

impl KafkaProducer {
    /// The producer of a Kafka batch's `producer_id` and `producer_epoch`; `None`
    /// unless both are in range (a negative epoch, or an id past
    /// [`MAX_KAFKA_PRODUCER_ID`], was never handed out).
    pub fn new(producer_id: i64, epoch: i16) -> Option<KafkaProducer> {
        let producer_id = u64::try_from(producer_id).ok()?;
        let epoch = u16::try_from(epoch).ok()?;
        (producer_id <= MAX_KAFKA_PRODUCER_ID).then_some(KafkaProducer { producer_id, epoch })
    }

    /// The native producer id its batches are tagged with.
    pub fn native_id(self) -> u64 {
        debug_assert!(self.producer_id <= MAX_KAFKA_PRODUCER_ID);
        KAFKA_PRODUCER_BIT | (self.producer_id << EPOCH_BITS) | u64::from(self.epoch)
    }

    /// The Kafka producer a native id stands for; `None` for a native producer.
    pub fn from_native(id: u64) -> Option<KafkaProducer> {
        (id & KAFKA_PRODUCER_BIT != 0).then_some(KafkaProducer {
            producer_id: (id & !KAFKA_PRODUCER_BIT) >> EPOCH_BITS,
            epoch: (id & ((1 << EPOCH_BITS) - 1)) as u16,
        })
    }
}

/// The key a producer's state is kept under in a partition's table: the native id,
/// or for a Kafka producer its id without the epoch (so a new epoch replaces the old
/// one's state and an older epoch can be told to be fenced).
pub fn table_key(native_id: u64) -> u64 {
    match KafkaProducer::from_native(native_id) {
        Some(_) => native_id & !((1 << EPOCH_BITS) - 1),
        None => native_id,
    }
}

/// The sequence the batch after one tagged `sequence` with `records` records
/// carries: one more for a native producer (sequences count batches and never
/// wrap), `records` more modulo [`SEQUENCE_MODULUS`] for a Kafka producer.
pub fn next_sequence(native_id: u64, sequence: u64, records: u64) -> u64 {
    if KafkaProducer::from_native(native_id).is_some() {
        (sequence % SEQUENCE_MODULUS + records % SEQUENCE_MODULUS) % SEQUENCE_MODULUS
    } else {
        sequence.saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kafka_producer_round_trips_through_its_native_id() {
        for (id, epoch) in [(0, 0), (1, 7), (MAX_KAFKA_PRODUCER_ID, u16::MAX >> 1)] {
            let p = KafkaProducer {
                producer_id: id,
                epoch,
            };
            assert_eq!(KafkaProducer::from_native(p.native_id()), Some(p));
            assert_eq!(
                table_key(p.native_id()),
                table_key(
                    KafkaProducer {
                        producer_id: id,
                        epoch: 0
                    }
                    .native_id()
                ),
                "every epoch of a producer shares its key"
            );
        }
        assert_eq!(KafkaProducer::from_native(42), None, "a native id");
        assert_eq!(table_key(42), 42);
        assert_eq!(KafkaProducer::new(-1, 0), None);
        assert_eq!(KafkaProducer::new(1, -1), None);
        assert_eq!(
            KafkaProducer::new(MAX_KAFKA_PRODUCER_ID as i64 + 1, 0),
            None
        );
    }

    #[test]
    fn kafka_sequences_count_records_and_wrap() {
        let kafka = KafkaProducer {
            producer_id: 3,
            epoch: 0,
        }
        .native_id();
        assert_eq!(next_sequence(kafka, 0, 5), 5);
        assert_eq!(next_sequence(kafka, i32::MAX as u64, 1), 0);
        assert_eq!(next_sequence(kafka, i32::MAX as u64 - 1, 3), 1);
        assert_eq!(
            next_sequence(7, 4, 100),
            5,
            "native sequences count batches"
        );
        assert_eq!(next_sequence(7, u64::MAX, 1), u64::MAX, "and never wrap");
    }
}
