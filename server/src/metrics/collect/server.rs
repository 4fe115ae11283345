//! Broker-wide: connections, requests and errors, dropped spans, and the histograms
//! (produce and end-to-end latency, group commits).

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;

use super::{counters, gauges};
use crate::metrics::histogram::AtomicHistogram;
use crate::metrics::{Metrics, ACK_NAMES};
use crate::stats::{ListenerKind, Stats};
use crate::traces::Traces;

pub(super) fn encode(
    encoder: &mut DescriptorEncoder,
    stats: &Stats,
    traces: &Traces,
    metrics: &Metrics,
) -> fmt::Result {
    gauges(
        encoder,
        "brokerd_connections_open",
        "Connections open now, by listener.",
        ListenerKind::ALL.map(|l| ([("listener", l.label())], stats.open(l))),
    )?;
    counters(
        encoder,
        "brokerd_connections_accepted",
        "Connections accepted since the broker started, by listener (including those then refused at the connection limit).",
        ListenerKind::ALL.map(|l| ([("listener", l.label())], stats.accepted(l))),
    )?;
    counters(
        encoder,
        "brokerd_connections_closed",
        "Connections the broker closed or refused on its own, by reason, since it started (a client that leaves is not counted).",
        stats
            .closed
            .by_reason()
            .map(|(reason, n)| ([("reason", reason)], n)),
    )?;
    counters(
        encoder,
        "brokerd_requests",
        "Requests answered, by operation (`unknown` for an undefined operation code).",
        metrics.requests.answered().map(|(op, n)| ([("op", op)], n)),
    )?;
    counters(
        encoder,
        "brokerd_request_errors",
        "Requests answered with an error, by operation and error code (docs/protocol.md); only pairs that occurred.",
        metrics
            .requests
            .failed()
            .map(|(op, code, n)| ([("op", op), ("code", code)], n)),
    )?;
    counters(
        encoder,
        "brokerd_trace_spans_dropped",
        "Trace spans dropped because the span writer's queue was full.",
        [([("topic", "__traces")], traces.dropped())],
    )?;
    if let Some(export) = traces.export_stats() {
        counters(
            encoder,
            "brokerd_otlp_spans",
            "Trace spans handed to the OTLP export, by outcome: exported (accepted by the collector), dropped (the export queue was full), failed (lost to failed or rejected requests).",
            [
                ([("outcome", "exported")], export.exported),
                ([("outcome", "dropped")], export.dropped),
                ([("outcome", "failed")], export.failed),
            ],
        )?;
    }
    encode_histograms(encoder, metrics)
}

fn encode_histograms(encoder: &mut DescriptorEncoder, metrics: &Metrics) -> fmt::Result {
    let mut family = encoder.encode_descriptor(
        "brokerd_produce_latency_seconds",
        "A produce request from joining its produce run to its answer, by acknowledgement level (durable: the group commit included); successful answers only.",
        None,
        MetricType::Histogram,
    )?;
    for (ack, histogram) in ACK_NAMES.iter().zip(&metrics.produce_latency) {
        histogram.encode(family.encode_family(&[("ack", *ack)])?)?;
    }
    let syncs = &metrics.syncs;
    let single: [(&str, &str, &AtomicHistogram); 4] = [
        (
            "brokerd_end_to_end_latency_seconds",
            "A delivery's first record timestamp (the producer's) to the delivery (fetch answer, subscription push, queue hand-out); one observation per delivery.",
            &metrics.end_to_end,
        ),
        (
            "brokerd_fsync_duration_seconds",
            "One group commit's fdatasync round (data files, directory, checkpoint), over every log.",
            &syncs.duration,
        ),
        (
            "brokerd_group_commit_messages",
            "Records made durable by one group commit.",
            &syncs.records,
        ),
        (
            "brokerd_group_commit_bytes",
            "Segment bytes made durable by one group commit.",
            &syncs.bytes,
        ),
    ];
    for (name, help, histogram) in single {
        let family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        histogram.encode(family)?;
    }
    Ok(())
}
