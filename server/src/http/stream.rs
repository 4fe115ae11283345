//! `GET /v1/topics/{topic}/stream`: a topic's records as Server-Sent Events, in
//! offset order within each partition, read through the request layer's Fetch.
//!
//! Backpressure: the stream reads the log only when the client has taken what was
//! read before. Its events are produced by a pull-driven stream that hyper polls
//! only when the connection can take more (the socket's send buffer, HTTP/2's flow
//! control window), and it holds at most one read's events: at most
//! [`STREAM_READ_BYTES`] of batches and [`STREAM_EVENTS_PER_READ`] records. So a
//! client that reads slowly (or stops) costs the broker that one read and the
//! connection's buffers, however much is produced meanwhile, and catches up in order
//! when it reads again. Every event's `id` is the position after it, the next offset
//! of every partition (`12,0,7`), so a client that reconnects with `Last-Event-ID`
//! resumes exactly after the last event it saw. A comment line every
//! [`STREAM_KEEP_ALIVE`] while there is nothing to send keeps proxies from closing
//! an idle stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use protocol::ops::fetch::FetchRequest;
use protocol::ops::topic::DescribeTopicRequest;
use protocol::{ErrorCode, Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::{ApiPath, ApiQuery};
use super::call::{call, unexpected};
use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::records::{self, FetchedRecord};
use super::state::HttpState;
use super::topics::TopicPath;
use crate::broker::Broker;

/// Bytes of batches one read of a stream takes at most (at least one batch).
pub const STREAM_READ_BYTES: u32 = 256 * 1024;
/// Records one read of a stream turns into events at most.
pub const STREAM_EVENTS_PER_READ: usize = 1000;
/// How long a stream that is caught up waits for new records per long poll, ms.
pub const STREAM_POLL_WAIT_MS: u32 = 5000;
/// A comment line is sent after this long without an event.
pub const STREAM_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Characters of a `Last-Event-ID` read at most.
pub const MAX_LAST_EVENT_ID_CHARS: usize = 64 * 1024;

/// Where a stream starts without `Last-Event-ID`.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamStart {
    /// The oldest retained record of every partition.
    Earliest,
    /// What is produced from now on.
    #[default]
    Latest,
}

/// Stream parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Where to start when the request has no `Last-Event-ID` (default `latest`).
    #[serde(default)]
    #[param(inline)]
    pub start: StreamStart,
}

/// One event's data (`event: record`).
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamedRecord {
    /// The record's partition.
    pub partition: u32,
    /// The record.
    pub record: FetchedRecord,
}

/// The next offset of every partition, as an event id: `12,0,7` (pure).
pub fn format_positions(positions: &[u64]) -> String {
    let mut out = String::with_capacity(positions.len() * 4);
    for (i, position) in positions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&position.to_string());
    }
    out
}

/// Reads a `Last-Event-ID` of a topic of `partitions` partitions (pure).
pub fn parse_positions(text: &str, partitions: usize) -> Result<Vec<u64>, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "Last-Event-ID must be the id of an event of this stream: {partitions} offsets separated by commas"
        ))
    };
    if text.len() > MAX_LAST_EVENT_ID_CHARS {
        return Err(bad());
    }
    let positions: Vec<u64> = text
        .split(',')
        .map(|part| part.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if positions.len() != partitions {
        return Err(bad());
    }
    Ok(positions)
}

/// The event of one record, whose id is the position after it.
pub fn record_event(partition: u32, record: FetchedRecord, after: &[u64]) -> Event {
    let data = serde_json::to_string(&StreamedRecord { partition, record })
        .unwrap_or_else(|e| format!("{{\"error\":\"unserialisable record: {e}\"}}"));
    Event::default()
        .id(format_positions(after))
        .event("record")
        .data(data)
}

/// The last event of a stream that met an error: `event: error`, the error body.
fn error_event(error: &ApiError) -> Event {
    let body = ErrorBody {
        error: ErrorDetail {
            code: error.code().name().to_string(),
            message: error.message().to_string(),
        },
    };
    let data = serde_json::to_string(&body).unwrap_or_default();
    Event::default().event("error").data(data)
}

/// Streams a topic's records as Server-Sent Events.
#[utoipa::path(get, path = "/v1/topics/{topic}/stream", tag = "records",
    params(TopicPath, StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (its `id`: the next offset of every partition).")),
    responses(
        (status = 200, description = "`text/event-stream`: `event: record` events whose data is a `StreamedRecord` and whose `id` is the position after it; `event: error` (an `ErrorBody`) ends the stream.", content_type = "text/event-stream", body = StreamedRecord),
        (status = 400, description = "A bad `Last-Event-ID` or parameter.", body = ErrorBody),
        (status = 404, description = "No such topic.", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn stream(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<TopicPath>,
    ApiQuery(params): ApiQuery<StreamParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let broker = state.broker.clone();
    let request = Request::DescribeTopic(DescribeTopicRequest {
        name: path.topic.clone(),
    });
    let described = match call(&broker, &caller, request).await? {
        Response::DescribeTopic(described) => described,
        other => return Err(unexpected(&other)),
    };
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::invalid("Last-Event-ID is not text"))
        })
        .transpose()?;
    let positions = match last_event_id {
        Some(text) => parse_positions(text, described.partitions.len())?,
        None => described
            .partitions
            .iter()
            .map(|p| match params.start {
                StreamStart::Earliest => p.start_offset,
                StreamStart::Latest => p.end_offset,
            })
            .collect(),
    };
    let reader = Reader {
        broker,
        caller,
        topic: path.topic,
        positions,
        pending: VecDeque::new(),
        next_partition: 0,
        ended: false,
    };
    let events = futures_util::stream::unfold(reader, |mut reader| async move {
        let event = reader.next().await?;
        Some((Ok(event), reader))
    });
    let keep_alive = KeepAlive::new()
        .interval(STREAM_KEEP_ALIVE)
        .text("keep-alive");
    Ok(Sse::new(events).keep_alive(keep_alive))
}

