//! Watching the service registry as Server-Sent Events: registrations, expiries and
//! deregistrations as they happen (heartbeats, and the restatements a compaction
//! writes, are left out), exactly what the native client's `watch_services` and
//! `brokerctl services watch` see, because it is the same thing: a tail of the
//! internal topic `__registry`, read with Fetch long polls through the request layer
//! ([`internal_read`]), so it needs what the native watch needs (Read on the topic
//! `__registry`).
//!
//! Each event is `event: registered|expired|deregistered`, `id:` its offset on
//! `__registry`, `data:` a [`RegistryChange`]. A client that reconnects with
//! `Last-Event-ID` resumes after that event, missing nothing and repeating nothing.
//! Comments (`: keep-alive`) are sent every [`WATCH_KEEPALIVE`] without an event, so
//! proxies keep the connection open and clients notice a dead one.
//!
//! Backpressure: the stream is pulled. The next Fetch is made only when the client
//! has taken every event of the last one, so a slow reader holds at most
//! [`WATCH_BUFFER_EVENTS`] decoded events and one read of at most
//! [`WATCH_FETCH_BYTES`]; the rest waits on disk, in the topic. The stream ends when
//! the broker shuts down, after `count` events, after `timeout_ms` without one, or
//! with an `event: error` when a read fails (its data is the gateway's JSON error).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures_util::Stream;
use protocol::ops::registry::{RegistryEvent, REGISTRY_TOPIC, SNAPSHOT_HEADER};
use protocol::ErrorCode;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::{ApiPath, ApiQuery};
use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::internal_read::{self, Reading};
use super::services::{ServicePath, Tag};
use super::state::HttpState;
use crate::broker::Broker;
use crate::shutdown::Shutdown;

/// Bytes of `__registry` one read of a watch takes at most.
pub const WATCH_FETCH_BYTES: u32 = 64 * 1024;
/// Decoded events one watch holds, waiting for its client, at most (one read's).
pub const WATCH_BUFFER_EVENTS: usize = 256;
/// How long one long poll of a watch waits for a change (capped by
/// `limits.max_fetch_wait_ms`).
pub const WATCH_POLL_MS: u32 = 10_000;
/// A comment is sent after this long without an event.
pub const WATCH_KEEPALIVE: Duration = Duration::from_secs(15);

/// Watch parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WatchParams {
    /// End the stream after this many events.
    #[serde(default)]
    pub count: Option<u64>,
    /// End the stream after this long without an event, ms.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// One change of the registry, the `data` of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RegistryChange {
    /// `registered`, `expired` or `deregistered` (also the event's name).
    #[schema(example = "registered")]
    pub event: &'static str,
    /// The service.
    pub service: String,
    /// The instance.
    pub instance_id: String,
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// Its address (`registered` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Its tags (`registered` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    /// Its TTL, ms (`registered` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u32>,
}

/// What a watcher is told of `event`, if anything: heartbeats are not changes.
pub fn change(event: RegistryEvent) -> Option<RegistryChange> {
    let plain = |event, service, instance_id, at_ms| RegistryChange {
        event,
        service,
        instance_id,
        at_ms,
        address: None,
        tags: None,
        ttl_ms: None,
    };
    match event {
        RegistryEvent::Registered {
            service,
            instance_id,
            address,
            tags,
            ttl_ms,
            at_ms,
        } => Some(RegistryChange {
            address: Some(address),
            tags: Some(Tag::list(tags)),
            ttl_ms: Some(ttl_ms),
            ..plain("registered", service, instance_id, at_ms)
        }),
        RegistryEvent::Heartbeat { .. } => None,
        RegistryEvent::Expired {
            service,
            instance_id,
            at_ms,
        } => Some(plain("expired", service, instance_id, at_ms)),
        RegistryEvent::Deregistered {
            service,
            instance_id,
            at_ms,
        } => Some(plain("deregistered", service, instance_id, at_ms)),
    }
}

/// The shutdown of the listener a request came in on, when it has one (the gateway
/// puts it in the request's extensions), so a stream can end with it.
#[derive(Debug, Clone)]
pub struct ListenerShutdown(pub Option<Shutdown>);

impl<S: Send + Sync> FromRequestParts<S> for ListenerShutdown {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ListenerShutdown(
            parts.extensions.get::<Shutdown>().cloned(),
        ))
    }
}

/// Where a watch starts: after the `Last-Event-ID` a reconnecting client sends, or
/// at the end of `__registry` (changes from now on).
pub fn start_offset(
    last_event_id: Option<&str>,
    (start, end): (u64, u64),
) -> Result<u64, ApiError> {
    let Some(id) = last_event_id else {
        return Ok(end);
    };
    let Some(next) = id.trim().parse::<u64>().ok().and_then(|n| n.checked_add(1)) else {
        return Err(ApiError::invalid(
            "Last-Event-ID must be the id of an event of this stream (an offset)",
        ));
    };
    if next < start {
        return Err(ApiError::new(
            ErrorCode::OffsetOutOfRange,
            format!("the registry's history before offset {start} was compacted away; watch again without Last-Event-ID (and discover the service for its current instances)"),
        ));
    }
    if next > end {
        return Err(ApiError::invalid(format!(
            "Last-Event-ID is past the registry's end ({end})"
        )));
    }
    Ok(next)
}

