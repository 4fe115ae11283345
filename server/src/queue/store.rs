//! Queue state on the internal topic `__queue_state`.
//!
//! Every change of a queue group's state is an [`Event`], appended as one record
//! (key `group 0x00 topic`, value the encoded event) to a one-partition internal
//! topic with `always` durability. Startup replays the topic; a periodic compaction
//! appends a snapshot of each group and truncates everything before the oldest
//! snapshot, so the topic stays proportional to the unsettled messages, not to the
//! history. Format in `docs/storage.md` ("Queue state").

use bytes::{Buf, BufMut, BytesMut};
use protocol::batch::BatchBuilder;

use super::state::Event;
use crate::error::BrokerError;
use crate::now_ms;
use crate::partition::Partition;
use crate::topics::{TopicConfig, Topics};

/// Name of the internal topic.
pub const QUEUE_STATE_TOPIC: &str = "__queue_state";
/// Longest nack reason kept, bytes.
pub const MAX_REASON_BYTES: usize = 1024;

const DELIVERED: u8 = 1;
const ACKED: u8 = 2;
const FAILED: u8 = 3;
const DEAD_LETTERING: u8 = 4;
const DEAD_LETTERED: u8 = 5;
const POSITION: u8 = 6;
const ENTRY: u8 = 7;

/// `reason` cut to at most [`MAX_REASON_BYTES`], at a character boundary.
pub fn clip_reason(reason: &str) -> &str {
    &reason[..reason.floor_char_boundary(MAX_REASON_BYTES)]
}

fn put_reason(buf: &mut BytesMut, reason: &str) {
    let reason = clip_reason(reason);
    buf.put_u16_le(reason.len() as u16);
    buf.put_slice(reason.as_bytes());
}

/// Encodes an event as a record value.
pub fn encode(event: &Event) -> BytesMut {
    let mut buf = BytesMut::with_capacity(48);
    match event {
        Event::Delivered {
            partition,
            from,
            to,
            attempt,
            at_ms,
            deadline_ms,
        } => {
            buf.put_u8(DELIVERED);
            buf.put_u32_le(*partition);
            buf.put_u64_le(*from);
            buf.put_u64_le(*to);
            buf.put_u32_le(*attempt);
            buf.put_i64_le(*at_ms);
            buf.put_i64_le(*deadline_ms);
        }
        Event::Acked { partition, offsets } => {
            buf.put_u8(ACKED);
            buf.put_u32_le(*partition);
            buf.put_u32_le(offsets.len() as u32);
            for offset in offsets {
                buf.put_u64_le(*offset);
            }
        }
        Event::Failed {
            partition,
            offset,
            reason,
            due_ms,
        } => {
            buf.put_u8(FAILED);
            buf.put_u32_le(*partition);
            buf.put_u64_le(*offset);
            buf.put_i64_le(*due_ms);
            put_reason(&mut buf, reason);
        }
        Event::DeadLettering {
            partition,
            offset,
            reason,
        } => {
            buf.put_u8(DEAD_LETTERING);
            buf.put_u32_le(*partition);
            buf.put_u64_le(*offset);
            put_reason(&mut buf, reason);
        }
        Event::DeadLettered { partition, offset } => {
            buf.put_u8(DEAD_LETTERED);
            buf.put_u32_le(*partition);
            buf.put_u64_le(*offset);
        }
        Event::Position {
            partition,
            floor,
            read,
            dead_lettered,
        } => {
            buf.put_u8(POSITION);
            buf.put_u32_le(*partition);
            buf.put_u64_le(*floor);
            buf.put_u64_le(*read);
            buf.put_u64_le(*dead_lettered);
        }
        Event::Entry {
            partition,
            offset,
            attempts,
            first_ms,
            last_ms,
        } => {
            buf.put_u8(ENTRY);
            buf.put_u32_le(*partition);
            buf.put_u64_le(*offset);
            buf.put_u32_le(*attempts);
            buf.put_i64_le(*first_ms);
            buf.put_i64_le(*last_ms);
        }
    }
    buf
}

