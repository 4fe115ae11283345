//! From the broker's spans (as stored on `__traces`) to OTLP's: pure.
//!
//! Ids pass through unchanged: a span's trace id is its message's, its parent is the
//! producer's span (for the broker's first span of a message) or another broker span
//! whose id `traces::ids` derives the same way, so a backend joins the producer's,
//! the broker's and the consumers' spans into one tree. Attributes with an
//! OpenTelemetry messaging convention get its name (`messaging.destination.name`...);
//! the rest keep theirs below `brokerd.`; counts and offsets are integers.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use protocol::trace::Span as BrokerSpan;

/// The instrumentation scope every exported span is in.
pub const SCOPE_NAME: &str = "brokerd";
/// `messaging.system` of every span.
pub const MESSAGING_SYSTEM: &str = "brokerd";
/// W3C trace flags of every exported span: sampled (the broker records only the
/// traces it samples).
const FLAGS_SAMPLED: u32 = 0x01;

/// Broker attribute names that have an OpenTelemetry messaging name.
const CONVENTION_NAMES: &[(&str, &str)] = &[
    ("topic", "messaging.destination.name"),
    ("partition", "messaging.destination.partition.id"),
    ("group", "messaging.consumer.group.name"),
];
/// Broker attributes whose values are integers (exported as such when they parse).
const INTEGER_ATTRIBUTES: &[&str] = &[
    "offset",
    "attempt",
    "attempts",
    "committed_offset",
    "subscription",
];

/// The resource every span is exported under: which service and instance made it.
pub fn resource(service_name: &str, instance_id: &str) -> Resource {
    Resource {
        attributes: vec![
            string("service.name", service_name),
            string("service.version", env!("CARGO_PKG_VERSION")),
            string("service.instance.id", instance_id),
        ],
        ..Default::default()
    }
}

