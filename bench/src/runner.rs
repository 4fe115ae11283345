//! Runs a [`Workload`] against a [`Driver`]: opens producers and consumers, paces,
//! times, counts, and turns what happened into a [`Report`].
//!
//! Timing rules, the same for every broker:
//! - A producer stamps each batch with its send time on the run's [`Clock`]; the
//!   publish latency of every message in it is ack time minus that stamp, and the
//!   end-to-end latency is receive time minus that stamp.
//! - With `--rate`, batches follow a fixed schedule. A batch sent late (a slow
//!   acknowledgement held the producer back) is stamped with its *scheduled* time, so
//!   the wait counts as latency instead of vanishing (no coordinated omission). A
//!   batch may leave up to one timer tick early, and is then stamped with its real
//!   time, so no latency is ever understated.
//! - Nothing sent before the warm-up ends enters a histogram or a throughput figure;
//!   everything, warm-up included, enters the loss and duplicate accounting.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::future::join_all;
use indicatif::{ProgressBar, ProgressStyle};
use thiserror::Error;

use crate::clock::Clock;
use crate::driver::{
    ConsumerHandle, ConsumerSpec, Driver, DriverError, OutBatch, ProducerHandle, StartAt,
};
use crate::payload::read_header;
use crate::report::{Phase, Report};
use crate::stats::{Delivery, DeliveryTracker, Latency};
use crate::workload::{scheduled_send_ns, Stop, Workload, WorkloadError, WorkloadKind};

/// How early a paced batch may leave: tokio's timer wheel has 1 ms ticks, so a sleep
/// to the exact send time would wake up to 1 ms late.
pub const TIMER_SLACK_NS: u64 = 1_000_000;
/// How long one `receive` call may wait before the consumer checks whether to stop.
pub const RECEIVE_WAIT_MS: u64 = 100;
/// How often the progress bar is redrawn.
pub const PROGRESS_TICK_MS: u64 = 200;

/// Settings of a run that are not part of the workload.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Prefix of topic and group names (unique per run, so runs never share data).
    pub name_prefix: String,
    /// Show a progress bar (only on a terminal).
    pub progress: bool,
    /// After producers finish, consumers give up this long after the last message
    /// arrived; whatever has not arrived by then is reported lost.
    pub drain_timeout: Duration,
    /// Leave the topics in place after the run.
    pub keep_topics: bool,
}

/// Why a run could not produce a report.
#[derive(Debug, Error)]
pub enum RunError {
    /// The workload is invalid.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// Talking to the broker failed.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The workload exists but this broker build cannot run it.
    #[error("{0}")]
    Unsupported(String),
    /// Nothing fell inside the measurement window.
    #[error("the run ended before the warm-up did ({warmup_ms} ms): nothing was measured; send more --messages or shorten --warmup")]
    NothingMeasured {
        /// The warm-up.
        warmup_ms: u128,
    },
    /// A task panicked or was cancelled.
    #[error("a benchmark task failed: {0}")]
    Task(String),
}

/// Counters shared by a phase's tasks.
#[derive(Debug)]
struct Shared {
    clock: Clock,
    warmup_end_ns: u64,
    /// When measurement could start: every connection open, the first message about
    /// to be sent (or, for consume, the consumers ready). Throughput windows start at
    /// this or at the end of the warm-up, whichever is later, so connecting (slower for
    /// some brokers than others) is never measured.
    measure_from_ns: AtomicU64,
    /// Messages handed to the broker so far.
    sent: AtomicU64,
    /// Messages acknowledged so far.
    acked: AtomicU64,
    /// Messages received so far, all groups, duplicates included.
    received: AtomicU64,
    producers_done: AtomicBool,
    /// Producers in the run, and records per batch: with `sent`, what bounds the ids a
    /// consumer can legitimately receive.
    producers: u32,
    batch_records: u64,
    /// Clock time at which the producers finished.
    producers_done_ns: AtomicU64,
    abort: AtomicBool,
}

