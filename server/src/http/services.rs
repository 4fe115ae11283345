//! The service registry over HTTP: register an instance with a TTL, heartbeat it,
//! deregister it, list services, discover a service's healthy instances (filtered by
//! tags) and describe one instance. Each is one native request (RegisterInstance,
//! InstanceHeartbeat, DeregisterInstance, ListServices, DescribeService) through
//! [`call`]; watching is [`super::registry_watch`].

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use protocol::ops::registry::{
    DescribeServiceRequest, InstanceInfo, InstanceRequest, RegisterRequest,
};
use protocol::ops::topic::ConfigEntry;
use protocol::ops::Empty;
use protocol::{Request, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::{ApiPath, JsonBody};
use super::call::{call, unexpected};
use super::error::{ApiError, ErrorBody};
use super::state::HttpState;
use crate::error::BrokerError;

/// The TTL an instance gets when its registration names none (as `brokerctl
/// services register`).
pub const DEFAULT_TTL_MS: u32 = 10_000;
/// Tag filters one discovery may carry: an instance has at most this many tags.
pub const MAX_TAG_FILTERS: usize = crate::services::MAX_TAGS;

/// A tag, `key=value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    /// The tag's key.
    #[schema(example = "zone")]
    pub key: String,
    /// Its value.
    #[schema(example = "eu-1")]
    pub value: String,
}

impl Tag {
    /// Tags as the protocol carries them.
    pub fn entries(tags: Vec<Tag>) -> Vec<ConfigEntry> {
        tags.into_iter()
            .map(|t| ConfigEntry {
                key: t.key,
                value: t.value,
            })
            .collect()
    }

    /// The protocol's `key=value` entries as tags.
    pub fn list(entries: Vec<ConfigEntry>) -> Vec<Tag> {
        entries
            .into_iter()
            .map(|e| Tag {
                key: e.key,
                value: e.value,
            })
            .collect()
    }
}

/// A service, in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ServicePath {
    /// The service's name (1 to 200 bytes).
    pub service: String,
}

/// An instance of a service, in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InstancePath {
    /// The service's name (1 to 200 bytes).
    pub service: String,
    /// The instance's id, unique within the service (1 to 200 bytes).
    pub instance_id: String,
}

/// A service and its healthy instance count.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceSummary {
    /// The service's name.
    pub service: String,
    /// Its healthy instances.
    pub instances: u32,
}

/// Services with healthy instances, those the caller may describe.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceList {
    /// By name.
    pub services: Vec<ServiceSummary>,
}

/// Lists services.
#[utoipa::path(get, path = "/v1/services", tag = "services",
    responses(
        (status = 200, description = "Services with healthy instances.", body = ServiceList),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
) -> Result<Json<ServiceList>, ApiError> {
    match call(&state.broker, &caller, Request::ListServices(Empty)).await? {
        Response::ListServices(list) => Ok(Json(ServiceList {
            services: list
                .services
                .into_iter()
                .map(|s| ServiceSummary {
                    service: s.service,
                    instances: s.instances,
                })
                .collect(),
        })),
        other => Err(unexpected(&other)),
    }
}

/// One healthy instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Instance {
    /// Its id.
    pub instance_id: String,
    /// Where it is reached.
    #[schema(example = "10.0.0.7:8080")]
    pub address: String,
    /// Its tags, in registration order.
    pub tags: Vec<Tag>,
    /// Its TTL, ms.
    pub ttl_ms: u32,
    /// Milliseconds since its last heartbeat (or registration).
    pub since_heartbeat_ms: u64,
}

impl From<InstanceInfo> for Instance {
    fn from(i: InstanceInfo) -> Instance {
        Instance {
            instance_id: i.instance_id,
            address: i.address,
            tags: Tag::list(i.tags),
            ttl_ms: i.ttl_ms,
            since_heartbeat_ms: i.since_heartbeat_ms,
        }
    }
}

/// A service's healthy instances.
#[derive(Debug, Serialize, ToSchema)]
pub struct Instances {
    /// By id.
    pub instances: Vec<Instance>,
}

/// Discovery parameters: `tag=KEY=VALUE`, repeatable; an instance must carry every
/// one.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiscoverParams {
    /// A required tag, `KEY=VALUE` (URL-encoded); repeat for more, all must match.
    pub tag: Option<Vec<String>>,
}