/// Watches every service.
#[utoipa::path(get, path = "/v1/registry/watch", tag = "services",
    params(WatchParams, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (its `id`).")),
    responses(
        (status = 200, description = "Server-Sent Events: `event: registered|expired|deregistered`, `id`, `data` a RegistryChange; comments as keep-alives; `event: error` (data an ErrorBody) before the stream ends on a failed read.", content_type = "text/event-stream", body = RegistryChange),
        (status = "4XX", description = "Refused (watching needs Read on the topic `__registry`), or a bad Last-Event-ID.", body = ErrorBody),
    ))]
pub async fn watch_all(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    shutdown: ListenerShutdown,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<WatchParams>,
) -> Result<impl IntoResponse, ApiError> {
    watch(state, caller, shutdown, headers, params, None).await
}

/// Watches one service.
#[utoipa::path(get, path = "/v1/services/{service}/watch", tag = "services",
    params(ServicePath, WatchParams, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (its `id`).")),
    responses(
        (status = 200, description = "Server-Sent Events of this service, as for /v1/registry/watch.", content_type = "text/event-stream", body = RegistryChange),
        (status = "4XX", description = "Refused (watching needs Read on the topic `__registry`), or a bad Last-Event-ID.", body = ErrorBody),
    ))]
pub async fn watch_service(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    shutdown: ListenerShutdown,
    headers: HeaderMap,
    ApiPath(path): ApiPath<ServicePath>,
    ApiQuery(params): ApiQuery<WatchParams>,
) -> Result<impl IntoResponse, ApiError> {
    watch(state, caller, shutdown, headers, params, Some(path.service)).await
}

async fn watch(
    state: Arc<HttpState>,
    caller: Caller,
    ListenerShutdown(shutdown): ListenerShutdown,
    headers: HeaderMap,
    params: WatchParams,
    service: Option<String>,
) -> Result<impl IntoResponse, ApiError> {
    let broker = state.broker.clone();
    // Before the stream starts, so a refusal is a plain JSON 4xx; the registry's
    // topic exists from the broker's start.
    let bounds = internal_read::bounds(&broker, &caller, REGISTRY_TOPIC)
        .await?
        .unwrap_or((0, 0));
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("not text"));
    let next = start_offset(last_event_id, bounds)?;
    let poll_ms = WATCH_POLL_MS.min(broker.config.limits.max_fetch_wait_ms);
    let watch = Watch {
        broker,
        caller,
        service,
        next,
        pending: VecDeque::with_capacity(WATCH_BUFFER_EVENTS),
        left: params.count,
        idle: params.timeout_ms.map(Duration::from_millis),
        last_event: Instant::now(),
        poll_ms,
        shutdown,
        done: false,
    };
    Ok(Sse::new(events(watch)).keep_alive(
        KeepAlive::new()
            .interval(WATCH_KEEPALIVE)
            .text("keep-alive"),
    ))
}

/// One watch's state between the events it sends.
struct Watch {
    broker: Arc<Broker>,
    caller: Caller,
    service: Option<String>,
    /// The offset of `__registry` to read next.
    next: u64,
    /// Decoded changes not yet sent, with their offsets (at most
    /// [`WATCH_BUFFER_EVENTS`]).
    pending: VecDeque<(u64, RegistryChange)>,
    /// Events still to send, when a count was asked.
    left: Option<u64>,
    /// How long the stream may go without an event.
    idle: Option<Duration>,
    last_event: Instant,
    poll_ms: u32,
    shutdown: Option<Shutdown>,
    done: bool,
}

/// The reading settings of a watch.
const READING: Reading<'static> = Reading {
    topic: REGISTRY_TOPIC,
    max_bytes: WATCH_FETCH_BYTES,
    max_records: WATCH_BUFFER_EVENTS,
    mark: SNAPSHOT_HEADER,
};

/// Why a watch stopped reading.
enum Stop {
    /// Shutdown, the idle timeout: end quietly.
    Quietly,
    /// A read failed: say so, then end.
    Failed(ApiError),
}

