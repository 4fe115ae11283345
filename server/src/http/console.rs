//! The web console: static HTML, CSS and ES modules from `server/console/`,
//! embedded in the binary at build time (so brokerd serves it with no build step and
//! no file on disk), at `/` and `/console/...`.
//!
//! The console is only a client of the public `/v1` API: these handlers serve bytes
//! and nothing else, need no credentials (the page itself asks for them and sends
//! them with every API call), and never read the broker's state.

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::ErrorCode;

use super::error::ApiError;

/// The console's page-weight budget: every asset together, uncompressed. Checked by a
/// unit test, so a change that would make the console heavy fails the build.
pub const ASSET_BUDGET_BYTES: usize = 500 * 1024;

/// Where the page may load anything from: itself only (no CDN, no inline script), and
/// the API on the same origin.
const CONTENT_SECURITY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its path under `server/console/`, and under `/console/` in a URL.
    pub path: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $mime:expr),* $(,)?) => {
        &[$(Asset {
            path: $path,
            content_type: $mime,
            body: include_bytes!(concat!("../../console/", $path)),
        }),*]
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file of the console. A file in `server/console/` missing here is never
/// served (a unit test checks that the two agree).
pub const ASSETS: &[Asset] = assets![
    "index.html" => HTML,
    "console.css" => CSS,
    "favicon.svg" => SVG,
    "js/app.js" => JS,
    "js/api.js" => JS,
    "js/ui.js" => JS,
    "js/format.js" => JS,
    "js/chart.js" => JS,
    "js/sse.js" => JS,
    "js/pages/login.js" => JS,
    "js/pages/overview.js" => JS,
    "js/pages/topics.js" => JS,
    "js/pages/topic.js" => JS,
    "js/pages/groups.js" => JS,
    "js/pages/queues.js" => JS,
    "js/pages/services.js" => JS,
    "js/pages/routes.js" => JS,
    "js/pages/traces.js" => JS,
];

/// The asset at `path`, if there is one.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// An asset's entity tag: its length and CRC-32, which change whenever its bytes do.
fn etag(asset: &Asset) -> String {
    format!(
        "\"{:x}-{:08x}\"",
        asset.body.len(),
        crc32fast::hash(asset.body)
    )
}

/// `GET /`: the console's single page.
pub async fn index(headers: HeaderMap) -> Response {
    match find("index.html") {
        Some(asset) => serve(asset, &headers),
        None => missing("index.html"),
    }
}

/// `GET /console/{asset}`: a script, a style sheet or an image.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match find(&path) {
        Some(asset) => serve(asset, &headers),
        None => missing(&path),
    }
}

fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let tag = etag(asset);
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(CONTENT_TYPE, HeaderValue::from_static(asset.content_type))],
            asset.body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(&tag) {
        headers.insert(ETAG, tag);
    }
    // Revalidated on every load (a 304 is cheap), so a new brokerd's console is
    // never mixed with an old one's cached modules.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn missing(path: &str) -> Response {
    let shown: String = path.chars().take(100).collect();
    ApiError::new(
        ErrorCode::UnknownOperation,
        format!("the console has no file {shown:?}"),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_on_disk() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut found = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let relative = path.strip_prefix(&root).unwrap();
                    found.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn every_file_of_the_console_is_embedded_and_nothing_else() {
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, files_on_disk());
    }

    #[test]
    fn the_console_is_within_its_page_weight_budget() {
        let total: usize = ASSETS.iter().map(|a| a.body.len()).sum();
        assert!(
            total < ASSET_BUDGET_BYTES,
            "the console's assets are {total} bytes, over the {ASSET_BUDGET_BYTES}-byte budget"
        );
    }

    #[test]
    fn no_asset_loads_anything_from_another_origin() {
        for asset in ASSETS {
            let text = String::from_utf8_lossy(asset.body);
            for scheme in ["http://", "https://", "//cdn"] {
                // The SVG's XML namespace is a name, not a fetch.
                let allowed = text.matches("http://www.w3.org/").count();
                let found = text.matches(scheme).count();
                let found = if scheme == "http://" {
                    found - allowed
                } else {
                    found
                };
                assert_eq!(found, 0, "{} refers to {scheme}", asset.path);
            }
        }
    }

    #[test]
    fn a_matching_entity_tag_answers_not_modified() {
        let asset = find("index.html").unwrap();
        let mut request = HeaderMap::new();
        request.insert(IF_NONE_MATCH, HeaderValue::from_str(&etag(asset)).unwrap());
        assert_eq!(serve(asset, &request).status(), StatusCode::NOT_MODIFIED);
        let fresh = serve(asset, &HeaderMap::new());
        assert_eq!(fresh.status(), StatusCode::OK);
        assert!(fresh.headers().contains_key(CONTENT_SECURITY_POLICY));
    }
}
