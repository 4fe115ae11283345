//! Committed offsets on `__consumer_offsets`.
//!
//! One record per committed partition: key `group 0x00 topic 0x00 partition` (the
//! partition in decimal), value the next offset to consume as a `u64` little-endian.
//! A record without a value deletes the commit. The last record for a key wins.

use bytes::{BufMut, Bytes, BytesMut};

use super::InternalRecord;
use crate::error::{DecodeError, EncodeError};

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
}

impl InternalRecord for OffsetRecord {
    const TOPIC: &'static str = OFFSETS_TOPIC;

    fn encode_key(&self, buf: &mut BytesMut) -> bool {
        buf.put_slice(self.group.as_bytes());
        buf.put_u8(0);
        buf.put_slice(self.topic.as_bytes());
        buf.put_u8(0);
        buf.put_slice(self.partition.to_string().as_bytes());
        true
    }

    fn encode_value(&self, buf: &mut BytesMut) -> Result<bool, EncodeError> {
        match self.offset {
            Some(offset) => {
                buf.put_u64_le(offset);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn decode(key: Option<Bytes>, value: Option<Bytes>) -> Result<Self, DecodeError> {
        let invalid = |what| DecodeError::InvalidValue { what, value: 0 };
        let key = key.ok_or(invalid("offset record key"))?;
        let text = std::str::from_utf8(&key).map_err(|_| invalid("offset record key"))?;
        let mut parts = text.split('\0');
        let (Some(group), Some(topic), Some(partition), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("offset record key"));
        };
        let partition = partition
            .parse()
            .map_err(|_| invalid("offset record partition"))?;
        let offset = match value {
            None => None,
            Some(value) => {
                let bytes =
                    <[u8; 8]>::try_from(&value[..]).map_err(|_| DecodeError::Truncated {
                        what: "committed offset",
                        needed: 8,
                        remaining: value.len(),
                    })?;
                Some(u64::from_le_bytes(bytes))
            }
        };
        Ok(OffsetRecord {
            group: group.into(),
            topic: topic.into(),
            partition,
            offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(key: &[u8], value: Option<&[u8]>) -> Result<OffsetRecord, DecodeError> {
        OffsetRecord::decode(
            Some(Bytes::copy_from_slice(key)),
            value.map(Bytes::copy_from_slice),
        )
    }

    #[test]
    fn records_round_trip_and_bad_keys_are_refused() {
        for offset in [Some(12), None] {
            let record = OffsetRecord {
                group: "g".into(),
                topic: "t.x".into(),
                partition: 12,
                offset,
            };
            let (mut key, mut value) = (BytesMut::new(), BytesMut::new());
            assert!(record.encode_key(&mut key));
            let has_value = record.encode_value(&mut value).unwrap();
            assert_eq!(&key[..], b"g\x00t.x\x0012");
            let value = has_value.then(|| &value[..]);
            assert_eq!(decode(&key, value).unwrap(), record);
        }
        assert!(decode(b"a\0b", Some(&[0; 8])).is_err());
        assert!(decode(b"a\0b\0x", Some(&[0; 8])).is_err());
        assert!(decode(b"a\x00b\x001\x00", Some(&[0; 8])).is_err());
        assert!(decode(b"a\x00b\x001", Some(&[0; 7])).is_err());
        assert!(OffsetRecord::decode(None, Some(Bytes::from_static(&[0; 8]))).is_err());
    }

    proptest! {
        /// Keys and values come from a file: any bytes decode or fail, never panic.
        #[test]
        fn arbitrary_records_never_panic(
            key in proptest::collection::vec(any::<u8>(), 0..40),
            value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
        ) {
            let _ = decode(&key, value.as_deref());
        }
    }
}
