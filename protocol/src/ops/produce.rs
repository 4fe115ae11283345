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
}

impl Body for ProduceRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
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
        let batch = r.bytes("batch")?;
        BatchView::new(&batch)?.validate()?;
        Ok(ProduceRequest {
            topic,
            partition,
            ack,
            timeout_ms,
            batch,
        })
    }
}

impl Body for ProduceResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u32_le(self.partition);
        wire::put_option(buf, self.base_offset.as_ref(), |b, o| {
            b.put_u64_le(*o);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ProduceResponse {
            partition: r.u32("partition")?,
            base_offset: r.option("base_offset", |r| r.u64("base_offset"))?,
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
