//! One partition: the single writer of its log, and the handles readers wait on.
//!
//! Appends take a short, partition-local lock around a synchronous `Log::append`
//! (a `pwrite` into the page cache; never an `.await` while held), so the log has
//! exactly one writer at a time and partitions never contend with each other.
//! Everything that waits (for durability, for new data) waits on `watch` channels
//! outside the lock.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use storage::{
    AppendInfo, Durability, Log, LogReader, ProducerEntry, ProducerTag, ReadChunk, RetentionOutcome,
};
use tokio::sync::watch;

use crate::error::BrokerError;
use crate::metrics::PartitionCounters;
use crate::producers::kafka::{next_sequence, table_key};
use crate::producers::table::{ProducerTable, Verdict, MAX_PRODUCERS_PER_PARTITION};

/// Why an append was not confirmed durable. Cheap to clone, so one failed wait can
/// answer every request that waited on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotDurable {
    /// The wait passed its timeout; the data may still become durable.
    Timeout {
        /// How long was waited.
        timeout_ms: u64,
    },
    /// The log failed (a sync failed) or closed: the data may or may not survive a crash.
    Failed {
        /// The log's failure.
        reason: String,
    },
}

impl From<NotDurable> for BrokerError {
    fn from(error: NotDurable) -> BrokerError {
        match error {
            NotDurable::Timeout { timeout_ms } => BrokerError::Timeout {
                waiting_for: "the append to become durable",
                timeout_ms,
            },
            NotDurable::Failed { reason } => BrokerError::NotDurable { reason },
        }
    }
}

/// Where a produced batch is: stored now, or stored by an earlier attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Appended by this request.
    Stored(AppendInfo),
    /// A retry of a batch the producer table remembers: not stored again.
    Duplicate(ProducerEntry),
}

impl Placed {
    /// Offset of the batch's first record.
    pub fn base_offset(&self) -> u64 {
        match self {
            Placed::Stored(info) => info.base_offset,
            Placed::Duplicate(entry) => entry.base_offset,
        }
    }

    /// Offset after its last record: what must be durable before a `durable` answer.
    pub fn next_offset(&self) -> u64 {
        match self {
            Placed::Stored(info) => info.next_offset,
            Placed::Duplicate(entry) => entry.next_offset,
        }
    }
}

/// Why a sequenced batch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfOrder {
    /// Older than the oldest batch the table remembers for the producer.
    TooOld {
        /// The oldest sequence remembered.
        oldest: u64,
    },
    /// Skips ahead of the sequence expected.
    Gap {
        /// The sequence expected next.
        expected: u64,
    },
    /// A Kafka producer's epoch older than the one this partition last stored.
    StaleEpoch {
        /// The epoch last stored.
        current: u16,
    },
}

/// The records a batch announces; 1 for bytes too short to be one (the log refuses
/// those, so the count decides nothing then).
fn record_count<B: AsRef<[u8]>>(batch: &B) -> u64 {
    protocol::batch::BatchHeader::parse(batch.as_ref())
        .map_or(1, |header| u64::from(header.record_count))
}

/// A partition of a topic.
#[derive(Debug)]
pub struct Partition {
    /// Partition number within its topic.
    pub id: u32,
    log: Mutex<Option<Log>>,
    /// Idempotent producers' last batches. Locked only inside `log`'s lock, so a
    /// check and the append it allows are one step.
    producers: Mutex<ProducerTable>,
    /// `None` for a partition whose log refused to open (see [`Partition::refused`]).
    reader: Option<LogReader>,
    /// Why the log refused to open: every request to the partition gets this.
    refusal: Option<String>,
    end: watch::Sender<u64>,
    durability: Durability,
    /// Records and bytes in and out, for the stats and the metrics.
    traffic: PartitionCounters,
}

fn lock(log: &Mutex<Option<Log>>) -> MutexGuard<'_, Option<Log>> {
    // A panic inside append leaves the log as consistent as any crash would.
    log.lock().unwrap_or_else(|p| p.into_inner())
}

