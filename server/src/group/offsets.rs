//! Committed offsets and the group registry, kept on the internal topic
//! `__consumer_offsets`.
//!
//! Each commit appends one record per partition (an [`OffsetRecord`]: key
//! `group 0x00 topic 0x00 partition`, value the offset and, from a Kafka client, the
//! metadata string it committed with it) and is acknowledged once they are durable.
//! Each group also has one [`GroupRecord`] (key `group 0x00 topic`): its mode and
//! the settings its join overrode, written when a join creates or changes them, so
//! that a restart knows what the group is before anyone joins it again. At startup
//! the log is replayed into maps; compaction restates them and drops the history
//! (see [`crate::internal`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use protocol::internal::offsets::{GroupRecord, GroupSettings, OffsetRecord, OffsetsRecord};

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

/// A group as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    /// The topic it consumes.
    pub topic: String,
    /// Its mode and overrides.
    pub settings: GroupSettings,
}

/// Longest offset metadata a commit may carry, bytes (Kafka's default
/// `offset.metadata.max.bytes`); a longer one is refused, so the maps grow by at most
/// this much per committed partition.
pub const MAX_OFFSET_METADATA_BYTES: usize = 4096;

/// One partition's commit: the next offset to read and what the committer stored
/// with it (empty for nothing; native commits carry none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit<'a> {
    /// Partition.
    pub partition: u32,
    /// The next offset to read.
    pub offset: u64,
    /// Kafka's offset metadata, at most [`MAX_OFFSET_METADATA_BYTES`].
    pub metadata: &'a str,
}

/// What `__consumer_offsets` restates: the committed offsets and the groups.
#[derive(Debug, Default)]
struct State {
    committed: HashMap<OffsetKey, u64>,
    /// Metadata of the commits that carried some (a subset of `committed`'s keys:
    /// native commits never fill it, so they pay nothing for it).
    metadata: HashMap<OffsetKey, String>,
    groups: HashMap<String, StoredGroup>,
}

impl State {
    /// Applies a record (replay and live changes share this).
    fn apply(&mut self, record: OffsetsRecord) {
        match record {
            OffsetsRecord::Offset(record) => {
                let key = OffsetKey {
                    group: record.group,
                    topic: record.topic,
                    partition: record.partition,
                };
                match (record.offset, record.metadata.is_empty()) {
                    (Some(offset), true) => {
                        self.metadata.remove(&key);
                        self.committed.insert(key, offset);
                    }
                    (Some(offset), false) => {
                        self.committed.insert(key.clone(), offset);
                        self.metadata.insert(key, record.metadata);
                    }
                    (None, _) => {
                        self.metadata.remove(&key);
                        self.committed.remove(&key);
                    }
                }
            }
            OffsetsRecord::Group(record) => match record.settings {
                Some(settings) => {
                    let topic = record.topic;
                    self.groups
                        .insert(record.group, StoredGroup { topic, settings });
                }
                // A deletion names the topic it was for: it removes only that group.
                None => {
                    if self.groups.get(&record.group).map(|g| &g.topic) == Some(&record.topic) {
                        self.groups.remove(&record.group);
                    }
                }
            },
        }
    }

    /// Records restating everything.
    fn snapshot(&self) -> Vec<OffsetsRecord> {
        let groups = self.groups.iter().map(|(group, stored)| {
            OffsetsRecord::Group(GroupRecord {
                group: group.clone(),
                topic: stored.topic.clone(),
                settings: Some(stored.settings.clone()),
            })
        });
        let offsets = self.committed.iter().map(|(key, offset)| {
            OffsetsRecord::Offset(OffsetRecord {
                group: key.group.clone(),
                topic: key.topic.clone(),
                partition: key.partition,
                offset: Some(*offset),
                metadata: self.metadata.get(key).cloned().unwrap_or_default(),
            })
        });
        groups.chain(offsets).collect()
    }
}

/// The committed offsets and the registry of every group.
#[derive(Debug)]
pub struct Offsets {
    log: InternalLog<OffsetsRecord>,
    /// The lock also orders appends, so the log's order is the maps'.
    state: Mutex<State>,
}

