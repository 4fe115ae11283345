//! Every task the broker starts in the background, owned in one place so that
//! shutdown can stop them and wait for them before the logs are closed.
//!
//! A task gets a [`Shutdown`] listener from [`Tasks::shutdown`] and returns when it
//! fires. [`Tasks::stop`] triggers it, joins every task for up to a grace period and
//! aborts what is left, so no task can still be appending when the logs close.
//! [`every`] and [`every_blocking`] are the one shape of a periodic job.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::error::BrokerError;
use crate::shutdown::{Shutdown, ShutdownSignal};

/// How long [`Tasks::stop`] waits for background tasks before aborting them.
pub const TASK_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The broker's background tasks.
#[derive(Debug, Default)]
pub struct Tasks {
    signal: ShutdownSignal,
    /// `None` once stopped: later spawns are refused.
    running: Mutex<Option<JoinSet<()>>>,
}

/// What [`Tasks::stop`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Tasks that returned within the grace period.
    pub joined: usize,
    /// Tasks aborted after it.
    pub aborted: usize,
}

impl Tasks {
    /// No tasks yet.
    pub fn new() -> Tasks {
        Tasks {
            signal: ShutdownSignal::new(),
            running: Mutex::new(Some(JoinSet::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<JoinSet<()>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A listener that fires when the tasks are told to stop.
    pub fn shutdown(&self) -> Shutdown {
        self.signal.subscribe()
    }

    /// Starts `task` on the current runtime. After [`stop`](Self::stop) nothing is
    /// started (the broker is closing; the task's work would only race the close).
    pub fn spawn(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let mut running = self.lock();
        let Some(set) = running.as_mut() else {
            tracing::debug!(task = name, "not started: the broker is stopping");
            return;
        };
        // Reap what already finished, so the set holds only live tasks.
        while set.try_join_next().is_some() {}
        set.spawn(task);
    }

    /// Tells every task to stop, waits up to `grace` for them, aborts the rest.
    pub async fn stop(&self, grace: Duration) -> Stopped {
        self.signal.trigger();
        let Some(mut set) = self.lock().take() else {
            return Stopped {
                joined: 0,
                aborted: 0,
            };
        };
        let mut joined = 0;
        let all = async {
            while let Some(outcome) = set.join_next().await {
                if let Err(error) = outcome {
                    tracing::error!(%error, "a background task failed");
                }
                joined += 1;
            }
        };
        let finished = tokio::time::timeout(grace, all).await.is_ok();
        let aborted = if finished { 0 } else { set.len() };
        if !finished {
            tracing::warn!(
                aborted,
                "background tasks still busy after {grace:?}; aborting them"
            );
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
        Stopped { joined, aborted }
    }
}

/// Runs `tick` every `period` until `shutdown` fires. The first tick is one period
/// after the start; a tick that overruns delays the next instead of bunching them.
pub async fn every<F, Fut>(period: Duration, mut shutdown: Shutdown, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => tick().await,
            _ = shutdown.recv() => return,
        }
    }
}

/// [`every`] for blocking work (file I/O): `work(owner)` runs on the blocking pool, and
/// a failure is logged as `what` failing, to be tried again at the next tick.
pub async fn every_blocking<T: Send + Sync + 'static>(
    what: &'static str,
    period: Duration,
    shutdown: Shutdown,
    owner: Arc<T>,
    work: fn(&T) -> Result<(), BrokerError>,
) {
    every(period, shutdown, || {
        let owner = owner.clone();
        async move {
            match tokio::task::spawn_blocking(move || work(&owner)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "{what} failed"),
                Err(error) => tracing::error!(%error, "{what} panicked"),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn stop_joins_tasks_that_listen_and_aborts_those_that_do_not() {
        let tasks = Tasks::new();
        let mut listener = tasks.shutdown();
        tasks.spawn("polite", async move { listener.recv().await });
        tasks.spawn("stuck", std::future::pending());
        let stopped = tasks.stop(Duration::from_secs(1)).await;
        assert_eq!(
            stopped,
            Stopped {
                joined: 1,
                aborted: 1
            }
        );
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        tasks.spawn("late", async move {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        tokio::task::yield_now().await;
        assert_eq!(ran.load(Ordering::SeqCst), 0, "nothing starts after stop");
    }

    #[tokio::test(start_paused = true)]
    async fn every_ticks_once_per_period_until_shutdown() {
        let tasks = Tasks::new();
        let ticks = Arc::new(AtomicUsize::new(0));
        let counter = ticks.clone();
        tasks.spawn(
            "ticker",
            every(Duration::from_secs(10), tasks.shutdown(), move || {
                counter.fetch_add(1, Ordering::SeqCst);
                std::future::ready(())
            }),
        );
        tokio::time::sleep(Duration::from_secs(35)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 3);
        let stopped = tasks.stop(Duration::from_secs(1)).await;
        assert_eq!(
            stopped,
            Stopped {
                joined: 1,
                aborted: 0
            }
        );
    }
}
