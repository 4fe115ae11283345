//! Extractors that turn every unreadable input into a JSON 4xx: the body (bounded
//! by `http.max_body_bytes`, 413 past it, 400 for bad JSON), path parameters and
//! query strings (400). Library messages are cut to [`MAX_DETAIL_CHARS`] printable
//! characters, since they may quote what the client sent.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::state::HttpState;

/// Characters of a parser's message an error may carry.
pub const MAX_DETAIL_CHARS: usize = 160;

/// `detail` bounded and printable.
fn bounded(detail: &str) -> String {
    super::error::bounded(detail, MAX_DETAIL_CHARS)
}

/// A JSON body of type `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<HttpState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<HttpState>) -> Result<Self, ApiError> {
        let limit = state.broker.config.http.max_body_bytes;
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::body_too_large(limit));
        }
        let bytes = match Limited::new(request.into_body(), limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(ApiError::body_too_large(limit))
            }
            Err(_) => return Err(ApiError::invalid("the request body could not be read")),
        };
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body; the error gives the position and, bounded, serde's reason.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        use serde_json::error::Category;
        let what = match error.classify() {
            Category::Syntax | Category::Eof | Category::Io => "the body is not valid JSON",
            Category::Data => "the body does not match the schema (see /v1/openapi.json)",
        };
        ApiError::invalid(format!("{what}: {}", bounded(&error.to_string())))
    })
}

/// Path parameters of type `T`.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::invalid(format!(
                "invalid path parameter: {}",
                bounded(&rejection.body_text())
            ))),
        }
    }
}

/// Query parameters of type `T`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::invalid(format!(
                "invalid query parameter: {}",
                bounded(&rejection.body_text())
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        n: u32,
    }

    #[test]
    fn bad_json_is_a_400_with_a_bounded_message() {
        let error = parse_json::<Shape>(b"{not json").unwrap_err();
        assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(
            error.message().starts_with("the body is not valid JSON"),
            "{}",
            error.message()
        );
        let long = format!("{{\"n\": \"{}\"}}", "x".repeat(10_000));
        let error = parse_json::<Shape>(long.as_bytes()).unwrap_err();
        assert!(error
            .message()
            .starts_with("the body does not match the schema"));
        assert!(error.message().chars().count() < 300, "{}", error.message());
    }
}
