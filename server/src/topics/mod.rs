//! Topics: every topic of the broker ([`Topics`], which creates, loads and deletes
//! them), each with its partitions ([`Topic`]); their configuration is [`config`].
//!
//! On disk a topic is a directory under `<data_dir>/topics/` holding `topic.toml` (its
//! configuration) and one log directory per partition (`0/`, `1/`, ...). The topics
//! map is behind a short `RwLock`; requests clone the `Arc<Topic>` they need and never
//! hold the lock across I/O or `.await`.

pub mod config;
pub mod dirs;
pub mod opening;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use protocol::ops::topic::ConfigEntry;
use storage::{Log, LogOptions};

use crate::clock::Clock;

use crate::error::BrokerError;
use crate::partition::Partition;
use config::TopicFile;
pub use config::{TopicConfig, MAX_PARTITIONS};
use dirs::{Entry, TOPIC_FILE};
use opening::LogToOpen;

/// Longest topic name.
pub const MAX_TOPIC_NAME_BYTES: usize = 200;
/// Names starting with this are internal topics, created by the broker only.
pub const INTERNAL_PREFIX: &str = "__";

/// Checks a topic name: 1..=200 bytes of `[A-Za-z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), BrokerError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TOPIC_NAME_BYTES
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(BrokerError::InvalidRequest(format!(
            "invalid topic name {name:?}: use 1 to {MAX_TOPIC_NAME_BYTES} characters from A-Z a-z 0-9 . _ -"
        )))
    }
}

/// A topic and its partitions.
#[derive(Debug)]
pub struct Topic {
    /// Name.
    pub name: String,
    /// Configuration.
    pub config: TopicConfig,
    /// Created by the broker for its own use; hidden from listings unless asked.
    pub internal: bool,
    /// Partitions, by number.
    pub partitions: Vec<Arc<Partition>>,
    round_robin: AtomicU32,
}

impl Topic {
    /// The partition numbered `partition`.
    pub fn partition(&self, partition: u32) -> Result<&Arc<Partition>, BrokerError> {
        self.partitions
            .get(partition as usize)
            .ok_or_else(|| BrokerError::InvalidPartition {
                topic: self.name.clone(),
                partition,
                count: self.partitions.len() as u32,
            })
    }

    /// The next partition for records without a key or partition.
    pub fn next_round_robin(&self) -> u32 {
        self.round_robin.fetch_add(1, Ordering::Relaxed) % self.config.partitions
    }

    /// Records across all partitions.
    pub fn messages(&self) -> u64 {
        self.partitions
            .iter()
            .map(|p| p.end_offset() - p.start_offset())
            .sum()
    }

    /// Bytes across all partitions.
    pub fn size_bytes(&self) -> u64 {
        self.partitions.iter().map(|p| p.size_bytes()).sum()
    }

    fn open(
        dir: &Path,
        name: &str,
        config: TopicConfig,
        internal: bool,
        options: &LogOptions,
    ) -> Result<Topic, BrokerError> {
        let logs = Self::logs_to_open(dir, &config);
        let opened = opening::open_all(&logs, options, opening::OPEN_THREADS, "partitions");
        Self::from_opened(name, config, internal, opened)
    }

    /// Every partition log of a topic in `dir` with `config`, in partition order.
    fn logs_to_open(dir: &Path, config: &TopicConfig) -> Vec<LogToOpen> {
        (0..config.partitions)
            .map(|id| LogToOpen {
                dir: dir.join(id.to_string()),
                config: config.log_config(),
            })
            .collect()
    }

