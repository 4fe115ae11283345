//! Opening many partition logs at once: every partition of every topic at startup,
//! and every partition of a topic being created.
//!
//! Opening one log is a few small reads plus a directory sync and a checkpoint sync
//! (`storage::Log::open_with`): about 0.8 ms a partition one after another on the
//! reference machine, so 760 ms for 1,000 partitions and seconds for 10,000. The time
//! is spent waiting for the device, which completes several syncs at once, so a fixed
//! number of short-lived threads ([`OPEN_THREADS`]) opens logs side by side: bounded
//! work whatever the number of partitions. Progress goes to the log once a second
//! while it lasts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use storage::{Log, LogConfig, LogOptions};

/// Threads opening logs at once (fewer when there are fewer logs).
pub const OPEN_THREADS: usize = 8;
/// How often a long open reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// One log to open: where, and with what configuration.
#[derive(Debug, Clone)]
pub struct LogToOpen {
    /// The partition's log directory.
    pub dir: PathBuf,
    /// Its configuration (the topic's).
    pub config: LogConfig,
}

/// Opens every log in `logs` on up to `threads` threads and returns the results in the
/// order given. Logs `what` (say, "partitions") progress once a second if it takes
/// longer. If no thread can be started, opens them on this thread.
pub fn open_all(
    logs: &[LogToOpen],
    options: &LogOptions,
    threads: usize,
    what: &str,
) -> Vec<storage::Result<Log>> {
    let threads = threads.clamp(1, logs.len().max(1));
    if threads == 1 {
        return logs.iter().map(|log| open_one(log, options)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<storage::Result<Log>>> = Vec::new();
    results.resize_with(logs.len(), || None);
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel();
        let mut started = 0;
        for n in 0..threads {
            let done = done_tx.clone();
            let next = &next;
            let worker = move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(log) = logs.get(i) else {
                    return;
                };
                if done.send((i, open_one(log, options))).is_err() {
                    return;
                }
            };
            let spawned = std::thread::Builder::new()
                .name(format!("log-open-{n}"))
                .spawn_scoped(scope, worker);
            match spawned {
                Ok(_) => started += 1,
                Err(error) => {
                    tracing::warn!(%error, started, "could not start another log-opening thread; going on with those started");
                    break;
                }
            }
        }
        drop(done_tx);
        if started == 0 {
            // Nothing runs in parallel: open them all here.
            for (slot, log) in results.iter_mut().zip(logs) {
                *slot = Some(open_one(log, options));
            }
            return;
        }
        let began = Instant::now();
        let mut report_at = began + PROGRESS_EVERY;
        let mut opened = 0usize;
        loop {
            match done_rx.recv_timeout(report_at.saturating_duration_since(Instant::now())) {
                Ok((i, result)) => {
                    results[i] = Some(result);
                    opened += 1;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Every thread has finished.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if Instant::now() >= report_at {
                tracing::info!(
                    opened,
                    total = logs.len(),
                    elapsed_ms = began.elapsed().as_millis() as u64,
                    "opening {what}"
                );
                report_at += PROGRESS_EVERY;
            }
        }
        if began.elapsed() >= PROGRESS_EVERY {
            tracing::info!(
                opened,
                total = logs.len(),
                elapsed_ms = began.elapsed().as_millis() as u64,
                "opened {what}"
            );
        }
    });
    results
        .into_iter()
        .map(|result| result.unwrap_or(Err(storage::Error::Closed)))
        .collect()
}

fn open_one(log: &LogToOpen, options: &LogOptions) -> storage::Result<Log> {
    Log::open_with(&log.dir, log.config.clone(), options.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(root: &std::path::Path, n: usize) -> Vec<LogToOpen> {
        (0..n)
            .map(|i| LogToOpen {
                dir: root.join(i.to_string()),
                config: LogConfig::default(),
            })
            .collect()
    }

    #[test]
    fn every_log_opens_in_the_order_given_whatever_the_threads() {
        let dir = tempfile::tempdir().unwrap();
        let logs = logs(dir.path(), 40);
        // Log i holds i records, so each result can be matched to its directory.
        for (i, log) in logs.iter().enumerate() {
            let mut opened = Log::open(&log.dir, log.config.clone()).unwrap();
            for _ in 0..i {
                let mut builder = protocol::batch::BatchBuilder::new();
                builder.push(0, None, Some(b"v"), &[]).unwrap();
                opened.append(&builder.finish()).unwrap();
            }
            opened.close().unwrap();
        }
        for threads in [1, 3, OPEN_THREADS, 100] {
            let opened = open_all(&logs, &LogOptions::default(), threads, "test logs");
            assert_eq!(opened.len(), logs.len());
            for (i, log) in opened.into_iter().enumerate() {
                let log = log.unwrap();
                assert_eq!(log.reader().end_offset(), i as u64, "{threads} threads");
                log.close().unwrap();
            }
        }
        assert!(open_all(&[], &LogOptions::default(), 4, "none").is_empty());
    }

    #[test]
    fn a_log_that_cannot_open_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut logs = logs(dir.path(), 5);
        // A file where the log's directory should be.
        std::fs::write(&logs[2].dir, b"not a directory").unwrap();
        logs[3].config.segment_bytes = 1; // invalid
        let opened = open_all(&logs, &LogOptions::default(), 4, "test logs");
        let failed: Vec<_> = opened.iter().map(|r| r.is_err()).collect();
        assert_eq!(failed, [false, false, true, true, false]);
    }
}
