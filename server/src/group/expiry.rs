//! Groups nobody uses: a group that has had no member, in the native coordinator or
//! the Kafka one, for `[groups] empty_group_retention_ms` is deleted (its committed
//! offsets, its queue state), as Kafka deletes a group's offsets
//! `offsets.retention.minutes` after it became empty. Without this every group ever
//! joined, by a test run, a one-off script or a renamed service, would be kept, and
//! listed, for ever.
//!
//! Emptiness is timed on the broker's monotonic clock from the first sweep that finds
//! the group empty, and only in this run: after a restart a group gets the whole
//! retention again, so it is never deleted sooner than configured. The times are kept
//! for empty groups only (bounded by the groups there are); a group that gains a
//! member is forgotten until it is empty again.

use std::collections::HashSet;
use std::time::Duration;

use super::Groups;
use crate::error::BrokerError;

/// Longest time between sweeps; shorter retentions are swept four times per period.
pub const EMPTY_GROUP_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// Shortest retention that may be configured (0 turns deletion off).
pub const MIN_EMPTY_GROUP_RETENTION_MS: u64 = 1000;

impl Groups {
    /// One sweep: deletes every group that has had no member for the configured
    /// retention, where `live_elsewhere` says whether another coordinator (Kafka's)
    /// has members in a group of that name. Returns the groups deleted, by name.
    pub async fn delete_expired(
        &self,
        live_elsewhere: &(dyn Fn(&str) -> bool + Sync),
    ) -> Vec<String> {
        let retention_ms = self.config.empty_group_retention_ms;
        if retention_ms == 0 {
            return Vec::new();
        }
        let now_ms = self.clock.monotonic_ms();
        let empty: Vec<String> = self
            .list()
            .into_iter()
            .filter(|g| g.members == 0 && !live_elsewhere(&g.group))
            .map(|g| g.group)
            .collect();
        let due: Vec<String> = {
            let mut since = self.empty_since.lock().unwrap_or_else(|p| p.into_inner());
            let empty_now: HashSet<&str> = empty.iter().map(String::as_str).collect();
            since.retain(|group, _| empty_now.contains(group.as_str()));
            empty
                .iter()
                .filter(|group| {
                    let first = *since.entry((*group).clone()).or_insert(now_ms);
                    now_ms.saturating_sub(first) >= retention_ms
                })
                .cloned()
                .collect()
        };
        let mut deleted = Vec::with_capacity(due.len());
        for group in due {
            match self.delete(&group).await {
                Ok(topic) => {
                    tracing::info!(
                        group = %group,
                        topic = %topic,
                        retention_ms,
                        "deleted a group that had no members for [groups] empty_group_retention_ms"
                    );
                    deleted.push(group);
                }
                // A member joined since the list, or an operator deleted it first.
                Err(BrokerError::GroupNotEmpty { .. }) | Err(BrokerError::UnknownGroup(_)) => {}
                Err(error) => {
                    tracing::warn!(group = %group, %error, "deleting an expired empty group failed; tried again at the next sweep")
                }
            }
        }
        let mut since = self.empty_since.lock().unwrap_or_else(|p| p.into_inner());
        for group in &deleted {
            since.remove(group);
        }
        deleted
    }
}

/// How often [`run_group_expiry`] sweeps for `retention_ms`: a quarter of it, at
/// most [`EMPTY_GROUP_CHECK_INTERVAL`], at least a second.
pub fn sweep_interval(retention_ms: u64) -> Duration {
    Duration::from_millis(retention_ms / 4)
        .clamp(Duration::from_secs(1), EMPTY_GROUP_CHECK_INTERVAL)
}

/// Runs [`Groups::delete_expired`] until `shutdown`, with the Kafka coordinator's
/// live groups counted as used. Does nothing when deletion is off.
pub async fn run_group_expiry(
    groups: std::sync::Arc<Groups>,
    kafka: std::sync::Arc<crate::kafka::group::KafkaGroups>,
    shutdown: crate::shutdown::Shutdown,
) {
    let retention_ms = groups.config.empty_group_retention_ms;
    if retention_ms == 0 {
        return;
    }
    crate::tasks::every(sweep_interval(retention_ms), shutdown, || {
        let groups = groups.clone();
        let kafka = kafka.clone();
        async move {
            groups.delete_expired(&|group| kafka.is_live(group)).await;
        }
    })
    .await
}
