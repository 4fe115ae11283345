//! Committed offsets and group records on `__consumer_offsets`.
//!
//! Two kinds of record share the topic, told apart by their key (like Kafka's offset
//! and group-metadata keys on its `__consumer_offsets`):
//!
//! * a committed offset ([`OffsetRecord`]): key `group 0x00 topic 0x00 partition`
//!   (the partition in decimal), value the next offset to consume as a `u64`
//!   little-endian, then, only when the commit carried one, its metadata string (a
//!   Kafka client's `OffsetAndMetadata`; a `u16`-prefixed UTF-8 string): a value of
//!   8 bytes has none, as every record written before metadata was kept;
//! * a group ([`GroupRecord`]): key `group 0x00 topic` (one separator, not two),
//!   value the group's mode (`u8`: 0 stream, 1 queue) and the settings its join
//!   overrode (a `u32` count of `key`, `value` strings).
//!
//! A record without a value deletes the commit or the group. The last record for a
//! key wins.

use bytes::{BufMut, Bytes, BytesMut};

use super::InternalRecord;
use crate::error::{DecodeError, EncodeError};
use crate::ops::group::GroupMode;
use crate::ops::topic::{put_config, read_config, ConfigEntry};
use crate::wire::{self, Reader};

/// Name of the internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// One committed offset of one partition, for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRecord {
    /// The group.
    pub group: String,
    /// The topic it consumes.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// The next offset the group reads; `None` deletes the commit.
    pub offset: Option<u64>,
    /// What the committer stored beside the offset (Kafka's offset metadata); empty
    /// for none. A commit replaces it, as on Kafka.
    pub metadata: String,
}

/// What a group is, as its last join made it: persisted so that a restart keeps the
/// group's mode and the settings its join overrode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSettings {
    /// Stream or queue.
    pub mode: GroupMode,
    /// The queue settings the join overrode (empty for stream groups), as given.
    pub config: Vec<ConfigEntry>,
}

/// A group of a topic, created or changed (`settings`) or deleted (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// The group.
    pub group: String,
    /// The topic it consumes.
    pub topic: String,
    /// What the group is; `None` deletes it.
    pub settings: Option<GroupSettings>,
}

/// One record of `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    /// A committed offset.
    Offset(OffsetRecord),
    /// A group's mode and settings.
    Group(GroupRecord),
}

impl InternalRecord for OffsetsRecord {
    const TOPIC: &'static str = OFFSETS_TOPIC;

    fn encode_key(&self, buf: &mut BytesMut) -> bool {
        let (group, topic) = match self {
            OffsetsRecord::Offset(r) => (&r.group, &r.topic),
            OffsetsRecord::Group(r) => (&r.group, &r.topic),
        };
        buf.put_slice(group.as_bytes());
        buf.put_u8(0);
        buf.put_slice(topic.as_bytes());
        if let OffsetsRecord::Offset(r) = self {
            buf.put_u8(0);
            buf.put_slice(r.partition.to_string().as_bytes());
        }
        true
    }

