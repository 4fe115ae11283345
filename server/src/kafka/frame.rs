//! Kafka's framing, pure: a request is a 4-byte big-endian size, then that many
//! bytes. [`next_frame`] takes one whole frame off the front of a read buffer, or
//! says it needs more bytes; it checks the size against a named limit before it
//! reserves a byte for the body, so a peer cannot make the broker allocate by
//! announcing a large frame.

use bytes::{Buf, Bytes, BytesMut};

/// Bytes of the size prefix.
pub const SIZE_PREFIX_BYTES: usize = 4;
/// The largest Kafka request accepted (Kafka's own `socket.request.max.bytes` is
/// 100 MiB; ours is the native protocol's frame limit, one batch and its envelope):
/// a larger announced size closes the connection before anything is allocated.
pub const MAX_REQUEST_BYTES: usize = protocol::MAX_FRAME_BYTES;
/// The smallest request: api key, api version and correlation id (2 + 2 + 4 bytes);
/// anything shorter cannot be answered and is garbage.
pub const MIN_REQUEST_BYTES: usize = 8;

/// Why bytes on the Kafka port are not a frame; the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The announced size is negative or over the limit.
    #[error("a Kafka request announced {size_bytes} bytes; at most {limit_bytes} are accepted")]
    TooLarge {
        /// The size as announced (negative sizes read as their two's complement).
        size_bytes: u32,
        /// [`MAX_REQUEST_BYTES`].
        limit_bytes: usize,
    },
    /// The announced size cannot hold a request header.
    #[error("a Kafka request announced {size_bytes} bytes; a request header alone needs {MIN_REQUEST_BYTES}")]
    TooSmall {
        /// The size as announced.
        size_bytes: u32,
    },
}

/// Takes the next whole frame (without its size prefix) off the front of `buf`;
/// `Ok(None)` when more bytes are needed (room for the rest of the frame is then
/// reserved, the size having been checked against `limit_bytes`).
pub fn next_frame(buf: &mut BytesMut, limit_bytes: usize) -> Result<Option<Bytes>, FrameError> {
    let Some(prefix) = buf.get(..SIZE_PREFIX_BYTES) else {
        return Ok(None);
    };
    let size_bytes = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    // A negative i32 is a u32 above i32::MAX, so over any limit we accept.
    let size = size_bytes as usize;
    if size > limit_bytes || size_bytes > i32::MAX as u32 {
        return Err(FrameError::TooLarge {
            size_bytes,
            limit_bytes,
        });
    }
    if size < MIN_REQUEST_BYTES {
        return Err(FrameError::TooSmall { size_bytes });
    }
    let whole = SIZE_PREFIX_BYTES + size;
    if buf.len() < whole {
        buf.reserve(whole - buf.len());
        return Ok(None);
    }
    buf.advance(SIZE_PREFIX_BYTES);
    let frame = buf.split_to(size).freeze();
    debug_assert_eq!(frame.len(), size);
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    #[test]
    fn a_whole_frame_is_taken_and_a_partial_one_waits() {
        let mut buf = BytesMut::from(&framed(b"0123456789")[..]);
        buf.extend_from_slice(&framed(b"abcdefgh")[..6]);
        assert_eq!(
            next_frame(&mut buf, 100).unwrap().unwrap(),
            &b"0123456789"[..]
        );
        assert_eq!(next_frame(&mut buf, 100).unwrap(), None);
        buf.extend_from_slice(b"cdefgh");
        assert_eq!(
            next_frame(&mut buf, 100).unwrap().unwrap(),
            &b"abcdefgh"[..]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn sizes_are_checked_before_anything_is_reserved() {
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(matches!(
            next_frame(&mut buf, MAX_REQUEST_BYTES),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(buf.capacity() < 1024);
        let mut buf = BytesMut::from(&101u32.to_be_bytes()[..]);
        assert!(matches!(
            next_frame(&mut buf, 100),
            Err(FrameError::TooLarge { .. })
        ));
        let mut buf = BytesMut::from(&7u32.to_be_bytes()[..]);
        assert_eq!(
            next_frame(&mut buf, 100),
            Err(FrameError::TooSmall { size_bytes: 7 })
        );
    }

    proptest! {
        /// Arbitrary bytes never panic the frame decoder nor the request parser,
        /// and never make it hold more than the limit.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(frame)) = next_frame(&mut buf, 256) {
                prop_assert!(frame.len() <= 256);
                let _ = super::super::request::parse(frame);
            }
            prop_assert!(buf.capacity() <= bytes.len().max(SIZE_PREFIX_BYTES + 256) + 64);
        }

        /// A well-framed request with an arbitrary header and body never panics the
        /// parser: either it parses or it is an error.
        #[test]
        fn arbitrary_requests_never_panic(
            key in 0i16..=100,
            version in -1i16..=20,
            rest in proptest::collection::vec(any::<u8>(), 4..256),
        ) {
            let mut body = key.to_be_bytes().to_vec();
            body.extend_from_slice(&version.to_be_bytes());
            body.extend_from_slice(&rest);
            let mut buf = BytesMut::from(&framed(&body)[..]);
            if let Ok(Some(frame)) = next_frame(&mut buf, MAX_REQUEST_BYTES) {
                let _ = super::super::request::parse(frame);
            }
        }
    }
}
