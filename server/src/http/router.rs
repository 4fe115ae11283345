//! The one table of the gateway's routes. A new endpoint (or a sibling such as
//! `/metrics`) is one line here.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use super::state::HttpState;
use super::{console, registry_watch, routes, services, stats, traces, whoami};
use super::{dlq, groups, queues, stream};
use super::{error, fetch, health, metrics, openapi, produce, topics};

/// Every route of the gateway, with its state. Unknown paths and methods get a JSON
/// 404 / 405 ([`error::unknown_route`]).
pub fn router(state: Arc<HttpState>) -> Router {
    let router = if state.broker.config.http.console {
        Router::new()
            .route("/", get(console::index))
            .route("/console/{*asset}", get(console::asset))
    } else {
        Router::new()
    };
    router
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/topics", get(topics::list).post(topics::create))
        .route(
            "/v1/topics/{topic}",
            get(topics::describe).delete(topics::delete),
        )
        .route(
            "/v1/topics/{topic}/records",
            axum::routing::post(produce::produce),
        )
        .route(
            "/v1/topics/{topic}/partitions/{partition}/records",
            get(fetch::fetch).delete(topics::delete_records),
        )
        .route(
            "/v1/topics/{topic}/partitions/{partition}/offset",
            get(fetch::offset_for_time),
        )
        .route("/v1/services", get(services::list))
        .route("/v1/services/{service}", get(services::discover))
        .route(
            "/v1/services/{service}/instances/{instance_id}",
            get(services::instance)
                .put(services::register)
                .delete(services::deregister),
        )
        .route(
            "/v1/services/{service}/instances/{instance_id}/heartbeat",
            axum::routing::post(services::heartbeat),
        )
        .route(
            "/v1/services/{service}/watch",
            get(registry_watch::watch_service),
        )
        .route("/v1/registry/watch", get(registry_watch::watch_all))
        .route("/v1/routes", get(routes::list).post(routes::add))
        .route("/v1/routes/match", axum::routing::post(routes::probe))
        .route(
            "/v1/routes/{route_id}",
            axum::routing::delete(routes::delete),
        )
        .route(
            "/v1/publish/{routing_key}",
            axum::routing::post(routes::publish),
        )
        .route("/v1/traces", get(traces::list))
        .route("/v1/traces/{trace_id}", get(traces::trace))
        .route("/v1/stats", get(stats::server))
        .route("/v1/whoami", get(whoami::whoami))
        .route("/v1/topics/{topic}/stats", get(stats::topic))
        .route(
            "/v1/topics/{topic}/queues/{group}/receive",
            axum::routing::post(queues::receive),
        )
        .route(
            "/v1/topics/{topic}/queues/{group}/acks",
            axum::routing::post(queues::ack_many),
        )
        .route(
            "/v1/topics/{topic}/queues/{group}/messages/{delivery_id}",
            axum::routing::delete(queues::ack_one),
        )
        .route(
            "/v1/topics/{topic}/queues/{group}/messages/{delivery_id}/nack",
            axum::routing::post(queues::nack),
        )
        .route(
            "/v1/topics/{topic}/queues/{group}/messages/{delivery_id}/extend",
            axum::routing::post(queues::extend),
        )
        .route(
            "/v1/topics/{topic}/queues/{group}/membership",
            axum::routing::delete(queues::leave),
        )
        .route("/v1/topics/{topic}/stream", get(stream::stream))
        .route(
            "/v1/topics/{topic}/groups/{group}/records",
            get(groups::read),
        )
        .route(
            "/v1/topics/{topic}/groups/{group}/commit",
            axum::routing::post(groups::commit),
        )
        .route(
            "/v1/topics/{topic}/groups/{group}/membership",
            axum::routing::delete(groups::leave),
        )
        .route("/v1/groups", get(groups::list))
        .route(
            "/v1/groups/{group}",
            get(groups::describe).delete(groups::delete),
        )
        .route(
            "/v1/groups/{group}/reset",
            axum::routing::post(groups::reset),
        )
        .route("/v1/topics/{topic}/dlq", get(dlq::list).delete(dlq::purge))
        .route(
            "/v1/topics/{topic}/dlq/replay",
            axum::routing::post(dlq::replay),
        )
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(error::no_challenge_for_scripts))
        .with_state(state)
}
