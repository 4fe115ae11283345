//! brokerd over raw TCP: the protocol as bytes, bad input, limits. Starts the real
//! binary on port 0 in a temporary directory.

use bytes::BytesMut;
use integration_tests::raw::Raw;
use integration_tests::Brokerd;
use protocol::batch::BatchBuilder;
use protocol::ops::fetch::FetchRequest;
use protocol::ops::handshake::HandshakeRequest;
use protocol::ops::produce::{AckLevel, PartitionSelector, ProduceRequest};
use protocol::ops::topic::{CreateTopicRequest, ListTopicsRequest};
use protocol::{ErrorCode, Message, Request, Response};

fn error_code(message: &Message) -> Option<ErrorCode> {
    match message {
        Message::Error { error, .. } => Some(error.code),
        _ => None,
    }
}

fn create_topic(raw: &mut Raw, name: &str, partitions: u32) {
    let create = CreateTopicRequest {
        name: name.into(),
        partitions,
        config: Vec::new(),
    };
    let answer = raw.call(Request::CreateTopic(create));
    assert!(matches!(answer, Message::Response { .. }), "{answer:?}");
}

fn produce(raw: &mut Raw, topic: &str, value: &[u8]) -> Message {
    let mut builder = BatchBuilder::new();
    builder.push(1, None, Some(value), &[]).unwrap();
    let request = ProduceRequest {
        topic: topic.into(),
        partition: PartitionSelector::Partition(0),
        ack: AckLevel::Durable,
        timeout_ms: 10_000,
        producer: None,
        batch: builder.finish(),
    };
    raw.call(Request::Produce(request))
}

#[test]
fn the_first_request_must_be_a_handshake() {
    let broker = Brokerd::start();
    let mut raw = Raw::connect(broker.addr());
    let answer = raw.call(Request::ListTopics(ListTopicsRequest {
        include_internal: false,
    }));
    assert_eq!(error_code(&answer), Some(ErrorCode::HandshakeRequired));
    assert!(raw.receive().is_none(), "the connection is closed");

    let mut raw = Raw::connect(broker.addr());
    let hello = HandshakeRequest {
        versions: vec![99],
        client_name: "future".into(),
        auth: None,
    };
    assert_eq!(
        error_code(&raw.call(Request::Handshake(hello))),
        Some(ErrorCode::UnsupportedVersion)
    );
}

#[test]
fn clients_of_version_1_and_2_are_served_side_by_side() {
    let broker = Brokerd::start();
    let mut old = Raw::handshaken_at(broker.addr(), &[1]);
    let mut new = Raw::handshaken_at(broker.addr(), &[1, 2]);
    assert_eq!((old.version(), new.version()), (1, 2));
    create_topic(&mut old, "t", 1);
    for (raw, value) in [(&mut old, &b"from v1"[..]), (&mut new, b"from v2")] {
        let answer = produce(raw, "t", value);
        assert!(matches!(answer, Message::Response { .. }), "{answer:?}");
        // Errors too go out in the connection's version (Raw checks each header).
        let answer = produce(raw, "nope", value);
        assert_eq!(error_code(&answer), Some(ErrorCode::UnknownTopic));
    }
}