impl Offsets {
    /// Opens (creating if needed) the internal topic and replays it (blocking I/O).
    pub fn open(topics: &Topics, clock: Arc<dyn Clock>) -> Result<Offsets, BrokerError> {
        let mut state = State::default();
        let log = InternalLog::open(
            topics,
            TopicConfig::internal_default(),
            clock,
            |record, _| state.apply(record),
        )?;
        tracing::info!(
            entries = state.committed.len(),
            groups = state.groups.len(),
            "restored committed offsets and groups"
        );
        Ok(Offsets {
            log,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `records` and applies them under the lock; returns the offset to wait
    /// for to see them durable.
    fn write(&self, state: &mut State, records: Vec<OffsetsRecord>) -> Result<u64, BrokerError> {
        let wait = self.log.append(&records)?;
        for record in records {
            state.apply(record);
        }
        Ok(wait)
    }

    /// Stores offsets durably (clearing any metadata a Kafka commit left on those
    /// partitions); returns once they are on stable storage.
    pub async fn commit(
        &self,
        group: &str,
        topic: &str,
        offsets: &[(u32, u64)],
    ) -> Result<(), BrokerError> {
        let commits: Vec<Commit<'_>> = offsets
            .iter()
            .map(|&(partition, offset)| Commit {
                partition,
                offset,
                metadata: "",
            })
            .collect();
        self.commit_with_metadata(group, topic, &commits).await
    }

    /// Stores offsets with their metadata durably; returns once they are on stable
    /// storage. The caller has bounded each metadata by [`MAX_OFFSET_METADATA_BYTES`].
    pub async fn commit_with_metadata(
        &self,
        group: &str,
        topic: &str,
        commits: &[Commit<'_>],
    ) -> Result<(), BrokerError> {
        if commits.is_empty() {
            return Ok(());
        }
        debug_assert!(commits
            .iter()
            .all(|c| c.metadata.len() <= MAX_OFFSET_METADATA_BYTES));
        let records = commits
            .iter()
            .map(|c| {
                OffsetsRecord::Offset(OffsetRecord {
                    group: group.into(),
                    topic: topic.into(),
                    partition: c.partition,
                    offset: Some(c.offset),
                    metadata: c.metadata.to_owned(),
                })
            })
            .collect();
        let wait = self.write(&mut self.lock(), records)?;
        self.log.wait_durable(wait).await
    }

    /// Changes the registry's record of `group` atomically: `decide` sees what is
    /// stored and returns what to store instead (`None`: leave it), or an error that
    /// refuses the change. Returns once a change is durable.
    pub async fn update_group(
        &self,
        group: &str,
        decide: impl FnOnce(Option<&StoredGroup>) -> Result<Option<StoredGroup>, BrokerError>,
    ) -> Result<(), BrokerError> {
        let wait = {
            let mut state = self.lock();
            let Some(new) = decide(state.groups.get(group))? else {
                return Ok(());
            };
            let record = OffsetsRecord::Group(GroupRecord {
                group: group.into(),
                topic: new.topic,
                settings: Some(new.settings),
            });
            self.write(&mut state, vec![record])?
        };
        self.log.wait_durable(wait).await
    }

    /// Records `group` as it is now, without waiting for durability: for groups of
    /// state written before the registry existed, which a restart would infer the
    /// same way again if the record were lost (blocking I/O).
    pub fn adopt_group(&self, group: &str, stored: StoredGroup) -> Result<(), BrokerError> {
        let record = OffsetsRecord::Group(GroupRecord {
            group: group.into(),
            topic: stored.topic,
            settings: Some(stored.settings),
        });
        self.write(&mut self.lock(), vec![record]).map(|_| ())
    }

    /// Deletes `group` of `topic`: its record and every offset it committed on
    /// `topic`. Returns once the deletion is durable.
    pub async fn delete_group(&self, group: &str, topic: &str) -> Result<(), BrokerError> {
        let wait = {
            let mut state = self.lock();
            let mut records: Vec<OffsetsRecord> = state
                .committed
                .keys()
                .filter(|k| k.group == group && k.topic == topic)
                .map(|k| {
                    OffsetsRecord::Offset(OffsetRecord {
                        group: k.group.clone(),
                        topic: k.topic.clone(),
                        partition: k.partition,
                        offset: None,
                        metadata: String::new(),
                    })
                })
                .collect();
            records.push(OffsetsRecord::Group(GroupRecord {
                group: group.into(),
                topic: topic.into(),
                settings: None,
            }));
            self.write(&mut state, records)?
        };
        self.log.wait_durable(wait).await
    }

    /// Compacts the topic if the policy says so (blocking I/O).
    pub fn compact(&self) -> Result<(), BrokerError> {
        let state = self.lock();
        let live = (state.committed.len() + state.groups.len()) as u64;
        self.log
            .compact(live, || self.log.append(&state.snapshot()).map(|_| ()))
            .map(|_| ())
    }

    /// Committed offsets of `group` on `topic`, by partition.
    pub fn get(&self, group: &str, topic: &str, partition: u32) -> Option<u64> {
        let key = OffsetKey {
            group: group.into(),
            topic: topic.into(),
            partition,
        };
        self.lock().committed.get(&key).copied()
    }

    /// The metadata committed with `group`'s offset on `topic`'s `partition`; empty
    /// when the commit carried none (or there is no commit).
    pub fn metadata(&self, group: &str, topic: &str, partition: u32) -> String {
        let key = OffsetKey {
            group: group.into(),
            topic: topic.into(),
            partition,
        };
        self.lock().metadata.get(&key).cloned().unwrap_or_default()
    }

    /// Every offset `group` committed, as `(topic, partition, offset)`, sorted.
    pub fn committed_by(&self, group: &str) -> Vec<(String, u32, u64)> {
        let mut out: Vec<_> = self
            .lock()
            .committed
            .iter()
            .filter(|(k, _)| k.group == group)
            .map(|(k, offset)| (k.topic.clone(), k.partition, *offset))
            .collect();
        out.sort();
        out
    }

    /// `(group, topic)` pairs that have committed offsets.
    pub fn groups(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = self
            .lock()
            .committed
            .keys()
            .map(|k| (k.group.clone(), k.topic.clone()))
            .collect();
        pairs.sort();
        pairs.dedup();
        pairs
    }

    /// The registry's record of `group`.
    pub fn group(&self, group: &str) -> Option<StoredGroup> {
        self.lock().groups.get(group).cloned()
    }

    /// Every group of the registry, sorted by name.
    pub fn stored_groups(&self) -> Vec<(String, StoredGroup)> {
        let mut out: Vec<_> = self
            .lock()
            .groups
            .iter()
            .map(|(name, stored)| (name.clone(), stored.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use protocol::ops::group::GroupMode;

    /// Compacts now, whatever the policy: the log is cut to one snapshot of the state.
    fn compact_to_a_snapshot(offsets: &Offsets) {
        let state = offsets.lock();
        offsets
            .log
            .compact_now(|| offsets.log.append(&state.snapshot()).map(|_| ()))
            .unwrap();
    }

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
            for (group, mode) in [
                ("g", GroupMode::Stream),
                ("q", GroupMode::Queue),
                ("x", GroupMode::Stream),
            ] {
                offsets
                    .update_group(group, |_| Ok(Some(stored(mode))))
                    .await
                    .unwrap();
            }
            offsets.commit("x", "t", &[(0, 1)]).await.unwrap();
            offsets.delete_group("x", "t").await.unwrap();
            offsets.compact().unwrap();
            assert_eq!(offsets.log.records(), 426, "below the policy's minimum");
            compact_to_a_snapshot(&offsets);
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
        let groups: Vec<_> = offsets.stored_groups();
        assert_eq!(
            groups,
            [
                ("g".to_string(), stored(GroupMode::Stream)),
                ("q".to_string(), stored(GroupMode::Queue))
            ],
            "the registry survives the snapshot; the deleted group and its offsets are gone"
        );
    }

    #[tokio::test]
    async fn metadata_survives_reopen_and_compaction_and_a_plain_commit_clears_it() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(SystemClock::new());
        let with = |partition, offset, metadata| Commit {
            partition,
            offset,
            metadata,
        };
        {
            let topics = Topics::open(dir.path()).unwrap();
            let offsets = Offsets::open(&topics, clock.clone()).unwrap();
            let commits = [with(0, 5, "checkpoint-5"), with(1, 6, "x"), with(2, 7, "")];
            offsets
                .commit_with_metadata("g", "t", &commits)
                .await
                .unwrap();
            assert_eq!(offsets.metadata("g", "t", 0), "checkpoint-5");
            assert_eq!(offsets.metadata("g", "t", 2), "");
            // A commit without metadata replaces it, as on Kafka.
            offsets.commit("g", "t", &[(1, 8)]).await.unwrap();
            assert_eq!(
                (
                    offsets.get("g", "t", 1),
                    offsets.metadata("g", "t", 1).as_str()
                ),
                (Some(8), "")
            );
            compact_to_a_snapshot(&offsets);
            drop(offsets);
            topics.close_all();
        }
        let topics = Topics::open(dir.path()).unwrap();
        let offsets = Offsets::open(&topics, clock).unwrap();
        assert_eq!(offsets.get("g", "t", 0), Some(5));
        assert_eq!(offsets.metadata("g", "t", 0), "checkpoint-5");
        assert_eq!(offsets.metadata("g", "t", 1), "");
        offsets.delete_group("g", "t").await.unwrap();
        assert_eq!(offsets.metadata("g", "t", 0), "", "deleted with its offset");
        assert!(offsets.lock().metadata.is_empty());
    }

    fn stored(mode: GroupMode) -> StoredGroup {
        let config = match mode {
            GroupMode::Queue => vec![protocol::ops::topic::ConfigEntry {
                key: "max_delivery_attempts".into(),
                value: "2".into(),
            }],
            GroupMode::Stream => Vec::new(),
        };
        StoredGroup {
            topic: "t".into(),
            settings: GroupSettings { mode, config },
        }
    }
}