impl Shared {
    /// Marks now as the earliest start of the throughput window.
    fn start_measuring(&self) {
        self.measure_from_ns
            .fetch_max(self.clock.now_ns(), Ordering::SeqCst);
    }

    /// Where throughput windows start.
    fn window_start_ns(&self) -> u64 {
        self.warmup_end_ns
            .max(self.measure_from_ns.load(Ordering::SeqCst))
    }

    fn new(workload: &Workload, warmup: Duration) -> Arc<Shared> {
        Arc::new(Shared {
            clock: Clock::start(),
            warmup_end_ns: u64::try_from(warmup.as_nanos()).unwrap_or(u64::MAX),
            measure_from_ns: AtomicU64::new(0),
            producers: workload.producers,
            batch_records: workload.batch_records as u64,
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            received: AtomicU64::new(0),
            producers_done: AtomicBool::new(false),
            producers_done_ns: AtomicU64::new(0),
            abort: AtomicBool::new(false),
        })
    }
}

/// What happened inside the measurement window, merged over tasks.
#[derive(Debug, Clone, Default)]
struct Window {
    messages: u64,
    /// Clock time of the last measured event.
    last_ns: u64,
}

impl Window {
    fn add(&mut self, messages: u64, at_ns: u64) {
        self.messages += messages;
        self.last_ns = self.last_ns.max(at_ns);
    }

    fn merge(&mut self, other: &Window) {
        self.add(other.messages, other.last_ns);
    }
}

/// What one producer did.
#[derive(Debug, Default)]
struct ProducerOutcome {
    sent: u64,
    acked: u64,
    failed: u64,
    first_error: Option<String>,
    latency: Latency,
    window: Window,
}

/// What one consumer got.
#[derive(Debug, Default)]
struct ConsumerOutcome {
    tracker: DeliveryTracker,
    latency: Latency,
    window: Window,
    corrupt: u64,
    first_error: Option<String>,
}

/// Runs `workload` against `driver` and reports what happened.
pub async fn run<D: Driver>(
    driver: Arc<D>,
    workload: &Workload,
    options: &RunOptions,
) -> Result<Report, RunError> {
    workload.validate()?;
    if workload.kind == WorkloadKind::Queue && !driver.supports_queue() {
        return Err(RunError::Unsupported(format!(
            "--workload queue is not supported by this broker build yet: the {} driver has no \
             queue consumer (per-message acks) to run it with",
            driver.name()
        )));
    }
    let topics: Vec<String> = (0..workload.topics)
        .map(|t| format!("{}-t{t}", options.name_prefix))
        .collect();
    let groups: Vec<String> = (0..workload.consumer_groups)
        .map(|g| format!("{}-g{g}", options.name_prefix))
        .collect();
    driver.create_topics(&topics, workload).await?;
    let note = driver.durability_note(workload).await;
    let result = match workload.kind {
        WorkloadKind::Produce => run_produce(&driver, workload, options, &topics).await,
        WorkloadKind::Consume => run_consume(&driver, workload, options, &topics, &groups).await,
        WorkloadKind::Pubsub | WorkloadKind::Queue => {
            run_pubsub(&driver, workload, options, &topics, &groups).await
        }
    };
    if !options.keep_topics {
        // A failed cleanup must not hide the run's own result.
        let _ = driver.delete_topics(&topics).await;
    }
    let mut report = result?;
    report.broker = driver.name().to_string();
    report.durability = note;
    Ok(report)
}

