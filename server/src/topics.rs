//! Topics: their configuration, their partitions, and the topics that creates,
//! loads and deletes them.
//!
//! On disk a topic is a directory under `<data_dir>/topics/` holding `topic.toml` (its
//! configuration) and one log directory per partition (`0/`, `1/`, ...). The topics
//! map is behind a short `RwLock`; requests clone the `Arc<Topic>` they need and never
//! hold the lock across I/O or `.await`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use protocol::ops::topic::ConfigEntry;
use serde::{Deserialize, Serialize};
use storage::{Durability, Log, LogConfig};

use crate::error::BrokerError;
use crate::partition::Partition;

/// Most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 1024;
/// Longest topic name.
pub const MAX_TOPIC_NAME_BYTES: usize = 200;
/// Names starting with this are internal topics, created by the broker only.
pub const INTERNAL_PREFIX: &str = "__";
/// File holding a topic's configuration.
const TOPIC_FILE: &str = "topic.toml";

/// Per-topic configuration. Keys accepted by `topics create --config KEY=VALUE`:
/// `retention_bytes`, `retention_ms`, `segment_bytes`, `durability`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// Number of partitions.
    pub partitions: u32,
    /// Segment size, bytes.
    pub segment_bytes: u64,
    /// Retention by size per partition, bytes.
    pub retention_bytes: Option<u64>,
    /// Retention by age, ms.
    pub retention_ms: Option<u64>,
    /// When appends are synced.
    pub durability: Durability,
    /// Queue-group delivery: deadlines, retries, dead letters.
    pub queue: QueueConfig,
}

/// Per-topic queue delivery settings (overridable per group at join).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// `ack_deadline_ms`: a delivery not acked within this long is redelivered.
    pub ack_deadline_ms: u64,
    /// `max_delivery_attempts`: deliveries before a message is dead-lettered.
    pub max_delivery_attempts: u32,
    /// `retry_backoff_ms`: delay before the first redelivery.
    pub retry_backoff_ms: u64,
    /// `retry_backoff_max_ms`: largest delay.
    pub retry_backoff_max_ms: u64,
    /// `retry_backoff_multiplier`, in thousandths (2000 = x2 per attempt).
    pub retry_backoff_multiplier_milli: u32,
    /// `retry_jitter`, in thousandths (200 = each delay scaled by 0.8..1.2).
    pub retry_jitter_milli: u32,
    /// `dead_letter_topic`; absent means `<topic>.dlq`.
    pub dead_letter_topic: Option<String>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            ack_deadline_ms: 30_000,
            max_delivery_attempts: 5,
            retry_backoff_ms: 1_000,
            retry_backoff_max_ms: 60_000,
            retry_backoff_multiplier_milli: 2_000,
            retry_jitter_milli: 200,
            dead_letter_topic: None,
        }
    }
}

/// Keys accepted for queue settings, at topic creation and (the same keys) at a queue
/// group's join.
pub const QUEUE_CONFIG_KEYS: &[&str] = &[
    "ack_deadline_ms",
    "max_delivery_attempts",
    "retry_backoff_ms",
    "retry_backoff_max_ms",
    "retry_backoff_multiplier",
    "retry_jitter",
    "dead_letter_topic",
];

fn parse_number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, BrokerError> {
    value
        .trim()
        .parse()
        .map_err(|_| BrokerError::InvalidConfig(format!("{key}: {value:?} is not a valid number")))
}

fn parse_milli(key: &str, value: &str, max: f64) -> Result<u32, BrokerError> {
    let number: f64 = parse_number(key, value)?;
    if !(0.0..=max).contains(&number) {
        return Err(BrokerError::InvalidConfig(format!(
            "{key}: {value} is outside 0..={max}"
        )));
    }
    Ok((number * 1000.0).round() as u32)
}