/// One export request holding `spans`, under `resource`.
pub fn request(
    resource: &Resource,
    spans: impl IntoIterator<Item = BrokerSpan>,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans: spans.into_iter().map(span).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// One broker span as an OTLP span.
pub fn span(span: BrokerSpan) -> Span {
    let start_time_unix_nano = span.start_us.saturating_mul(1000);
    let end_time_unix_nano = span
        .start_us
        .saturating_add(span.duration_us)
        .saturating_mul(1000);
    let (kind, operation) = kind(&span.name);
    let status = status(&span);
    let mut attributes = Vec::with_capacity(span.attributes.len() + 2);
    attributes.push(string("messaging.system", MESSAGING_SYSTEM));
    if let Some(operation) = operation {
        attributes.push(string("messaging.operation.type", operation));
    }
    attributes.extend(span.attributes.into_iter().map(|(k, v)| attribute(&k, v)));
    Span {
        trace_id: span.trace_id.to_vec(),
        span_id: span.span_id.to_vec(),
        parent_span_id: span.parent_id.to_vec(),
        flags: FLAGS_SAMPLED,
        name: span.name,
        kind: kind as i32,
        start_time_unix_nano,
        end_time_unix_nano,
        attributes,
        status,
        ..Default::default()
    }
}

/// A span's kind, and its `messaging.operation.type` when it has one. The broker
/// serves a producer's produce or publish and a consumer's ack, nack or commit
/// (`Server`); a delivery hands the message on to a consumer, whose own span follows
/// (`Producer`); what it does on its own is `Internal`.
fn kind(name: &str) -> (SpanKind, Option<&'static str>) {
    match name {
        "produce" | "route" => (SpanKind::Server, Some("send")),
        "deliver" => (SpanKind::Producer, Some("receive")),
        "ack" | "nack" | "commit" => (SpanKind::Server, Some("settle")),
        "dead-letter" => (SpanKind::Internal, Some("settle")),
        _ => (SpanKind::Internal, None),
    }
}

/// Error for a failed delivery (a nack or an expiry, with its reason) and for a dead
/// letter; unset for the rest.
fn status(span: &BrokerSpan) -> Option<Status> {
    let message = match span.name.as_str() {
        "nack" => span
            .attribute("reason")
            .unwrap_or("delivery failed")
            .to_string(),
        "dead-letter" => format!(
            "dead-lettered to {} after {} attempts",
            span.attribute("dead_letter_topic").unwrap_or("?"),
            span.attribute("attempts").unwrap_or("?")
        ),
        _ => return None,
    };
    Some(Status {
        message,
        code: StatusCode::Error as i32,
    })
}

/// A broker attribute under its exported name, typed.
fn attribute(key: &str, value: String) -> KeyValue {
    let name = CONVENTION_NAMES
        .iter()
        .find(|(broker, _)| *broker == key)
        .map_or_else(|| format!("brokerd.{key}"), |(_, otel)| (*otel).to_string());
    let value = match value.parse::<i64>() {
        Ok(number) if INTEGER_ATTRIBUTES.contains(&key) => any_value::Value::IntValue(number),
        _ => any_value::Value::StringValue(value),
    };
    KeyValue {
        key: name,
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker_span(name: &str, attributes: &[(&str, &str)]) -> BrokerSpan {
        BrokerSpan {
            trace_id: [0x4b; 16],
            span_id: [2; 8],
            parent_id: [3; 8],
            name: name.into(),
            start_us: 1_700_000_000_000_000,
            duration_us: 1500,
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn value<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    fn text(span: &Span, key: &str) -> Option<String> {
        match value(span, key) {
            Some(any_value::Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        }
    }

    #[test]
    fn ids_times_and_names_pass_through() {
        let mapped = span(broker_span("produce", &[]));
        assert_eq!(mapped.trace_id, vec![0x4b; 16]);
        assert_eq!(mapped.span_id, vec![2; 8]);
        assert_eq!(mapped.parent_span_id, vec![3; 8], "the parent link is kept");
        assert_eq!(mapped.name, "produce");
        assert_eq!(mapped.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(
            mapped.end_time_unix_nano - mapped.start_time_unix_nano,
            1_500_000,
            "µs become ns"
        );
        assert_eq!(mapped.flags, FLAGS_SAMPLED);
        let far = BrokerSpan {
            start_us: u64::MAX - 1,
            ..broker_span("retry", &[])
        };
        let far = span(far);
        assert_eq!(far.end_time_unix_nano, u64::MAX, "saturates, never wraps");
        assert!(far.end_time_unix_nano >= far.start_time_unix_nano);
    }

    #[test]
    fn kinds_follow_who_the_broker_acts_for() {
        for (name, kind, operation) in [
            ("produce", SpanKind::Server, Some("send")),
            ("route", SpanKind::Server, Some("send")),
            ("append", SpanKind::Internal, None),
            ("durable", SpanKind::Internal, None),
            ("deliver", SpanKind::Producer, Some("receive")),
            ("ack", SpanKind::Server, Some("settle")),
            ("nack", SpanKind::Server, Some("settle")),
            ("commit", SpanKind::Server, Some("settle")),
            ("retry", SpanKind::Internal, None),
            ("dead-letter", SpanKind::Internal, Some("settle")),
            ("something new", SpanKind::Internal, None),
        ] {
            let mapped = span(broker_span(name, &[]));
            assert_eq!(mapped.kind, kind as i32, "{name}");
            assert_eq!(
                text(&mapped, "messaging.operation.type").as_deref(),
                operation,
                "{name}"
            );
            assert_eq!(
                text(&mapped, "messaging.system").as_deref(),
                Some("brokerd")
            );
        }
    }

    #[test]
    fn attributes_get_convention_names_and_integers_where_they_are_numbers() {
        let mapped = span(broker_span(
            "deliver",
            &[
                ("topic", "orders"),
                ("partition", "2"),
                ("offset", "17"),
                ("group", "workers"),
                ("attempt", "3"),
                ("member", "m-1"),
                ("subscription", "not a number"),
            ],
        ));
        assert_eq!(
            text(&mapped, "messaging.destination.name").as_deref(),
            Some("orders")
        );
        assert_eq!(
            text(&mapped, "messaging.destination.partition.id").as_deref(),
            Some("2"),
            "the convention's partition id is a string"
        );
        assert_eq!(
            text(&mapped, "messaging.consumer.group.name").as_deref(),
            Some("workers")
        );
        assert_eq!(
            value(&mapped, "brokerd.offset"),
            Some(&any_value::Value::IntValue(17))
        );
        assert_eq!(
            value(&mapped, "brokerd.attempt"),
            Some(&any_value::Value::IntValue(3))
        );
        assert_eq!(text(&mapped, "brokerd.member").as_deref(), Some("m-1"));
        assert_eq!(
            text(&mapped, "brokerd.subscription").as_deref(),
            Some("not a number"),
            "a value that does not parse stays a string"
        );
        assert_eq!(value(&mapped, "topic"), None, "renamed, not copied");
        assert_eq!(mapped.status, None, "a delivery is no failure");
    }

    #[test]
    fn nacks_and_dead_letters_are_errors_with_what_happened() {
        let nack = span(broker_span("nack", &[("reason", "cannot parse")]));
        let status = nack.status.clone().unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "cannot parse");
        assert_eq!(
            text(&nack, "brokerd.reason").as_deref(),
            Some("cannot parse")
        );
        let dead = span(broker_span(
            "dead-letter",
            &[("dead_letter_topic", "orders.dlq"), ("attempts", "3")],
        ));
        let status = dead.status.clone().unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(
            status.message,
            "dead-lettered to orders.dlq after 3 attempts"
        );
        assert_eq!(
            text(&dead, "brokerd.dead_letter_topic").as_deref(),
            Some("orders.dlq")
        );
        assert_eq!(span(broker_span("ack", &[])).status, None);
    }

    #[test]
    fn a_request_carries_the_resource_the_scope_and_every_span() {
        let resource = resource("brokerd", "127.0.0.1:7171");
        let request = request(
            &resource,
            [broker_span("produce", &[]), broker_span("append", &[])],
        );
        assert_eq!(request.resource_spans.len(), 1);
        let resource_spans = &request.resource_spans[0];
        let attributes = &resource_spans.resource.as_ref().unwrap().attributes;
        let find = |key: &str| {
            attributes
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(
            find("service.name"),
            Some(any_value::Value::StringValue("brokerd".into()))
        );
        assert_eq!(
            find("service.instance.id"),
            Some(any_value::Value::StringValue("127.0.0.1:7171".into()))
        );
        let scope = &resource_spans.scope_spans[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, SCOPE_NAME);
        let names: Vec<&str> = scope.spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["produce", "append"]);
    }
}
