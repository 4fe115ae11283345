//! Queue groups' delivery state on `__queue_state`.
//!
//! Every change of a queue group's state is one [`QueueEvent`], stored as one record:
//! key `group 0x00 topic`, value the event (a `u8` kind, the partition as `u32`, then
//! the kind's fields; integers little-endian, a `reason` as a `u16` length and at most
//! [`MAX_REASON_BYTES`] of UTF-8). A record without a value (a tombstone) says the
//! group's state up to it is gone (the group was deleted, or purged): replay forgets
//! every earlier event of that key. The table of kinds is in `docs/storage.md`
//! ("Queue state").

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::InternalRecord;
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader};

/// Name of the internal topic.
pub const QUEUE_STATE_TOPIC: &str = "__queue_state";
/// Longest nack reason kept, bytes; longer ones are cut at a character boundary.
pub const MAX_REASON_BYTES: usize = 1024;

const DELIVERED: u8 = 1;
const ACKED: u8 = 2;
const FAILED: u8 = 3;
const DEAD_LETTERING: u8 = 4;
const DEAD_LETTERED: u8 = 5;
const POSITION: u8 = 6;
const ENTRY: u8 = 7;
const DEAD_LETTERING_FROM: u8 = 8;
const DEAD_LETTERED_AT: u8 = 9;

/// `reason` cut to at most [`MAX_REASON_BYTES`], at a character boundary.
pub fn clip_reason(reason: &str) -> &str {
    &reason[..reason.floor_char_boundary(MAX_REASON_BYTES)]
}

/// A persisted change of one queue group's state. (Field names speak for themselves;
/// the variant docs say what each change means.)
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueEvent {
    /// Offsets `[from, to)` were delivered, as attempt `attempt`.
    Delivered {
        partition: u32,
        from: u64,
        to: u64,
        attempt: u32,
        at_ms: i64,
        deadline_ms: i64,
    },
    /// Offsets were acked.
    Acked { partition: u32, offsets: Vec<u64> },
    /// A delivery failed (nack, expiry, disconnect); retry at `due_ms`.
    Failed {
        partition: u32,
        offset: u64,
        reason: String,
        due_ms: i64,
    },
    /// The message ran out of attempts and is being copied to the dead-letter topic,
    /// whose end was `dlq_from` (its copy can only be at or after it; `None` in events
    /// written before 2026-12).
    DeadLettering {
        partition: u32,
        offset: u64,
        reason: String,
        dlq_from: Option<u64>,
    },
    /// The copy was appended to the dead-letter topic at `dlq_offset`; the message is
    /// settled once that copy is durable (`None` in events written before 2026-12,
    /// which came only after the copy was durable).
    DeadLettered {
        partition: u32,
        offset: u64,
        dlq_offset: Option<u64>,
    },
    /// Snapshot of a partition's counters (written before its entries).
    Position {
        partition: u32,
        floor: u64,
        read: u64,
        dead_lettered: u64,
    },
    /// Snapshot of one entry's history.
    Entry {
        partition: u32,
        offset: u64,
        attempts: u32,
        first_ms: i64,
        last_ms: i64,
    },
}

impl QueueEvent {
    /// The partition the event is about.
    pub fn partition(&self) -> u32 {
        match self {
            QueueEvent::Delivered { partition, .. }
            | QueueEvent::Acked { partition, .. }
            | QueueEvent::Failed { partition, .. }
            | QueueEvent::DeadLettering { partition, .. }
            | QueueEvent::DeadLettered { partition, .. }
            | QueueEvent::Position { partition, .. }
            | QueueEvent::Entry { partition, .. } => *partition,
        }
    }

