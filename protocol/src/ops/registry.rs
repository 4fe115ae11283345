//! Service registry: instances register with a TTL and heartbeat; clients discover
//! healthy instances. Every change is also a [`RegistryEvent`] record on the internal
//! topic `__registry`, which is how clients watch a service (tail the topic and
//! decode its values with [`RegistryEvent::decode`]).

use bytes::{BufMut, Bytes, BytesMut};

use super::topic::{put_config, read_config, ConfigEntry};
use super::Body;
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader, MIN_STRING_BYTES};

/// Header (value `1`) on `__registry` records that a compaction rewrote: the live
/// view restated, not new registrations. Watchers skip them.
pub const SNAPSHOT_HEADER: &str = "registry.snapshot";

/// Name of the internal topic holding registry events.
pub const REGISTRY_TOPIC: &str = "__registry";

/// Registers (or re-registers) a service instance.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RegisterRequest {
    /// Service name.
    pub service: String,
    /// Instance id, unique within the service.
    pub instance_id: String,
    /// Where the instance is reached, e.g. `10.0.0.7:8080`.
    pub address: String,
    /// Tags (`key=value`), for filtering.
    pub tags: Vec<ConfigEntry>,
    /// The instance is expired if no heartbeat arrives for this long.
    pub ttl_ms: u32,
}

/// Names one instance (heartbeat, deregister).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct InstanceRequest {
    /// Service name.
    pub service: String,
    /// Instance id.
    pub instance_id: String,
}

/// One service and its healthy instance count.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ServiceSummary {
    /// Service name.
    pub service: String,
    /// Healthy (registered, not expired) instances.
    pub instances: u32,
}

/// Every service with healthy instances.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ListServicesResponse {
    /// Services, by name.
    pub services: Vec<ServiceSummary>,
}

/// Asks for a service's healthy instances, optionally only those with all the tags.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DescribeServiceRequest {
    /// Service name.
    pub service: String,
    /// Required tags (`key=value`, all must match).
    pub tags: Vec<ConfigEntry>,
}

/// One healthy instance.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct InstanceInfo {
    /// Instance id.
    pub instance_id: String,
    /// Address.
    pub address: String,
    /// Tags.
    pub tags: Vec<ConfigEntry>,
    /// Its TTL.
    pub ttl_ms: u32,
    /// Milliseconds since its last heartbeat (or registration).
    pub since_heartbeat_ms: u64,
}

/// A service's healthy instances.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DescribeServiceResponse {
    /// Instances, by id.
    pub instances: Vec<InstanceInfo>,
}

/// One change in the registry, as stored on `__registry` (record key
/// `service 0x00 instance_id`, value this encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum RegistryEvent {
    /// Registered (tag 1): address, tags, ttl.
    Registered {
        /// Service name.
        service: String,
        /// Instance id.
        instance_id: String,
        /// Address.
        address: String,
        /// Tags.
        tags: Vec<ConfigEntry>,
        /// TTL, ms.
        ttl_ms: u32,
        /// When, ms since the epoch.
        at_ms: u64,
    },
    /// A heartbeat arrived (tag 2).
    Heartbeat {
        /// Service name.
        service: String,
        /// Instance id.
        instance_id: String,
        /// When.
        at_ms: u64,
    },
    /// No heartbeat for longer than the TTL (tag 3).
    Expired {
        /// Service name.
        service: String,
        /// Instance id.
        instance_id: String,
        /// When.
        at_ms: u64,
    },
    /// The instance deregistered itself (tag 4).
    Deregistered {
        /// Service name.
        service: String,
        /// Instance id.
        instance_id: String,
        /// When.
        at_ms: u64,
    },
}

impl RegistryEvent {
    /// Service and instance the event is about.
    pub fn instance(&self) -> (&str, &str) {
        match self {
            RegistryEvent::Registered {
                service,
                instance_id,
                ..
            }
            | RegistryEvent::Heartbeat {
                service,
                instance_id,
                ..
            }
            | RegistryEvent::Expired {
                service,
                instance_id,
                ..
            }
            | RegistryEvent::Deregistered {
                service,
                instance_id,
                ..
            } => (service, instance_id),
        }
    }

