//! Queue-mode message settlement: Ack, Nack, ExtendDeadline.
//!
//! In a queue group each delivered message is leased to one member until a deadline.
//! Ack settles it for good; Nack asks for redelivery (after an optional delay) or,
//! past the group's attempt limit, dead-lettering; ExtendDeadline keeps a slow
//! message leased. A lease that expires counts as a Nack without a reason.

use bytes::{BufMut, BytesMut};

use super::Body;
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader};

/// Settles messages of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AckRequest {
    /// Group name.
    pub group: String,
    /// The group's topic.
    pub topic: String,
    /// Partition id.
    pub partition: u32,
    /// Offsets to settle, in any order.
    pub offsets: Vec<u64>,
}

/// Rejects one message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct NackRequest {
    /// Group name.
    pub group: String,
    /// The group's topic.
    pub topic: String,
    /// Partition id.
    pub partition: u32,
    /// The message's offset.
    pub offset: u64,
    /// Why, for the dead-letter record and logs.
    pub reason: String,
    /// Wait at least this long before redelivering; absent = the group's backoff.
    pub redelivery_delay_ms: Option<u32>,
}

/// Extends one message's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ExtendDeadlineRequest {
    /// Group name.
    pub group: String,
    /// The group's topic.
    pub topic: String,
    /// Partition id.
    pub partition: u32,
    /// The message's offset.
    pub offset: u64,
    /// The new deadline is now plus this.
    pub extend_ms: u32,
}

impl Body for AckRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)?;
        wire::put_string(buf, "topic", &self.topic)?;
        buf.put_u32_le(self.partition);
        wire::put_array(buf, "offsets", &self.offsets, |b, o| {
            b.put_u64_le(*o);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AckRequest {
            group: r.string("group")?,
            topic: r.string("topic")?,
            partition: r.u32("partition")?,
            offsets: r.array("offsets", 8, |r| r.u64("offset"))?,
        })
    }
}

impl Body for NackRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)?;
        wire::put_string(buf, "topic", &self.topic)?;
        buf.put_u32_le(self.partition);
        buf.put_u64_le(self.offset);
        wire::put_string(buf, "reason", &self.reason)?;
        wire::put_option(buf, self.redelivery_delay_ms.as_ref(), |b, d| {
            b.put_u32_le(*d);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(NackRequest {
            group: r.string("group")?,
            topic: r.string("topic")?,
            partition: r.u32("partition")?,
            offset: r.u64("offset")?,
            reason: r.string("reason")?,
            redelivery_delay_ms: r
                .option("redelivery_delay_ms", |r| r.u32("redelivery_delay_ms"))?,
        })
    }
}

impl Body for ExtendDeadlineRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)?;
        wire::put_string(buf, "topic", &self.topic)?;
        buf.put_u32_le(self.partition);
        buf.put_u64_le(self.offset);
        buf.put_u32_le(self.extend_ms);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ExtendDeadlineRequest {
            group: r.string("group")?,
            topic: r.string("topic")?,
            partition: r.u32("partition")?,
            offset: r.u64("offset")?,
            extend_ms: r.u32("extend_ms")?,
        })
    }
}
