//! Handshake: the first exchange on every connection.
//!
//! The client lists the protocol versions it speaks and names itself; the server picks
//! the highest version both speak (or answers `unsupported_version`) and announces its
//! limits. Handshake frames always carry header version 1, whatever is negotiated, so
//! that any server can read them; their layout never changes. The optional credentials
//! are reserved for authentication: servers that do not authenticate ignore them.

use bytes::{BufMut, Bytes, BytesMut};

use super::Body;
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader};

/// Client to server: the versions the client speaks and who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct HandshakeRequest {
    /// Protocol versions the client speaks, in any order.
    pub versions: Vec<u16>,
    /// Free-form client name and version, for logs and `DescribeGroup`.
    pub client_name: String,
    /// Credentials, if the client has any. Reserved: servers do not yet check them.
    pub auth: Option<Credentials>,
}

/// Authentication credentials: a mechanism name and mechanism-specific bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Credentials {
    /// The mechanism, e.g. `"PLAIN"` or `"TOKEN"`.
    pub mechanism: String,
    /// Opaque to the protocol; interpreted by the mechanism.
    #[cfg_attr(test, proptest(strategy = "crate::proptests::bytes()"))]
    pub credentials: Bytes,
}

/// Server to client: the chosen version and the server's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct HandshakeResponse {
    /// The version every later frame on this connection must carry.
    pub version: u16,
    /// Free-form server name and version.
    pub server_name: String,
    /// Largest frame (`length` field) the server accepts.
    pub max_frame_bytes: u32,
}

impl Body for HandshakeRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_array(buf, "versions", &self.versions, |b, v| {
            b.put_u16_le(*v);
            Ok(())
        })?;
        wire::put_string(buf, "client_name", &self.client_name)?;
        wire::put_option(buf, self.auth.as_ref(), |b, auth| {
            wire::put_string(b, "mechanism", &auth.mechanism)?;
            wire::put_bytes(b, "credentials", &auth.credentials)
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(HandshakeRequest {
            versions: r.array("versions", 2, |r| r.u16("version"))?,
            client_name: r.string("client_name")?,
            auth: r.option("auth", |r| {
                Ok(Credentials {
                    mechanism: r.string("mechanism")?,
                    credentials: r.bytes("credentials")?,
                })
            })?,
        })
    }
}

impl Body for HandshakeResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        buf.put_u16_le(self.version);
        wire::put_string(buf, "server_name", &self.server_name)?;
        buf.put_u32_le(self.max_frame_bytes);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(HandshakeResponse {
            version: r.u16("version")?,
            server_name: r.string("server_name")?,
            max_frame_bytes: r.u32("max_frame_bytes")?,
        })
    }
}
