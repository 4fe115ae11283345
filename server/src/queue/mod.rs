//! Queue groups: work-queue delivery with per-message acks, ack deadlines, retries
//! with backoff, and dead-letter topics, on top of the partition logs.
//!
//! A queue group delivers each message of its topic to one live member at a time
//! (any member, not one per partition). Its state (what is in flight, waiting for a
//! retry, settled) lives in a pure [`state::QueueState`]; every change is an event
//! appended to the internal topic `__queue_state` before anyone learns of it, so a
//! restart (or `kill -9`) resumes with the same attempts, retries and dead letters.
//!
//! The parts:
//! - [`config`]: a group's settings, from its topic and its join's overrides;
//! - [`state`] and [`backoff`]: the pure delivery state and retry schedule;
//! - `group`: one group, and what its members call (ack, nack, extend);
//! - `dispatch`: the dispatcher task, handing out messages in rounds under credit;
//! - `dead_letter`: the copy of a message out of attempts to the dead-letter topic;
//! - `pull`: a member taking messages in the answer to its request (the HTTP
//!   gateway's receive), by the dispatcher's own hand-out;
//! - `manager`: [`Queues`], every group and their shared log.

pub mod backoff;
pub mod config;
mod dead_letter;
mod dispatch;
mod group;
mod manager;
mod pull;
pub mod state;

pub use config::QueueConfig;
pub use dead_letter::{dead_letter_record, History, DEAD_LETTER_HEADER_PREFIX};
pub use group::QueueGroup;
pub use manager::Queues;
pub use pull::MAX_DELIVERIES_PER_PULL;

/// Unsettled messages tracked per partition of a queue group, at most.
pub const MAX_UNACKED_PER_PARTITION: usize = 10_000;
