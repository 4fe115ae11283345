//! One partition's producer table: the deduplication state machine, pure.
//!
//! For each idempotent producer that wrote to the partition it remembers the last
//! [`WINDOW_BATCHES`] batches it stored (sequence and offsets). A produce carrying
//! `(producer_id, sequence)` is then:
//!
//! - [`Verdict::Append`] if the producer is unknown (a new one, or one the table
//!   forgot), or the sequence is the one after its last: store it;
//! - [`Verdict::Duplicate`] if the sequence is one of the remembered batches: a retry
//!   of something already stored, answered with the original offsets, not stored again;
//! - [`Verdict::TooOld`] if it is older than the oldest remembered batch: it may or may
//!   not be stored, the table cannot tell, so it is refused;
//! - [`Verdict::Gap`] if it skips ahead: a batch in between is missing (the producer
//!   sent out of order, or the broker lost it), so it is refused.
//!
//! At most `max_producers` producers are remembered; a new one evicts the least
//! recently *appended to*, ordered by the offset of its last batch, so the table's
//! state depends only on the sequence of appends and replaying the journal at open
//! rebuilds exactly the table that was lost. No clock is involved.
//!
//! A Kafka producer's batches ([`super::kafka`]) follow Kafka's rules instead: its
//! state is kept per id across epochs, a lower epoch than the last one stored is
//! [`Verdict::StaleEpoch`], a higher one starts over at sequence 0, sequences count
//! records and wrap, and a retry is recognised by its base sequence among the
//! remembered batches (anything else out of step is a [`Verdict::Gap`], Kafka's
//! OUT_OF_ORDER_SEQUENCE_NUMBER).

use std::collections::{BTreeSet, HashMap, VecDeque};

use storage::{ProducerEntry, ProducerTag};

use super::kafka::{next_sequence, table_key, KafkaProducer};

/// Batches remembered per producer and partition: retries of any of the last this
/// many batches are recognised. A producer keeps at most this many batches in flight
/// to a partition (Kafka's `max.in.flight.requests.per.connection` limit of 5 for its
/// idempotent producer, for the same reason).
pub const WINDOW_BATCHES: usize = 5;

/// Producers remembered per partition (default): about 200 bytes each, so at most
/// about 200 KiB per partition.
pub const MAX_PRODUCERS_PER_PARTITION: usize = 1024;

/// What to do with a sequenced batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Store it, then [`ProducerTable::record`] where it landed.
    Append,
    /// Already stored here: answer with these offsets.
    Duplicate(ProducerEntry),
    /// Older than the oldest batch remembered for the producer.
    TooOld {
        /// The oldest sequence still remembered.
        oldest: u64,
    },
    /// Skips ahead of the sequence expected next.
    Gap {
        /// The sequence expected next.
        expected: u64,
    },
    /// A Kafka producer's epoch below the last one this partition stored for its id:
    /// an older instance, fenced.
    StaleEpoch {
        /// The epoch last stored.
        current: u16,
    },
}

#[derive(Debug, Clone)]
struct Producer {
    /// The last batches stored, oldest first, consecutive sequences; never empty.
    batches: VecDeque<ProducerEntry>,
}

impl Producer {
    fn last(&self) -> Option<&ProducerEntry> {
        self.batches.back()
    }
}

/// The producer table of one partition (see the module documentation).
#[derive(Debug, Clone)]
pub struct ProducerTable {
    max_producers: usize,
    /// By [`table_key`]: the producer id, without a Kafka producer's epoch.
    producers: HashMap<u64, Producer>,
    /// `(next_offset of the producer's last batch, its key)`: eviction order.
    recency: BTreeSet<(u64, u64)>,
}

impl Default for ProducerTable {
    fn default() -> ProducerTable {
        ProducerTable::new(MAX_PRODUCERS_PER_PARTITION)
    }
}

impl ProducerTable {
    /// An empty table remembering at most `max_producers` producers (at least one).
    pub fn new(max_producers: usize) -> ProducerTable {
        ProducerTable {
            max_producers: max_producers.max(1),
            producers: HashMap::new(),
            recency: BTreeSet::new(),
        }
    }

    /// A table rebuilt from the producer journal's entries, in offset order.
    pub fn rebuild(max_producers: usize, entries: &[ProducerEntry]) -> ProducerTable {
        let mut table = ProducerTable::new(max_producers);
        for entry in entries {
            // The journal holds what the live table accepted, in order, so replaying
            // it gives the same verdicts. Should a damaged history disagree, the
            // newest entry wins: the producer starts over from it.
            if table.check(entry.tag) != Verdict::Append {
                table.forget(table_key(entry.tag.producer_id));
            }
            table.record(*entry);
        }
        table
    }