async fn run_produce<D: Driver>(
    driver: &Arc<D>,
    workload: &Workload,
    options: &RunOptions,
    topics: &[String],
) -> Result<Report, RunError> {
    let shared = Shared::new(workload, workload.warmup);
    let bar = progress_bar(options, workload.stop, "produce", &shared);
    let producers = produce_phase(driver, workload, topics, &shared, true).await?;
    finish_bar(bar);
    let stored = driver.stored_messages(topics).await?;
    let mut report = Report::new(workload);
    report.add_producers(&producers.outcome_summary());
    let phase = Phase {
        messages: producers.acked,
        window_messages: producers.window.messages,
        window_ns: producers
            .window
            .last_ns
            .saturating_sub(shared.window_start_ns()),
    };
    if phase.window_messages == 0 {
        return Err(RunError::NothingMeasured {
            warmup_ms: workload.warmup.as_millis(),
        });
    }
    report.set_throughput(phase, workload.message_size_bytes);
    report.publish_latency_us = producers.latency.percentiles();
    report.stored_messages = stored;
    if let Some(stored) = stored {
        // Fresh topics: what is stored is exactly what this run appended.
        report.lost = producers.acked.saturating_sub(stored);
        report.duplicates = stored.saturating_sub(producers.sent);
    }
    Ok(report)
}

async fn run_consume<D: Driver>(
    driver: &Arc<D>,
    workload: &Workload,
    options: &RunOptions,
    topics: &[String],
    groups: &[String],
) -> Result<Report, RunError> {
    // Pre-fill, unmeasured (no warm-up: everything sent counts for delivery).
    let fill = Shared::new(workload, Duration::ZERO);
    let bar = progress_bar(options, workload.stop, "pre-fill", &fill);
    let producers = produce_phase(driver, workload, topics, &fill, false).await?;
    finish_bar(bar);
    for group in groups {
        driver
            .prepare_group(topics, workload, group, StartAt::Earliest)
            .await?;
    }
    let shared = Shared::new(workload, workload.warmup);
    shared.sent.store(producers.sent, Ordering::SeqCst);
    shared.producers_done.store(true, Ordering::SeqCst);
    let expected = Stop::Messages(producers.sent * u64::from(workload.consumer_groups));
    let bar = progress_bar(options, expected, "consume", &shared);
    let handles = open_consumers(driver, workload, topics, groups, StartAt::Earliest).await?;
    tokio::time::sleep(driver.settle_delay(workload.consumers)).await;
    shared.start_measuring();
    let consumers = consume_phase(handles, groups.len(), &shared, false, options).await;
    finish_bar(bar);
    let consumers = consumers?;
    let mut report = Report::new(workload);
    report.add_producers(&producers.outcome_summary());
    add_consumers(&mut report, &consumers, &producers.sent_per_producer);
    let phase = consumers.phase(&shared);
    if phase.window_messages == 0 && report.lost == 0 {
        return Err(RunError::NothingMeasured {
            warmup_ms: workload.warmup.as_millis(),
        });
    }
    report.set_throughput(phase, workload.message_size_bytes);
    Ok(report)
}

async fn run_pubsub<D: Driver>(
    driver: &Arc<D>,
    workload: &Workload,
    options: &RunOptions,
    topics: &[String],
    groups: &[String],
) -> Result<Report, RunError> {
    for group in groups {
        driver
            .prepare_group(topics, workload, group, StartAt::Latest)
            .await?;
    }
    // Consumers open before anything is produced, starting at the end, so they see
    // exactly this run's messages.
    let handles = open_consumers(driver, workload, topics, groups, StartAt::Latest).await?;
    tokio::time::sleep(driver.settle_delay(workload.consumers)).await;
    let shared = Shared::new(workload, workload.warmup);
    let consuming = {
        let (group_count, shared, options) = (groups.len(), shared.clone(), options.clone());
        tokio::spawn(
            async move { consume_phase(handles, group_count, &shared, true, &options).await },
        )
    };
    let bar = progress_bar(options, workload.stop, "pubsub", &shared);
    let producers = produce_phase(driver, workload, topics, &shared, true).await;
    if producers.is_err() {
        shared.abort.store(true, Ordering::SeqCst);
    }
    shared
        .producers_done_ns
        .store(shared.clock.now_ns(), Ordering::SeqCst);
    shared.producers_done.store(true, Ordering::SeqCst);
    let consumers = consuming.await.map_err(|e| RunError::Task(e.to_string()))?;
    finish_bar(bar);
    let producers = producers?;
    let consumers = consumers?;
    let mut report = Report::new(workload);
    report.add_producers(&producers.outcome_summary());
    report.publish_latency_us = producers.latency.percentiles();
    add_consumers(&mut report, &consumers, &producers.sent_per_producer);
    report.e2e_latency_us = consumers.latency.percentiles();
    let phase = consumers.phase(&shared);
    if phase.window_messages == 0 && report.lost == 0 {
        return Err(RunError::NothingMeasured {
            warmup_ms: workload.warmup.as_millis(),
        });
    }
    report.set_throughput(phase, workload.message_size_bytes);
    Ok(report)
}

