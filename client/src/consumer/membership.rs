//! This member's place in the group, and the task that keeps it.
//!
//! The broker is the source of truth: a [`Membership`] is what it last said (member
//! id, generation, partitions). The [`Heartbeater`] heartbeats every
//! `heartbeat_interval` from a background task and publishes each change on a `watch`
//! channel, which the consumer reads at the top of every call: a `watch`, because only
//! the latest assignment matters and publishing it never waits for the consumer. When
//! the broker has forgotten the member (session expired, broker restarted), the
//! heartbeater joins again as a new member, and the consumer restarts its partitions
//! from the committed offsets.

use std::sync::Arc;
use std::time::Duration;

use protocol::ops::group::GroupStart;
use protocol::ErrorCode;
use tokio::sync::watch;

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

/// Heartbeats for one member and publishes its membership. Shared by the background
/// task and the consumer (which heartbeats at once when a commit finds the group has
/// moved on); the lock keeps the two from both rejoining after the broker forgot us.
#[derive(Debug)]
pub(super) struct Heartbeater {
    pub(super) client: Client,
    pub(super) group: String,
    pub(super) topic: String,
    pub(super) session_timeout: Duration,
    pub(super) start: GroupStart,
    pub(super) membership: watch::Sender<Membership>,
    pub(super) beating: tokio::sync::Mutex<()>,
}

impl Heartbeater {
    /// One heartbeat; publishes the membership if it changed.
    pub(super) async fn beat(&self) {
        let _one_at_a_time = self.beating.lock().await;
        let current = self.membership.borrow().clone();
        let group = &self.group;
        match self
            .client
            .heartbeat(group, &current.member_id, current.generation)
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

pub(super) async fn heartbeat_loop(heartbeater: Arc<Heartbeater>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; the join just happened
    while !heartbeater.membership.is_closed() {
        ticker.tick().await;
        heartbeater.beat().await;
    }
}
