//! Produce: append one record batch to a partition.
//!
//! The batch travels as the producer built it and stays a zero-copy slice of the
//! request frame all the way to the log. Decoding validates it (CRC and structure) so
//! that damage is reported to the producer as `crc_mismatch` / `invalid_batch` before
//! anything is appended.

use bytes::{BufMut, Bytes, BytesMut};

use super::{wire_enum, Body};
use crate::batch::BatchView;
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader};

/// Which partition a batch goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum PartitionSelector {
    /// This partition (tag 0, then `u32`).
    Partition(u32),
    /// The partition the server's hash of this key picks (tag 1, then bytes), so that
    /// one key always lands on one partition.
    Key(#[cfg_attr(test, proptest(strategy = "crate::proptests::bytes()"))] Bytes),
    /// Any partition; the server picks round-robin (tag 2).
    Any,
}

wire_enum! {
    /// When the server answers a Produce.
    AckLevel, "ack" {
        /// As soon as the request is accepted for appending; `base_offset` is absent.
        None = 0,
        /// After the batch is appended to the log (in the page cache).
        Appended = 1,
        /// After the batch is appended and fsynced.
        Durable = 2,
    }
}

/// The protocol version whose Produce carries [`ProducerSequence`] and whose answer
/// carries [`ProduceResponse::duplicate`].
pub const PRODUCER_SINCE: u16 = 2;

/// An idempotent producer's tag on a batch (version 2): who sends it, and which of
/// its batches to this partition it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ProducerSequence {
    /// The id `InitProducer` gave the producer.
    pub producer_id: u64,
    /// 0 for the producer's first batch to the partition, one more for each next one;
    /// a retry carries the sequence of the batch it repeats.
    pub sequence: u64,
}

/// Appends one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ProduceRequest {
    /// Topic name.
    pub topic: String,
    /// Target partition.
    pub partition: PartitionSelector,
    /// When to answer.
    pub ack: AckLevel,
    /// How long the server may take before answering `timeout`.
    pub timeout_ms: u32,
    /// Set by an idempotent producer (version 2; always `None` in version 1).
    pub producer: Option<ProducerSequence>,
    /// One record batch (see [`crate::batch`]), validated on decode.
    #[cfg_attr(test, proptest(strategy = "crate::proptests::batch()"))]
    pub batch: Bytes,
}

/// Where the batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ProduceResponse {
    /// The partition chosen.
    pub partition: u32,
    /// Offset of the batch's first record; absent for [`AckLevel::None`].
    pub base_offset: Option<u64>,
    /// The batch was a retry of one already stored, which `base_offset` is the offset
    /// of; it was not stored again (version 2; always `false` in version 1).
    pub duplicate: bool,
}

/// The answer to `InitProducer` (version 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct InitProducerResponse {
    /// A producer id never handed out before, on this broker, across restarts.
    pub producer_id: u64,
}

impl Body for InitProducerResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u64_le(self.producer_id);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(InitProducerResponse {
            producer_id: r.u64("producer_id")?,
        })
    }
}

impl Body for ProduceRequest {
    fn encode(&self, buf: &mut BytesMut, version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "topic", &self.topic)?;
        match &self.partition {
            PartitionSelector::Partition(p) => {
                buf.put_u8(0);
                buf.put_u32_le(*p);
            }
            PartitionSelector::Key(key) => {
                buf.put_u8(1);
                wire::put_bytes(buf, "key", key)?;
            }
            PartitionSelector::Any => buf.put_u8(2),
        }
        self.ack.encode(buf);
        buf.put_u32_le(self.timeout_ms);
        if version >= PRODUCER_SINCE {
            wire::put_option(buf, self.producer.as_ref(), |b, p| {
                b.put_u64_le(p.producer_id);
                b.put_u64_le(p.sequence);
                Ok(())
            })?;
        } else if self.producer.is_some() {
            return Err(EncodeError::NotInVersion {
                what: "Produce's producer sequence",
                since: PRODUCER_SINCE,
                version,
            });
        }
        wire::put_bytes(buf, "batch", &self.batch)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let topic = r.string("topic")?;
        let partition = match r.u8("partition selector")? {
            0 => PartitionSelector::Partition(r.u32("partition")?),
            1 => PartitionSelector::Key(r.bytes("key")?),
            2 => PartitionSelector::Any,
            other => {
                return Err(DecodeError::InvalidValue {
                    what: "partition selector",
                    value: u64::from(other),
                })
            }
        };
        let ack = AckLevel::decode(r)?;
        let timeout_ms = r.u32("timeout_ms")?;
        let producer = if r.version() >= PRODUCER_SINCE {
            r.option("producer", |r| {
                Ok(ProducerSequence {
                    producer_id: r.u64("producer_id")?,
                    sequence: r.u64("sequence")?,
                })
            })?
        } else {
            None
        };
        let batch = r.bytes("batch")?;
        BatchView::new(&batch)?.validate()?;
        Ok(ProduceRequest {
            topic,
            partition,
            ack,
            timeout_ms,
            producer,
            batch,
        })
    }
}

