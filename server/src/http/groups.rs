//! Consumer groups over HTTP: a stateless "read as group G" that commits what the
//! client acknowledges, and the groups' administration (list, describe with lag,
//! delete, reset offsets), each through the request layer.
//!
//! Reading as a group: the gateway holds a stream member for the caller in the
//! group ([`super::members`]); a read heartbeats it and returns records of the
//! partitions it owns, **from the group's committed offsets** (the log start where
//! none is committed), with the commit that acknowledges them (`commit`: the
//! generation and, per partition, the offset after the last record returned). The
//! client posts that commit once it has processed the records. So:
//!
//! - nothing is lost: a record is committed past only by a commit the client sent,
//!   and a commit may not go past what a read handed out through the same member
//!   (the gateway remembers how far each read went);
//! - nothing is committed twice or backwards: a commit below the group's committed
//!   offset is refused (`409`), and ownership is the coordinator's check (a
//!   partition the member no longer owns, after a rebalance or the expiry of its
//!   session, is refused with `stale_generation` or `not_assigned`, and its records
//!   are read again by their new owner);
//! - a client that does not commit reads the same records again on its next read
//!   (at-least-once), whoever of the principal's clients reads.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use protocol::ops::fetch::FetchRequest;
use protocol::ops::group::{DescribeGroupRequest, GroupMode};
use protocol::ops::group_admin::{DeleteGroupRequest, ResetOffsetsRequest, ResetTarget};
use protocol::ops::offsets::{CommitOffsetsRequest, FetchOffsetsRequest, PartitionOffset};
use protocol::ops::topic::DescribeTopicRequest;
use protocol::ops::Empty;
use protocol::{ErrorCode, Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::{ApiPath, ApiQuery, JsonBody};
use super::call::{call, unexpected};
use super::error::{ApiError, ErrorBody};
use super::fetch::{DEFAULT_FETCH_BYTES, DEFAULT_FETCH_RECORDS, MAX_FETCH_RECORDS};
use super::queues::QueuePath;
use super::records::{self, FetchedRecord};
use super::state::HttpState;

/// A group in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GroupPath {
    /// The group.
    pub group: String,
}

/// Group read parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GroupReadParams {
    /// Records to answer at most (default 1000, at most 10000).
    #[serde(default)]
    pub max_records: Option<usize>,
    /// If no owned partition has records, wait up to this long, ms (default 0;
    /// capped by `limits.max_fetch_wait_ms`).
    #[serde(default)]
    pub max_wait_ms: u32,
}

/// One record read as a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRecord {
    /// Its partition.
    pub partition: u32,
    /// The record.
    pub record: FetchedRecord,
}

/// What acknowledges a read: post it to `.../commit` once the records are processed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// The group generation the records were read in.
    pub generation: u32,
    /// Per partition read, the offset after its last record.
    pub offsets: Vec<CommitOffset>,
}

/// One partition's offset to commit.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitOffset {
    /// The partition.
    pub partition: u32,
    /// The next offset to read: everything below is processed.
    pub offset: u64,
}

/// Records read as a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRead {
    /// The records, in offset order within each partition, from the group's
    /// committed offsets.
    pub records: Vec<GroupRecord>,
    /// What to commit once they are processed.
    pub commit: Commit,
    /// The partitions the caller's member owns now.
    pub partitions: Vec<u32>,
}

