//! Committing: the positions of records already returned, never beyond them.
//!
//! Per owned partition the consumer keeps the offset after the last record
//! [`next`](Consumer::next) returned (`returned`) and the offset last committed
//! (`committed`); a commit sends the partitions where the two differ. Committing only
//! what was returned is what makes delivery at least once: a record fetched but not
//! returned is read again by the partition's next owner, never skipped. Partitions a
//! rebalance takes away are committed when the change is applied
//! ([`super::assignment`]), before the broker hands them over. The broker accepts a
//! commit for any partition the member still owns, whatever generation it carries; a
//! refusal with `stale_generation` means a partition was handed over without this
//! member (its release was forced after a whole session timeout without applying the
//! change): the consumer heartbeats to learn the new assignment, applies it, and
//! commits once more the partitions still owned, whose positions stay valid; a
//! refusal because the broker forgot the member (it restarted) is handled the same
//! way, the heartbeat joining again first. Auto
//! commit runs from `next` at the configured interval; its failures are logged, not
//! returned, since the positions stay and the next commit covers them.

use std::time::Instant;

use protocol::ErrorCode;

use super::Consumer;
use crate::error::ClientError;

impl Consumer {
    /// Commits, for each partition this consumer owns, the offset after the last
    /// record returned by [`next`](Self::next) — never past it. Partitions with
    /// nothing new are skipped.
    ///
    /// If the broker refuses with `stale_generation` (a partition was handed over
    /// before this consumer applied the change: it did not poll for a whole session
    /// timeout), the consumer heartbeats to learn the new assignment, applies it, and
    /// commits once more the partitions it still owns, whose positions stay valid;
    /// positions of partitions it lost are dropped (their new owner resumes from the
    /// last commit). A second refusal is returned as the error.
    ///
    /// If the broker no longer knows the member (`unknown_member` or `unknown_group`:
    /// it restarted, and the heartbeat task has not rejoined yet), the consumer
    /// heartbeats, which joins again, applies the new membership (keeping the
    /// positions of the partitions it gets back, see [`super::assignment`]) and
    /// commits once more as the new member.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        match self.commit_returned().await {
            Err(e)
                if matches!(
                    e.code(),
                    Some(
                        ErrorCode::StaleGeneration
                            | ErrorCode::UnknownMember
                            | ErrorCode::UnknownGroup
                    )
                ) =>
            {
                tracing::debug!(group = %self.group, error = %e, "commit raced a rebalance or a rejoin");
                self.heartbeater.beat().await;
                self.commit_returned().await
            }
            other => other,
        }
    }

    async fn commit_returned(&mut self) -> Result<(), ClientError> {
        self.apply_membership().await?;
        let offsets: Vec<(u32, u64)> = self
            .returned
            .iter()
            .filter(|(p, o)| self.committed.get(p) != Some(o))
            .map(|(&p, &o)| (p, o))
            .collect();
        self.commit_offsets(&offsets).await
    }

    /// Commits explicit `(partition, next offset to read)` pairs in the applied
    /// generation. The broker refuses partitions this member does not own (any more:
    /// `stale_generation`; or yet: `invalid_partition`).
    pub async fn commit_offsets(&mut self, offsets: &[(u32, u64)]) -> Result<(), ClientError> {
        self.last_commit = Instant::now();
        if offsets.is_empty() {
            return Ok(());
        }
        let Some(membership) = &self.applied else {
            return Err(ClientError::Closed("the consumer"));
        };
        self.client
            .commit_offsets(
                &self.group,
                &membership.member_id,
                membership.generation,
                &self.topic,
                offsets,
            )
            .await?;
        for &(p, o) in offsets {
            self.committed.insert(p, o);
        }
        tracing::debug!(group = %self.group, ?offsets, "committed");
        Ok(())
    }

    pub(super) async fn maybe_auto_commit(&mut self) {
        let Some(interval) = self.config.auto_commit else {
            return;
        };
        if self.last_commit.elapsed() < interval {
            return;
        }
        if let Err(error) = self.commit().await {
            // A lost connection, or a forced handover; the positions stay and the next
            // commit covers them if the partitions stayed ours.
            tracing::warn!(group = %self.group, %error, "auto commit failed");
        }
    }
}
