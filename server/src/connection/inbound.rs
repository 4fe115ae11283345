//! What a connection does with each frame it reads: serve a request, or answer what
//! is not one and perhaps close. Pure: the rules of `docs/protocol.md` ("Error
//! codes") in one function.

use protocol::codec::CodecError;
use protocol::{DecodeError, Frame, FrameError, Message, Request};

use crate::error::BrokerError;

/// One frame read, classified.
#[derive(Debug)]
pub enum Inbound {
    /// A request to admit and serve.
    Request {
        /// The frame's header version.
        version: u16,
        /// Its correlation id.
        correlation_id: u32,
        /// The request.
        request: Request,
    },
    /// Not a request the server can serve.
    Refused {
        /// The answer, with the correlation id and op it goes to, when the frame's
        /// header could be read.
        answer: Option<(u32, u16, BrokerError)>,
        /// Whether the connection closes after it: the stream is out of step, or the
        /// peer is not speaking the protocol.
        close: bool,
    },
}

/// Classifies what the frame reader produced.
pub fn classify(read: Result<Frame, CodecError>) -> Inbound {
    let frame = match read {
        Ok(frame) => frame,
        // The length prefix was out of range: the rest of the stream cannot be read.
        Err(CodecError::Frame(error)) => return refused(error, true),
        Err(_) => {
            return Inbound::Refused {
                answer: None,
                close: true,
            }
        }
    };
    let version = frame.header.version;
    match Message::decode(frame) {
        Ok(Message::Request {
            correlation_id,
            request,
        }) => Inbound::Request {
            version,
            correlation_id,
            request,
        },
        Ok(other) => {
            let header = other.header(version);
            let error = FrameError::Invalid {
                correlation_id: other.correlation_id(),
                op: header.op,
                source: DecodeError::WrongDirection {
                    op: header.op,
                    flags: header.kind.flags(),
                },
            };
            refused(error, true)
        }
        // An unknown operation is answered and the connection goes on (newer clients
        // may probe); anything else malformed closes it.
        Err(error) => {
            let unknown_op = matches!(
                &error,
                FrameError::Invalid {
                    source: DecodeError::UnknownOperation { .. },
                    ..
                }
            );
            refused(error, !unknown_op)
        }
    }
}

fn refused(error: FrameError, close: bool) -> Inbound {
    let op = match &error {
        FrameError::Invalid { op, .. } => *op,
        FrameError::TooLarge { .. } | FrameError::TooShort { .. } => 0,
    };
    // A length below a header's leaves no correlation id to answer to; it is answered
    // `malformed_frame` all the same (to id 0), as the protocol document says.
    let correlation_id = match &error {
        FrameError::TooShort { .. } => Some(0),
        _ => error.correlation_id(),
    };
    let answer =
        correlation_id.map(|correlation_id| (correlation_id, op, BrokerError::Frame(error)));
    Inbound::Refused { answer, close }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use protocol::ops::Empty;
    use protocol::{ErrorCode, FrameKind, Header, Response};

    fn frame_of(message: &Message) -> Frame {
        let mut buf = BytesMut::new();
        message
            .encode(protocol::PROTOCOL_VERSION, &mut buf)
            .unwrap();
        protocol::FrameDecoder::new()
            .decode(&mut buf)
            .unwrap()
            .unwrap()
    }

    fn answer_code(inbound: Inbound) -> (Option<ErrorCode>, bool) {
        match inbound {
            Inbound::Refused { answer, close } => (answer.map(|(_, _, e)| e.code()), close),
            Inbound::Request { .. } => panic!("expected a refusal"),
        }
    }

    #[test]
    fn a_request_is_served() {
        let message = Message::Request {
            correlation_id: 7,
            request: Request::ListGroups(Empty),
        };
        match classify(Ok(frame_of(&message))) {
            Inbound::Request {
                version,
                correlation_id,
                request,
            } => {
                assert_eq!((version, correlation_id), (protocol::PROTOCOL_VERSION, 7));
                assert_eq!(request, Request::ListGroups(Empty));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_response_from_a_client_is_malformed_and_closes() {
        let message = Message::Response {
            correlation_id: 3,
            response: Response::ListGroups(protocol::ops::group::ListGroupsResponse {
                groups: vec![],
            }),
        };
        let frame = frame_of(&message);
        assert_eq!(frame.header.kind, FrameKind::Response);
        assert_eq!(
            answer_code(classify(Ok(frame))),
            (Some(ErrorCode::MalformedFrame), true)
        );
    }

    #[test]
    fn an_unknown_operation_is_answered_and_the_connection_goes_on() {
        let frame = Frame {
            header: Header {
                version: 1,
                op: 999,
                kind: FrameKind::Request,
                correlation_id: 9,
            },
            body: bytes::Bytes::new(),
        };
        assert_eq!(
            answer_code(classify(Ok(frame))),
            (Some(ErrorCode::UnknownOperation), false)
        );
    }

    #[test]
    fn an_oversized_frame_is_answered_when_its_id_is_known_and_closes() {
        let error = FrameError::TooLarge {
            declared: 1 << 30,
            max: 1024,
            correlation_id: Some(4),
        };
        assert_eq!(
            answer_code(classify(Err(CodecError::Frame(error)))),
            (Some(ErrorCode::FrameTooLarge), true)
        );
        let short = FrameError::TooShort { declared: 3 };
        assert_eq!(
            answer_code(classify(Err(CodecError::Frame(short)))),
            (Some(ErrorCode::MalformedFrame), true),
            "answered to id 0, then closed"
        );
        let io = std::io::Error::other("reset");
        assert_eq!(answer_code(classify(Err(CodecError::Io(io)))), (None, true));
    }
}
