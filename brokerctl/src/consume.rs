//! `brokerctl consume TOPIC`: print messages, as a group member or reading directly.
//!
//! With `--group`, the messages printed are exactly the ones committed: the consumer
//! hands out one record at a time, a record counts only once its reader took it from
//! standard output ([`Lines`]), and the commit covers those records and nothing
//! fetched beyond them (a fetch usually brings more than `--count`), nor the record
//! whose write failed.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use client::{
    Client, ClientError, Consumer, ConsumerConfig, ConsumerRecord, PartitionReader, QueueConsumer,
    QueueConsumerConfig, QueueMessage, StartFrom,
};
use serde_json::{json, Value};

use crate::follow::{self, Outage};
use crate::format::{parse_format, Format};
use crate::output::Lines;
use crate::progress::{Progress, Unit, Work};
use crate::when;

/// Session timeout of brokerctl's group membership: short, so that a killed
/// brokerctl gives its partitions back quickly.
const SESSION_TIMEOUT_MS: u64 = 3_000;
/// Heartbeat interval, well inside the session timeout.
const HEARTBEAT_INTERVAL_MS: u64 = 500;
/// How often a group member commits what it printed while it runs (and once more at
/// exit): what a broker restart or a crash may print again.
const COMMIT_INTERVAL_MS: u64 = 1_000;

/// Arguments of `consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Topic to read.
    topic: String,
    /// Read as a member of this consumer group, committing what was printed.
    #[arg(long)]
    group: Option<String>,
    /// Where to start: earliest, latest, an offset (every partition), or a time: the
    /// first record stamped at or after an RFC 3339 time (2026-12-01T10:00:00Z) or a
    /// time ago (-10m; units s, m, h, d). With --group, only for partitions where the
    /// group has no committed offset.
    #[arg(long, visible_alias = "offset", value_name = "earliest|latest|OFFSET|TIME|-AGE", default_value = "earliest", value_parser = parse_from, allow_hyphen_values = true)]
    from: StartFrom,
    /// Read only this partition (with --offset N: from offset N). Not with --group.
    #[arg(long, value_name = "P", conflicts_with = "group")]
    partition: Option<u32>,
    /// Print each message through this format instead of its value: %t topic,
    /// %p partition, %o offset, %T timestamp (ms), %k key, %K key length, %s value,
    /// %S value length, %h headers (NAME=VALUE,...), %% a %; escapes \n \r \t \\.
    /// Nothing is added: end it with \n. Like kcat -f. Not with --json.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    format: Option<Format>,
    /// Stop after this many messages.
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this many milliseconds without a message.
    #[arg(long = "timeout-ms", value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Take messages as a member of queue group --group and ack each one printed.
    #[arg(long, requires = "group")]
    queue: bool,
    /// With --queue: nack each message with this reason instead of acking it
    /// (it is retried, and dead-lettered once out of attempts).
    #[arg(long, value_name = "REASON", requires = "queue")]
    nack: Option<String>,
}

/// Parses `--from`.
fn parse_from(s: &str) -> Result<StartFrom, String> {
    match s {
        "earliest" => Ok(StartFrom::Earliest),
        "latest" => Ok(StartFrom::Latest),
        other => other
            .parse()
            .map(StartFrom::Offset)
            .or_else(|_| {
                when::parse(other)
                    .map(|when| StartFrom::Timestamp(when.to_ms(when::now_ms())))
                    .ok_or(())
            })
            .map_err(|()| {
                format!(
                    "expected earliest, latest, an offset, an RFC 3339 time \
                     (2026-12-01T10:00:00Z) or a time ago (-10m; s, m, h, d), got {s:?}"
                )
            }),
    }
}

/// Where records come from.
enum Source {
    Group(Box<Consumer>),
    Direct(PartitionReader),
}

impl Source {
    async fn next(&mut self) -> Result<ConsumerRecord, ClientError> {
        match self {
            Source::Group(consumer) => consumer.next().await,
            Source::Direct(reader) => reader.next().await,
        }
    }

    /// The next record, riding out a broker restart: a connection error is reported
    /// and retried (the consumer rejoins its group by itself, a direct reader keeps
    /// its positions). Cancel-safe.
    async fn next_following(&mut self, outage: &mut Outage) -> Result<ConsumerRecord, ClientError> {
        loop {
            match self.next().await {
                Ok(record) => {
                    outage.over();
                    return Ok(record);
                }
                Err(e) if e.is_connection_error() => outage.wait(&e).await,
                Err(e) => return Err(e),
            }
        }
    }

