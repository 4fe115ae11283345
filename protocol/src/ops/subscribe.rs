//! Push subscriptions: Subscribe, Credit, Unsubscribe, and the pushed Delivery.
//!
//! Flow control is credit-based: the server pushes deliveries while the subscription
//! has credit left in *both* messages and bytes, subtracting what each delivery
//! carries, and stops at zero until a Credit request adds more. So a slow consumer
//! bounds what is buffered for it, and a fast one never waits for a round trip per
//! message. A delivery may overdraw the byte credit by at most one batch, so that a
//! batch larger than the credit still gets through.

use bytes::{BufMut, Bytes, BytesMut};

use super::Body;
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader};

/// What a subscription reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum SubscribeTarget {
    /// One partition, directly (tag 0, then `u32`).
    Partition(u32),
    /// Whatever partitions the group assigns this member, following rebalances
    /// (tag 1, then group and member id strings). The member must have joined.
    Group {
        /// Group name.
        group: String,
        /// Member id from JoinGroup.
        member_id: String,
    },
}

/// The protocol version that introduced [`StartPosition::Timestamp`].
pub const TIMESTAMP_SINCE: u16 = 2;

/// Where a partition subscription starts. Group subscriptions start at the group's
/// committed offsets and ignore this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum StartPosition {
    /// The oldest retained record (tag 0).
    Earliest,
    /// The next record appended (tag 1).
    Latest,
    /// This offset (tag 2, then `u64`).
    Offset(u64),
    /// The first record whose timestamp is at or after this time, in milliseconds
    /// since the epoch; the end if every record is older (tag 3, then `i64`; version 2).
    /// Timestamps are the records' own, as their producers set them.
    Timestamp(i64),
}

/// Opens a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SubscribeRequest {
    /// Topic name.
    pub topic: String,
    /// Partition or group.
    pub target: SubscribeTarget,
    /// Where to start.
    pub start: StartPosition,
    /// Initial credit in messages.
    pub credit_messages: u32,
    /// Initial credit in bytes.
    pub credit_bytes: u64,
}

/// The subscription's id, for Credit, Unsubscribe and deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SubscribeResponse {
    /// Unique on this connection.
    pub subscription_id: u64,
}

/// Adds credit to a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CreditRequest {
    /// The subscription.
    pub subscription_id: u64,
    /// Messages to add.
    pub messages: u32,
    /// Bytes to add.
    pub bytes: u64,
}

/// Closes a subscription. Deliveries already sent may still arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct UnsubscribeRequest {
    /// The subscription.
    pub subscription_id: u64,
}

/// Server-pushed records for a subscription (a PUSH frame, correlation id 0).
///
/// `batches` holds whole stored batches; only records with offsets in
/// `[from_offset, to_offset)` belong to the delivery. That lets the server push the
/// log's bytes unchanged even when a batch straddles the consumer's position, and
/// redeliver one message of a batch in queue mode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Delivery {
    /// The subscription.
    pub subscription_id: u64,
    /// The partition the records come from.
    pub partition: u32,
    /// First offset delivered (inclusive).
    pub from_offset: u64,
    /// End of the delivered range (exclusive).
    pub to_offset: u64,
    /// 1 for a first delivery; counts up on each queue-mode redelivery.
    pub attempt: u32,
    /// Whole batches, back to back.
    #[cfg_attr(test, proptest(strategy = "crate::proptests::batches()"))]
    pub batches: Bytes,
}