impl Partition {
    /// Wraps an opened log, rebuilding its producer table from the log's journal.
    pub fn new(id: u32, mut log: Log) -> Partition {
        let producers =
            ProducerTable::rebuild(MAX_PRODUCERS_PER_PARTITION, &log.take_recovered_producers());
        let reader = log.reader();
        let durability = log.config().durability;
        let (end, _) = watch::channel(reader.end_offset());
        Partition {
            id,
            log: Mutex::new(Some(log)),
            producers: Mutex::new(producers),
            reader: Some(reader),
            refusal: None,
            end,
            durability,
            traffic: PartitionCounters::default(),
        }
    }

    /// A partition whose log refused to open (damage below its durable watermark, a
    /// missing segment, an I/O error): the rest of the broker serves on, and every
    /// request to this partition is answered with `reason` until an operator repairs
    /// it and restarts. Its offsets read as 0.
    pub fn refused(id: u32, durability: Durability, reason: String) -> Partition {
        Partition {
            id,
            log: Mutex::new(None),
            producers: Mutex::new(ProducerTable::new(1)),
            reader: None,
            refusal: Some(reason),
            end: watch::channel(0).0,
            durability,
            traffic: PartitionCounters::default(),
        }
    }

    /// Why the partition's log refused to open, if it did.
    pub fn refusal(&self) -> Option<&str> {
        self.refusal.as_deref()
    }

    /// The error for a request to a partition without a log: refused, or closed.
    fn unavailable(&self) -> BrokerError {
        match &self.refusal {
            Some(reason) => BrokerError::PartitionUnavailable {
                partition: self.id,
                reason: reason.clone(),
            },
            None => BrokerError::ShuttingDown,
        }
    }

    fn reader(&self) -> Result<&LogReader, BrokerError> {
        self.reader.as_ref().ok_or_else(|| self.unavailable())
    }

    /// Appends a batch (already decoded and CRC-checked by the protocol layer; the log
    /// checks it again before storing). Wakes long-polling readers.
    pub fn append(&self, batch: &[u8]) -> Result<AppendInfo, BrokerError> {
        let info = {
            let mut guard = lock(&self.log);
            let log = guard.as_mut().ok_or_else(|| self.unavailable())?;
            log.append(batch)?
        };
        self.count_appended(
            info.next_offset - info.base_offset,
            batch.len() as u64,
            info.next_offset,
        );
        Ok(info)
    }

    /// Appends batches read back to back with one vectored write (see
    /// `Log::append_all`), pushing one result per batch, in order, to `results`. A
    /// batch the log refuses gets its error and the batches after it are still tried.
    /// Wakes long-polling readers once.
    pub fn append_all<B: AsRef<[u8]>>(
        &self,
        batches: &[B],
        results: &mut Vec<Result<AppendInfo, BrokerError>>,
    ) {
        let first = results.len();
        {
            let mut guard = lock(&self.log);
            let Some(log) = guard.as_mut() else {
                results.extend(batches.iter().map(|_| Err(self.unavailable())));
                return;
            };
            let mut rest = batches;
            while !rest.is_empty() {
                let before = results.len();
                let outcome = log.append_all(rest, |info| results.push(Ok(info)));
                let stored = results.len() - before;
                match outcome {
                    Ok(()) => break,
                    Err(error) => {
                        results.push(Err(error.into()));
                        rest = rest.get(stored + 1..).unwrap_or_default();
                    }
                }
            }
        }
        let (mut messages, mut bytes, mut end) = (0, 0, None);
        for (batch, result) in batches.iter().zip(&results[first..]) {
            if let Ok(info) = result {
                messages += info.next_offset - info.base_offset;
                bytes += batch.as_ref().len() as u64;
                end = Some(info.next_offset);
            }
        }
        if let Some(end) = end {
            self.count_appended(messages, bytes, end);
        }
    }