    fn is_group(&self) -> bool {
        matches!(self, Source::Group(_))
    }

    /// A group member commits what it printed every [`COMMIT_INTERVAL_MS`] while it
    /// runs, so that a broker restart (the member rejoins and starts again from the
    /// group's commits) or a crash prints again at most that much. Called only
    /// between records, when every record returned was printed. A failed commit is
    /// left to the next one, or to the one at exit.
    async fn commit_printed(&mut self) {
        if let Source::Group(consumer) = self {
            let _ = consumer.commit().await;
        }
    }
}

/// What waiting for the next record ended with.
enum Wait {
    /// A record or an error; `None` when `--timeout-ms` passed first.
    Next(Option<Result<ConsumerRecord, ClientError>>),
    /// SIGINT or SIGTERM.
    Stop,
    /// Time to commit what was printed.
    CommitDue,
}

/// Runs `consume`.
pub async fn run(client: &Client, args: ConsumeArgs, json: bool) -> anyhow::Result<ExitCode> {
    if args.queue {
        return run_queue(client, &args, json).await;
    }
    let mut source = match &args.group {
        Some(group) => {
            let config = ConsumerConfig::default()
                .start(args.from)
                .auto_commit(None)
                .session_timeout(Duration::from_millis(SESSION_TIMEOUT_MS))
                .heartbeat_interval(Duration::from_millis(HEARTBEAT_INTERVAL_MS));
            Source::Group(Box::new(client.consumer(&args.topic, group, config).await?))
        }
        None => {
            let topic = client.describe_topic(&args.topic).await?;
            if let Some(wanted) = args.partition {
                anyhow::ensure!(
                    topic.partitions.iter().any(|p| p.partition == wanted),
                    "topic {} has no partition {wanted} (it has {}, numbered from 0)",
                    args.topic,
                    topic.partitions.len()
                );
            }
            let positions: Vec<(u32, u64)> = topic
                .partitions
                .iter()
                .filter(|p| args.partition.is_none_or(|wanted| p.partition == wanted))
                .map(|p| {
                    let offset = match args.from {
                        StartFrom::Earliest => p.start_offset,
                        StartFrom::Latest => p.end_offset,
                        StartFrom::Offset(o) => o,
                        StartFrom::Timestamp(_) => p.start_offset, // sought below
                    };
                    (p.partition, offset)
                })
                .collect();
            let mut reader = client.partition_reader(&args.topic, &positions);
            if let StartFrom::Timestamp(timestamp_ms) = args.from {
                reader.seek_to_time(timestamp_ms).await?;
            }
            Source::Direct(reader)
        }
    };

    let confirm = args.group.is_some();
    let printed = print_records(client.addr(), &mut source, &args, json, confirm).await;

    // Commit exactly what the reader got, even if printing stopped on an error.
    if let Source::Group(consumer) = source {
        let mut consumer = *consumer;
        if let Ok(Stop::Unwritten(unprinted, _)) = &printed {
            // It was the last one returned: this cannot be refused.
            consumer.give_back(unprinted)?;
        }
        let committed = consumer.commit().await;
        let left = consumer.close().await;
        committed?;
        left?;
    }
    match printed? {
        Stop::Unwritten(_, e) if !is_clean_end(&e) => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The error a write ends with when a signal stopped the wait for the reader.
fn interrupted() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Interrupted,
        "stopped by a signal before the reader took the message",
    )
}

/// True for the ways printing ends that are not failures: a reader that went away
/// (`| head`) is how a pipe ends, and a signal is how a follower is stopped.
fn is_clean_end(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::Interrupted
    )
}

/// Why printing stopped.
#[derive(Debug)]
enum Stop {
    /// `--count` reached, `--timeout-ms` passed without a message, or SIGINT or
    /// SIGTERM.
    Done,
    /// Writing this record, taken from the source, failed: the reader of standard
    /// output went away (`BrokenPipe`), or the write itself failed. It never reached
    /// the reader.
    Unwritten(ConsumerRecord, std::io::Error),
}

