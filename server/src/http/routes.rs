//! Routing rules and publishing by routing key over HTTP: add, list and delete rules
//! (AddRoute, ListRoutes, DeleteRoute), and publish a batch of records by routing key
//! (Publish), each one native request through [`call`]. Published records are the
//! produce endpoint's JSON records, turned into one batch by the same code
//! ([`records::decode`], [`records::build_batch`]); the broker appends that batch to
//! every topic a rule matches, round-robin over each one's partitions.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use protocol::ops::produce::AckLevel;
use protocol::ops::routes::{AddRouteRequest, DeleteRouteRequest, PublishRequest, RouteInfo};
use protocol::ops::Empty;
use protocol::{Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::{ApiPath, ApiQuery, JsonBody};
use super::call::{call, unexpected};
use super::error::{ApiError, ErrorBody};
use super::produce;
use super::produce::{Ack, ProduceParams};
use super::records::{self, ProduceRecord, RecordBytes};
use super::services::Tag;
use super::state::HttpState;

/// A header match of a rule, or a routing header of a publish.
pub type Header = Tag;

/// One routing rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct Route {
    /// Its id.
    pub route_id: u64,
    /// The routing-key pattern: words separated by `.`, `*` one word, `#` zero or
    /// more.
    #[schema(example = "orders.*.eu")]
    pub pattern: String,
    /// The destination topic.
    pub topic: String,
    /// Header matches: a publish must carry every one.
    pub headers: Vec<Header>,
}

impl From<RouteInfo> for Route {
    fn from(r: RouteInfo) -> Route {
        Route {
            route_id: r.route_id,
            pattern: r.pattern,
            topic: r.topic,
            headers: Tag::list(r.headers),
        }
    }
}

/// The rules the caller may describe.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteList {
    /// By id.
    pub routes: Vec<Route>,
}

/// Lists routing rules.
#[utoipa::path(get, path = "/v1/routes", tag = "routes",
    responses(
        (status = 200, description = "The rules.", body = RouteList),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
) -> Result<Json<RouteList>, ApiError> {
    match call(&state.broker, &caller, Request::ListRoutes(Empty)).await? {
        Response::ListRoutes(list) => Ok(Json(RouteList {
            routes: list.routes.into_iter().map(Route::from).collect(),
        })),
        other => Err(unexpected(&other)),
    }
}

/// `POST /v1/routes` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoute {
    /// The routing-key pattern.
    #[schema(example = "orders.*.eu")]
    pub pattern: String,
    /// The destination topic (it must exist).
    #[schema(example = "orders-eu")]
    pub topic: String,
    /// Header matches, all required.
    #[serde(deserialize_with = "super::body::objects")]
    #[serde(default)]
    pub headers: Vec<Header>,
}

/// A new rule's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteAdded {
    /// Its id, for `DELETE /v1/routes/{route_id}`.
    pub route_id: u64,
}

/// Adds a routing rule.
#[utoipa::path(post, path = "/v1/routes", tag = "routes", request_body = NewRoute,
    responses(
        (status = 201, description = "Added, durably.", body = RouteAdded),
        (status = 400, description = "A bad pattern or header.", body = ErrorBody),
        (status = 404, description = "No such destination topic.", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn add(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    JsonBody(body): JsonBody<NewRoute>,
) -> Result<(StatusCode, Json<RouteAdded>), ApiError> {
    super::topics::check_topic_name(&body.topic)?;
    let request = Request::AddRoute(AddRouteRequest {
        pattern: body.pattern,
        topic: body.topic,
        headers: Tag::entries(body.headers),
    });
    match call(&state.broker, &caller, request).await? {
        Response::AddRoute(added) => Ok((
            StatusCode::CREATED,
            Json(RouteAdded {
                route_id: added.route_id,
            }),
        )),
        other => Err(unexpected(&other)),
    }
}

/// A rule, in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RoutePath {
    /// The rule's id.
    pub route_id: u64,
}

/// Deletes a routing rule.
#[utoipa::path(delete, path = "/v1/routes/{route_id}", tag = "routes", params(RoutePath),
    responses(
        (status = 204, description = "Deleted, durably."),
        (status = 404, description = "No such rule (`unknown_route`).", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<RoutePath>,
) -> Result<StatusCode, ApiError> {
    let request = Request::DeleteRoute(DeleteRouteRequest {
        route_id: path.route_id,
    });
    match call(&state.broker, &caller, request).await? {
        Response::DeleteRoute(Empty) => Ok(StatusCode::NO_CONTENT),
        other => Err(unexpected(&other)),
    }
}

/// A routing key, in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RoutingKeyPath {
    /// The routing key: words separated by `.`.
    #[param(example = "orders.created.eu")]
    pub routing_key: String,
}

/// `POST /v1/publish/{routing_key}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// Routing headers that rules' header matches are checked against (they are not
    /// stored on the records; give record headers in `records`).
    #[serde(deserialize_with = "super::body::objects")]
    #[serde(default)]
    pub headers: Vec<Header>,
    /// The records, as for produce but without `partition` (each destination's
    /// partition is chosen round-robin); at least one, at most
    /// `http.max_records_per_produce`.
    #[serde(deserialize_with = "super::body::objects")]
    pub records: Vec<ProduceRecord>,
}