impl Body for ProduceResponse {
    fn encode(&self, buf: &mut BytesMut, version: u16) -> Result<(), EncodeError> {
        buf.put_u32_le(self.partition);
        wire::put_option(buf, self.base_offset.as_ref(), |b, o| {
            b.put_u64_le(*o);
            Ok(())
        })?;
        if version >= PRODUCER_SINCE {
            wire::put_bool(buf, self.duplicate);
        } else if self.duplicate {
            return Err(EncodeError::NotInVersion {
                what: "Produce's duplicate flag",
                since: PRODUCER_SINCE,
                version,
            });
        }
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let partition = r.u32("partition")?;
        let base_offset = r.option("base_offset", |r| r.u64("base_offset"))?;
        let duplicate = if r.version() >= PRODUCER_SINCE {
            r.bool("duplicate")?
        } else {
            false
        };
        Ok(ProduceResponse {
            partition,
            base_offset,
            duplicate,
        })
    }
}

/// The partition a record key maps to: FNV-1a (32-bit) of the key bytes, modulo
/// `partitions`. The server uses it for [`PartitionSelector::Key`]; producers that
/// batch per partition use it too, so both sides agree. `partitions` of 0 gives 0.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    const FNV_OFFSET: u32 = 0x811c_9dc5;
    const FNV_PRIME: u32 = 0x0100_0193;
    let hash = key.iter().fold(FNV_OFFSET, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(FNV_PRIME)
    });
    hash.checked_rem(partitions).unwrap_or(0)
}

#[cfg(test)]
mod version_tests {
    use super::*;

    fn request(producer: Option<ProducerSequence>) -> ProduceRequest {
        let mut builder = crate::batch::BatchBuilder::new();
        builder.push(1, None, Some(b"v"), &[]).unwrap();
        ProduceRequest {
            topic: "t".into(),
            partition: PartitionSelector::Any,
            ack: AckLevel::Durable,
            timeout_ms: 1,
            producer,
            batch: builder.finish(),
        }
    }

    #[test]
    fn version_1_cannot_carry_a_producer_and_version_2_round_trips_it() {
        let tagged = request(Some(ProducerSequence {
            producer_id: 3,
            sequence: 9,
        }));
        let mut buf = BytesMut::new();
        assert!(matches!(
            tagged.encode(&mut buf, 1),
            Err(EncodeError::NotInVersion { since: 2, .. })
        ));
        // Untagged, the two versions differ by the absent producer's presence byte.
        let (mut v1, mut v2) = (BytesMut::new(), BytesMut::new());
        request(None).encode(&mut v1, 1).unwrap();
        request(None).encode(&mut v2, 2).unwrap();
        assert_eq!(v2.len(), v1.len() + 1);
        let mut buf = BytesMut::new();
        tagged.encode(&mut buf, 2).unwrap();
        let decoded = ProduceRequest::decode(&mut Reader::new(buf.freeze(), 2)).unwrap();
        assert_eq!(decoded, tagged);
        let duplicate = ProduceResponse {
            partition: 0,
            base_offset: Some(5),
            duplicate: true,
        };
        assert!(duplicate.encode(&mut BytesMut::new(), 1).is_err());
    }
}

#[cfg(test)]
mod partition_tests {
    use super::partition_for_key;

    #[test]
    fn fnv1a_is_stable() {
        // Reference values of 32-bit FNV-1a.
        assert_eq!(partition_for_key(b"", u32::MAX), 0x811c_9dc5);
        assert_eq!(partition_for_key(b"a", u32::MAX), 0xe40c_292c);
        assert_eq!(partition_for_key(b"foobar", u32::MAX), 0xbf9c_f968);
        assert_eq!(partition_for_key(b"anything", 0), 0);
        assert!(partition_for_key(b"user-42", 4) < 4);
    }
}