impl QueueConfig {
    /// Applies one `KEY=VALUE`; `Ok(false)` if the key is not a queue key.
    pub fn apply_entry(&mut self, key: &str, value: &str) -> Result<bool, BrokerError> {
        match key {
            "ack_deadline_ms" => self.ack_deadline_ms = parse_number(key, value)?,
            "max_delivery_attempts" => self.max_delivery_attempts = parse_number(key, value)?,
            "retry_backoff_ms" => self.retry_backoff_ms = parse_number(key, value)?,
            "retry_backoff_max_ms" => self.retry_backoff_max_ms = parse_number(key, value)?,
            "retry_backoff_multiplier" => {
                self.retry_backoff_multiplier_milli = parse_milli(key, value, 100.0)?
            }
            "retry_jitter" => self.retry_jitter_milli = parse_milli(key, value, 1.0)?,
            "dead_letter_topic" => {
                let name = value.trim();
                self.dead_letter_topic =
                    (!name.is_empty() && name != "none").then(|| name.to_string());
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), BrokerError> {
        if self.ack_deadline_ms == 0 || self.max_delivery_attempts == 0 {
            return Err(BrokerError::InvalidConfig(
                "ack_deadline_ms and max_delivery_attempts must be at least 1".into(),
            ));
        }
        if self.retry_backoff_ms > self.retry_backoff_max_ms {
            return Err(BrokerError::InvalidConfig(
                "retry_backoff_ms exceeds retry_backoff_max_ms".into(),
            ));
        }
        if let Some(name) = &self.dead_letter_topic {
            validate_topic_name(name)?;
        }
        Ok(())
    }

    /// `KEY=VALUE` entries, for DescribeTopic.
    pub fn entries(&self, topic: &str) -> Vec<ConfigEntry> {
        let entry = |k: &str, v: String| ConfigEntry {
            key: k.into(),
            value: v,
        };
        vec![
            entry("ack_deadline_ms", self.ack_deadline_ms.to_string()),
            entry("dead_letter_topic", self.dead_letter_topic(topic)),
            entry(
                "max_delivery_attempts",
                self.max_delivery_attempts.to_string(),
            ),
            entry(
                "retry_backoff_max_ms",
                self.retry_backoff_max_ms.to_string(),
            ),
            entry("retry_backoff_ms", self.retry_backoff_ms.to_string()),
            entry(
                "retry_backoff_multiplier",
                format!(
                    "{}",
                    f64::from(self.retry_backoff_multiplier_milli) / 1000.0
                ),
            ),
            entry(
                "retry_jitter",
                format!("{}", f64::from(self.retry_jitter_milli) / 1000.0),
            ),
        ]
    }

    /// The dead-letter topic of `topic`.
    pub fn dead_letter_topic(&self, topic: &str) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{topic}.dlq"))
    }
}

/// The on-disk form of [`TopicConfig`].
#[derive(Debug, Serialize, Deserialize)]
struct TopicFile {
    partitions: u32,
    segment_bytes: u64,
    retention_bytes: Option<u64>,
    retention_ms: Option<u64>,
    durability: String,
    #[serde(default)]
    queue: QueueConfig,
}

fn durability_name(durability: Durability) -> String {
    match durability {
        Durability::Always => "always".into(),
        Durability::Os => "os".into(),
        Durability::IntervalMs(ms) => format!("interval:{ms}"),
    }
}

fn parse_optional_u64(key: &str, value: &str) -> Result<Option<u64>, BrokerError> {
    match value.trim() {
        "" | "none" | "unlimited" | "-1" => Ok(None),
        v => v.parse().map(Some).map_err(|_| {
            BrokerError::InvalidConfig(format!(
                "{key}: {value:?} is not a number of bytes/ms (or 'none')"
            ))
        }),
    }
}

impl TopicConfig {
    /// Applies `KEY=VALUE` overrides; unknown keys and bad values are errors.
    pub fn apply(&mut self, entries: &[ConfigEntry]) -> Result<(), BrokerError> {
        for ConfigEntry { key, value } in entries {
            match key.as_str() {
                "retention_bytes" => self.retention_bytes = parse_optional_u64(key, value)?,
                "retention_ms" => self.retention_ms = parse_optional_u64(key, value)?,
                "segment_bytes" => {
                    self.segment_bytes = value.trim().parse().map_err(|_| {
                        BrokerError::InvalidConfig(format!(
                            "segment_bytes: {value:?} is not a number of bytes"
                        ))
                    })?
                }
                "durability" => {
                    self.durability = Durability::parse(value)
                        .map_err(|e| BrokerError::InvalidConfig(e.to_string()))?
                }
                other => {
                    if !self.queue.apply_entry(other, value)? {
                        return Err(BrokerError::InvalidConfig(format!(
                            "unknown topic config key {other:?}; known keys: retention_bytes, retention_ms, segment_bytes, durability, {}",
                            QUEUE_CONFIG_KEYS.join(", ")
                        )));
                    }
                }
            }
        }
        self.validate()
    }

