//! Traces over HTTP: the recent traces, and one trace as a span tree (the tree
//! `brokerctl trace` prints, as nested JSON). Spans live on the internal topic
//! `__traces` (record key: the trace id); like `brokerctl`, the gateway reads it with
//! DescribeTopic and Fetch through the request layer ([`internal_read`]), so the
//! trace resource's ACLs apply (Describe and Read). A request reads at most the
//! newest [`MAX_SCANNED_SPANS`] spans. Grouping and the tree are pure
//! ([`Summaries`], [`span_tree`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use protocol::trace::{hex, Span, TraceParent, TRACES_TOPIC};
use protocol::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::{ApiPath, ApiQuery};
use super::error::{sanitize, ApiError, ErrorBody};
use super::internal_read::{self, Reading};
use super::services::Tag;
use super::state::HttpState;

/// Spans one request reads at most: the newest of `__traces`.
pub const MAX_SCANNED_SPANS: u64 = 100_000;
/// Bytes of `__traces` one Fetch of a scan reads.
pub const TRACE_FETCH_BYTES: u32 = 1024 * 1024;
/// Traces listed unless told (`limit`).
pub const DEFAULT_TRACES_LISTED: usize = 20;
/// Traces one listing answers at most.
pub const MAX_TRACES_LISTED: usize = 1000;
/// Spans one trace answers at most (the earliest).
pub const MAX_SPANS_PER_TRACE: usize = 10_000;
/// How deep a tree nests; a span deeper than this is answered as a root.
pub const MAX_TREE_DEPTH: usize = 64;

/// Reads the newest spans of `__traces` (at most [`MAX_SCANNED_SPANS`]), handing
/// those whose record key (the trace id) `keep` accepts to `visit`, in order.
async fn scan(
    state: &HttpState,
    caller: &Caller,
    mut keep: impl FnMut(&[u8]) -> bool,
    mut visit: impl FnMut(Span),
) -> Result<(), ApiError> {
    let broker = &state.broker;
    let Some((start, end)) = internal_read::bounds(broker, caller, TRACES_TOPIC).await? else {
        return Ok(());
    };
    let reading = Reading {
        topic: TRACES_TOPIC,
        max_bytes: TRACE_FETCH_BYTES,
        max_records: usize::MAX,
        mark: "",
    };
    let mut offset = start.max(end.saturating_sub(MAX_SCANNED_SPANS));
    while offset < end {
        let (records, next) = internal_read::read(broker, caller, reading, offset, 0).await?;
        if next <= offset {
            break;
        }
        offset = next;
        for record in records {
            if !record.key.as_deref().is_some_and(&mut keep) {
                continue;
            }
            if let Some(Ok(span)) = record.value.map(Span::decode) {
                visit(span);
            }
        }
    }
    Ok(())
}

/// `GET /v1/traces` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TracesParams {
    /// Only traces that touched this topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// At most this many, most recent first (default 20, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One trace of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TraceSummary {
    /// The trace id, 32 hex digits.
    #[schema(example = "4bf92f3577b34da6a3ce929d0e0e4736")]
    pub trace_id: String,
    /// Its first span's start, µs since the epoch.
    pub start_us: u64,
    /// The topic its first span with one names (`-` for none).
    pub topic: String,
    /// Its spans.
    pub spans: usize,
    /// The name of its latest span (`ack`, `dead-letter`, ...).
    pub last: String,
}

/// Recent traces.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceList {
    /// Most recent first.
    pub traces: Vec<TraceSummary>,
}

/// What a listing keeps of one trace while spans are read.
#[derive(Debug, Default)]
struct Seen {
    start_us: u64,
    topic: Option<String>,
    touched: bool,
    spans: usize,
    last: (u64, String),
}

/// Recent traces, gathered span by span as they are read (only a summary per trace
/// is kept), for a listing of those touching `topic` if given.
#[derive(Debug)]
pub struct Summaries {
    topic: Option<String>,
    traces: HashMap<[u8; 16], Seen>,
}

impl Summaries {
    /// Nothing seen yet; `topic` is the listing's filter.
    pub fn new(topic: Option<String>) -> Summaries {
        Summaries {
            topic,
            traces: HashMap::new(),
        }
    }

