//! Server counters and per-topic rates.
//!
//! Partitions count records and bytes as they append; a sampler task turns the
//! counters into per-second rates once a second.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::ops::stats::Counters;

use crate::shutdown::Shutdown;
use crate::topics::Topics;

/// How often rates are recomputed.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Why the broker closed or refused a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// It did not complete its handshake in time.
    HandshakeTimeout,
    /// It sent nothing, with nothing in flight, for the idle timeout.
    Idle,
    /// A frame began to arrive and then stopped.
    StalledFrame,
    /// The broker was at its connection limit.
    OverLimit,
    /// Its authentication failed.
    AuthenticationFailed,
}

/// Connections the broker closed or refused, by reason, since it started.
#[derive(Debug, Default)]
pub struct ClosedCounts {
    /// [`Closed::HandshakeTimeout`].
    pub handshake_timeout: AtomicU64,
    /// [`Closed::Idle`].
    pub idle: AtomicU64,
    /// [`Closed::StalledFrame`].
    pub stalled_frame: AtomicU64,
    /// [`Closed::OverLimit`].
    pub over_limit: AtomicU64,
    /// [`Closed::AuthenticationFailed`].
    pub authentication_failed: AtomicU64,
}

/// A listener whose connections are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// The native protocol's.
    Native = 0,
    /// The HTTP gateway's.
    Http = 1,
}

impl ListenerKind {
    /// Every listener, in index order.
    pub const ALL: [ListenerKind; 2] = [ListenerKind::Native, ListenerKind::Http];

    /// Its label value in the metrics.
    pub fn label(self) -> &'static str {
        match self {
            ListenerKind::Native => "native",
            ListenerKind::Http => "http",
        }
    }
}

/// Server-wide statistics.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    /// Open connections, by [`ListenerKind`].
    connections: [AtomicU64; 2],
    /// Connections accepted since start, by [`ListenerKind`].
    accepted: [AtomicU64; 2],
    /// Connections closed or refused by the broker.
    pub closed: ClosedCounts,
    /// (topic, partition) -> (messages/s, bytes/s) over the last interval.
    rates: Mutex<HashMap<(String, u32), (u64, u64)>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            connections: Default::default(),
            accepted: Default::default(),
            closed: ClosedCounts::default(),
            rates: Mutex::new(HashMap::new()),
        }
    }
}

impl ClosedCounts {
    /// Each reason's label value (`docs/operations.md`, "Metrics") and count.
    pub fn by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        [
            ("handshake_timeout", &self.handshake_timeout),
            ("idle", &self.idle),
            ("stalled_frame", &self.stalled_frame),
            ("over_limit", &self.over_limit),
            ("authentication_failed", &self.authentication_failed),
        ]
        .into_iter()
        .map(|(reason, n)| (reason, n.load(Ordering::Relaxed)))
    }
}

impl Stats {
    /// Milliseconds since start.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Open connections of the native protocol (what ServerStats reports).
    pub fn connections(&self) -> u32 {
        self.open(ListenerKind::Native) as u32
    }

    /// Open connections of `listener`.
    pub fn open(&self, listener: ListenerKind) -> u64 {
        self.connections[listener as usize].load(Ordering::Relaxed)
    }

    /// Counts a connection `listener` accepted (served or refused).
    pub fn count_accepted(&self, listener: ListenerKind) {
        self.accepted[listener as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Connections `listener` accepted since start.
    pub fn accepted(&self, listener: ListenerKind) -> u64 {
        self.accepted[listener as usize].load(Ordering::Relaxed)
    }

    /// Counts a connection the broker closed or refused.
    pub fn count_closed(&self, why: Closed) {
        let counter = match why {
            Closed::HandshakeTimeout => &self.closed.handshake_timeout,
            Closed::Idle => &self.closed.idle,
            Closed::StalledFrame => &self.closed.stalled_frame,
            Closed::OverLimit => &self.closed.over_limit,
            Closed::AuthenticationFailed => &self.closed.authentication_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection of `listener` as open until the guard drops.
    pub fn connection_opened(self: &Arc<Self>, listener: ListenerKind) -> ConnectionGuard {
        self.connections[listener as usize].fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self.clone(), listener)
    }

    /// Counters of one partition.
    pub fn partition_counters(&self, topic: &str, partition: u32, totals: (u64, u64)) -> Counters {
        let rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        let (messages_per_sec, bytes_per_sec) = rates
            .get(&(topic.to_string(), partition))
            .copied()
            .unwrap_or((0, 0));
        Counters {
            messages_total: totals.0,
            bytes_total: totals.1,
            messages_per_sec,
            bytes_per_sec,
        }
    }
}

/// Decrements the connection count when dropped.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Stats>, ListenerKind);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections[self.1 as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sums partition counters.
pub fn sum(counters: impl IntoIterator<Item = Counters>) -> Counters {
    counters.into_iter().fold(
        Counters {
            messages_total: 0,
            bytes_total: 0,
            messages_per_sec: 0,
            bytes_per_sec: 0,
        },
        |a, b| Counters {
            messages_total: a.messages_total + b.messages_total,
            bytes_total: a.bytes_total + b.bytes_total,
            messages_per_sec: a.messages_per_sec + b.messages_per_sec,
            bytes_per_sec: a.bytes_per_sec + b.bytes_per_sec,
        },
    )
}

/// Recomputes rates every [`SAMPLE_INTERVAL`] until shutdown.
pub async fn run_sampler(stats: Arc<Stats>, topics: Arc<Topics>, shutdown: Shutdown) {
    let mut sampler = Sampler {
        previous: HashMap::new(),
        last: Instant::now(),
    };
    crate::tasks::every(SAMPLE_INTERVAL, shutdown, || {
        let rates = sampler.sample(&topics);
        *stats.rates.lock().unwrap_or_else(|p| p.into_inner()) = rates;
        std::future::ready(())
    })
    .await
}

/// The counters of the last sample, to take rates against.
struct Sampler {
    previous: HashMap<(String, u32), (u64, u64)>,
    last: Instant,
}

impl Sampler {
    /// Per-second rates of every partition since the last sample.
    fn sample(&mut self, topics: &Topics) -> HashMap<(String, u32), (u64, u64)> {
        let elapsed = self.last.elapsed().as_secs_f64().max(0.001);
        self.last = Instant::now();
        let mut rates = HashMap::new();
        let mut current = HashMap::new();
        for topic in topics.list() {
            for partition in &topic.partitions {
                let key = (topic.name.clone(), partition.id);
                let now = partition.counters();
                let before = self.previous.get(&key).copied().unwrap_or(now);
                let rate = |a: u64, b: u64| (a.saturating_sub(b) as f64 / elapsed).round() as u64;
                rates.insert(key.clone(), (rate(now.0, before.0), rate(now.1, before.1)));
                current.insert(key, now);
            }
        }
        self.previous = current;
        rates
    }
}
