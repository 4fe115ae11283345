//! The result of a run: a summary table for people, one JSON object for scripts.

use std::fmt::Write as _;

use serde::Serialize;

use crate::stats::Percentiles;
use crate::workload::{Ack, Stop, Workload, WorkloadKind};

/// Bytes in the "MB" of MB/s: decimal, as network and disk figures are quoted.
pub const BYTES_PER_MB: f64 = 1_000_000.0;

/// How many messages a throughput figure is over, and in how long.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phase {
    /// Messages moved in the whole phase.
    pub messages: u64,
    /// Messages inside the measurement window (after the warm-up).
    pub window_messages: u64,
    /// Length of the window: from the end of the warm-up to the last measured event.
    pub window_ns: u64,
}

/// What the producers did, in total.
#[derive(Debug, Clone, Default)]
pub struct ProducerSummary {
    /// Messages handed to the broker.
    pub sent: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Messages whose batch failed.
    pub failed: u64,
    /// The first failure.
    pub first_error: Option<String>,
}

/// Everything a run measured. Serialised as the `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `brokerd`, `nats` or `redis`.
    pub broker: String,
    /// The workload.
    pub workload: WorkloadKind,
    /// What durability and acknowledgement meant on this broker.
    pub durability: String,
    /// The acknowledgement level asked for.
    pub ack: Ack,
    /// Producers.
    pub producers: u32,
    /// Consumers per group.
    pub consumers: u32,
    /// Consumer groups.
    pub consumer_groups: u32,
    /// Topics.
    pub topics: u32,
    /// Partitions per topic.
    pub partitions: u32,
    /// Payload bytes per message.
    pub message_size: usize,
    /// Records per produce batch.
    pub batch: usize,
    /// Batches in flight per producer.
    pub in_flight: usize,
    /// Target rate, messages per second over all producers.
    pub rate: Option<u64>,
    /// Warm-up excluded from the figures, ms.
    pub warmup_ms: u64,
    /// Messages the workload moved: acknowledged (produce) or received by the first
    /// group (consume, pub/sub).
    pub messages: u64,
    /// Messages the producers sent.
    pub sent: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Distinct messages received, summed over groups.
    pub received: u64,
    /// Messages inside the measurement window.
    pub measured_messages: u64,
    /// Length of the measurement window, seconds.
    pub measured_seconds: f64,
    /// Throughput in the window.
    pub msgs_per_sec: f64,
    /// Payload throughput in the window, 10^6 bytes per second.
    pub mb_per_sec: f64,
    /// Publish-to-acknowledgement latency (produce, pub/sub).
    pub publish_latency_us: Option<Percentiles>,
    /// Publish-to-receipt latency (pub/sub).
    pub e2e_latency_us: Option<Percentiles>,
    /// Messages sent and never received (summed over groups), or acknowledged and not
    /// stored (produce).
    pub lost: u64,
    /// Extra copies received (summed over groups), or stored beyond what was sent.
    pub duplicates: u64,
    /// Received messages no producer sent.
    pub unexpected: u64,
    /// Received payloads that were not benchmark payloads.
    pub corrupt_payloads: u64,
    /// Messages whose produce failed.
    pub failed_sends: u64,
    /// Messages the broker says it stores after a produce run.
    pub stored_messages: Option<u64>,
    /// The first error seen.
    pub first_error: Option<String>,
    /// True when nothing was lost, duplicated, corrupt or failed.
    pub ok: bool,
}

impl Report {
    /// An empty report for `workload`.
    pub fn new(workload: &Workload) -> Report {
        Report {
            broker: String::new(),
            workload: workload.kind,
            durability: String::new(),
            ack: workload.ack,
            producers: workload.producers,
            consumers: if workload.kind == WorkloadKind::Produce {
                0
            } else {
                workload.consumers
            },
            consumer_groups: if workload.kind == WorkloadKind::Produce {
                0
            } else {
                workload.consumer_groups
            },
            topics: workload.topics,
            partitions: workload.partitions,
            message_size: workload.message_size_bytes,
            batch: workload.batch_records,
            in_flight: workload.in_flight_batches,
            rate: workload.rate_msgs_per_sec,
            warmup_ms: u64::try_from(workload.warmup.as_millis()).unwrap_or(u64::MAX),
            messages: 0,
            sent: 0,
            acked: 0,
            received: 0,
            measured_messages: 0,
            measured_seconds: 0.0,
            msgs_per_sec: 0.0,
            mb_per_sec: 0.0,
            publish_latency_us: None,
            e2e_latency_us: None,
            lost: 0,
            duplicates: 0,
            unexpected: 0,
            corrupt_payloads: 0,
            failed_sends: 0,
            stored_messages: None,
            first_error: None,
            ok: false,
        }
    }

    /// Records what the producers did.
    pub fn add_producers(&mut self, producers: &ProducerSummary) {
        self.sent = producers.sent;
        self.acked = producers.acked;
        self.failed_sends = producers.failed;
        self.first_error = producers.first_error.clone();
    }