    /// The topic whose partitions' logs opened as `opened` (in partition order). A
    /// partition that failed is served as refused; for an internal topic the whole
    /// topic fails, since the broker's own state cannot be served in part.
    fn from_opened(
        name: &str,
        config: TopicConfig,
        internal: bool,
        opened: Vec<storage::Result<Log>>,
    ) -> Result<Topic, BrokerError> {
        debug_assert_eq!(opened.len(), config.partitions as usize);
        let mut partitions = Vec::with_capacity(opened.len());
        for (id, result) in (0..config.partitions).zip(opened) {
            let partition = match result {
                Ok(log) => Partition::new(id, log),
                Err(error) if internal => return Err(error.into()),
                Err(error) => {
                    tracing::error!(topic = name, partition = id, %error, "partition refused to open; serving the others");
                    Partition::refused(id, config.durability, error.to_string())
                }
            };
            partitions.push(Arc::new(partition));
        }
        Ok(Topic {
            name: name.to_string(),
            config,
            internal,
            partitions,
            round_robin: AtomicU32::new(0),
        })
    }

    /// The same topic with `config` and `partitions` (the old ones and any new).
    fn with(&self, config: TopicConfig, partitions: Vec<Arc<Partition>>) -> Topic {
        debug_assert_eq!(partitions.len(), config.partitions as usize);
        Topic {
            name: self.name.clone(),
            config,
            internal: self.internal,
            partitions,
            round_robin: AtomicU32::new(self.round_robin.load(Ordering::Relaxed)),
        }
    }

