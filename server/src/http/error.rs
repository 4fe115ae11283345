//! The gateway's errors: one JSON shape, `{"error": {"code": "...", "message":
//! "..."}}`, whose codes are the native protocol's error code names
//! ([`protocol::ErrorCode::name`]), each answered with the HTTP status
//! [`status_of`] gives it.
//!
//! Messages are the broker's own ([`BrokerError`]'s `Display`, with data paths cut as
//! on the native port), or fixed texts for what the gateway itself refuses. Client
//! input appears only as a name cut to [`MAX_ECHOED_NAME_CHARS`] printable characters
//! ([`sanitize`]).

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use protocol::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{redact_data_paths, BrokerError};

/// Characters of a client-supplied name an error message may repeat.
pub const MAX_ECHOED_NAME_CHARS: usize = 64;
/// Characters of a broker error's message an answer carries at most (the broker's
/// messages may quote a name the client sent; the gateway checks names it can
/// before, and this bounds the rest).
pub const MAX_MESSAGE_CHARS: usize = 1024;
/// What a 401 answers in `WWW-Authenticate`.
pub const WWW_AUTHENTICATE: &str = "Basic realm=\"brokerd\", charset=\"UTF-8\"";

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The native protocol's error code name (`unknown_topic`, `not_authorized`,
    /// ...; `docs/protocol.md`, "Errors"): stable, for programs.
    #[schema(example = "unknown_topic")]
    pub code: String,
    /// What happened and what to do, for people; not stable.
    #[schema(example = "topic \"orders\" does not exist")]
    pub message: String,
}

/// An error answer: a status, a code, a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
}

