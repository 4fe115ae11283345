//! Consumer group membership and inspection: JoinGroup, Heartbeat, LeaveGroup,
//! ListGroups, DescribeGroup.
//!
//! A group reads one topic. In stream mode each partition is assigned to one member,
//! which reads it in order and commits offsets; in queue mode messages are handed out
//! individually and acknowledged one by one (see `ack`). Every membership change
//! starts a new generation; members learn it from Heartbeat, and requests that carry
//! an older generation are refused with `stale_generation`.

use bytes::{BufMut, BytesMut};

use super::{put_partitions, read_partitions, wire_enum, Body};
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader, MIN_ARRAY_BYTES, MIN_OPTION_BYTES, MIN_STRING_BYTES};

wire_enum! {
    /// How a group consumes.
    GroupMode, "mode" {
        /// Partitions are assigned to members; offsets are committed.
        Stream = 0,
        /// Messages are leased individually and acked, nacked or redelivered.
        Queue = 1,
    }
}

wire_enum! {
    /// Where a new group starts reading partitions with no committed offset.
    GroupStart, "start" {
        /// The oldest retained record.
        Earliest = 0,
        /// The next record appended.
        Latest = 1,
    }
}

/// Joins a group, creating it if needed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct JoinGroupRequest {
    /// Group name.
    pub group: String,
    /// The topic the group reads; must match the group's topic if it exists.
    pub topic: String,
    /// Empty to join as a new member; a previous id to rejoin after a disconnect.
    pub member_id: String,
    /// The member is removed if no heartbeat arrives for this long.
    pub session_timeout_ms: u32,
    /// Stream or queue; must match the group's mode if it exists.
    pub mode: GroupMode,
    /// Used only when the group is created.
    pub start: GroupStart,
    /// Per-group overrides of the topic's queue settings (queue mode only), e.g.
    /// `max_delivery_attempts` = `3`.
    pub config: Vec<super::topic::ConfigEntry>,
}

/// The membership granted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct JoinGroupResponse {
    /// The member's id, to send with every later group request.
    pub member_id: String,
    /// The group's generation after the join.
    pub generation: u32,
    /// Partitions assigned to this member (all of them are shared in queue mode).
    pub partitions: Vec<u32>,
}

/// Keeps a membership alive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct HeartbeatRequest {
    /// Group name.
    pub group: String,
    /// Member id.
    pub member_id: String,
    /// The generation the member believes current.
    pub generation: u32,
}

/// The current generation and assignment, so the member follows rebalances.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct HeartbeatResponse {
    /// The group's current generation.
    pub generation: u32,
    /// Partitions assigned to this member in that generation.
    pub partitions: Vec<u32>,
}

/// Leaves a group at once instead of waiting for the session to time out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct LeaveGroupRequest {
    /// Group name.
    pub group: String,
    /// Member id.
    pub member_id: String,
}

/// One line of a group listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct GroupSummary {
    /// Group name.
    pub group: String,
    /// The topic it reads.
    pub topic: String,
    /// Stream or queue.
    pub mode: GroupMode,
    /// Current members.
    pub members: u32,
    /// Current generation.
    pub generation: u32,
}

/// All groups.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ListGroupsResponse {
    /// Groups, sorted by name.
    pub groups: Vec<GroupSummary>,
}

/// Describes one group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DescribeGroupRequest {
    /// Group name.
    pub group: String,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MemberInfo {
    /// Member id.
    pub member_id: String,
    /// The client name from the member's handshake.
    pub client_name: String,
    /// Its session timeout.
    pub session_timeout_ms: u32,
    /// Partitions assigned to it.
    pub partitions: Vec<u32>,
}

/// Queue-mode message counts for one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct QueueCounts {
    /// Delivered and not yet acked, nacked or expired.
    pub in_flight: u64,
    /// Nacked or expired, waiting for their redelivery time.
    pub waiting_retry: u64,
    /// Gave up after too many attempts and moved to the dead-letter topic.
    pub dead_lettered: u64,
}

/// A group's progress on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct GroupPartitionInfo {
    /// Partition id.
    pub partition: u32,
    /// Committed offset (stream) or the offset below which everything is acked
    /// (queue); absent if none yet.
    pub committed_offset: Option<u64>,
    /// The partition's high watermark.
    pub end_offset: u64,
    /// Records between the committed offset (or the log start) and the end.
    pub lag: u64,
    /// Present for queue groups only.
    pub queue: Option<QueueCounts>,
}

/// A group's members, assignments and progress.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DescribeGroupResponse {
    /// Group name.
    pub group: String,
    /// The topic it reads.
    pub topic: String,
    /// Stream or queue.
    pub mode: GroupMode,
    /// Current generation.
    pub generation: u32,
    /// Current members.
    pub members: Vec<MemberInfo>,
    /// One entry per partition of the topic.
    pub partitions: Vec<GroupPartitionInfo>,
}

