//! A topic's configuration: its fields, the one table of keys users set them by
//! (`topics create --config KEY=VALUE`, and for queue settings a queue group's join),
//! and its on-disk form, `topic.toml`.

use protocol::ops::topic::ConfigEntry;
use serde::{Deserialize, Serialize};
use storage::{Durability, LogConfig};

use super::{validate_topic_name, INTERNAL_PREFIX};
use crate::error::BrokerError;
use crate::queue::QueueConfig;

/// Most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 1024;

/// Per-topic configuration.
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

/// One key of [`CONFIG_KEYS`].
#[derive(Debug)]
pub struct ConfigKey {
    /// The key, as users write it.
    pub name: &'static str,
    /// A queue setting: a queue group's join may override it for that group.
    pub queue: bool,
    /// May change on a live topic (AlterTopic); the others are fixed at creation.
    pub live: bool,
    /// Sets the value; a value that does not parse or is out of range is an error.
    pub set: fn(&mut TopicConfig, &str) -> Result<(), BrokerError>,
    /// The current value, as DescribeTopic shows it (the topic's name completes
    /// defaults that depend on it).
    pub show: fn(&TopicConfig, &str) -> String,
}

/// Every key a topic's configuration is set by, in the order DescribeTopic lists them.
pub const CONFIG_KEYS: &[ConfigKey] = &[
    ConfigKey {
        name: "ack_deadline_ms",
        queue: true,
        live: true,
        set: |c, v| {
            c.queue.ack_deadline_ms = parse_number("ack_deadline_ms", v)?;
            Ok(())
        },
        show: |c, _| c.queue.ack_deadline_ms.to_string(),
    },
    ConfigKey {
        name: "dead_letter_topic",
        queue: true,
        live: true,
        set: |c, v| {
            let name = v.trim();
            c.queue.dead_letter_topic = (!name.is_empty() && name != "none")
                .then(|| check_dead_letter_name(name).map(|()| name.into()))
                .transpose()?;
            Ok(())
        },
        show: |c, topic| c.queue.dead_letter_topic(topic),
    },
    ConfigKey {
        name: "durability",
        queue: false,
        live: false,
        set: |c, v| {
            c.durability =
                Durability::parse(v).map_err(|e| BrokerError::InvalidConfig(e.to_string()))?;
            Ok(())
        },
        show: |c, _| durability_name(c.durability),
    },
    ConfigKey {
        name: "max_delivery_attempts",
        queue: true,
        live: true,
        set: |c, v| {
            c.queue.max_delivery_attempts = parse_number("max_delivery_attempts", v)?;
            Ok(())
        },
        show: |c, _| c.queue.max_delivery_attempts.to_string(),
    },
    ConfigKey {
        name: "retention_bytes",
        queue: false,
        live: true,
        set: |c, v| {
            c.retention_bytes = parse_optional_u64("retention_bytes", v)?;
            Ok(())
        },
        show: |c, _| show_optional(c.retention_bytes),
    },
    ConfigKey {
        name: "retention_ms",
        queue: false,
        live: true,
        set: |c, v| {
            c.retention_ms = parse_optional_u64("retention_ms", v)?;
            Ok(())
        },
        show: |c, _| show_optional(c.retention_ms),
    },
    ConfigKey {
        name: "retry_backoff_max_ms",
        queue: true,
        live: true,
        set: |c, v| {
            c.queue.retry_backoff_max_ms = parse_number("retry_backoff_max_ms", v)?;
            Ok(())
        },
        show: |c, _| c.queue.retry_backoff_max_ms.to_string(),
    },
    ConfigKey {
        name: "retry_backoff_ms",
        queue: true,
        live: true,
        set: |c, v| {
            c.queue.retry_backoff_ms = parse_number("retry_backoff_ms", v)?;
            Ok(())
        },
        show: |c, _| c.queue.retry_backoff_ms.to_string(),
    },
    ConfigKey {
        name: "retry_backoff_multiplier",
        queue: true,
        live: true,
        set: |c, v| {
            c.queue.retry_backoff_multiplier_milli =
                parse_milli("retry_backoff_multiplier", v, 100.0)?;
            Ok(())
        },
        show: |c, _| show_milli(c.queue.retry_backoff_multiplier_milli),
    },
    ConfigKey {
        name: "retry_jitter",
        queue: true,
        live: true,
        set: |c, v| {
            c.queue.retry_jitter_milli = parse_milli("retry_jitter", v, 1.0)?;
            Ok(())
        },
        show: |c, _| show_milli(c.queue.retry_jitter_milli),
    },
    ConfigKey {
        name: "segment_bytes",
        queue: false,
        live: false,
        set: |c, v| {
            c.segment_bytes = v.trim().parse().map_err(|_| {
                BrokerError::InvalidConfig(format!("segment_bytes: {v:?} is not a number of bytes"))
            })?;
            Ok(())
        },
        show: |c, _| c.segment_bytes.to_string(),
    },
];

