//! The broker's clock, injected wherever time decides something (group sessions, queue
//! deadlines and retries, service TTLs, retention), so that tests can move time by
//! hand instead of sleeping. It is the storage crate's [`Clock`], shared with every
//! log, so the whole broker reads one clock.
//!
//! Every duration is measured on monotonic time ([`Clock::monotonic_ms`]), so a step
//! of the wall clock (an NTP correction, an operator) neither fires timers early nor
//! freezes them. Wall-clock time ([`Clock::wall_ms`]) is only what users see (record
//! timestamps, "since" figures) and what is persisted, converted back to durations
//! when it is read (see `docs/operations.md`, "Time").

pub use storage::{Clock, ManualClock, SystemClock};