/// The tag filters of a discovery's query string: every `tag=KEY=VALUE` pair, in
/// order. Any other parameter, a tag without `=`, or more than [`MAX_TAG_FILTERS`]
/// are refused.
pub fn parse_tag_filters(query: Option<&str>) -> Result<Vec<ConfigEntry>, ApiError> {
    let mut filters = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name != "tag" {
            return Err(ApiError::invalid(format!(
                "unknown query parameter {:?}; discovery takes tag=KEY=VALUE (repeatable)",
                super::error::sanitize(&name)
            )));
        }
        let Some((key, value)) = value.split_once('=') else {
            return Err(ApiError::invalid(
                "a tag filter is tag=KEY=VALUE, e.g. tag=zone%3Deu-1 or tag=zone=eu-1",
            ));
        };
        if filters.len() == MAX_TAG_FILTERS {
            return Err(ApiError::invalid(format!(
                "at most {MAX_TAG_FILTERS} tag filters"
            )));
        }
        filters.push(ConfigEntry {
            key: key.into(),
            value: value.into(),
        });
    }
    Ok(filters)
}

/// Whether an instance is healthy by what its description says: heard from within
/// its TTL. The broker expires an instance at most `services::EXPIRY_CHECK_INTERVAL`
/// after that; discovery leaves it out meanwhile.
pub fn healthy(instance: &InstanceInfo) -> bool {
    instance.since_heartbeat_ms <= u64::from(instance.ttl_ms)
}

async fn describe(
    state: &HttpState,
    caller: &Caller,
    service: String,
    tags: Vec<ConfigEntry>,
) -> Result<Vec<InstanceInfo>, ApiError> {
    let request = Request::DescribeService(DescribeServiceRequest { service, tags });
    match call(&state.broker, caller, request).await? {
        Response::DescribeService(described) => {
            Ok(described.instances.into_iter().filter(healthy).collect())
        }
        other => Err(unexpected(&other)),
    }
}

/// Discovers a service's healthy instances carrying the asked tags.
#[utoipa::path(get, path = "/v1/services/{service}", tag = "services",
    params(ServicePath, DiscoverParams),
    responses(
        (status = 200, description = "The healthy instances (none when the service has none).", body = Instances),
        (status = "4XX", description = "Bad tag filters, or refused.", body = ErrorBody),
    ))]
pub async fn discover(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<ServicePath>,
    RawQuery(query): RawQuery,
) -> Result<Json<Instances>, ApiError> {
    let filters = parse_tag_filters(query.as_deref())?;
    let instances = describe(&state, &caller, path.service, filters).await?;
    Ok(Json(Instances {
        instances: instances.into_iter().map(Instance::from).collect(),
    }))
}