    /// Appends the event's encoding (a record value) to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let (kind, partition) = (self.kind(), self.partition());
        buf.put_u8(kind);
        buf.put_u32_le(partition);
        match self {
            QueueEvent::Delivered {
                from,
                to,
                attempt,
                at_ms,
                deadline_ms,
                ..
            } => {
                buf.put_u64_le(*from);
                buf.put_u64_le(*to);
                buf.put_u32_le(*attempt);
                buf.put_i64_le(*at_ms);
                buf.put_i64_le(*deadline_ms);
            }
            QueueEvent::Acked { offsets, .. } => {
                wire::put_count(buf, "acked offsets", offsets.len())?;
                for offset in offsets {
                    buf.put_u64_le(*offset);
                }
            }
            QueueEvent::Failed {
                offset,
                reason,
                due_ms,
                ..
            } => {
                buf.put_u64_le(*offset);
                buf.put_i64_le(*due_ms);
                wire::put_string(buf, "reason", clip_reason(reason))?;
            }
            QueueEvent::DeadLettering {
                offset,
                reason,
                dlq_from,
                ..
            } => {
                buf.put_u64_le(*offset);
                if let Some(dlq_from) = dlq_from {
                    buf.put_u64_le(*dlq_from);
                }
                wire::put_string(buf, "reason", clip_reason(reason))?;
            }
            QueueEvent::DeadLettered {
                offset, dlq_offset, ..
            } => {
                buf.put_u64_le(*offset);
                if let Some(dlq_offset) = dlq_offset {
                    buf.put_u64_le(*dlq_offset);
                }
            }
            QueueEvent::Position {
                floor,
                read,
                dead_lettered,
                ..
            } => {
                buf.put_u64_le(*floor);
                buf.put_u64_le(*read);
                buf.put_u64_le(*dead_lettered);
            }
            QueueEvent::Entry {
                offset,
                attempts,
                first_ms,
                last_ms,
                ..
            } => {
                buf.put_u64_le(*offset);
                buf.put_u32_le(*attempts);
                buf.put_i64_le(*first_ms);
                buf.put_i64_le(*last_ms);
            }
        }
        Ok(())
    }

    fn kind(&self) -> u8 {
        match self {
            QueueEvent::Delivered { .. } => DELIVERED,
            QueueEvent::Acked { .. } => ACKED,
            QueueEvent::Failed { .. } => FAILED,
            QueueEvent::DeadLettering { dlq_from: None, .. } => DEAD_LETTERING,
            QueueEvent::DeadLettering { .. } => DEAD_LETTERING_FROM,
            QueueEvent::DeadLettered {
                dlq_offset: None, ..
            } => DEAD_LETTERED,
            QueueEvent::DeadLettered { .. } => DEAD_LETTERED_AT,
            QueueEvent::Position { .. } => POSITION,
            QueueEvent::Entry { .. } => ENTRY,
        }
    }

    /// Decodes a record value; the whole value must be one event.
    pub fn decode(value: Bytes) -> Result<QueueEvent, DecodeError> {
        let mut r = Reader::internal(value);
        let kind = r.u8("queue event kind")?;
        let partition = r.u32("partition")?;
        let i64 = |r: &mut Reader, what| r.u64(what).map(|v| v as i64);
        let event = match kind {
            DELIVERED => QueueEvent::Delivered {
                partition,
                from: r.u64("from")?,
                to: r.u64("to")?,
                attempt: r.u32("attempt")?,
                at_ms: i64(&mut r, "at_ms")?,
                deadline_ms: i64(&mut r, "deadline_ms")?,
            },
            ACKED => QueueEvent::Acked {
                partition,
                offsets: r.array("acked offsets", 8, |r| r.u64("offset"))?,
            },
            FAILED => QueueEvent::Failed {
                partition,
                offset: r.u64("offset")?,
                due_ms: i64(&mut r, "due_ms")?,
                reason: read_reason(&mut r)?,
            },
            DEAD_LETTERING => QueueEvent::DeadLettering {
                partition,
                offset: r.u64("offset")?,
                reason: read_reason(&mut r)?,
                dlq_from: None,
            },
            DEAD_LETTERING_FROM => QueueEvent::DeadLettering {
                partition,
                offset: r.u64("offset")?,
                dlq_from: Some(r.u64("dlq_from")?),
                reason: read_reason(&mut r)?,
            },
            DEAD_LETTERED => QueueEvent::DeadLettered {
                partition,
                offset: r.u64("offset")?,
                dlq_offset: None,
            },
            DEAD_LETTERED_AT => QueueEvent::DeadLettered {
                partition,
                offset: r.u64("offset")?,
                dlq_offset: Some(r.u64("dlq_offset")?),
            },
            POSITION => QueueEvent::Position {
                partition,
                floor: r.u64("floor")?,
                read: r.u64("read")?,
                dead_lettered: r.u64("dead_lettered")?,
            },
            ENTRY => QueueEvent::Entry {
                partition,
                offset: r.u64("offset")?,
                attempts: r.u32("attempts")?,
                first_ms: i64(&mut r, "first_ms")?,
                last_ms: i64(&mut r, "last_ms")?,
            },
            other => {
                return Err(DecodeError::InvalidValue {
                    what: "queue event kind",
                    value: u64::from(other),
                })
            }
        };
        r.finish()?;
        Ok(event)
    }
}

/// A reason as written: never longer than [`MAX_REASON_BYTES`], so that whatever
/// decodes re-encodes to the same bytes.
fn read_reason(r: &mut Reader) -> Result<String, DecodeError> {
    let reason = r.string("reason")?;
    if reason.len() > MAX_REASON_BYTES {
        return Err(DecodeError::InvalidValue {
            what: "reason length",
            value: reason.len() as u64,
        });
    }
    Ok(reason)
}

/// One event of one queue group, as a record of `__queue_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRecord {
    /// The group.
    pub group: Arc<str>,
    /// The topic it consumes.
    pub topic: Arc<str>,
    /// What changed; `None` (a tombstone): everything before is forgotten.
    pub event: Option<QueueEvent>,
}