impl Body for SubscribeRequest {
    fn encode(&self, buf: &mut BytesMut, version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "topic", &self.topic)?;
        match &self.target {
            SubscribeTarget::Partition(p) => {
                buf.put_u8(0);
                buf.put_u32_le(*p);
            }
            SubscribeTarget::Group { group, member_id } => {
                buf.put_u8(1);
                wire::put_string(buf, "group", group)?;
                wire::put_string(buf, "member_id", member_id)?;
            }
        }
        match self.start {
            StartPosition::Earliest => buf.put_u8(0),
            StartPosition::Latest => buf.put_u8(1),
            StartPosition::Offset(o) => {
                buf.put_u8(2);
                buf.put_u64_le(o);
            }
            StartPosition::Timestamp(ms) => {
                if version < TIMESTAMP_SINCE {
                    return Err(EncodeError::NotInVersion {
                        what: "a start position by timestamp",
                        since: TIMESTAMP_SINCE,
                        version,
                    });
                }
                buf.put_u8(3);
                buf.put_i64_le(ms);
            }
        }
        buf.put_u32_le(self.credit_messages);
        buf.put_u64_le(self.credit_bytes);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let topic = r.string("topic")?;
        let target = match r.u8("subscribe target")? {
            0 => SubscribeTarget::Partition(r.u32("partition")?),
            1 => SubscribeTarget::Group {
                group: r.string("group")?,
                member_id: r.string("member_id")?,
            },
            other => {
                return Err(DecodeError::InvalidValue {
                    what: "subscribe target",
                    value: u64::from(other),
                })
            }
        };
        let start = match r.u8("start position")? {
            0 => StartPosition::Earliest,
            1 => StartPosition::Latest,
            2 => StartPosition::Offset(r.u64("start offset")?),
            // A version-1 connection has no tag 3: as undefined as any other.
            3 if r.version() >= TIMESTAMP_SINCE => {
                StartPosition::Timestamp(r.u64("start timestamp_ms")? as i64)
            }
            other => {
                return Err(DecodeError::InvalidValue {
                    what: "start position",
                    value: u64::from(other),
                })
            }
        };
        Ok(SubscribeRequest {
            topic,
            target,
            start,
            credit_messages: r.u32("credit_messages")?,
            credit_bytes: r.u64("credit_bytes")?,
        })
    }
}

impl Body for SubscribeResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u64_le(self.subscription_id);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(SubscribeResponse {
            subscription_id: r.u64("subscription_id")?,
        })
    }
}

impl Body for CreditRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u64_le(self.subscription_id);
        buf.put_u32_le(self.messages);
        buf.put_u64_le(self.bytes);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(CreditRequest {
            subscription_id: r.u64("subscription_id")?,
            messages: r.u32("messages")?,
            bytes: r.u64("bytes")?,
        })
    }
}

impl Body for UnsubscribeRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u64_le(self.subscription_id);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(UnsubscribeRequest {
            subscription_id: r.u64("subscription_id")?,
        })
    }
}

impl Body for Delivery {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u64_le(self.subscription_id);
        buf.put_u32_le(self.partition);
        buf.put_u64_le(self.from_offset);
        buf.put_u64_le(self.to_offset);
        buf.put_u32_le(self.attempt);
        wire::put_bytes(buf, "batches", &self.batches)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Delivery {
            subscription_id: r.u64("subscription_id")?,
            partition: r.u32("partition")?,
            from_offset: r.u64("from_offset")?,
            to_offset: r.u64("to_offset")?,
            attempt: r.u32("attempt")?,
            batches: r.bytes("batches")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_time(timestamp_ms: i64) -> SubscribeRequest {
        SubscribeRequest {
            topic: "events".into(),
            target: SubscribeTarget::Partition(0),
            start: StartPosition::Timestamp(timestamp_ms),
            credit_messages: 10,
            credit_bytes: 1 << 20,
        }
    }

    #[test]
    fn a_start_by_timestamp_is_version_2_only() {
        let request = at_time(1_796_119_200_000);
        let mut buf = BytesMut::new();
        assert_eq!(
            request.encode(&mut buf, 1),
            Err(EncodeError::NotInVersion {
                what: "a start position by timestamp",
                since: 2,
                version: 1
            }),
            "never sent to a version-1 broker"
        );
        let mut buf = BytesMut::new();
        request.encode(&mut buf, 2).unwrap();
        let body = buf.freeze();
        let mut r = Reader::new(body.clone(), 2);
        assert_eq!(SubscribeRequest::decode(&mut r).unwrap(), request);
        r.finish().unwrap();
        // The same bytes on a version-1 connection: tag 3 is undefined there.
        let mut r = Reader::new(body, 1);
        assert_eq!(
            SubscribeRequest::decode(&mut r),
            Err(DecodeError::InvalidValue {
                what: "start position",
                value: 3
            })
        );
    }

    #[test]
    fn negative_timestamps_round_trip() {
        let request = at_time(-1);
        let mut buf = BytesMut::new();
        request.encode(&mut buf, 2).unwrap();
        let mut r = Reader::new(buf.freeze(), 2);
        assert_eq!(SubscribeRequest::decode(&mut r).unwrap(), request);
    }
}
