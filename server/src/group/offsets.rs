//! Committed offsets, stored on the internal topic `__consumer_offsets`.
//!
//! Each commit appends one batch with a record per partition: key
//! `group 0x00 topic 0x00 partition` (partition in decimal), value the offset as `u64`
//! little-endian. The commit is acknowledged once that batch is durable. At startup
//! the log is replayed into a map. To keep the log from growing forever, after
//! [`SNAPSHOT_EVERY_RECORDS`] commit records a snapshot batch of the whole map is
//! appended and everything before it is truncated away; replay then starts at the
//! snapshot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use protocol::batch::BatchBuilder;

use crate::error::BrokerError;
use crate::now_ms;
use crate::partition::Partition;
use crate::topics::{TopicConfig, Topics};

/// Name of the internal topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Commit records between two snapshots.
pub const SNAPSHOT_EVERY_RECORDS: u64 = 10_000;
/// How long a commit waits to become durable.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Records per snapshot batch, so one batch stays well under the batch size limit.
const SNAPSHOT_RECORDS_PER_BATCH: usize = 10_000;

/// Key of one committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OffsetKey {
    /// Group name.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Partition.
    pub partition: u32,
}

impl OffsetKey {
    fn encode(&self) -> Vec<u8> {
        format!("{}\0{}\0{}", self.group, self.topic, self.partition).into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<OffsetKey> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split('\0');
        let (group, topic, partition) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
        parts.next().is_none().then(|| OffsetKey {
            group: group.into(),
            topic: topic.into(),
            partition,
        })
    }
}

#[derive(Debug, Default)]
struct State {
    offsets: HashMap<OffsetKey, u64>,
    records_since_snapshot: u64,
}

/// The committed offsets of every group.
#[derive(Debug)]
pub struct Offsets {
    partition: Arc<Partition>,
    state: Mutex<State>,
    snapshot_every_records: u64,
}

impl Offsets {
    /// Opens (creating if needed) the internal topic and replays it (blocking I/O).
    pub fn open(topics: &Topics) -> Result<Offsets, BrokerError> {
        Self::open_with(topics, SNAPSHOT_EVERY_RECORDS)
    }

    /// [`open`](Self::open) with another snapshot interval (tests).
    pub fn open_with(topics: &Topics, snapshot_every_records: u64) -> Result<Offsets, BrokerError> {
        let partition =
            topics.internal_partition(OFFSETS_TOPIC, TopicConfig::internal_default())?;
        let mut state = State::default();
        partition.replay(|offset, key, value| {
            let key = key.as_deref().and_then(OffsetKey::decode);
            let value = value
                .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
                .map(u64::from_le_bytes);
            match (key, value) {
                (Some(key), Some(value)) => {
                    state.offsets.insert(key, value);
                }
                (Some(key), None) => {
                    state.offsets.remove(&key);
                }
                _ => tracing::warn!(offset, "skipping unreadable record in {OFFSETS_TOPIC}"),
            }
            state.records_since_snapshot += 1;
        })?;
        tracing::info!(entries = state.offsets.len(), "restored committed offsets");
        Ok(Offsets {
            partition,
            state: Mutex::new(state),
            snapshot_every_records,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores offsets durably; returns once they are on stable storage.
    pub async fn commit(
        &self,
        group: &str,
        topic: &str,
        offsets: &[(u32, u64)],
    ) -> Result<(), BrokerError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut builder = BatchBuilder::new();
        let ts = now_ms();
        for &(partition, offset) in offsets {
            let key = OffsetKey {
                group: group.into(),
                topic: topic.into(),
                partition,
            };
            builder
                .push(ts, Some(&key.encode()), Some(&offset.to_le_bytes()), &[])
                .map_err(|e| BrokerError::InvalidRequest(format!("commit too large: {e}")))?;
        }
        let next_offset = {
            let mut state = self.lock();
            let batch = builder.finish();
            let info = self.partition.append(&batch)?;
            for &(partition, offset) in offsets {
                state.offsets.insert(
                    OffsetKey {
                        group: group.into(),
                        topic: topic.into(),
                        partition,
                    },
                    offset,
                );
            }
            state.records_since_snapshot += offsets.len() as u64;
            if state.records_since_snapshot
                >= self
                    .snapshot_every_records
                    .max(2 * state.offsets.len() as u64)
            {
                self.snapshot(&mut state)?
            } else {
                info.next_offset
            }
        };
        self.partition
            .wait_durable(next_offset, COMMIT_TIMEOUT)
            .await
    }

    /// Appends the whole map and truncates what came before. Called with the state
    /// locked, so no commit slips in between.
    fn snapshot(&self, state: &mut State) -> Result<u64, BrokerError> {
        let ts = now_ms();
        let entries: Vec<_> = state.offsets.iter().collect();
        let mut first_offset = None;
        let mut next_offset = self.partition.end_offset();
        for chunk in entries.chunks(SNAPSHOT_RECORDS_PER_BATCH) {
            let mut builder = BatchBuilder::new();
            for (key, offset) in chunk {
                builder
                    .push(ts, Some(&key.encode()), Some(&offset.to_le_bytes()), &[])
                    .map_err(|e| BrokerError::Internal(e.to_string()))?;
            }
            let batch = builder.finish();
            let info = self.partition.append(&batch)?;
            first_offset.get_or_insert(info.base_offset);
            next_offset = info.next_offset;
        }
        if let Some(first) = first_offset {
            self.partition.truncate_before(first)?;
        }
        state.records_since_snapshot = state.offsets.len() as u64;
        Ok(next_offset)
    }

    /// Committed offsets of `group` on `topic`, by partition.
    pub fn get(&self, group: &str, topic: &str, partition: u32) -> Option<u64> {
        let key = OffsetKey {
            group: group.into(),
            topic: topic.into(),
            partition,
        };
        self.lock().offsets.get(&key).copied()
    }

    /// `(group, topic)` pairs that have committed offsets.
    pub fn groups(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = self
            .lock()
            .offsets
            .keys()
            .map(|k| (k.group.clone(), k.topic.clone()))
            .collect();
        pairs.sort();
        pairs.dedup();
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let key = OffsetKey {
            group: "g".into(),
            topic: "t.x".into(),
            partition: 12,
        };
        assert_eq!(OffsetKey::decode(&key.encode()), Some(key));
        assert_eq!(OffsetKey::decode(b"a\0b"), None);
        assert_eq!(OffsetKey::decode(b"a\0b\0x"), None);
    }

    #[tokio::test]
    async fn commits_survive_reopen_and_snapshots_bound_the_log() {
        let dir = tempfile::tempdir().unwrap();
        {
            let topics = Topics::open(dir.path()).unwrap();
            let store = Offsets::open_with(&topics, 50).unwrap();
            for i in 0..210 {
                store.commit("g", "t", &[(0, i), (1, i * 2)]).await.unwrap();
            }
            let log = topics.get(OFFSETS_TOPIC).unwrap();
            let partition = log.partition(0).unwrap();
            assert!(partition.start_offset() > 0, "snapshots truncated the log");
            assert!(partition.end_offset() - partition.start_offset() <= 52);
            drop(store);
            topics.close_all();
        }
        let topics = Topics::open(dir.path()).unwrap();
        let store = Offsets::open(&topics).unwrap();
        let last = 209;
        assert_eq!(store.get("g", "t", 0), Some(last));
        assert_eq!(store.get("g", "t", 1), Some(last * 2));
        assert_eq!(store.get("g", "t", 2), None);
        assert_eq!(store.groups(), vec![("g".to_string(), "t".to_string())]);
    }
}