    /// Appends produce requests' batches like [`append_all`](Self::append_all), except
    /// that a batch with a producer tag is first checked against the producer table
    /// (in the same critical section): a retry of a remembered batch is not stored
    /// again but answered [`Placed::Duplicate`] with its original offsets, and a batch
    /// out of sequence is refused. `tags` holds one entry per batch.
    pub fn append_sequenced<B: AsRef<[u8]>>(
        &self,
        batches: &[B],
        tags: &[Option<ProducerTag>],
        results: &mut Vec<Result<Placed, BrokerError>>,
    ) {
        debug_assert_eq!(batches.len(), tags.len(), "one tag per batch");
        let first = results.len();
        let mut placed: Vec<Option<Result<Placed, BrokerError>>> =
            (0..batches.len()).map(|_| None).collect();
        {
            let mut guard = lock(&self.log);
            let Some(log) = guard.as_mut() else {
                results.extend(batches.iter().map(|_| Err(self.unavailable())));
                return;
            };
            let mut table = self.producers.lock().unwrap_or_else(|p| p.into_inner());
            let all: Vec<usize> = (0..batches.len()).collect();
            self.place(log, &mut table, batches, tags, &all, &mut placed);
            if log.producer_journal_bytes() > storage::producers::COMPACT_BYTES {
                if let Err(error) = log.compact_producers(&table.live_entries()) {
                    tracing::error!(partition = self.id, %error, "compacting the producer journal failed");
                }
            }
        }
        results.extend(placed.into_iter().map(|p| {
            p.unwrap_or_else(|| Err(BrokerError::Internal("a batch got no result".into())))
        }));
        let (mut messages, mut bytes, mut end) = (0, 0, None);
        for (batch, result) in batches.iter().zip(&results[first..]) {
            if let Ok(Placed::Stored(info)) = result {
                messages += info.next_offset - info.base_offset;
                bytes += batch.as_ref().len() as u64;
                end = Some(info.next_offset);
            }
        }
        if let Some(end) = end {
            self.count_appended(messages, bytes, end);
        }
    }

    /// Decides and appends the batches at `indices`, in order: runs of batches the
    /// table accepts go out in one write; a batch whose verdict depends on one not
    /// yet written (the same producer, out of step) waits for that write and is then
    /// checked again.
    fn place<B: AsRef<[u8]>>(
        &self,
        log: &mut Log,
        table: &mut ProducerTable,
        batches: &[B],
        tags: &[Option<ProducerTag>],
        indices: &[usize],
        placed: &mut [Option<Result<Placed, BrokerError>>],
    ) {
        // The batches of the write being gathered, and for each producer in it (by
        // table key) the tag its next batch must carry to follow on.
        let mut group: Vec<usize> = Vec::new();
        let mut pending: Vec<(u64, ProducerTag)> = Vec::new();
        let follows = |tag: ProducerTag, batch: &B| ProducerTag {
            producer_id: tag.producer_id,
            sequence: next_sequence(tag.producer_id, tag.sequence, record_count(batch)),
        };
        let mut at = 0;
        while at < indices.len() {
            let i = indices[at];
            if let Some(tag) = tags[i] {
                let key = table_key(tag.producer_id);
                let waiting = pending.iter().position(|(k, _)| *k == key);
                match waiting {
                    Some(w) if pending[w].1 == tag => {
                        pending[w].1 = follows(tag, &batches[i]);
                        group.push(i);
                        at += 1;
                        continue;
                    }
                    Some(_) => {
                        // Decided once the batches before it are in the table.
                        let retry = self.write(log, table, batches, tags, &group, placed);
                        group.clear();
                        pending.clear();
                        if !retry.is_empty() {
                            let rest: Vec<usize> = retry
                                .into_iter()
                                .chain(indices[at..].iter().copied())
                                .collect();
                            return self.place(log, table, batches, tags, &rest, placed);
                        }
                        continue;
                    }
                    None => {}
                }
                match table.check(tag) {
                    Verdict::Append => {
                        pending.push((key, follows(tag, &batches[i])));
                        group.push(i);
                    }
                    Verdict::Duplicate(entry) => placed[i] = Some(Ok(Placed::Duplicate(entry))),
                    Verdict::TooOld { oldest } => {
                        placed[i] = Some(Err(self.out_of_order(tag, OutOfOrder::TooOld { oldest })))
                    }
                    Verdict::Gap { expected } => {
                        placed[i] = Some(Err(self.out_of_order(tag, OutOfOrder::Gap { expected })))
                    }
                    Verdict::StaleEpoch { current } => {
                        placed[i] = Some(Err(
                            self.out_of_order(tag, OutOfOrder::StaleEpoch { current })
                        ))
                    }
                }
            } else {
                group.push(i);
            }
            at += 1;
        }
        let retry = self.write(log, table, batches, tags, &group, placed);
        if !retry.is_empty() {
            self.place(log, table, batches, tags, &retry, placed);
        }
    }

