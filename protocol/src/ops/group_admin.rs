//! Group administration (version 2): DeleteGroup, ResetOffsets, PurgeGroup, the
//! operations of `brokerctl groups delete | reset-offsets | purge`.
//!
//! Each changes a group that has no active members (the broker refuses otherwise,
//! as Kafka's group tools do): deleting it with its commits or queue state, moving a
//! stream group's committed offsets, or dropping everything a queue group has
//! pending so that it starts at the end.

use bytes::{BufMut, BytesMut};

use super::{wire_enum, Body};
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader};

/// Deletes a group: its record, its commits or its queue state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DeleteGroupRequest {
    /// Group name.
    pub group: String,
}

wire_enum! {
    /// The kind of a [`ResetTarget`], its wire tag.
    ResetKind, "reset target" {
        /// Each partition's first retained offset.
        Earliest = 0,
        /// Each partition's end.
        Latest = 1,
        /// One offset, clamped to each partition's retained range.
        Offset = 2,
        /// The first offset whose record timestamp is at or after a time.
        Timestamp = 3,
    }
}

/// Where [`ResetOffsetsRequest`] moves a stream group's committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum ResetTarget {
    /// Each partition's first retained offset.
    Earliest,
    /// Each partition's end.
    Latest,
    /// This offset, clamped to each partition's `[start, end]`.
    Offset(u64),
    /// The first offset whose record timestamp is at or after this time (ms since the
    /// Unix epoch); the partition's end if every record is older.
    Timestamp(i64),
}

/// Moves a stream group's committed offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ResetOffsetsRequest {
    /// Group name.
    pub group: String,
    /// The topic: the group's own (empty means that), or, for a group that does not
    /// exist yet, the topic it is created for.
    pub topic: String,
    /// One partition, or every partition of the topic.
    pub partition: Option<u32>,
    /// Where to.
    pub to: ResetTarget,
}

/// One partition's committed offset after a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ResetOffset {
    /// The partition.
    pub partition: u32,
    /// Its committed offset now.
    pub offset: u64,
}

/// The offsets a reset committed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ResetOffsetsResponse {
    /// The topic whose offsets moved.
    pub topic: String,
    /// Every partition reset, in partition order.
    pub offsets: Vec<ResetOffset>,
}

/// Drops everything a queue group has pending, in flight or waiting for a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PurgeGroupRequest {
    /// Group name.
    pub group: String,
}

/// What a purge dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PurgeGroupResponse {
    /// Messages between the group's ack floor and each partition's end, summed: no
    /// longer delivered.
    pub dropped: u64,
}

const RESET_OFFSET_BYTES: usize = 4 + 8;

impl Body for DeleteGroupRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DeleteGroupRequest {
            group: r.string("group")?,
        })
    }
}

impl ResetTarget {
    fn kind(self) -> ResetKind {
        match self {
            ResetTarget::Earliest => ResetKind::Earliest,
            ResetTarget::Latest => ResetKind::Latest,
            ResetTarget::Offset(_) => ResetKind::Offset,
            ResetTarget::Timestamp(_) => ResetKind::Timestamp,
        }
    }
}

impl Body for ResetOffsetsRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)?;
        wire::put_string(buf, "topic", &self.topic)?;
        wire::put_option(buf, self.partition.as_ref(), |b, p| {
            b.put_u32_le(*p);
            Ok(())
        })?;
        self.to.kind().encode(buf);
        match self.to {
            ResetTarget::Earliest | ResetTarget::Latest => {}
            ResetTarget::Offset(offset) => buf.put_u64_le(offset),
            ResetTarget::Timestamp(ms) => buf.put_i64_le(ms),
        }
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let group = r.string("group")?;
        let topic = r.string("topic")?;
        let partition = r.option("partition", |r| r.u32("partition"))?;
        let to = match ResetKind::decode(r)? {
            ResetKind::Earliest => ResetTarget::Earliest,
            ResetKind::Latest => ResetTarget::Latest,
            ResetKind::Offset => ResetTarget::Offset(r.u64("offset")?),
            ResetKind::Timestamp => ResetTarget::Timestamp(r.u64("timestamp_ms")? as i64),
        };
        Ok(ResetOffsetsRequest {
            group,
            topic,
            partition,
            to,
        })
    }
}

impl Body for ResetOffsetsResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "topic", &self.topic)?;
        wire::put_array(buf, "offsets", &self.offsets, |b, o| {
            b.put_u32_le(o.partition);
            b.put_u64_le(o.offset);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ResetOffsetsResponse {
            topic: r.string("topic")?,
            offsets: r.array("offsets", RESET_OFFSET_BYTES, |r| {
                Ok(ResetOffset {
                    partition: r.u32("partition")?,
                    offset: r.u64("offset")?,
                })
            })?,
        })
    }
}

impl Body for PurgeGroupRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PurgeGroupRequest {
            group: r.string("group")?,
        })
    }
}

impl Body for PurgeGroupResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u64_le(self.dropped);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PurgeGroupResponse {
            dropped: r.u64("dropped")?,
        })
    }
}
