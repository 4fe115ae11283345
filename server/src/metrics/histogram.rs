//! A histogram whose observations are lock-free: one relaxed atomic add into the
//! bucket and one into the sum, no lock and no allocation, so it can be observed once
//! per request on the produce path.
//!
//! `prometheus-client`'s own `Histogram` takes a mutex on every `observe` (0.26:
//! `Arc<parking_lot::Mutex<Inner>>`), which would be the one lock shared by every
//! connection's produce path. This type keeps the buckets as atomics and lets the
//! crate do all the encoding ([`EncodeMetric`]), so the exposition format is still the
//! crate's. Values are integers in a base unit (nanoseconds, milliseconds, records,
//! bytes) and are scaled to the exposition's unit (seconds, records, bytes) only at
//! scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Most buckets a histogram has (its bounds, plus `+Inf`); the scrape formats them on
/// the stack.
pub const MAX_BUCKETS: usize = 24;

/// A fixed-bucket histogram of `u64` observations with atomic buckets.
#[derive(Debug)]
pub struct AtomicHistogram {
    /// Upper bounds (inclusive) in the base unit, increasing.
    bounds: &'static [u64],
    /// What one base unit is in the exposition's unit (1e-9 for nanoseconds shown as
    /// seconds).
    scale: f64,
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: Box<[AtomicU64]>,
    /// Sum of every observation, in the base unit (wraps after 2^64: 584 years of
    /// nanoseconds).
    sum: AtomicU64,
}

impl AtomicHistogram {
    /// A histogram with these upper bounds (increasing, fewer than [`MAX_BUCKETS`]),
    /// in a base unit that is `scale` of the exposition's unit.
    pub fn new(bounds: &'static [u64], scale: f64) -> AtomicHistogram {
        assert!(bounds.len() < MAX_BUCKETS, "too many buckets");
        assert!(
            bounds.windows(2).all(|w| w[0] < w[1]),
            "bucket bounds must increase"
        );
        AtomicHistogram {
            bounds,
            scale,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Records one observation of `value` base units.
    pub fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Observations so far (the buckets' sum, so a scrape's count always matches its
    /// buckets).
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Sum of the observations, in the exposition's unit.
    pub fn sum(&self) -> f64 {
        self.sum.load(Ordering::Relaxed) as f64 * self.scale
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets = [(0.0, 0u64); MAX_BUCKETS];
        let mut count = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            let bound = self
                .bounds
                .get(i)
                .map_or(f64::INFINITY, |&b| b as f64 * self.scale);
            let n = bucket.load(Ordering::Relaxed);
            buckets[i] = (bound, n);
            count += n;
        }
        let buckets = &buckets[..self.buckets.len()];
        encoder.encode_histogram::<NoLabelSet>(self.sum(), count, buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_holds_them() {
        static BOUNDS: [u64; 3] = [10, 20, 40];
        let h = AtomicHistogram::new(&BOUNDS, 1.0);
        for v in [0, 10, 11, 20, 40, 41, 1_000] {
            h.observe(v);
        }
        let counts: Vec<u64> = h
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, [2, 2, 1, 2]);
        assert_eq!(h.count(), 7);
        assert_eq!(h.sum(), 1_122.0);
    }

    #[test]
    fn the_sum_is_scaled_to_the_exposition_unit() {
        static BOUNDS: [u64; 1] = [1_000_000];
        let h = AtomicHistogram::new(&BOUNDS, 1e-9);
        h.observe(1_500_000_000);
        assert!((h.sum() - 1.5).abs() < 1e-12);
    }
}
