//! Observability: ServerStats and TopicStats.
//!
//! Counters are totals since the server started; rates are per second, averaged over
//! the last minute, as whole numbers (fractions of a message per second are noise at
//! the scale these are read).

use bytes::{BufMut, BytesMut};

use super::Body;
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader, MIN_STRING_BYTES};

/// Produce counters for one topic or partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Counters {
    /// Messages appended since the server started.
    pub messages_total: u64,
    /// Batch bytes appended since the server started.
    pub bytes_total: u64,
    /// Messages appended per second, last minute.
    pub messages_per_sec: u64,
    /// Bytes appended per second, last minute.
    pub bytes_per_sec: u64,
}

/// One topic's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TopicCounters {
    /// Topic name.
    pub topic: String,
    /// Its counters.
    pub counters: Counters,
}

/// Server-wide figures.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ServerStatsResponse {
    /// Time since the server started.
    pub uptime_ms: u64,
    /// Open client connections.
    pub connections: u32,
    /// Per topic, sorted by name.
    pub topics: Vec<TopicCounters>,
}

/// Asks for one topic's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TopicStatsRequest {
    /// Topic name.
    pub topic: String,
}

/// One partition's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PartitionCounters {
    /// Partition id.
    pub partition: u32,
    /// Its counters.
    pub counters: Counters,
}

/// A topic's counters, in total and per partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TopicStatsResponse {
    /// Topic name.
    pub topic: String,
    /// Summed over partitions.
    pub total: Counters,
    /// In partition order.
    pub partitions: Vec<PartitionCounters>,
}

const COUNTERS_BYTES: usize = 4 * 8;

fn put_counters(buf: &mut BytesMut, c: &Counters) {
    buf.put_u64_le(c.messages_total);
    buf.put_u64_le(c.bytes_total);
    buf.put_u64_le(c.messages_per_sec);
    buf.put_u64_le(c.bytes_per_sec);
}

fn read_counters(r: &mut Reader) -> Result<Counters, DecodeError> {
    Ok(Counters {
        messages_total: r.u64("messages_total")?,
        bytes_total: r.u64("bytes_total")?,
        messages_per_sec: r.u64("messages_per_sec")?,
        bytes_per_sec: r.u64("bytes_per_sec")?,
    })
}

impl Body for ServerStatsResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u64_le(self.uptime_ms);
        buf.put_u32_le(self.connections);
        wire::put_array(buf, "topics", &self.topics, |b, t| {
            wire::put_string(b, "topic", &t.topic)?;
            put_counters(b, &t.counters);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ServerStatsResponse {
            uptime_ms: r.u64("uptime_ms")?,
            connections: r.u32("connections")?,
            topics: r.array("topics", MIN_STRING_BYTES + COUNTERS_BYTES, |r| {
                Ok(TopicCounters {
                    topic: r.string("topic")?,
                    counters: read_counters(r)?,
                })
            })?,
        })
    }
}

impl Body for TopicStatsRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "topic", &self.topic)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(TopicStatsRequest {
            topic: r.string("topic")?,
        })
    }
}

impl Body for TopicStatsResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "topic", &self.topic)?;
        put_counters(buf, &self.total);
        wire::put_array(buf, "partitions", &self.partitions, |b, p| {
            b.put_u32_le(p.partition);
            put_counters(b, &p.counters);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(TopicStatsResponse {
            topic: r.string("topic")?,
            total: read_counters(r)?,
            partitions: r.array("partitions", 4 + COUNTERS_BYTES, |r| {
                Ok(PartitionCounters {
                    partition: r.u32("partition")?,
                    counters: read_counters(r)?,
                })
            })?,
        })
    }
}
