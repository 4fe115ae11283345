//! A queue group's settings: the topic's queue keys (see
//! [`crate::topics::config::CONFIG_KEYS`]), with the overrides of the group's join.

use protocol::ops::topic::ConfigEntry;
use serde::{Deserialize, Serialize};

use super::backoff::Backoff;
use super::state::QueuePolicy;
use super::MAX_UNACKED_PER_PARTITION;
use crate::error::BrokerError;
use crate::topics::config::{config_key, queue_key_names};
use crate::topics::{validate_topic_name, TopicConfig};

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

impl QueueConfig {
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

    /// Checks the settings for topic `topic`: its dead letters cannot go to itself
    /// (a group would consume its own dead letters as new messages).
    pub fn validate_for(&self, topic: &str) -> Result<(), BrokerError> {
        if self.dead_letter_topic.as_deref() == Some(topic) {
            return Err(BrokerError::InvalidRequest(format!(
                "dead_letter_topic: {topic:?} is the topic itself; dead letters need a topic of their own"
            )));
        }
        Ok(())
    }

    /// The dead-letter topic of `topic`.
    pub fn dead_letter_topic(&self, topic: &str) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{topic}.dlq"))
    }

    /// This group's settings after its topic's defaults changed from `old` to `new`:
    /// each setting that had the old default (the group's join did not override it)
    /// takes the new one; an overridden one stays.
    pub fn rebased(&self, old: &QueueConfig, new: &QueueConfig) -> QueueConfig {
        fn pick<T: PartialEq + Clone>(mine: &T, old: &T, new: &T) -> T {
            if mine == old {
                new.clone()
            } else {
                mine.clone()
            }
        }
        QueueConfig {
            ack_deadline_ms: pick(
                &self.ack_deadline_ms,
                &old.ack_deadline_ms,
                &new.ack_deadline_ms,
            ),
            max_delivery_attempts: pick(
                &self.max_delivery_attempts,
                &old.max_delivery_attempts,
                &new.max_delivery_attempts,
            ),
            retry_backoff_ms: pick(
                &self.retry_backoff_ms,
                &old.retry_backoff_ms,
                &new.retry_backoff_ms,
            ),
            retry_backoff_max_ms: pick(
                &self.retry_backoff_max_ms,
                &old.retry_backoff_max_ms,
                &new.retry_backoff_max_ms,
            ),
            retry_backoff_multiplier_milli: pick(
                &self.retry_backoff_multiplier_milli,
                &old.retry_backoff_multiplier_milli,
                &new.retry_backoff_multiplier_milli,
            ),
            retry_jitter_milli: pick(
                &self.retry_jitter_milli,
                &old.retry_jitter_milli,
                &new.retry_jitter_milli,
            ),
            dead_letter_topic: pick(
                &self.dead_letter_topic,
                &old.dead_letter_topic,
                &new.dead_letter_topic,
            ),
        }
    }

    /// The delivery policy these settings make.
    pub fn policy(&self) -> QueuePolicy {
        QueuePolicy {
            ack_deadline_ms: self.ack_deadline_ms,
            max_attempts: self.max_delivery_attempts,
            backoff: Backoff {
                initial_ms: self.retry_backoff_ms,
                multiplier: f64::from(self.retry_backoff_multiplier_milli) / 1000.0,
                max_ms: self.retry_backoff_max_ms,
                jitter: f64::from(self.retry_jitter_milli) / 1000.0,
            },
            max_unacked_per_partition: MAX_UNACKED_PER_PARTITION,
        }
    }

    /// The queue settings of topic `name` (configured `topic`) with a group's
    /// `overrides` (from a join) applied and checked: only queue settings may be
    /// overridden.
    pub fn for_group(
        name: &str,
        topic: &TopicConfig,
        overrides: &[ConfigEntry],
    ) -> Result<QueueConfig, BrokerError> {
        let mut config = topic.clone();
        for entry in overrides {
            let key = config_key(&entry.key)
                .ok()
                .filter(|k| k.queue)
                .ok_or_else(|| {
                    BrokerError::InvalidConfig(format!(
                        "{:?} is not a queue setting; per-group overrides take {}",
                        entry.key,
                        queue_key_names().join(", ")
                    ))
                })?;
            (key.set)(&mut config, &entry.value)?;
        }
        config.queue.validate()?;
        config.queue.validate_for(name)?;
        Ok(config.queue)
    }
}
