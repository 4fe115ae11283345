//! [`InternalLog`]: one internal topic's records, typed.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use protocol::batch::{split_batches, BatchBuilder, BatchView};
use protocol::internal::InternalRecord;
use storage::AppendInfo;

use super::{compaction_due, DURABLE_TIMEOUT, MAX_BATCH_BYTES};
use crate::clock::Clock;
use crate::error::BrokerError;
use crate::partition::Partition;
use crate::topics::{TopicConfig, Topics};

/// Bytes read at a time while replaying.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// The log of one internal topic, holding records of type `R`.
///
/// Appends take the caller's records, in order, as one or more batches written with
/// one vectored write; callers that keep a state hold their own lock around the
/// append and the change, so the log's order is the order of the changes.
pub struct InternalLog<R> {
    partition: Arc<Partition>,
    clock: Arc<dyn Clock>,
    /// Scratch space for encoding; the lock also keeps one append's batches together.
    scratch: Mutex<Scratch>,
    _records: PhantomData<fn() -> R>,
}

#[derive(Default)]
struct Scratch {
    key: BytesMut,
    value: BytesMut,
    batches: Vec<bytes::Bytes>,
    results: Vec<Result<AppendInfo, BrokerError>>,
}

impl<R> std::fmt::Debug for InternalLog<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalLog")
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

impl<R: InternalRecord> InternalLog<R> {
    /// Opens the topic `R::TOPIC` (created with `config` if missing) and calls `apply`
    /// with every record from its start, in order, and the wall-clock time it was
    /// written (blocking I/O). A record that does not decode is logged and skipped: its
    /// batch passed its CRC, so it was written so, and the records after it still count.
    pub fn open(
        topics: &Topics,
        config: TopicConfig,
        clock: Arc<dyn Clock>,
        mut apply: impl FnMut(R, i64),
    ) -> Result<InternalLog<R>, BrokerError> {
        let partition = topics.internal_partition(R::TOPIC, config)?;
        replay(
            &partition,
            |offset, written_ms, key, value| match R::decode(key, value) {
                Ok(record) => apply(record, written_ms),
                Err(error) => {
                    tracing::warn!(topic = R::TOPIC, offset, %error, "skipping unreadable record")
                }
            },
        )?;
        Ok(InternalLog {
            partition,
            clock,
            scratch: Mutex::new(Scratch::default()),
            _records: PhantomData,
        })
    }

    fn scratch(&self) -> MutexGuard<'_, Scratch> {
        self.scratch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `records`; returns the offset to wait on with
    /// [`wait_durable`](Self::wait_durable). Nothing to append returns the end.
    pub fn append(&self, records: &[R]) -> Result<u64, BrokerError> {
        self.append_with_headers(records, &[])
    }

    /// [`append`](Self::append), every record carrying `headers`.
    pub fn append_with_headers(
        &self,
        records: &[R],
        headers: &[(&str, &[u8])],
    ) -> Result<u64, BrokerError> {
        let mut scratch = self.scratch();
        if records.is_empty() {
            return Ok(self.partition.end_offset());
        }
        let Scratch {
            key,
            value,
            batches,
            results,
        } = &mut *scratch;
        let timestamp_ms = self.clock.wall_ms();
        let mut builder = BatchBuilder::new();
        for record in records {
            key.clear();
            value.clear();
            let has_key = record.encode_key(key);
            let has_value = record
                .encode_value(value)
                .map_err(|e| BrokerError::InvalidRequest(format!("{} record: {e}", R::TOPIC)))?;
            let (key, value) = (has_key.then_some(&key[..]), has_value.then_some(&value[..]));
            if builder.len_bytes() >= MAX_BATCH_BYTES {
                batches.push(std::mem::take(&mut builder).finish());
            }
            builder
                .push(timestamp_ms, key, value, headers)
                .map_err(|e| BrokerError::InvalidRequest(format!("{} record: {e}", R::TOPIC)))?;
        }
        batches.push(builder.finish());
        results.clear();
        self.partition.append_all(batches, results);
        batches.clear();
        debug_assert!(
            !results.is_empty(),
            "one result per batch, at least the first"
        );
        let mut end = self.partition.end_offset();
        for result in results.drain(..) {
            end = result?.next_offset;
        }
        Ok(end)
    }

    /// Waits until everything below `offset` is durable, for at most
    /// [`DURABLE_TIMEOUT`].
    pub async fn wait_durable(&self, offset: u64) -> Result<(), BrokerError> {
        Ok(self.partition.wait_durable(offset, DURABLE_TIMEOUT).await?)
    }

    /// Records the log holds.
    pub fn records(&self) -> u64 {
        self.partition.end_offset() - self.partition.start_offset()
    }

    /// Offset the next record gets.
    pub fn end_offset(&self) -> u64 {
        self.partition.end_offset()
    }

    /// The partition underneath (tests and diagnostics read it directly).
    pub fn partition(&self) -> &Arc<Partition> {
        &self.partition
    }

