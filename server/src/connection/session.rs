//! Admission of requests on one session: the handshake comes first, once, and names
//! the protocol version every later frame must carry. Pure: no I/O, no broker.

use std::sync::Arc;

use protocol::ops::handshake::HandshakeResponse;
use protocol::Request;

use crate::error::BrokerError;

/// What to do with a request.
#[derive(Debug)]
pub enum Admission {
    /// The handshake: answer with `response`; the session is now open for `client`.
    Opened {
        /// The answer.
        response: HandshakeResponse,
        /// The client's name, for the handlers' context.
        client: Arc<str>,
    },
    /// Serve the request.
    Serve,
    /// Answer with `error`; if `close`, then close the connection.
    Refused {
        /// The answer.
        error: BrokerError,
        /// Whether the connection closes after it.
        close: bool,
    },
}

/// The handshake state of one connection.
#[derive(Debug)]
pub struct Session {
    max_frame_bytes: u32,
    /// The negotiated version, once the handshake is done.
    version: Option<u16>,
}

impl Session {
    /// A session awaiting its handshake; the server announces `max_frame_bytes`.
    pub fn new(max_frame_bytes: u32) -> Session {
        Session {
            max_frame_bytes,
            version: None,
        }
    }

    /// Decides what happens to `request`, which arrived in a frame of header version
    /// `frame_version`.
    pub fn admit(&mut self, frame_version: u16, request: &Request) -> Admission {
        let Some(negotiated) = self.version else {
            return self.handshake(request);
        };
        if let Request::Handshake(_) = request {
            return Admission::Refused {
                error: BrokerError::HandshakeRequired(
                    "the handshake was already done on this connection",
                ),
                close: false,
            };
        }
        if frame_version != negotiated {
            return Admission::Refused {
                error: BrokerError::WrongVersion {
                    version: frame_version,
                    negotiated,
                },
                close: false,
            };
        }
        Admission::Serve
    }

    fn handshake(&mut self, request: &Request) -> Admission {
        let Request::Handshake(hello) = request else {
            return Admission::Refused {
                error: BrokerError::HandshakeRequired("send Handshake first"),
                close: true,
            };
        };
        let Some(version) = protocol::negotiate_version(&hello.versions) else {
            return Admission::Refused {
                error: BrokerError::UnsupportedVersion {
                    offered: hello.versions.clone(),
                },
                close: true,
            };
        };
        self.version = Some(version);
        Admission::Opened {
            response: HandshakeResponse {
                version,
                server_name: format!("brokerd {}", env!("CARGO_PKG_VERSION")),
                max_frame_bytes: self.max_frame_bytes,
            },
            client: Arc::from(hello.client_name.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ops::handshake::HandshakeRequest;
    use protocol::ops::Empty;
    use protocol::ErrorCode;

    fn hello(versions: &[u16]) -> Request {
        Request::Handshake(HandshakeRequest {
            versions: versions.to_vec(),
            client_name: "test/1".into(),
            auth: None,
        })
    }

    fn refused(admission: Admission) -> (ErrorCode, bool) {
        match admission {
            Admission::Refused { error, close } => (error.code(), close),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_first_handshake_opens_the_session_at_the_highest_shared_version() {
        let mut session = Session::new(4096);
        match session.admit(1, &hello(&[7, 1, 0])) {
            Admission::Opened { response, client } => {
                assert_eq!(response.version, 1);
                assert_eq!(response.max_frame_bytes, 4096);
                assert_eq!(&*client, "test/1");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            session.admit(1, &Request::ListGroups(Empty)),
            Admission::Serve
        ));
    }

    #[test]
    fn a_second_handshake_is_refused_and_the_session_goes_on() {
        let mut session = Session::new(4096);
        assert!(matches!(
            session.admit(1, &hello(&[1])),
            Admission::Opened { .. }
        ));
        assert_eq!(
            refused(session.admit(1, &hello(&[1]))),
            (ErrorCode::HandshakeRequired, false)
        );
        assert!(matches!(
            session.admit(1, &Request::ListRoutes(Empty)),
            Admission::Serve
        ));
    }

    #[test]
    fn an_unsupported_version_is_refused_and_closes() {
        let mut session = Session::new(4096);
        assert_eq!(
            refused(session.admit(1, &hello(&[0, 4, 99]))),
            (ErrorCode::UnsupportedVersion, true)
        );
        let mut session = Session::new(4096);
        assert_eq!(
            refused(session.admit(1, &hello(&[]))),
            (ErrorCode::UnsupportedVersion, true)
        );
    }

    #[test]
    fn a_request_before_the_handshake_is_refused_and_closes() {
        let mut session = Session::new(4096);
        assert_eq!(
            refused(session.admit(1, &Request::ServerStats(Empty))),
            (ErrorCode::HandshakeRequired, true)
        );
    }

    #[test]
    fn a_frame_in_another_version_than_negotiated_is_refused() {
        let mut session = Session::new(4096);
        assert!(matches!(
            session.admit(1, &hello(&[1])),
            Admission::Opened { .. }
        ));
        assert_eq!(
            refused(session.admit(2, &Request::ListGroups(Empty))),
            (ErrorCode::UnsupportedVersion, false)
        );
    }
}