/// Prints records until `--count`, `--timeout-ms`, SIGINT or SIGTERM, a reader that
/// went away, or an error other than a lost connection (waited out: [`Outage`]). With `confirm`, a line counts only once the reader took it
/// ([`Lines`]).
async fn print_records(
    addr: &str,
    source: &mut Source,
    args: &ConsumeArgs,
    json: bool,
    confirm: bool,
) -> anyhow::Result<Stop> {
    let timeout = args.timeout_ms.map(Duration::from_millis);
    let mut stdout = Lines::new(confirm);
    let stop = follow::stop_requested();
    tokio::pin!(stop);
    let mut outage = Outage::new(addr);
    let mut commit_due = tokio::time::interval(Duration::from_millis(COMMIT_INTERVAL_MS));
    commit_due.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    commit_due.tick().await; // the first tick is immediate; nothing is printed yet
    let is_group = source.is_group();
    let mut printed = 0u64;
    let progress = Progress::start(Work::Consume, args.count, Unit::Messages);
    while args.count.is_none_or(|n| printed < n) {
        // --timeout-ms counts from when this record is first waited for, across the
        // commits that interrupt the wait.
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let record = loop {
            let next = async {
                let next = source.next_following(&mut outage);
                match deadline {
                    Some(at) => tokio::time::timeout_at(at, next).await.ok(),
                    None => Some(next.await),
                }
            };
            let event = tokio::select! {
                next = next => Wait::Next(next),
                () = &mut stop => Wait::Stop,
                // Waiting is cancel-safe: stop it, commit, wait again.
                _ = commit_due.tick(), if is_group => Wait::CommitDue,
            };
            match event {
                Wait::Next(Some(record)) => break record?,
                // --timeout-ms without a message, or a signal.
                Wait::Next(None) | Wait::Stop => return Ok(Stop::Done),
                Wait::CommitDue => source.commit_printed().await,
            }
        };
        let output = render(&args.topic, &record, args.format.as_ref(), json);
        // The first failed write ends it: that record and all after it are unread.
        // A signal while the reader has yet to take the line stops here too; the line
        // is then not counted.
        let written = tokio::select! {
            written = stdout.write_message(&output) => written,
            () = &mut stop => Err(interrupted()),
        };
        if let Err(e) = written {
            return Ok(Stop::Unwritten(record, e));
        }
        printed += 1;
        progress.advance(1);
    }
    Ok(Stop::Done)
}

