//! Committed offsets, kept on the internal topic `__consumer_offsets`.
//!
//! Each commit appends one record per partition ([`OffsetRecord`]: key
//! `group 0x00 topic 0x00 partition`, value the offset) and is acknowledged once they
//! are durable. At startup the log is replayed into a map; compaction restates the map
//! and drops the history (see [`crate::internal`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use protocol::internal::offsets::OffsetRecord;

use crate::clock::Clock;
use crate::error::BrokerError;
use crate::internal::InternalLog;
use crate::topics::{TopicConfig, Topics};

pub use protocol::internal::offsets::OFFSETS_TOPIC;

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

/// The committed offsets of every group.
#[derive(Debug)]
pub struct Offsets {
    log: InternalLog<OffsetRecord>,
    /// The lock also orders appends, so the log's order is the map's.
    committed: Mutex<HashMap<OffsetKey, u64>>,
}

/// Applies a record to the map (replay and live commits share this).
fn apply(committed: &mut HashMap<OffsetKey, u64>, record: OffsetRecord) {
    let key = OffsetKey {
        group: record.group,
        topic: record.topic,
        partition: record.partition,
    };
    match record.offset {
        Some(offset) => committed.insert(key, offset),
        None => committed.remove(&key),
    };
}

impl Offsets {
    /// Opens (creating if needed) the internal topic and replays it (blocking I/O).
    pub fn open(topics: &Topics, clock: Arc<dyn Clock>) -> Result<Offsets, BrokerError> {
        let mut committed = HashMap::new();
        let log = InternalLog::open(
            topics,
            TopicConfig::internal_default(),
            clock,
            |record, _| apply(&mut committed, record),
        )?;
        tracing::info!(entries = committed.len(), "restored committed offsets");
        Ok(Offsets {
            log,
            committed: Mutex::new(committed),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<OffsetKey, u64>> {
        self.committed.lock().unwrap_or_else(|p| p.into_inner())
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
        let records: Vec<OffsetRecord> = offsets
            .iter()
            .map(|&(partition, offset)| OffsetRecord {
                group: group.into(),
                topic: topic.into(),
                partition,
                offset: Some(offset),
            })
            .collect();
        let wait = {
            let mut committed = self.lock();
            let wait = self.log.append(&records)?;
            for record in records {
                apply(&mut committed, record);
            }
            wait
        };
        self.log.wait_durable(wait).await
    }

    /// Compacts the topic if the policy says so (blocking I/O).
    pub fn compact(&self) -> Result<(), BrokerError> {
        let committed = self.lock();
        self.log
            .compact(committed.len() as u64, || self.snapshot(&committed))
            .map(|_| ())
    }

    /// Appends the whole map.
    fn snapshot(&self, committed: &HashMap<OffsetKey, u64>) -> Result<(), BrokerError> {
        let records: Vec<OffsetRecord> = committed
            .iter()
            .map(|(key, offset)| OffsetRecord {
                group: key.group.clone(),
                topic: key.topic.clone(),
                partition: key.partition,
                offset: Some(*offset),
            })
            .collect();
        self.log.append(&records).map(|_| ())
    }

    /// Committed offsets of `group` on `topic`, by partition.
    pub fn get(&self, group: &str, topic: &str, partition: u32) -> Option<u64> {
        let key = OffsetKey {
            group: group.into(),
            topic: topic.into(),
            partition,
        };
        self.lock().get(&key).copied()
    }

    /// `(group, topic)` pairs that have committed offsets.
    pub fn groups(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = self
            .lock()
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
    use crate::clock::SystemClock;

    #[tokio::test]
    async fn commits_survive_reopen_and_snapshots_bound_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(SystemClock::new());
        {
            let topics = Topics::open(dir.path()).unwrap();
            let offsets = Offsets::open(&topics, clock.clone()).unwrap();
            for i in 0..210 {
                offsets
                    .commit("g", "t", &[(0, i), (1, i * 2)])
                    .await
                    .unwrap();
            }
            offsets.compact().unwrap();
            assert_eq!(offsets.log.records(), 420, "below the policy's minimum");
            let committed = offsets.lock();
            offsets
                .log
                .compact_now(|| offsets.snapshot(&committed))
                .unwrap();
            drop(committed);
            let partition = offsets.log.partition();
            assert!(partition.start_offset() > 0, "snapshots truncated the log");
            assert!(partition.end_offset() - partition.start_offset() <= 52);
            drop(offsets);
            topics.close_all();
        }
        let topics = Topics::open(dir.path()).unwrap();
        let offsets = Offsets::open(&topics, clock).unwrap();
        let last = 209;
        assert_eq!(offsets.get("g", "t", 0), Some(last));
        assert_eq!(offsets.get("g", "t", 1), Some(last * 2));
        assert_eq!(offsets.get("g", "t", 2), None);
        assert_eq!(offsets.groups(), vec![("g".to_string(), "t".to_string())]);
    }
}
