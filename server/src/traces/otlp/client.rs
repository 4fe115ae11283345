//! The HTTP side of the export: one POST of an encoded request to the collector,
//! within a timeout, and its answer read up to a bound.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::Endpoint;

/// The media type of OTLP/HTTP's binary protobuf encoding.
pub const PROTOBUF: &str = "application/x-protobuf";
/// Most bytes of a collector's answer that are read (an `ExportTraceServiceResponse`
/// is a few dozen bytes; a proxy's error page need not be read whole).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How long an idle connection to the collector is kept for the next request.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A collector's answer.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The body, at most [`MAX_ANSWER_BYTES`].
    pub body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Connecting, sending or reading took longer than the timeout.
    #[error("no answer within {timeout_ms} ms")]
    Timeout {
        /// The timeout.
        timeout_ms: u128,
    },
    /// The connection could not be made or broke.
    #[error("{0}")]
    Transport(String),
}

/// Posts export requests to one collector, keeping its connection alive between them.
#[derive(Debug, Clone)]
pub struct Collector {
    client: Client<HttpConnector, Full<Bytes>>,
    endpoint: Endpoint,
}

impl Collector {
    /// A client for `endpoint` whose connection attempts give up after
    /// `connect_timeout`.
    pub fn new(endpoint: Endpoint, connect_timeout: Duration) -> Collector {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(1)
            .build(connector);
        Collector { client, endpoint }
    }

    /// Where requests go.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Posts `body` (an encoded `ExportTraceServiceRequest`); the whole exchange,
    /// connecting and reading the answer included, takes at most `timeout`.
    pub async fn post(&self, body: Bytes, timeout: Duration) -> Result<Answer, SendError> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.traces_uri().clone())
            .header(CONTENT_TYPE, PROTOBUF)
            .header(USER_AGENT, concat!("brokerd/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(body))
            .map_err(|e| SendError::Transport(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| SendError::Transport(describe(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| SendError::Transport(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(SendError::Timeout {
                timeout_ms: timeout.as_millis(),
            }))
    }
}

/// The error with its causes: hyper-util's own message ("client error (Connect)")
/// does not say what went wrong.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
