//! `broker-bench`: an end-to-end load generator for brokerd (over its native protocol
//! or, with the `kafka` feature, its Kafka listener) and its peers.
//!
//! The same workload definitions ([`workload`]) run against any broker through a
//! [`driver::Driver`]; all timing and accounting lives in [`runner`] and [`stats`], so
//! a comparison between brokers is measured by identical code. Every payload carries
//! its producer, sequence number and send time ([`payload`]), which gives end-to-end
//! latency and exact loss and duplicate counts. Results come out as a table or one
//! JSON object ([`report`]). Without `--addr` the binary starts its own brokerd
//! ([`launcher`]). `--connect-only` times connection set-up instead
//! ([`connect`]). `docs/benchmarks.md` has the method and the measured figures.

#![warn(missing_docs)]
// Production code must not unwrap data it did not create; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod clock;
pub mod connect;
pub mod driver;
pub mod drivers;
pub mod launcher;
pub mod payload;
pub mod report;
pub mod runner;
pub mod stats;
pub mod workload;
