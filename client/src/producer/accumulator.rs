//! The accumulator: which partition a record goes to, and which batch it joins.
//!
//! Pure logic: no I/O, no task, no clock of its own (the caller passes `now`), so each
//! rule is a unit test below:
//! - the partition is the record's own, else the broker's hash of its key
//!   (`partition_for_key`), else a *sticky* partition that moves on each time its
//!   batch closes, so keyless records still make full batches;
//! - each partition has at most one open batch, closed when the next record would
//!   take it past `batch_max_bytes`, when it reaches that size, or `linger` after it
//!   opened; a record too large for any batch fails alone;
//! - batch ids increase in opening order, which is how the sender knows that a flush
//!   is done (no batch opened before it is still unanswered).
//!
//! Closed batches are appended to the caller's `ready` queue as [`ReadyBatch`]es, in
//! the order they closed, which is the order the sender sends them.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use protocol::batch::{BatchBuilder, BATCH_HEADER_BYTES, MAX_BATCH_BYTES};
use protocol::ops::produce::{partition_for_key, ProducerSequence};
use tokio::time::Instant;

use super::ack::Waiter;
use super::Record;
use crate::error::ClientError;

/// A batch ready to send.
#[derive(Debug)]
pub(super) struct ReadyBatch {
    pub(super) id: u64,
    pub(super) partition: u32,
    pub(super) bytes: Bytes,
    pub(super) waiters: Vec<Waiter>,
    /// An idempotent producer's tag, given when the batch is first sent.
    pub(super) producer: Option<ProducerSequence>,
    /// When it was first sent: retries stop `delivery_timeout` later.
    pub(super) first_sent: Option<Instant>,
}

#[derive(Debug)]
struct OpenBatch {
    id: u64,
    builder: BatchBuilder,
    waiters: Vec<Waiter>,
}

/// Pure batching logic: open batches per partition, size and linger limits.
#[derive(Debug)]
pub(super) struct Accumulator {
    batch_max_bytes: usize,
    linger: Duration,
    partitions: u32,
    /// Where keyless records without a partition go; moves on when its batch closes.
    sticky: u32,
    open: HashMap<u32, OpenBatch>,
    /// `(deadline, partition, batch id)` in opening order, which is deadline order
    /// because the linger is the same for every batch.
    lingering: VecDeque<(Instant, u32, u64)>,
    next_id: u64,
}

impl Accumulator {
    pub(super) fn new(batch_max_bytes: usize, linger: Duration, partitions: u32) -> Accumulator {
        Accumulator {
            batch_max_bytes: batch_max_bytes.clamp(BATCH_HEADER_BYTES + 1, MAX_BATCH_BYTES),
            linger,
            partitions: partitions.max(1),
            sticky: 0,
            open: HashMap::new(),
            lingering: VecDeque::new(),
            next_id: 0,
        }
    }

