//! Graceful shutdown as a small explicit type every task holds.

use tokio::sync::watch;

/// Fires once, for everyone. Create with [`ShutdownSignal::new`], hand out
/// [`Shutdown`] listeners, call [`ShutdownSignal::trigger`] to stop.
#[derive(Debug)]
pub struct ShutdownSignal(watch::Sender<bool>);

/// A listener: `recv().await` returns once shutdown has been triggered.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl ShutdownSignal {
    /// A signal not yet triggered.
    pub fn new() -> ShutdownSignal {
        ShutdownSignal(watch::channel(false).0)
    }

    /// A new listener.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }

    /// Tells every listener to stop.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// Waits for shutdown. Returns at once if it already happened (or the signal is gone).
    pub async fn recv(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// True once shutdown has been triggered.
    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow()
    }
}
