//! `/healthz` and `/readyz`, for load balancers and Kubernetes probes
//! (`docs/operations.md`, "Health").
//!
//! `/healthz` says the process answers. `/readyz` says every partition's log opened
//! and none has failed since: a log that refused to open at startup, or whose sync
//! failed (which is how a full disk shows: the write or the `fdatasync` fails, and
//! the log refuses appends until the broker restarts), makes it 503 with the reasons
//! (their number only when authentication is on: the probes need no credentials).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::state::HttpState;
use crate::broker::Broker;
use crate::partition::Partition;

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
    let mut reasons = unready_reasons(&state.broker);
    // The probe needs no credentials; with authentication on it must not tell who
    // asks which topics exist: the count only, the names are in the broker's log.
    if state.broker.security.enabled() && !reasons.is_empty() {
        let failed = failed_partitions(&state.broker);
        reasons = vec![format!(
            "{failed} partition(s) refused to open or failed; the broker's log names them"
        )];
    }
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
    let topics = broker.topics.list();
    let partitions = topics.iter().flat_map(|t| {
        t.partitions
            .iter()
            .map(move |p| (t.name.as_str(), p.as_ref()))
    });
    reasons(partitions)
}

/// How many partitions refused to open or failed.
pub fn failed_partitions(broker: &Broker) -> usize {
    broker
        .topics
        .list()
        .iter()
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.failure().is_some())
        .count()
}

/// The readiness reasons of `partitions` (topic name, partition).
fn reasons<'a>(partitions: impl IntoIterator<Item = (&'a str, &'a Partition)>) -> Vec<String> {
    let mut reasons = Vec::new();
    let mut more = 0usize;
    for (topic, partition) in partitions {
        let Some(failure) = partition.failure() else {
            continue;
        };
        if reasons.len() < MAX_READINESS_REASONS {
            reasons.push(format!(
                "{topic}/{}: {}",
                partition.id,
                crate::error::redact_data_paths(&failure)
            ));
        } else {
            more += 1;
        }
    }
    if more > 0 {
        reasons.push(format!("and {more} more partitions"));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use protocol::batch::BatchBuilder;
    use storage::sim::{FaultPlan, SimVfs};
    use storage::{Durability, Log, LogConfig, LogOptions};

    use super::*;

    fn batch() -> bytes::Bytes {
        let mut builder = BatchBuilder::new();
        builder.push(1, None, Some(b"v"), &[]).unwrap();
        builder.finish()
    }

    #[tokio::test]
    async fn a_failed_fsync_makes_the_broker_unready_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimVfs::new(11);
        let options = LogOptions {
            vfs: Arc::new(sim.clone()),
            ..LogOptions::default()
        };
        let config = LogConfig {
            durability: Durability::Always,
            ..LogConfig::default()
        };
        // The healthy partition is on the real file system: on the simulated one its
        // zero-ahead, which syncs whenever a worker is idle, could take the armed
        // fault instead of the failing partition's group commit.
        let healthy = Partition::new(
            0,
            Log::open_with(
                dir.path().join("topics/t/0"),
                config.clone(),
                LogOptions::default(),
            )
            .unwrap(),
        );
        let failing = Partition::new(
            1,
            Log::open_with(dir.path().join("topics/t/1"), config, options).unwrap(),
        );
        healthy.append(&batch()).unwrap();
        healthy
            .wait_durable(1, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(
            reasons([("t", &healthy), ("t", &failing)]).is_empty(),
            "ready"
        );

        sim.arm(FaultPlan {
            eio_at_sync: Some(0),
            ..FaultPlan::default()
        });
        failing.append(&batch()).unwrap();
        let waited = failing.wait_durable(1, Duration::from_secs(10)).await;
        assert!(waited.is_err(), "the sync failed: {waited:?}");
        let reasons = reasons([("t", &healthy), ("t", &failing)]);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].starts_with("t/1: "), "{reasons:?}");
        assert!(
            !reasons[0].contains(&dir.path().display().to_string()),
            "no data paths: {reasons:?}"
        );
    }

    #[test]
    fn a_partition_that_refused_to_open_is_a_reason_and_the_list_is_bounded() {
        let refused: Vec<Partition> = (0..MAX_READINESS_REASONS as u32 + 3)
            .map(|id| Partition::refused(id, Durability::Always, "a segment is missing".into()))
            .collect();
        let reasons = reasons(refused.iter().map(|p| ("t", p)));
        assert_eq!(reasons.len(), MAX_READINESS_REASONS + 1);
        assert!(reasons[0].contains("a segment is missing"), "{reasons:?}");
        assert_eq!(reasons[MAX_READINESS_REASONS], "and 3 more partitions");
    }
}
