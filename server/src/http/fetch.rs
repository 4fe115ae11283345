//! `GET /v1/topics/{topic}/partitions/{partition}/records`: records from an offset,
//! with long polling: one native Fetch through [`call`], its batches turned into
//! JSON records ([`records::fetched`]).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use protocol::ops::fetch::{FetchRequest, ListOffsetsRequest, PartitionTime};
use protocol::{ErrorCode, Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::{ApiPath, ApiQuery};
use super::call::{call, unexpected};
use super::error::{ApiError, ErrorBody};
use super::records::{self, FetchedRecord};
use super::state::HttpState;
use super::topics::PartitionPath;

/// Bytes of batches a fetch reads unless told (`max_bytes`).
pub const DEFAULT_FETCH_BYTES: u32 = 1024 * 1024;
/// Records a fetch answers unless told (`max_records`).
pub const DEFAULT_FETCH_RECORDS: usize = 1000;
/// Records one fetch may answer at most.
pub const MAX_FETCH_RECORDS: usize = 10_000;

/// Fetch parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FetchParams {
    /// The first offset wanted.
    pub offset: u64,
    /// If nothing is there yet, wait up to this long for records, ms (default 0;
    /// capped by `limits.max_fetch_wait_ms`).
    #[serde(default)]
    pub max_wait_ms: u32,
    /// Bytes of record batches to read at most (default 1 MiB; capped by
    /// `limits.max_fetch_bytes`). At least one batch is read whatever its size.
    #[serde(default)]
    pub max_bytes: Option<u32>,
    /// Records to answer at most (default 1000, at most 10000).
    #[serde(default)]
    pub max_records: Option<usize>,
}

/// Fetched records.
#[derive(Debug, Serialize, ToSchema)]
pub struct Fetched {
    /// The records, in offset order, from the asked offset on.
    pub records: Vec<FetchedRecord>,
    /// Where to fetch from next.
    pub next_offset: u64,
    /// The end of what readers can see now.
    pub high_watermark: u64,
    /// The oldest offset held.
    pub log_start_offset: u64,
}

/// Fetches records.
#[utoipa::path(get, path = "/v1/topics/{topic}/partitions/{partition}/records", tag = "records",
    params(PartitionPath, FetchParams),
    responses(
        (status = 200, description = "The records (perhaps none, after `max_wait_ms`).", body = Fetched),
        (status = 400, description = "The offset is outside the log (`offset_out_of_range`), or bad parameters.", body = ErrorBody),
        (status = 404, description = "No such topic or partition.", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn fetch(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<PartitionPath>,
    ApiQuery(params): ApiQuery<FetchParams>,
) -> Result<Json<Fetched>, ApiError> {
    super::topics::check_topic_name(&path.topic)?;
    let max_records = params.max_records.unwrap_or(DEFAULT_FETCH_RECORDS);
    if max_records == 0 || max_records > MAX_FETCH_RECORDS {
        return Err(ApiError::invalid(format!(
            "max_records must be from 1 to {MAX_FETCH_RECORDS}"
        )));
    }
    let request = Request::Fetch(FetchRequest {
        topic: path.topic,
        partition: path.partition,
        offset: params.offset,
        max_bytes: params.max_bytes.unwrap_or(DEFAULT_FETCH_BYTES),
        max_wait_ms: params.max_wait_ms,
    });
    let fetched = match call(&state.broker, &caller, request).await? {
        Response::Fetch(fetched) => fetched,
        other => return Err(unexpected(&other)),
    };
    let (records, next) =
        records::fetched(&fetched.batches, params.offset, max_records).map_err(|e| {
            ApiError::new(
                ErrorCode::StorageError,
                format!("a stored batch did not read back: {e}"),
            )
        })?;
    Ok(Json(Fetched {
        records,
        next_offset: next.unwrap_or(params.offset).max(params.offset),
        high_watermark: fetched.high_watermark,
        log_start_offset: fetched.log_start_offset,
    }))
}

/// Offset-for-time parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OffsetForTimeParams {
    /// Milliseconds since the epoch, compared with the records' own timestamps.
    pub timestamp_ms: i64,
}

/// Where a time falls in a partition.
#[derive(Debug, Serialize, ToSchema)]
pub struct OffsetForTime {
    /// The partition.
    pub partition: u32,
    /// The first offset whose record's timestamp is at or after the time, or the
    /// partition's end if every record is older: where to fetch from to read what
    /// was written from that time on.
    pub offset: u64,
}

/// Finds the first offset at or after a time, through the partition's time index.
#[utoipa::path(get, path = "/v1/topics/{topic}/partitions/{partition}/offset", tag = "records",
    params(PartitionPath, OffsetForTimeParams),
    responses(
        (status = 200, description = "The offset.", body = OffsetForTime),
        (status = 404, description = "No such topic or partition.", body = ErrorBody),
        (status = "4XX", description = "Refused (needs Read on the topic).", body = ErrorBody),
    ))]
pub async fn offset_for_time(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<PartitionPath>,
    ApiQuery(params): ApiQuery<OffsetForTimeParams>,
) -> Result<Json<OffsetForTime>, ApiError> {
    super::topics::check_topic_name(&path.topic)?;
    let request = Request::ListOffsets(ListOffsetsRequest {
        topic: path.topic,
        partitions: vec![PartitionTime {
            partition: path.partition,
            timestamp_ms: params.timestamp_ms,
        }],
    });
    let listed = match call(&state.broker, &caller, request).await? {
        Response::ListOffsets(listed) => listed,
        other => return Err(unexpected(&other)),
    };
    let found = listed
        .offsets
        .into_iter()
        .find(|o| o.partition == path.partition)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Internal,
                "the offset lookup did not answer for the partition asked",
            )
        })?;
    Ok(Json(OffsetForTime {
        partition: found.partition,
        offset: found.offset,
    }))
}
