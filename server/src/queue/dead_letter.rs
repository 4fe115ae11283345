//! Dead letters: a message out of attempts is copied, with its history in `dlq.*`
//! headers, to the group's dead-letter topic exactly once, and settled once the copy
//! is durable.
//!
//! [`dead_letter_record`] builds the copy (pure, tested alone); the group's
//! [`dead_letter_round`](QueueGroup::dead_letter_round) does the I/O around it.

use std::collections::HashMap;

use bytes::Bytes;
use protocol::batch::{split_batches, BatchBuilder, BatchView, RecordView};

use super::dispatch::DeadLetter;
use super::group::QueueGroup;
use super::QueueConfig;
use crate::error::BrokerError;
use crate::partition::Partition;
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

/// Bytes read at a time while looking for copies made before a restart.
const COPY_SCAN_BYTES: usize = 1 << 20;

/// `(partition, offset)` of the message a dead letter was copied from, if `record` is
/// a dead letter of `group` consuming `topic`.
fn copy_origin(record: &RecordView<'_>, group: &str, topic: &str) -> Option<(u32, u64)> {
    let (mut of_group, mut of_topic, mut partition, mut offset) = (false, false, None, None);
    for (key, value) in record.headers().flatten() {
        let text = std::str::from_utf8(value).ok();
        match key {
            "dlq.group" => of_group = value == group.as_bytes(),
            "dlq.original_topic" => of_topic = value == topic.as_bytes(),
            "dlq.original_partition" => partition = text.and_then(|t| t.parse().ok()),
            "dlq.original_offset" => offset = text.and_then(|t| t.parse().ok()),
            _ => {}
        }
    }
    (of_group && of_topic).then_some((partition?, offset?))
}

impl QueueGroup {
    /// The dead-letter topic's name under the group's current settings.
    pub(super) fn dead_letter_topic_name(&self) -> String {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dead_letter_topic(&self.topic.name)
    }

    /// The dead-letter topic's end now (0 while it does not exist): a copy made from
    /// now on lands at or after it. Recorded with each intent to dead-letter.
    pub(super) fn dead_letter_end(&self) -> u64 {
        let name = self.dead_letter_topic_name();
        self.topics
            .get(&name)
            .ok()
            .and_then(|t| t.partition(0).ok().map(|p| p.end_offset()))
            .unwrap_or(0)
    }

    /// Dead-letters every message of `letters` (all out of attempts), exactly once:
    ///
    /// 1. their intents (`DeadLettering`, durable before anything is copied) name the
    ///    dead-letter topic's end when they were made; copies already there from
    ///    `min(dlq_from)` on (made before a crash, or before a settle that failed) are
    ///    found by their `dlq.*` headers and not made again;
    /// 2. the others are copied, one append each;
    /// 3. each copy's offset is recorded (`DeadLettered { dlq_offset }`), and the
    ///    copies and the records are waited for together: two fsyncs in parallel,
    ///    once per round, not two in a row per message;
    /// 4. the messages are settled. A crash before that leaves a record naming a copy
    ///    that recovery checks ([`QueueState::confirm_copies`]).
    ///
    /// The first failure stops the copying; what was copied is still recorded, and the
    /// error is returned (the dispatcher retries the rest).
    ///
    /// [`QueueState::confirm_copies`]: super::state::QueueState::confirm_copies
    pub(super) async fn dead_letter_round(
        &self,
        letters: &[DeadLetter],
    ) -> Result<(), BrokerError> {
        if letters.is_empty() {
            return Ok(());
        }
        self.log.wait_durable(self.log.end_offset()).await?;
        let dlq_name = self.dead_letter_topic_name();
        let target = self.dead_letter_topic(&dlq_name).await?;
        let target = target.partition(0)?.clone();
        let scan_from = letters.iter().map(|l| l.dlq_from).min().unwrap_or(0);
        let found = self.copies_in(&target, scan_from, letters)?;
        let mut placed: Vec<(&DeadLetter, u64, u32)> = Vec::with_capacity(letters.len());
        let mut failure = None;
        for letter in letters {
            if let Some(&dlq_offset) = found.get(&(letter.partition, letter.offset)) {
                tracing::info!(group = %self.name, partition = letter.partition, offset = letter.offset, dlq_offset, "dead letter already copied; recording it");
                placed.push((letter, dlq_offset, 0));
                continue;
            }
            match self.copy(letter, &target) {
                Ok((dlq_offset, attempts)) => placed.push((letter, dlq_offset, attempts)),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let copies_end = target.end_offset();
        let recorded = {
            let mut inner = self.lock();
            let mut events = Vec::with_capacity(placed.len());
            for (letter, dlq_offset, attempts) in &placed {
                let (partition, offset) = (letter.partition, letter.offset);
                let Ok(event) = inner.state.dead_lettered(partition, offset, *dlq_offset) else {
                    continue; // settled meanwhile (the log dropped it)
                };
                events.push(event);
                if let Some((context, _)) = inner.traced.remove(&(partition, offset)) {
                    let at = At {
                        topic: &self.topic.name,
                        partition,
                        offset,
                    };
                    self.traces
                        .on_dead_letter(&context, at, &self.name, *attempts, &dlq_name);
                }
            }
            self.persist(events)?
        };
        let (copies, records) = tokio::join!(
            target.wait_durable(copies_end, crate::internal::DURABLE_TIMEOUT),
            self.log.wait_durable(recorded)
        );
        copies?;
        records?;
        let mut inner = self.lock();
        for (letter, dlq_offset, attempts) in &placed {
            if inner.state.copy_durable(letter.partition, letter.offset) {
                tracing::info!(group = %self.name, topic = %self.topic.name, partition = letter.partition, offset = letter.offset, attempts, dlq = %dlq_name, dlq_offset, "dead-lettered");
            }
        }
        drop(inner);
        failure.map_or(Ok(()), Err)
    }

    /// Copies one message to the dead-letter partition `target`; its offset there and
    /// the attempts it had.
    pub(super) fn copy(
        &self,
        letter: &DeadLetter,
        target: &Partition,
    ) -> Result<(u64, u32), BrokerError> {
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
        Ok((target.append(&batch)?.base_offset, attempts))
    }

    /// The copies of `letters` made by this group in `target` from `from` on, by
    /// `(partition, offset)`, with their offsets there.
    fn copies_in(
        &self,
        target: &Partition,
        from: u64,
        letters: &[DeadLetter],
    ) -> Result<HashMap<(u32, u64), u64>, BrokerError> {
        let mut found = HashMap::new();
        let mut offset = from.max(target.start_offset());
        while offset < target.visible_end() {
            let chunk = target.read(offset, COPY_SCAN_BYTES)?;
            if chunk.is_empty() {
                break;
            }
            for batch in split_batches(chunk.bytes.clone()) {
                let batch = batch.map_err(|e| BrokerError::Internal(e.to_string()))?;
                let view =
                    BatchView::new(&batch).map_err(|e| BrokerError::Internal(e.to_string()))?;
                for record in view.records().flatten() {
                    if record.offset < offset {
                        continue;
                    }
                    if let Some(origin) = copy_origin(&record, &self.name, &self.topic.name) {
                        if letters.iter().any(|l| (l.partition, l.offset) == origin) {
                            found.insert(origin, record.offset);
                        }
                    }
                }
            }
            offset = chunk.next_offset;
        }
        Ok(found)
    }

    /// The dead-letter topic, created (one partition, the source topic's storage
    /// settings, default queue settings) if missing.
    pub(super) async fn dead_letter_topic(
        &self,
        name: &str,
    ) -> Result<std::sync::Arc<Topic>, BrokerError> {
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