/// Reads records as a member of a stream group, from its committed offsets.
#[utoipa::path(get, path = "/v1/topics/{topic}/groups/{group}/records", tag = "groups",
    params(QueuePath, GroupReadParams),
    responses(
        (status = 200, description = "Records of the partitions the caller owns (perhaps none), and the commit that acknowledges them.", body = GroupRead),
        (status = 400, description = "Bad parameters, or the group is a queue group or reads another topic.", body = ErrorBody),
        (status = 404, description = "No such topic.", body = ErrorBody),
        (status = 429, description = "The gateway holds its limit of memberships, or the group its limit of members.", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn read(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<QueuePath>,
    ApiQuery(params): ApiQuery<GroupReadParams>,
) -> Result<Json<GroupRead>, ApiError> {
    let max_records = params.max_records.unwrap_or(DEFAULT_FETCH_RECORDS);
    if max_records == 0 || max_records > MAX_FETCH_RECORDS {
        return Err(ApiError::invalid(format!(
            "max_records must be from 1 to {MAX_FETCH_RECORDS}"
        )));
    }
    let broker = &state.broker;
    let member = state
        .members
        .member(broker, &caller, &path.topic, &path.group, false)
        .await?;
    let starts = read_positions(&state, &caller, &path, &member.partitions).await?;
    let mut records = Vec::new();
    let mut offsets = Vec::new();
    for waiting in [false, true] {
        if waiting && (params.max_wait_ms == 0 || starts.is_empty()) {
            break;
        }
        let reads = starts.iter().map(|&(partition, from)| {
            let wait = if waiting { params.max_wait_ms } else { 0 };
            Box::pin(fetch(&state, &caller, &path.topic, partition, from, wait))
        });
        let fetched = if waiting {
            // The first owned partition to get records answers.
            vec![futures_util::future::select_all(reads).await.0]
        } else {
            futures_util::future::join_all(reads).await
        };
        for result in fetched {
            let (partition, from, batches) = result?;
            let left = max_records - records.len();
            if left == 0 {
                break;
            }
            let (read, _) = records::fetched(&batches, from, left).map_err(|e| {
                ApiError::new(
                    ErrorCode::StorageError,
                    format!("a stored batch did not read back: {e}"),
                )
            })?;
            if let Some(last) = read.last() {
                let next = last.offset + 1;
                offsets.push(CommitOffset {
                    partition,
                    offset: next,
                });
                state.members.delivered(
                    &caller,
                    &path.topic,
                    &path.group,
                    &member.member_id,
                    partition,
                    next,
                );
            }
            records.extend(
                read.into_iter()
                    .map(|record| GroupRecord { partition, record }),
            );
        }
        if !records.is_empty() {
            break;
        }
    }
    Ok(Json(GroupRead {
        records,
        commit: Commit {
            generation: member.generation,
            offsets,
        },
        partitions: member.partitions,
    }))
}

/// Where a read of each owned partition starts: the committed offset, within what
/// the log holds (its start where none is committed, or retention passed it).
async fn read_positions(
    state: &HttpState,
    caller: &Caller,
    path: &QueuePath,
    owned: &[u32],
) -> Result<Vec<(u32, u64)>, ApiError> {
    let request = Request::FetchOffsets(FetchOffsetsRequest {
        group: path.group.clone(),
        topic: path.topic.clone(),
    });
    let committed = match call(&state.broker, caller, request).await? {
        Response::FetchOffsets(committed) => committed.offsets,
        other => return Err(unexpected(&other)),
    };
    let request = Request::DescribeTopic(DescribeTopicRequest {
        name: path.topic.clone(),
    });
    let described = match call(&state.broker, caller, request).await? {
        Response::DescribeTopic(described) => described,
        other => return Err(unexpected(&other)),
    };
    Ok(owned
        .iter()
        .filter_map(|&partition| {
            let info = described
                .partitions
                .iter()
                .find(|p| p.partition == partition)?;
            let committed = committed
                .iter()
                .find(|c| c.partition == partition)
                .and_then(|c| c.offset);
            let from = committed
                .unwrap_or(info.start_offset)
                .clamp(info.start_offset, info.end_offset);
            Some((partition, from))
        })
        .collect())
}

async fn fetch(
    state: &HttpState,
    caller: &Caller,
    topic: &str,
    partition: u32,
    from: u64,
    max_wait_ms: u32,
) -> Result<(u32, u64, bytes::Bytes), ApiError> {
    let request = Request::Fetch(FetchRequest {
        topic: topic.to_string(),
        partition,
        offset: from,
        max_bytes: DEFAULT_FETCH_BYTES,
        max_wait_ms,
    });
    match call(&state.broker, caller, request).await? {
        Response::Fetch(fetched) => Ok((partition, from, fetched.batches)),
        other => Err(unexpected(&other)),
    }
}

/// A committed acknowledgement.
#[derive(Debug, Serialize, ToSchema)]
pub struct Committed {
    /// What the group has committed now, per partition of the commit.
    pub offsets: Vec<CommitOffset>,
}

/// Commits what a group read returned, once the client processed it.
#[utoipa::path(post, path = "/v1/topics/{topic}/groups/{group}/commit", tag = "groups",
    params(QueuePath), request_body = Commit,
    responses(
        (status = 200, description = "Committed durably.", body = Committed),
        (status = 400, description = "A bad body.", body = ErrorBody),
        (status = 409, description = "Below what the group has committed (`stale_generation`), past what a read of the caller's membership handed out (`invalid_partition`: its session expired, or no read yet), or for a partition its member no longer owns (`stale_generation`, `invalid_partition`). Read again.", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn commit(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<QueuePath>,
    JsonBody(body): JsonBody<Commit>,
) -> Result<Json<Committed>, ApiError> {
    if body.offsets.is_empty() {
        return Ok(Json(Committed {
            offsets: Vec::new(),
        }));
    }
    let broker = &state.broker;
    let member = state
        .members
        .member(broker, &caller, &path.topic, &path.group, false)
        .await?;
    for offset in &body.offsets {
        let handed_out = member.delivered.get(&offset.partition).copied();
        if handed_out.is_none_or(|reached| offset.offset > reached) {
            return Err(ApiError::with_status(
                axum::http::StatusCode::CONFLICT,
                ErrorCode::InvalidPartition,
                format!(
                    "partition {}: offset {} is past what a read of this membership handed out; read again",
                    offset.partition, offset.offset
                ),
            ));
        }
    }
    let request = Request::FetchOffsets(FetchOffsetsRequest {
        group: path.group.clone(),
        topic: path.topic.clone(),
    });
    let committed = match call(broker, &caller, request).await? {
        Response::FetchOffsets(committed) => committed.offsets,
        other => return Err(unexpected(&other)),
    };
    for offset in &body.offsets {
        let current = committed
            .iter()
            .find(|c| c.partition == offset.partition)
            .and_then(|c| c.offset);
        if current.is_some_and(|c| offset.offset < c) {
            return Err(ApiError::with_status(
                axum::http::StatusCode::CONFLICT,
                ErrorCode::StaleGeneration,
                format!(
                    "partition {}: the group has committed {} already; a commit of {} would go back",
                    offset.partition,
                    current.unwrap_or_default(),
                    offset.offset
                ),
            ));
        }
    }
    let request = Request::CommitOffsets(CommitOffsetsRequest {
        group: path.group,
        member_id: member.member_id,
        generation: body.generation,
        topic: path.topic,
        offsets: body
            .offsets
            .iter()
            .map(|o| PartitionOffset {
                partition: o.partition,
                offset: o.offset,
            })
            .collect(),
    });
    // A partition the member does not own is a conflict to resolve by reading again,
    // not a missing resource.
    call(broker, &caller, request).await.map_err(|e| {
        if e.code() == ErrorCode::InvalidPartition {
            ApiError::with_status(axum::http::StatusCode::CONFLICT, e.code(), e.message())
        } else {
            e
        }
    })?;
    Ok(Json(Committed {
        offsets: body.offsets,
    }))
}

/// Leaves the caller's membership of the stream group now, instead of letting its
/// session expire: its partitions go to the other members at once.
#[utoipa::path(delete, path = "/v1/topics/{topic}/groups/{group}/membership", tag = "groups",
    params(QueuePath),
    responses(
        (status = 200, description = "Left (or held none).", body = super::queues::Left),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn leave(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<QueuePath>,
) -> Result<Json<super::queues::Left>, ApiError> {
    let left = state
        .members
        .leave(&state.broker, &caller, &path.topic, &path.group, false)
        .await?;
    Ok(Json(super::queues::Left { left }))
}

/// One group in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupSummary {
    /// The group.
    pub group: String,
    /// The topic it reads.
    pub topic: String,
    /// `stream` or `queue`.
    pub mode: String,
    /// Members now.
    pub members: u32,
    /// Its generation.
    pub generation: u32,
}

/// Groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupList {
    /// Every group the caller may describe.
    pub groups: Vec<GroupSummary>,
}

fn mode(mode: GroupMode) -> String {
    crate::group::mode_name(mode).to_string()
}

/// Lists the groups.
#[utoipa::path(get, path = "/v1/groups", tag = "groups",
    responses(
        (status = 200, description = "The groups.", body = GroupList),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
) -> Result<Json<GroupList>, ApiError> {
    let listed = match call(&state.broker, &caller, Request::ListGroups(Empty)).await? {
        Response::ListGroups(listed) => listed,
        other => return Err(unexpected(&other)),
    };
    Ok(Json(GroupList {
        groups: listed
            .groups
            .into_iter()
            .map(|g| GroupSummary {
                group: g.group,
                topic: g.topic,
                mode: mode(g.mode),
                members: g.members,
                generation: g.generation,
            })
            .collect(),
    }))
}

/// A member of a described group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupMember {
    /// Its id.
    pub member_id: String,
    /// The client name it joined with (`http` for the gateway's).
    pub client_name: String,
    /// Its session timeout, ms.
    pub session_timeout_ms: u32,
    /// The partitions it owns (stream mode).
    pub partitions: Vec<u32>,
}

/// A queue group's counts for one partition.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueCounts {
    /// Delivered, not yet settled.
    pub in_flight: u64,
    /// Waiting for a retry.
    pub waiting_retry: u64,
    /// Copied to the dead-letter topic.
    pub dead_lettered: u64,
}

/// One partition of a described group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupPartition {
    /// The partition.
    pub partition: u32,
    /// The committed offset (stream), or the offset below which everything is
    /// settled (queue); `null` if none yet.
    pub committed_offset: Option<u64>,
    /// The partition's end.
    pub end_offset: u64,
    /// Records between the committed offset (or the log start) and the end.
    pub lag: u64,
    /// Queue groups only.
    pub queue: Option<QueueCounts>,
}

