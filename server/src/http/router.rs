//! The one table of the gateway's routes. A new endpoint (or a sibling such as
//! `/metrics`) is one line here.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use super::state::HttpState;
use super::{error, fetch, health, metrics, openapi, produce, topics};

/// Every route of the gateway, with its state. Unknown paths and methods get a JSON
/// 404 / 405 ([`error::unknown_route`]).
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
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
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}