/// Every producer's outcome, merged.
#[derive(Debug, Default)]
struct Producers {
    sent: u64,
    acked: u64,
    failed: u64,
    first_error: Option<String>,
    sent_per_producer: Vec<u64>,
    latency: Latency,
    window: Window,
}

impl Producers {
    fn outcome_summary(&self) -> crate::report::ProducerSummary {
        crate::report::ProducerSummary {
            sent: self.sent,
            acked: self.acked,
            failed: self.failed,
            first_error: self.first_error.clone(),
        }
    }
}

async fn produce_phase<D: Driver>(
    driver: &Arc<D>,
    workload: &Workload,
    topics: &[String],
    shared: &Arc<Shared>,
    measure: bool,
) -> Result<Producers, RunError> {
    // Open every connection first so connecting is not part of the measurement.
    let mut handles = Vec::with_capacity(workload.producers as usize);
    for index in 0..workload.producers {
        let topic = &topics[workload.producer_topic(index) as usize];
        handles.push(driver.producer(topic, workload).await?);
    }
    shared.start_measuring();
    let tasks: Vec<_> = handles
        .into_iter()
        .enumerate()
        .map(|(index, handle)| {
            let (workload, shared) = (workload.clone(), shared.clone());
            // `index` < producers <= MAX_CLIENTS, so it fits a u32.
            tokio::spawn(produce(handle, index as u32, workload, shared, measure))
        })
        .collect();
    let mut merged = Producers::default();
    for task in join_all(tasks).await {
        let outcome = task.map_err(|e| RunError::Task(e.to_string()))??;
        merged.sent += outcome.sent;
        merged.acked += outcome.acked;
        merged.failed += outcome.failed;
        merged.first_error = merged.first_error.or(outcome.first_error);
        merged.sent_per_producer.push(outcome.sent);
        merged.latency.merge(&outcome.latency);
        merged.window.merge(&outcome.window);
    }
    Ok(merged)
}