    fn partition_of(&self, record: &Record) -> u32 {
        match (record.partition, &record.key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, self.partitions),
            (None, None) => self.sticky,
        }
    }

    /// The id the next batch will get; every batch opened so far has a smaller one.
    pub(super) fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Adds a record; batches that fill up are appended to `ready`.
    pub(super) fn push(
        &mut self,
        record: Record,
        waiter: Waiter,
        now: Instant,
        ready: &mut VecDeque<ReadyBatch>,
    ) {
        let partition = self.partition_of(&record);
        let headers: Vec<(&str, &[u8])> = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_ref()))
            .collect();
        let (key, value) = (record.key.as_deref(), record.value.as_deref());
        let size = BatchBuilder::record_size(key, value, &headers);
        if BATCH_HEADER_BYTES + size > MAX_BATCH_BYTES {
            let _ = waiter.send(Err(ClientError::InvalidArgument(format!(
                "a record of {size} bytes does not fit in a batch (at most {MAX_BATCH_BYTES} bytes)"
            ))));
            return;
        }
        let timestamp_ms = record.timestamp_ms.unwrap_or_else(now_ms);
        if let Some(open) = self.open.get(&partition) {
            if open.builder.len_bytes() + size > self.batch_max_bytes {
                self.close(partition, ready);
            }
        }
        for attempt in 0..2 {
            let batch = self.open_batch(partition, size, now);
            match batch.builder.push(timestamp_ms, key, value, &headers) {
                Ok(()) => {
                    batch.waiters.push(waiter);
                    if batch.builder.len_bytes() >= self.batch_max_bytes {
                        self.close(partition, ready);
                    }
                    return;
                }
                // A timestamp too far from the batch's first: start a new batch once.
                Err(_) if attempt == 0 && !batch.builder.is_empty() => self.close(partition, ready),
                Err(e) => {
                    let _ = waiter.send(Err(ClientError::InvalidArgument(format!(
                        "cannot batch the record: {e}"
                    ))));
                    return;
                }
            }
        }
    }

    fn open_batch(
        &mut self,
        partition: u32,
        first_record_bytes: usize,
        now: Instant,
    ) -> &mut OpenBatch {
        let id = self.next_id;
        let capacity =
            (BATCH_HEADER_BYTES + first_record_bytes).max(self.batch_max_bytes.min(64 * 1024));
        let lingering = &mut self.lingering;
        let linger = self.linger;
        let next_id = &mut self.next_id;
        self.open.entry(partition).or_insert_with(|| {
            *next_id += 1;
            lingering.push_back((now + linger, partition, id));
            OpenBatch {
                id,
                builder: BatchBuilder::with_capacity(capacity),
                waiters: Vec::new(),
            }
        })
    }

    fn close(&mut self, partition: u32, ready: &mut VecDeque<ReadyBatch>) {
        let Some(batch) = self.open.remove(&partition) else {
            return;
        };
        if partition == self.sticky {
            self.sticky = (self.sticky + 1) % self.partitions;
        }
        if batch.waiters.is_empty() {
            return;
        }
        debug_assert_eq!(batch.builder.record_count() as usize, batch.waiters.len());
        ready.push_back(ReadyBatch {
            id: batch.id,
            partition,
            bytes: batch.builder.finish(),
            waiters: batch.waiters,
            producer: None,
            first_sent: None,
        });
    }

    /// When the oldest open batch must be sent.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.lingering.front().map(|(deadline, _, _)| *deadline)
    }

    /// Closes batches whose linger time has passed.
    pub(super) fn expire(&mut self, now: Instant, ready: &mut VecDeque<ReadyBatch>) {
        while let Some(&(deadline, partition, id)) = self.lingering.front() {
            if deadline > now {
                break;
            }
            self.lingering.pop_front();
            // The batch may have been closed (full) and replaced since.
            if self.open.get(&partition).is_some_and(|b| b.id == id) {
                self.close(partition, ready);
            }
        }
    }

    /// Closes every open batch.
    pub(super) fn drain(&mut self, ready: &mut VecDeque<ReadyBatch>) {
        let mut partitions: Vec<u32> = self.open.keys().copied().collect();
        partitions.sort_unstable();
        for p in partitions {
            self.close(p, ready);
        }
        self.lingering.clear();
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::ack::waiter;
    use protocol::batch::BatchView;

    fn push(acc: &mut Accumulator, record: Record, ready: &mut VecDeque<ReadyBatch>) {
        acc.push(record, waiter().0, Instant::now(), ready);
    }

    #[test]
    fn keyed_records_go_to_the_brokers_partition() {
        let mut acc = Accumulator::new(1 << 20, Duration::from_secs(1), 4);
        let mut ready = VecDeque::new();
        for i in 0..100 {
            push(
                &mut acc,
                Record::new("v").with_key(format!("key-{i}")),
                &mut ready,
            );
        }
        acc.drain(&mut ready);
        let mut total = 0;
        for batch in &ready {
            let view = BatchView::new(&batch.bytes).unwrap();
            view.validate().unwrap();
            for record in view.records() {
                let key = record.unwrap().key.unwrap();
                assert_eq!(partition_for_key(key, 4), batch.partition);
                total += 1;
            }
        }
        assert_eq!(total, 100);
        assert!(ready.len() <= 4);
    }

    #[test]
    fn a_full_batch_is_sent_and_a_new_one_opened() {
        let mut acc = Accumulator::new(1000, Duration::from_secs(1), 1);
        let mut ready = VecDeque::new();
        let value = vec![7u8; 300];
        for _ in 0..5 {
            push(
                &mut acc,
                Record::new(value.clone()).with_partition(0),
                &mut ready,
            );
        }
        // 40 header + 3 * 318 = 994 fits; a 4th record would pass 1000.
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].waiters.len(), 3);
        assert!(ready[0].bytes.len() <= 1000);
        acc.drain(&mut ready);
        assert_eq!(ready.len(), 2);
        assert_eq!(ready[1].waiters.len(), 2);
        assert!(ready[0].id < ready[1].id);
    }

    #[test]
    fn an_oversized_record_goes_alone() {
        let mut acc = Accumulator::new(100, Duration::from_secs(1), 1);
        let mut ready = VecDeque::new();
        push(&mut acc, Record::new(vec![1u8; 500]), &mut ready);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].waiters.len(), 1);
    }

    #[test]
    fn linger_closes_batches_in_opening_order() {
        let mut acc = Accumulator::new(1 << 20, Duration::from_millis(10), 3);
        let mut ready = VecDeque::new();
        let t0 = Instant::now();
        acc.push(
            Record::new("a").with_partition(2),
            waiter().0,
            t0,
            &mut ready,
        );
        acc.push(
            Record::new("b").with_partition(0),
            waiter().0,
            t0 + Duration::from_millis(5),
            &mut ready,
        );
        assert_eq!(acc.next_deadline(), Some(t0 + Duration::from_millis(10)));
        acc.expire(t0 + Duration::from_millis(9), &mut ready);
        assert!(ready.is_empty());
        acc.expire(t0 + Duration::from_millis(10), &mut ready);
        assert_eq!(ready.iter().map(|b| b.partition).collect::<Vec<_>>(), [2]);
        acc.expire(t0 + Duration::from_millis(15), &mut ready);
        assert_eq!(
            ready.iter().map(|b| b.partition).collect::<Vec<_>>(),
            [2, 0]
        );
        assert_eq!(acc.next_deadline(), None);
    }

    #[test]
    fn keyless_records_stick_to_a_partition_until_its_batch_closes() {
        let mut acc = Accumulator::new(1 << 20, Duration::from_millis(10), 3);
        let mut ready = VecDeque::new();
        for _ in 0..5 {
            push(&mut acc, Record::new("x"), &mut ready);
        }
        acc.drain(&mut ready);
        for _ in 0..5 {
            push(&mut acc, Record::new("y"), &mut ready);
        }
        acc.drain(&mut ready);
        let parts: Vec<(u32, usize)> = ready
            .iter()
            .map(|b| (b.partition, b.waiters.len()))
            .collect();
        assert_eq!(parts, [(0, 5), (1, 5)]);
    }

    #[test]
    fn a_stale_linger_entry_does_not_close_the_next_batch() {
        let mut acc = Accumulator::new(200, Duration::from_millis(10), 1);
        let mut ready = VecDeque::new();
        let t0 = Instant::now();
        acc.push(Record::new(vec![0u8; 150]), waiter().0, t0, &mut ready); // fills: sent
        assert_eq!(ready.len(), 1);
        acc.push(
            Record::new("small"),
            waiter().0,
            t0 + Duration::from_millis(8),
            &mut ready,
        );
        acc.expire(t0 + Duration::from_millis(10), &mut ready);
        assert_eq!(
            ready.len(),
            1,
            "the second batch lingers until its own deadline"
        );
        acc.expire(t0 + Duration::from_millis(18), &mut ready);
        assert_eq!(ready.len(), 2);
    }
}
