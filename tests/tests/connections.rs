//! Connections that stall, sit idle, or come over the connection limit: closed on
//! time, answered, and never able to lock everyone out. Starts the real binary with
//! short timeouts; every wait below is a deadline for something to happen, not a
//! sleep that hopes it did.

use std::io::Write;
use std::time::{Duration, Instant};

use integration_tests::raw::Raw;
use integration_tests::Brokerd;
use protocol::ops::handshake::HandshakeRequest;
use protocol::ops::subscribe::{StartPosition, SubscribeRequest, SubscribeTarget};
use protocol::ops::topic::CreateTopicRequest;
use protocol::ops::Empty;
use protocol::{ErrorCode, Message, Request};

/// brokerd with `limits` (TOML lines for the `[limits]` table) in a config file.
fn brokerd(limits: &str) -> (Brokerd, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("brokerd.toml");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "[limits]\n{limits}").unwrap();
    drop(file);
    let broker = Brokerd::start_with(&["--config", path.to_str().unwrap()]);
    (broker, dir)
}

const SHORT: &str =
    "handshake_timeout_ms = 300\nframe_read_timeout_ms = 300\nidle_timeout_ms = 400";

fn code(message: &Message) -> Option<ErrorCode> {
    match message {
        Message::Error { error, .. } => Some(error.code),
        _ => None,
    }
}

fn hello() -> Request {
    Request::Handshake(HandshakeRequest {
        versions: vec![1],
        client_name: "connections-test".into(),
        auth: None,
    })
}

/// Waits until the server closes `raw` (reading it to the end) or 10 s pass.
fn closed_within_deadline(raw: &mut Raw) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if raw.receive().is_none() {
            return true;
        }
    }
    false
}

#[test]
fn silent_stalled_and_idle_connections_are_closed_and_free_their_slots() {
    let (broker, _config) = brokerd(&format!("max_connections = 3\n{SHORT}"));
    // Never handshakes.
    let mut silent = Raw::connect(broker.addr());
    // Handshakes, then sends 3 bytes of a frame and stops.
    let mut stalled = Raw::handshaken(broker.addr());
    stalled.send_bytes(&[40, 0, 0]);
    // Handshakes, then sends nothing.
    let mut idle = Raw::handshaken(broker.addr());
    for (name, raw) in [
        ("silent", &mut silent),
        ("stalled", &mut stalled),
        ("idle", &mut idle),
    ] {
        assert!(
            closed_within_deadline(raw),
            "the {name} connection was closed"
        );
    }
    // Their slots are free again: a client gets in and is served.
    let mut client = Raw::handshaken(broker.addr());
    assert!(matches!(
        client.call(Request::ListGroups(Empty)),
        Message::Response { .. }
    ));
}

#[test]
fn a_subscriber_that_sends_nothing_is_not_idle() {
    let (broker, _config) = brokerd(SHORT);
    let mut raw = Raw::handshaken(broker.addr());
    let create = CreateTopicRequest {
        name: "feed".into(),
        partitions: 1,
        config: vec![],
    };
    assert!(matches!(
        raw.call(Request::CreateTopic(create)),
        Message::Response { .. }
    ));
    let subscribe = SubscribeRequest {
        topic: "feed".into(),
        target: SubscribeTarget::Partition(0),
        start: StartPosition::Latest,
        credit_messages: 10,
        credit_bytes: 1 << 20,
    };
    assert!(matches!(
        raw.call(Request::Subscribe(subscribe)),
        Message::Response { .. }
    ));
    // Three idle timeouts pass: a connection with nothing in flight would be closed by
    // now, one with a subscription stays. (The one sleep of this file: that nothing
    // happens can only be seen by letting the time pass.)
    std::thread::sleep(Duration::from_millis(1_300));
    assert!(matches!(
        raw.call(Request::ServerStats(Empty)),
        Message::Response { .. }
    ));
}

#[test]
fn before_the_handshake_a_frame_may_not_be_large() {
    let (broker, _config) = brokerd("");
    let mut raw = Raw::connect(broker.addr());
    // A length of 1 MiB, then a header with correlation id 7: refused before a byte of
    // the body is read or reserved.
    let mut frame = (1u32 << 20).to_le_bytes().to_vec();
    frame.extend_from_slice(&[1, 0, 1, 0, 0, 0, 7, 0, 0, 0]);
    raw.send_bytes(&frame);
    let answer = raw.receive().expect("an answer");
    assert_eq!(code(&answer), Some(ErrorCode::FrameTooLarge));
    assert_eq!(answer.correlation_id(), 7);
    assert!(raw.receive().is_none(), "then closed");
}

#[test]
fn over_the_limit_every_client_reads_too_many_connections() {
    let (broker, _config) = brokerd("max_connections = 1");
    let _held = Raw::handshaken(broker.addr());
    for attempt in 0..10 {
        let mut raw = Raw::connect(broker.addr());
        let id = raw.send(hello());
        let answer = raw
            .receive()
            .expect("an answer, not a bare close or a reset");
        assert_eq!(
            code(&answer),
            Some(ErrorCode::TooManyConnections),
            "attempt {attempt}"
        );
        assert_eq!(answer.correlation_id(), id, "answered to the handshake");
        assert!(raw.receive().is_none(), "then closed");
    }
}

#[test]
fn lengths_below_a_header_are_answered_malformed_frame_then_closed() {
    let (broker, _config) = brokerd("");
    for length in [0u32, 9] {
        let mut raw = Raw::handshaken(broker.addr());
        raw.send_bytes(&length.to_le_bytes());
        raw.send_bytes(&vec![0; length as usize]);
        let answer = raw.receive().expect("an answer");
        assert_eq!(
            code(&answer),
            Some(ErrorCode::MalformedFrame),
            "length {length}"
        );
        assert!(raw.receive().is_none(), "length {length}: then closed");
    }
}