    /// Counts one span, in the order read.
    pub fn add(&mut self, span: &Span) {
        let seen = self.traces.entry(span.trace_id).or_insert_with(|| Seen {
            start_us: span.start_us,
            ..Seen::default()
        });
        seen.start_us = seen.start_us.min(span.start_us);
        let topic = span.attribute("topic");
        if seen.topic.is_none() {
            seen.topic = topic.map(str::to_string);
        }
        seen.touched |= self.topic.is_some() && topic == self.topic.as_deref();
        seen.spans += 1;
        if seen.spans == 1 || span.start_us > seen.last.0 {
            seen.last = (span.start_us, span.name.clone());
        }
    }

    /// The traces, most recent first, at most `limit`.
    pub fn finish(self, limit: usize) -> Vec<TraceSummary> {
        let filtered = self.topic.is_some();
        let mut out: Vec<TraceSummary> = self
            .traces
            .into_iter()
            .filter(|(_, seen)| !filtered || seen.touched)
            .map(|(id, seen)| TraceSummary {
                trace_id: hex(&id),
                start_us: seen.start_us,
                topic: seen.topic.unwrap_or_else(|| "-".into()),
                spans: seen.spans,
                last: seen.last.1,
            })
            .collect();
        out.sort_by(|a, b| {
            b.start_us
                .cmp(&a.start_us)
                .then(a.trace_id.cmp(&b.trace_id))
        });
        out.truncate(limit);
        out
    }
}

/// Lists recent traces.
#[utoipa::path(get, path = "/v1/traces", tag = "traces", params(TracesParams),
    responses(
        (status = 200, description = "Recent traces, most recent first.", body = TraceList),
        (status = "4XX", description = "Refused (reading traces needs Read on the trace resource).", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiQuery(params): ApiQuery<TracesParams>,
) -> Result<Json<TraceList>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_TRACES_LISTED);
    if limit == 0 || limit > MAX_TRACES_LISTED {
        return Err(ApiError::invalid(format!(
            "limit must be from 1 to {MAX_TRACES_LISTED}"
        )));
    }
    let mut summaries = Summaries::new(params.topic);
    scan(&state, &caller, |_| true, |span| summaries.add(&span)).await?;
    Ok(Json(TraceList {
        traces: summaries.finish(limit),
    }))
}

/// A trace, in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TracePath {
    /// The trace id: 32 hex digits (a whole `traceparent` is accepted too).
    #[param(example = "4bf92f3577b34da6a3ce929d0e0e4736")]
    pub trace_id: String,
}

/// Parses a trace id: 32 hex digits, not all zero (W3C Trace Context), or the one in
/// a whole `traceparent`.
pub fn parse_trace_id(text: &str) -> Result<[u8; 16], ApiError> {
    if let Some(parent) = TraceParent::parse(text.as_bytes()) {
        return Ok(parent.trace_id);
    }
    let mut id = [0u8; 16];
    let valid = text.len() == 32
        && text.bytes().all(|b| b.is_ascii_hexdigit())
        && id.iter_mut().enumerate().all(|(i, byte)| {
            match u8::from_str_radix(&text[2 * i..2 * i + 2], 16) {
                Ok(b) => {
                    *byte = b;
                    true
                }
                Err(_) => false,
            }
        })
        && id.iter().any(|&b| b != 0);
    if valid {
        Ok(id)
    } else {
        Err(ApiError::invalid(format!(
            "expected a trace id: 32 hex digits, not all zero (the second field of a traceparent 00-TRACE_ID-SPAN_ID-01); got {:?}",
            sanitize(text)
        )))
    }
}

/// One span of a tree, with the spans whose parent it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(no_recursion)]
pub struct SpanNode {
    /// Its id, 16 hex digits.
    pub span_id: String,
    /// Its parent's id (for a root: the producer's span, or zeros).
    pub parent_id: String,
    /// What happened: `produce`, `append`, `durable`, `route`, `deliver`, `ack`,
    /// `nack`, `retry`, `dead-letter`, `fetch`, `commit`.
    pub name: String,
    /// Start, µs since the epoch.
    pub start_us: u64,
    /// Start, µs after the trace's first span.
    pub offset_us: u64,
    /// Duration, µs.
    pub duration_us: u64,
    /// Attributes (topic, partition, offset, group, attempt, reason, ...), in order.
    pub attributes: Vec<Tag>,
    /// Its children, by start.
    pub children: Vec<SpanNode>,
}

/// One trace as a tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceTree {
    /// The trace id.
    pub trace_id: String,
    /// Its spans.
    pub span_count: usize,
    /// The spans whose parent is not among them (the producer's span is the
    /// client's), by start, each with its children.
    pub spans: Vec<SpanNode>,
}

