//! An OTLP/HTTP receiver for the tests: a small hyper server on `127.0.0.1:0` that
//! takes `POST /v1/traces` with an `application/x-protobuf` body, decodes the
//! `ExportTraceServiceRequest` with `opentelemetry-proto`'s prost messages, and keeps
//! every span with the resource it came under. Anything else it answers with 404 or
//! 415 and counts, so a test can assert that brokerd sent nothing malformed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Largest request body the receiver reads.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// A span as received, with its resource's attributes.
#[derive(Debug, Clone)]
pub struct Received {
    /// The span.
    pub span: Span,
    /// Attributes of the resource it was exported under.
    pub resource: Vec<KeyValue>,
}

#[derive(Debug, Default)]
struct State {
    spans: Vec<Received>,
    malformed: Vec<String>,
}

/// A running receiver; it stops when the test's runtime does.
#[derive(Debug, Clone)]
pub struct Collector {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Collector {
    /// Binds `127.0.0.1:0` and serves on the current runtime.
    pub async fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| receive(state.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Collector { addr, state }
    }

    /// The base URL to configure as `otlp_endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests that were not a well-formed OTLP/HTTP protobuf export, and why.
    pub fn malformed(&self) -> Vec<String> {
        self.state.lock().unwrap().malformed.clone()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Received> {
        self.state.lock().unwrap().spans.clone()
    }

    /// The spans received once `done` holds for them, polling until `deadline`.
    pub async fn wait_for(
        &self,
        deadline: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let until = Instant::now() + deadline;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < until,
                "the collector did not get what was expected within {deadline:?}; it has {:#?}",
                spans.iter().map(|r| &r.span.name).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let answer = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        Ok(response)
    };
    let refuse = |status: StatusCode, why: String| {
        state.lock().unwrap().malformed.push(why);
        answer(status, Bytes::new())
    };
    if request.method() != hyper::Method::POST || request.uri().path() != "/v1/traces" {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("{} {}", request.method(), request.uri()),
        );
    }
    let content_type = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if content_type != "application/x-protobuf" {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {content_type:?}"),
        );
    }
    let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let export = match ExportTraceServiceRequest::decode(body) {
        Ok(export) => export,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("protobuf: {e}")),
    };
    {
        let mut state = state.lock().unwrap();
        for resource_spans in export.resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    state.spans.push(Received {
                        span,
                        resource: resource.clone(),
                    });
                }
            }
        }
    }
    answer(
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec().into(),
    )
}

/// The value of attribute `key` among `attributes`.
pub fn value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// The string value of attribute `key`.
pub fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match value(attributes, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// The integer value of attribute `key`.
pub fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match value(attributes, key) {
        Some(any_value::Value::IntValue(n)) => Some(*n),
        _ => None,
    }
}

/// Lower-case hex of an id.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
