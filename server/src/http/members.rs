//! Group memberships the gateway holds for stateless HTTP clients.
//!
//! An HTTP client has no connection for a membership to live on, so the gateway
//! holds one member per (principal, topic, group, mode), joined through the request
//! layer (JoinGroup, as the caller) on the first request that needs it and kept alive
//! by every later request of that key (a Heartbeat, as the caller). When no request
//! comes for [`HTTP_MEMBER_SESSION_TIMEOUT_MS`] the coordinator expires the member as
//! it would a native one (a queue member's leases go back to the queue, a stream
//! member's partitions to the others), and the next request joins again. Clients of
//! one principal share the member: a queue's messages are shared among them anyway,
//! and a stream group's partitions are the principal's to read.
//!
//! The table is bounded by [`MAX_HTTP_MEMBERS`]; a full table first forgets the
//! entries whose session has run out, and refuses a new key (`resource_limit`) if
//! none has. The bookkeeping ([`MemberTable`]) is pure, with the time passed in.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use protocol::ops::group::{
    GroupMode, GroupStart, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
};
use protocol::{ErrorCode, Request, Response};

use super::auth::Caller;
use super::call::{call, unexpected};
use super::error::ApiError;
use crate::broker::Broker;

/// Memberships the gateway holds at most, over all principals, topics and groups.
pub const MAX_HTTP_MEMBERS: usize = 1024;
/// A held member's session timeout: it expires when no request of its key comes for
/// this long (clamped into `groups.min_session_timeout_ms..=max_session_timeout_ms`).
pub const HTTP_MEMBER_SESSION_TIMEOUT_MS: u32 = 30_000;

/// What a membership is held for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberKey {
    /// The caller's principal.
    pub principal: Arc<str>,
    /// The group's topic.
    pub topic: String,
    /// The group.
    pub group: String,
    /// Whether it is a queue membership (else stream).
    pub queue: bool,
}

impl MemberKey {
    /// The membership `caller` holds, or would hold, in `group` of `topic`.
    pub fn of(caller: &Caller, topic: &str, group: &str, queue: bool) -> MemberKey {
        MemberKey {
            principal: caller.principal.name.clone(),
            topic: topic.to_string(),
            group: group.to_string(),
            queue,
        }
    }
}

/// A membership the gateway holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The coordinator's member id.
    pub member_id: String,
    /// The generation the member was last told (and, the gateway holding nothing
    /// in between, has applied).
    pub generation: u32,
    /// The partitions it was last told it owns (stream mode).
    pub partitions: Vec<u32>,
    /// Per partition, the offset after the last record a group read handed out
    /// through this member (stream mode): what a commit may reach at most.
    pub delivered: BTreeMap<u32, u64>,
    last_used: Instant,
}

/// The pure bookkeeping: held memberships by key, with the time of their last use.
#[derive(Debug)]
pub struct MemberTable {
    held: HashMap<MemberKey, Held>,
    max_entries: usize,
    session: Duration,
}

/// The table is full of live memberships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull {
    /// Its bound.
    pub max_entries: usize,
}

impl MemberTable {
    /// An empty table of at most `max_entries`, whose entries go stale `session`
    /// after their last use.
    pub fn new(max_entries: usize, session: Duration) -> MemberTable {
        MemberTable {
            held: HashMap::new(),
            max_entries,
            session,
        }
    }

    /// The live membership of `key` at `now` (a stale one is forgotten: the
    /// coordinator has expired it or is about to).
    pub fn get(&mut self, key: &MemberKey, now: Instant) -> Option<Held> {
        let held = self.held.get(key)?;
        if now.saturating_duration_since(held.last_used) >= self.session {
            self.held.remove(key);
            return None;
        }
        Some(held.clone())
    }

    /// Records the membership of `key`, used at `now`. A full table forgets its
    /// stale entries first; full of live ones, it refuses a new key.
    pub fn put(
        &mut self,
        key: MemberKey,
        member_id: String,
        generation: u32,
        partitions: Vec<u32>,
        now: Instant,
    ) -> Result<(), TableFull> {
        if !self.held.contains_key(&key) && self.held.len() >= self.max_entries {
            let session = self.session;
            self.held
                .retain(|_, h| now.saturating_duration_since(h.last_used) < session);
            if self.held.len() >= self.max_entries {
                return Err(TableFull {
                    max_entries: self.max_entries,
                });
            }
        }
        // The same member keeps what it was handed; a new one starts with nothing.
        let delivered = match self.held.remove(&key) {
            Some(old) if old.member_id == member_id => old.delivered,
            _ => BTreeMap::new(),
        };
        self.held.insert(
            key,
            Held {
                member_id,
                generation,
                partitions,
                delivered,
                last_used: now,
            },
        );
        debug_assert!(self.held.len() <= self.max_entries);
        Ok(())
    }

