//! What the TLS black-box tests (`tls.rs`, `security_tls.rs`) share: certificates
//! made in the test ([`pki`]) and a TLS client of the test's own ([`client`]).
//!
//! Each test file compiles this module on its own and uses part of it, so the parts
//! the other file uses would be reported as dead code.
#![allow(dead_code)]

pub mod client;
pub mod pki;

use std::time::Duration;

/// How long anything a TLS test waits for may take.
pub const DEADLINE: Duration = Duration::from_secs(10);
