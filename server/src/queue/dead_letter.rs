//! Dead letters: a message out of attempts is copied, with its history in `dlq.*`
//! headers, to the group's dead-letter topic, and only then settled.
//!
//! [`dead_letter_record`] builds the copy (pure, tested alone); the group's
//! [`dead_letter`](QueueGroup::dead_letter) does the I/O around it.

use bytes::Bytes;
use protocol::batch::{split_batches, BatchBuilder, BatchView};

use super::dispatch::DeadLetter;
use super::group::QueueGroup;
use super::QueueConfig;
use crate::error::BrokerError;
use crate::topics::Topic;
use crate::traces::At;

/// Headers the broker sets on a dead letter start with this; the original message's
/// own headers with it are dropped, so a message dead-lettered twice (replayed from
/// one dead-letter topic into another queue) carries only its latest history.
pub const DEAD_LETTER_HEADER_PREFIX: &str = "dlq.";

/// Where a dead letter came from and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History<'a> {
    /// The topic it was consumed from.
    pub topic: &'a str,
    /// Its partition there.
    pub partition: u32,
    /// Its offset there.
    pub offset: u64,
    /// The queue group that gave up on it.
    pub group: &'a str,
    /// Deliveries it had.
    pub attempts: u32,
    /// Why the last one failed.
    pub reason: &'a str,
    /// When it was first delivered, ms since the epoch.
    pub first_delivery_ms: i64,
    /// When it was last delivered.
    pub last_delivery_ms: i64,
}

/// The dead letter of the record at `history.offset` of `source` (the stored batch
/// holding it): the same timestamp, key and value, its headers except `dlq.*` ones,
/// then the `dlq.*` headers of `history`. One record, as a batch ready to append.
pub fn dead_letter_record(source: Bytes, history: &History<'_>) -> Result<Bytes, BrokerError> {
    let damaged = |e: &dyn std::fmt::Display| {
        BrokerError::Internal(format!(
            "dead letter source {}/{} offset {}: {e}",
            history.topic, history.partition, history.offset
        ))
    };
    let missing = || damaged(&"the record is not in the batch read for it");
    let batch = split_batches(source)
        .next()
        .ok_or_else(missing)?
        .map_err(|e| damaged(&e))?;
    let view = BatchView::new(&batch).map_err(|e| damaged(&e))?;
    let record = view
        .records()
        .flatten()
        .find(|r| r.offset == history.offset)
        .ok_or_else(missing)?;
    let extra: [(&str, String); 8] = [
        ("dlq.original_topic", history.topic.into()),
        ("dlq.original_partition", history.partition.to_string()),
        ("dlq.original_offset", history.offset.to_string()),
        ("dlq.group", history.group.into()),
        ("dlq.attempts", history.attempts.to_string()),
        ("dlq.reason", history.reason.into()),
        (
            "dlq.first_delivery_ms",
            history.first_delivery_ms.to_string(),
        ),
        ("dlq.last_delivery_ms", history.last_delivery_ms.to_string()),
    ];
    let mut headers: Vec<(&str, &[u8])> = record
        .headers()
        .flatten()
        .filter(|(key, _)| !key.starts_with(DEAD_LETTER_HEADER_PREFIX))
        .collect();
    headers.extend(extra.iter().map(|(k, v)| (*k, v.as_bytes())));
    let mut builder = BatchBuilder::new();
    builder
        .push(record.timestamp_ms, record.key, record.value, &headers)
        .map_err(|e| BrokerError::Internal(format!("dead letter record: {e}")))?;
    Ok(builder.finish())
}