/// A group in detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDescription {
    /// The group.
    pub group: String,
    /// The topic it reads.
    pub topic: String,
    /// `stream` or `queue`.
    pub mode: String,
    /// Its generation.
    pub generation: u32,
    /// Its members.
    pub members: Vec<GroupMember>,
    /// Its progress, per partition of the topic.
    pub partitions: Vec<GroupPartition>,
    /// A queue group's messages delivered again (after a nack or an expired lease)
    /// since the broker started; absent for a stream group.
    pub redeliveries: Option<u64>,
}

/// Describes a group: members, committed offsets, lag, queue counts.
#[utoipa::path(get, path = "/v1/groups/{group}", tag = "groups", params(GroupPath),
    responses(
        (status = 200, description = "The group.", body = GroupDescription),
        (status = 404, description = "No such group (`unknown_group`).", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn describe(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<GroupPath>,
) -> Result<Json<GroupDescription>, ApiError> {
    let request = Request::DescribeGroup(DescribeGroupRequest { group: path.group });
    let d = match call(&state.broker, &caller, request).await? {
        Response::DescribeGroup(described) => described,
        other => return Err(unexpected(&other)),
    };
    let redeliveries = (d.mode == GroupMode::Queue)
        .then(|| state.broker.queues.get(&d.group).map(|q| q.redeliveries()))
        .flatten();
    Ok(Json(GroupDescription {
        redeliveries,
        group: d.group,
        topic: d.topic,
        mode: mode(d.mode),
        generation: d.generation,
        members: d
            .members
            .into_iter()
            .map(|m| GroupMember {
                member_id: m.member_id,
                client_name: m.client_name,
                session_timeout_ms: m.session_timeout_ms,
                partitions: m.partitions,
            })
            .collect(),
        partitions: d
            .partitions
            .into_iter()
            .map(|p| GroupPartition {
                partition: p.partition,
                committed_offset: p.committed_offset,
                end_offset: p.end_offset,
                lag: p.lag,
                queue: p.queue.map(|q| QueueCounts {
                    in_flight: q.in_flight,
                    waiting_retry: q.waiting_retry,
                    dead_lettered: q.dead_lettered,
                }),
            })
            .collect(),
    }))
}

/// A deleted group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDeleted {
    /// The group.
    pub deleted: String,
}

/// Deletes a group without members, with its commits (or its queue state).
#[utoipa::path(delete, path = "/v1/groups/{group}", tag = "groups", params(GroupPath),
    responses(
        (status = 200, description = "Deleted.", body = GroupDeleted),
        (status = 404, description = "No such group.", body = ErrorBody),
        (status = 409, description = "The group has members.", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<GroupPath>,
) -> Result<Json<GroupDeleted>, ApiError> {
    let request = Request::DeleteGroup(DeleteGroupRequest {
        group: path.group.clone(),
    });
    call(&state.broker, &caller, request).await?;
    Ok(Json(GroupDeleted {
        deleted: path.group,
    }))
}

/// Where a reset moves a stream group's offsets.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ResetTo {
    /// The log start.
    Earliest,
    /// The log end.
    Latest,
    /// This offset.
    Offset(u64),
    /// The first record at or after this time, ms since the epoch.
    TimestampMs(i64),
}

/// A reset.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// The group's topic.
    pub topic: String,
    /// One partition; absent: all.
    #[serde(default)]
    pub partition: Option<u32>,
    /// Where to: `"earliest"`, `"latest"`, `{"offset": N}` or `{"timestamp_ms": T}`.
    pub to: ResetTo,
}

