//! `brokerctl groups [list|describe G]`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use client::protocol::ops::group::GroupMode;
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
}

/// Runs `groups`.
pub async fn run(client: &Client, args: GroupsArgs, json: bool) -> anyhow::Result<ExitCode> {
    match args.command.unwrap_or(GroupsCommand::List) {
        GroupsCommand::List => {
            let groups = client.list_groups().await?;
            if json {
                print_json(&list_json(&groups))?;
            } else {
                out!("{}", list_table(&groups))?;
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

fn list_table(groups: &[GroupSummary]) -> String {
    let mut table = Table::new(&["GROUP", "TOPIC", "MODE", "MEMBERS", "GENERATION"]);
    for g in groups {
        table.row(vec![
            g.group.clone(),
            g.topic.clone(),
            mode(g.mode).into(),
            g.members.to_string(),
            g.generation.to_string(),
        ]);
    }
    table.render()
}

fn list_json(groups: &[GroupSummary]) -> serde_json::Value {
    groups
        .iter()
        .map(|g| {
            json!({
                "group": g.group,
                "topic": g.topic,
                "mode": mode(g.mode),
                "members": g.members,
                "generation": g.generation,
            })
        })
        .collect()
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
