//! Routing rules and publishing by routing key.
//!
//! A rule binds a routing-key pattern (AMQP topic-exchange wildcards: words separated
//! by `.`, `*` one word, `#` zero or more words) and optional header matches to a
//! destination topic. Publish appends its batch to every topic with a matching rule,
//! once per topic. Rules are stored as [`RouteEvent`] records on the internal topic
//! `__routes`.

use bytes::{BufMut, Bytes, BytesMut};

use super::produce::AckLevel;
use super::topic::{put_config, read_config, ConfigEntry};
use super::Body;
use crate::batch::BatchView;
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader, MIN_ARRAY_BYTES, MIN_STRING_BYTES};

/// Name of the internal topic holding routing rules.
pub const ROUTES_TOPIC: &str = "__routes";

/// Creates a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AddRouteRequest {
    /// Routing-key pattern, e.g. `orders.*.eu` or `orders.#`.
    pub pattern: String,
    /// Destination topic.
    pub topic: String,
    /// Header matches: all must equal the publish's routing headers.
    pub headers: Vec<ConfigEntry>,
}

/// The new rule's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AddRouteResponse {
    /// Rule id.
    pub route_id: u64,
}

/// Deletes a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DeleteRouteRequest {
    /// Rule id.
    pub route_id: u64,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct RouteInfo {
    /// Rule id.
    pub route_id: u64,
    /// Pattern.
    pub pattern: String,
    /// Destination topic.
    pub topic: String,
    /// Header matches.
    pub headers: Vec<ConfigEntry>,
}

/// Every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ListRoutesResponse {
    /// Rules, by id.
    pub routes: Vec<RouteInfo>,
}

/// Publishes one batch by routing key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PublishRequest {
    /// Routing key, words separated by `.`.
    pub routing_key: String,
    /// Headers that rules' header matches are checked against.
    pub headers: Vec<ConfigEntry>,
    /// Acknowledgement level, as for Produce.
    pub ack: AckLevel,
    /// How long the broker may wait for `ack`.
    pub timeout_ms: u32,
    /// Exactly one record batch, as for Produce.
    #[cfg_attr(test, proptest(strategy = "crate::proptests::batch()"))]
    pub batch: Bytes,
}

/// Where a published batch went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Routed {
    /// Topic.
    pub topic: String,
    /// Partition (chosen round-robin).
    pub partition: u32,
    /// Offset of the batch's first record; absent for ack none.
    pub base_offset: Option<u64>,
}

/// Every topic the batch was appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PublishResponse {
    /// One entry per destination topic.
    pub routed: Vec<Routed>,
}

/// A change of the rules, as stored on `__routes` (value of a record).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum RouteEvent {
    /// A rule was added (tag 1).
    Added(RouteInfo),
    /// A rule was deleted (tag 2).
    Deleted {
        /// Rule id.
        route_id: u64,
    },
}

fn put_route(buf: &mut BytesMut, route: &RouteInfo) -> Result<(), EncodeError> {
    buf.put_u64_le(route.route_id);
    wire::put_string(buf, "pattern", &route.pattern)?;
    wire::put_string(buf, "topic", &route.topic)?;
    put_config(buf, &route.headers)
}

fn read_route(r: &mut Reader) -> Result<RouteInfo, DecodeError> {
    Ok(RouteInfo {
        route_id: r.u64("route_id")?,
        pattern: r.string("pattern")?,
        topic: r.string("topic")?,
        headers: read_config(r)?,
    })
}

impl RouteEvent {
    /// Encodes as a record value.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        match self {
            RouteEvent::Added(route) => {
                buf.put_u8(1);
                put_route(&mut buf, route)?;
            }
            RouteEvent::Deleted { route_id } => {
                buf.put_u8(2);
                buf.put_u64_le(*route_id);
            }
        }
        Ok(buf.freeze())
    }

    /// Decodes a record value.
    pub fn decode(bytes: Bytes) -> Result<RouteEvent, DecodeError> {
        let mut r = Reader::internal(bytes);
        let event = match r.u8("route event")? {
            1 => RouteEvent::Added(read_route(&mut r)?),
            2 => RouteEvent::Deleted {
                route_id: r.u64("route_id")?,
            },
            other => {
                return Err(DecodeError::InvalidValue {
                    what: "route event",
                    value: u64::from(other),
                })
            }
        };
        r.finish()?;
        Ok(event)
    }
}

impl Body for AddRouteRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "pattern", &self.pattern)?;
        wire::put_string(buf, "topic", &self.topic)?;
        put_config(buf, &self.headers)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AddRouteRequest {
            pattern: r.string("pattern")?,
            topic: r.string("topic")?,
            headers: read_config(r)?,
        })
    }
}

impl Body for AddRouteResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u64_le(self.route_id);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AddRouteResponse {
            route_id: r.u64("route_id")?,
        })
    }
}

impl Body for DeleteRouteRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u64_le(self.route_id);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DeleteRouteRequest {
            route_id: r.u64("route_id")?,
        })
    }
}

impl Body for ListRoutesResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_array(buf, "routes", &self.routes, put_route)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ListRoutesResponse {
            routes: r.array(
                "routes",
                8 + 2 * MIN_STRING_BYTES + MIN_ARRAY_BYTES,
                read_route,
            )?,
        })
    }
}

impl Body for PublishRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "routing_key", &self.routing_key)?;
        put_config(buf, &self.headers)?;
        self.ack.encode(buf);
        buf.put_u32_le(self.timeout_ms);
        wire::put_bytes(buf, "batch", &self.batch)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let routing_key = r.string("routing_key")?;
        let headers = read_config(r)?;
        let ack = AckLevel::decode(r)?;
        let timeout_ms = r.u32("timeout_ms")?;
        let batch = r.bytes("batch")?;
        BatchView::new(&batch).and_then(|view| view.validate())?;
        Ok(PublishRequest {
            routing_key,
            headers,
            ack,
            timeout_ms,
            batch,
        })
    }
}

impl Body for PublishResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_array(buf, "routed", &self.routed, |b, routed| {
            wire::put_string(b, "topic", &routed.topic)?;
            b.put_u32_le(routed.partition);
            wire::put_option(b, routed.base_offset.as_ref(), |b, o| {
                b.put_u64_le(*o);
                Ok(())
            })
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let routed = r.array("routed", MIN_STRING_BYTES + 4 + 1, |r| {
            Ok(Routed {
                topic: r.string("topic")?,
                partition: r.u32("partition")?,
                base_offset: r.option("base_offset", |r| r.u64("base_offset"))?,
            })
        })?;
        Ok(PublishResponse { routed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn route_events_round_trip(event in any::<RouteEvent>()) {
            prop_assert_eq!(RouteEvent::decode(event.encode().unwrap()).unwrap(), event);
        }

        #[test]
        fn route_event_decoding_survives_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = RouteEvent::decode(Bytes::from(bytes));
        }
    }
}
