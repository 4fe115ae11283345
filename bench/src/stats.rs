//! Measurements: latency histograms, and exact accounting of which messages arrived.
//!
//! Latencies go into HDR histograms (3 significant digits, 1 ns to 10 min), so a
//! percentile is within 0.1% of the true value however many samples there are.
//! Delivery is accounted per message, not per count: each consumer marks the
//! `(producer, sequence)` of every payload in a bitset, so a lost message and a
//! duplicate cannot cancel each other out.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram records, in nanoseconds (10 minutes); larger samples
/// are clamped to it (and would show as a max of 10 min).
pub const MAX_TRACKABLE_LATENCY_NS: u64 = 600_000_000_000;
/// Significant decimal digits kept by the histograms.
pub const HISTOGRAM_SIGNIFICANT_DIGITS: u8 = 3;

/// A latency distribution in nanoseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    /// An empty distribution.
    pub fn new() -> Latency {
        // Infallible: the bounds are constants that satisfy hdrhistogram's rules
        // (low >= 1, high >= 2 * low, sigfig <= 5).
        #[allow(clippy::expect_used)]
        let histogram =
            Histogram::new_with_bounds(1, MAX_TRACKABLE_LATENCY_NS, HISTOGRAM_SIGNIFICANT_DIGITS)
                .expect("constant histogram bounds are valid");
        Latency { histogram }
    }

    /// Records `count` samples of `ns` nanoseconds (a batch's latency counts once per
    /// message in it, so percentiles are per message).
    pub fn record(&mut self, ns: u64, count: u64) {
        let ns = ns.clamp(1, MAX_TRACKABLE_LATENCY_NS);
        // Cannot fail: the value is clamped into the histogram's range.
        let _ = self.histogram.record_n(ns, count);
    }

    /// Adds another distribution's samples.
    pub fn merge(&mut self, other: &Latency) {
        // Cannot fail: both histograms have the same bounds.
        let _ = self.histogram.add(&other.histogram);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The report's percentiles, or `None` without samples.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.histogram.is_empty() {
            return None;
        }
        let us = |ns: u64| (ns as f64 / 100.0).round() / 10.0;
        let at = |q: f64| us(self.histogram.value_at_quantile(q));
        Some(Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: us(self.histogram.max()),
            samples: self.histogram.len(),
        })
    }
}

/// Latency percentiles in microseconds (0.1 µs resolution).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
    /// How many messages the figures are over.
    pub samples: u64,
}

/// Which `(producer, sequence)` pairs one consumer group received.
#[derive(Debug, Clone, Default)]
pub struct DeliveryTracker {
    /// Per producer, a bitset of sequence numbers seen (bit `s % 64` of word `s / 64`).
    seen: Vec<Vec<u64>>,
    received: u64,
    duplicates: u64,
    /// Ids no producer can have sent (corrupt or foreign payloads), counted without
    /// touching `seen`, whose size they would otherwise decide.
    impossible: u64,
}

/// Outcome of delivery accounting for one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Distinct messages received that were sent.
    pub received: u64,
    /// Sent and never received.
    pub lost: u64,
    /// Received more than once (each extra copy counts one).
    pub duplicates: u64,
    /// Received but never sent (a sequence number beyond what its producer sent).
    pub unexpected: u64,
}

impl DeliveryTracker {
    /// An empty tracker.
    pub fn new() -> DeliveryTracker {
        DeliveryTracker::default()
    }