const MIN_GROUP_SUMMARY_BYTES: usize = 2 * MIN_STRING_BYTES + 1 + 4 + 4;
const MIN_MEMBER_INFO_BYTES: usize = 2 * MIN_STRING_BYTES + 4 + MIN_ARRAY_BYTES;
const MIN_GROUP_PARTITION_BYTES: usize = 4 + MIN_OPTION_BYTES + 8 + 8 + MIN_OPTION_BYTES;

impl Body for JoinGroupRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)?;
        wire::put_string(buf, "topic", &self.topic)?;
        wire::put_string(buf, "member_id", &self.member_id)?;
        buf.put_u32_le(self.session_timeout_ms);
        self.mode.encode(buf);
        self.start.encode(buf);
        super::topic::put_config(buf, &self.config)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(JoinGroupRequest {
            group: r.string("group")?,
            topic: r.string("topic")?,
            member_id: r.string("member_id")?,
            session_timeout_ms: r.u32("session_timeout_ms")?,
            mode: GroupMode::decode(r)?,
            start: GroupStart::decode(r)?,
            config: super::topic::read_config(r)?,
        })
    }
}

impl Body for JoinGroupResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "member_id", &self.member_id)?;
        buf.put_u32_le(self.generation);
        put_partitions(buf, &self.partitions)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(JoinGroupResponse {
            member_id: r.string("member_id")?,
            generation: r.u32("generation")?,
            partitions: read_partitions(r)?,
        })
    }
}

impl Body for HeartbeatRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)?;
        wire::put_string(buf, "member_id", &self.member_id)?;
        buf.put_u32_le(self.generation);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(HeartbeatRequest {
            group: r.string("group")?,
            member_id: r.string("member_id")?,
            generation: r.u32("generation")?,
        })
    }
}

impl Body for HeartbeatResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u32_le(self.generation);
        put_partitions(buf, &self.partitions)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(HeartbeatResponse {
            generation: r.u32("generation")?,
            partitions: read_partitions(r)?,
        })
    }
}

impl Body for LeaveGroupRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)?;
        wire::put_string(buf, "member_id", &self.member_id)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(LeaveGroupRequest {
            group: r.string("group")?,
            member_id: r.string("member_id")?,
        })
    }
}

impl Body for ListGroupsResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_array(buf, "groups", &self.groups, |b, g| {
            wire::put_string(b, "group", &g.group)?;
            wire::put_string(b, "topic", &g.topic)?;
            g.mode.encode(b);
            b.put_u32_le(g.members);
            b.put_u32_le(g.generation);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let groups = r.array("groups", MIN_GROUP_SUMMARY_BYTES, |r| {
            Ok(GroupSummary {
                group: r.string("group")?,
                topic: r.string("topic")?,
                mode: GroupMode::decode(r)?,
                members: r.u32("members")?,
                generation: r.u32("generation")?,
            })
        })?;
        Ok(ListGroupsResponse { groups })
    }
}

impl Body for DescribeGroupRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DescribeGroupRequest {
            group: r.string("group")?,
        })
    }
}

impl Body for DescribeGroupResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "group", &self.group)?;
        wire::put_string(buf, "topic", &self.topic)?;
        self.mode.encode(buf);
        buf.put_u32_le(self.generation);
        wire::put_array(buf, "members", &self.members, |b, m| {
            wire::put_string(b, "member_id", &m.member_id)?;
            wire::put_string(b, "client_name", &m.client_name)?;
            b.put_u32_le(m.session_timeout_ms);
            put_partitions(b, &m.partitions)
        })?;
        wire::put_array(buf, "partitions", &self.partitions, |b, p| {
            b.put_u32_le(p.partition);
            wire::put_option(b, p.committed_offset.as_ref(), |b, o| {
                b.put_u64_le(*o);
                Ok(())
            })?;
            b.put_u64_le(p.end_offset);
            b.put_u64_le(p.lag);
            wire::put_option(b, p.queue.as_ref(), |b, q| {
                b.put_u64_le(q.in_flight);
                b.put_u64_le(q.waiting_retry);
                b.put_u64_le(q.dead_lettered);
                Ok(())
            })
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DescribeGroupResponse {
            group: r.string("group")?,
            topic: r.string("topic")?,
            mode: GroupMode::decode(r)?,
            generation: r.u32("generation")?,
            members: r.array("members", MIN_MEMBER_INFO_BYTES, |r| {
                Ok(MemberInfo {
                    member_id: r.string("member_id")?,
                    client_name: r.string("client_name")?,
                    session_timeout_ms: r.u32("session_timeout_ms")?,
                    partitions: read_partitions(r)?,
                })
            })?,
            partitions: r.array("partitions", MIN_GROUP_PARTITION_BYTES, |r| {
                Ok(GroupPartitionInfo {
                    partition: r.u32("partition")?,
                    committed_offset: r
                        .option("committed_offset", |r| r.u64("committed_offset"))?,
                    end_offset: r.u64("end_offset")?,
                    lag: r.u64("lag")?,
                    queue: r.option("queue", |r| {
                        Ok(QueueCounts {
                            in_flight: r.u64("in_flight")?,
                            waiting_retry: r.u64("waiting_retry")?,
                            dead_lettered: r.u64("dead_lettered")?,
                        })
                    })?,
                })
            })?,
        })
    }
}