/// Describes one healthy instance.
#[utoipa::path(get, path = "/v1/services/{service}/instances/{instance_id}", tag = "services",
    params(InstancePath),
    responses(
        (status = 200, description = "The instance.", body = Instance),
        (status = 404, description = "No such healthy instance (`unknown_instance`).", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn instance(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<InstancePath>,
) -> Result<Json<Instance>, ApiError> {
    let instances = describe(&state, &caller, path.service.clone(), Vec::new()).await?;
    instances
        .into_iter()
        .find(|i| i.instance_id == path.instance_id)
        .map(|i| Json(Instance::from(i)))
        .ok_or_else(|| unknown_instance(&path))
}

fn unknown_instance(path: &InstancePath) -> ApiError {
    ApiError::from(BrokerError::UnknownInstance {
        service: super::error::sanitize(&path.service),
        instance: super::error::sanitize(&path.instance_id),
    })
}

/// `PUT /v1/services/{service}/instances/{instance_id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Where the instance is reached, e.g. `10.0.0.7:8080` (at most 1024 bytes).
    #[schema(example = "10.0.0.7:8080")]
    pub address: String,
    /// Tags for discovery filters (at most 64; keys and values at most 256 bytes).
    #[serde(deserialize_with = "super::body::objects")]
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The instance expires this long after its last heartbeat, ms (1000 to
    /// 3600000; default 10000).
    #[serde(default)]
    pub ttl_ms: Option<u32>,
}

/// Registers (or re-registers) an instance.
#[utoipa::path(put, path = "/v1/services/{service}/instances/{instance_id}", tag = "services",
    params(InstancePath), request_body = Registration,
    responses(
        (status = 204, description = "Registered, durably. Heartbeat it within its TTL."),
        (status = 400, description = "A name, address, tag or TTL out of bounds.", body = ErrorBody),
        (status = 429, description = "The registry is full (`resource_limit`).", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<InstancePath>,
    JsonBody(body): JsonBody<Registration>,
) -> Result<StatusCode, ApiError> {
    let request = Request::RegisterInstance(RegisterRequest {
        service: path.service,
        instance_id: path.instance_id,
        address: body.address,
        tags: Tag::entries(body.tags),
        ttl_ms: body.ttl_ms.unwrap_or(DEFAULT_TTL_MS),
    });
    match call(&state.broker, &caller, request).await? {
        Response::RegisterInstance(Empty) => Ok(StatusCode::NO_CONTENT),
        other => Err(unexpected(&other)),
    }
}

/// Keeps an instance alive.
#[utoipa::path(post, path = "/v1/services/{service}/instances/{instance_id}/heartbeat", tag = "services",
    params(InstancePath),
    responses(
        (status = 204, description = "Heard; its TTL starts again."),
        (status = 404, description = "Not registered (expired, or never): register it again (`unknown_instance`).", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn heartbeat(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<InstancePath>,
) -> Result<StatusCode, ApiError> {
    let request = Request::InstanceHeartbeat(InstanceRequest {
        service: path.service,
        instance_id: path.instance_id,
    });
    match call(&state.broker, &caller, request).await? {
        Response::InstanceHeartbeat(Empty) => Ok(StatusCode::NO_CONTENT),
        other => Err(unexpected(&other)),
    }
}

/// Deregisters an instance.
#[utoipa::path(delete, path = "/v1/services/{service}/instances/{instance_id}", tag = "services",
    params(InstancePath),
    responses(
        (status = 204, description = "Deregistered, durably."),
        (status = 404, description = "Not registered (`unknown_instance`).", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn deregister(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<InstancePath>,
) -> Result<StatusCode, ApiError> {
    let request = Request::DeregisterInstance(InstanceRequest {
        service: path.service,
        instance_id: path.instance_id,
    });
    match call(&state.broker, &caller, request).await? {
        Response::DeregisterInstance(Empty) => Ok(StatusCode::NO_CONTENT),
        other => Err(unexpected(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str) -> ConfigEntry {
        ConfigEntry {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn tag_filters_are_repeated_key_value_pairs() {
        assert_eq!(parse_tag_filters(None).unwrap(), vec![]);
        assert_eq!(parse_tag_filters(Some("")).unwrap(), vec![]);
        assert_eq!(
            parse_tag_filters(Some("tag=zone=eu-1&tag=role%3Dapi&tag=empty=")).unwrap(),
            vec![
                entry("zone", "eu-1"),
                entry("role", "api"),
                entry("empty", "")
            ]
        );
        assert_eq!(
            parse_tag_filters(Some("tag=k=a%3Db+c")).unwrap(),
            vec![entry("k", "a=b c")],
            "the first = splits; the rest is the value"
        );
        for bad in ["tag=novalue", "zone=eu-1", "tag=a=b&x=1"] {
            let error = parse_tag_filters(Some(bad)).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        let many: Vec<String> = (0..=MAX_TAG_FILTERS)
            .map(|i| format!("tag=k{i}=v"))
            .collect();
        assert!(parse_tag_filters(Some(&many.join("&"))).is_err());
        assert_eq!(
            parse_tag_filters(Some(&many[..MAX_TAG_FILTERS].join("&")))
                .unwrap()
                .len(),
            MAX_TAG_FILTERS
        );
    }

    #[test]
    fn an_instance_past_its_ttl_is_not_healthy() {
        let mut info = InstanceInfo {
            instance_id: "a".into(),
            address: "x".into(),
            tags: vec![],
            ttl_ms: 1000,
            since_heartbeat_ms: 1000,
        };
        assert!(healthy(&info));
        info.since_heartbeat_ms = 1001;
        assert!(!healthy(&info));
    }
}
