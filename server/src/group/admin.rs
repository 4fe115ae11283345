//! Group administration: deleting a group (by an operator, or with its topic).
//!
//! Deleting a group removes everything the broker keeps for it: its live membership
//! (members learn it from `unknown_group` on their next heartbeat), its queue state
//! and dispatcher (a tombstone on `__queue_state`), and its record and committed
//! offsets on `__consumer_offsets`. A group with active members is refused by
//! [`Groups::delete`] (as Kafka refuses a non-empty group); a topic's deletion takes
//! its groups whatever their members.

use super::Groups;
use crate::error::BrokerError;

impl Groups {
    /// Deletes `group`, refused while it has members. Returns the topic it consumed.
    pub async fn delete(&self, group: &str) -> Result<String, BrokerError> {
        let topic = self.topic_of(group)?;
        self.refuse_if_active(group, "deleted")?;
        self.remove(group, &topic).await?;
        Ok(topic)
    }

    /// Removes every group of `topic`, which was just deleted: its groups, their
    /// queue state, dispatchers and commits. Returns the groups removed.
    pub async fn topic_deleted(&self, topic: &str) -> Result<Vec<String>, BrokerError> {
        let mut names: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, g)| g.topic == topic)
            .map(|(name, _)| name.clone())
            .collect();
        let recorded = self.offsets.stored_groups().into_iter();
        names.extend(
            recorded
                .filter(|(_, g)| g.topic == topic)
                .map(|(name, _)| name),
        );
        let queued = self
            .queues
            .groups()
            .into_iter()
            .chain(self.offsets.groups());
        names.extend(queued.filter(|(_, t)| t == topic).map(|(name, _)| name));
        names.sort();
        names.dedup();
        for name in &names {
            self.remove(name, topic).await?;
        }
        Ok(names)
    }

    /// The topic `group` consumes: live, recorded, or (for state left without a
    /// record) queued.
    pub(super) fn topic_of(&self, group: &str) -> Result<String, BrokerError> {
        if let Some(g) = self.lock().get(group) {
            return Ok(g.topic.clone());
        }
        if let Some(stored) = self.offsets.group(group) {
            return Ok(stored.topic);
        }
        self.queues
            .get(group)
            .map(|q| q.topic_name().to_string())
            .ok_or_else(|| BrokerError::UnknownGroup(group.into()))
    }

    /// Refuses a change that needs the group empty while it has members.
    pub(super) fn refuse_if_active(&self, group: &str, what: &str) -> Result<(), BrokerError> {
        let members = self.lock().get(group).map_or(0, |g| g.len());
        if members > 0 {
            return Err(BrokerError::GroupNotEmpty {
                group: group.into(),
                members,
                change: what.into(),
            });
        }
        Ok(())
    }

    /// Removes `group` of `topic` everywhere it is kept.
    async fn remove(&self, group: &str, topic: &str) -> Result<(), BrokerError> {
        let live = self.lock().remove(group);
        if let Some(live) = &live {
            debug_assert_eq!(live.topic, topic, "a group consumes one topic");
        }
        if self
            .queues
            .get(group)
            .is_some_and(|q| q.topic_name() == topic)
        {
            self.queues.delete(group).await?;
        }
        self.offsets.delete_group(group, topic).await?;
        tracing::info!(
            group,
            topic,
            members = live.map_or(0, |g| g.len()),
            "group deleted"
        );
        Ok(())
    }
}
