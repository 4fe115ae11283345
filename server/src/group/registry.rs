//! The group registry at startup: groups whose state was written before the registry
//! existed (no group record on `__consumer_offsets`) are recorded as what their state
//! says they are.
//!
//! The rule, stated in `docs/storage.md` ("Committed offsets"): a group with delivery
//! state on `__queue_state` is a queue group with no overrides (the topic's settings,
//! as before); otherwise a group with committed offsets is a stream group. Queue state
//! wins when a group has both, because only a queue group writes it, while a stream
//! group's commits could also be left from before it was (wrongly) rejoined as a queue.

use protocol::internal::offsets::GroupSettings;
use protocol::ops::group::GroupMode;

use super::offsets::StoredGroup;
use super::Groups;
use crate::error::BrokerError;

impl Groups {
    /// Records every group that has state but no record, by the rule above (blocking
    /// I/O, at startup).
    pub fn adopt_unrecorded(&self) -> Result<(), BrokerError> {
        let queue_groups = self
            .queues
            .groups()
            .into_iter()
            .map(|g| (g, GroupMode::Queue));
        let stream_groups = self
            .offsets
            .groups()
            .into_iter()
            .map(|g| (g, GroupMode::Stream));
        for ((group, topic), mode) in queue_groups.chain(stream_groups) {
            if self.offsets.group(&group).is_some() {
                continue;
            }
            tracing::info!(group = %group, topic = %topic, mode = super::mode_name(mode), "recording a group written before groups were recorded");
            let settings = GroupSettings {
                mode,
                config: Vec::new(),
            };
            self.offsets
                .adopt_group(&group, StoredGroup { topic, settings })?;
        }
        Ok(())
    }
}
