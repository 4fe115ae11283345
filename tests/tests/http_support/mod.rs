//! What the HTTP gateway's tests share: an HTTP client (reqwest, rustls), JSON
//! helpers, and the native end offsets a refused request must leave alone.

#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;

/// How long one HTTP request of a test may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP/1.1 client.
pub fn http1() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .unwrap()
}

/// An HTTP/2 client that speaks h2c by prior knowledge.
pub fn h2c() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// A response's status and JSON body (`Value::Null` for an empty body).
pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, body)
}

/// The error code of an error body, asserting its shape.
pub fn code(body: &Value) -> &str {
    let error = &body["error"];
    assert!(error["message"].is_string(), "no message: {body}");
    error["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// Every partition's end offset, read natively.
pub async fn end_offsets(client: &client::Client, topic: &str) -> Vec<u64> {
    client
        .describe_topic(topic)
        .await
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.end_offset)
        .collect()
}