impl InternalRecord for QueueRecord {
    const TOPIC: &'static str = QUEUE_STATE_TOPIC;

    fn encode_key(&self, buf: &mut BytesMut) -> bool {
        buf.put_slice(self.group.as_bytes());
        buf.put_u8(0);
        buf.put_slice(self.topic.as_bytes());
        true
    }

    fn encode_value(&self, buf: &mut BytesMut) -> Result<bool, EncodeError> {
        match &self.event {
            Some(event) => event.encode(buf)?,
            None => return Ok(false),
        }
        Ok(true)
    }

    fn decode(key: Option<Bytes>, value: Option<Bytes>) -> Result<Self, DecodeError> {
        let invalid = DecodeError::InvalidValue {
            what: "queue state key",
            value: 0,
        };
        let key = key.ok_or(invalid.clone())?;
        let text = std::str::from_utf8(&key).map_err(|_| invalid.clone())?;
        let (group, topic) = text.split_once('\0').ok_or(invalid)?;
        Ok(QueueRecord {
            group: Arc::from(group),
            topic: Arc::from(topic),
            event: value.map(QueueEvent::decode).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(event: &QueueEvent) -> Bytes {
        let mut buf = BytesMut::new();
        event.encode(&mut buf).unwrap();
        buf.freeze()
    }

    proptest! {
        /// The decoder reads bytes from disk: any input gives an event or an error,
        /// never a panic, and whatever decodes re-encodes to the same bytes.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(event) = QueueEvent::decode(Bytes::copy_from_slice(&bytes)) {
                prop_assert_eq!(&encoded(&event)[..], &bytes[..]);
            }
        }
    }

    #[test]
    fn events_round_trip() {
        let events = [
            QueueEvent::Delivered {
                partition: 1,
                from: 2,
                to: 9,
                attempt: 3,
                at_ms: -4,
                deadline_ms: 5,
            },
            QueueEvent::Acked {
                partition: 0,
                offsets: vec![1, 5, 9],
            },
            QueueEvent::Failed {
                partition: 2,
                offset: 7,
                reason: "bad ✓".into(),
                due_ms: 99,
            },
            QueueEvent::DeadLettering {
                partition: 2,
                offset: 7,
                reason: String::new(),
                dlq_from: None,
            },
            QueueEvent::DeadLettering {
                partition: 2,
                offset: 7,
                reason: "out".into(),
                dlq_from: Some(40),
            },
            QueueEvent::DeadLettered {
                partition: 2,
                offset: 7,
                dlq_offset: None,
            },
            QueueEvent::DeadLettered {
                partition: 2,
                offset: 7,
                dlq_offset: Some(41),
            },
            QueueEvent::Position {
                partition: 3,
                floor: 1,
                read: 2,
                dead_lettered: 3,
            },
            QueueEvent::Entry {
                partition: 3,
                offset: 1,
                attempts: 2,
                first_ms: 3,
                last_ms: 4,
            },
        ];
        for event in events {
            assert_eq!(QueueEvent::decode(encoded(&event)).unwrap(), event);
            let record = QueueRecord {
                group: Arc::from("workers"),
                topic: Arc::from("jobs"),
                event: Some(event),
            };
            let (mut key, mut value) = (BytesMut::new(), BytesMut::new());
            assert!(record.encode_key(&mut key));
            assert!(record.encode_value(&mut value).unwrap());
            assert_eq!(&key[..], b"workers\0jobs");
            let decoded = QueueRecord::decode(Some(key.freeze()), Some(value.freeze()));
            assert_eq!(decoded.unwrap(), record);
        }
        assert!(QueueEvent::decode(Bytes::new()).is_err());
        assert!(
            QueueEvent::decode(Bytes::from_static(&[ACKED, 0, 0, 0, 0, 255, 255, 255, 255]))
                .is_err(),
            "absurd count"
        );
        let long = encoded(&QueueEvent::Failed {
            partition: 0,
            offset: 0,
            reason: "x".repeat(5000),
            due_ms: 0,
        });
        assert!(long.len() < 1100, "reasons are clipped");
        let mut trailing = BytesMut::from(&long[..]);
        trailing.put_u8(0);
        assert!(
            QueueEvent::decode(trailing.freeze()).is_err(),
            "trailing bytes"
        );
        assert!(QueueRecord::decode(Some(Bytes::from_static(b"no-nul")), Some(long)).is_err());
        let forgotten = QueueRecord {
            group: Arc::from("workers"),
            topic: Arc::from("jobs"),
            event: None,
        };
        let (mut key, mut value) = (BytesMut::new(), BytesMut::new());
        assert!(forgotten.encode_key(&mut key));
        assert!(!forgotten.encode_value(&mut value).unwrap(), "a tombstone");
        assert_eq!(
            QueueRecord::decode(Some(key.freeze()), None).unwrap(),
            forgotten
        );
    }
}