/// Decodes a record value; `None` if it is not a valid event.
pub fn decode(mut bytes: &[u8]) -> Option<Event> {
    fn need(bytes: &[u8], n: usize) -> Option<()> {
        (bytes.remaining() >= n).then_some(())
    }
    fn reason(bytes: &mut &[u8]) -> Option<String> {
        need(bytes, 2)?;
        let len = bytes.get_u16_le() as usize;
        need(bytes, len)?;
        let text = std::str::from_utf8(&bytes[..len]).ok()?.to_string();
        bytes.advance(len);
        Some(text)
    }
    need(bytes, 5)?;
    let kind = bytes.get_u8();
    let partition = bytes.get_u32_le();
    let event = match kind {
        DELIVERED => {
            need(bytes, 36)?;
            Event::Delivered {
                partition,
                from: bytes.get_u64_le(),
                to: bytes.get_u64_le(),
                attempt: bytes.get_u32_le(),
                at_ms: bytes.get_i64_le(),
                deadline_ms: bytes.get_i64_le(),
            }
        }
        ACKED => {
            need(bytes, 4)?;
            let count = bytes.get_u32_le() as usize;
            need(bytes, count.checked_mul(8)?)?;
            Event::Acked {
                partition,
                offsets: (0..count).map(|_| bytes.get_u64_le()).collect(),
            }
        }
        FAILED => {
            need(bytes, 16)?;
            let offset = bytes.get_u64_le();
            let due_ms = bytes.get_i64_le();
            Event::Failed {
                partition,
                offset,
                due_ms,
                reason: reason(&mut bytes)?,
            }
        }
        DEAD_LETTERING => {
            need(bytes, 8)?;
            let offset = bytes.get_u64_le();
            Event::DeadLettering {
                partition,
                offset,
                reason: reason(&mut bytes)?,
            }
        }
        DEAD_LETTERED => {
            need(bytes, 8)?;
            Event::DeadLettered {
                partition,
                offset: bytes.get_u64_le(),
            }
        }
        POSITION => {
            need(bytes, 24)?;
            Event::Position {
                partition,
                floor: bytes.get_u64_le(),
                read: bytes.get_u64_le(),
                dead_lettered: bytes.get_u64_le(),
            }
        }
        ENTRY => {
            need(bytes, 28)?;
            Event::Entry {
                partition,
                offset: bytes.get_u64_le(),
                attempts: bytes.get_u32_le(),
                first_ms: bytes.get_i64_le(),
                last_ms: bytes.get_i64_le(),
            }
        }
        _ => return None,
    };
    bytes.is_empty().then_some(event)
}

fn key(group: &str, topic: &str) -> Vec<u8> {
    format!("{group}\0{topic}").into_bytes()
}

/// The internal topic holding every queue group's events.
#[derive(Debug)]
pub struct QueueStore {
    partition: std::sync::Arc<Partition>,
    /// Serialises appends with truncation.
    lock: std::sync::Mutex<()>,
}

/// `(group, topic)` and its events in log order, as replayed at startup.
pub type Replayed = Vec<((String, String), Vec<Event>)>;

impl QueueStore {
    /// Opens (creating if needed) the internal topic and replays it (blocking I/O).
    pub fn open(topics: &Topics) -> Result<(QueueStore, Replayed), BrokerError> {
        let partition =
            topics.internal_partition(QUEUE_STATE_TOPIC, TopicConfig::internal_default())?;
        let mut replayed: Replayed = Vec::new();
        let mut index: std::collections::HashMap<bytes::Bytes, usize> =
            std::collections::HashMap::new();
        partition.replay(|offset, key, value| {
            let (Some(key), Some(event)) = (key, value.as_deref().and_then(decode)) else {
                tracing::warn!(offset, "skipping unreadable record in {QUEUE_STATE_TOPIC}");
                return;
            };
            let slot = *index.entry(key.clone()).or_insert_with(|| {
                let text = String::from_utf8_lossy(&key);
                let (group, topic) = text.split_once('\0').unwrap_or((&text, ""));
                replayed.push(((group.to_string(), topic.to_string()), Vec::new()));
                replayed.len() - 1
            });
            replayed[slot].1.push(event);
        })?;
        Ok((
            QueueStore {
                partition,
                lock: std::sync::Mutex::new(()),
            },
            replayed,
        ))
    }

