//! Each kind of bad input gives its own typed error, with the correlation id when it
//! could be read, and a Produce batch is decoded without copying.

use bytes::{BufMut, Bytes, BytesMut};
use protocol::batch::{BatchBuilder, BatchError};
use protocol::ops::produce::{AckLevel, PartitionSelector, ProduceRequest};
use protocol::ops::topic::CreateTopicRequest;
use protocol::{
    negotiate_version, DecodeError, ErrorCode, FrameDecoder, FrameError, Message, Request,
    PROTOCOL_VERSION,
};

const CORRELATION_ID: u32 = 77;

fn raw_frame(version: u16, op: u16, flags: u16, body: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u32_le((10 + body.len()) as u32);
    b.put_u16_le(version);
    b.put_u16_le(op);
    b.put_u16_le(flags);
    b.put_u32_le(CORRELATION_ID);
    b.put_slice(body);
    b
}

fn decode(mut buf: BytesMut) -> Result<Option<Message>, FrameError> {
    FrameDecoder::new().decode_message(&mut buf)
}

fn body_error(buf: BytesMut) -> DecodeError {
    match decode(buf) {
        Err(FrameError::Invalid {
            correlation_id,
            source,
            ..
        }) => {
            assert_eq!(correlation_id, CORRELATION_ID);
            source
        }
        other => panic!("expected a body error, got {other:?}"),
    }
}

fn batch() -> Bytes {
    let mut builder = BatchBuilder::new();
    builder
        .push(1_700_000_000_000, Some(b"k"), Some(b"value"), &[])
        .unwrap();
    builder.finish()
}

fn produce(batch: Bytes) -> BytesMut {
    let msg = Message::Request {
        correlation_id: CORRELATION_ID,
        request: Request::Produce(ProduceRequest {
            topic: "t".into(),
            partition: PartitionSelector::Any,
            ack: AckLevel::Durable,
            timeout_ms: 1000,
            producer: None,
            batch,
        }),
    };
    let mut buf = BytesMut::new();
    msg.encode(PROTOCOL_VERSION, &mut buf).unwrap();
    buf
}

#[test]
fn unknown_operation() {
    let err = body_error(raw_frame(1, 999, 0, b""));
    assert_eq!(err, DecodeError::UnknownOperation { op: 999 });
    assert_eq!(err.code(), ErrorCode::UnknownOperation);
}

#[test]
fn unsupported_version() {
    let err = body_error(raw_frame(7, 11, 0, &[0, 0]));
    assert_eq!(err, DecodeError::UnsupportedVersion { version: 7 });
    assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
}

#[test]
fn truncated_trailing_utf8_and_absurd_count() {
    // DeleteTopic: name = u16 length + UTF-8.
    assert!(matches!(
        body_error(raw_frame(1, 11, 0, &[5, 0, b'a'])),
        DecodeError::Truncated { what: "name", .. }
    ));
    assert_eq!(
        body_error(raw_frame(1, 11, 0, &[1, 0, b'a', 9])),
        DecodeError::TrailingBytes { count: 1 }
    );
    assert_eq!(
        body_error(raw_frame(1, 11, 0, &[1, 0, 0xff])),
        DecodeError::InvalidUtf8 { what: "name" }
    );
    // CreateTopic with a config count of u32::MAX and no bytes to back it.
    let mut body = BytesMut::new();
    body.put_slice(&[1, 0, b't']);
    body.put_u32_le(1);
    body.put_u32_le(u32::MAX);
    let err = body_error(raw_frame(1, 10, 0, &body));
    assert!(matches!(
        err,
        DecodeError::AbsurdCount {
            what: "config",
            count: u32::MAX,
            ..
        }
    ));
    assert_eq!(err.code(), ErrorCode::MalformedFrame);
}