    /// Checks the values against the limits.
    pub fn validate(&self) -> Result<(), BrokerError> {
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS {
            return Err(BrokerError::InvalidConfig(format!(
                "partitions must be within 1..={MAX_PARTITIONS}, got {}",
                self.partitions
            )));
        }
        self.queue.validate()?;
        self.log_config()
            .validate()
            .map_err(|e| BrokerError::InvalidConfig(e.to_string()))
    }

    /// The configuration of the broker's internal topics: one partition, `always`.
    pub fn internal_default() -> TopicConfig {
        TopicConfig {
            partitions: 1,
            segment_bytes: 64 * 1024 * 1024,
            retention_bytes: None,
            retention_ms: None,
            durability: Durability::Always,
            queue: QueueConfig::default(),
        }
    }

    /// The storage configuration of each partition's log.
    pub fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            retention_bytes: self.retention_bytes,
            retention_ms: self.retention_ms,
            durability: self.durability,
            ..LogConfig::default()
        }
    }

    /// As `KEY=VALUE` entries, for DescribeTopic.
    pub fn entries(&self, topic: &str) -> Vec<ConfigEntry> {
        let mut entries = self.log_entries();
        entries.extend(self.queue.entries(topic));
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        entries
    }

    fn log_entries(&self) -> Vec<ConfigEntry> {
        let optional = |v: Option<u64>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
        vec![
            ConfigEntry {
                key: "durability".into(),
                value: durability_name(self.durability),
            },
            ConfigEntry {
                key: "retention_bytes".into(),
                value: optional(self.retention_bytes),
            },
            ConfigEntry {
                key: "retention_ms".into(),
                value: optional(self.retention_ms),
            },
            ConfigEntry {
                key: "segment_bytes".into(),
                value: self.segment_bytes.to_string(),
            },
        ]
    }

    fn to_file(&self) -> TopicFile {
        TopicFile {
            partitions: self.partitions,
            segment_bytes: self.segment_bytes,
            retention_bytes: self.retention_bytes,
            retention_ms: self.retention_ms,
            durability: durability_name(self.durability),
            queue: self.queue.clone(),
        }
    }

    fn from_file(file: TopicFile) -> Result<TopicConfig, BrokerError> {
        let durability = Durability::parse(&file.durability)
            .map_err(|e| BrokerError::InvalidConfig(e.to_string()))?;
        let config = TopicConfig {
            partitions: file.partitions,
            segment_bytes: file.segment_bytes,
            retention_bytes: file.retention_bytes,
            retention_ms: file.retention_ms,
            durability,
            queue: file.queue,
        };
        config.validate()?;
        Ok(config)
    }
}

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
    ) -> Result<Topic, BrokerError> {
        let mut partitions = Vec::with_capacity(config.partitions as usize);
        for id in 0..config.partitions {
            let log = Log::open(dir.join(id.to_string()), config.log_config())?;
            partitions.push(Arc::new(Partition::new(id, log)));
        }
        Ok(Topic {
            name: name.to_string(),
            config,
            internal,
            partitions,
            round_robin: AtomicU32::new(0),
        })
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

/// All topics of the broker.
#[derive(Debug)]
pub struct Topics {
    dir: PathBuf,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
}

impl Topics {
    /// Opens every topic under `<data_dir>/topics` (recovering each log).
    pub fn open(data_dir: &Path) -> Result<Topics, BrokerError> {
        let dir = data_dir.join("topics");
        std::fs::create_dir_all(&dir).map_err(|e| storage::Error::io("creating", &dir, e))?;
        let mut topics = HashMap::new();
        let entries =
            std::fs::read_dir(&dir).map_err(|e| storage::Error::io("listing", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| storage::Error::io("listing", &dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let file = entry.path().join(TOPIC_FILE);
            let Ok(text) = std::fs::read_to_string(&file) else {
                tracing::warn!(dir = %entry.path().display(), "no topic.toml; not a topic, skipping");
                continue;
            };
            let parsed: TopicFile = toml::from_str(&text)
                .map_err(|e| BrokerError::InvalidConfig(format!("{}: {e}", file.display())))?;
            let config = TopicConfig::from_file(parsed)?;
            let internal = name.starts_with(INTERNAL_PREFIX);
            let topic = Topic::open(&entry.path(), &name, config, internal)?;
            tracing::info!(topic = %name, partitions = topic.partitions.len(), "opened topic");
            topics.insert(name, Arc::new(topic));
        }
        Ok(Topics {
            dir,
            topics: RwLock::new(topics),
        })
    }

    /// The topic named `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Topic>, BrokerError> {
        self.read_map()
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::UnknownTopic(name.to_string()))
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
        if self.read_map().contains_key(name) {
            return Err(BrokerError::TopicExists(name.to_string()));
        }
        let dir = self.dir.join(name);
        if dir.exists() {
            // Left over from a crash during create or delete: start clean.
            std::fs::remove_dir_all(&dir)
                .map_err(|e| storage::Error::io("removing stale topic dir", &dir, e))?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| storage::Error::io("creating topic dir", &dir, e))?;
        let topic = Arc::new(Topic::open(&dir, name, config.clone(), internal)?);
        // The config file is written last and atomically: a topic directory without
        // it is an unfinished create and is ignored at startup.
        let text =
            toml::to_string(&config.to_file()).map_err(|e| BrokerError::Internal(e.to_string()))?;
        write_atomically(&dir.join(TOPIC_FILE), text.as_bytes())?;
        let mut map = self.write_map();
        if map.contains_key(name) {
            drop(map);
            let _ = topic.close();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(BrokerError::TopicExists(name.to_string()));
        }
        map.insert(name.to_string(), topic.clone());
        Ok(topic)
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
        let topic = self
            .write_map()
            .remove(name)
            .ok_or_else(|| BrokerError::UnknownTopic(name.to_string()))?;
        let _ = topic.close();
        let dir = self.dir.join(name);
        // Remove the config first, so a crash midway leaves an ignored directory.
        let _ = std::fs::remove_file(dir.join(TOPIC_FILE));
        std::fs::remove_dir_all(&dir)
            .map_err(|e| storage::Error::io("removing topic dir", &dir, e))?;
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

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BrokerError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let io = |op, e| BrokerError::Storage(storage::Error::io(op, path, e));
    let mut file = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
    file.write_all(bytes).map_err(|e| io("writing", e))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("renaming", e))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("syncing directory of", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> TopicConfig {
        TopicConfig {
            partitions: 2,
            segment_bytes: 1 << 20,
            retention_bytes: None,
            retention_ms: None,
            durability: Durability::Os,
            queue: QueueConfig::default(),
        }
    }

    #[test]
    fn config_entries_apply_and_reject_unknown_keys() {
        let mut config = defaults();
        let entry = |k: &str, v: &str| ConfigEntry {
            key: k.into(),
            value: v.into(),
        };
        config
            .apply(&[
                entry("retention_bytes", "1000"),
                entry("durability", "interval:5"),
            ])
            .unwrap();
        assert_eq!(config.retention_bytes, Some(1000));
        assert_eq!(config.durability, Durability::IntervalMs(5));
        assert!(matches!(
            config.apply(&[entry("colour", "blue")]),
            Err(BrokerError::InvalidConfig(_))
        ));
        assert!(matches!(
            config.apply(&[entry("segment_bytes", "12")]),
            Err(BrokerError::InvalidConfig(_))
        ));
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
}
