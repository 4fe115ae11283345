//! This member's place in the group, and the task that keeps it.
//!
//! The broker is the source of truth: a [`Membership`] is what it last said (member
//! id, generation, partitions). The [`Heartbeater`] heartbeats every
//! `heartbeat_interval` from a background task and publishes each change on a `watch`
//! channel, which the consumer reads at the top of every call: a `watch`, because only
//! the latest assignment matters and publishing it never waits for the consumer. When
//! the broker has forgotten the member (session expired, broker restarted), the
//! heartbeater joins again as a new member, and the consumer restarts its partitions
//! from the committed offsets, or from where it got to if that is further
//! (`assignment::resume_offset`).
//!
//! A heartbeat reports the generation the consumer has *applied*, not the last one
//! learned: the broker hands a partition revoked from this member to its next owner
//! only once this member reports a generation at or after the one that revoked it,
//! that is, once it stopped reading the partition and committed it. The consumer
//! records what it applied with [`Heartbeater::applied`], which wakes the task to
//! beat at once when partitions were dropped, so the handover waits for a round trip,
//! not a whole interval.

use std::sync::Arc;
use std::time::Duration;

use protocol::ops::group::GroupStart;
use protocol::ErrorCode;
use tokio::sync::{watch, Notify};

use crate::connection::Client;

/// This member's place in the group, as last reported by the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Membership {
    pub(super) member_id: String,
    pub(super) generation: u32,
    /// Sorted.
    pub(super) partitions: Vec<u32>,
}

impl Membership {
    pub(super) fn new(member_id: String, generation: u32, mut partitions: Vec<u32>) -> Membership {
        partitions.sort_unstable();
        Membership {
            member_id,
            generation,
            partitions,
        }
    }
}

/// The generation whose assignment the consumer has applied, and the member id it
/// was applied as.
#[derive(Debug)]
struct Applied {
    member_id: String,
    generation: u32,
}

/// Heartbeats for one member and publishes its membership. Shared by the background
/// task and the consumer (which heartbeats at once when a commit finds the group has
/// moved on); the lock keeps the two from both rejoining after the broker forgot us.
#[derive(Debug)]
pub(super) struct Heartbeater {
    client: Client,
    group: String,
    topic: String,
    session_timeout: Duration,
    start: GroupStart,
    membership: watch::Sender<Membership>,
    beating: tokio::sync::Mutex<()>,
    /// What heartbeats report. Before the consumer applies anything, the join's
    /// generation counts as applied: the member owns nothing it could have to stop.
    applied: std::sync::Mutex<Applied>,
    /// Makes the background task beat now instead of at its next tick.
    wake: Notify,
}

impl Heartbeater {
    /// A heartbeater for the member `joined` describes; its membership goes to
    /// `membership`'s receivers.
    pub(super) fn new(
        client: Client,
        group: &str,
        topic: &str,
        session_timeout: Duration,
        start: GroupStart,
        membership: watch::Sender<Membership>,
    ) -> Heartbeater {
        let joined = membership.borrow().clone();
        Heartbeater {
            client,
            group: group.to_string(),
            topic: topic.to_string(),
            session_timeout,
            start,
            membership,
            beating: tokio::sync::Mutex::new(()),
            applied: std::sync::Mutex::new(Applied {
                member_id: joined.member_id,
                generation: joined.generation,
            }),
            wake: Notify::new(),
        }
    }

    fn lock_applied(&self) -> std::sync::MutexGuard<'_, Applied> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The consumer applied `membership`: later heartbeats report its generation. If
    /// the consumer dropped partitions (`revoked`), heartbeats at once, so the broker
    /// hands them over without waiting for the next tick. A membership of a member id
    /// the heartbeater has since replaced (it rejoined) changes nothing: the new
    /// member's join generation stands.
    pub(super) fn applied(&self, membership: &Membership, revoked: bool) {
        {
            let mut applied = self.lock_applied();
            if applied.member_id != membership.member_id {
                return;
            }
            applied.generation = membership.generation;
        }
        if revoked {
            self.wake.notify_one();
        }
    }

    /// One heartbeat, reporting the applied generation; publishes the membership if
    /// it changed.
    pub(super) async fn beat(&self) {
        let _one_at_a_time = self.beating.lock().await;
        let current = self.membership.borrow().clone();
        let applied = {
            let applied = self.lock_applied();
            debug_assert_eq!(applied.member_id, current.member_id, "one member at a time");
            applied.generation
        };
        let group = &self.group;
        match self
            .client
            .heartbeat(group, &current.member_id, applied)
            .await
        {
            Ok(answer) => {
                let next = Membership::new(
                    current.member_id.clone(),
                    answer.generation,
                    answer.partitions,
                );
                if next != current {
                    tracing::debug!(%group, ?next, "rebalanced");
                    self.membership.send_replace(next);
                }
            }
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::UnknownMember | ErrorCode::UnknownGroup)
                ) =>
            {
                // The broker forgot us (session expired, broker restarted): join again
                // as a new member; the consumer restarts from committed offsets.
                tracing::warn!(%group, error = %e, "membership lost; rejoining");
                let joined = self
                    .client
                    .join_group(group, &self.topic, "", self.session_timeout, self.start)
                    .await;
                match joined {
                    Ok(joined) => {
                        *self.lock_applied() = Applied {
                            member_id: joined.member_id.clone(),
                            generation: joined.generation,
                        };
                        self.membership.send_replace(Membership::new(
                            joined.member_id,
                            joined.generation,
                            joined.partitions,
                        ));
                    }
                    Err(error) => tracing::warn!(%group, %error, "rejoin failed; retrying"),
                }
            }
            Err(error) => tracing::warn!(%group, %error, "heartbeat failed; retrying"),
        }
    }
}

/// Heartbeats every `interval` (which must not be zero), and at once whenever the
/// consumer applied a revocation, until the consumer is gone.
pub(super) async fn heartbeat_loop(heartbeater: Arc<Heartbeater>, interval: Duration) {
    debug_assert!(!interval.is_zero(), "checked by the consumer's config");
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; the join just happened
    while !heartbeater.membership.is_closed() {
        tokio::select! {
            _ = ticker.tick() => {}
            () = heartbeater.wake.notified() => ticker.reset(),
        }
        heartbeater.beat().await;
    }
}
