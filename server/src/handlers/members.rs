//! Which stream-group memberships a session holds, so that a Fetch (which names no
//! group) can be spanned as a delivery to the group member that made it.
//!
//! A session learns a membership from every request that names one: the answer to a
//! JoinGroup, a Heartbeat, a CommitOffsets. So a client that reconnects and goes on
//! with the member id it had (its next heartbeat comes within a second) is known again
//! without rejoining. It forgets one on LeaveGroup, and when the coordinator says the
//! member is gone. What it holds is only a hint: a fetch is spanned for a member only
//! if the coordinator says that member owns the partition at the time.
//!
//! The list is short (a session usually holds one membership) and bounded by
//! [`MAX_MEMBERSHIPS_PER_SESSION`]; past that the oldest is forgotten, and fetches by
//! that member are no longer spanned.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// Stream-group memberships a session remembers, at most.
pub const MAX_MEMBERSHIPS_PER_SESSION: usize = 64;

/// One stream-group membership a session holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The group.
    pub group: Arc<str>,
    /// The member id the coordinator gave.
    pub member_id: Arc<str>,
    /// The topic the group reads.
    pub topic: Arc<str>,
}

/// A session's stream-group memberships; clones share them (a JoinGroup's answer is
/// recorded by its own task).
#[derive(Debug, Clone, Default)]
pub struct SessionMembers {
    held: Arc<Mutex<VecDeque<Membership>>>,
}

impl SessionMembers {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Membership>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the session is known to hold `member_id` of `group`.
    pub fn knows(&self, group: &str, member_id: &str) -> bool {
        self.lock()
            .iter()
            .any(|m| &*m.group == group && &*m.member_id == member_id)
    }

    /// The session holds `member_id` of `group`, which reads `topic`. The most
    /// recently recorded are kept when there are too many.
    pub fn record(&self, group: &str, member_id: &str, topic: &str) {
        let mut held = self.lock();
        held.retain(|m| !(&*m.group == group && &*m.member_id == member_id));
        if held.len() == MAX_MEMBERSHIPS_PER_SESSION {
            held.pop_front();
        }
        held.push_back(Membership {
            group: group.into(),
            member_id: member_id.into(),
            topic: topic.into(),
        });
        debug_assert!(held.len() <= MAX_MEMBERSHIPS_PER_SESSION);
    }

    /// The session no longer holds `member_id` of `group`.
    pub fn forget(&self, group: &str, member_id: &str) {
        self.lock()
            .retain(|m| !(&*m.group == group && &*m.member_id == member_id));
    }

    /// The memberships reading `topic`: empty (and allocating nothing) for a session
    /// that holds none, the common case of a fetch.
    pub fn reading(&self, topic: &str) -> Vec<Membership> {
        let held = self.lock();
        if held.is_empty() {
            return Vec::new();
        }
        held.iter()
            .filter(|m| &*m.topic == topic)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memberships_are_recorded_once_filtered_by_topic_and_forgotten() {
        let members = SessionMembers::default();
        assert!(members.reading("orders").is_empty());
        members.record("billing", "m-1", "orders");
        members.record("billing", "m-1", "orders");
        members.record("audit", "m-2", "payments");
        assert!(members.knows("billing", "m-1"));
        assert!(!members.knows("billing", "m-2"));
        let reading = members.reading("orders");
        assert_eq!(reading.len(), 1, "recorded once: {reading:?}");
        assert_eq!(&*reading[0].member_id, "m-1");
        members.clone().forget("billing", "m-1");
        assert!(members.reading("orders").is_empty(), "clones share");
        assert_eq!(members.reading("payments").len(), 1);
    }

    #[test]
    fn the_oldest_membership_goes_when_there_are_too_many() {
        let members = SessionMembers::default();
        for i in 0..=MAX_MEMBERSHIPS_PER_SESSION {
            members.record(&format!("g{i}"), "m", "t");
        }
        assert_eq!(members.reading("t").len(), MAX_MEMBERSHIPS_PER_SESSION);
        assert!(!members.knows("g0", "m"));
        assert!(members.knows(&format!("g{MAX_MEMBERSHIPS_PER_SESSION}"), "m"));
    }
}
