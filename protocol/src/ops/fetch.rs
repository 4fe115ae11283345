//! Fetch: pull batches from one partition, with long polling.
//!
//! The response carries stored batches back to back as one byte field, exactly as the
//! log holds them, so the server can answer with a slice of a segment and the client
//! splits it with [`crate::batch::split_batches`] without copying. The first batch may
//! start before the requested offset (batches are not split); clients skip records
//! below it. Clients validate each batch before trusting its records.
//!
//! ListOffsets (version 2) says where to fetch from to read from a point in time: per
//! partition, the first offset whose record timestamp is at or after it.

use bytes::{BufMut, Bytes, BytesMut};

use super::offsets::PartitionOffset;
use super::Body;
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader};

/// Reads from one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FetchRequest {
    /// Topic name.
    pub topic: String,
    /// Partition id.
    pub partition: u32,
    /// First offset wanted.
    pub offset: u64,
    /// Soft cap on the batches' total size; at least one whole batch is returned
    /// even if it is larger, so a consumer can always make progress.
    pub max_bytes: u32,
    /// If no record at `offset` exists yet, wait up to this long for one (0 = answer
    /// at once).
    pub max_wait_ms: u32,
}

/// Batches from one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FetchResponse {
    /// Offset the next appended record will get.
    pub high_watermark: u64,
    /// Offset of the oldest retained record.
    pub log_start_offset: u64,
    /// Zero or more whole batches, back to back.
    #[cfg_attr(test, proptest(strategy = "crate::proptests::batches()"))]
    pub batches: Bytes,
}

impl Body for FetchRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "topic", &self.topic)?;
        buf.put_u32_le(self.partition);
        buf.put_u64_le(self.offset);
        buf.put_u32_le(self.max_bytes);
        buf.put_u32_le(self.max_wait_ms);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(FetchRequest {
            topic: r.string("topic")?,
            partition: r.u32("partition")?,
            offset: r.u64("offset")?,
            max_bytes: r.u32("max_bytes")?,
            max_wait_ms: r.u32("max_wait_ms")?,
        })
    }
}

impl Body for FetchResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u64_le(self.high_watermark);
        buf.put_u64_le(self.log_start_offset);
        wire::put_bytes(buf, "batches", &self.batches)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(FetchResponse {
            high_watermark: r.u64("high_watermark")?,
            log_start_offset: r.u64("log_start_offset")?,
            batches: r.bytes("batches")?,
        })
    }
}

/// A point in time to look up in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PartitionTime {
    /// Partition id.
    pub partition: u32,
    /// Milliseconds since the epoch, compared with the records' own timestamps.
    pub timestamp_ms: i64,
}

/// Looks up, per partition, the first offset whose record timestamp is at or after a
/// time (version 2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ListOffsetsRequest {
    /// Topic name.
    pub topic: String,
    /// The partitions and times to look up.
    pub partitions: Vec<PartitionTime>,
}

/// Where to read from, one per partition asked about, in the order asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ListOffsetsResponse {
    /// The first offset at or after the time, or the partition's end (its high
    /// watermark) if every record is older.
    pub offsets: Vec<PartitionOffset>,
}

/// Bytes of one [`PartitionTime`] or [`PartitionOffset`] on the wire.
const PARTITION_ENTRY_BYTES: usize = 12;

impl Body for ListOffsetsRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "topic", &self.topic)?;
        wire::put_array(buf, "partitions", &self.partitions, |b, p| {
            b.put_u32_le(p.partition);
            b.put_i64_le(p.timestamp_ms);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ListOffsetsRequest {
            topic: r.string("topic")?,
            partitions: r.array("partitions", PARTITION_ENTRY_BYTES, |r| {
                Ok(PartitionTime {
                    partition: r.u32("partition")?,
                    timestamp_ms: r.u64("timestamp_ms")? as i64,
                })
            })?,
        })
    }
}

impl Body for ListOffsetsResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_array(buf, "offsets", &self.offsets, |b, o| {
            b.put_u32_le(o.partition);
            b.put_u64_le(o.offset);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ListOffsetsResponse {
            offsets: r.array("offsets", PARTITION_ENTRY_BYTES, |r| {
                Ok(PartitionOffset {
                    partition: r.u32("partition")?,
                    offset: r.u64("offset")?,
                })
            })?,
        })
    }
}