    /// Writes the batches at `group` with one vectored write and records the tagged
    /// ones. After a batch the log refused, the rest must be decided again (a later
    /// batch of the same producer now has a gap): they are returned.
    fn write<B: AsRef<[u8]>>(
        &self,
        log: &mut Log,
        table: &mut ProducerTable,
        batches: &[B],
        tags: &[Option<ProducerTag>],
        group: &[usize],
        placed: &mut [Option<Result<Placed, BrokerError>>],
    ) -> Vec<usize> {
        if group.is_empty() {
            return Vec::new();
        }
        let bytes: Vec<&[u8]> = group.iter().map(|&i| batches[i].as_ref()).collect();
        let group_tags: Vec<Option<ProducerTag>> = group.iter().map(|&i| tags[i]).collect();
        let mut stored = 0;
        let outcome = log.append_all_tagged(&bytes, &group_tags, |info| {
            let i = group[stored];
            if let Some(tag) = tags[i] {
                table.record(ProducerEntry {
                    tag,
                    base_offset: info.base_offset,
                    next_offset: info.next_offset,
                });
            }
            placed[i] = Some(Ok(Placed::Stored(info)));
            stored += 1;
        });
        match outcome {
            Ok(()) => Vec::new(),
            Err(error) => {
                if let Some(&failed) = group.get(stored) {
                    placed[failed] = Some(Err(error.into()));
                }
                group.get(stored + 1..).unwrap_or_default().to_vec()
            }
        }
    }

    fn out_of_order(&self, tag: ProducerTag, why: OutOfOrder) -> BrokerError {
        BrokerError::OutOfOrderSequence {
            partition: self.id,
            producer_id: tag.producer_id,
            sequence: tag.sequence,
            why,
        }
    }

    /// Counts what was appended and wakes readers waiting for the new `end`.
    fn count_appended(&self, messages: u64, bytes: u64, end: u64) {
        self.traffic.appended(messages, bytes);
        // Appends from two connections may report here in either order (this runs
        // after the log's lock is released): the end only ever moves forward.
        self.end.send_if_modified(|current| {
            let moved = end > *current;
            *current = (*current).max(end);
            moved
        });
    }

    /// Waits until `offset` is durable. Under `os` durability nothing is ever synced
    /// explicitly, so `durable` acknowledgements are given on append (documented).
    pub async fn wait_durable(&self, offset: u64, timeout: Duration) -> Result<(), NotDurable> {
        if self.durability == Durability::Os {
            return Ok(());
        }
        let Some(reader) = &self.reader else {
            return Err(NotDurable::Failed {
                reason: self.unavailable().to_string(),
            });
        };
        let mut watch = reader.durable_watch();
        let outcome = tokio::time::timeout(timeout, async {
            watch
                .wait_for(|mark| mark.offset >= offset || mark.failed)
                .await
                .map(|mark| *mark)
        })
        .await;
        match outcome {
            Err(_) => Err(NotDurable::Timeout {
                timeout_ms: timeout.as_millis() as u64,
            }),
            Ok(Err(_)) => Err(NotDurable::Failed {
                reason: "the log was closed".into(),
            }),
            Ok(Ok(mark)) if mark.offset >= offset => Ok(()),
            Ok(Ok(_)) => Err(NotDurable::Failed {
                reason: reader.failure().unwrap_or_else(|| "the log failed".into()),
            }),
        }
    }

