//! `/metrics`: the broker's Prometheus metrics in the OpenMetrics text format
//! ([`crate::metrics::render`]; every metric is in `docs/operations.md`, "Metrics").
//!
//! The scrape shows topic, partition and group names, so it needs what the native
//! `ServerStats` needs (`cluster` `Describe`), checked through the same table: with
//! authentication off everyone may scrape; with it on, a Prometheus server scrapes as
//! a user (HTTP Basic over TLS) or with a client certificate, granted that ACL.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use protocol::ops::Empty;
use protocol::Request;

use super::auth::Caller;
use super::call;
use super::error::ApiError;
use super::state::HttpState;
use crate::metrics::{render, CONTENT_TYPE};

/// The metrics, rendered at this scrape.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Every metric of the broker, in the OpenMetrics text format.",
            content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "Authentication is on and the request did not authenticate.", body = super::error::ErrorBody),
        (status = 403, description = "The caller may not describe the cluster.", body = super::error::ErrorBody),
    ))]
pub async fn metrics(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    call::authorize(&state.broker, &caller, &Request::ServerStats(Empty))?;
    // A scrape reads state (every topic and group, briefly locked one at a time) and
    // formats text: short, synchronous, and taking no lock across an await.
    Ok((
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        render(&state.broker),
    ))
}
