//! A frame as a Kafka request, decoded with the `kafka-protocol` crate: the api key
//! and version are peeked, the [`RequestHeader`] is decoded at the header version the
//! crate gives for them, then the body. Only what [`super::apis::SUPPORTED`] lists is
//! decoded; anything else is [`Body::Unsupported`], answered with an error, not a
//! closed connection. A frame that claims a served API but does not decode is
//! garbage ([`RequestError`]), and the connection is closed.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use super::apis;

/// A decoded request.
#[derive(Debug)]
pub struct Parsed {
    /// Echoed in the response header.
    pub correlation_id: i32,
    /// The api version the request was made at; the response is encoded at it.
    pub version: i16,
    /// The client's name from the header (absent for an unsupported request).
    pub client_id: Option<String>,
    /// What was asked.
    pub body: Body,
}

/// What a request asks for.
#[derive(Debug)]
pub enum Body {
    /// A served API at a served version (boxed: the crate's requests are large,
    /// refusals small).
    Request(ApiKey, Box<RequestKind>),
    /// An API key or version this listener does not serve (the raw key, for logs).
    Unsupported {
        /// The api key as sent.
        api_key: i16,
    },
}

/// Why a frame is not a request; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Shorter than a request header's fixed part.
    #[error("a Kafka request of {len_bytes} bytes is too short for its header")]
    Truncated {
        /// The frame's length.
        len_bytes: usize,
    },
    /// The header or body of a served API did not decode.
    #[error("a {api:?} v{version} request did not decode: {reason}")]
    Malformed {
        /// The API.
        api: ApiKey,
        /// Its version.
        version: i16,
        /// The decoder's reason.
        reason: String,
    },
}

/// Decodes one frame (without its size prefix).
pub fn parse(frame: Bytes) -> Result<Parsed, RequestError> {
    let (api_key, version, correlation_id) = match frame.get(..8) {
        Some(fixed) => (
            i16::from_be_bytes([fixed[0], fixed[1]]),
            i16::from_be_bytes([fixed[2], fixed[3]]),
            i32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        ),
        None => {
            return Err(RequestError::Truncated {
                len_bytes: frame.len(),
            })
        }
    };
    let unsupported = Parsed {
        correlation_id,
        version,
        client_id: None,
        body: Body::Unsupported { api_key },
    };
    let Ok(key) = ApiKey::try_from(api_key) else {
        return Ok(unsupported);
    };
    if apis::supported(key, version).is_none() {
        return Ok(unsupported);
    }
    let malformed = |reason: anyhow::Error| RequestError::Malformed {
        api: key,
        version,
        reason: reason.to_string(),
    };
    let mut bytes = frame;
    let header = RequestHeader::decode(&mut bytes, key.request_header_version(version))
        .map_err(malformed)?;
    let request = RequestKind::decode(key, &mut bytes, version).map_err(malformed)?;
    Ok(Parsed {
        correlation_id: header.correlation_id,
        version,
        client_id: header.client_id.map(|id| id.to_string()),
        body: Body::Request(key, Box::new(request)),
    })
}
