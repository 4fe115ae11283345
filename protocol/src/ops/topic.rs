//! Topic administration: CreateTopic, DeleteTopic, ListTopics, DescribeTopic,
//! DeleteRecords, and (version 2) AlterTopic and CreatePartitions.
//!
//! Per-topic config travels as string key/value pairs so that adding a setting needs
//! no protocol change; the server validates keys and values (`invalid_config`).

use bytes::{BufMut, BytesMut};

use super::Body;
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader, MIN_STRING_BYTES};

/// One topic setting, e.g. `retention_ms` = `604800000`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ConfigEntry {
    /// The setting's name.
    pub key: String,
    /// Its value, as text.
    pub value: String,
}

/// Creates a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CreateTopicRequest {
    /// Topic name.
    pub name: String,
    /// Number of partitions, at least 1.
    pub partitions: u32,
    /// Settings that differ from the server's defaults.
    pub config: Vec<ConfigEntry>,
}

/// Deletes a topic and all its data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DeleteTopicRequest {
    /// Topic name.
    pub name: String,
}

/// Changes settings of an existing topic (version 2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AlterTopicRequest {
    /// Topic name.
    pub name: String,
    /// The settings to change, each to its new value; the others keep theirs.
    pub config: Vec<ConfigEntry>,
}

/// Grows a topic to more partitions (version 2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CreatePartitionsRequest {
    /// Topic name.
    pub name: String,
    /// The topic's new partition count, more than it has.
    pub count: u32,
}

/// Lists topics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ListTopicsRequest {
    /// Also list the broker's internal topics (offsets, registry, ...).
    pub include_internal: bool,
}

/// One line of a topic listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TopicSummary {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: u32,
    /// Messages currently retained, summed over partitions.
    pub messages: u64,
    /// Bytes currently retained, summed over partitions.
    pub size_bytes: u64,
    /// True for the broker's own topics.
    pub internal: bool,
}

/// The topic listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ListTopicsResponse {
    /// Topics, sorted by name.
    pub topics: Vec<TopicSummary>,
}

/// Describes one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DescribeTopicRequest {
    /// Topic name.
    pub name: String,
}

/// The offsets and size of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PartitionInfo {
    /// Partition id.
    pub partition: u32,
    /// Offset of the oldest retained record (the log start offset).
    pub start_offset: u64,
    /// Offset the next appended record will get (the high watermark).
    pub end_offset: u64,
    /// Bytes on disk.
    pub size_bytes: u64,
}

/// A topic's effective config and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DescribeTopicResponse {
    /// Topic name.
    pub name: String,
    /// True for the broker's own topics.
    pub internal: bool,
    /// Every setting with its effective value, defaults included.
    pub config: Vec<ConfigEntry>,
    /// One entry per partition, in partition order.
    pub partitions: Vec<PartitionInfo>,
}

const MIN_CONFIG_ENTRY_BYTES: usize = 2 * MIN_STRING_BYTES;
const MIN_TOPIC_SUMMARY_BYTES: usize = MIN_STRING_BYTES + 4 + 8 + 8 + 1;
const PARTITION_INFO_BYTES: usize = 4 + 8 + 8 + 8;

pub(crate) fn put_config(buf: &mut BytesMut, config: &[ConfigEntry]) -> Result<(), EncodeError> {
    wire::put_array(buf, "config", config, |b, e| {
        wire::put_string(b, "config key", &e.key)?;
        wire::put_string(b, "config value", &e.value)
    })
}

pub(crate) fn read_config(r: &mut Reader) -> Result<Vec<ConfigEntry>, DecodeError> {
    r.array("config", MIN_CONFIG_ENTRY_BYTES, |r| {
        Ok(ConfigEntry {
            key: r.string("config key")?,
            value: r.string("config value")?,
        })
    })
}

impl Body for CreateTopicRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "name", &self.name)?;
        buf.put_u32_le(self.partitions);
        put_config(buf, &self.config)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(CreateTopicRequest {
            name: r.string("name")?,
            partitions: r.u32("partitions")?,
            config: read_config(r)?,
        })
    }
}

impl Body for AlterTopicRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "name", &self.name)?;
        put_config(buf, &self.config)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AlterTopicRequest {
            name: r.string("name")?,
            config: read_config(r)?,
        })
    }
}

impl Body for CreatePartitionsRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "name", &self.name)?;
        buf.put_u32_le(self.count);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(CreatePartitionsRequest {
            name: r.string("name")?,
            count: r.u32("count")?,
        })
    }
}

impl Body for DeleteTopicRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "name", &self.name)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DeleteTopicRequest {
            name: r.string("name")?,
        })
    }
}

impl Body for ListTopicsRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_bool(buf, self.include_internal);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ListTopicsRequest {
            include_internal: r.bool("include_internal")?,
        })
    }
}

impl Body for ListTopicsResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_array(buf, "topics", &self.topics, |b, t| {
            wire::put_string(b, "name", &t.name)?;
            b.put_u32_le(t.partitions);
            b.put_u64_le(t.messages);
            b.put_u64_le(t.size_bytes);
            wire::put_bool(b, t.internal);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let topics = r.array("topics", MIN_TOPIC_SUMMARY_BYTES, |r| {
            Ok(TopicSummary {
                name: r.string("name")?,
                partitions: r.u32("partitions")?,
                messages: r.u64("messages")?,
                size_bytes: r.u64("size_bytes")?,
                internal: r.bool("internal")?,
            })
        })?;
        Ok(ListTopicsResponse { topics })
    }
}

impl Body for DescribeTopicRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "name", &self.name)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DescribeTopicRequest {
            name: r.string("name")?,
        })
    }
}

impl Body for DescribeTopicResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "name", &self.name)?;
        wire::put_bool(buf, self.internal);
        put_config(buf, &self.config)?;
        wire::put_array(buf, "partitions", &self.partitions, |b, p| {
            b.put_u32_le(p.partition);
            b.put_u64_le(p.start_offset);
            b.put_u64_le(p.end_offset);
            b.put_u64_le(p.size_bytes);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DescribeTopicResponse {
            name: r.string("name")?,
            internal: r.bool("internal")?,
            config: read_config(r)?,
            partitions: r.array("partitions", PARTITION_INFO_BYTES, |r| {
                Ok(PartitionInfo {
                    partition: r.u32("partition")?,
                    start_offset: r.u64("start_offset")?,
                    end_offset: r.u64("end_offset")?,
                    size_bytes: r.u64("size_bytes")?,
                })
            })?,
        })
    }
}

/// Deletes a partition's records below an offset (moves its log start): for
/// dead-letter purges and replays.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DeleteRecordsRequest {
    /// Topic name.
    pub topic: String,
    /// Partition.
    pub partition: u32,
    /// Records below this offset are deleted; clamped to the partition's end.
    pub before_offset: u64,
}

/// The partition's log start after the deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DeleteRecordsResponse {
    /// First offset still held.
    pub log_start_offset: u64,
}

impl Body for DeleteRecordsRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "topic", &self.topic)?;
        buf.put_u32_le(self.partition);
        buf.put_u64_le(self.before_offset);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DeleteRecordsRequest {
            topic: r.string("topic")?,
            partition: r.u32("partition")?,
            before_offset: r.u64("before_offset")?,
        })
    }
}

impl Body for DeleteRecordsResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u64_le(self.log_start_offset);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DeleteRecordsResponse {
            log_start_offset: r.u64("log_start_offset")?,
        })
    }
}
