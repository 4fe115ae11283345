//! Where spans are exported: the collector's base URL, checked once at startup, and
//! the traces path below it.

use hyper::Uri;

/// The path OTLP/HTTP collectors take traces on, below their base URL.
pub const TRACES_PATH: &str = "/v1/traces";

/// An OTLP/HTTP collector's traces URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    traces: Uri,
}

/// Why an `otlp_endpoint` cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    /// Not a URL.
    #[error("{endpoint:?} is not a URL: {reason}; write it like \"http://127.0.0.1:4318\"")]
    NotAUrl {
        /// What was configured.
        endpoint: String,
        /// What the URL parser said.
        reason: String,
    },
    /// A scheme other than `http`.
    #[error("{endpoint:?}: only http:// collectors are supported (no TLS for the export yet); run the collector, or a local OpenTelemetry collector relaying to it, on a loopback or private address")]
    Scheme {
        /// What was configured.
        endpoint: String,
    },
    /// No host, or a query or fragment that has no place in a base URL.
    #[error("{endpoint:?} must be a base URL with a host and no query, like \"http://127.0.0.1:4318\" (spans go to <base>{TRACES_PATH})")]
    Shape {
        /// What was configured.
        endpoint: String,
    },
}

impl Endpoint {
    /// Parses a base URL (`http://host:port`, optionally with a path prefix); spans
    /// go to `<base>/v1/traces`, as OTLP/HTTP exporters do with
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn parse(endpoint: &str) -> Result<Endpoint, EndpointError> {
        let uri: Uri = endpoint
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| EndpointError::NotAUrl {
                endpoint: endpoint.to_string(),
                reason: e.to_string(),
            })?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => {
                return Err(EndpointError::Scheme {
                    endpoint: endpoint.to_string(),
                })
            }
            None => {
                return Err(EndpointError::NotAUrl {
                    endpoint: endpoint.to_string(),
                    reason: "it has no scheme".into(),
                })
            }
        }
        let shape = || EndpointError::Shape {
            endpoint: endpoint.to_string(),
        };
        let authority = uri.authority().ok_or_else(shape)?;
        if authority.host().is_empty() || uri.query().is_some() || endpoint.contains('#') {
            return Err(shape());
        }
        let base = uri.path().trim_end_matches('/');
        let traces = Uri::builder()
            .scheme("http")
            .authority(authority.clone())
            .path_and_query(format!("{base}{TRACES_PATH}"))
            .build()
            .map_err(|_| shape())?;
        Ok(Endpoint { traces })
    }

    /// The URL export requests are posted to.
    pub fn traces_uri(&self) -> &Uri {
        &self.traces
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.traces.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_goes_below_the_base_url() {
        for (base, traces) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
            (
                "http://collector:4318/otlp/",
                "http://collector:4318/otlp/v1/traces",
            ),
            ("http://[::1]:4318", "http://[::1]:4318/v1/traces"),
        ] {
            assert_eq!(
                Endpoint::parse(base).unwrap().traces_uri().to_string(),
                traces
            );
        }
    }

    #[test]
    fn other_schemes_and_shapes_are_refused_with_what_to_write() {
        assert!(matches!(
            Endpoint::parse("https://collector:4318"),
            Err(EndpointError::Scheme { .. })
        ));
        for bad in ["collector:4318", "not a url", "", "/v1/traces"] {
            let error = Endpoint::parse(bad).unwrap_err();
            assert!(
                matches!(error, EndpointError::NotAUrl { .. }),
                "{bad}: {error}"
            );
            assert!(
                error.to_string().contains("http://127.0.0.1:4318"),
                "{error}"
            );
        }
        for bad in ["http://collector:4318/?x=1", "http://collector:4318/#top"] {
            assert!(
                matches!(Endpoint::parse(bad), Err(EndpointError::Shape { .. })),
                "{bad}"
            );
        }
    }
}