    /// How many producers are remembered.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// No producer is remembered.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// What to do with a batch tagged `tag`.
    pub fn check(&self, tag: ProducerTag) -> Verdict {
        let Some(producer) = self.producers.get(&table_key(tag.producer_id)) else {
            return Verdict::Append;
        };
        let (Some(first), Some(last)) = (producer.batches.front(), producer.last()) else {
            return Verdict::Append;
        };
        if let Some(offered) = KafkaProducer::from_native(tag.producer_id) {
            return check_kafka(producer, offered, tag, last);
        }
        let expected = last.tag.sequence.saturating_add(1);
        if tag.sequence == expected {
            Verdict::Append
        } else if tag.sequence > expected {
            Verdict::Gap { expected }
        } else if tag.sequence < first.tag.sequence {
            Verdict::TooOld {
                oldest: first.tag.sequence,
            }
        } else {
            // Remembered sequences are consecutive, so this is an index.
            let index = (tag.sequence - first.tag.sequence) as usize;
            match producer.batches.get(index) {
                Some(entry) => {
                    debug_assert_eq!(entry.tag, tag, "remembered sequences are consecutive");
                    Verdict::Duplicate(*entry)
                }
                None => Verdict::Gap { expected },
            }
        }
    }

    /// Records a batch stored after [`check`](Self::check) said [`Verdict::Append`].
    pub fn record(&mut self, entry: ProducerEntry) {
        debug_assert_eq!(
            self.check(entry.tag),
            Verdict::Append,
            "only appends are recorded"
        );
        let id = table_key(entry.tag.producer_id);
        let producer = self.producers.entry(id).or_insert_with(|| Producer {
            batches: VecDeque::with_capacity(WINDOW_BATCHES),
        });
        if let Some(last) = producer.batches.back() {
            debug_assert!(
                entry.base_offset >= last.next_offset,
                "a producer's batches are stored in offset order"
            );
            self.recency.remove(&(last.next_offset, id));
            if last.tag.producer_id != entry.tag.producer_id {
                // A Kafka producer's new epoch: its sequences start over.
                producer.batches.clear();
            }
        }
        producer.batches.push_back(entry);
        if producer.batches.len() > WINDOW_BATCHES {
            producer.batches.pop_front();
        }
        self.recency.insert((entry.next_offset, id));
        while self.producers.len() > self.max_producers {
            let Some((_, oldest)) = self.recency.pop_first() else {
                break;
            };
            self.producers.remove(&oldest);
        }
        debug_assert_eq!(self.recency.len(), self.producers.len());
        debug_assert!(self.producers.len() <= self.max_producers);
    }

    fn forget(&mut self, key: u64) {
        if let Some(producer) = self.producers.remove(&key) {
            if let Some(last) = producer.last() {
                self.recency.remove(&(last.next_offset, key));
            }
        }
    }

    /// Every remembered batch, in offset order: what a compacted journal must hold
    /// for [`rebuild`](Self::rebuild) to give this table back.
    pub fn live_entries(&self) -> Vec<ProducerEntry> {
        let mut entries: Vec<ProducerEntry> = self
            .producers
            .values()
            .flat_map(|p| p.batches.iter().copied())
            .collect();
        entries.sort_by_key(|e| e.base_offset);
        entries
    }
}