/// `spans` (of one trace) as a forest, as `brokerctl trace` prints it: sorted by
/// start (then end); a span whose parent is among them is that parent's child, the
/// others are roots. Every span appears exactly once: one in a cycle of parents,
/// or deeper than [`MAX_TREE_DEPTH`], is answered as a root.
pub fn span_tree(mut spans: Vec<Span>) -> Vec<SpanNode> {
    spans.sort_by_key(|s| (s.start_us, s.start_us.saturating_add(s.duration_us)));
    let origin = spans.iter().map(|s| s.start_us).min().unwrap_or(0);
    let ids: HashSet<[u8; 8]> = spans.iter().map(|s| s.span_id).collect();
    let mut children: HashMap<[u8; 8], Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        if ids.contains(&s.parent_id) && s.parent_id != s.span_id {
            children.entry(s.parent_id).or_default().push(i);
        } else {
            roots.push(i);
        }
    }
    let mut placed = vec![false; spans.len()];
    let mut forest = Vec::new();
    let mut next_root = 0;
    loop {
        // The roots first, then whatever they did not reach (cycles, the too deep).
        let root = if next_root < roots.len() {
            next_root += 1;
            roots[next_root - 1]
        } else if let Some(left) = placed.iter().position(|p| !p) {
            left
        } else {
            break;
        };
        if !placed[root] {
            forest.push(node(&spans, &children, &mut placed, root, 0, origin));
        }
    }
    debug_assert!(placed.iter().all(|&p| p), "every span is in the tree");
    forest
}

fn node(
    spans: &[Span],
    children: &HashMap<[u8; 8], Vec<usize>>,
    placed: &mut [bool],
    i: usize,
    depth: usize,
    origin: u64,
) -> SpanNode {
    placed[i] = true;
    let s = &spans[i];
    let mut kids = Vec::new();
    if depth + 1 < MAX_TREE_DEPTH {
        for &child in children.get(&s.span_id).map(Vec::as_slice).unwrap_or(&[]) {
            if !placed[child] {
                kids.push(node(spans, children, placed, child, depth + 1, origin));
            }
        }
    }
    SpanNode {
        span_id: hex(&s.span_id),
        parent_id: hex(&s.parent_id),
        name: s.name.clone(),
        start_us: s.start_us,
        offset_us: s.start_us.saturating_sub(origin),
        duration_us: s.duration_us,
        attributes: s
            .attributes
            .iter()
            .map(|(k, v)| Tag {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        children: kids,
    }
}

/// One trace as a span tree.
#[utoipa::path(get, path = "/v1/traces/{trace_id}", tag = "traces", params(TracePath),
    responses(
        (status = 200, description = "The trace's spans as a tree.", body = TraceTree),
        (status = 400, description = "Not a trace id.", body = ErrorBody),
        (status = 404, description = "No span of this trace is held (`invalid_request`; spans are kept 24 h, and only messages with a `traceparent` header are traced).", body = ErrorBody),
        (status = "4XX", description = "Refused (reading traces needs Read on the trace resource).", body = ErrorBody),
    ))]