    /// A group read handed out `partition` up to `next` (exclusive) through
    /// `member_id`; ignored if `key` is held by another member now.
    pub fn delivered(&mut self, key: &MemberKey, member_id: &str, partition: u32, next: u64) {
        if let Some(held) = self.held.get_mut(key).filter(|h| h.member_id == member_id) {
            let reached = held.delivered.entry(partition).or_insert(next);
            *reached = (*reached).max(next);
        }
    }

    /// Forgets `key`'s membership if it is still `member_id`.
    pub fn forget(&mut self, key: &MemberKey, member_id: &str) {
        if self.held.get(key).is_some_and(|h| h.member_id == member_id) {
            self.held.remove(key);
        }
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// The gateway's held memberships.
#[derive(Debug)]
pub struct HttpMembers {
    table: Mutex<MemberTable>,
    session_timeout_ms: u32,
}

impl HttpMembers {
    /// No memberships; sessions of [`HTTP_MEMBER_SESSION_TIMEOUT_MS`] clamped into what
    /// `broker`'s groups allow.
    pub fn new(broker: &Broker) -> HttpMembers {
        let groups = &broker.config.groups;
        let session_timeout_ms = HTTP_MEMBER_SESSION_TIMEOUT_MS.clamp(
            groups.min_session_timeout_ms,
            groups
                .max_session_timeout_ms
                .max(groups.min_session_timeout_ms),
        );
        HttpMembers {
            table: Mutex::new(MemberTable::new(
                MAX_HTTP_MEMBERS,
                Duration::from_millis(u64::from(session_timeout_ms)),
            )),
            session_timeout_ms,
        }
    }

    fn lock(&self) -> MutexGuard<'_, MemberTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The member `caller` holds in `group` (of `topic`, in queue or stream mode),
    /// heartbeated now; joined if it holds none (or the coordinator forgot it).
    pub async fn member(
        &self,
        broker: &Arc<Broker>,
        caller: &Caller,
        topic: &str,
        group: &str,
        queue: bool,
    ) -> Result<Held, ApiError> {
        let key = MemberKey::of(caller, topic, group, queue);
        let known = self.lock().get(&key, Instant::now());
        if let Some(held) = known {
            match self.heartbeat(broker, caller, &key, &held).await {
                Ok(held) => return Ok(held),
                Err(e)
                    if matches!(e.code(), ErrorCode::UnknownMember | ErrorCode::UnknownGroup) =>
                {
                    self.lock().forget(&key, &held.member_id);
                }
                Err(e) => return Err(e),
            }
        }
        self.join(broker, caller, key).await
    }

    /// Keeps `caller`'s membership of `group` alive if it holds one (an ack, nack or
    /// extend is a sign of life as much as a receive); errors are left to the next
    /// receive.
    pub async fn touch(
        &self,
        broker: &Arc<Broker>,
        caller: &Caller,
        topic: &str,
        group: &str,
        queue: bool,
    ) {
        let key = MemberKey::of(caller, topic, group, queue);
        let known = self.lock().get(&key, Instant::now());
        if let Some(held) = known {
            if self.heartbeat(broker, caller, &key, &held).await.is_err() {
                self.lock().forget(&key, &held.member_id);
            }
        }
    }

    /// Leaves `caller`'s membership of `group`, if it holds one: a queue member's
    /// leases go back to the queue at once. `false` if it held none.
    pub async fn leave(
        &self,
        broker: &Arc<Broker>,
        caller: &Caller,
        topic: &str,
        group: &str,
        queue: bool,
    ) -> Result<bool, ApiError> {
        let key = MemberKey::of(caller, topic, group, queue);
        let known = self.lock().get(&key, Instant::now());
        let Some(held) = known else {
            return Ok(false);
        };
        self.lock().forget(&key, &held.member_id);
        let request = Request::LeaveGroup(LeaveGroupRequest {
            group: key.group.clone(),
            member_id: held.member_id,
        });
        call(broker, caller, request).await?;
        Ok(true)
    }

    /// A group read handed out `partition` of `caller`'s stream membership `member_id`
    /// up to `next`.
    pub fn delivered(
        &self,
        caller: &Caller,
        topic: &str,
        group: &str,
        member_id: &str,
        partition: u32,
        next: u64,
    ) {
        let key = MemberKey::of(caller, topic, group, false);
        self.lock().delivered(&key, member_id, partition, next);
    }

    async fn heartbeat(
        &self,
        broker: &Arc<Broker>,
        caller: &Caller,
        key: &MemberKey,
        held: &Held,
    ) -> Result<Held, ApiError> {
        let request = Request::Heartbeat(HeartbeatRequest {
            group: key.group.clone(),
            member_id: held.member_id.clone(),
            generation: held.generation,
        });
        let told = match call(broker, caller, request).await? {
            Response::Heartbeat(told) => told,
            other => return Err(unexpected(&other)),
        };
        self.remember(
            key.clone(),
            &held.member_id,
            told.generation,
            told.partitions,
        )
    }

    async fn join(
        &self,
        broker: &Arc<Broker>,
        caller: &Caller,
        key: MemberKey,
    ) -> Result<Held, ApiError> {
        let request = Request::JoinGroup(JoinGroupRequest {
            group: key.group.clone(),
            topic: key.topic.clone(),
            member_id: String::new(),
            session_timeout_ms: self.session_timeout_ms,
            mode: if key.queue {
                GroupMode::Queue
            } else {
                GroupMode::Stream
            },
            start: GroupStart::Earliest,
            config: Vec::new(),
        });
        let joined = match call(broker, caller, request).await? {
            Response::JoinGroup(joined) => joined,
            other => return Err(unexpected(&other)),
        };
        tracing::debug!(group = %key.group, member = %joined.member_id, principal = %key.principal, "HTTP member joined");
        self.remember(key, &joined.member_id, joined.generation, joined.partitions)
    }

    fn remember(
        &self,
        key: MemberKey,
        member_id: &str,
        generation: u32,
        partitions: Vec<u32>,
    ) -> Result<Held, ApiError> {
        let now = Instant::now();
        let mut table = self.lock();
        table
            .put(key.clone(), member_id.to_string(), generation, partitions, now)
            .map_err(|full| {
                ApiError::new(
                    ErrorCode::ResourceLimit,
                    format!(
                        "the gateway holds its limit of {} group memberships; try again once some expire",
                        full.max_entries
                    ),
                )
            })?;
        table
            .get(&key, now)
            .ok_or_else(|| ApiError::new(ErrorCode::Internal, "a membership just recorded is gone"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(group: &str) -> MemberKey {
        MemberKey {
            principal: Arc::from("alice"),
            topic: "jobs".into(),
            group: group.into(),
            queue: true,
        }
    }

    #[test]
    fn a_membership_is_live_until_a_session_passes_without_use() {
        let t0 = Instant::now();
        let session = Duration::from_secs(30);
        let mut table = MemberTable::new(4, session);
        table.put(key("g"), "m-1".into(), 1, vec![], t0).unwrap();
        assert_eq!(
            table.get(&key("g"), t0 + session / 2).unwrap().member_id,
            "m-1"
        );
        assert!(table.get(&key("other"), t0).is_none());
        assert!(table.get(&key("g"), t0 + session).is_none(), "stale");
        assert!(table.is_empty(), "and forgotten");
        // Use refreshes it.
        table.put(key("g"), "m-2".into(), 2, vec![], t0).unwrap();
        table
            .put(key("g"), "m-2".into(), 3, vec![0], t0 + session / 2)
            .unwrap();
        let held = table.get(&key("g"), t0 + session).unwrap();
        assert_eq!((held.generation, held.partitions), (3, vec![0]));
    }

    #[test]
    fn a_full_table_forgets_stale_entries_then_refuses_new_keys() {
        let t0 = Instant::now();
        let session = Duration::from_secs(30);
        let mut table = MemberTable::new(2, session);
        table.put(key("a"), "m-a".into(), 1, vec![], t0).unwrap();
        table
            .put(key("b"), "m-b".into(), 1, vec![], t0 + session / 2)
            .unwrap();
        assert_eq!(
            table.put(key("c"), "m-c".into(), 1, vec![], t0 + session / 4),
            Err(TableFull { max_entries: 2 })
        );
        // An existing key is always refreshed.
        table
            .put(key("b"), "m-b".into(), 2, vec![], t0 + session / 4)
            .unwrap();
        // Once "a" is stale, "c" takes its place.
        table
            .put(key("c"), "m-c".into(), 1, vec![], t0 + session)
            .unwrap();
        assert_eq!(table.len(), 2);
        assert!(table.get(&key("a"), t0 + session).is_none());
    }

    #[test]
    fn forget_forgets_only_the_member_named() {
        let t0 = Instant::now();
        let mut table = MemberTable::new(2, Duration::from_secs(30));
        table.put(key("g"), "m-2".into(), 1, vec![], t0).unwrap();
        table.forget(&key("g"), "m-1");
        assert!(table.get(&key("g"), t0).is_some(), "a newer join stands");
        table.forget(&key("g"), "m-2");
        assert!(table.get(&key("g"), t0).is_none());
    }

    #[test]
    fn what_a_member_was_handed_stays_with_that_member_only() {
        let t0 = Instant::now();
        let mut table = MemberTable::new(2, Duration::from_secs(30));
        table
            .put(key("g"), "m-1".into(), 1, vec![0, 1], t0)
            .unwrap();
        table.delivered(&key("g"), "m-1", 0, 10);
        table.delivered(&key("g"), "m-1", 0, 5);
        table.delivered(&key("g"), "m-other", 1, 99);
        table.put(key("g"), "m-1".into(), 2, vec![0], t0).unwrap();
        let held = table.get(&key("g"), t0).unwrap();
        assert_eq!(
            held.delivered,
            BTreeMap::from([(0, 10)]),
            "the highest, kept by a heartbeat"
        );
        table.put(key("g"), "m-2".into(), 3, vec![0], t0).unwrap();
        assert!(
            table.get(&key("g"), t0).unwrap().delivered.is_empty(),
            "a new member starts afresh"
        );
    }
}