/// `consume --queue`: print each message, then ack it (or nack it with `--nack`).
async fn run_queue(client: &Client, args: &ConsumeArgs, json: bool) -> anyhow::Result<ExitCode> {
    let group = args.group.as_deref().unwrap_or_default();
    let config = QueueConsumerConfig {
        // One message at a time: whatever is not printed was never taken.
        max_in_flight: 1,
        session_timeout: Duration::from_millis(SESSION_TIMEOUT_MS),
        heartbeat_interval: Duration::from_millis(HEARTBEAT_INTERVAL_MS),
        ..QueueConsumerConfig::default()
    };
    let mut consumer = client.queue_consumer(&args.topic, group, config).await?;
    let timeout = args.timeout_ms.map(Duration::from_millis);
    let mut stdout = Lines::new(true);
    let stop = follow::stop_requested();
    tokio::pin!(stop);
    let mut outage = Outage::new(client.addr());
    let mut handled = 0u64;
    let progress = Progress::start(Work::Consume, args.count, Unit::Messages);
    let outcome: anyhow::Result<()> = async {
        while args.count.is_none_or(|n| handled < n) {
            let next = async {
                let next = next_message(&mut consumer, &mut outage);
                match timeout {
                    Some(t) => tokio::time::timeout(t, next).await.ok(),
                    None => Some(next.await),
                }
            };
            let message = tokio::select! {
                next = next => match next {
                    Some(message) => message?,
                    None => break, // --timeout-ms without a message
                },
                () = &mut stop => break,
            };
            let output = if json {
                let mut value = record_json(&message.record);
                value["attempt"] = json!(message.attempt);
                format!("{value}\n").into_bytes()
            } else {
                render(&args.topic, &message.record, args.format.as_ref(), false)
            };
            // Acked only once the reader took it; otherwise it stays unsettled and is
            // redelivered after we leave.
            let written = tokio::select! {
                written = stdout.write_message(&output) => written,
                () = &mut stop => Err(interrupted()),
            };
            match written {
                Ok(()) => {}
                Err(e) if is_clean_end(&e) => break,
                Err(e) => return Err(e.into()),
            }
            handled += 1;
            progress.advance(1);
            if args.count == Some(handled) {
                // The last one: settling it must not fetch another we would not print.
                consumer.stop_taking();
            }
            let settled = match &args.nack {
                Some(reason) => message.nack(reason).await,
                None => message.ack().await,
            };
            match settled {
                Ok(()) => {}
                // The broker went away between delivering and settling: it redelivers
                // the message (printed again: at least once), to us once we rejoin.
                Err(e) if e.is_connection_error() => eprintln!(
                    "brokerctl: could not settle a message, it will be delivered again: {e}"
                ),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
    .await;
    let left = consumer.close().await;
    outcome?;
    left?;
    Ok(ExitCode::SUCCESS)
}

/// The next queue message, riding out a broker restart (the consumer rejoins its
/// group by itself once the broker is back). Cancel-safe.
async fn next_message(
    consumer: &mut QueueConsumer,
    outage: &mut Outage,
) -> anyhow::Result<QueueMessage> {
    loop {
        match consumer.next().await {
            Ok(Some(message)) => {
                outage.over();
                return Ok(message);
            }
            Ok(None) => anyhow::bail!("the queue consumer ended"),
            Err(e) if e.is_connection_error() => outage.wait(&e).await,
            Err(e) => return Err(e.into()),
        }
    }
}

/// What one message prints as: through `--format`, as `--json`, or its value (as
/// UTF-8, lossily) and a newline.
fn render(topic: &str, record: &ConsumerRecord, format: Option<&Format>, json: bool) -> Vec<u8> {
    match format {
        Some(format) => format.render(topic, record),
        None if json => format!("{}\n", record_json(record)).into_bytes(),
        // Lossy, as documented: invalid UTF-8 becomes U+FFFD (--format writes raw bytes).
        None => {
            let value = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default());
            format!("{value}\n").into_bytes()
        }
    }
}

/// Refuses, before connecting, options that do not go together.
pub fn check(args: &ConsumeArgs, json: bool) -> Result<(), String> {
    if args.format.is_some() && json {
        return Err("--format and --json both say how to print; give one".to_string());
    }
    Ok(())
}

/// Bytes as JSON: a string if they are UTF-8, else an array of byte values (0-255).
fn bytes_json(bytes: Option<&[u8]>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => Value::String(text.to_string()),
            Err(_) => Value::Array(b.iter().map(|&byte| json!(byte)).collect()),
        },
    }
}

/// One message as the JSON object `--json` prints.
pub fn record_json(record: &ConsumerRecord) -> Value {
    let headers: Vec<Value> = record
        .headers
        .iter()
        .map(|(name, value)| json!({ "key": name, "value": bytes_json(Some(value)) }))
        .collect();
    json!({
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp_ms,
        "key": bytes_json(record.key.as_deref()),
        "headers": headers,
        "value": bytes_json(record.value.as_deref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn from_accepts_names_and_offsets() {
        assert_eq!(parse_from("earliest"), Ok(StartFrom::Earliest));
        assert_eq!(parse_from("latest"), Ok(StartFrom::Latest));
        assert_eq!(parse_from("42"), Ok(StartFrom::Offset(42)));
        assert!(parse_from("-1").is_err());
        assert!(parse_from("soon").is_err());
    }

    #[test]
    fn json_uses_strings_for_utf8_and_byte_arrays_otherwise() {
        let record = ConsumerRecord {
            partition: 2,
            offset: 7,
            timestamp_ms: 1_700_000_000_000,
            key: Some(Bytes::from_static(&[0xff, 0x00])),
            value: Some(Bytes::from_static(b"hello")),
            headers: vec![("trace".into(), Bytes::from_static(b"abc"))],
        };
        let value = record_json(&record);
        assert_eq!(
            value,
            json!({
                "partition": 2,
                "offset": 7,
                "timestamp": 1_700_000_000_000i64,
                "key": [255, 0],
                "headers": [{ "key": "trace", "value": "abc" }],
                "value": "hello",
            })
        );
        let tombstone = ConsumerRecord {
            key: None,
            value: None,
            headers: Vec::new(),
            ..record
        };
        let value = record_json(&tombstone);
        assert!(value["key"].is_null() && value["value"].is_null());
    }
}