    /// Marks one received message. Returns false if it had been seen before.
    pub fn record(&mut self, producer: u32, sequence: u64) -> bool {
        let p = producer as usize;
        if self.seen.len() <= p {
            self.seen.resize_with(p + 1, Vec::new);
        }
        let words = &mut self.seen[p];
        let (word, bit) = ((sequence / 64) as usize, sequence % 64);
        if words.len() <= word {
            words.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        self.received += 1;
        if words[word] & mask != 0 {
            self.duplicates += 1;
            return false;
        }
        words[word] |= mask;
        true
    }

    /// Counts a message whose id no producer can have sent (a producer index beyond
    /// the run's producers, a sequence beyond what was sent): reported as unexpected.
    pub fn record_impossible(&mut self) {
        self.received += 1;
        self.impossible += 1;
    }

    /// Messages received, duplicates included.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Adds what another consumer of the same group received; a message both got is a
    /// duplicate.
    pub fn merge(&mut self, other: &DeliveryTracker) {
        if self.seen.len() < other.seen.len() {
            self.seen.resize_with(other.seen.len(), Vec::new);
        }
        for (mine, theirs) in self.seen.iter_mut().zip(&other.seen) {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), 0);
            }
            for (a, b) in mine.iter_mut().zip(theirs) {
                self.duplicates += u64::from((*a & *b).count_ones());
                *a |= *b;
            }
        }
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.impossible += other.impossible;
    }

    /// Compares what arrived with what each producer sent (`sent[p]` messages with
    /// sequences `0..sent[p]`).
    pub fn finish(&self, sent: &[u64]) -> Delivery {
        let mut delivery = Delivery {
            duplicates: self.duplicates,
            unexpected: self.impossible,
            ..Delivery::default()
        };
        let producers = sent.len().max(self.seen.len());
        for p in 0..producers {
            let sent_p = sent.get(p).copied().unwrap_or(0);
            let words = self.seen.get(p).map(Vec::as_slice).unwrap_or(&[]);
            let mut in_range = 0u64;
            let mut beyond = 0u64;
            for (w, word) in words.iter().enumerate() {
                let base = w as u64 * 64;
                let valid_bits = sent_p.saturating_sub(base).min(64);
                let valid_mask = if valid_bits == 64 {
                    u64::MAX
                } else {
                    (1u64 << valid_bits) - 1
                };
                in_range += u64::from((word & valid_mask).count_ones());
                beyond += u64::from((word & !valid_mask).count_ones());
            }
            delivery.received += in_range;
            delivery.lost += sent_p - in_range;
            delivery.unexpected += beyond;
        }
        delivery
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_delivery_is_clean() {
        let mut t = DeliveryTracker::new();
        for p in 0..3 {
            for s in 0..130 {
                assert!(t.record(p, s));
            }
        }
        let d = t.finish(&[130, 130, 130]);
        assert_eq!(
            d,
            Delivery {
                received: 390,
                lost: 0,
                duplicates: 0,
                unexpected: 0
            }
        );
    }

    #[test]
    fn a_loss_and_a_duplicate_do_not_cancel_out() {
        let mut t = DeliveryTracker::new();
        for s in 0..100 {
            if s != 42 {
                t.record(0, s);
            }
        }
        assert!(!t.record(0, 7));
        assert_eq!(t.received(), 100);
        let d = t.finish(&[100]);
        assert_eq!(
            d,
            Delivery {
                received: 99,
                lost: 1,
                duplicates: 1,
                unexpected: 0
            }
        );
    }

    #[test]
    fn impossible_ids_are_unexpected_and_allocate_nothing() {
        let mut t = DeliveryTracker::new();
        t.record(0, 0);
        t.record_impossible(); // e.g. producer u32::MAX, sequence u64::MAX
        let mut other = DeliveryTracker::new();
        other.record_impossible();
        t.merge(&other);
        assert_eq!(t.seen.len(), 1);
        let d = t.finish(&[1]);
        assert_eq!(d.unexpected, 2);
        assert_eq!((d.received, d.lost), (1, 0));
        assert_eq!(t.received(), 3);
    }

    #[test]
    fn never_sent_and_never_received_producers_are_counted() {
        let mut t = DeliveryTracker::new();
        t.record(0, 5); // producer 0 only sent 3
        let d = t.finish(&[3, 10]);
        assert_eq!(
            d,
            Delivery {
                received: 0,
                lost: 13,
                duplicates: 0,
                unexpected: 1
            }
        );
    }

    #[test]
    fn merging_group_members_finds_overlap() {
        let mut a = DeliveryTracker::new();
        let mut b = DeliveryTracker::new();
        for s in 0..60 {
            a.record(1, s);
        }
        for s in 50..200 {
            b.record(1, s);
        }
        a.merge(&b);
        let d = a.finish(&[0, 200]);
        assert_eq!(
            d,
            Delivery {
                received: 200,
                lost: 0,
                duplicates: 10,
                unexpected: 0
            }
        );
    }

    #[test]
    fn percentiles_are_in_microseconds_per_message() {
        let mut l = Latency::new();
        assert!(l.percentiles().is_none());
        for us in 1..=1000u64 {
            l.record(us * 1000, 1);
        }
        l.record(50_000_000, 1); // one 50 ms outlier
        let p = l.percentiles().unwrap();
        assert_eq!(p.samples, 1001);
        // Within the histogram's precision (3 digits) plus the rank rounding.
        assert!((p.p50 - 500.0).abs() <= 2.0, "{p:?}");
        assert!((p.p99 - 990.0).abs() <= 2.0, "{p:?}");
        assert!((p.max - 50_000.0).abs() <= 50.0, "{p:?}");
        let mut batch = Latency::new();
        batch.record(2_000, 1000);
        batch.merge(&l);
        assert_eq!(batch.count(), 2001);
    }

    #[test]
    fn absurd_latencies_are_clamped_not_lost() {
        let mut l = Latency::new();
        l.record(0, 1);
        l.record(u64::MAX, 1);
        assert_eq!(l.count(), 2);
    }
}
