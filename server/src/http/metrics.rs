//! `/metrics`: the broker's Prometheus metrics in the OpenMetrics text format
//! ([`crate::metrics::render`]; every metric is in `docs/operations.md`, "Metrics").
//!
//! Served without authentication, like the health endpoints, so a Prometheus server
//! needs no broker credentials: it shows topic and group names and counts, never
//! data. The listener is on loopback by default; where it is not, limit who reaches
//! the port (`docs/operations.md`, "Metrics").

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::state::HttpState;
use crate::metrics::{render, CONTENT_TYPE};

/// The metrics, rendered at this scrape.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Every metric of the broker, in the OpenMetrics text format.",
        content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(state): State<Arc<HttpState>>) -> impl IntoResponse {
    // A scrape reads state (every topic and group, briefly locked one at a time) and
    // formats text: short, synchronous, and taking no lock across an await.
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        render(&state.broker),
    )
}
