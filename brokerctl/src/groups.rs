//! `brokerctl groups [list|describe G|delete G|reset-offsets G --to ..|purge G]`.

use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use client::protocol::ops::group::GroupMode;
use client::protocol::ops::group_admin::{ResetOffsetsResponse, ResetTarget};
use client::{Client, DescribeGroupResponse, GroupSummary};
use serde_json::json;

use crate::print_json;
use crate::table::Table;

/// Arguments of `groups`.
#[derive(Debug, Args)]
pub struct GroupsArgs {
    #[command(subcommand)]
    command: Option<GroupsCommand>,
}

#[derive(Debug, Subcommand)]
enum GroupsCommand {
    /// List consumer groups (the default).
    List,
    /// Show a group's members, assignments, committed offsets and lag per partition.
    Describe {
        /// Group name.
        group: String,
    },
    /// Delete a group with its committed offsets or queue state (refused while it
    /// has active members).
    Delete {
        /// Group name.
        group: String,
    },
    /// Move a stream group's committed offsets (refused while it has active members).
    ResetOffsets {
        /// Group name.
        group: String,
        /// Where to: earliest, latest, an offset (clamped to what each partition
        /// holds), or an RFC 3339 time such as 2026-12-01T10:00:00Z (the first record
        /// at or after it).
        #[arg(long, value_name = "earliest|latest|OFFSET|DATETIME")]
        to: String,
        /// Only this partition (default: every partition).
        #[arg(long)]
        partition: Option<u32>,
        /// The group's topic; needed only to create the offsets of a group that does
        /// not exist yet.
        #[arg(long)]
        topic: Option<String>,
    },
    /// Drop everything a queue group has pending, in flight or waiting for a retry,
    /// so it starts at the end of every partition (refused while it has active
    /// members).
    Purge {
        /// Group name.
        group: String,
    },
}

/// The `--to` of `reset-offsets`.
fn reset_target(to: &str) -> anyhow::Result<ResetTarget> {
    match to {
        "earliest" => Ok(ResetTarget::Earliest),
        "latest" => Ok(ResetTarget::Latest),
        _ => {
            if let Ok(offset) = to.parse::<u64>() {
                return Ok(ResetTarget::Offset(offset));
            }
            crate::when::parse(to)
                .map(|when| ResetTarget::Timestamp(when.to_ms(crate::when::now_ms())))
                .ok_or_else(|| {
                    anyhow!(
                        "--to {to:?}: expected earliest, latest, an offset, an RFC 3339 time such as 2026-12-01T10:00:00Z, or a time ago such as -10m"
                    )
                })
        }
    }
}

