//! The records of the broker's internal topics: how each is laid out as a record's
//! key and value.
//!
//! The broker keeps its own state (committed offsets, queue delivery state, the
//! service registry, routing rules, trace spans) on ordinary one-partition topics whose
//! names start with `__`. Every such topic holds one kind of record, described here by
//! an [`InternalRecord`]: the broker writes and replays them, and clients (brokerctl,
//! a service watching the registry) read the same bytes. Layouts are specified in
//! `docs/storage.md`, one section per topic.
//!
//! Like the rest of this crate, decoding never panics and never allocates more than
//! the bytes it was given justify: these records come from files.

pub mod offsets;
pub mod queue;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::ops::registry::{RegistryEvent, REGISTRY_TOPIC};
use crate::ops::routes::{RouteEvent, ROUTES_TOPIC};
use crate::ops::security::{AclEvent, UserEvent, ACLS_TOPIC, USERS_TOPIC};
use crate::trace::{Span, TRACES_TOPIC};

/// One kind of record of one internal topic.
pub trait InternalRecord: Sized {
    /// The internal topic these records live on.
    const TOPIC: &'static str;

    /// Appends the record's key to `buf`; `false` if the record has none.
    fn encode_key(&self, buf: &mut BytesMut) -> bool;

    /// Appends the record's value to `buf`; `false` for a tombstone (no value).
    fn encode_value(&self, buf: &mut BytesMut) -> Result<bool, EncodeError>;

    /// Reads a record from its key and value (zero-copy slices of a stored batch).
    fn decode(key: Option<Bytes>, value: Option<Bytes>) -> Result<Self, DecodeError>;
}

/// The value of a record that must have one.
fn required(value: Option<Bytes>, what: &'static str) -> Result<Bytes, DecodeError> {
    value.ok_or(DecodeError::Truncated {
        what,
        needed: 1,
        remaining: 0,
    })
}

impl InternalRecord for RegistryEvent {
    const TOPIC: &'static str = REGISTRY_TOPIC;

    /// `service 0x00 instance_id`, so a compaction or a watcher can tell instances
    /// apart without decoding the value.
    fn encode_key(&self, buf: &mut BytesMut) -> bool {
        let (service, instance) = self.instance();
        buf.put_slice(service.as_bytes());
        buf.put_u8(0);
        buf.put_slice(instance.as_bytes());
        true
    }

    fn encode_value(&self, buf: &mut BytesMut) -> Result<bool, EncodeError> {
        buf.put_slice(&self.encode()?);
        Ok(true)
    }

    fn decode(_key: Option<Bytes>, value: Option<Bytes>) -> Result<Self, DecodeError> {
        RegistryEvent::decode(required(value, "registry event")?)
    }
}

impl InternalRecord for RouteEvent {
    const TOPIC: &'static str = ROUTES_TOPIC;

    fn encode_key(&self, _buf: &mut BytesMut) -> bool {
        false
    }

    fn encode_value(&self, buf: &mut BytesMut) -> Result<bool, EncodeError> {
        buf.put_slice(&self.encode()?);
        Ok(true)
    }

    fn decode(_key: Option<Bytes>, value: Option<Bytes>) -> Result<Self, DecodeError> {
        RouteEvent::decode(required(value, "route event")?)
    }
}

impl InternalRecord for UserEvent {
    const TOPIC: &'static str = USERS_TOPIC;

    /// The user's name.
    fn encode_key(&self, buf: &mut BytesMut) -> bool {
        buf.put_slice(self.name().as_bytes());
        true
    }

    fn encode_value(&self, buf: &mut BytesMut) -> Result<bool, EncodeError> {
        buf.put_slice(&self.encode()?);
        Ok(true)
    }

    fn decode(_key: Option<Bytes>, value: Option<Bytes>) -> Result<Self, DecodeError> {
        UserEvent::decode(required(value, "user event")?)
    }
}

impl InternalRecord for AclEvent {
    const TOPIC: &'static str = ACLS_TOPIC;

    /// The binding's encoding.
    fn encode_key(&self, buf: &mut BytesMut) -> bool {
        // Only fails for strings over the wire limit, which a binding that got this
        // far cannot have; such a record is then written without a key.
        match self.binding().key() {
            Ok(key) => {
                buf.put_slice(&key);
                true
            }
            Err(_) => false,
        }
    }

    fn encode_value(&self, buf: &mut BytesMut) -> Result<bool, EncodeError> {
        buf.put_slice(&self.encode()?);
        Ok(true)
    }

    fn decode(_key: Option<Bytes>, value: Option<Bytes>) -> Result<Self, DecodeError> {
        AclEvent::decode(required(value, "acl event")?)
    }
}

impl InternalRecord for Span {
    const TOPIC: &'static str = TRACES_TOPIC;

    /// The trace id, so that one trace's spans can be found by key.
    fn encode_key(&self, buf: &mut BytesMut) -> bool {
        buf.put_slice(&self.trace_id);
        true
    }

    fn encode_value(&self, buf: &mut BytesMut) -> Result<bool, EncodeError> {
        buf.put_slice(&self.encode()?);
        Ok(true)
    }

    fn decode(_key: Option<Bytes>, value: Option<Bytes>) -> Result<Self, DecodeError> {
        Span::decode(required(value, "span")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::routes::RouteInfo;

    fn round_trip<R: InternalRecord + PartialEq + std::fmt::Debug>(record: &R) {
        let (mut key, mut value) = (BytesMut::new(), BytesMut::new());
        let has_key = record.encode_key(&mut key);
        let has_value = record.encode_value(&mut value).unwrap();
        let key = has_key.then(|| key.freeze());
        let value = has_value.then(|| value.freeze());
        assert_eq!(&R::decode(key, value).unwrap(), record);
    }

    #[test]
    fn registry_routes_and_spans_round_trip_through_their_records() {
        round_trip(&RegistryEvent::Heartbeat {
            service: "billing".into(),
            instance_id: "b-1".into(),
            at_ms: 7,
        });
        round_trip(&RouteEvent::Added(RouteInfo {
            route_id: 3,
            pattern: "orders.#".into(),
            topic: "all".into(),
            headers: vec![],
        }));
        round_trip(&Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_id: [3; 8],
            name: "ack".into(),
            start_us: 10,
            duration_us: 0,
            attributes: vec![("topic".into(), "t".into())],
        });
        assert!(RegistryEvent::decode_record_without_value().is_err());
    }

    impl RegistryEvent {
        fn decode_record_without_value() -> Result<RegistryEvent, DecodeError> {
            <RegistryEvent as InternalRecord>::decode(Some(Bytes::from_static(b"a\0b")), None)
        }
    }
}
