//! Statistics over HTTP: the server's (uptime, connections, per-topic counters and
//! rates; ServerStats) and one topic's, total and per partition (TopicStats), each
//! one native request through [`call`], the numbers `brokerctl stats` shows.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use protocol::ops::stats::{self as native, TopicStatsRequest};
use protocol::ops::Empty;
use protocol::{Request, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::body::ApiPath;
use super::call::{call, unexpected};
use super::error::{ApiError, ErrorBody};
use super::state::HttpState;
use super::topics::TopicPath;
use crate::stats::ListenerKind;

/// Message and byte counters, total and per second.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Counters {
    /// Records appended since the broker started.
    pub messages_total: u64,
    /// Bytes appended since the broker started.
    pub bytes_total: u64,
    /// Records appended per second, lately.
    pub messages_per_sec: u64,
    /// Bytes appended per second, lately.
    pub bytes_per_sec: u64,
}

impl From<native::Counters> for Counters {
    fn from(c: native::Counters) -> Counters {
        Counters {
            messages_total: c.messages_total,
            bytes_total: c.bytes_total,
            messages_per_sec: c.messages_per_sec,
            bytes_per_sec: c.bytes_per_sec,
        }
    }
}

/// One topic's counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicCounters {
    /// The topic.
    pub topic: String,
    /// Its counters, across partitions.
    #[serde(flatten)]
    pub counters: Counters,
    /// What was read from it since the broker started: fetches, subscription pushes
    /// and queue deliveries (a redelivery counts again). A rate is the difference of
    /// two readings over their interval.
    pub delivered: Delivered,
}

/// Records and bytes delivered from a topic since the broker started.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct Delivered {
    /// Records delivered.
    pub messages_total: u64,
    /// Batch bytes delivered.
    pub bytes_total: u64,
}

/// The records and bytes delivered from `topic`'s partitions, or zeros if it was
/// deleted since the statistics were read.
fn delivered(broker: &crate::broker::Broker, topic: &str) -> Delivered {
    let Ok(topic) = broker.topics.get(topic) else {
        return Delivered::default();
    };
    topic
        .partitions
        .iter()
        .map(|p| p.traffic().read())
        .fold(Delivered::default(), |sum, t| Delivered {
            messages_total: sum.messages_total + t.messages_out,
            bytes_total: sum.bytes_total + t.bytes_out,
        })
}

/// The server's statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerStats {
    /// Since the broker started, ms.
    pub uptime_ms: u64,
    /// Open native connections.
    pub connections: u32,
    /// Open HTTP connections.
    pub http_connections: u64,
    /// The durability policy topics get unless created with their own
    /// (`always`, `os` or `interval:MS`).
    pub default_durability: String,
    /// Every topic but the internal ones.
    pub topics: Vec<TopicCounters>,
}

/// The server's statistics.
#[utoipa::path(get, path = "/v1/stats", tag = "stats",
    responses(
        (status = 200, description = "Uptime, connections, per-topic counters and rates.", body = ServerStats),
        (status = "4XX", description = "Refused (needs Describe on the cluster).", body = ErrorBody),
    ))]
pub async fn server(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
) -> Result<Json<ServerStats>, ApiError> {
    match call(&state.broker, &caller, Request::ServerStats(Empty)).await? {
        Response::ServerStats(stats) => Ok(Json(ServerStats {
            uptime_ms: stats.uptime_ms,
            connections: stats.connections,
            http_connections: state.broker.stats.open(ListenerKind::Http),
            default_durability: state.broker.topic_defaults.durability_name(),
            topics: stats
                .topics
                .into_iter()
                .map(|t| TopicCounters {
                    delivered: delivered(&state.broker, &t.topic),
                    topic: t.topic,
                    counters: t.counters.into(),
                })
                .collect(),
        })),
        other => Err(unexpected(&other)),
    }
}

/// One partition's counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionCounters {
    /// The partition.
    pub partition: u32,
    /// Its counters.
    #[serde(flatten)]
    pub counters: Counters,
}

/// One topic's statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicStats {
    /// The topic.
    pub topic: String,
    /// Across partitions.
    pub total: Counters,
    /// Per partition.
    pub partitions: Vec<PartitionCounters>,
}

/// One topic's statistics.
#[utoipa::path(get, path = "/v1/topics/{topic}/stats", tag = "stats", params(TopicPath),
    responses(
        (status = 200, description = "The topic's counters and rates, total and per partition.", body = TopicStats),
        (status = 404, description = "No such topic.", body = ErrorBody),
        (status = "4XX", description = "Refused (needs Describe on the topic).", body = ErrorBody),
    ))]
pub async fn topic(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<TopicPath>,
) -> Result<Json<TopicStats>, ApiError> {
    super::topics::check_topic_name(&path.topic)?;
    let request = Request::TopicStats(TopicStatsRequest { topic: path.topic });
    match call(&state.broker, &caller, request).await? {
        Response::TopicStats(stats) => Ok(Json(TopicStats {
            topic: stats.topic,
            total: stats.total.into(),
            partitions: stats
                .partitions
                .into_iter()
                .map(|p| PartitionCounters {
                    partition: p.partition,
                    counters: p.counters.into(),
                })
                .collect(),
        })),
        other => Err(unexpected(&other)),
    }
}