    fn encode_value(&self, buf: &mut BytesMut) -> Result<bool, EncodeError> {
        match self {
            OffsetsRecord::Offset(OffsetRecord {
                offset: Some(offset),
                metadata,
                ..
            }) => {
                buf.put_u64_le(*offset);
                if !metadata.is_empty() {
                    wire::put_string(buf, "offset metadata", metadata)?;
                }
            }
            OffsetsRecord::Group(GroupRecord {
                settings: Some(settings),
                ..
            }) => {
                settings.mode.encode(buf);
                put_config(buf, &settings.config)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn decode(key: Option<Bytes>, value: Option<Bytes>) -> Result<Self, DecodeError> {
        let invalid = |what| DecodeError::InvalidValue { what, value: 0 };
        let key = key.ok_or(invalid("offset record key"))?;
        let text = std::str::from_utf8(&key).map_err(|_| invalid("offset record key"))?;
        let mut parts = text.split('\0');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(group), Some(topic), None, None) => {
                let settings = value.map(decode_settings).transpose()?;
                Ok(OffsetsRecord::Group(GroupRecord {
                    group: group.into(),
                    topic: topic.into(),
                    settings,
                }))
            }
            (Some(group), Some(topic), Some(partition), None) => {
                decode_offset(group, topic, partition, value).map(OffsetsRecord::Offset)
            }
            _ => Err(invalid("offset record key")),
        }
    }
}

fn decode_settings(value: Bytes) -> Result<GroupSettings, DecodeError> {
    let mut r = Reader::internal(value);
    let mode = GroupMode::decode(&mut r)?;
    let config = read_config(&mut r)?;
    r.finish()?;
    Ok(GroupSettings { mode, config })
}

fn decode_offset(
    group: &str,
    topic: &str,
    partition: &str,
    value: Option<Bytes>,
) -> Result<OffsetRecord, DecodeError> {
    let invalid = |what| DecodeError::InvalidValue { what, value: 0 };
    let partition = partition
        .parse()
        .map_err(|_| invalid("offset record partition"))?;
    let (offset, metadata) = match value {
        None => (None, String::new()),
        Some(value) => {
            let mut r = Reader::internal(value);
            let offset = r.u64("committed offset")?;
            let metadata = if r.is_empty() {
                String::new()
            } else {
                r.string("offset metadata")?
            };
            r.finish()?;
            (Some(offset), metadata)
        }
    };
    Ok(OffsetRecord {
        group: group.into(),
        topic: topic.into(),
        partition,
        offset,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(key: &[u8], value: Option<&[u8]>) -> Result<OffsetsRecord, DecodeError> {
        OffsetsRecord::decode(
            Some(Bytes::copy_from_slice(key)),
            value.map(Bytes::copy_from_slice),
        )
    }

    fn encoded(record: &OffsetsRecord) -> (Vec<u8>, Option<Vec<u8>>) {
        let (mut key, mut value) = (BytesMut::new(), BytesMut::new());
        assert!(record.encode_key(&mut key));
        let has_value = record.encode_value(&mut value).unwrap();
        (key.to_vec(), has_value.then(|| value.to_vec()))
    }

    #[test]
    fn offset_records_round_trip_and_bad_keys_are_refused() {
        for offset in [Some(12), None] {
            let record = OffsetsRecord::Offset(OffsetRecord {
                group: "g".into(),
                topic: "t.x".into(),
                partition: 12,
                offset,
                metadata: String::new(),
            });
            let (key, value) = encoded(&record);
            assert_eq!(&key[..], b"g\x00t.x\x0012");
            assert_eq!(decode(&key, value.as_deref()).unwrap(), record);
        }
        assert!(decode(b"a\0b\0x", Some(&[0; 8])).is_err());
        assert!(decode(b"a\x00b\x001\x00", Some(&[0; 8])).is_err());
        assert!(decode(b"a\x00b\x001", Some(&[0; 7])).is_err());
        assert!(decode(b"ab", Some(&[0; 8])).is_err(), "no separator");
        assert!(OffsetsRecord::decode(None, Some(Bytes::from_static(&[0; 8]))).is_err());
    }

    #[test]
    fn offset_metadata_follows_the_offset_only_when_there_is_some() {
        let record = OffsetsRecord::Offset(OffsetRecord {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            offset: Some(7),
            metadata: "ü".into(),
        });
        let (key, value) = encoded(&record);
        let expected: &[u8] = &[7, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0xc3, 0xbc];
        assert_eq!(value.as_deref(), Some(expected));
        assert_eq!(decode(&key, value.as_deref()).unwrap(), record);
        // A record written before metadata was kept: 8 bytes, none.
        let OffsetsRecord::Offset(old) = decode(&key, Some(&[7, 0, 0, 0, 0, 0, 0, 0])).unwrap()
        else {
            panic!("an offset record");
        };
        assert_eq!((old.offset, old.metadata.as_str()), (Some(7), ""));
        let torn: &[u8] = &[7, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0xc3];
        assert!(decode(&key, Some(torn)).is_err(), "metadata cut short");
        let bad: &[u8] = &[7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0xff];
        assert!(decode(&key, Some(bad)).is_err(), "not UTF-8");
        let long = "m".repeat(wire::MAX_STRING_BYTES + 1);
        let too_long = OffsetsRecord::Offset(OffsetRecord {
            metadata: long,
            ..match record {
                OffsetsRecord::Offset(r) => r,
                OffsetsRecord::Group(_) => unreachable!(),
            }
        });
        assert!(too_long.encode_value(&mut BytesMut::new()).is_err());
    }

    #[test]
    fn group_records_round_trip_with_the_layout_of_storage_md() {
        let record = OffsetsRecord::Group(GroupRecord {
            group: "g".into(),
            topic: "jobs".into(),
            settings: Some(GroupSettings {
                mode: GroupMode::Queue,
                config: vec![ConfigEntry {
                    key: "k".into(),
                    value: "3".into(),
                }],
            }),
        });
        let (key, value) = encoded(&record);
        assert_eq!(&key[..], b"g\x00jobs");
        let expected: &[u8] = &[1, 1, 0, 0, 0, 1, 0, b'k', 1, 0, b'3'];
        assert_eq!(value.as_deref(), Some(expected));
        assert_eq!(decode(&key, value.as_deref()).unwrap(), record);
        let deleted = OffsetsRecord::Group(GroupRecord {
            group: "g".into(),
            topic: "jobs".into(),
            settings: None,
        });
        assert_eq!(encoded(&deleted).1, None, "a deletion is a tombstone");
        assert_eq!(decode(&key, None).unwrap(), deleted);
        assert!(
            decode(&key, Some(&[2, 0, 0, 0, 0])).is_err(),
            "unknown mode"
        );
        assert!(decode(&key, Some(&[0, 0, 0, 0, 0, 9])).is_err(), "trailing");
    }

    proptest! {
        /// Keys and values come from a file: any bytes decode or fail, never panic.
        #[test]
        fn arbitrary_records_never_panic(
            key in proptest::collection::vec(any::<u8>(), 0..40),
            value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        ) {
            let _ = decode(&key, value.as_deref());
        }
    }
}