    /// Reads whole batches from `offset`, zero-copy. Consumers only ever see data that
    /// is as durable as the topic promises: with `always` and `interval` durability,
    /// only batches below the durable watermark, so nothing a consumer saw can vanish
    /// in a crash.
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<ReadChunk, BrokerError> {
        let reader = self.reader()?;
        if self.durability == Durability::Os {
            Ok(reader.read(offset, max_bytes)?)
        } else {
            Ok(reader.read_durable(offset, max_bytes)?)
        }
    }

    /// Where a reader seeking to `timestamp_ms` starts: the first offset
    /// [`read`](Self::read) can return whose record timestamp is at or after it, or
    /// the visible end if every readable record is older (so a seek past the end waits
    /// for new records, like `latest`). Record timestamps are the producers' (the time
    /// index holds them; the broker never rewrites a batch), so with timestamps out of
    /// order some records after the answer may be older than `timestamp_ms`.
    pub fn offset_for_time(&self, timestamp_ms: i64) -> Result<u64, BrokerError> {
        let reader = self.reader()?;
        let end = self.visible_end();
        let found = reader.offset_for_time(timestamp_ms)?;
        let offset = found.map_or(end, |o| o.min(end));
        debug_assert!(offset >= reader.start_offset().min(end));
        Ok(offset)
    }

    /// End of what [`read`](Self::read) can return.
    pub fn visible_end(&self) -> u64 {
        let Some(reader) = &self.reader else { return 0 };
        if self.durability == Durability::Os {
            reader.end_offset()
        } else {
            reader.durable_offset()
        }
    }

