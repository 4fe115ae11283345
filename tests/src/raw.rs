//! A raw protocol connection for black-box tests: frames as bytes, no client library,
//! so a test can send what a real client never would (a stalled half frame, a bogus
//! length) and read exactly what brokerd answers.

// Test support: a failed connect or a malformed answer is the test's failure, and a
// panic with the reason is how a test reports it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use protocol::ops::handshake::HandshakeRequest;
use protocol::{FrameDecoder, Message, Request};

/// One raw connection to brokerd, with a read timeout of 10 s.
pub struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    next_id: u32,
    /// The version requests are encoded in, and every answer after the handshake's
    /// must carry: 1 until a handshake picks another.
    version: u16,
}

impl Raw {
    /// Connects, without a handshake.
    pub fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            stream,
            buf: BytesMut::new(),
            next_id: 1,
            version: 1,
        }
    }

    /// Connects and handshakes at protocol version 1, as the oldest client would:
    /// every version-1 layout must keep working against every later broker.
    pub fn handshaken(addr: &str) -> Raw {
        Raw::handshaken_at(addr, &[1])
    }

    /// Connects and handshakes offering `versions`; later requests use the one the
    /// broker picks.
    pub fn handshaken_at(addr: &str, versions: &[u16]) -> Raw {
        let mut raw = Raw::connect(addr);
        let hello = HandshakeRequest {
            versions: versions.to_vec(),
            client_name: "wire-test".into(),
            auth: None,
        };
        match raw.call(Request::Handshake(hello)) {
            Message::Response {
                response: protocol::Response::Handshake(answer),
                ..
            } => raw.version = answer.version,
            other => panic!("handshake refused: {other:?}"),
        }
        raw
    }

    /// The protocol version this connection speaks.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Writes raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends a request; returns its correlation id.
    pub fn send(&mut self, request: Request) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        let mut out = BytesMut::new();
        Message::Request {
            correlation_id: id,
            request,
        }
        .encode(self.version, &mut out)
        .unwrap();
        self.send_bytes(&out);
        id
    }

    /// The next message, or None once the server closed the connection.
    pub fn receive(&mut self) -> Option<Message> {
        loop {
            if let Some(frame) = FrameDecoder::new().decode(&mut self.buf).unwrap() {
                let header = frame.header;
                let message = Message::decode(frame).unwrap();
                if !matches!(
                    &message,
                    Message::Response {
                        response: protocol::Response::Handshake(_),
                        ..
                    }
                ) {
                    assert_eq!(
                        header.version, self.version,
                        "every frame after the handshake carries the negotiated version"
                    );
                }
                return Some(message);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends a request and reads its answer.
    pub fn call(&mut self, request: Request) -> Message {
        let id = self.send(request);
        let message = self.receive().expect("an answer");
        assert_eq!(message.correlation_id(), id);
        message
    }
}
