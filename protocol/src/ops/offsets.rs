//! Stream-mode offsets: CommitOffsets and FetchOffsets.
//!
//! A committed offset is the next offset the group will read from that partition
//! (one past the last processed record). Commits carry the member's generation so that
//! a member that missed a rebalance cannot overwrite the new owner's progress.

use bytes::{BufMut, BytesMut};

use super::Body;
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader, MIN_OPTION_BYTES};

/// One partition's offset to commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PartitionOffset {
    /// Partition id.
    pub partition: u32,
    /// The next offset to read.
    pub offset: u64,
}

/// Commits offsets for partitions assigned to the member.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CommitOffsetsRequest {
    /// Group name.
    pub group: String,
    /// Member id.
    pub member_id: String,
    /// The member's generation.
    pub generation: u32,
    /// The group's topic.
    pub topic: String,
    /// Offsets to commit.
    pub offsets: Vec<PartitionOffset>,
}

/// Reads a group's committed offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FetchOffsetsRequest {
    /// Group name.
    pub group: String,
    /// The group's topic.
    pub topic: String,
}

/// One partition's committed offset, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CommittedOffset {
    /// Partition id.
    pub partition: u32,
    /// The committed offset; absent if the group never committed one.
    pub offset: Option<u64>,
}

/// Committed offsets, one per partition of the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct FetchOffsetsResponse {
    /// In partition order.
    pub offsets: Vec<CommittedOffset>,
}

const PARTITION_OFFSET_BYTES: usize = 4 + 8;
const MIN_COMMITTED_OFFSET_BYTES: usize = 4 + MIN_OPTION_BYTES;

impl Body for CommitOffsetsRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)?;
        wire::put_string(buf, "member_id", &self.member_id)?;
        buf.put_u32_le(self.generation);
        wire::put_string(buf, "topic", &self.topic)?;
        wire::put_array(buf, "offsets", &self.offsets, |b, o| {
            b.put_u32_le(o.partition);
            b.put_u64_le(o.offset);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(CommitOffsetsRequest {
            group: r.string("group")?,
            member_id: r.string("member_id")?,
            generation: r.u32("generation")?,
            topic: r.string("topic")?,
            offsets: r.array("offsets", PARTITION_OFFSET_BYTES, |r| {
                Ok(PartitionOffset {
                    partition: r.u32("partition")?,
                    offset: r.u64("offset")?,
                })
            })?,
        })
    }
}

impl Body for FetchOffsetsRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)?;
        wire::put_string(buf, "topic", &self.topic)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(FetchOffsetsRequest {
            group: r.string("group")?,
            topic: r.string("topic")?,
        })
    }
}

impl Body for FetchOffsetsResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_array(buf, "offsets", &self.offsets, |b, o| {
            b.put_u32_le(o.partition);
            wire::put_option(b, o.offset.as_ref(), |b, v| {
                b.put_u64_le(*v);
                Ok(())
            })
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let offsets = r.array("offsets", MIN_COMMITTED_OFFSET_BYTES, |r| {
            Ok(CommittedOffset {
                partition: r.u32("partition")?,
                offset: r.option("offset", |r| r.u64("offset"))?,
            })
        })?;
        Ok(FetchOffsetsResponse { offsets })
    }
}
