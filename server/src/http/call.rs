//! Calls into the request layer: a [`Context`] for the request's caller, then
//! [`handlers::serve`] (the one authorization check, then the dispatch table), the
//! same function the native listener's requests pass through.

use std::sync::Arc;

use protocol::{Request, Response};
use tokio::sync::mpsc;

use super::auth::Caller;
use super::error::ApiError;
use crate::broker::Broker;
use crate::delivery::Pushes;
use crate::error::BrokerError;
use crate::handlers::{self, Context, Outcome};

/// The client name HTTP requests carry in the request layer (DescribeGroup, audit
/// lines).
pub const HTTP_CLIENT_NAME: &str = "http";

/// Serves `request` for `caller` through the request layer. An answer that waits
/// (durability, a long poll) runs as its own task, as on the native port, so a
/// client that hangs up does not cancel work the broker has started.
pub async fn call(
    broker: &Arc<Broker>,
    caller: &Caller,
    request: Request,
) -> Result<Response, ApiError> {
    let mut cx = context(broker, caller);
    let op = request.op_code().as_u16();
    let answer = match handlers::serve(broker, &mut cx, request) {
        Outcome::Now(answer) => answer,
        Outcome::Later(pending) => tokio::spawn(pending)
            .await
            .unwrap_or_else(|e| Err(BrokerError::Internal(format!("a request task failed: {e}")))),
    };
    // Counted like the native listener's answers: by operation and error code.
    broker.metrics.requests.count(op, &answer);
    answer.map_err(ApiError::from)
}

/// Whether `caller` may make `request`, without making it ([`handlers::authorize`]):
/// for an endpoint that must know before it looks at the resource.
pub fn authorize(broker: &Arc<Broker>, caller: &Caller, request: &Request) -> Result<(), ApiError> {
    let cx = context(broker, caller);
    handlers::authorize(broker, &cx, request).map_err(ApiError::from)
}

/// A request's context: its caller's principal, the newest protocol version, and no
/// pushes (the endpoints here do not subscribe).
fn context(broker: &Broker, caller: &Caller) -> Context {
    let (nowhere, _) = mpsc::channel(1);
    Context::new(
        broker,
        Arc::from(HTTP_CLIENT_NAME),
        protocol::PROTOCOL_VERSION,
        Pushes::new(nowhere),
        caller.principal.clone(),
    )
}

/// An answer of the wrong kind: a bug, since the dispatch table answers each
/// request with its own response.
pub fn unexpected(response: &Response) -> ApiError {
    ApiError::new(
        protocol::ErrorCode::Internal,
        format!("the request layer answered {:?}", response.op_code().name()),
    )
}