impl ApiError {
    /// An error of `code` with the status [`status_of`] gives it.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status: status_of(code),
            code,
            message: message.into(),
        }
    }

    /// An error of `code` answered with `status` instead of the code's own.
    pub fn with_status(
        status: StatusCode,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A request the gateway could not read (bad JSON, bad base64, bad parameters).
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    /// A body over `http.max_body_bytes`.
    pub fn body_too_large(limit_bytes: usize) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: ErrorCode::FrameTooLarge,
            message: format!("the request body exceeds http.max_body_bytes ({limit_bytes} bytes)"),
        }
    }

    /// Authentication failed (or is missing): the same answer whatever the reason.
    pub fn authentication_failed() -> ApiError {
        ApiError::new(ErrorCode::AuthenticationFailed, "authentication failed")
    }

    /// A request that took longer than `http.request_timeout_ms`.
    pub fn request_timeout(timeout: Duration) -> ApiError {
        ApiError {
            status: StatusCode::GATEWAY_TIMEOUT,
            code: ErrorCode::Timeout,
            message: format!(
                "the request took longer than http.request_timeout_ms ({} ms)",
                timeout.as_millis()
            ),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<BrokerError> for ApiError {
    fn from(error: BrokerError) -> ApiError {
        let code = error.code();
        let status = match error {
            // A stopping broker is not the client's fault: come back later.
            BrokerError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => status_of(code),
        };
        let message = redact_data_paths(&error.to_string());
        ApiError {
            status,
            code,
            message: bounded(&message, MAX_MESSAGE_CHARS),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.name().to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        response
    }
}

/// The request header a script (the web console, a single-page application) sends to
/// ask for a 401 without a `WWW-Authenticate` challenge, the convention Spring
/// Security and others follow: a browser answers a challenge with its own password
/// dialog, over the page that wanted to show its own login form.
pub const SCRIPT_REQUEST_HEADER: &str = "x-requested-with";

/// Drops the Basic challenge from a 401 answered to a request that says it comes
/// from a script (`X-Requested-With: XMLHttpRequest`); every other 401 keeps it.
pub async fn no_challenge_for_scripts(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let from_script = request
        .headers()
        .get(SCRIPT_REQUEST_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"XMLHttpRequest"));
    let mut response = next.run(request).await;
    if from_script && response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    response
}

/// The HTTP status an error code is answered with.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode as C;
    match code {
        C::UnknownTopic
        | C::InvalidPartition
        | C::UnknownGroup
        | C::UnknownMember
        | C::UnknownSubscription
        | C::UnknownInstance
        | C::UnknownRoute
        | C::UnknownUser
        | C::UnknownOperation => StatusCode::NOT_FOUND,
        C::TopicExists
        | C::UserExists
        | C::StaleGeneration
        | C::RebalanceInProgress
        | C::NotInFlight
        | C::OutOfOrderSequence => StatusCode::CONFLICT,
        C::NotAuthorized => StatusCode::FORBIDDEN,
        C::AuthenticationFailed | C::AuthenticationRequired => StatusCode::UNAUTHORIZED,
        C::FrameTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        C::Unroutable => StatusCode::UNPROCESSABLE_ENTITY,
        C::UnsupportedVersion
        | C::MalformedFrame
        | C::HandshakeRequired
        | C::InvalidRequest
        | C::CrcMismatch
        | C::InvalidBatch
        | C::InvalidConfig
        | C::OffsetOutOfRange => StatusCode::BAD_REQUEST,
        C::TooManyConnections | C::ResourceLimit => StatusCode::TOO_MANY_REQUESTS,
        C::Timeout => StatusCode::GATEWAY_TIMEOUT,
        C::NotDurable | C::StorageError => StatusCode::SERVICE_UNAVAILABLE,
        C::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `name` as an error message may repeat it: at most [`MAX_ECHOED_NAME_CHARS`]
/// characters, control characters replaced, `…` when cut.
pub fn sanitize(name: &str) -> String {
    bounded(name, MAX_ECHOED_NAME_CHARS)
}

/// `text` cut to `max_chars` characters (`…` when cut), control characters replaced.
pub fn bounded(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// The answer to a path no route has.
pub async fn unknown_route() -> ApiError {
    ApiError::new(
        ErrorCode::UnknownOperation,
        "no such endpoint; the API is described at /v1/openapi.json",
    )
}

/// The answer to a method a route does not serve.
pub async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: ErrorCode::UnknownOperation,
        message: "this endpoint does not serve that method; see /v1/openapi.json".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_and_only_internal_is_a_5xx_a_client_causes() {
        for &code in ErrorCode::ALL {
            let status = status_of(code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code}"
            );
        }
        assert_eq!(status_of(ErrorCode::UnknownTopic), StatusCode::NOT_FOUND);
        assert_eq!(status_of(ErrorCode::NotAuthorized), StatusCode::FORBIDDEN);
        assert_eq!(status_of(ErrorCode::TopicExists), StatusCode::CONFLICT);
        assert_eq!(
            status_of(ErrorCode::InvalidRequest),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(ErrorCode::NotDurable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status_of(ErrorCode::ResourceLimit),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            status_of(ErrorCode::AuthenticationFailed),
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn broker_errors_keep_their_code_and_shutdown_is_unavailable() {
        let error = ApiError::from(BrokerError::UnknownTopic("orders".into()));
        assert_eq!(error.status(), StatusCode::NOT_FOUND);
        assert_eq!(error.code(), ErrorCode::UnknownTopic);
        assert_eq!(error.message(), "topic \"orders\" does not exist");
        let error = ApiError::from(BrokerError::ShuttingDown);
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code(), ErrorCode::ResourceLimit);
    }

    #[test]
    fn a_401_says_how_to_authenticate() {
        let response = ApiError::authentication_failed().into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            WWW_AUTHENTICATE
        );
    }

    #[test]
    fn echoed_names_are_bounded_and_printable() {
        assert_eq!(sanitize("orders"), "orders");
        assert_eq!(sanitize("a\nb\u{1b}"), "a?b?");
        let long = "x".repeat(1000);
        let cut = sanitize(&long);
        assert_eq!(cut.chars().count(), MAX_ECHOED_NAME_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
