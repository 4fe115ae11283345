//! Retry backoff: pure, deterministic.

/// How long to wait before redelivering a message after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay after the first failed attempt, ms.
    pub initial_ms: u64,
    /// Growth per further attempt.
    pub multiplier: f64,
    /// Upper bound, ms.
    pub max_ms: u64,
    /// Spread: each delay is scaled by a factor in `[1 - jitter, 1 + jitter]`.
    pub jitter: f64,
}

impl Backoff {
    /// Delay after `failed_attempts` attempts (1 = the first delivery failed).
    /// The jitter is derived from `seed` (the message's offset), so the same message
    /// gets the same schedule: reproducible in tests and after a restart.
    pub fn delay_ms(&self, failed_attempts: u32, seed: u64) -> u64 {
        let exponent = failed_attempts.saturating_sub(1).min(63) as i32;
        let base =
            (self.initial_ms as f64 * self.multiplier.powi(exponent)).min(self.max_ms as f64);
        let unit = (splitmix(seed ^ u64::from(failed_attempts)) >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        (base * factor).round().clamp(0.0, self.max_ms as f64) as u64
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_the_multiplier_up_to_the_maximum() {
        let backoff = Backoff {
            initial_ms: 100,
            multiplier: 2.0,
            max_ms: 1000,
            jitter: 0.0,
        };
        let delays: Vec<u64> = (1..=6).map(|a| backoff.delay_ms(a, 7)).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_stays_in_bounds_and_is_reproducible() {
        let backoff = Backoff {
            initial_ms: 1000,
            multiplier: 1.0,
            max_ms: 10_000,
            jitter: 0.2,
        };
        for seed in 0..1000 {
            let d = backoff.delay_ms(1, seed);
            assert!((800..=1200).contains(&d), "{d}");
            assert_eq!(d, backoff.delay_ms(1, seed));
        }
        let distinct: std::collections::HashSet<u64> =
            (0..100).map(|s| backoff.delay_ms(1, s)).collect();
        assert!(distinct.len() > 10, "jitter spreads retries");
    }
}
