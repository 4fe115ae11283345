//! Property tests over every message type: encode/decode round trips, and decoders fed
//! random and mutated bytes must return errors, never panic.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use crate::batch::{split_batches, BatchBuilder, BatchView};
use crate::ops::produce::PRODUCER_SINCE;
use crate::ops::subscribe::StartPosition;
use crate::{
    FrameDecoder, Message, OpCode, Request, Response, PROTOCOL_VERSION, SUPPORTED_VERSIONS,
};

/// Arbitrary byte fields, short so that cases stay fast.
pub(crate) fn bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..32).prop_map(Bytes::from)
}

/// A valid record batch with a few records.
pub(crate) fn batch() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(
        (
            0i64..1_000_000,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24)),
        ),
        1..5,
    )
    .prop_map(|records| {
        let mut builder = BatchBuilder::new();
        for (ts, key, value) in &records {
            // Timestamps are within i32 ms of each other and fields are tiny.
            builder
                .push(*ts, key.as_deref(), value.as_deref(), &[("h", b"v")])
                .expect("small record fits");
        }
        builder.finish()
    })
}

/// Zero to three valid batches back to back.
pub(crate) fn batches() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(batch(), 0..3).prop_map(|parts| {
        let mut all = BytesMut::new();
        for part in parts {
            all.extend_from_slice(&part);
        }
        all.freeze()
    })
}

fn encode(msg: &Message) -> BytesMut {
    encode_in(msg, PROTOCOL_VERSION)
}

fn encode_in(msg: &Message, version: u16) -> BytesMut {
    let mut buf = BytesMut::new();
    msg.encode(version, &mut buf)
        .expect("generated messages fit");
    buf
}

/// Whether protocol `version` defines everything `msg` carries, so that it must
/// round-trip unchanged at that version.
fn defined_in(msg: &Message, version: u16) -> bool {
    match msg {
        Message::Request {
            request: Request::Subscribe(subscribe),
            ..
        } if matches!(subscribe.start, StartPosition::Timestamp(_)) => {
            version >= crate::ops::subscribe::TIMESTAMP_SINCE
        }
        Message::Request { request, .. } => {
            request.op_code().since() <= version
                && match request {
                    Request::Produce(p) => p.producer.is_none() || version >= PRODUCER_SINCE,
                    _ => true,
                }
        }
        Message::Response { response, .. } => {
            response.op_code().since() <= version
                && match response {
                    Response::Produce(p) => !p.duplicate || version >= PRODUCER_SINCE,
                    _ => true,
                }
        }
        Message::Error { op, error, .. } => {
            OpCode::from_u16(*op).is_some_and(|op| op.since() <= version)
                && error.code.since() <= version
        }
        Message::Push(_) => true,
    }
}

/// Runs every decoder on `bytes`; the result does not matter, only that it returns.
fn decode_everything(bytes: &[u8]) {
    let decoder = FrameDecoder::with_max_frame_bytes(1 << 20);
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        let _ = Message::decode(frame);
    }
    let body = Bytes::copy_from_slice(bytes);
    for &op in OpCode::ALL {
        for &version in SUPPORTED_VERSIONS {
            let _ = Request::decode_body(op, version, body.clone());
            let _ = Response::decode_body(op, version, body.clone());
        }
    }
    if let Ok(view) = BatchView::new(bytes) {
        let _ = view.validate();
        for record in view.records().flatten() {
            for _ in record.headers() {}
        }
    }
    for _ in split_batches(body) {}
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_round_trips_in_every_version_that_defines_it(msg in any::<Message>()) {
        for &version in SUPPORTED_VERSIONS {
            if !defined_in(&msg, version) {
                continue;
            }
            let mut buf = encode_in(&msg, version);
            let wire = buf.clone().freeze();
            let decoded = FrameDecoder::new().decode_message(&mut buf);
            prop_assert_eq!(decoded, Ok(Some(msg.clone())), "version {}", version);
            prop_assert!(buf.is_empty());
            // Re-encoding the decoded value gives the same bytes.
            prop_assert_eq!(encode_in(&msg, version).freeze(), wire);
        }
    }

    #[test]
    fn pipelined_messages_decode_in_order(msgs in proptest::collection::vec(any::<Message>(), 1..6)) {
        let mut buf = BytesMut::new();
        for msg in &msgs {
            msg.encode(PROTOCOL_VERSION, &mut buf).expect("generated messages fit");
        }
        let decoder = FrameDecoder::new();
        for msg in &msgs {
            prop_assert_eq!(decoder.decode_message(&mut buf), Ok(Some(msg.clone())));
        }
        prop_assert_eq!(decoder.decode_message(&mut buf), Ok(None));
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_everything(&bytes);
    }
}

/// Stack for the property below, bytes. A strategy over every [`Message`] nests one
/// level per variant of `Request` and `Response`, and with three of them in one tuple
/// its value trees outgrow the 2 MiB of a test thread in debug builds.
const MUTATION_STACK_BYTES: usize = 32 * 1024 * 1024;

#[test]
fn mutated_frames_never_panic() {
    let property = || {
        let strategy = (
            any::<Message>(),
            proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            any::<usize>(),
        );
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(512));
        let result = runner.run(&strategy, |(msg, flips, cut)| {
            let mut bytes = encode(&msg).to_vec();
            for (at, x) in flips {
                let at = at % bytes.len();
                bytes[at] ^= x;
            }
            decode_everything(&bytes);
            // Also every truncation point and a body without its frame header.
            let cut = cut % (bytes.len() + 1);
            decode_everything(&bytes[..cut]);
            decode_everything(bytes.get(14..).unwrap_or(&[]));
            Ok(())
        });
        if let Err(failure) = result {
            panic!("{failure}");
        }
    };
    let thread = std::thread::Builder::new()
        .stack_size(MUTATION_STACK_BYTES)
        .spawn(property)
        .expect("spawning the property's thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}