impl QueueGroup {
    /// Copies a message that ran out of attempts to the dead-letter topic (created
    /// with one partition if missing), waits for the copy to be durable, then settles
    /// the message.
    pub(super) async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), BrokerError> {
        let DeadLetter {
            partition, offset, ..
        } = *letter;
        let (attempts, first_ms, last_ms) = {
            let inner = self.lock();
            let entry = inner
                .state
                .partition(partition)
                .and_then(|p| p.entry(offset));
            entry.map_or((0, 0, 0), |e| (e.attempts, e.first_ms, e.last_ms))
        };
        let source = self.topic.partition(partition)?.read(offset, 1)?;
        let history = History {
            topic: &self.topic.name,
            partition,
            offset,
            group: &self.name,
            attempts,
            reason: &letter.reason,
            first_delivery_ms: first_ms,
            last_delivery_ms: last_ms,
        };
        let batch = dead_letter_record(source.bytes, &history)?;
        let dlq_name = self
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dead_letter_topic(&self.topic.name);
        let target = self.dead_letter_topic(&dlq_name).await?;
        let target = target.partition(0)?.clone();
        let info = target.append(&batch)?;
        target
            .wait_durable(info.next_offset, crate::internal::DURABLE_TIMEOUT)
            .await?;
        let wait = {
            let mut inner = self.lock();
            let event = inner
                .state
                .dead_lettered(partition, offset)
                .map_err(|r| self.refusal(r))?;
            if let Some((context, _)) = inner.traced.remove(&(partition, offset)) {
                let at = At {
                    topic: &self.topic.name,
                    partition,
                    offset,
                };
                self.traces
                    .on_dead_letter(&context, at, &self.name, attempts, &dlq_name);
            }
            self.persist(vec![event])?
        };
        tracing::info!(group = %self.name, topic = %self.topic.name, partition, offset, attempts, dlq = %dlq_name, "dead-lettered");
        self.log.wait_durable(wait).await
    }

    /// The dead-letter topic, created (one partition, the source topic's storage
    /// settings, default queue settings) if missing.
    async fn dead_letter_topic(&self, name: &str) -> Result<std::sync::Arc<Topic>, BrokerError> {
        if let Ok(topic) = self.topics.get(name) {
            return Ok(topic);
        }
        let topics = self.topics.clone();
        let mut config = self.topic.config.clone();
        config.partitions = 1;
        config.queue = QueueConfig::default();
        let owned = name.to_string();
        let created = tokio::task::spawn_blocking(move || topics.create(&owned, config, false))
            .await
            .map_err(|e| BrokerError::Internal(e.to_string()))?;
        match created {
            Ok(topic) => Ok(topic),
            Err(BrokerError::TopicExists(_)) => self.topics.get(name),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> History<'static> {
        History {
            topic: "jobs",
            partition: 1,
            offset: 11,
            group: "workers",
            attempts: 3,
            reason: "boom",
            first_delivery_ms: 100,
            last_delivery_ms: 300,
        }
    }

    fn stored(base: u64) -> Bytes {
        let mut builder = BatchBuilder::new();
        builder
            .push(7, Some(b"k0"), Some(b"first"), &[("dlq.reason", b"old")])
            .unwrap();
        builder
            .push(
                8,
                Some(b"k1"),
                Some(b"second"),
                &[("trace", b"t"), ("dlq.group", b"old")],
            )
            .unwrap();
        let mut batch = builder.finish().to_vec();
        batch[..8].copy_from_slice(&base.to_le_bytes());
        Bytes::from(batch)
    }

    #[test]
    fn the_copy_keeps_the_record_and_replaces_its_history() {
        let copy = dead_letter_record(stored(10), &history()).unwrap();
        let view = BatchView::new(&copy).unwrap();
        let records: Vec<_> = view.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 1);
        let record = &records[0];
        assert_eq!(
            (record.timestamp_ms, record.key, record.value),
            (8, Some(&b"k1"[..]), Some(&b"second"[..]))
        );
        let headers: Vec<(&str, &[u8])> = record.headers().map(Result::unwrap).collect();
        let expected: Vec<(&str, &[u8])> = vec![
            ("trace", b"t"),
            ("dlq.original_topic", b"jobs"),
            ("dlq.original_partition", b"1"),
            ("dlq.original_offset", b"11"),
            ("dlq.group", b"workers"),
            ("dlq.attempts", b"3"),
            ("dlq.reason", b"boom"),
            ("dlq.first_delivery_ms", b"100"),
            ("dlq.last_delivery_ms", b"300"),
        ];
        assert_eq!(headers, expected);
    }

    #[test]
    fn a_record_missing_from_the_read_is_an_error_not_a_panic() {
        let refused = dead_letter_record(stored(20), &history());
        assert!(
            matches!(refused, Err(BrokerError::Internal(_))),
            "{refused:?}"
        );
        assert!(dead_letter_record(Bytes::new(), &history()).is_err());
        assert!(dead_letter_record(Bytes::from_static(&[1, 2, 3]), &history()).is_err());
    }
}