/// Kafka's rules (see the module documentation) for a batch of `offered`, whose
/// id's last stored batch is `last`.
fn check_kafka(
    producer: &Producer,
    offered: KafkaProducer,
    tag: ProducerTag,
    last: &ProducerEntry,
) -> Verdict {
    // Every batch under a Kafka key is a Kafka producer's.
    let current = KafkaProducer::from_native(last.tag.producer_id).map_or(0, |p| p.epoch);
    if offered.epoch < current {
        return Verdict::StaleEpoch { current };
    }
    if offered.epoch > current {
        return match tag.sequence {
            0 => Verdict::Append,
            _ => Verdict::Gap { expected: 0 },
        };
    }
    if let Some(entry) = producer.batches.iter().find(|e| e.tag == tag) {
        return Verdict::Duplicate(*entry);
    }
    let records = last.next_offset - last.base_offset;
    let expected = next_sequence(last.tag.producer_id, last.tag.sequence, records);
    if tag.sequence == expected {
        Verdict::Append
    } else {
        Verdict::Gap { expected }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tag(producer_id: u64, sequence: u64) -> ProducerTag {
        ProducerTag {
            producer_id,
            sequence,
        }
    }

    /// Offers a batch of one record at `end`, storing it if the table says so.
    fn offer(table: &mut ProducerTable, end: &mut u64, t: ProducerTag) -> Verdict {
        let verdict = table.check(t);
        if verdict == Verdict::Append {
            table.record(ProducerEntry {
                tag: t,
                base_offset: *end,
                next_offset: *end + 1,
            });
            *end += 1;
        }
        verdict
    }

    #[test]
    fn retries_within_the_window_are_duplicates_with_their_offsets() {
        let mut table = ProducerTable::default();
        let mut end = 0;
        for s in 0..7 {
            assert_eq!(offer(&mut table, &mut end, tag(1, s)), Verdict::Append);
        }
        match table.check(tag(1, 4)) {
            Verdict::Duplicate(e) => assert_eq!((e.base_offset, e.next_offset), (4, 5)),
            other => panic!("{other:?}"),
        }
        assert_eq!(table.check(tag(1, 1)), Verdict::TooOld { oldest: 2 });
        assert_eq!(table.check(tag(1, 9)), Verdict::Gap { expected: 7 });
        assert_eq!(
            table.check(tag(2, 40)),
            Verdict::Append,
            "unknown: any start"
        );
    }

    #[test]
    fn the_least_recently_appended_producer_is_evicted() {
        let mut table = ProducerTable::new(2);
        let mut end = 0;
        offer(&mut table, &mut end, tag(1, 0));
        offer(&mut table, &mut end, tag(2, 0));
        offer(&mut table, &mut end, tag(1, 1));
        offer(&mut table, &mut end, tag(3, 0)); // evicts 2, the least recent
        assert_eq!(table.len(), 2);
        assert!(matches!(table.check(tag(1, 1)), Verdict::Duplicate(_)));
        assert_eq!(table.check(tag(2, 0)), Verdict::Append, "forgotten");
    }

    fn kafka(producer_id: u64, epoch: u16, sequence: u64) -> ProducerTag {
        tag(KafkaProducer { producer_id, epoch }.native_id(), sequence)
    }

    /// Offers a Kafka batch of `records` records at `end`, storing it if told to.
    fn offer_records(
        table: &mut ProducerTable,
        end: &mut u64,
        t: ProducerTag,
        records: u64,
    ) -> Verdict {
        let verdict = table.check(t);
        if verdict == Verdict::Append {
            table.record(ProducerEntry {
                tag: t,
                base_offset: *end,
                next_offset: *end + records,
            });
            *end += records;
        }
        verdict
    }

    #[test]
    fn kafka_sequences_count_records_and_retries_are_found_by_base_sequence() {
        let mut table = ProducerTable::default();
        let mut end = 0;
        assert_eq!(
            offer_records(&mut table, &mut end, kafka(1, 0, 0), 3),
            Verdict::Append
        );
        assert_eq!(
            offer_records(&mut table, &mut end, kafka(1, 0, 3), 2),
            Verdict::Append
        );
        match table.check(kafka(1, 0, 0)) {
            Verdict::Duplicate(e) => assert_eq!((e.base_offset, e.next_offset), (0, 3)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            table.check(kafka(1, 0, 4)),
            Verdict::Gap { expected: 5 },
            "mid-batch"
        );
        assert_eq!(table.check(kafka(1, 0, 9)), Verdict::Gap { expected: 5 });
        assert_eq!(table.check(kafka(1, 0, 1)), Verdict::Gap { expected: 5 });
        assert_eq!(table.check(kafka(1, 0, 5)), Verdict::Append);
        // Natives beside it keep their own rules.
        assert_eq!(offer(&mut table, &mut end, tag(1, 0)), Verdict::Append);
        assert_eq!(table.check(tag(1, 1)), Verdict::Append);
    }

    #[test]
    fn kafka_sequences_wrap_at_i32_max() {
        let mut table = ProducerTable::default();
        let mut end = 0;
        let last = i32::MAX as u64 - 1;
        assert_eq!(
            offer_records(&mut table, &mut end, kafka(2, 0, last), 2),
            Verdict::Append
        );
        assert_eq!(table.check(kafka(2, 0, 0)), Verdict::Append);
        assert_eq!(table.check(kafka(2, 0, 2)), Verdict::Gap { expected: 0 });
    }

    #[test]
    fn a_new_kafka_epoch_starts_over_and_fences_the_old_one() {
        let mut table = ProducerTable::default();
        let mut end = 0;
        offer_records(&mut table, &mut end, kafka(3, 0, 0), 4);
        assert_eq!(table.check(kafka(3, 1, 4)), Verdict::Gap { expected: 0 });
        assert_eq!(
            offer_records(&mut table, &mut end, kafka(3, 1, 0), 1),
            Verdict::Append
        );
        assert_eq!(table.len(), 1, "one producer, whatever its epoch");
        assert_eq!(
            table.check(kafka(3, 0, 4)),
            Verdict::StaleEpoch { current: 1 }
        );
        assert_eq!(
            table.check(kafka(3, 0, 0)),
            Verdict::StaleEpoch { current: 1 }
        );
        assert!(matches!(table.check(kafka(3, 1, 0)), Verdict::Duplicate(_)));
        // A restart replays the journal into the same table.
        let entries = [
            ProducerEntry {
                tag: kafka(3, 0, 0),
                base_offset: 0,
                next_offset: 4,
            },
            ProducerEntry {
                tag: kafka(3, 1, 0),
                base_offset: 4,
                next_offset: 5,
            },
        ];
        let rebuilt = ProducerTable::rebuild(MAX_PRODUCERS_PER_PARTITION, &entries);
        assert_eq!(
            rebuilt.check(kafka(3, 0, 4)),
            Verdict::StaleEpoch { current: 1 }
        );
        assert_eq!(rebuilt.check(kafka(3, 1, 1)), Verdict::Append);
        assert_eq!(rebuilt.live_entries(), entries[1..]);
    }

    /// The reference: every batch ever stored, per producer, and the order producers
    /// were last appended to; the window and eviction rules stated directly.
    #[derive(Default)]
    struct Model {
        history: HashMap<u64, Vec<(u64, u64)>>, // producer -> (sequence, base offset)
        recency: Vec<u64>,                      // least recent first
    }

    impl Model {
        fn check(&self, t: ProducerTag) -> Verdict {
            let Some(history) = self.history.get(&t.producer_id) else {
                return Verdict::Append;
            };
            let window = &history[history.len().saturating_sub(WINDOW_BATCHES)..];
            let last = window.last().unwrap().0;
            if t.sequence == last + 1 {
                Verdict::Append
            } else if t.sequence > last + 1 {
                Verdict::Gap { expected: last + 1 }
            } else if let Some(&(s, base)) = window.iter().find(|(s, _)| *s == t.sequence) {
                Verdict::Duplicate(ProducerEntry {
                    tag: tag(t.producer_id, s),
                    base_offset: base,
                    next_offset: base + 1,
                })
            } else {
                Verdict::TooOld {
                    oldest: window[0].0,
                }
            }
        }

        fn record(&mut self, t: ProducerTag, base: u64, max: usize) {
            self.history
                .entry(t.producer_id)
                .or_default()
                .push((t.sequence, base));
            self.recency.retain(|p| *p != t.producer_id);
            self.recency.push(t.producer_id);
            while self.recency.len() > max {
                let gone = self.recency.remove(0);
                self.history.remove(&gone);
            }
        }
    }

    proptest! {
        /// Random produces from a few producers, mostly in order with retries and
        /// jumps mixed in: the table answers as the model does, and a table rebuilt
        /// from its live entries (a compacted journal) or from every stored entry (a
        /// whole journal) answers the same.
        #[test]
        fn the_table_agrees_with_the_model(
            max in 1usize..4,
            ops in proptest::collection::vec((0u64..4, -7i64..4), 1..200),
        ) {
            let mut table = ProducerTable::new(max);
            let mut model = Model::default();
            let mut next: HashMap<u64, u64> = HashMap::new();
            let mut stored = Vec::new();
            let mut end = 0u64;
            for (producer, delta) in ops {
                let expected = *next.get(&producer).unwrap_or(&0);
                let sequence = expected.saturating_add_signed(delta);
                let t = tag(producer, sequence);
                let want = model.check(t);
                let before = end;
                let got = offer(&mut table, &mut end, t);
                prop_assert_eq!(got, want, "offer {:?}", t);
                if got == Verdict::Append {
                    model.record(t, before, max);
                    next.insert(producer, sequence + 1);
                    stored.push(ProducerEntry { tag: t, base_offset: before, next_offset: before + 1 });
                }
                prop_assert!(table.len() <= max);
            }
            let compacted = ProducerTable::rebuild(max, &table.live_entries());
            let replayed = ProducerTable::rebuild(max, &stored);
            for producer in 0..4 {
                for sequence in 0..40 {
                    let t = tag(producer, sequence);
                    prop_assert_eq!(compacted.check(t), table.check(t));
                    prop_assert_eq!(replayed.check(t), table.check(t));
                }
            }
        }
    }

    /// Kafka's rules stated over each producer's whole history: per producer id,
    /// every batch stored `(epoch, base sequence, records, base offset)`.
    #[derive(Default)]
    struct KafkaModel {
        history: HashMap<u64, Vec<(u16, u64, u64, u64)>>,
        recency: Vec<u64>, // least recent first
    }

    impl KafkaModel {
        fn check(&self, id: u64, epoch: u16, sequence: u64) -> Verdict {
            let Some(&(current, last_seq, last_records, _)) =
                self.history.get(&id).and_then(|h| h.last())
            else {
                return Verdict::Append;
            };
            if epoch < current {
                return Verdict::StaleEpoch { current };
            }
            if epoch > current {
                return if sequence == 0 {
                    Verdict::Append
                } else {
                    Verdict::Gap { expected: 0 }
                };
            }
            let same_epoch: Vec<_> = self.history[&id]
                .iter()
                .filter(|(e, ..)| *e == epoch)
                .collect();
            let window = &same_epoch[same_epoch.len().saturating_sub(WINDOW_BATCHES)..];
            if let Some(&&(_, s, records, base)) = window.iter().find(|(_, s, ..)| *s == sequence) {
                return Verdict::Duplicate(ProducerEntry {
                    tag: kafka(id, epoch, s),
                    base_offset: base,
                    next_offset: base + records,
                });
            }
            let expected = (last_seq + last_records) % (1 << 31);
            if sequence == expected {
                Verdict::Append
            } else {
                Verdict::Gap { expected }
            }
        }

        fn record(&mut self, id: u64, batch: (u16, u64, u64, u64), max: usize) {
            self.history.entry(id).or_default().push(batch);
            self.recency.retain(|p| *p != id);
            self.recency.push(id);
            while self.recency.len() > max {
                let gone = self.recency.remove(0);
                self.history.remove(&gone);
            }
        }
    }

    proptest! {
        /// Kafka producers, mostly in step, with retries, gaps, epoch bumps and stale
        /// epochs mixed in, some starting just below the wrap: the table answers as
        /// the model does, and tables rebuilt from its live entries or from every
        /// stored entry answer the same.
        #[test]
        fn kafka_producers_agree_with_the_model(
            max in 1usize..4,
            ops in proptest::collection::vec(
                (0u64..3, 0u8..10, -3i64..3, 1u64..4, any::<bool>()),
                1..200,
            ),
        ) {
            let mut table = ProducerTable::new(max);
            let mut model = KafkaModel::default();
            // Each producer's epoch and next sequence, as a well-behaved client sees it.
            let mut client: HashMap<u64, (u16, u64)> = HashMap::new();
            let mut stored = Vec::new();
            let mut end = 0u64;
            for (id, action, delta, records, near_wrap) in ops {
                let start = if near_wrap { (1 << 31) - 3 } else { 0 };
                let (epoch, next) = *client.get(&id).unwrap_or(&(0, start));
                let (epoch, sequence) = match action {
                    0 => (epoch + 1, 0),                   // a bump
                    1 => (epoch.saturating_sub(1), next),  // a stale instance
                    _ => (epoch, next.saturating_add_signed(delta) % (1 << 31)),
                };
                let t = kafka(id, epoch, sequence);
                let want = model.check(id, epoch, sequence);
                let before = end;
                let got = offer_records(&mut table, &mut end, t, records);
                prop_assert_eq!(got, want, "offer {:?}", (id, epoch, sequence));
                if got == Verdict::Append {
                    model.record(id, (epoch, sequence, records, before), max);
                    client.insert(id, (epoch, (sequence + records) % (1 << 31)));
                    stored.push(ProducerEntry {
                        tag: t,
                        base_offset: before,
                        next_offset: before + records,
                    });
                }
                prop_assert!(table.len() <= max);
            }
            let compacted = ProducerTable::rebuild(max, &table.live_entries());
            let replayed = ProducerTable::rebuild(max, &stored);
            for (&id, &(epoch, next)) in &client {
                for e in epoch.saturating_sub(1)..=epoch + 1 {
                    for s in [0, 1, 2, next, next.wrapping_sub(1) % (1 << 31), (1 << 31) - 1] {
                        let t = kafka(id, e, s);
                        prop_assert_eq!(compacted.check(t), table.check(t));
                        prop_assert_eq!(replayed.check(t), table.check(t));
                    }
                }
            }
        }
    }
}