/// Runs `groups`.
pub async fn run(client: &Client, args: GroupsArgs, json: bool) -> anyhow::Result<ExitCode> {
    match args.command.unwrap_or(GroupsCommand::List) {
        GroupsCommand::List => {
            let groups = client.list_groups().await?;
            let mut lags = Vec::with_capacity(groups.len());
            for g in &groups {
                lags.push(total_lag(client, &g.group).await);
            }
            if json {
                print_json(&list_json(&groups, &lags))?;
            } else {
                out!("{}", list_table(&groups, &lags))?;
            }
        }
        GroupsCommand::Delete { group } => {
            client.delete_group(&group).await?;
            if json {
                print_json(&json!({ "group": group, "deleted": true }))?;
            } else {
                outln!("deleted group {group}")?;
            }
        }
        GroupsCommand::ResetOffsets {
            group,
            to,
            partition,
            topic,
        } => {
            let target = reset_target(&to)?;
            let topic = topic.unwrap_or_default();
            let reset = client
                .reset_offsets(&group, &topic, partition, target)
                .await
                .with_context(|| format!("resetting the offsets of group {group}"))?;
            if json {
                print_json(&reset_json(&group, &reset))?;
            } else {
                out!("{}", reset_text(&group, &reset))?;
            }
        }
        GroupsCommand::Purge { group } => {
            let dropped = client.purge_group(&group).await?;
            if json {
                print_json(&json!({ "group": group, "dropped": dropped }))?;
            } else {
                outln!("purged group {group}: {dropped} message(s) dropped; it starts at the end")?;
            }
        }
        GroupsCommand::Describe { group } => {
            let group = client.describe_group(&group).await?;
            if json {
                print_json(&describe_json(&group))?;
            } else {
                out!("{}", describe_text(&group))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn mode(mode: GroupMode) -> &'static str {
    match mode {
        GroupMode::Stream => "stream",
        GroupMode::Queue => "queue",
    }
}

/// A group's lag summed over its partitions (end minus committed offset, or minus
/// the ack floor for queue groups), from DescribeGroup; `None` if that fails (say,
/// the group went away between the listing and the question).
async fn total_lag(client: &Client, group: &str) -> Option<u64> {
    let described = client.describe_group(group).await.ok()?;
    Some(described.partitions.iter().map(|p| p.lag).sum())
}

fn list_table(groups: &[GroupSummary], lags: &[Option<u64>]) -> String {
    let mut table = Table::new(&["GROUP", "TOPIC", "MODE", "MEMBERS", "GENERATION", "LAG"]);
    for (g, lag) in groups.iter().zip(lags) {
        table.row(vec![
            g.group.clone(),
            g.topic.clone(),
            mode(g.mode).into(),
            g.members.to_string(),
            g.generation.to_string(),
            lag.map_or_else(|| "-".into(), |l| l.to_string()),
        ]);
    }
    table.render()
}

fn list_json(groups: &[GroupSummary], lags: &[Option<u64>]) -> serde_json::Value {
    groups
        .iter()
        .zip(lags)
        .map(|(g, lag)| {
            json!({
                "group": g.group,
                "topic": g.topic,
                "mode": mode(g.mode),
                "members": g.members,
                "generation": g.generation,
                "lag": lag,
            })
        })
        .collect()
}

fn reset_text(group: &str, reset: &ResetOffsetsResponse) -> String {
    let mut out = format!("reset group {group} on topic {}\n\n", reset.topic);
    let mut table = Table::new(&["PARTITION", "OFFSET"]);
    for o in &reset.offsets {
        table.row(vec![o.partition.to_string(), o.offset.to_string()]);
    }
    out.push_str(&table.render());
    out
}

fn reset_json(group: &str, reset: &ResetOffsetsResponse) -> serde_json::Value {
    let offsets: Vec<serde_json::Value> = reset
        .offsets
        .iter()
        .map(|o| json!({ "partition": o.partition, "offset": o.offset }))
        .collect();
    json!({ "group": group, "topic": reset.topic, "offsets": offsets })
}

fn partition_list(partitions: &[u32]) -> String {
    if partitions.is_empty() {
        return "-".into();
    }
    let parts: Vec<String> = partitions.iter().map(u32::to_string).collect();
    parts.join(",")
}

fn describe_text(group: &DescribeGroupResponse) -> String {
    let mut out = format!(
        "group {} on topic {} ({} mode, generation {})\n\n",
        group.group,
        group.topic,
        mode(group.mode),
        group.generation
    );
    let mut members = Table::new(&["MEMBER", "CLIENT", "SESSION_MS", "PARTITIONS"]);
    for m in &group.members {
        members.row(vec![
            m.member_id.clone(),
            m.client_name.clone(),
            m.session_timeout_ms.to_string(),
            partition_list(&m.partitions),
        ]);
    }
    out.push_str(&members.render());
    out.push('\n');
    let mut partitions = Table::new(&["PARTITION", "OWNER", "COMMITTED", "END", "LAG"]);
    for p in &group.partitions {
        let owner = group
            .members
            .iter()
            .find(|m| m.partitions.contains(&p.partition))
            .map_or_else(|| "-".to_string(), |m| m.member_id.clone());
        partitions.row(vec![
            p.partition.to_string(),
            owner,
            p.committed_offset
                .map_or_else(|| "-".into(), |o| o.to_string()),
            p.end_offset.to_string(),
            p.lag.to_string(),
        ]);
    }
    out.push_str(&partitions.render());
    if group.mode == GroupMode::Queue {
        out.push('\n');
        let mut queue = Table::new(&[
            "PARTITION",
            "ACKED_BELOW",
            "IN_FLIGHT",
            "WAITING_RETRY",
            "DEAD_LETTERED",
        ]);
        for p in &group.partitions {
            let counts = p.queue.unwrap_or_default();
            queue.row(vec![
                p.partition.to_string(),
                p.committed_offset
                    .map_or_else(|| "-".into(), |o| o.to_string()),
                counts.in_flight.to_string(),
                counts.waiting_retry.to_string(),
                counts.dead_lettered.to_string(),
            ]);
        }
        out.push_str(&queue.render());
    }
    out
}

fn describe_json(group: &DescribeGroupResponse) -> serde_json::Value {
    let members: Vec<serde_json::Value> = group
        .members
        .iter()
        .map(|m| {
            json!({
                "member_id": m.member_id,
                "client_name": m.client_name,
                "session_timeout_ms": m.session_timeout_ms,
                "partitions": m.partitions,
            })
        })
        .collect();
    let partitions: Vec<serde_json::Value> = group
        .partitions
        .iter()
        .map(|p| {
            json!({
                "partition": p.partition,
                "committed_offset": p.committed_offset,
                "end_offset": p.end_offset,
                "lag": p.lag,
                "in_flight": p.queue.map(|q| q.in_flight),
                "waiting_retry": p.queue.map(|q| q.waiting_retry),
                "dead_lettered": p.queue.map(|q| q.dead_lettered),
            })
        })
        .collect();
    json!({
        "group": group.group,
        "topic": group.topic,
        "mode": mode(group.mode),
        "generation": group.generation,
        "members": members,
        "partitions": partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use client::protocol::ops::group::{GroupPartitionInfo, MemberInfo};

    fn group() -> DescribeGroupResponse {
        DescribeGroupResponse {
            group: "billing".into(),
            topic: "orders".into(),
            mode: GroupMode::Stream,
            generation: 4,
            members: vec![MemberInfo {
                member_id: "cli-1".into(),
                client_name: "cli".into(),
                session_timeout_ms: 3000,
                partitions: vec![0],
            }],
            partitions: vec![
                GroupPartitionInfo {
                    partition: 0,
                    committed_offset: Some(3),
                    end_offset: 10,
                    lag: 7,
                    queue: None,
                },
                GroupPartitionInfo {
                    partition: 1,
                    committed_offset: None,
                    end_offset: 5,
                    lag: 5,
                    queue: None,
                },
            ],
        }
    }

    #[test]
    fn describe_shows_owner_committed_and_lag() {
        let text = describe_text(&group());
        assert!(text.starts_with("group billing on topic orders (stream mode, generation 4)"));
        assert!(
            text.contains("cli-1   cli           3000           0"),
            "{text}"
        );
        assert!(text.contains("0  cli-1          3   10    7"), "{text}");
        assert!(text.contains("1  -              -    5    5"), "{text}");
        let value = describe_json(&group());
        assert_eq!(value["partitions"][0]["lag"], 7);
        assert!(value["partitions"][1]["committed_offset"].is_null());
        assert_eq!(value["members"][0]["partitions"][0], 0);
    }
}