impl Watch {
    /// Reads until there is something to send (or a reason to stop).
    async fn fill(&mut self) -> Result<(), Stop> {
        while self.pending.is_empty() {
            let wait_ms = match self.idle {
                Some(idle) => {
                    let left = idle.saturating_sub(self.last_event.elapsed());
                    if left.is_zero() {
                        return Err(Stop::Quietly);
                    }
                    u32::try_from(left.as_millis())
                        .unwrap_or(u32::MAX)
                        .min(self.poll_ms)
                }
                None => self.poll_ms,
            };
            let read = internal_read::read(&self.broker, &self.caller, READING, self.next, wait_ms);
            let read = match &mut self.shutdown {
                Some(shutdown) => tokio::select! {
                    read = read => read,
                    () = shutdown.recv() => return Err(Stop::Quietly),
                },
                None => read.await,
            };
            let (records, next) = read.map_err(Stop::Failed)?;
            debug_assert!(next >= self.next, "a watch never moves back");
            self.next = next;
            for record in records {
                if record.marked {
                    continue;
                }
                let Some(change) = record
                    .value
                    .and_then(|v| RegistryEvent::decode(v).ok())
                    .and_then(change)
                else {
                    continue;
                };
                if self.service.as_ref().is_none_or(|s| *s == change.service) {
                    self.pending.push_back((record.offset, change));
                }
            }
            debug_assert!(self.pending.len() <= WATCH_BUFFER_EVENTS);
        }
        Ok(())
    }

    /// The next event to send, or `None` when the stream ends.
    async fn next_event(&mut self) -> Option<Event> {
        if self.done || self.left == Some(0) {
            return None;
        }
        match self.fill().await {
            Ok(()) => {}
            Err(Stop::Quietly) => return None,
            Err(Stop::Failed(error)) => {
                self.done = true;
                return Some(error_event(&error));
            }
        }
        let (offset, change) = self.pending.pop_front()?;
        self.left = self.left.map(|n| n - 1);
        self.last_event = Instant::now();
        let event = Event::default().event(change.event).id(offset.to_string());
        Some(match event.json_data(&change) {
            Ok(event) => event,
            Err(_) => error_event(&ApiError::new(
                ErrorCode::Internal,
                "a registry change did not serialise",
            )),
        })
    }
}

fn error_event(error: &ApiError) -> Event {
    let body = ErrorBody {
        error: ErrorDetail {
            code: error.code().name().to_string(),
            message: error.message().to_string(),
        },
    };
    let data = serde_json::to_string(&body).unwrap_or_else(|_| "{}".into());
    Event::default().event("error").data(data)
}

/// The watch as a stream, pulled one event at a time.
fn events(watch: Watch) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    futures_util::stream::unfold(watch, |mut watch| async move {
        let event = watch.next_event().await?;
        Some((Ok(event), watch))
    })
}

#[cfg(test)]
mod tests {
    use protocol::ops::topic::ConfigEntry;

    use super::*;

    #[test]
    fn changes_leave_heartbeats_out() {
        let registered = RegistryEvent::Registered {
            service: "billing".into(),
            instance_id: "b-1".into(),
            address: "10.0.0.7:8080".into(),
            tags: vec![ConfigEntry {
                key: "zone".into(),
                value: "a".into(),
            }],
            ttl_ms: 5000,
            at_ms: 7,
        };
        let change = change(registered).unwrap();
        assert_eq!(change.event, "registered");
        assert_eq!(change.address.as_deref(), Some("10.0.0.7:8080"));
        assert_eq!(
            serde_json::to_value(&change).unwrap(),
            serde_json::json!({"event": "registered", "service": "billing", "instance_id": "b-1",
                "at_ms": 7, "address": "10.0.0.7:8080", "tags": [{"key": "zone", "value": "a"}], "ttl_ms": 5000})
        );
        let beat = RegistryEvent::Heartbeat {
            service: "billing".into(),
            instance_id: "b-1".into(),
            at_ms: 8,
        };
        assert_eq!(super::change(beat), None);
        let gone = RegistryEvent::Expired {
            service: "billing".into(),
            instance_id: "b-1".into(),
            at_ms: 9,
        };
        assert_eq!(
            serde_json::to_value(super::change(gone).unwrap()).unwrap(),
            serde_json::json!({"event": "expired", "service": "billing", "instance_id": "b-1", "at_ms": 9})
        );
    }

    #[test]
    fn a_watch_starts_at_the_end_or_after_the_last_event_id() {
        assert_eq!(start_offset(None, (5, 20)).unwrap(), 20);
        assert_eq!(start_offset(Some("9"), (5, 20)).unwrap(), 10);
        assert_eq!(start_offset(Some(" 19 "), (5, 20)).unwrap(), 20);
        assert_eq!(start_offset(Some("4"), (5, 20)).unwrap(), 5);
        assert_eq!(
            start_offset(Some("3"), (5, 20)).unwrap_err().code(),
            ErrorCode::OffsetOutOfRange
        );
        for bad in ["20", "x", "", "18446744073709551615"] {
            assert_eq!(
                start_offset(Some(bad), (5, 20)).unwrap_err().code(),
                ErrorCode::InvalidRequest,
                "{bad}"
            );
        }
    }
}