    /// Closes every partition's log cleanly (blocking I/O).
    pub fn close(&self) -> Result<(), BrokerError> {
        let mut first_error = None;
        for partition in &self.partitions {
            if let Err(e) = partition.close() {
                tracing::error!(topic = %self.name, partition = partition.id, error = %e, "closing partition");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A topic found in the data directory at startup, before its logs are open.
struct FoundTopic {
    name: String,
    dir: PathBuf,
    config: TopicConfig,
}

/// All topics of the broker.
#[derive(Debug)]
pub struct Topics {
    dir: PathBuf,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// How every log is opened: the broker's clock.
    options: LogOptions,
    /// Held by creates and deletes around their directory work, so two of them never
    /// race on one directory. Never taken by requests that only read.
    changing: Mutex<()>,
}

impl Topics {
    /// Opens every topic under `<data_dir>/topics` (recovering each log).
    pub fn open(data_dir: &Path) -> Result<Topics, BrokerError> {
        Self::open_with_clock(data_dir, Arc::new(storage::SystemClock))
    }

    /// [`open`](Self::open), every log reading `clock` (the broker's, so that one
    /// clock times everything).
    pub fn open_with_clock(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Topics, BrokerError> {
        let options = LogOptions {
            clock,
            ..LogOptions::default()
        };
        Self::open_with(data_dir, options)
    }

    /// The budget of mapped sealed segments every log of these topics counts against.
    pub fn mapped_segments(&self) -> storage::MappedSegmentStats {
        self.options
            .mapped_segments
            .clone()
            .unwrap_or_else(storage::MappedSegments::shared)
            .stats()
    }

    /// The index write handle budget every log of these topics borrows from.
    pub fn index_handles(&self) -> storage::IndexHandleStats {
        self.options
            .index_handles
            .clone()
            .unwrap_or_else(storage::IndexHandles::shared)
            .stats()
    }

    /// Opens every topic with `options` for every log: the broker's clock, its
    /// metrics' sync observer, its durability workers and its index handle budget
    /// (`None` in any of them: the storage crate's process-wide default).
    pub fn open_with(data_dir: &Path, options: LogOptions) -> Result<Topics, BrokerError> {
        let dir = data_dir.join("topics");
        std::fs::create_dir_all(&dir).map_err(|e| storage::Error::io("creating", &dir, e))?;
        let mut topics = HashMap::new();
        let mut found_topics = Vec::new();
        let entries =
            std::fs::read_dir(&dir).map_err(|e| storage::Error::io("listing", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| storage::Error::io("listing", &dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                tracing::warn!(entry = %entry.path().display(), "not a topic (a name that is not UTF-8); left alone");
                continue;
            };
            if let Some(found) = Self::read_entry(&entry.path(), &name)? {
                found_topics.push(found);
            }
        }
        // Every partition of every topic at once, in parallel (`opening.rs`).
        let logs: Vec<LogToOpen> = found_topics
            .iter()
            .flat_map(|found| Topic::logs_to_open(&found.dir, &found.config))
            .collect();
        let began = std::time::Instant::now();
        let mut opened =
            opening::open_all(&logs, &options, opening::OPEN_THREADS, "partitions").into_iter();
        for found in found_topics {
            let partitions: Vec<_> = opened
                .by_ref()
                .take(found.config.partitions as usize)
                .collect();
            let internal = found.name.starts_with(INTERNAL_PREFIX);
            let topic = Topic::from_opened(&found.name, found.config, internal, partitions)?;
            tracing::info!(topic = %found.name, partitions = topic.partitions.len(), "opened topic");
            topics.insert(found.name, Arc::new(topic));
        }
        tracing::info!(
            topics = topics.len(),
            partitions = logs.len(),
            elapsed_ms = began.elapsed().as_millis() as u64,
            "opened every partition"
        );
        Ok(Topics {
            dir,
            topics: RwLock::new(topics),
            options,
            changing: Mutex::new(()),
        })
    }

    /// Reads the entry `name` of the topics directory if it is a topic (its
    /// configuration; the logs open later, all topics' at once); finishes or reports
    /// what is not (see [`dirs`]).
    fn read_entry(path: &Path, name: &str) -> Result<Option<FoundTopic>, BrokerError> {
        let kind =
            dirs::classify(path, name).map_err(|e| storage::Error::io("reading", path, e))?;
        match kind {
            Entry::Topic => {}
            Entry::Deleting => {
                tracing::info!(dir = %path.display(), "finishing the deletion of a topic");
                dirs::finish_deleting(path)?;
                return Ok(None);
            }
            Entry::Unfinished => {
                tracing::info!(dir = %path.display(), "removing the directory of a topic create that did not finish (it held no data)");
                dirs::remove_unfinished(path)?;
                return Ok(None);
            }
            Entry::Orphan(contents) => {
                tracing::error!(dir = %path.display(), files = contents.files, bytes = contents.bytes, "topic directory without topic.toml: not opened, and not deleted; creating a topic of this name is refused. Restore its topic.toml and restart to serve it, or move the directory out of the data directory");
                return Ok(None);
            }
            Entry::Other => {
                tracing::warn!(entry = %path.display(), "not a topic; left alone");
                return Ok(None);
            }
        }
        let file = path.join(TOPIC_FILE);
        let text =
            std::fs::read_to_string(&file).map_err(|e| storage::Error::io("reading", &file, e))?;
        let parsed: TopicFile = toml::from_str(&text)
            .map_err(|e| BrokerError::InvalidConfig(format!("{}: {e}", file.display())))?;
        let config = TopicConfig::from_file(parsed)?;
        Ok(Some(FoundTopic {
            name: name.to_string(),
            dir: path.to_path_buf(),
            config,
        }))
    }

    /// The topic named `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Topic>, BrokerError> {
        self.read_map()
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::UnknownTopic(name.to_string()))
    }

    /// Whether `<data_dir>/topics/<name>` exists, topic or not.
    pub fn has_directory(&self, name: &str) -> bool {
        validate_topic_name(name).is_ok() && self.dir.join(name).exists()
    }

    /// All topics, sorted by name.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<_> = self.read_map().values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// Creates a topic (blocking I/O). Internal names are reserved for `internal`.
    pub fn create(
        &self,
        name: &str,
        config: TopicConfig,
        internal: bool,
    ) -> Result<Arc<Topic>, BrokerError> {
        validate_topic_name(name)?;
        if name.starts_with(INTERNAL_PREFIX) != internal {
            return Err(BrokerError::InvalidRequest(format!(
                "topic names starting with {INTERNAL_PREFIX:?} are reserved for the broker's internal topics"
            )));
        }
        config.validate()?;
        config.queue.validate_for(name)?;
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        if self.read_map().contains_key(name) {
            return Err(BrokerError::TopicExists(name.to_string()));
        }
        let dir = self.dir.join(name);
        match dirs::classify(&dir, name).map_err(|e| storage::Error::io("reading", &dir, e))? {
            // Nothing there (a valid name never ends in the deleting suffix).
            Entry::Other | Entry::Deleting => {}
            Entry::Unfinished => dirs::remove_unfinished(&dir)?,
            Entry::Orphan(contents) => return Err(dirs::obstructed(name, contents)),
            // Not in the map, yet a topic's: put there behind the broker's back.
            Entry::Topic => return Err(BrokerError::TopicExists(name.to_string())),
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| storage::Error::io("creating topic dir", &dir, e))?;
        // The config file goes first and atomically: from then on the directory is
        // the topic, whose partitions' logs the next open creates if a crash comes
        // before this one does.
        self.write_config(name, &config)?;
        let topic = Arc::new(Topic::open(
            &dir,
            name,
            config.clone(),
            internal,
            &self.options,
        )?);
        self.write_map().insert(name.to_string(), topic.clone());
        Ok(topic)
    }

    /// Changes settings of a live topic (blocking I/O): checked, written to its
    /// `topic.toml` atomically, then applied: the map holds a new [`Topic`] with the
    /// same partitions, whose logs get the new retention. Requests that already hold
    /// the old `Arc<Topic>` finish with the old settings. Returns the old topic and
    /// the new one.
    pub fn alter(
        &self,
        name: &str,
        entries: &[ConfigEntry],
    ) -> Result<(Arc<Topic>, Arc<Topic>), BrokerError> {
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.get_external(name)?;
        let config = old.config.altered(entries)?;
        self.write_config(name, &config)?;
        for partition in &old.partitions {
            partition.set_retention(config.retention_bytes, config.retention_ms);
        }
        let new = Arc::new(old.with(config, old.partitions.clone()));
        self.write_map().insert(name.to_string(), new.clone());
        Ok((old, new))
    }

    /// Grows a live topic to `count` partitions (blocking I/O): the new partitions'
    /// logs are created, then the count is written to `topic.toml` (a crash before
    /// that leaves empty log directories the next grow reuses), then the map holds a
    /// new [`Topic`] with them. Returns the old topic and the new one.
    pub fn add_partitions(
        &self,
        name: &str,
        count: u32,
    ) -> Result<(Arc<Topic>, Arc<Topic>), BrokerError> {
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.get_external(name)?;
        let current = old.config.partitions;
        if count <= current {
            return Err(BrokerError::InvalidRequest(format!(
                "topic {name:?} has {current} partitions; the new count must be more (partitions are never removed)"
            )));
        }
        let mut config = old.config.clone();
        config.partitions = count;
        config.validate()?;
        let dir = self.dir.join(name);
        let mut partitions = old.partitions.clone();
        for id in current..count {
            let log = Log::open_with(
                dir.join(id.to_string()),
                config.log_config(),
                self.options.clone(),
            )?;
            partitions.push(Arc::new(Partition::new(id, log)));
        }
        self.write_config(name, &config)?;
        let new = Arc::new(old.with(config, partitions));
        self.write_map().insert(name.to_string(), new.clone());
        Ok((old, new))
    }

    /// A topic clients may change: not an internal one.
    fn get_external(&self, name: &str) -> Result<Arc<Topic>, BrokerError> {
        let topic = self.get(name)?;
        if topic.internal {
            return Err(BrokerError::InvalidRequest(format!(
                "{name:?} is an internal topic; the broker manages its settings"
            )));
        }
        Ok(topic)
    }

    fn write_config(&self, name: &str, config: &TopicConfig) -> Result<(), BrokerError> {
        let text =
            toml::to_string(&config.to_file()).map_err(|e| BrokerError::Internal(e.to_string()))?;
        dirs::write_atomically(&self.dir.join(name).join(TOPIC_FILE), text.as_bytes())
    }

    /// Partition 0 of internal topic `name`, created with `config` if missing (blocking
    /// I/O). Every internal topic is opened this way.
    pub fn internal_partition(
        &self,
        name: &str,
        config: TopicConfig,
    ) -> Result<Arc<Partition>, BrokerError> {
        let topic = match self.get(name) {
            Ok(topic) => topic,
            Err(_) => self.create(name, config, true)?,
        };
        Ok(topic.partition(0)?.clone())
    }

    /// Deletes a topic and its data (blocking I/O).
    pub fn delete(&self, name: &str) -> Result<(), BrokerError> {
        if name.starts_with(INTERNAL_PREFIX) {
            return Err(BrokerError::InvalidRequest(format!(
                "internal topic {name:?} cannot be deleted"
            )));
        }
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self
            .write_map()
            .remove(name)
            .ok_or_else(|| BrokerError::UnknownTopic(name.to_string()))?;
        let _ = topic.close();
        dirs::delete_topic_dir(&self.dir.join(name))
    }

    /// Deletes segments beyond every topic's retention limits (blocking I/O). A
    /// partition that fails is logged and the others go on.
    pub fn enforce_retention(&self) -> Result<(), BrokerError> {
        for topic in self.list() {
            for partition in &topic.partitions {
                match partition.enforce_retention() {
                    Ok(outcome) if !outcome.deleted_segments.is_empty() => {
                        tracing::info!(topic = %topic.name, partition = partition.id, deleted = ?outcome.deleted_segments, "retention deleted segments");
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(topic = %topic.name, partition = partition.id, %error, "retention failed")
                    }
                }
            }
        }
        Ok(())
    }

    /// Closes every topic cleanly (blocking I/O).
    pub fn close_all(&self) {
        for topic in self.list() {
            let _ = topic.close();
        }
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two partitions, small segments, no fsync: a topic for tests.
    pub(crate) fn defaults() -> TopicConfig {
        TopicConfig {
            partitions: 2,
            segment_bytes: 1 << 20,
            retention_bytes: None,
            retention_ms: None,
            durability: storage::Durability::Os,
            queue: crate::queue::QueueConfig::default(),
        }
    }

    #[test]
    fn names_are_checked() {
        validate_topic_name("orders.v1_x-y").unwrap();
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(201)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn topics_persist_across_reopen_and_delete_removes_data() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Topics::open(dir.path()).unwrap();
        topics.create("orders", defaults(), false).unwrap();
        assert!(matches!(
            topics.create("orders", defaults(), false),
            Err(BrokerError::TopicExists(_))
        ));
        assert!(topics.create("__mine", defaults(), false).is_err());
        topics.close_all();
        drop(topics);
        let topics = Topics::open(dir.path()).unwrap();
        assert_eq!(topics.get("orders").unwrap().config, defaults());
        topics.delete("orders").unwrap();
        assert!(!dir.path().join("topics/orders").exists());
        assert!(matches!(
            topics.get("orders"),
            Err(BrokerError::UnknownTopic(_))
        ));
    }

    #[test]
    fn a_directory_without_topic_toml_is_never_opened_deleted_or_created_over() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Topics::open(dir.path()).unwrap();
        let topic = topics.create("orders", defaults(), false).unwrap();
        let mut builder = protocol::batch::BatchBuilder::new();
        builder.push(1, None, Some(b"x"), &[]).unwrap();
        topic.partitions[0].append(&builder.finish()).unwrap();
        drop(topic);
        topics.close_all();
        drop(topics);
        let orders = dir.path().join("topics/orders");
        std::fs::remove_file(orders.join(TOPIC_FILE)).unwrap();
        // An interrupted create and an interrupted delete, both to be finished.
        std::fs::create_dir(dir.path().join("topics/half")).unwrap();
        std::fs::write(dir.path().join("topics/half/topic.tmp"), "x").unwrap();
        std::fs::create_dir_all(dir.path().join("topics/gone~deleting/0")).unwrap();
        let segment = storage::format::segment_path(&orders.join("0"), 0);
        let size = std::fs::metadata(&segment).unwrap().len();

        let topics = Topics::open(dir.path()).unwrap();
        assert!(topics.get("orders").is_err());
        assert!(!dir.path().join("topics/half").exists());
        assert!(!dir.path().join("topics/gone~deleting").exists());
        let refused = topics.create("orders", defaults(), false).unwrap_err();
        assert_eq!(refused.code(), protocol::ErrorCode::StorageError);
        let message = refused.to_string();
        assert!(
            message.contains("topics/orders without a topic.toml") && message.contains("file(s)"),
            "{message}"
        );
        assert_eq!(
            std::fs::metadata(&segment).unwrap().len(),
            size,
            "untouched"
        );
        topics.create("half", defaults(), false).unwrap();
    }

    #[test]
    fn altered_settings_and_added_partitions_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Topics::open(dir.path()).unwrap();
        topics.create("orders", defaults(), false).unwrap();
        let retention = [ConfigEntry {
            key: "retention_ms".into(),
            value: "1000".into(),
        }];
        let (old, new) = topics.alter("orders", &retention).unwrap();
        assert_eq!(
            (old.config.retention_ms, new.config.retention_ms),
            (None, Some(1000))
        );
        assert!(
            Arc::ptr_eq(&old.partitions[0], &new.partitions[0]),
            "same logs"
        );
        let (_, grown) = topics.add_partitions("orders", 5).unwrap();
        assert_eq!(grown.partitions.len(), 5);
        assert_eq!(grown.partition(4).unwrap().id, 4);
        assert_eq!(grown.config.retention_ms, Some(1000));
        assert!(topics.add_partitions("orders", 5).is_err());
        assert!(topics.alter("__x", &retention).is_err());
        topics.close_all();
        drop((old, new, grown, topics));
        let topics = Topics::open(dir.path()).unwrap();
        let orders = topics.get("orders").unwrap();
        assert_eq!(orders.partitions.len(), 5);
        assert_eq!(orders.config.retention_ms, Some(1000));
        topics.close_all();
    }

    #[test]
    fn a_partition_whose_log_refuses_to_open_is_isolated_and_the_rest_serves() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Topics::open(dir.path()).unwrap();
        let topic = topics.create("orders", defaults(), false).unwrap();
        let mut builder = protocol::batch::BatchBuilder::new();
        builder.push(1, None, Some(b"x"), &[]).unwrap();
        let batch = builder.finish();
        for partition in &topic.partitions {
            partition.append(&batch).unwrap();
        }
        drop(topic);
        topics.close_all();
        drop(topics);
        // Partition 0 loses its segment: data it reported durable is gone.
        let segment = storage::format::segment_path(&dir.path().join("topics/orders/0"), 0);
        std::fs::remove_file(segment).unwrap();

        let topics = Topics::open(dir.path()).unwrap();
        let topic = topics.get("orders").unwrap();
        let (broken, healthy) = (topic.partition(0).unwrap(), topic.partition(1).unwrap());
        assert!(broken.refusal().unwrap().contains("lost acknowledged data"));
        assert!(healthy.refusal().is_none());
        let refused = broken.append(&batch);
        assert!(
            matches!(
                refused,
                Err(BrokerError::PartitionUnavailable { partition: 0, .. })
            ),
            "{refused:?}"
        );
        assert!(broken.read(0, 1024).is_err());
        assert_eq!(healthy.append(&batch).unwrap().base_offset, 1);
        assert_eq!(healthy.read(0, 1024).unwrap().next_offset, 2);
        topics.close_all();
    }

    #[test]
    fn a_damaged_internal_topic_stops_the_broker() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Topics::open(dir.path()).unwrap();
        let mut config = TopicConfig::internal_default();
        config.durability = storage::Durability::Os;
        let topic = topics.internal_partition("__offsets_test", config).unwrap();
        let mut builder = protocol::batch::BatchBuilder::new();
        builder.push(1, None, Some(b"x"), &[]).unwrap();
        topic.append(&builder.finish()).unwrap();
        drop(topic);
        topics.close_all();
        drop(topics);
        let segment = storage::format::segment_path(&dir.path().join("topics/__offsets_test/0"), 0);
        std::fs::remove_file(segment).unwrap();
        assert!(Topics::open(dir.path()).is_err());
    }
}