/// A stream's reading state: where every partition is, and the events of the
/// latest read not yet sent.
struct Reader {
    broker: Arc<Broker>,
    caller: Caller,
    topic: String,
    positions: Vec<u64>,
    /// Bounded by one read: [`STREAM_EVENTS_PER_READ`], [`STREAM_READ_BYTES`].
    pending: VecDeque<Event>,
    next_partition: usize,
    ended: bool,
}

impl Reader {
    /// The next event; `None` once the stream ended (after an error event).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            if let Err(error) = self.read().await {
                self.ended = true;
                return Some(error_event(&error));
            }
        }
    }

    /// One read: the next partition (round-robin) with records, at once; if none
    /// has any, a long poll of them all.
    async fn read(&mut self) -> Result<(), ApiError> {
        let count = self.positions.len();
        if count == 0 {
            return Err(ApiError::new(
                ErrorCode::Internal,
                "a topic without partitions",
            ));
        }
        for i in 0..count {
            let partition = (self.next_partition + i) % count;
            if self.read_partition(partition as u32, 0).await? {
                self.next_partition = (partition + 1) % count;
                return Ok(());
            }
        }
        // Caught up everywhere: wait for the first partition that gets something.
        let waits = (0..count as u32).map(|p| Box::pin(self.fetch(p, STREAM_POLL_WAIT_MS)));
        let (fetched, _, _) = futures_util::future::select_all(waits).await;
        // What it found is read again at once (the others' waits are dropped; their
        // tasks end with their poll).
        drop(fetched?);
        Ok(())
    }

    async fn fetch(
        &self,
        partition: u32,
        max_wait_ms: u32,
    ) -> Result<protocol::ops::fetch::FetchResponse, ApiError> {
        let request = Request::Fetch(FetchRequest {
            topic: self.topic.clone(),
            partition,
            offset: self.positions[partition as usize],
            max_bytes: STREAM_READ_BYTES,
            max_wait_ms,
        });
        match call(&self.broker, &self.caller, request).await? {
            Response::Fetch(fetched) => Ok(fetched),
            other => Err(unexpected(&other)),
        }
    }

    /// Reads `partition` into events; whether it had records.
    async fn read_partition(&mut self, partition: u32, max_wait_ms: u32) -> Result<bool, ApiError> {
        let fetched = self.fetch(partition, max_wait_ms).await?;
        let from = self.positions[partition as usize];
        let (records, _) = records::fetched(&fetched.batches, from, STREAM_EVENTS_PER_READ)
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::StorageError,
                    format!("a stored batch did not read back: {e}"),
                )
            })?;
        for record in records {
            debug_assert!(
                record.offset >= self.positions[partition as usize],
                "in order"
            );
            self.positions[partition as usize] = record.offset + 1;
            let event = record_event(partition, record, &self.positions);
            self.pending.push_back(event);
        }
        debug_assert!(self.pending.len() <= STREAM_EVENTS_PER_READ);
        Ok(!self.pending.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;

    #[test]
    fn positions_round_trip_and_bad_ids_are_refused() {
        assert_eq!(format_positions(&[12, 0, 7]), "12,0,7");
        assert_eq!(parse_positions("12,0,7", 3).unwrap(), [12, 0, 7]);
        assert_eq!(
            parse_positions(&format_positions(&[u64::MAX]), 1).unwrap(),
            [u64::MAX]
        );
        for bad in ["", "1,2", "1,2,3,4", "a,b,c", "1,,3", "-1,0,0"] {
            let error = parse_positions(bad, 3).unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidRequest, "{bad:?}");
        }
        let long = "1,".repeat(MAX_LAST_EVENT_ID_CHARS);
        assert!(parse_positions(&long, MAX_LAST_EVENT_ID_CHARS).is_err());
    }

    fn record(offset: u64, value: &str) -> FetchedRecord {
        FetchedRecord {
            offset,
            timestamp_ms: 5,
            key: None,
            key_base64: None,
            value: Some(serde_json::Value::String(value.into())),
            value_base64: None,
            headers: Vec::new(),
        }
    }

    #[tokio::test]
    async fn events_are_framed_as_server_sent_events_one_line_of_data_each() {
        let events = vec![
            Ok::<_, Infallible>(record_event(1, record(4, "a\nb"), &[0, 5])),
            Ok(error_event(&ApiError::invalid("gone"))),
        ];
        let response = Sse::new(futures_util::stream::iter(events)).into_response();
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{:?}",
            response.headers()
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = std::str::from_utf8(&body).unwrap();
        let frames: Vec<&str> = text.split_terminator("\n\n").collect();
        assert_eq!(frames.len(), 2, "{text:?}");
        let lines: Vec<&str> = frames[0].lines().collect();
        assert_eq!(
            lines.len(),
            3,
            "a newline in a value stays inside the JSON: {text:?}"
        );
        assert_eq!(lines[0], "id: 0,5");
        assert_eq!(lines[1], "event: record");
        let data: serde_json::Value =
            serde_json::from_str(lines[2].strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(data["partition"], 1);
        assert_eq!(data["record"]["offset"], 4);
        assert_eq!(data["record"]["value"], "a\nb");
        assert!(
            frames[1].starts_with("event: error\ndata: {\"error\":{\"code\":\"invalid_request\""),
            "{text:?}"
        );
    }
}
