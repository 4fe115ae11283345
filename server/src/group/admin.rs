//! Group administration: deleting a group (by an operator, or with its topic),
//! resetting a stream group's offsets, purging a queue group.
//!
//! Deleting a group removes everything the broker keeps for it: its live membership
//! (members learn it from `unknown_group` on their next heartbeat), its queue state
//! and dispatcher (a tombstone on `__queue_state`), and its record and committed
//! offsets on `__consumer_offsets`. Operators' changes ([`Groups::delete`],
//! [`Groups::reset_offsets`], [`Groups::purge`]) are refused while the group has
//! active members, as Kafka's group tools refuse them: a member would overwrite a
//! reset with its next commit, and holds deliveries a purge would drop. A member
//! joining between the check and the change is not prevented (as in Kafka). A
//! topic's deletion takes its groups whatever their members.

use protocol::internal::offsets::GroupSettings;
use protocol::ops::group::GroupMode;
use protocol::ops::group_admin::ResetTarget;

use super::offsets::StoredGroup;
use super::{validate_group_name, Groups};
use crate::error::BrokerError;
use crate::partition::Partition;

impl Groups {
    /// Deletes `group`, refused while it has members. Returns the topic it consumed.
    pub async fn delete(&self, group: &str) -> Result<String, BrokerError> {
        let topic = self.topic_of(group)?;
        self.refuse_if_active(group, "deleted")?;
        self.remove(group, &topic).await?;
        Ok(topic)
    }

    /// Moves the committed offsets of stream group `group` on its topic's partitions
    /// (`partition`, or all) to `to`. `topic` is empty or the group's own; a group
    /// that does not exist yet is created for `topic` (a stream group with these
    /// commits). Returns the topic and the offsets committed.
    pub async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        partition: Option<u32>,
        to: ResetTarget,
    ) -> Result<(String, Vec<(u32, u64)>), BrokerError> {
        validate_group_name(group)?;
        let topic = match self.topic_of(group) {
            Ok(own) if topic.is_empty() || topic == own => own,
            Ok(own) => {
                return Err(BrokerError::InvalidRequest(format!(
                    "group {group:?} consumes topic {own:?}, not {topic:?}"
                )))
            }
            Err(BrokerError::UnknownGroup(_)) if !topic.is_empty() => topic.to_string(),
            Err(error) => return Err(error),
        };
        let is_queue = |stored: Option<&StoredGroup>| {
            stored.is_some_and(|g| g.settings.mode == GroupMode::Queue)
        };
        if is_queue(self.offsets.group(group).as_ref()) {
            return Err(not_resettable(group));
        }
        self.refuse_if_active(group, "reset")?;
        let handle = self.topics.get(&topic)?;
        let partitions: Vec<&Partition> = match partition {
            Some(p) => vec![handle.partition(p)?.as_ref()],
            None => handle.partitions.iter().map(|p| p.as_ref()).collect(),
        };
        let offsets = partitions
            .into_iter()
            .map(|p| Ok((p.id, reset_position(p, to)?)))
            .collect::<Result<Vec<_>, BrokerError>>()?;
        self.offsets
            .update_group(group, |stored| match stored {
                // Checked again atomically: a queue join may have come meanwhile.
                stored if is_queue(stored) => Err(not_resettable(group)),
                Some(_) => Ok(None),
                None => Ok(Some(StoredGroup {
                    topic: topic.clone(),
                    settings: GroupSettings {
                        mode: GroupMode::Stream,
                        config: Vec::new(),
                    },
                })),
            })
            .await?;
        self.offsets.commit(group, &topic, &offsets).await?;
        Ok((topic, offsets))
    }

    /// Purges queue group `group` ([`crate::queue::Queues::purge`]): returns its
    /// topic and how many messages were dropped.
    pub async fn purge(&self, group: &str) -> Result<(String, u64), BrokerError> {
        let topic = self.topic_of(group)?;
        if self.queues.get(group).is_none() {
            return Err(BrokerError::InvalidRequest(format!(
                "group {group:?} is a stream group; move its offsets with groups reset-offsets instead"
            )));
        }
        self.refuse_if_active(group, "purged")?;
        let dropped = self.queues.purge(group).await?;
        Ok((topic, dropped))
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

/// The refusal of a reset of a queue group.
fn not_resettable(group: &str) -> BrokerError {
    BrokerError::InvalidRequest(format!(
        "group {group:?} is a queue group: it acks messages instead of committing offsets; use groups purge to skip what it has pending"
    ))
}

/// Where `to` puts a partition's committed offset: always within its retained
/// `[start, end]`, so a reset never commits an offset a fetch would refuse.
fn reset_position(partition: &Partition, to: ResetTarget) -> Result<u64, BrokerError> {
    let (start, end) = (partition.start_offset(), partition.end_offset());
    let offset = match to {
        ResetTarget::Earliest => start,
        ResetTarget::Latest => end,
        ResetTarget::Offset(offset) => offset,
        ResetTarget::Timestamp(ms) => partition.offset_for_time(ms)?,
    };
    Ok(offset.clamp(start, end))
}