    /// Encodes as a record value.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        let (tag, at_ms) = match self {
            RegistryEvent::Registered { at_ms, .. } => (1, at_ms),
            RegistryEvent::Heartbeat { at_ms, .. } => (2, at_ms),
            RegistryEvent::Expired { at_ms, .. } => (3, at_ms),
            RegistryEvent::Deregistered { at_ms, .. } => (4, at_ms),
        };
        buf.put_u8(tag);
        let (service, instance_id) = self.instance();
        wire::put_string(&mut buf, "service", service)?;
        wire::put_string(&mut buf, "instance_id", instance_id)?;
        buf.put_u64_le(*at_ms);
        if let RegistryEvent::Registered {
            address,
            tags,
            ttl_ms,
            ..
        } = self
        {
            wire::put_string(&mut buf, "address", address)?;
            put_config(&mut buf, tags)?;
            buf.put_u32_le(*ttl_ms);
        }
        Ok(buf.freeze())
    }

    /// Decodes a record value.
    pub fn decode(bytes: Bytes) -> Result<RegistryEvent, DecodeError> {
        let mut r = Reader::internal(bytes);
        let tag = r.u8("registry event")?;
        let service = r.string("service")?;
        let instance_id = r.string("instance_id")?;
        let at_ms = r.u64("at_ms")?;
        let event = match tag {
            1 => RegistryEvent::Registered {
                service,
                instance_id,
                at_ms,
                address: r.string("address")?,
                tags: read_config(&mut r)?,
                ttl_ms: r.u32("ttl_ms")?,
            },
            2 => RegistryEvent::Heartbeat {
                service,
                instance_id,
                at_ms,
            },
            3 => RegistryEvent::Expired {
                service,
                instance_id,
                at_ms,
            },
            4 => RegistryEvent::Deregistered {
                service,
                instance_id,
                at_ms,
            },
            other => {
                return Err(DecodeError::InvalidValue {
                    what: "registry event",
                    value: u64::from(other),
                })
            }
        };
        r.finish()?;
        Ok(event)
    }
}

impl Body for RegisterRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "service", &self.service)?;
        wire::put_string(buf, "instance_id", &self.instance_id)?;
        wire::put_string(buf, "address", &self.address)?;
        put_config(buf, &self.tags)?;
        buf.put_u32_le(self.ttl_ms);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(RegisterRequest {
            service: r.string("service")?,
            instance_id: r.string("instance_id")?,
            address: r.string("address")?,
            tags: read_config(r)?,
            ttl_ms: r.u32("ttl_ms")?,
        })
    }
}

impl Body for InstanceRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "service", &self.service)?;
        wire::put_string(buf, "instance_id", &self.instance_id)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(InstanceRequest {
            service: r.string("service")?,
            instance_id: r.string("instance_id")?,
        })
    }
}

impl Body for ListServicesResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_array(buf, "services", &self.services, |b, s| {
            wire::put_string(b, "service", &s.service)?;
            b.put_u32_le(s.instances);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let services = r.array("services", MIN_STRING_BYTES + 4, |r| {
            Ok(ServiceSummary {
                service: r.string("service")?,
                instances: r.u32("instances")?,
            })
        })?;
        Ok(ListServicesResponse { services })
    }
}

impl Body for DescribeServiceRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "service", &self.service)?;
        put_config(buf, &self.tags)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DescribeServiceRequest {
            service: r.string("service")?,
            tags: read_config(r)?,
        })
    }
}

impl Body for DescribeServiceResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_array(buf, "instances", &self.instances, |b, i| {
            wire::put_string(b, "instance_id", &i.instance_id)?;
            wire::put_string(b, "address", &i.address)?;
            put_config(b, &i.tags)?;
            b.put_u32_le(i.ttl_ms);
            b.put_u64_le(i.since_heartbeat_ms);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let instances = r.array("instances", 2 * MIN_STRING_BYTES + 4 + 4 + 8, |r| {
            Ok(InstanceInfo {
                instance_id: r.string("instance_id")?,
                address: r.string("address")?,
                tags: read_config(r)?,
                ttl_ms: r.u32("ttl_ms")?,
                since_heartbeat_ms: r.u64("since_heartbeat_ms")?,
            })
        })?;
        Ok(DescribeServiceResponse { instances })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn registry_events_round_trip(event in any::<RegistryEvent>()) {
            let bytes = event.encode().unwrap();
            prop_assert_eq!(RegistryEvent::decode(bytes).unwrap(), event);
        }

        #[test]
        fn registry_event_decoding_survives_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = RegistryEvent::decode(Bytes::from(bytes));
        }
    }
}
