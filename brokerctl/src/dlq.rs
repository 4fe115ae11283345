//! `brokerctl dlq`: look at, replay and purge a topic's dead letters.
//!
//! Dead letters live in the topic's dead-letter topic (`<topic>.dlq` unless the topic
//! sets `dead_letter_topic`), partition 0, each with `dlq.*` headers naming where it
//! came from and why. Replaying produces a message back to its original topic and
//! partition (without the `dlq.*` headers, so it starts again at attempt 1) and then
//! deletes it from the dead-letter topic; purging deletes them all.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use client::protocol::batch::BatchBuilder;
use client::protocol::ops::produce::{AckLevel, PartitionSelector};
use client::{Client, ConsumerRecord};
use serde_json::json;

use crate::consume::record_json;
use crate::progress::{Progress, Unit, Work};
use crate::table::Table;

/// How long reading the dead-letter topic waits for data it knows is there.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `dlq`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DlqArgs {
    #[command(subcommand)]
    action: Option<DlqAction>,
    /// Topic whose dead letters to list.
    topic: Option<String>,
}

/// What to do with dead letters.
#[derive(Debug, Subcommand)]
enum DlqAction {
    /// List dead letters: origin, attempts, reason.
    List { topic: String },
    /// Print dead letters in full: value and headers.
    Peek {
        topic: String,
        /// At most this many.
        #[arg(long, default_value_t = 10)]
        count: u64,
    },
    /// Send dead letters back to their original topic (attempts start again) and
    /// remove them from the dead-letter topic, oldest first.
    Replay {
        topic: String,
        /// At most this many (default: all).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Delete every dead letter of the topic.
    Purge { topic: String },
}

/// A dead letter and where it came from.
struct DeadLetter {
    record: ConsumerRecord,
}

impl DeadLetter {
    fn header(&self, name: &str) -> Option<String> {
        self.record
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// The dead-letter topic of `topic`.
async fn dlq_topic(client: &Client, topic: &str) -> anyhow::Result<String> {
    let described = client.describe_topic(topic).await?;
    let name = described
        .config
        .iter()
        .find(|e| e.key == "dead_letter_topic")
        .map(|e| e.value.clone());
    Ok(name.unwrap_or_else(|| format!("{topic}.dlq")))
}

/// Every dead letter, oldest first (at most `limit`). `None` if there is no
/// dead-letter topic yet.
async fn read(
    client: &Client,
    dlq: &str,
    limit: Option<u64>,
) -> anyhow::Result<Option<(Vec<DeadLetter>, u64)>> {
    let described = match client.describe_topic(dlq).await {
        Ok(described) => described,
        Err(e) if e.code() == Some(client::ErrorCode::UnknownTopic) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(partition) = described.partitions.first() else {
        return Ok(Some((Vec::new(), 0)));
    };
    let available = partition.end_offset - partition.start_offset;
    let wanted = limit.map_or(available, |l| l.min(available));
    let mut reader = client.partition_reader(dlq, &[(0, partition.start_offset)]);
    let mut out = Vec::new();
    while (out.len() as u64) < wanted {
        let record = tokio::time::timeout(READ_TIMEOUT, reader.next()).await??;
        out.push(DeadLetter { record });
    }
    Ok(Some((out, partition.end_offset)))
}

/// Runs `dlq`.
pub async fn run(client: &Client, args: DlqArgs, json: bool) -> anyhow::Result<ExitCode> {
    let action = match (args.action, args.topic) {
        (Some(action), _) => action,
        (None, Some(topic)) => DlqAction::List { topic },
        (None, None) => {
            anyhow::bail!("name a topic: brokerctl dlq TOPIC (or dlq peek|replay|purge TOPIC)")
        }
    };
    match action {
        DlqAction::List { topic } => list(client, &topic, json).await,
        DlqAction::Peek { topic, count } => peek(client, &topic, count, json).await,
        DlqAction::Replay { topic, count } => replay(client, &topic, count, json).await,
        DlqAction::Purge { topic } => purge(client, &topic, json).await,
    }
}

async fn list(client: &Client, topic: &str, json: bool) -> anyhow::Result<ExitCode> {
    let dlq = dlq_topic(client, topic).await?;
    let letters = read(client, &dlq, None)
        .await?
        .map(|(l, _)| l)
        .unwrap_or_default();
    if json {
        for letter in &letters {
            let value = json!({
                "dlq_offset": letter.record.offset,
                "original_topic": letter.header("dlq.original_topic"),
                "original_partition": letter.header("dlq.original_partition").and_then(|v| v.parse::<u64>().ok()),
                "original_offset": letter.header("dlq.original_offset").and_then(|v| v.parse::<u64>().ok()),
                "group": letter.header("dlq.group"),
                "attempts": letter.header("dlq.attempts").and_then(|v| v.parse::<u64>().ok()),
                "reason": letter.header("dlq.reason"),
                "first_delivery_ms": letter.header("dlq.first_delivery_ms").and_then(|v| v.parse::<i64>().ok()),
                "last_delivery_ms": letter.header("dlq.last_delivery_ms").and_then(|v| v.parse::<i64>().ok()),
            });
            outln!("{value}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["DLQ_OFFSET", "ORIGIN", "GROUP", "ATTEMPTS", "REASON"]);
    for letter in &letters {
        let origin = format!(
            "{}/{}/{}",
            letter.header("dlq.original_topic").unwrap_or_default(),
            letter.header("dlq.original_partition").unwrap_or_default(),
            letter.header("dlq.original_offset").unwrap_or_default()
        );
        table.row(vec![
            letter.record.offset.to_string(),
            origin,
            letter.header("dlq.group").unwrap_or_default(),
            letter.header("dlq.attempts").unwrap_or_default(),
            letter.header("dlq.reason").unwrap_or_default(),
        ]);
    }
    out!("{}", table.render())?;
    outln!("{} dead letter(s) in {dlq}", letters.len())?;
    Ok(ExitCode::SUCCESS)
}

async fn peek(client: &Client, topic: &str, count: u64, json: bool) -> anyhow::Result<ExitCode> {
    let dlq = dlq_topic(client, topic).await?;
    let letters = read(client, &dlq, Some(count))
        .await?
        .map(|(l, _)| l)
        .unwrap_or_default();
    for letter in &letters {
        if json {
            outln!("{}", record_json(&letter.record))?;
        } else {
            outln!("--- {dlq} offset {}", letter.record.offset)?;
            for (name, value) in &letter.record.headers {
                outln!("{name}: {}", String::from_utf8_lossy(value))?;
            }
            outln!(
                "{}",
                String::from_utf8_lossy(letter.record.value.as_deref().unwrap_or_default())
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn replay(
    client: &Client,
    topic: &str,
    count: Option<u64>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let dlq = dlq_topic(client, topic).await?;
    let Some((letters, _)) = read(client, &dlq, count).await? else {
        outln!("no dead letters for {topic}")?;
        return Ok(ExitCode::SUCCESS);
    };
    let mut replayed = 0u64;
    let progress = Progress::start(Work::Replay, Some(letters.len() as u64), Unit::Messages);
    for letter in &letters {
        let original_topic = letter
            .header("dlq.original_topic")
            .unwrap_or_else(|| topic.to_string());
        let partition = letter
            .header("dlq.original_partition")
            .and_then(|p| p.parse().ok());
        let headers: Vec<(&str, &[u8])> = letter
            .record
            .headers
            .iter()
            .filter(|(k, _)| !k.starts_with("dlq."))
            .map(|(k, v)| (k.as_str(), v.as_ref()))
            .collect();
        let mut builder = BatchBuilder::new();
        builder.push(
            letter.record.timestamp_ms,
            letter.record.key.as_deref(),
            letter.record.value.as_deref(),
            &headers,
        )?;
        let selector = partition.map_or(PartitionSelector::Any, PartitionSelector::Partition);
        client
            .produce_batch(
                &original_topic,
                selector,
                AckLevel::Durable,
                READ_TIMEOUT,
                builder.finish(),
            )
            .await?;
        // Remove it from the dead-letter topic only once it is safely back.
        client
            .delete_records(&dlq, 0, letter.record.offset + 1)
            .await?;
        replayed += 1;
        progress.advance(1);
    }
    drop(progress);
    if json {
        outln!(
            "{}",
            json!({ "replayed": replayed, "dead_letter_topic": dlq })
        )?;
    } else {
        outln!("replayed {replayed} dead letter(s) from {dlq} to their original topic")?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn purge(client: &Client, topic: &str, json: bool) -> anyhow::Result<ExitCode> {
    let dlq = dlq_topic(client, topic).await?;
    let described = match client.describe_topic(&dlq).await {
        Ok(d) => d,
        Err(e) if e.code() == Some(client::ErrorCode::UnknownTopic) => {
            outln!("no dead letters for {topic}")?;
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    let mut purged = 0;
    for partition in &described.partitions {
        purged += partition.end_offset - partition.start_offset;
        client
            .delete_records(&dlq, partition.partition, partition.end_offset)
            .await?;
    }
    if json {
        outln!("{}", json!({ "purged": purged, "dead_letter_topic": dlq }))?;
    } else {
        outln!("purged {purged} dead letter(s) from {dlq}")?;
    }
    Ok(ExitCode::SUCCESS)
}