/// The offsets after a reset.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetDone {
    /// Per partition reset, its new committed offset.
    pub offsets: Vec<CommitOffset>,
}

/// Moves a stream group's committed offsets (the group must have no members).
#[utoipa::path(post, path = "/v1/groups/{group}/reset", tag = "groups", params(GroupPath),
    request_body = ResetBody,
    responses(
        (status = 200, description = "Reset.", body = ResetDone),
        (status = 404, description = "No such group.", body = ErrorBody),
        (status = 409, description = "The group has members.", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn reset(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<GroupPath>,
    JsonBody(body): JsonBody<ResetBody>,
) -> Result<Json<ResetDone>, ApiError> {
    let to = match body.to {
        ResetTo::Earliest => ResetTarget::Earliest,
        ResetTo::Latest => ResetTarget::Latest,
        ResetTo::Offset(offset) => ResetTarget::Offset(offset),
        ResetTo::TimestampMs(ms) => ResetTarget::Timestamp(ms),
    };
    let request = Request::ResetOffsets(ResetOffsetsRequest {
        group: path.group,
        topic: body.topic,
        partition: body.partition,
        to,
    });
    let reset = match call(&state.broker, &caller, request).await? {
        Response::ResetOffsets(reset) => reset,
        other => return Err(unexpected(&other)),
    };
    Ok(Json(ResetDone {
        offsets: reset
            .offsets
            .into_iter()
            .map(|o| CommitOffset {
                partition: o.partition,
                offset: o.offset,
            })
            .collect(),
    }))
}