#[test]
fn invalid_enum_and_flags() {
    // ListTopics include_internal must be 0 or 1.
    assert_eq!(
        body_error(raw_frame(1, 12, 0, &[2])),
        DecodeError::InvalidValue {
            what: "include_internal",
            value: 2
        }
    );
    // A client cannot send a Delivery; a server cannot push a CreateTopic.
    assert!(matches!(
        body_error(raw_frame(1, 33, 0, b"")),
        DecodeError::WrongDirection { op: 33, .. }
    ));
    assert!(matches!(
        body_error(raw_frame(1, 10, 2, b"")),
        DecodeError::WrongDirection { op: 10, .. }
    ));
    assert_eq!(
        body_error(raw_frame(1, 10, 4, b"")),
        DecodeError::InvalidFlags { flags: 4 }
    );
}

#[test]
fn crc_mismatch_in_produce_reaches_the_client_as_its_own_code() {
    let good = produce(batch());
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1; // inside the batch's last record
    let err = decode(bad).unwrap_err();
    assert_eq!(err.correlation_id(), Some(CORRELATION_ID));
    assert_eq!(err.code(), ErrorCode::CrcMismatch);
    assert!(!err.is_fatal());
    let response = err.error_response().unwrap();
    match response {
        Message::Error {
            correlation_id,
            op,
            error,
        } => {
            assert_eq!(correlation_id, CORRELATION_ID);
            assert_eq!(op, 20);
            assert_eq!(error.code, ErrorCode::CrcMismatch);
        }
        other => panic!("{other:?}"),
    }
    // Structurally broken but correctly checksummed is a different code.
    let empty = BatchBuilder::new().finish();
    let err = decode(produce(empty)).unwrap_err();
    assert!(matches!(
        err,
        FrameError::Invalid {
            source: DecodeError::Batch(BatchError::Empty),
            ..
        }
    ));
    assert_eq!(err.code(), ErrorCode::InvalidBatch);
}

#[test]
fn produce_batch_is_a_slice_of_the_frame() {
    let mut buf = produce(batch());
    let frame = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
    let body = frame.body.clone();
    let Message::Request {
        request: Request::Produce(req),
        ..
    } = Message::decode(frame).unwrap()
    else {
        panic!("not a produce");
    };
    let at = body.len() - req.batch.len();
    assert_eq!(req.batch.as_ptr(), body[at..].as_ptr(), "batch was copied");
}

#[test]
fn frame_too_large_exposes_the_correlation_id() {
    let mut buf = raw_frame(1, 10, 0, &[0; 64]);
    let err = FrameDecoder::with_max_frame_bytes(32)
        .decode(&mut buf)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::FrameTooLarge);
    assert_eq!(err.correlation_id(), Some(CORRELATION_ID));
    assert!(err.is_fatal());
    assert!(err.error_response().is_some());
}

#[test]
fn unknown_status_code_is_an_error_but_unknown_op_errors_are_readable() {
    // A response with status 0x7777 is not a defined code.
    let err = body_error(raw_frame(1, 10, 1, &[0x77, 0x77, 0, 0]));
    assert_eq!(err, DecodeError::UnknownErrorCode { code: 0x7777 });
    // An error answer to an op this side does not know still decodes.
    let msg = decode(raw_frame(1, 999, 1, &[4, 0, 2, 0, b'n', b'o']))
        .unwrap()
        .unwrap();
    assert!(matches!(msg, Message::Error { op: 999, .. }));
}

#[test]
fn encoding_a_too_long_string_fails_and_writes_nothing() {
    let msg = Message::Request {
        correlation_id: 1,
        request: Request::CreateTopic(CreateTopicRequest {
            name: "x".repeat(70_000),
            partitions: 1,
            config: vec![],
        }),
    };
    let mut buf = BytesMut::from(&b"keep"[..]);
    assert!(msg.encode(PROTOCOL_VERSION, &mut buf).is_err());
    assert_eq!(&buf[..], b"keep");
}

#[test]
fn version_negotiation() {
    assert_eq!(negotiate_version(&[4, 1, 2]), Some(2), "the highest shared");
    assert_eq!(negotiate_version(&[3, 1, 2]), Some(3));
    assert_eq!(
        negotiate_version(&[1]),
        Some(1),
        "an old client keeps version 1"
    );
    assert_eq!(negotiate_version(&[4, 5]), None);
    assert_eq!(negotiate_version(&[]), None);
}