/// One producer's loop: pace, stamp, send, keep `in_flight_batches` acks pending.
async fn produce<P: ProducerHandle>(
    mut producer: P,
    index: u32,
    workload: Workload,
    shared: Arc<Shared>,
    measure: bool,
) -> Result<ProducerOutcome, DriverError> {
    let clock = shared.clock;
    let quota = workload.producer_quota(index);
    let deadline_ns = match workload.stop {
        Stop::Duration(d) => Some(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        Stop::Messages(_) => None,
    };
    let rate = workload.producer_rate();
    let batch_records = workload.batch_records as u64;
    let mut partition = index % workload.partitions;
    let start_ns = clock.now_ns();
    let mut outcome = ProducerOutcome::default();
    let mut batch_index = 0u64;
    let mut acks = tokio::task::JoinSet::new();
    let record = |outcome: &mut ProducerOutcome, done: (u64, u32, u64, Result<(), DriverError>)| {
        let (sent_ns, count, acked_ns, result) = done;
        let count = u64::from(count);
        match result {
            Ok(()) => {
                outcome.acked += count;
                shared.acked.fetch_add(count, Ordering::Relaxed);
                if measure && sent_ns >= shared.warmup_end_ns {
                    outcome
                        .latency
                        .record(acked_ns.saturating_sub(sent_ns), count);
                    outcome.window.add(count, acked_ns);
                }
            }
            Err(e) => {
                outcome.failed += count;
                outcome.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    };
    loop {
        let remaining = quota.map_or(batch_records, |q| (q - outcome.sent).min(batch_records));
        if remaining == 0 || shared.abort.load(Ordering::Relaxed) {
            break;
        }
        if deadline_ns.is_some_and(|deadline| clock.now_ns() >= deadline) {
            break;
        }
        let intended_ns = rate
            .map(|rate| start_ns + scheduled_send_ns(batch_index, workload.batch_records, rate));
        if let Some(intended) = intended_ns {
            if intended > clock.now_ns() + TIMER_SLACK_NS {
                tokio::time::sleep_until(clock.instant_at(intended - TIMER_SLACK_NS).into()).await;
            }
        }
        while acks.len() >= workload.in_flight_batches {
            match acks.join_next().await {
                Some(done) => record(
                    &mut outcome,
                    done.map_err(|e| DriverError::Unsupported(e.to_string()))?,
                ),
                None => break,
            }
        }
        let now = clock.now_ns();
        let sent_ns = intended_ns.map_or(now, |intended| intended.min(now));
        // `remaining` <= batch_records <= MAX_BATCH_RECORDS, so it fits a u32.
        let count = remaining as u32;
        let batch = OutBatch {
            partition,
            producer: index,
            first_sequence: outcome.sent,
            count,
            sent_ns,
        };
        let mut ack = producer.send(batch).await?;
        // Poll the acknowledgement once here: a driver whose future sends its request
        // on first poll (brokerd's raw producer, Redis) then sends it now, as stamped,
        // rather than when the task below is first scheduled.
        let first = std::future::poll_fn(|cx| Poll::Ready(ack.as_mut().poll(cx))).await;
        // A task per batch: the acknowledgement is timed when it arrives, even while
        // this loop sleeps for its pacing.
        acks.spawn(async move {
            let result = match first {
                Poll::Ready(result) => result,
                Poll::Pending => ack.await,
            };
            (sent_ns, count, clock.now_ns(), result)
        });
        outcome.sent += remaining;
        shared.sent.fetch_add(remaining, Ordering::Relaxed);
        batch_index += 1;
        partition = (partition + 1) % workload.partitions;
    }
    while let Some(done) = acks.join_next().await {
        record(
            &mut outcome,
            done.map_err(|e| DriverError::Unsupported(e.to_string()))?,
        );
    }
    producer.close().await?;
    Ok(outcome)
}

/// Every consumer's outcome, merged per group.
#[derive(Debug, Default)]
struct Consumers {
    /// Per group, merged over its members.
    groups: Vec<(DeliveryTracker, Window)>,
    latency: Latency,
    corrupt: u64,
    first_error: Option<String>,
}

impl Consumers {
    /// The throughput phase: the first group's receipts.
    fn phase(&self, shared: &Shared) -> Phase {
        let (tracker, window) = self.groups.first().cloned().unwrap_or_default();
        Phase {
            messages: tracker.received(),
            window_messages: window.messages,
            window_ns: window.last_ns.saturating_sub(shared.window_start_ns()),
        }
    }
}

fn add_consumers(report: &mut Report, consumers: &Consumers, sent_per_producer: &[u64]) {
    let mut total = Delivery::default();
    for (tracker, _) in &consumers.groups {
        let d = tracker.finish(sent_per_producer);
        total.received += d.received;
        total.lost += d.lost;
        total.duplicates += d.duplicates;
        total.unexpected += d.unexpected;
    }
    report.received = total.received;
    report.lost = total.lost;
    report.duplicates = total.duplicates;
    report.unexpected = total.unexpected;
    report.corrupt_payloads = consumers.corrupt;
    if report.first_error.is_none() {
        report.first_error = consumers.first_error.clone();
    }
}

/// Opens every consumer of every group (before anything is produced, for pub/sub).
async fn open_consumers<D: Driver>(
    driver: &Arc<D>,
    workload: &Workload,
    topics: &[String],
    groups: &[String],
    start: StartAt,
) -> Result<Vec<(usize, D::Consumer)>, RunError> {
    let mut handles = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for member in 0..workload.consumers {
            let spec = ConsumerSpec {
                topics: topics.to_vec(),
                group: group.clone(),
                member,
                members: workload.consumers,
                start,
            };
            handles.push((g, driver.consumer(spec, workload).await?));
        }
    }
    Ok(handles)
}

/// Runs opened consumers until each group has everything or the drain timeout passed.
async fn consume_phase<C: ConsumerHandle>(
    handles: Vec<(usize, C)>,
    group_count: usize,
    shared: &Arc<Shared>,
    e2e: bool,
    options: &RunOptions,
) -> Result<Consumers, RunError> {
    let groups = vec![(); group_count];
    let group_received: Arc<Vec<AtomicU64>> =
        Arc::new(groups.iter().map(|_| AtomicU64::new(0)).collect());
    let drain_timeout_ns = u64::try_from(options.drain_timeout.as_nanos()).unwrap_or(u64::MAX);
    let tasks: Vec<_> = handles
        .into_iter()
        .map(|(g, handle)| {
            let (shared, group_received) = (shared.clone(), group_received.clone());
            tokio::spawn(async move {
                let outcome =
                    consume(handle, g, shared, group_received, e2e, drain_timeout_ns).await;
                (g, outcome)
            })
        })
        .collect();
    let mut merged = Consumers {
        groups: vec![(DeliveryTracker::new(), Window::default()); groups.len()],
        ..Consumers::default()
    };
    for task in join_all(tasks).await {
        let (g, outcome) = task.map_err(|e| RunError::Task(e.to_string()))?;
        let outcome = outcome?;
        merged.groups[g].0.merge(&outcome.tracker);
        merged.groups[g].1.merge(&outcome.window);
        merged.latency.merge(&outcome.latency);
        merged.corrupt += outcome.corrupt;
        merged.first_error = merged.first_error.take().or(outcome.first_error);
    }
    Ok(merged)
}

/// Whether some producer can have sent `(producer, sequence)` by now: each producer's
/// sequences count up from 0, and at most one batch per producer is out before `sent`
/// counts it.
fn possible(shared: &Shared, producer: u32, sequence: u64) -> bool {
    let slack = u64::from(shared.producers) * shared.batch_records;
    producer < shared.producers && sequence < shared.sent.load(Ordering::Acquire) + slack
}

/// One consumer's loop: receive, decode, account, until its group has everything
/// that was sent or nothing more arrives within the drain timeout.
async fn consume<C: ConsumerHandle>(
    mut consumer: C,
    group: usize,
    shared: Arc<Shared>,
    group_received: Arc<Vec<AtomicU64>>,
    e2e: bool,
    drain_timeout_ns: u64,
) -> Result<ConsumerOutcome, DriverError> {
    let clock = shared.clock;
    let mut outcome = ConsumerOutcome::default();
    let mut last_message_ns = 0u64;
    loop {
        let mut got = 0u64;
        {
            let outcome = &mut outcome;
            let warmup_end_ns = shared.warmup_end_ns;
            let mut sink = |payload: &[u8]| {
                let now = clock.now_ns();
                got += 1;
                match read_header(payload) {
                    Ok(header) if !possible(&shared, header.producer, header.sequence) => {
                        outcome.tracker.record_impossible();
                    }
                    Ok(header) => {
                        // A second copy is reported as a duplicate, and counts toward
                        // neither throughput nor latency.
                        if !outcome.tracker.record(header.producer, header.sequence) {
                            return;
                        }
                        if e2e {
                            if header.sent_ns >= warmup_end_ns {
                                outcome
                                    .latency
                                    .record(now.saturating_sub(header.sent_ns), 1);
                                outcome.window.add(1, now);
                            }
                        } else if now >= warmup_end_ns {
                            outcome.window.add(1, now);
                        }
                    }
                    Err(e) => {
                        outcome.corrupt += 1;
                        outcome.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            };
            consumer
                .receive(Duration::from_millis(RECEIVE_WAIT_MS), &mut sink)
                .await?;
        }
        let now = clock.now_ns();
        if got > 0 {
            last_message_ns = now;
            shared.received.fetch_add(got, Ordering::Relaxed);
            group_received[group].fetch_add(got, Ordering::Relaxed);
        }
        if shared.abort.load(Ordering::Relaxed) {
            break;
        }
        if shared.producers_done.load(Ordering::SeqCst) {
            let sent = shared.sent.load(Ordering::SeqCst);
            if group_received[group].load(Ordering::Relaxed) >= sent {
                break;
            }
            let quiet_since = last_message_ns.max(shared.producers_done_ns.load(Ordering::SeqCst));
            if now.saturating_sub(quiet_since) > drain_timeout_ns {
                break;
            }
        }
    }
    consumer.close().await?;
    Ok(outcome)
}

fn progress_bar(
    options: &RunOptions,
    stop: Stop,
    label: &str,
    shared: &Arc<Shared>,
) -> Option<(ProgressBar, tokio::task::JoinHandle<()>)> {
    use std::io::IsTerminal;
    if !options.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match stop {
        Stop::Messages(n) => ProgressBar::new(n),
        Stop::Duration(d) => ProgressBar::new(d.as_secs().max(1)),
    };
    let template = match stop {
        Stop::Messages(_) => "{prefix:>9} [{bar:30}] {pos}/{len} msgs  {per_sec}  {elapsed}",
        Stop::Duration(_) => "{prefix:>9} [{bar:30}] {pos}/{len} s  {msg}",
    };
    // The templates are constants; a bad one would be caught by the first run.
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_string());
    let (ticker_bar, shared) = (bar.clone(), shared.clone());
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(PROGRESS_TICK_MS)).await;
            match stop {
                Stop::Messages(_) => {
                    let done = shared
                        .acked
                        .load(Ordering::Relaxed)
                        .max(shared.received.load(Ordering::Relaxed));
                    ticker_bar.set_position(done);
                }
                Stop::Duration(_) => {
                    ticker_bar.set_position(shared.clock.now_ns() / 1_000_000_000);
                    ticker_bar.set_message(format!(
                        "{} acked, {} received",
                        shared.acked.load(Ordering::Relaxed),
                        shared.received.load(Ordering::Relaxed)
                    ));
                }
            }
        }
    });
    Some((bar, ticker))
}

fn finish_bar(bar: Option<(ProgressBar, tokio::task::JoinHandle<()>)>) {
    if let Some((bar, ticker)) = bar {
        ticker.abort();
        bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_some_producer_can_have_sent_are_possible() {
        let workload = Workload {
            producers: 2,
            batch_records: 10,
            ..crate::workload::tests::sample()
        };
        let shared = Shared::new(&workload, Duration::ZERO);
        shared.sent.store(100, Ordering::SeqCst);
        assert!(possible(&shared, 0, 0));
        assert!(
            possible(&shared, 1, 119),
            "one uncounted batch per producer"
        );
        assert!(!possible(&shared, 1, 120));
        assert!(!possible(&shared, 2, 0), "no third producer");
        assert!(!possible(&shared, u32::MAX, u64::MAX));
    }
}
