//! `/healthz` and `/readyz`, for load balancers and Kubernetes probes
//! (`docs/operations.md`, "Health").
//!
//! `/healthz` says the process answers. `/readyz` says every partition's log opened
//! and none has failed since: a log that refused to open at startup, or whose sync
//! failed (which is how a full disk shows: the write or the `fdatasync` fails, and
//! the log refuses appends until the broker restarts), makes it 503 with the reasons.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::state::HttpState;
use crate::broker::Broker;

/// Reasons `/readyz` lists at most; past that it says how many more there are.
pub const MAX_READINESS_REASONS: usize = 20;

/// The answer of `/healthz` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable`.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Why it is not ready: one line per failed partition (empty when ready).
    pub reasons: Vec<String>,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process answers.", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        reasons: Vec::new(),
    })
}

/// Every log is open and none has failed.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Every partition's log is open and healthy.", body = Health),
        (status = 503, description = "A log refused to open or failed (a failed fsync, a full disk).", body = Health),
    ))]
pub async fn readyz(State(state): State<Arc<HttpState>>) -> (StatusCode, Json<Health>) {
    let reasons = unready_reasons(&state.broker);
    if reasons.is_empty() {
        return (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                reasons,
            }),
        );
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Health {
            status: "unavailable",
            reasons,
        }),
    )
}

/// Why the broker is not ready: each partition whose log refused to open or failed,
/// at most [`MAX_READINESS_REASONS`] of them.
pub fn unready_reasons(broker: &Broker) -> Vec<String> {
    let mut reasons = Vec::new();
    let mut more = 0usize;
    for topic in broker.topics.list() {
        for partition in &topic.partitions {
            let Some(failure) = partition.failure() else {
                continue;
            };
            if reasons.len() < MAX_READINESS_REASONS {
                reasons.push(format!(
                    "{}/{}: {}",
                    topic.name,
                    partition.id,
                    crate::error::redact_data_paths(&failure)
                ));
            } else {
                more += 1;
            }
        }
    }
    if more > 0 {
        reasons.push(format!("and {more} more partitions"));
    }
    reasons
}
