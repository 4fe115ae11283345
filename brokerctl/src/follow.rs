//! What the commands that follow the broker (`consume`, `services watch`) share:
//! riding out a broker restart, and stopping on SIGINT or SIGTERM alike.
//!
//! Connecting at start fails fast (a few attempts, `main`), because a command typed
//! at a broker that is not there should say so. Once a follower is running, though,
//! a lost connection is usually a broker restarting: an [`Outage`] says so once on
//! stderr, waits with a capped exponential backoff and lets the command try again,
//! for as long as it takes or until it is stopped. The readers underneath keep their
//! positions across failed requests (a fetch that failed is sent again from the same
//! offset), so nothing is skipped and, reading without a group, nothing repeats.

use std::time::Duration;

use client::{Backoff, ClientError};

/// Delay before the second try after a connection error; doubles after that.
const RETRY_BACKOFF_INITIAL_MS: u64 = 100;
/// Largest delay between two tries.
const RETRY_BACKOFF_MAX_MS: u64 = 2_000;

/// A follower's view of the broker being unreachable.
#[derive(Debug)]
pub struct Outage {
    addr: String,
    backoff: Backoff,
    /// Failed tries since the last success; 0 when the broker is reachable.
    failures: u32,
}

impl Outage {
    /// No outage yet, for the broker at `addr`.
    pub fn new(addr: &str) -> Outage {
        Outage {
            addr: addr.to_string(),
            backoff: Backoff {
                initial: Duration::from_millis(RETRY_BACKOFF_INITIAL_MS),
                max: Duration::from_millis(RETRY_BACKOFF_MAX_MS),
                // A follower waits as long as it takes; a signal stops it.
                max_attempts: u32::MAX,
            },
            failures: 0,
        }
    }

    /// A try failed with `error`, a connection error: says so on stderr at the start
    /// of an outage, then waits before the next try. Cancel-safe.
    pub async fn wait(&mut self, error: &ClientError) {
        debug_assert!(error.is_connection_error(), "only outages are waited out");
        if self.failures == 0 {
            eprintln!(
                "brokerctl: lost the broker at {}: {error}; retrying until it is back \
                 (Ctrl-C to stop)",
                self.addr
            );
        }
        self.failures = self.failures.saturating_add(1);
        let delay = self
            .backoff
            .delay_before(self.failures)
            .unwrap_or(self.backoff.max);
        tokio::time::sleep(delay).await;
    }

    /// A try succeeded: the outage, if there was one, is over.
    pub fn over(&mut self) {
        if self.failures > 0 {
            eprintln!("brokerctl: the broker at {} is back", self.addr);
        }
        self.failures = 0;
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM: both ask a follower to stop
/// cleanly (commit, leave its group, exit 0). If a handler cannot be installed, only
/// the other one is waited for.
pub async fn stop_requested() {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
