//! Distributed tracing: W3C Trace Context (`traceparent` headers) and the span
//! records the broker writes to its internal topic `__traces`.
//!
//! A message carrying a `traceparent` header is traced: the broker keeps the header
//! (it is part of the record), and records a span for each thing it does to the
//! message. Span ids are derived from the trace id and what the span is about
//! ([`derived_span_id`]), so later stages (a redelivery, a dead letter) can name their
//! parent without the broker storing anything per message.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader, MIN_STRING_BYTES};

/// Name of the internal topic holding spans.
pub const TRACES_TOPIC: &str = "__traces";
/// The header that carries the trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// A parsed `traceparent` header value: `00-<trace id>-<parent span id>-<flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// 16-byte trace id (not all zero).
    pub trace_id: [u8; 16],
    /// 8-byte id of the span that sent the message (not all zero).
    pub parent_id: [u8; 8],
    /// The `sampled` flag.
    pub sampled: bool,
}

fn hex_to<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TraceParent {
    /// Parses a header value; `None` if it is not a valid version-00 traceparent.
    pub fn parse(value: &[u8]) -> Option<TraceParent> {
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.trim().split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let trace_id = hex_to::<16>(trace)?;
        let parent_id = hex_to::<8>(parent)?;
        let flags = hex_to::<1>(flags)?[0];
        if trace_id == [0; 16]
            || parent_id == [0; 8]
            || trace.chars().any(|c| c.is_ascii_uppercase())
        {
            return None;
        }
        Some(TraceParent {
            trace_id,
            parent_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The header value.
    pub fn to_header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.parent_id),
            u8::from(self.sampled)
        )
    }

    /// The same trace, continued from span `span_id`.
    pub fn child(&self, span_id: [u8; 8]) -> TraceParent {
        TraceParent {
            parent_id: span_id,
            ..*self
        }
    }
}

/// A span id derived from the trace id and what the span is about: the same inputs
/// always give the same id, and the id is never all zero.
pub fn derived_span_id(trace_id: &[u8; 16], parts: &[&[u8]]) -> [u8; 8] {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET;
    for byte in trace_id
        .iter()
        .chain(parts.iter().flat_map(|p| p.iter().chain(&[0xff])))
    {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME);
    }
    (hash.max(1)).to_be_bytes()
}

/// One span, as stored on `__traces` (record key: the trace id, value: this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Trace id.
    pub trace_id: [u8; 16],
    /// This span's id.
    pub span_id: [u8; 8],
    /// The parent span's id (the producer's span for the first broker span).
    pub parent_id: [u8; 8],
    /// What happened: `produce`, `append`, `durable`, `route`, `deliver`, `ack`,
    /// `nack`, `retry`, `dead-letter`.
    pub name: String,
    /// Start, µs since the epoch.
    pub start_us: u64,
    /// Duration, µs.
    pub duration_us: u64,
    /// Attributes: topic, partition, offset, group, attempt, reason...
    pub attributes: Vec<(String, String)>,
}

impl Span {
    /// Encodes as a record value.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        buf.put_slice(&self.trace_id);
        buf.put_slice(&self.span_id);
        buf.put_slice(&self.parent_id);
        wire::put_string(&mut buf, "span name", &self.name)?;
        buf.put_u64_le(self.start_us);
        buf.put_u64_le(self.duration_us);
        wire::put_array(&mut buf, "attributes", &self.attributes, |b, (k, v)| {
            wire::put_string(b, "attribute key", k)?;
            wire::put_string(b, "attribute value", v)
        })?;
        Ok(buf.freeze())
    }

    /// Decodes a record value.
    pub fn decode(bytes: Bytes) -> Result<Span, DecodeError> {
        let mut r = Reader::internal(bytes);
        let mut id = |n: usize| -> Result<Vec<u8>, DecodeError> {
            (0..n).map(|_| r.u8("span id")).collect()
        };
        let trace = id(16)?;
        let span = id(8)?;
        let parent = id(8)?;
        let to16 = |v: Vec<u8>| {
            <[u8; 16]>::try_from(v).map_err(|_| DecodeError::InvalidValue {
                what: "trace id",
                value: 0,
            })
        };
        let to8 = |v: Vec<u8>| {
            <[u8; 8]>::try_from(v).map_err(|_| DecodeError::InvalidValue {
                what: "span id",
                value: 0,
            })
        };
        let span = Span {
            trace_id: to16(trace)?,
            span_id: to8(span)?,
            parent_id: to8(parent)?,
            name: r.string("span name")?,
            start_us: r.u64("start_us")?,
            duration_us: r.u64("duration_us")?,
            attributes: r.array("attributes", 2 * MIN_STRING_BYTES, |r| {
                Ok((r.string("attribute key")?, r.string("attribute value")?))
            })?,
        };
        r.finish()?;
        Ok(span)
    }

    /// The value of an attribute.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn traceparent_parses_the_w3c_example() {
        let value = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse(value).unwrap();
        assert!(parsed.sampled);
        assert_eq!(parsed.to_header().as_bytes(), value);
        for bad in [
            &b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..],
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            b"garbage",
        ] {
            assert_eq!(
                TraceParent::parse(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let trace = [7u8; 16];
        let a = derived_span_id(&trace, &[b"deliver", b"1"]);
        assert_eq!(a, derived_span_id(&trace, &[b"deliver", b"1"]));
        assert_ne!(a, derived_span_id(&trace, &[b"deliver", b"2"]));
        assert_ne!(
            derived_span_id(&trace, &[b"ab", b"c"]),
            derived_span_id(&trace, &[b"a", b"bc"])
        );
    }

    proptest! {
        #[test]
        fn spans_round_trip(name in "[a-z-]{0,12}", start in any::<u64>(), attrs in proptest::collection::vec(("[a-z]{0,5}", "\\PC{0,8}"), 0..4)) {
            let span = Span { trace_id: [1; 16], span_id: [2; 8], parent_id: [3; 8], name, start_us: start, duration_us: 5, attributes: attrs };
            prop_assert_eq!(Span::decode(span.encode().unwrap()).unwrap(), span);
        }

        #[test]
        fn span_decoding_and_traceparent_parsing_survive_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Span::decode(Bytes::from(bytes.clone()));
            let _ = TraceParent::parse(&bytes);
        }
    }
}