    /// Appends events of one group; returns the offset after them (wait for it to be
    /// durable with [`wait_durable`](Self::wait_durable)).
    pub fn append(&self, group: &str, topic: &str, events: &[Event]) -> Result<u64, BrokerError> {
        if events.is_empty() {
            return Ok(self.partition.end_offset());
        }
        let key = key(group, topic);
        let now = now_ms();
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = self.partition.end_offset();
        // Large snapshots are split into batches well below the batch size limit.
        for chunk in events.chunks(4096) {
            let mut builder = BatchBuilder::new();
            for event in chunk {
                builder
                    .push(now, Some(&key), Some(&encode(event)), &[])
                    .map_err(|e| BrokerError::Internal(format!("queue state record: {e}")))?;
            }
            next = self.partition.append(&builder.finish())?.next_offset;
        }
        Ok(next)
    }

    /// Waits until `offset` is durable.
    pub async fn wait_durable(&self, offset: u64) -> Result<(), BrokerError> {
        self.partition
            .wait_durable(offset, std::time::Duration::from_secs(30))
            .await
    }

    /// Records in the log.
    pub fn len(&self) -> u64 {
        self.partition.end_offset() - self.partition.start_offset()
    }

    /// True when the log holds no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offset the next append gets.
    pub fn end_offset(&self) -> u64 {
        self.partition.end_offset()
    }

    /// Drops everything before `offset` (all groups have snapshots at or after it).
    pub fn truncate_before(&self, offset: u64) -> Result<(), BrokerError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.partition.truncate_before(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The decoder reads bytes from disk: any input gives an event or `None`,
        /// never a panic, and whatever decodes re-encodes to the same bytes.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Some(event) = decode(&bytes) {
                prop_assert_eq!(&encode(&event)[..], &bytes[..]);
            }
        }
    }

    #[test]
    fn events_round_trip() {
        let events = [
            Event::Delivered {
                partition: 1,
                from: 2,
                to: 9,
                attempt: 3,
                at_ms: -4,
                deadline_ms: 5,
            },
            Event::Acked {
                partition: 0,
                offsets: vec![1, 5, 9],
            },
            Event::Failed {
                partition: 2,
                offset: 7,
                reason: "bad ✓".into(),
                due_ms: 99,
            },
            Event::DeadLettering {
                partition: 2,
                offset: 7,
                reason: String::new(),
            },
            Event::DeadLettered {
                partition: 2,
                offset: 7,
            },
            Event::Position {
                partition: 3,
                floor: 1,
                read: 2,
                dead_lettered: 3,
            },
            Event::Entry {
                partition: 3,
                offset: 1,
                attempts: 2,
                first_ms: 3,
                last_ms: 4,
            },
        ];
        for event in events {
            assert_eq!(decode(&encode(&event)), Some(event));
        }
        assert_eq!(decode(&[]), None);
        assert_eq!(
            decode(&[ACKED, 0, 0, 0, 0, 255, 255, 255, 255]),
            None,
            "absurd count"
        );
        let mut long = encode(&Event::Failed {
            partition: 0,
            offset: 0,
            reason: "x".repeat(5000),
            due_ms: 0,
        });
        assert!(long.len() < 1100);
        long.extend_from_slice(&[0]);
        assert_eq!(decode(&long), None, "trailing bytes");
    }
}