#[test]
fn seek_by_time_is_version_2_only() {
    use protocol::ops::fetch::{ListOffsetsRequest, PartitionTime};
    use protocol::ops::subscribe::{StartPosition, SubscribeRequest, SubscribeTarget};
    let broker = Brokerd::start();
    let mut old = Raw::handshaken_at(broker.addr(), &[1]);
    let mut new = Raw::handshaken_at(broker.addr(), &[1, 2]);
    create_topic(&mut new, "t", 1);
    produce(&mut new, "t", b"stamped at 1 ms");
    let list = Request::ListOffsets(ListOffsetsRequest {
        topic: "t".into(),
        partitions: vec![PartitionTime {
            partition: 0,
            timestamp_ms: 1,
        }],
    });
    match new.call(list.clone()) {
        Message::Response {
            response: Response::ListOffsets(answer),
            ..
        } => assert_eq!(answer.offsets[0].offset, 0),
        other => panic!("{other:?}"),
    }
    let subscribe = Request::Subscribe(SubscribeRequest {
        topic: "t".into(),
        target: SubscribeTarget::Partition(0),
        start: StartPosition::Timestamp(2),
        credit_messages: 10,
        credit_bytes: 1 << 20,
    });
    assert!(matches!(
        new.call(subscribe.clone()),
        Message::Response {
            response: Response::Subscribe(_),
            ..
        }
    ));

    // Version 1 has neither: the operation is unknown, and tag 3 does not decode.
    let mut frame = BytesMut::new();
    Message::Request {
        correlation_id: 5,
        request: list,
    }
    .encode(2, &mut frame)
    .unwrap();
    frame[4..6].copy_from_slice(&1u16.to_le_bytes());
    old.send_bytes(&frame);
    let answer = old.receive().unwrap();
    assert_eq!(
        error_code(&answer),
        Some(ErrorCode::UnknownOperation),
        "{answer:?}"
    );
    let mut frame = BytesMut::new();
    Message::Request {
        correlation_id: 6,
        request: subscribe,
    }
    .encode(2, &mut frame)
    .unwrap();
    frame[4..6].copy_from_slice(&1u16.to_le_bytes());
    old.send_bytes(&frame);
    let answer = old.receive().unwrap();
    assert_eq!(answer.correlation_id(), 6);
    assert_eq!(
        error_code(&answer),
        Some(ErrorCode::MalformedFrame),
        "{answer:?}"
    );
}