/// Where the records went.
#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    /// One entry per destination topic.
    pub routed: Vec<RoutedTo>,
}

/// One destination of a publish.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutedTo {
    /// The topic.
    pub topic: String,
    /// The partition the records went to.
    pub partition: u32,
    /// The first record's offset there; the others follow it in request order.
    pub base_offset: Option<u64>,
}

/// Publishes records by routing key.
#[utoipa::path(post, path = "/v1/publish/{routing_key}", tag = "routes",
    params(RoutingKeyPath, ProduceParams), request_body = PublishBody,
    responses(
        (status = 200, description = "Appended to every matching topic.", body = Published),
        (status = 422, description = "No rule matches and no unroutable topic is set (`unroutable`); nothing was stored.", body = ErrorBody),
        (status = 413, description = "The body or the record count is over the limit.", body = ErrorBody),
        (status = "4XX", description = "Refused: bad JSON or base64, a bad routing key, not authorized. Nothing was stored.", body = ErrorBody),
        (status = 503, description = "Stored but not confirmed durable (`not_durable`), or the disk failed.", body = ErrorBody),
    ))]
pub async fn publish(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<RoutingKeyPath>,
    ApiQuery(params): ApiQuery<ProduceParams>,
    JsonBody(body): JsonBody<PublishBody>,
) -> Result<Json<Published>, ApiError> {
    let broker = &state.broker;
    let limits = &broker.config.http;
    produce::check_count(limits, body.records.len())?;
    if let Some(index) = body.records.iter().position(|r| r.partition.is_some()) {
        return Err(ApiError::invalid(format!(
            "record {index}: a published record has no partition (each destination's is chosen round-robin)"
        )));
    }
    let timeout_ms = produce::timeout_ms(limits, &params)?;
    let decoded = produce::decode_all(&body.records)?;
    let members: Vec<(usize, &RecordBytes)> = decoded.iter().enumerate().collect();
    let batch = records::build_batch(&members, broker.clock.wall_ms())
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let request = Request::Publish(PublishRequest {
        routing_key: path.routing_key,
        headers: Tag::entries(body.headers),
        ack: match params.ack {
            Ack::Appended => AckLevel::Appended,
            Ack::Durable => AckLevel::Durable,
        },
        timeout_ms,
        batch,
    });
    match call(broker, &caller, request).await? {
        Response::Publish(published) => Ok(Json(Published {
            routed: published
                .routed
                .into_iter()
                .map(|r| RoutedTo {
                    topic: r.topic,
                    partition: r.partition,
                    base_offset: r.base_offset,
                })
                .collect(),
        })),
        other => Err(unexpected(&other)),
    }
}

/// `POST /v1/routes/match` body: a routing key and headers to try.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteProbe {
    /// The routing key, as a publish would carry it.
    #[schema(example = "orders.created.eu")]
    pub routing_key: String,
    /// The publish's routing headers.
    #[serde(deserialize_with = "super::body::objects")]
    #[serde(default)]
    pub headers: Vec<Header>,
}

/// Where a publish with the probe's key and headers would go.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteMatches {
    /// One per destination topic, with the lowest-id rule that sends it there (the
    /// rule a publish's error would name), by topic name. Only rules the caller may
    /// describe are considered.
    pub destinations: Vec<Route>,
}

/// Tries a routing key against the rules without publishing anything: the same
/// matcher a publish uses.
#[utoipa::path(post, path = "/v1/routes/match", tag = "routes", request_body = RouteProbe,
    responses(
        (status = 200, description = "The destinations (perhaps none).", body = RouteMatches),
        (status = 400, description = "A malformed routing key.", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn probe(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    JsonBody(body): JsonBody<RouteProbe>,
) -> Result<Json<RouteMatches>, ApiError> {
    crate::routes::matcher::validate_key(&body.routing_key).map_err(ApiError::invalid)?;
    // The caller's own view of the rules (and its authorization), so a probe never
    // reveals a rule the listing would hide.
    let visible: std::collections::BTreeSet<u64> =
        match call(&state.broker, &caller, Request::ListRoutes(Empty)).await? {
            Response::ListRoutes(list) => list.routes.iter().map(|r| r.route_id).collect(),
            other => return Err(unexpected(&other)),
        };
    let headers = Tag::entries(body.headers);
    let destinations = state
        .broker
        .routes
        .destinations(&body.routing_key, &headers)
        .into_values()
        .filter(|r| visible.contains(&r.route_id))
        .map(Route::from)
        .collect();
    Ok(Json(RouteMatches { destinations }))
}
