//! The one table of the gateway's routes. A new endpoint (or a sibling such as
//! `/metrics`) is one line here.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use super::state::HttpState;
use super::{error, health, metrics};

/// Every route of the gateway, with its state. Unknown paths and methods get a JSON
/// 404 / 405 ([`error::unknown_route`]).
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}
