//! One session of a queue consumer: a member id, the subscription the broker pushes
//! to it on, and the task heartbeating it.
//!
//! A session ends when its subscription does (the connection dropped, for instance
//! because the broker restarted) or when the broker refuses its heartbeats (it forgot
//! the member: restart, or a session timeout without heartbeats). The consumer then
//! opens a new one, joining the group again as a new member: a queue member has no
//! position to keep (the broker tracks every message's state for the group), so a new
//! session is all a rejoin is. Messages the old member held and did not settle are
//! redelivered by the broker, to this consumer or another.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use protocol::ops::subscribe::{StartPosition, SubscribeTarget};
use protocol::ErrorCode;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use super::acker::PendingAck;
use super::message::{Settler, BYTE_CREDIT};
use super::QueueConsumerConfig;
use crate::connection::Client;
use crate::error::ClientError;
use crate::subscription::Subscription;

/// What every session of one consumer shares.
#[derive(Debug, Clone)]
pub(super) struct Shared {
    pub(super) client: Client,
    pub(super) topic: String,
    pub(super) group: String,
    pub(super) config: QueueConsumerConfig,
    pub(super) acks: mpsc::Sender<PendingAck>,
    pub(super) stopped: Arc<AtomicBool>,
}

/// One member id's time in the group.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) member_id: String,
    pub(super) subscription: Subscription,
    pub(super) settler: Arc<Settler>,
    /// Notified by the heartbeat task when the broker refused a heartbeat: the
    /// member is gone, though the subscription may still look open.
    pub(super) lost: Arc<Notify>,
    heartbeat: Heartbeat,
}

/// The heartbeat task, stopped when its session is dropped or ended.
#[derive(Debug)]
struct Heartbeat(JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Joins the group, subscribes for deliveries and starts heartbeating.
pub(super) async fn open(shared: Shared) -> Result<Session, ClientError> {
    let Shared {
        client,
        topic,
        group,
        config,
        acks,
        stopped,
    } = shared;
    let overrides: Vec<(&str, &str)> = config
        .overrides
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let joined = client
        .join_queue_group(&group, &topic, "", config.session_timeout, &overrides)
        .await?;
    let member_id = joined.member_id;
    let target = SubscribeTarget::Group {
        group: group.clone(),
        member_id: member_id.clone(),
    };
    let max_in_flight = config.max_in_flight.max(1);
    let subscribed = client
        .subscribe(
            &topic,
            target,
            StartPosition::Earliest,
            max_in_flight,
            BYTE_CREDIT,
        )
        .await;
    let subscription = match subscribed {
        Ok(subscription) => subscription,
        Err(e) => {
            // Do not leave a member behind that nobody heartbeats or reads for.
            let _ = client.leave_group(&group, &member_id).await;
            return Err(e);
        }
    };
    let lost = Arc::new(Notify::new());
    let heartbeat = Heartbeat(tokio::spawn(heartbeat_loop(
        client.clone(),
        group.clone(),
        member_id.clone(),
        joined.generation,
        config.heartbeat_interval,
        lost.clone(),
    )));
    let settler = Arc::new(Settler {
        client,
        acks,
        group,
        topic,
        subscription_id: subscription.id(),
        earned: AtomicU32::new(0),
        stopped,
        retired: AtomicBool::new(false),
        grant_every: (max_in_flight / 8).max(1),
    });
    tracing::debug!(group = %settler.group, %member_id, "queue member joined");
    Ok(Session {
        member_id,
        subscription,
        settler,
        lost,
        heartbeat,
    })
}

/// Heartbeats every `interval` until the broker refuses one, then tells the consumer
/// through `lost`. A failed connection is retried at the next tick.
async fn heartbeat_loop(
    client: Client,
    group: String,
    member: String,
    mut generation: u32,
    interval: std::time::Duration,
    lost: Arc<Notify>,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        match client.heartbeat(&group, &member, generation).await {
            Ok(answer) => generation = answer.generation,
            Err(error) if error.is_connection_error() => continue,
            Err(error) => {
                tracing::warn!(%group, %member, %error, "queue member heartbeat refused; rejoining");
                // A stored permit if the consumer is not waiting right now.
                lost.notify_one();
                return;
            }
        }
    }
}

impl Session {
    /// Ends a session that was lost: its messages no longer return credit, and in the
    /// background (best effort: the broker may have forgotten both already) its
    /// subscription is closed and its member leaves, so the broker redelivers what it
    /// held at once instead of after the session timeout.
    pub(super) fn end(self) {
        drop(self.heartbeat);
        self.settler.retired.store(true, Ordering::Release);
        let client = self.settler.client.clone();
        let group = self.settler.group.clone();
        let member_id = self.member_id;
        let subscription = self.subscription;
        tokio::spawn(async move {
            let _ = subscription.unsubscribe().await;
            let _ = client.leave_group(&group, &member_id).await;
        });
    }

    /// Closes the subscription and leaves the group, waiting for the broker. A broker
    /// that no longer knows the member or group (it restarted since) has nothing to
    /// leave: that is success.
    pub(super) async fn close(self) -> Result<(), ClientError> {
        drop(self.heartbeat);
        self.settler.retired.store(true, Ordering::Release);
        let _ = self.subscription.unsubscribe().await;
        let left = self
            .settler
            .client
            .leave_group(&self.settler.group, &self.member_id)
            .await;
        match left {
            Err(e)
                if matches!(
                    e.code(),
                    Some(ErrorCode::UnknownMember | ErrorCode::UnknownGroup)
                ) =>
            {
                tracing::debug!(group = %self.settler.group, member = %self.member_id, "already forgotten by the broker");
                Ok(())
            }
            other => other,
        }
    }
}