    /// Sets the throughput figures from a phase, and the verdict.
    pub fn set_throughput(&mut self, phase: Phase, message_size_bytes: usize) {
        self.messages = phase.messages;
        self.measured_messages = phase.window_messages;
        let seconds = phase.window_ns as f64 / 1e9;
        self.measured_seconds = round_to(seconds, 3);
        if seconds > 0.0 {
            let rate = phase.window_messages as f64 / seconds;
            self.msgs_per_sec = rate.round();
            self.mb_per_sec = round_to(rate * message_size_bytes as f64 / BYTES_PER_MB, 1);
        }
        self.ok = self.failures().is_empty();
    }

    /// What went wrong, in words; empty when the run is clean.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for (count, what) in [
            (self.lost, "lost"),
            (self.duplicates, "duplicated"),
            (self.unexpected, "received but never sent"),
            (self.corrupt_payloads, "corrupt"),
            (self.failed_sends, "failed to send"),
        ] {
            if count > 0 {
                failures.push(format!("{count} message(s) {what}"));
            }
        }
        failures
    }

    /// The summary table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "broker-bench: {:?} on {} ({})",
            self.workload, self.broker, self.durability
        );
        let _ = writeln!(
            out,
            "  {} producer(s), {} consumer(s) x {} group(s), {} topic(s) x {} partition(s), {} B messages, batch {}, {} in flight, rate {}{}",
            self.producers,
            self.consumers,
            self.consumer_groups,
            self.topics,
            self.partitions,
            self.message_size,
            self.batch,
            self.in_flight,
            self.rate.map_or("max".to_string(), |r| format!("{r} msg/s")),
            if self.warmup_ms > 0 { format!(", warm-up {} ms", self.warmup_ms) } else { String::new() },
        );
        let _ = writeln!(
            out,
            "  messages     {} sent, {} acknowledged, {} received{}",
            self.sent,
            self.acked,
            self.received,
            self.stored_messages
                .map_or(String::new(), |s| format!(", {s} stored")),
        );
        let _ = writeln!(
            out,
            "  throughput   {:.0} msg/s  {:.1} MB/s  ({} msgs over {:.3} s measured)",
            self.msgs_per_sec, self.mb_per_sec, self.measured_messages, self.measured_seconds
        );
        if self.publish_latency_us.is_some() || self.e2e_latency_us.is_some() {
            let _ = writeln!(
                out,
                "  latency µs   {:>10} {:>10} {:>10} {:>10} {:>10}",
                "p50", "p90", "p99", "p99.9", "max"
            );
            for (name, p) in [
                ("publish ack", self.publish_latency_us),
                ("end to end", self.e2e_latency_us),
            ] {
                if let Some(p) = p {
                    let _ = writeln!(
                        out,
                        "  {name:<12} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
                        p.p50, p.p90, p.p99, p.p999, p.max
                    );
                }
            }
        }
        let failures = self.failures();
        if failures.is_empty() {
            let _ = writeln!(out, "  delivery     OK: 0 lost, 0 duplicates");
        } else {
            let _ = writeln!(out, "  delivery     FAILED: {}", failures.join(", "));
        }
        if let Some(error) = &self.first_error {
            let _ = writeln!(out, "  first error  {error}");
        }
        out
    }
}

/// `stop` as the report's words.
pub fn describe_stop(stop: Stop) -> String {
    match stop {
        Stop::Messages(n) => format!("{n} messages"),
        Stop::Duration(d) => format!("{:.1} s", d.as_secs_f64()),
    }
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::tests::sample;

    #[test]
    fn throughput_is_over_the_window_in_decimal_megabytes() {
        let mut report = Report::new(&sample());
        report.set_throughput(
            Phase {
                messages: 2_000_000,
                window_messages: 1_000_000,
                window_ns: 500_000_000,
            },
            1000,
        );
        assert_eq!(report.msgs_per_sec, 2_000_000.0);
        assert_eq!(report.mb_per_sec, 2000.0);
        assert_eq!(report.messages, 2_000_000);
        assert!(report.ok);
    }

    #[test]
    fn json_has_the_documented_fields() {
        let mut report = Report::new(&sample());
        report.publish_latency_us = Some(Percentiles {
            p50: 1.0,
            p90: 2.0,
            p99: 3.0,
            p999: 4.0,
            max: 5.0,
            samples: 9,
        });
        report.lost = 3;
        report.set_throughput(
            Phase {
                messages: 10,
                window_messages: 10,
                window_ns: 1_000_000_000,
            },
            1024,
        );
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        for key in [
            "messages",
            "msgs_per_sec",
            "mb_per_sec",
            "lost",
            "duplicates",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        for key in ["p50", "p90", "p99", "p999", "max"] {
            assert!(
                json["publish_latency_us"].get(key).is_some(),
                "missing {key}"
            );
        }
        assert!(json["e2e_latency_us"].is_null());
        assert_eq!(json["ok"], false);
        assert_eq!(json["workload"], "pubsub");
    }

    #[test]
    fn the_table_says_what_failed() {
        let mut report = Report::new(&sample());
        report.duplicates = 2;
        report.set_throughput(Phase::default(), 1024);
        let table = report.to_table();
        assert!(table.contains("FAILED: 2 message(s) duplicated"), "{table}");
        assert_eq!(describe_stop(Stop::Messages(5)), "5 messages");
    }
}