pub async fn trace(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<TracePath>,
) -> Result<Json<TraceTree>, ApiError> {
    let id = parse_trace_id(&path.trace_id)?;
    let mut spans = Vec::new();
    scan(&state, &caller, |key| key == id, |span| spans.push(span)).await?;
    if spans.is_empty() {
        return Err(ApiError::with_status(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidRequest,
            format!(
                "no spans for trace {} (spans are kept 24 h; only messages with a traceparent header are traced)",
                hex(&id)
            ),
        ));
    }
    spans.sort_by_key(|s| s.start_us);
    spans.truncate(MAX_SPANS_PER_TRACE);
    Ok(Json(TraceTree {
        trace_id: hex(&id),
        span_count: spans.len(),
        spans: span_tree(spans),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: u8, parent: u8, name: &str, start_us: u64, topic: Option<&str>) -> Span {
        Span {
            trace_id: [7; 16],
            span_id: [id; 8],
            parent_id: [parent; 8],
            name: name.into(),
            start_us,
            duration_us: 10,
            attributes: topic
                .map(|t| vec![("topic".to_string(), t.to_string())])
                .unwrap_or_default(),
        }
    }

    fn shape(nodes: &[SpanNode]) -> Vec<(String, Vec<(String, usize)>)> {
        nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    n.children
                        .iter()
                        .map(|c| (c.name.clone(), c.children.len()))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_trace_nests_children_under_their_parents_by_start() {
        // The producer's span (id 9) is the client's: `produce` is a root.
        let spans = vec![
            span(3, 1, "durable", 300, None),
            span(1, 9, "produce", 100, Some("orders")),
            span(2, 1, "append", 200, None),
            span(4, 3, "deliver", 400, None),
        ];
        let tree = span_tree(spans);
        assert_eq!(tree.len(), 1);
        assert_eq!(
            shape(&tree),
            [(
                "produce".to_string(),
                vec![("append".to_string(), 0), ("durable".to_string(), 1)]
            )]
        );
        assert_eq!(tree[0].offset_us, 0);
        assert_eq!(tree[0].children[1].children[0].name, "deliver");
        assert_eq!(tree[0].children[1].children[0].offset_us, 300);
        assert_eq!(tree[0].parent_id, "0909090909090909");
        assert_eq!(tree[0].attributes[0].value, "orders");
    }

    #[test]
    fn cycles_and_self_parents_still_answer_every_span_once() {
        let spans = vec![
            span(1, 2, "a", 1, None),
            span(2, 1, "b", 2, None),
            span(3, 3, "self", 3, None),
        ];
        let tree = span_tree(spans);
        let count = |nodes: &[SpanNode]| -> usize {
            fn walk(n: &SpanNode) -> usize {
                1 + n.children.iter().map(walk).sum::<usize>()
            }
            nodes.iter().map(walk).sum()
        };
        assert_eq!(count(&tree), 3);
        assert_eq!(tree.iter().filter(|n| n.name == "self").count(), 1);
    }

    #[test]
    fn a_chain_deeper_than_the_limit_is_cut_into_roots() {
        let spans: Vec<Span> = (1..=200u8)
            .map(|i| span(i, i - 1, "s", u64::from(i), None))
            .collect();
        let tree = span_tree(spans);
        fn depth(n: &SpanNode) -> usize {
            1 + n.children.iter().map(depth).max().unwrap_or(0)
        }
        assert!(tree.iter().all(|n| depth(n) <= MAX_TREE_DEPTH));
        let total: usize = tree
            .iter()
            .map(|n| {
                fn walk(n: &SpanNode) -> usize {
                    1 + n.children.iter().map(walk).sum::<usize>()
                }
                walk(n)
            })
            .sum();
        assert_eq!(total, 200);
    }

    #[test]
    fn summaries_are_most_recent_first_and_filter_by_topic() {
        let mut other = span(5, 0, "produce", 900, Some("payments"));
        other.trace_id = [8; 16];
        let spans = [
            span(1, 0, "produce", 100, Some("orders")),
            span(2, 1, "ack", 500, None),
            other,
        ];
        let summaries = |topic: Option<&str>, limit| {
            let mut seen = Summaries::new(topic.map(str::to_string));
            spans.iter().for_each(|s| seen.add(s));
            seen.finish(limit)
        };
        let all = summaries(None, 10);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].trace_id, hex(&[8; 16]));
        assert_eq!(
            all[1],
            TraceSummary {
                trace_id: hex(&[7; 16]),
                start_us: 100,
                topic: "orders".into(),
                spans: 2,
                last: "ack".into(),
            }
        );
        assert_eq!(summaries(Some("orders"), 10).len(), 1);
        assert_eq!(summaries(Some("nothing"), 10).len(), 0);
        assert_eq!(summaries(None, 1).len(), 1);
    }

    #[test]
    fn trace_ids_are_32_hex_digits_or_a_traceparent() {
        let id = parse_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736").unwrap();
        assert_eq!(hex(&id), "4bf92f3577b34da6a3ce929d0e0e4736");
        let id = parse_trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(hex(&id), "4bf92f3577b34da6a3ce929d0e0e4736");
        for bad in [
            "",
            "nothex",
            "4bf92f3577b34da6a3ce929d0e0e473",
            "4bf92f3577b34da6a3ce929d0e0e47360",
            "zzf92f3577b34da6a3ce929d0e0e4736",
            "00000000000000000000000000000000",
            "+bf92f3577b34da6a3ce929d0e0e4736",
            "ééééééééééééééé",
        ] {
            assert!(parse_trace_id(bad).is_err(), "{bad}");
        }
    }
}
