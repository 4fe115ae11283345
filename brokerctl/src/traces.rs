//! `brokerctl trace TRACE_ID` and `brokerctl traces`: what the broker did to traced
//! messages, read from the internal topic `__traces`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use client::tracing_context::{Span, TraceParent, TRACES_TOPIC};
use client::Client;
use serde_json::json;

use crate::table::Table;

/// How long reading `__traces` waits for records it knows are there.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Trace id: 32 hex digits, the second field of a `traceparent`
    /// (00-TRACE_ID-SPAN_ID-01); a whole traceparent is accepted too.
    #[arg(value_name = "TRACE_ID", value_parser = parse_trace_id)]
    trace_id: String,
}

/// Parses a trace id (32 hex digits, not all zero, as W3C Trace Context requires),
/// or takes it out of a whole `traceparent`; returns it in lower case.
pub fn parse_trace_id(s: &str) -> Result<String, String> {
    if let Some(parent) = TraceParent::parse(s.as_bytes()) {
        return Ok(hex(&parent.trace_id));
    }
    let valid =
        s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0');
    if valid {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "expected a trace id: 32 hex digits, not all zero, like \
             4bf92f3577b34da6a3ce929d0e0e4736 (the second field of a traceparent \
             00-TRACE_ID-SPAN_ID-01, or the TRACE column of `brokerctl traces`); got {s:?}"
        ))
    }
}

/// `--trace` of `produce` and `publish`: a new sampled trace whose `traceparent`
/// header every message of the command carries, so that `brokerctl trace ID` shows
/// what the broker did to them.
pub fn start_trace() -> TraceParent {
    client::tracing_context::new_trace()
}

/// Arguments of `traces`.
#[derive(Debug, Args)]
pub struct TracesArgs {
    /// Only traces that touched this topic.
    #[arg(long)]
    topic: Option<String>,
    /// At most this many, most recent first.
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

/// Bytes as lower-case hex, the way trace and span ids are written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every span on `__traces`.
async fn read_spans(client: &Client) -> anyhow::Result<Vec<Span>> {
    let described = match client.describe_topic(TRACES_TOPIC).await {
        Ok(described) => described,
        Err(e) if e.code() == Some(client::ErrorCode::UnknownTopic) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let Some(partition) = described.partitions.first() else {
        return Ok(Vec::new());
    };
    let mut reader = client.partition_reader(TRACES_TOPIC, &[(0, partition.start_offset)]);
    let mut spans = Vec::new();
    let mut read = 0;
    while read < partition.end_offset - partition.start_offset {
        let Ok(record) = tokio::time::timeout(READ_TIMEOUT, reader.next()).await else {
            break;
        };
        let record = record?;
        read += 1;
        if let Some(Ok(span)) = record.value.map(Span::decode) {
            spans.push(span);
        }
    }
    Ok(spans)
}

fn attributes(span: &Span) -> String {
    span.attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `trace`: the spans of one trace as a tree, with timings relative to the first.
pub async fn trace(client: &Client, args: TraceArgs, json: bool) -> anyhow::Result<ExitCode> {
    let wanted = args.trace_id;
    let mut spans: Vec<Span> = read_spans(client)
        .await?
        .into_iter()
        .filter(|s| hex(&s.trace_id) == wanted)
        .collect();
    if spans.is_empty() {
        anyhow::bail!("no spans for trace {wanted} (traces are kept 24 h; only messages with a traceparent are traced)");
    }
    spans.sort_by_key(|s| (s.start_us, s.start_us + s.duration_us));
    if json {
        for s in &spans {
            outln!(
                "{}",
                json!({
                    "trace_id": hex(&s.trace_id), "span_id": hex(&s.span_id), "parent_id": hex(&s.parent_id),
                    "name": s.name, "start_us": s.start_us, "duration_us": s.duration_us,
                    "attributes": s.attributes.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
                })
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let ids: std::collections::HashSet<[u8; 8]> = spans.iter().map(|s| s.span_id).collect();
    let mut children: BTreeMap<[u8; 8], Vec<usize>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        if ids.contains(&s.parent_id) && s.parent_id != s.span_id {
            children.entry(s.parent_id).or_default().push(i);
        } else {
            roots.push(i);
        }
    }
    let origin = spans.iter().map(|s| s.start_us).min().unwrap_or(0);
    outln!("trace {wanted}")?;
    fn print(
        spans: &[Span],
        children: &BTreeMap<[u8; 8], Vec<usize>>,
        i: usize,
        depth: usize,
        origin: u64,
    ) -> std::io::Result<()> {
        let s = &spans[i];
        let name = match s.attribute("attempt") {
            Some(attempt) if s.name == "deliver" => format!("deliver #{attempt}"),
            _ => s.name.clone(),
        };
        outln!(
            "{}{name:<14} +{:.3} ms  {:.3} ms  {}",
            "  ".repeat(depth + 1),
            (s.start_us - origin) as f64 / 1000.0,
            s.duration_us as f64 / 1000.0,
            attributes(s)
        )?;
        for &child in children.get(&s.span_id).map(Vec::as_slice).unwrap_or(&[]) {
            print(spans, children, child, depth + 1, origin)?;
        }
        Ok(())
    }
    for root in roots {
        print(&spans, &children, root, 0, origin)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `traces`: recent traces, one line each.
pub async fn traces(client: &Client, args: TracesArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut by_trace: BTreeMap<[u8; 16], Vec<Span>> = BTreeMap::new();
    for span in read_spans(client).await? {
        by_trace.entry(span.trace_id).or_default().push(span);
    }
    let mut rows: Vec<(u64, String, String, usize, String)> = by_trace
        .into_iter()
        .filter(|(_, spans)| {
            args.topic
                .as_deref()
                .is_none_or(|t| spans.iter().any(|s| s.attribute("topic") == Some(t)))
        })
        .map(|(id, spans)| {
            let start = spans.iter().map(|s| s.start_us).min().unwrap_or(0);
            let topic = spans
                .iter()
                .find_map(|s| s.attribute("topic"))
                .unwrap_or("-")
                .to_string();
            let last = spans
                .iter()
                .max_by_key(|s| s.start_us)
                .map_or(String::new(), |s| s.name.clone());
            (start, hex(&id), topic, spans.len(), last)
        })
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    rows.truncate(args.limit);
    if json {
        for (start, id, topic, count, last) in &rows {
            outln!(
                "{}",
                json!({ "trace_id": id, "start_us": start, "topic": topic, "spans": count, "last": last })
            )?;
        }
    } else {
        let mut table = Table::new(&["TRACE", "TOPIC", "SPANS", "LAST"]);
        for (_, id, topic, count, last) in rows {
            table.row(vec![id, topic, count.to_string(), last]);
        }
        out!("{}", table.render())?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_32_hex_digits_or_a_traceparent() {
        assert_eq!(
            parse_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736").unwrap(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(
            parse_trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        for bad in [
            "nothex",
            "",
            "4bf92f3577b34da6a3ce929d0e0e473",
            "4bf92f3577b34da6a3ce929d0e0e47360",
            "zzf92f3577b34da6a3ce929d0e0e4736",
            "00000000000000000000000000000000",
        ] {
            let error = parse_trace_id(bad).unwrap_err();
            assert!(error.contains("32 hex digits"), "{bad}: {error}");
        }
    }

    #[test]
    fn started_traces_are_sampled_and_parse_back() {
        let trace = start_trace();
        assert!(trace.sampled);
        let header = trace.to_header();
        assert_eq!(parse_trace_id(&header).unwrap(), hex(&trace.trace_id));
    }
}
