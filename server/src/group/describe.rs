//! Read-only views of the groups: the summaries of `ListGroups` and the detail of
//! `DescribeGroup`, joining membership with committed offsets (stream groups) or ack
//! floors and queue counts (queue groups).

use protocol::ops::group::{
    DescribeGroupResponse, GroupMode, GroupPartitionInfo, GroupSummary, MemberInfo,
};

use super::Groups;
use crate::error::BrokerError;

impl Groups {
    /// Summaries of live groups and of the recorded groups without members.
    pub fn list(&self) -> Vec<GroupSummary> {
        let groups = self.lock();
        let mut out: Vec<GroupSummary> = groups
            .iter()
            .map(|(name, g)| GroupSummary {
                group: name.clone(),
                topic: g.topic.clone(),
                mode: g.mode,
                members: g.len() as u32,
                generation: g.generation(),
            })
            .collect();
        for (group, stored) in self.offsets.stored_groups() {
            if !groups.contains_key(&group) {
                out.push(GroupSummary {
                    group,
                    topic: stored.topic,
                    mode: stored.settings.mode,
                    members: 0,
                    generation: 0,
                });
            }
        }
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out
    }

    /// Members, assignments, committed offsets and lag.
    pub fn describe(&self, group: &str) -> Result<DescribeGroupResponse, BrokerError> {
        let (topic, mode, generation, members) = {
            let groups = self.lock();
            match groups.get(group) {
                Some(g) => (
                    g.topic.clone(),
                    g.mode,
                    g.generation(),
                    g.members()
                        .map(|(id, m)| MemberInfo {
                            member_id: id.clone(),
                            client_name: m.client_name.clone(),
                            session_timeout_ms: m.session_timeout_ms as u32,
                            partitions: g.told(id).unwrap_or_default(),
                        })
                        .collect(),
                ),
                None => {
                    let stored = self
                        .offsets
                        .group(group)
                        .ok_or_else(|| BrokerError::UnknownGroup(group.into()))?;
                    (stored.topic, stored.settings.mode, 0, Vec::new())
                }
            }
        };
        let partitions = self.partition_progress(group, &topic, mode)?;
        Ok(DescribeGroupResponse {
            group: group.into(),
            topic,
            mode,
            generation,
            members,
            partitions,
        })
    }

    /// A group neither live here nor in the registry, as a stream group reading
    /// `topic` with no members and no commits: the native view of a Kafka-protocol
    /// group before its first commit (the caller adds its Kafka members). A topic
    /// that does not exist, or none, shows no partitions.
    pub fn describe_unregistered(
        &self,
        group: &str,
        topic: Option<&str>,
    ) -> Result<DescribeGroupResponse, BrokerError> {
        let topic = topic.unwrap_or_default();
        let partitions = match self.partition_progress(group, topic, GroupMode::Stream) {
            Ok(partitions) => partitions,
            Err(BrokerError::UnknownTopic(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(DescribeGroupResponse {
            group: group.into(),
            topic: topic.into(),
            mode: GroupMode::Stream,
            generation: 0,
            members: Vec::new(),
            partitions,
        })
    }

    /// One entry per partition of `topic`: the group's committed offset (a queue
    /// group's ack floor), the end, and the lag between them.
    fn partition_progress(
        &self,
        group: &str,
        topic: &str,
        mode: GroupMode,
    ) -> Result<Vec<GroupPartitionInfo>, BrokerError> {
        let topic_handle = self.topics.get(topic)?;
        Ok(topic_handle
            .partitions
            .iter()
            .map(|p| {
                let end = p.end_offset();
                // A queue group's "committed" offset is its ack floor: everything
                // below it is acked or dead-lettered.
                let queue = (mode == GroupMode::Queue)
                    .then(|| self.queues.get(group))
                    .flatten();
                let committed = match &queue {
                    Some(q) => q.floor(p.id),
                    None => self.offsets.get(group, topic, p.id),
                };
                let lag = end.saturating_sub(committed.unwrap_or(p.start_offset()));
                GroupPartitionInfo {
                    partition: p.id,
                    committed_offset: committed,
                    end_offset: end,
                    lag,
                    queue: queue.map(|q| q.counts(p.id)),
                }
            })
            .collect())
    }
}
