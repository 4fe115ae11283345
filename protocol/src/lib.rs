//! The broker's wire protocol: the one definition of every byte that crosses a
//! connection between a client and `brokerd`, and of the record-batch layout that the
//! storage log keeps on disk.
//!
//! This crate is pure encode/decode. It owns no sockets, spawns no tasks and never
//! blocks: callers hand it bytes and get typed values back (or the reverse). It must
//! never panic or allocate unboundedly on bytes that came from the network.
//!
//! The layers, bottom up:
//! - [`batch`]: the record-batch layout shared with `storage`.
//! - `wire` (private): integers, strings, byte fields, arrays, options.
//! - [`ops`]: one module per family of operations, and the [`Request`] / [`Response`]
//!   enums over them.
//! - [`frame`]: the length-prefixed frame and its header; [`FrameDecoder`] splits a
//!   byte stream into [`Frame`]s without doing I/O.
//! - [`Message`]: a frame decoded into a typed request, response, error or push.
//! - [`internal`]: the records of the broker's internal topics (`__consumer_offsets`,
//!   `__queue_state`, `__registry`, `__routes`, `__traces`), which clients read too.
//! - `codec` (feature `codec`): a `tokio_util` adapter for the edge.
//!
//! The normative specification is `docs/protocol.md`; its hex examples are checked
//! against this code by `tests/spec_examples.rs`.
//!
//! ```
//! use bytes::BytesMut;
//! use protocol::{FrameDecoder, Message, Response};
//! use protocol::ops::produce::ProduceResponse;
//!
//! let reply = Message::Response {
//!     correlation_id: 42,
//!     response: Response::Produce(ProduceResponse { partition: 3, base_offset: Some(1000), duplicate: false }),
//! };
//! let mut buf = BytesMut::new();
//! reply.encode(protocol::PROTOCOL_VERSION, &mut buf)?;
//! let decoded = FrameDecoder::new().decode_message(&mut buf)?;
//! assert_eq!(decoded, Some(reply));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
// Production code must not unwrap data it did not create; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod batch;
#[cfg(feature = "codec")]
pub mod codec;
pub mod error;
pub mod frame;
pub mod internal;
mod message;
pub mod ops;
pub mod trace;
mod wire;

#[cfg(test)]
mod proptests;

pub use error::{DecodeError, EncodeError, ErrorCode};
pub use frame::{Frame, FrameDecoder, FrameError, FrameKind, Header, MAX_FRAME_BYTES};
pub use message::{ErrorResponse, Message, STATUS_OK};
pub use ops::{OpCode, Request, Response};
pub use wire::MAX_STRING_BYTES;

/// The protocol version this build writes after the handshake.
pub const PROTOCOL_VERSION: u16 = 3;
/// Every version this build can read and write.
pub const SUPPORTED_VERSIONS: &[u16] = &[1, 2, 3];
/// The header version of Handshake frames, fixed forever so any peer can read them.
pub const HANDSHAKE_VERSION: u16 = 1;

/// The version to use given the versions a client offers: the highest both sides
/// speak, or `None` (answer `unsupported_version`).
pub fn negotiate_version(offered: &[u16]) -> Option<u16> {
    offered
        .iter()
        .copied()
        .filter(|v| SUPPORTED_VERSIONS.contains(v))
        .max()
}
