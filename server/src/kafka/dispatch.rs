//! The table from a decoded Kafka request to the module that serves it, and the
//! encoding of its response (header at the version the crate gives, then the body).
//! A request this listener does not serve is answered, not dropped: with
//! ApiVersions' UNSUPPORTED_VERSION answer at version 0 (what Kafka brokers send a
//! client whose ApiVersions version they do not know) listing what is served.

use std::future::Future;
use std::pin::Pin;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::ResponseError;

use super::request::{Body, Parsed};
use super::session::Session;
use super::{
    apis, configs, fetch, groups, init_producer_id, list_offsets, metadata, offsets, partitions,
    produce, sasl, topics,
};

/// Why a response could not be encoded (a bug: the crate refused what we built).
#[derive(Debug, thiserror::Error)]
#[error("the {api:?} v{version} response could not be encoded: {reason}")]
pub struct EncodeError {
    api: ApiKey,
    version: i16,
    reason: String,
}

/// A response frame to come, in the order its request was read.
pub type LaterFrame = Pin<Box<dyn Future<Output = Result<Option<Bytes>, EncodeError>> + Send>>;

/// What serving one request gives the connection.
pub enum Reply {
    /// The response frame, size prefix included, or `None` when the client asked
    /// for none (Produce with `acks = 0`).
    Now(Option<Bytes>),
    /// A Produce whose appends are done and whose acknowledgements are awaited: the
    /// connection writes this frame after the ones before it, and meanwhile reads
    /// and serves the next requests.
    Later(LaterFrame),
}

/// Serves one request. A Produce is started (appended) here and answered
/// [`Reply::Later`]; every other request is served to its end, in order.
pub async fn respond(s: &mut Session, parsed: Parsed) -> Result<Reply, EncodeError> {
    s.client_id = parsed.client_id;
    let (key, version, response) = match parsed.body {
        Body::Request(key, request) => match *request {
            RequestKind::Produce(r) => {
                let Some(started) = produce::start(s, r) else {
                    return Ok(Reply::Now(None));
                };
                let (version, correlation_id) = (parsed.version, parsed.correlation_id);
                return Ok(Reply::Later(Box::pin(async move {
                    let response = ResponseKind::Produce(started.await);
                    encode(key, version, correlation_id, &response).map(Some)
                })));
            }
            request => (key, parsed.version, serve(s, request, parsed.version).await),
        },
        Body::Unsupported { api_key } => {
            tracing::debug!(
                api_key,
                version = parsed.version,
                "unsupported Kafka request"
            );
            let refusal = api_versions().with_error_code(ResponseError::UnsupportedVersion.code());
            (ApiKey::ApiVersions, 0, ResponseKind::ApiVersions(refusal))
        }
    };
    encode(key, version, parsed.correlation_id, &response).map(|frame| Reply::Now(Some(frame)))
}

async fn serve(s: &mut Session, request: RequestKind, version: i16) -> ResponseKind {
    use RequestKind as Q;
    use ResponseKind as A;
    match request {
        Q::ApiVersions(_) => A::ApiVersions(api_versions()),
        Q::Metadata(r) => A::Metadata(metadata::metadata(s, r, version).await),
        Q::CreateTopics(r) => A::CreateTopics(topics::create(s, r).await),
        Q::DeleteTopics(r) => A::DeleteTopics(topics::delete(s, r).await),
        Q::Fetch(r) => A::Fetch(fetch::fetch(s, r).await),
        Q::ListOffsets(r) => A::ListOffsets(list_offsets::list_offsets(s, r).await),
        Q::FindCoordinator(r) => A::FindCoordinator(groups::find_coordinator(s, r, version)),
        Q::JoinGroup(r) => A::JoinGroup(groups::join(s, r, version).await),
        Q::SyncGroup(r) => A::SyncGroup(groups::sync(s, r).await),
        Q::Heartbeat(r) => A::Heartbeat(groups::heartbeat(s, r)),
        Q::LeaveGroup(r) => A::LeaveGroup(groups::leave(s, r, version)),
        Q::DescribeGroups(r) => A::DescribeGroups(groups::describe(s, r, version)),
        Q::ListGroups(r) => A::ListGroups(groups::list(s, r)),
        Q::OffsetCommit(r) => A::OffsetCommit(offsets::commit(s, r).await),
        Q::OffsetFetch(r) => A::OffsetFetch(offsets::fetch(s, r, version)),
        Q::SaslHandshake(r) => A::SaslHandshake(sasl::handshake(s, r)),
        Q::SaslAuthenticate(r) => A::SaslAuthenticate(sasl::authenticate(s, r).await),
        Q::InitProducerId(r) => A::InitProducerId(init_producer_id::init_producer_id(s, r).await),
        Q::DescribeConfigs(r) => A::DescribeConfigs(configs::describe_configs(s, r).await),
        Q::CreatePartitions(r) => A::CreatePartitions(partitions::create_partitions(s, r).await),
        Q::DeleteRecords(r) => A::DeleteRecords(partitions::delete_records(s, r).await),
        // `request::parse` decodes only what `apis::SUPPORTED` lists: all above,
        // and Produce, which `respond` starts itself.
        other => {
            tracing::error!(request = ?std::mem::discriminant(&other), "a decoded Kafka request has no handler");
            A::ApiVersions(api_versions().with_error_code(ResponseError::UnsupportedVersion.code()))
        }
    }
}

/// ApiVersions' answer: the supported-API table.
pub fn api_versions() -> ApiVersionsResponse {
    let keys = apis::SUPPORTED
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.key as i16)
                .with_min_version(s.min_version)
                .with_max_version(s.max_version)
        })
        .collect();
    ApiVersionsResponse::default().with_api_keys(keys)
}

/// A response frame: size, header, body.
pub fn encode(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let failed = |reason: anyhow::Error| EncodeError {
        api: key,
        version,
        reason: reason.to_string(),
    };
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, key.response_header_version(version))
        .map_err(failed)?;
    response.encode(&mut buf, version).map_err(failed)?;
    let size = i32::try_from(buf.len() - 4).map_err(|e| failed(e.into()))?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}