    /// Waits until data at or after `offset` becomes readable, or `timeout` passes.
    pub async fn wait_for_data(&self, offset: u64, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.data_past(offset)).await;
    }

    /// Waits until data at or after `offset` becomes readable (or the log fails), with
    /// no timer of its own: for callers that wait on many partitions under one
    /// timeout. Never returns for a partition without a log, or once the log is gone.
    pub async fn data_past(&self, offset: u64) {
        let woke = if self.durability == Durability::Os {
            let mut end = self.end.subscribe();
            end.wait_for(|end| *end > offset).await.map(drop)
        } else {
            let Some(reader) = &self.reader else {
                return std::future::pending().await;
            };
            let mut durable = reader.durable_watch();
            durable
                .wait_for(|m| m.offset > offset || m.failed)
                .await
                .map(drop)
        };
        if woke.is_err() {
            // The sender went with the log: nothing will ever arrive; never spin.
            std::future::pending::<()>().await;
        }
    }

    /// Why the partition cannot serve as it should: its log refused to open, or it
    /// failed since (a write or sync failed, a full disk among the causes; the log then
    /// refuses appends until the broker restarts). `None` for a healthy partition.
    pub fn failure(&self) -> Option<String> {
        match &self.reader {
            Some(reader) => reader.failure(),
            None => Some(self.unavailable().to_string()),
        }
    }

    /// Offset below which everything is synced (the durable watermark); the end
    /// offset under `os` durability, which never syncs explicitly.
    pub fn durable_offset(&self) -> u64 {
        let Some(reader) = &self.reader else { return 0 };
        if self.durability == Durability::Os {
            reader.end_offset()
        } else {
            reader.durable_offset()
        }
    }

    /// First offset held.
    pub fn start_offset(&self) -> u64 {
        self.reader.as_ref().map_or(0, LogReader::start_offset)
    }

    /// Offset the next append gets.
    pub fn end_offset(&self) -> u64 {
        self.reader.as_ref().map_or(0, LogReader::end_offset)
    }

    /// Batch bytes held.
    pub fn size_bytes(&self) -> u64 {
        self.reader.as_ref().map_or(0, LogReader::size_bytes)
    }

    /// Records and bytes appended since the broker started.
    pub fn counters(&self) -> (u64, u64) {
        let traffic = self.traffic.read();
        (traffic.messages_in, traffic.bytes_in)
    }

    /// Records and bytes in and out since the broker started.
    pub fn traffic(&self) -> &PartitionCounters {
        &self.traffic
    }

    /// Changes the log's retention limits (a topic altered while it serves). A
    /// partition without a log has nothing to retain.
    pub fn set_retention(&self, retention_bytes: Option<u64>, retention_ms: Option<u64>) {
        if let Some(log) = lock(&self.log).as_mut() {
            log.set_retention(retention_bytes, retention_ms);
        }
    }

    /// Deletes segments beyond the log's retention limits (blocking I/O).
    pub fn enforce_retention(&self) -> Result<RetentionOutcome, BrokerError> {
        let mut guard = lock(&self.log);
        let log = guard.as_mut().ok_or_else(|| self.unavailable())?;
        Ok(log.enforce_retention()?)
    }

    /// Makes `offset` the first offset (blocking I/O). Everything appended so far is
    /// synced first, whatever the topic's durability: compaction appends a snapshot
    /// and then truncates what it replaces, and the new start is persisted at once, so
    /// without the sync a crash could keep the truncation and lose the snapshot.
    pub fn truncate_before(&self, offset: u64) -> Result<(), BrokerError> {
        let mut guard = lock(&self.log);
        let log = guard.as_mut().ok_or_else(|| self.unavailable())?;
        log.sync()?;
        log.truncate_before(offset)?;
        Ok(())
    }

    /// Syncs and closes the log cleanly (blocking I/O). Later appends fail with
    /// `ShuttingDown`.
    pub fn close(&self) -> Result<(), BrokerError> {
        let log = lock(&self.log).take();
        match log {
            Some(log) => Ok(log.close()?),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::batch::BatchBuilder;
    use std::sync::Arc;
    use storage::LogConfig;

    fn batch(value: &[u8]) -> bytes::Bytes {
        let mut builder = BatchBuilder::new();
        builder.push(1, None, Some(value), &[]).unwrap();
        builder.finish()
    }

    /// `data_past` returns once something at or after the offset is readable (at
    /// once if it already is), under `os` and `always` alike, and never for a
    /// partition without a log: a caller's one timeout bounds it.
    #[tokio::test(start_paused = true)]
    async fn data_past_wakes_on_readable_data_and_never_without_a_log() {
        for durability in [Durability::Os, Durability::Always] {
            let dir = tempfile::tempdir().unwrap();
            let config = LogConfig {
                durability,
                ..LogConfig::default()
            };
            let partition = Arc::new(Partition::new(0, Log::open(dir.path(), config).unwrap()));
            let waiting = tokio::spawn({
                let partition = partition.clone();
                async move { partition.data_past(0).await }
            });
            tokio::task::yield_now().await;
            assert!(
                !waiting.is_finished(),
                "{durability:?}: nothing to read yet"
            );
            partition.append(&batch(b"v")).unwrap();
            if durability == Durability::Always {
                // The round runs on a durability worker: wait for it in real time.
                let reader = partition.reader().unwrap();
                assert!(reader.wait_durable(1, Duration::from_secs(30)).unwrap());
            }
            waiting.await.unwrap();
            // Already readable: returns at once.
            partition.data_past(0).await;
        }
        let refused = Partition::refused(0, Durability::Always, "damaged".into());
        let waited = tokio::time::timeout(Duration::from_secs(60), refused.data_past(0)).await;
        assert!(waited.is_err(), "a partition without a log never has data");
    }

    #[test]
    fn truncation_first_makes_everything_appended_durable() {
        // An `os` log never syncs on its own: only the truncation can have done it.
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            durability: Durability::Os,
            ..LogConfig::default()
        };
        let partition = Partition::new(0, Log::open(dir.path(), config).unwrap());
        for value in [&b"old"[..], b"snapshot 1", b"snapshot 2"] {
            partition.append(&batch(value)).unwrap();
        }
        let reader = partition.reader().unwrap();
        assert_eq!(reader.durable_offset(), 0);
        partition.truncate_before(1).unwrap();
        assert_eq!(partition.start_offset(), 1);
        assert_eq!(reader.durable_offset(), 3);
    }
}