/// The key named `name`, or an error listing the known ones.
pub fn config_key(name: &str) -> Result<&'static ConfigKey, BrokerError> {
    CONFIG_KEYS.iter().find(|k| k.name == name).ok_or_else(|| {
        let known: Vec<&str> = CONFIG_KEYS.iter().map(|k| k.name).collect();
        BrokerError::InvalidConfig(format!(
            "unknown topic config key {name:?}; known keys: {}",
            known.join(", ")
        ))
    })
}

/// The names of the queue settings, for error messages.
pub fn queue_key_names() -> Vec<&'static str> {
    CONFIG_KEYS
        .iter()
        .filter(|k| k.queue)
        .map(|k| k.name)
        .collect()
}

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

fn show_milli(milli: u32) -> String {
    format!("{}", f64::from(milli) / 1000.0)
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

/// A dead-letter topic the broker can create and append to: a valid name, not one
/// of the broker's internal topics (which refuse appends from outside, so every
/// dead letter would fail and be retried forever).
fn check_dead_letter_name(name: &str) -> Result<(), BrokerError> {
    // `invalid_request`, like the same names given to CreateTopic.
    validate_topic_name(name)
        .map_err(|e| BrokerError::InvalidRequest(format!("dead_letter_topic: {e}")))?;
    if name.starts_with(INTERNAL_PREFIX) {
        return Err(BrokerError::InvalidRequest(format!(
            "dead_letter_topic: {name:?} is reserved for the broker's internal topics \
             (names starting with {INTERNAL_PREFIX:?}); choose another name"
        )));
    }
    Ok(())
}

fn show_optional(value: Option<u64>) -> String {
    value.map_or_else(|| "none".to_string(), |v| v.to_string())
}

fn durability_name(durability: Durability) -> String {
    match durability {
        Durability::Always => "always".into(),
        Durability::Os => "os".into(),
        Durability::IntervalMs(ms) => format!("interval:{ms}"),
    }
}

impl TopicConfig {
    /// Its durability policy as configured: `always`, `os` or `interval:MS`.
    pub fn durability_name(&self) -> String {
        durability_name(self.durability)
    }

    /// Applies `KEY=VALUE` overrides; unknown keys and bad values are errors.
    pub fn apply(&mut self, entries: &[ConfigEntry]) -> Result<(), BrokerError> {
        for ConfigEntry { key, value } in entries {
            (config_key(key)?.set)(self, value)?;
        }
        self.validate()
    }

    /// This configuration with `entries` changed, for a live topic (AlterTopic): every
    /// key must be one that may change live ([`ConfigKey::live`]), and given once.
    /// Nothing is changed unless all of them apply.
    pub fn altered(&self, entries: &[ConfigEntry]) -> Result<TopicConfig, BrokerError> {
        if entries.is_empty() {
            return Err(BrokerError::InvalidRequest(
                "no settings to change: give at least one KEY=VALUE".into(),
            ));
        }
        for (i, entry) in entries.iter().enumerate() {
            if entries[..i].iter().any(|e| e.key == entry.key) {
                return Err(BrokerError::InvalidRequest(format!(
                    "{} is given twice",
                    entry.key
                )));
            }
            let key = config_key(&entry.key)?;
            if !key.live {
                let live: Vec<&str> = CONFIG_KEYS
                    .iter()
                    .filter(|k| k.live)
                    .map(|k| k.name)
                    .collect();
                return Err(BrokerError::InvalidConfig(format!(
                    "{} cannot change on a live topic: it is fixed when the topic is created. Keys that can: {}",
                    key.name,
                    live.join(", ")
                )));
            }
        }
        let mut altered = self.clone();
        altered.apply(entries)?;
        debug_assert_eq!(altered.partitions, self.partitions, "not a config key");
        Ok(altered)
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

    /// Every key with its value, for DescribeTopic.
    pub fn entries(&self, topic: &str) -> Vec<ConfigEntry> {
        CONFIG_KEYS
            .iter()
            .map(|key| ConfigEntry {
                key: key.name.into(),
                value: (key.show)(self, topic),
            })
            .collect()
    }

    pub(super) fn to_file(&self) -> TopicFile {
        TopicFile {
            partitions: self.partitions,
            segment_bytes: self.segment_bytes,
            retention_bytes: self.retention_bytes,
            retention_ms: self.retention_ms,
            durability: durability_name(self.durability),
            queue: self.queue.clone(),
        }
    }

    pub(super) fn from_file(file: TopicFile) -> Result<TopicConfig, BrokerError> {
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

/// The on-disk form of [`TopicConfig`] (`topic.toml`).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TopicFile {
    partitions: u32,
    segment_bytes: u64,
    retention_bytes: Option<u64>,
    retention_ms: Option<u64>,
    durability: String,
    #[serde(default)]
    queue: QueueConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::topics::tests::defaults;

    fn entry(k: &str, v: &str) -> ConfigEntry {
        ConfigEntry {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn config_entries_apply_and_reject_unknown_keys() {
        let mut config = defaults();
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
    fn a_live_topic_changes_only_live_keys_and_all_or_nothing() {
        let config = defaults();
        let altered = config
            .altered(&[entry("retention_ms", "1000"), entry("retry_jitter", "0.5")])
            .unwrap();
        assert_eq!(altered.retention_ms, Some(1000));
        assert_eq!(altered.queue.retry_jitter_milli, 500);
        assert_eq!(altered.segment_bytes, config.segment_bytes);
        for (refused, code) in [
            (
                vec![entry("durability", "os")],
                protocol::ErrorCode::InvalidConfig,
            ),
            (
                vec![entry("segment_bytes", "8192")],
                protocol::ErrorCode::InvalidConfig,
            ),
            (
                vec![entry("partitions", "3")],
                protocol::ErrorCode::InvalidConfig,
            ),
            (vec![], protocol::ErrorCode::InvalidRequest),
            (
                vec![entry("retention_ms", "1"), entry("retention_ms", "2")],
                protocol::ErrorCode::InvalidRequest,
            ),
            (
                vec![entry("retention_ms", "1"), entry("retry_jitter", "9")],
                protocol::ErrorCode::InvalidConfig,
            ),
        ] {
            let error = config.altered(&refused).unwrap_err();
            assert_eq!(error.code(), code, "{refused:?}: {error}");
        }
    }

    #[test]
    fn a_group_takes_the_new_defaults_it_did_not_override() {
        let old = QueueConfig::default();
        let new = QueueConfig {
            ack_deadline_ms: 5_000,
            max_delivery_attempts: 9,
            ..QueueConfig::default()
        };
        let group = QueueConfig {
            max_delivery_attempts: 2, // its join's override
            ..QueueConfig::default()
        };
        let rebased = group.rebased(&old, &new);
        assert_eq!(rebased.ack_deadline_ms, 5_000);
        assert_eq!(rebased.max_delivery_attempts, 2);
    }

    #[test]
    fn every_key_shows_what_it_sets() {
        let mut config = defaults();
        let values = [
            ("ack_deadline_ms", "1500"),
            ("dead_letter_topic", "jobs.failed"),
            ("durability", "interval:7"),
            ("max_delivery_attempts", "9"),
            ("retention_bytes", "4096"),
            ("retention_ms", "none"),
            ("retry_backoff_max_ms", "60000"),
            ("retry_backoff_ms", "250"),
            ("retry_backoff_multiplier", "1.5"),
            ("retry_jitter", "0.25"),
            ("segment_bytes", "1048576"),
        ];
        assert_eq!(values.len(), CONFIG_KEYS.len(), "every key is tested");
        for (key, value) in values {
            config.apply(&[entry(key, value)]).unwrap();
        }
        let shown: Vec<(String, String)> = config
            .entries("jobs")
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect();
        let expected: Vec<(String, String)> = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(shown, expected);
        let mut names: Vec<&str> = CONFIG_KEYS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            CONFIG_KEYS.iter().map(|k| k.name).collect::<Vec<_>>(),
            "sorted"
        );
    }

    #[test]
    fn a_dead_letter_topic_is_a_valid_name_outside_the_internal_topics() {
        for bad in ["__x", "__consumer_offsets", "no spaces", "a/b"] {
            let mut config = TopicConfig::internal_default();
            let refused = config
                .apply(&[entry("dead_letter_topic", bad)])
                .unwrap_err();
            assert!(matches!(refused, BrokerError::InvalidRequest(_)), "{bad}");
            assert!(
                refused.to_string().starts_with("dead_letter_topic: "),
                "{refused}"
            );
        }
        let mut config = TopicConfig::internal_default();
        config
            .apply(&[entry("dead_letter_topic", "jobs.failed")])
            .unwrap();
        assert!(config.queue.validate_for("jobs").is_ok());
        assert!(
            config.queue.validate_for("jobs.failed").is_err(),
            "not itself"
        );
        config.apply(&[entry("dead_letter_topic", "none")]).unwrap();
        assert_eq!(config.queue.dead_letter_topic, None);
    }
}