    /// Compacts the log if [`compaction_due`] says so for a live state of
    /// `snapshot_records` records: `snapshot` appends the live state (through this
    /// log), then everything before it is truncated, synced first (blocking I/O).
    /// Returns whether it compacted. The caller holds its state's lock throughout, so
    /// no change slips in between; replaying old records followed by the snapshot
    /// gives the same state as the snapshot alone, so a crash between the two steps
    /// is harmless.
    pub fn compact(
        &self,
        snapshot_records: u64,
        snapshot: impl FnOnce() -> Result<(), BrokerError>,
    ) -> Result<bool, BrokerError> {
        if !compaction_due(self.records(), snapshot_records) {
            return Ok(false);
        }
        self.compact_now(snapshot)?;
        Ok(true)
    }

    /// Compacts whatever the policy says (tests, and compactions forced by size).
    pub fn compact_now(
        &self,
        snapshot: impl FnOnce() -> Result<(), BrokerError>,
    ) -> Result<(), BrokerError> {
        let first = self.partition.end_offset();
        snapshot()?;
        let start = self.partition.start_offset();
        debug_assert!(first >= start, "compaction never moves the start back");
        self.partition.truncate_before(first)?;
        tracing::debug!(topic = R::TOPIC, from = start, to = first, "compacted");
        Ok(())
    }
}

/// Calls `apply(offset, timestamp, key, value)` for every record from the log start to
/// the end, in order (zero-copy slices of the log). A batch that does not read back is an
/// error: the log's CRC checks make that damage, not a torn write.
fn replay(
    partition: &Partition,
    mut apply: impl FnMut(u64, i64, Option<bytes::Bytes>, Option<bytes::Bytes>),
) -> Result<(), BrokerError> {
    let start = partition.start_offset();
    let mut offset = start;
    while offset < partition.end_offset() {
        let chunk = partition.read(offset, REPLAY_READ_BYTES)?;
        if chunk.is_empty() {
            break;
        }
        for batch in split_batches(chunk.bytes.clone()) {
            let damaged = |e: &dyn std::fmt::Display| {
                BrokerError::Internal(format!("replaying at offset {offset}: {e}"))
            };
            let batch = batch.map_err(|e| damaged(&e))?;
            let view = BatchView::new(&batch).map_err(|e| damaged(&e))?;
            for record in view.records() {
                let record = record.map_err(|e| damaged(&e))?;
                if record.offset < start {
                    continue;
                }
                let key = record.key.map(|k| batch.slice_ref(k));
                let value = record.value.map(|v| batch.slice_ref(v));
                apply(record.offset, record.timestamp_ms, key, value);
            }
        }
        debug_assert!(chunk.next_offset > offset, "replay moves forward");
        offset = chunk.next_offset;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use protocol::internal::offsets::{OffsetRecord, OffsetsRecord};

    fn record(partition: u32, offset: u64) -> OffsetsRecord {
        OffsetsRecord::Offset(OffsetRecord {
            group: "g".repeat(100),
            topic: "t".into(),
            partition,
            offset: Some(offset),
            metadata: String::new(),
        })
    }

    fn open(topics: &Topics, seen: &mut Vec<OffsetsRecord>) -> InternalLog<OffsetsRecord> {
        let clock = Arc::new(ManualClock::new(5));
        InternalLog::open(topics, TopicConfig::internal_default(), clock, |r, _| {
            seen.push(r)
        })
        .unwrap()
    }

    #[tokio::test]
    async fn records_append_in_bounded_batches_and_replay_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Topics::open(dir.path()).unwrap();
        let log = open(&topics, &mut Vec::new());
        // Each record is about 120 bytes: 20,000 of them need several batches.
        let records: Vec<_> = (0..20_000).map(|i| record(i, u64::from(i))).collect();
        let end = log.append(&records).unwrap();
        assert_eq!(end, 20_000);
        log.wait_durable(end).await.unwrap();
        let chunk = log.partition().read(0, 64 << 20).unwrap();
        let batches: Vec<_> = split_batches(chunk.bytes).map(Result::unwrap).collect();
        assert!(batches.len() > 1, "split into batches");
        assert!(batches.iter().all(|b| b.len() <= MAX_BATCH_BYTES + 1024));
        assert_eq!(log.append(&[]).unwrap(), end, "nothing to append");
        topics.close_all();
        drop(log);
        let topics = Topics::open(dir.path()).unwrap();
        let mut seen = Vec::new();
        open(&topics, &mut seen);
        assert_eq!(seen, records);
    }

    #[test]
    fn compaction_replaces_the_history_with_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Topics::open(dir.path()).unwrap();
        let log = open(&topics, &mut Vec::new());
        for i in 0..super::super::COMPACT_AFTER_RECORDS {
            log.append(&[record(0, i)]).unwrap();
        }
        let live = [record(0, 9_999)];
        assert!(
            !log.compact(20_000, || unreachable!()).unwrap(),
            "not yet twice"
        );
        assert!(log.compact(1, || log.append(&live).map(|_| ())).unwrap());
        assert_eq!(log.records(), 1);
        topics.close_all();
        drop(log);
        let topics = Topics::open(dir.path()).unwrap();
        let mut seen = Vec::new();
        open(&topics, &mut seen);
        assert_eq!(seen, live);
    }
}