#[cfg(test)]
mod sequenced_tests {
    use super::*;
    use protocol::batch::BatchBuilder;
    use storage::LogConfig;

    fn batch() -> bytes::Bytes {
        let mut builder = BatchBuilder::new();
        builder.push(1, None, Some(b"v"), &[]).unwrap();
        builder.finish()
    }

    fn tag(producer_id: u64, sequence: u64) -> Option<ProducerTag> {
        Some(ProducerTag {
            producer_id,
            sequence,
        })
    }

    fn outcome(result: &Result<Placed, BrokerError>) -> String {
        match result {
            Ok(Placed::Stored(info)) => format!("stored {}", info.base_offset),
            Ok(Placed::Duplicate(entry)) => format!("duplicate {}", entry.base_offset),
            Err(error) => error.code().name().to_string(),
        }
    }

    #[test]
    fn one_run_mixes_appends_duplicates_and_refusals_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let partition = Partition::new(0, Log::open(dir.path(), LogConfig::default()).unwrap());
        let batches = vec![batch(); 7];
        let tags = [
            tag(1, 0),
            tag(1, 1),
            None,
            tag(2, 5),
            tag(1, 1),
            tag(1, 3),
            tag(1, 2),
        ];
        let mut results = Vec::new();
        partition.append_sequenced(&batches, &tags, &mut results);
        let got: Vec<String> = results.iter().map(outcome).collect();
        assert_eq!(
            got,
            [
                "stored 0",
                "stored 1",
                "stored 2",
                "stored 3",
                "duplicate 1",
                "out_of_order_sequence",
                "stored 4"
            ]
        );
        assert_eq!(partition.end_offset(), 5);
    }

    fn records(n: usize) -> bytes::Bytes {
        let mut builder = BatchBuilder::new();
        for _ in 0..n {
            builder.push(1, None, Some(b"v"), &[]).unwrap();
        }
        builder.finish()
    }

    #[test]
    fn kafka_batches_follow_on_by_record_count_within_one_run() {
        use crate::producers::kafka::KafkaProducer;
        let dir = tempfile::tempdir().unwrap();
        let partition = Partition::new(0, Log::open(dir.path(), LogConfig::default()).unwrap());
        let id = |epoch| {
            KafkaProducer {
                producer_id: 9,
                epoch,
            }
            .native_id()
        };
        let batches = [records(2), records(3), records(2), records(1), records(1)];
        let tags = [
            tag(id(0), 0),
            tag(id(0), 2),
            tag(id(0), 0),
            tag(id(0), 6),
            tag(id(1), 0),
        ];
        let mut results = Vec::new();
        partition.append_sequenced(&batches, &tags, &mut results);
        let got: Vec<String> = results.iter().map(outcome).collect();
        assert_eq!(
            got,
            [
                "stored 0",
                "stored 2",
                "duplicate 0",
                "out_of_order_sequence",
                "stored 5"
            ]
        );
        let mut results = Vec::new();
        partition.append_sequenced(&[records(1)], &[tag(id(0), 5)], &mut results);
        assert!(matches!(
            results[0],
            Err(BrokerError::OutOfOrderSequence {
                why: OutOfOrder::StaleEpoch { current: 1 },
                ..
            })
        ));
    }

    #[test]
    fn duplicates_are_caught_after_a_crash_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            durability: Durability::Always,
            ..LogConfig::default()
        };
        let partition = Partition::new(0, Log::open(dir.path(), config.clone()).unwrap());
        let mut results = Vec::new();
        partition.append_sequenced(&[batch(), batch()], &[tag(7, 0), tag(7, 1)], &mut results);
        // No close: the log is dropped as a crash would leave it.
        drop(partition);
        let partition = Partition::new(0, Log::open(dir.path(), config).unwrap());
        let mut results = Vec::new();
        partition.append_sequenced(&[batch(), batch()], &[tag(7, 1), tag(7, 2)], &mut results);
        let got: Vec<String> = results.iter().map(outcome).collect();
        assert_eq!(got, ["duplicate 1", "stored 2"]);
    }
}
