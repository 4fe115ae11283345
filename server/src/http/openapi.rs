//! The OpenAPI 3.1 document of the gateway, generated from the endpoints' own
//! `#[utoipa::path]` annotations and the request and response types' `ToSchema`
//! derives, served at `/v1/openapi.json` and checked in as `docs/openapi.json` (the
//! test below fails when the two differ; `UPDATE_OPENAPI=1 cargo test -p server
//! openapi` writes it).

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;

use super::{dlq, groups, queues, stream};
use super::{error, fetch, health, produce, records, topics};
use super::{registry_watch, routes, services, stats, traces, whoami};

/// The gateway's API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "brokerd HTTP API",
        description = "Topics, produce and fetch over HTTP/JSON, beside brokerd's native protocol. Errors are `{\"error\": {\"code\", \"message\"}}` with the native protocol's error codes. See docs/http.md.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        health::healthz,
        health::readyz,
        topics::list,
        topics::create,
        topics::describe,
        topics::delete,
        topics::delete_records,
        produce::produce,
        fetch::fetch,
        fetch::offset_for_time,
        services::list,
        services::discover,
        services::instance,
        services::register,
        services::heartbeat,
        services::deregister,
        registry_watch::watch_service,
        registry_watch::watch_all,
        routes::list,
        routes::add,
        routes::delete,
        routes::publish,
        routes::probe,
        traces::list,
        traces::trace,
        stats::server,
        stats::topic,
        queues::receive,
        queues::ack_many,
        queues::ack_one,
        queues::nack,
        queues::extend,
        queues::leave,
        stream::stream,
        groups::read,
        groups::commit,
        groups::leave,
        groups::list,
        groups::describe,
        groups::delete,
        groups::reset,
        dlq::list,
        dlq::replay,
        dlq::purge,
        whoami::whoami,
    ),
    components(schemas(
        error::ErrorBody,
        error::ErrorDetail,
        health::Health,
        topics::TopicList,
        topics::TopicSummary,
        topics::CreateTopic,
        topics::ConfigValue,
        topics::Created,
        topics::TopicDescription,
        topics::PartitionDescription,
        topics::RecordsDeleted,
        produce::ProduceBody,
        produce::Produced,
        produce::RecordOffset,
        produce::Ack,
        records::ProduceRecord,
        records::ProduceHeader,
        records::FetchedRecord,
        records::FetchedHeader,
        fetch::Fetched,
        fetch::OffsetForTime,
        services::Tag,
        services::ServiceList,
        services::ServiceSummary,
        services::Instances,
        services::Instance,
        services::Registration,
        registry_watch::RegistryChange,
        routes::Route,
        routes::RouteList,
        routes::NewRoute,
        routes::RouteAdded,
        routes::PublishBody,
        routes::Published,
        routes::RoutedTo,
        routes::RouteProbe,
        routes::RouteMatches,
        traces::TraceList,
        traces::TraceSummary,
        traces::TraceTree,
        traces::SpanNode,
        stats::Counters,
        stats::ServerStats,
        stats::TopicCounters,
        stats::Delivered,
        stats::TopicStats,
        stats::PartitionCounters,
        queues::QueueMessage,
        queues::Received,
        queues::AckBody,
        queues::Acked,
        queues::NackBody,
        queues::Nacked,
        queues::ExtendBody,
        queues::Extended,
        queues::Left,
        stream::StreamedRecord,
        stream::StreamStart,
        groups::GroupRecord,
        groups::Commit,
        groups::CommitOffset,
        groups::GroupRead,
        groups::Committed,
        groups::GroupSummary,
        groups::GroupList,
        groups::GroupMember,
        groups::QueueCounts,
        groups::GroupPartition,
        groups::GroupDescription,
        groups::GroupDeleted,
        groups::ResetTo,
        groups::ResetBody,
        groups::ResetDone,
        dlq::DeadLetter,
        dlq::DeadLetters,
        dlq::DeadLettersHandled,
        whoami::WhoAmI,
    )),
    tags(
        (name = "topics", description = "Topic administration."),
        (name = "records", description = "Producing and fetching records."),
        (name = "health", description = "Liveness and readiness probes."),
        (name = "services", description = "The service registry: register, heartbeat, deregister, discover, watch."),
        (name = "routes", description = "Routing rules and publishing by routing key."),
        (name = "traces", description = "Recent traces and one trace as a span tree."),
        (name = "stats", description = "Server and topic statistics."),
        (name = "dead letters", description = "A topic's dead letters: list, replay, purge."),
        (name = "groups", description = "Consumer groups: read as a group and commit; list, describe, delete, reset."),
        (name = "queues", description = "Queue consumption: receive with a lease, ack, nack, extend."),
        (name = "security", description = "Who the caller is."),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON, as checked in.
pub fn document() -> String {
    match ApiDoc::openapi().to_pretty_json() {
        Ok(text) => text + "\n",
        // Serialising a document of our own types cannot fail; if it does, say so.
        Err(error) => {
            format!("{{\"error\": \"the OpenAPI document did not serialise: {error}\"}}\n")
        }
    }
}

/// `GET /v1/openapi.json`.
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn openapi_document_matches_docs_openapi_json() {
        let generated = super::document();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "docs/openapi.json is not what the code generates; regenerate it with\n    UPDATE_OPENAPI=1 cargo test -p server openapi"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_and_names_every_route() {
        let document: serde_json::Value = serde_json::from_str(&super::document()).unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in [
            "/healthz",
            "/readyz",
            "/v1/topics",
            "/v1/topics/{topic}",
            "/v1/topics/{topic}/records",
            "/v1/topics/{topic}/partitions/{partition}/records",
            "/v1/services",
            "/v1/services/{service}",
            "/v1/services/{service}/instances/{instance_id}",
            "/v1/services/{service}/instances/{instance_id}/heartbeat",
            "/v1/services/{service}/watch",
            "/v1/registry/watch",
            "/v1/routes",
            "/v1/routes/{route_id}",
            "/v1/publish/{routing_key}",
            "/v1/traces",
            "/v1/traces/{trace_id}",
            "/v1/stats",
            "/v1/topics/{topic}/stats",
            "/v1/topics/{topic}/queues/{group}/receive",
            "/v1/topics/{topic}/queues/{group}/acks",
            "/v1/topics/{topic}/queues/{group}/messages/{delivery_id}",
            "/v1/topics/{topic}/queues/{group}/messages/{delivery_id}/nack",
            "/v1/topics/{topic}/queues/{group}/messages/{delivery_id}/extend",
            "/v1/topics/{topic}/queues/{group}/membership",
            "/v1/topics/{topic}/stream",
            "/v1/topics/{topic}/groups/{group}/records",
            "/v1/topics/{topic}/groups/{group}/commit",
            "/v1/topics/{topic}/groups/{group}/membership",
            "/v1/groups",
            "/v1/groups/{group}",
            "/v1/groups/{group}/reset",
            "/v1/topics/{topic}/dlq",
            "/v1/topics/{topic}/dlq/replay",
        ] {
            assert!(document["paths"].get(path).is_some(), "{path}");
        }
    }
}