#[test]
fn produce_fetch_and_errors_over_raw_frames() {
    let broker = Brokerd::start();
    let mut raw = Raw::handshaken(broker.addr());
    create_topic(&mut raw, "t", 2);
    let answer = raw.call(Request::CreateTopic(CreateTopicRequest {
        name: "t".into(),
        partitions: 1,
        config: vec![],
    }));
    assert_eq!(error_code(&answer), Some(ErrorCode::TopicExists));
    match produce(&mut raw, "t", b"hello") {
        Message::Response {
            response: Response::Produce(p),
            ..
        } => assert_eq!(p.base_offset, Some(0)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        error_code(&produce(&mut raw, "nope", b"x")),
        Some(ErrorCode::UnknownTopic)
    );
    let fetch = FetchRequest {
        topic: "t".into(),
        partition: 0,
        offset: 0,
        max_bytes: 1 << 20,
        max_wait_ms: 0,
    };
    match raw.call(Request::Fetch(fetch)) {
        Message::Response {
            response: Response::Fetch(f),
            ..
        } => {
            assert_eq!(f.high_watermark, 1);
            let view = protocol::batch::BatchView::new(&f.batches).unwrap();
            assert_eq!(
                view.records().next().unwrap().unwrap().value,
                Some(&b"hello"[..])
            );
        }
        other => panic!("{other:?}"),
    }
    let fetch = FetchRequest {
        topic: "t".into(),
        partition: 5,
        offset: 0,
        max_bytes: 100,
        max_wait_ms: 0,
    };
    assert_eq!(
        error_code(&raw.call(Request::Fetch(fetch))),
        Some(ErrorCode::InvalidPartition)
    );
    let fetch = FetchRequest {
        topic: "t".into(),
        partition: 0,
        offset: 7,
        max_bytes: 100,
        max_wait_ms: 0,
    };
    assert_eq!(
        error_code(&raw.call(Request::Fetch(fetch))),
        Some(ErrorCode::OffsetOutOfRange)
    );
}

#[test]
fn a_long_poll_fetch_is_answered_when_data_arrives() {
    let broker = Brokerd::start();
    let mut raw = Raw::handshaken(broker.addr());
    create_topic(&mut raw, "t", 1);
    let fetch = FetchRequest {
        topic: "t".into(),
        partition: 0,
        offset: 0,
        max_bytes: 1 << 20,
        max_wait_ms: 20_000,
    };
    let waiting = raw.send(Request::Fetch(fetch));
    // Pipelined on the same connection: the produce is answered first, then the fetch.
    let mut producer = Raw::handshaken(broker.addr());
    assert!(matches!(
        produce(&mut producer, "t", b"late"),
        Message::Response { .. }
    ));
    let answer = raw.receive().unwrap();
    assert_eq!(answer.correlation_id(), waiting);
    match answer {
        Message::Response {
            response: Response::Fetch(f),
            ..
        } => assert!(!f.batches.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_malformed_frame_gets_an_error_and_a_closed_connection_while_others_carry_on() {
    let broker = Brokerd::start();
    let mut good = Raw::handshaken(broker.addr());
    create_topic(&mut good, "t", 1);

    // A ListTopics frame whose body has a trailing byte: readable header, bad body.
    let mut bad = Raw::handshaken(broker.addr());
    let mut frame = BytesMut::new();
    Message::Request {
        correlation_id: 77,
        request: Request::ListTopics(ListTopicsRequest {
            include_internal: false,
        }),
    }
    .encode(bad.version(), &mut frame)
    .unwrap();
    let len = u32::from_le_bytes(frame[0..4].try_into().unwrap()) + 1;
    frame[0..4].copy_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&[0xee]);
    bad.send_bytes(&frame);
    let answer = bad.receive().unwrap();
    assert_eq!(answer.correlation_id(), 77);
    assert_eq!(error_code(&answer), Some(ErrorCode::MalformedFrame));
    assert!(bad.receive().is_none(), "closed after a malformed frame");

    // An absurd length prefix: answered (the header is readable) and closed, without
    // the server allocating or waiting for 4 GiB.
    let mut huge = Raw::handshaken(broker.addr());
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&u32::MAX.to_le_bytes());
    frame.extend_from_slice(&[1, 0, 12, 0, 0, 0, 9, 0, 0, 0]);
    huge.send_bytes(&frame);
    let answer = huge.receive().unwrap();
    assert_eq!(error_code(&answer), Some(ErrorCode::FrameTooLarge));
    assert!(huge.receive().is_none());

    // Garbage before any handshake.
    let mut garbage = Raw::connect(broker.addr());
    garbage.send_bytes(&[3, 0, 0, 0, 1, 2, 3]);
    assert!(garbage.receive().is_none_or(|m| error_code(&m).is_some()));

    // Everyone else is still served.
    assert!(matches!(
        produce(&mut good, "t", b"still here"),
        Message::Response { .. }
    ));
}

#[test]
fn connections_over_the_limit_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("brokerd.toml");
    std::fs::write(&config, "[limits]\nmax_connections = 2\n").unwrap();
    let broker = Brokerd::start_with(&["--config", config.to_str().unwrap()]);
    let _a = Raw::handshaken(broker.addr());
    let _b = Raw::handshaken(broker.addr());
    let mut c = Raw::connect(broker.addr());
    let answer = c.receive().unwrap();
    assert_eq!(error_code(&answer), Some(ErrorCode::TooManyConnections));
}

#[test]
fn graceful_shutdown_on_sigterm_leaves_clean_logs() {
    let mut broker = Brokerd::start();
    let mut raw = Raw::handshaken(broker.addr());
    create_topic(&mut raw, "t", 1);
    assert!(matches!(
        produce(&mut raw, "t", b"x"),
        Message::Response { .. }
    ));
    assert!(broker.stop(), "brokerd exits 0 after SIGTERM");
    let marker = broker.data_dir().join("topics/t/0/clean-shutdown");
    assert!(marker.exists(), "the partition log was closed cleanly");
}
