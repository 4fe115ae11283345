//! The client's authentication against fake brokers on a real socket: one that runs
//! the broker's own SCRAM code, one that refuses everyone, an impostor that cannot
//! prove it holds the user's verifier, and one that requires authentication from a
//! client without credentials. (The real brokerd is in `tests/tests/security_cli.rs`.)

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth::scram::{ScramServer, StoredCredential};
use bytes::{Bytes, BytesMut};
use client::protocol::codec::ProtocolCodec;
use client::protocol::ops::handshake::HandshakeResponse;
use client::protocol::ops::security::{AuthenticateResponse, WhoAmIResponse};
use client::protocol::{ErrorResponse, Message, Request, Response, HANDSHAKE_VERSION};
use client::{AuthFailure, Client, ClientConfig, ClientError, Credentials, ErrorCode};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpListener;
use tokio_util::codec::FramedRead;

const VERSION: u16 = 3;
/// Attempts the client may make: a refusal must take one, whatever this says.
const ATTEMPTS: u32 = 4;

fn config() -> ClientConfig {
    ClientConfig::default()
        .reconnect_max_attempts(ATTEMPTS)
        .reconnect_backoff(Duration::from_millis(1), Duration::from_millis(2))
}

/// What a fake broker does with Authenticate requests.
#[derive(Clone)]
enum Broker {
    /// Runs the broker's SCRAM side against this verifier of user "alice"; after a
    /// WhoAmI, answered with "alice#N" (N: how many connections authenticated so far),
    /// closes the connection.
    Scram(StoredCredential),
    /// Answers `authentication_failed` to the first step.
    Refuses,
    /// Does not know the verifier: sends a plausible server-first, then "complete"
    /// with a forged signature.
    Impostor,
    /// Answers every request but the handshake with `authentication_required`.
    RequiresAuthentication,
}

/// Counts of what a fake broker saw.
#[derive(Default)]
struct Seen {
    connections: AtomicU32,
    authenticated: AtomicU32,
}

async fn fake_broker(broker: Broker) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        let scram = ScramServer::new(&mut rand::thread_rng());
        while let Ok((socket, _)) = listener.accept().await {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            let (read, mut write) = socket.into_split();
            let mut frames = FramedRead::new(read, ProtocolCodec::new());
            let mut exchange = None;
            while let Some(Ok(frame)) = frames.next().await {
                let Ok(Message::Request {
                    correlation_id,
                    request,
                }) = Message::decode(frame)
                else {
                    break;
                };
                let answer = match (&broker, request) {
                    (_, Request::Handshake(_)) => {
                        let response = Response::Handshake(HandshakeResponse {
                            version: VERSION,
                            server_name: "fake".into(),
                            max_frame_bytes: 1 << 20,
                        });
                        send(&mut write, HANDSHAKE_VERSION, correlation_id, Ok(response)).await;
                        continue;
                    }
                    (Broker::RequiresAuthentication, _) | (Broker::Refuses, _) => {
                        let code = match broker {
                            Broker::Refuses => ErrorCode::AuthenticationFailed,
                            _ => ErrorCode::AuthenticationRequired,
                        };
                        Err(code)
                    }
                    (Broker::Scram(stored), Request::Authenticate(step)) => match exchange.take() {
                        None => {
                            let (next, first) = scram
                                .start(
                                    &step.payload,
                                    |user| (user == "alice").then(|| stored.clone()),
                                    &mut rand::thread_rng(),
                                )
                                .unwrap();
                            exchange = Some(next);
                            Ok(authenticate(&first, false))
                        }
                        Some(last) => match last.finish(&step.payload) {
                            Ok((_, last)) => {
                                counts.authenticated.fetch_add(1, Ordering::SeqCst);
                                Ok(authenticate(&last, true))
                            }
                            Err(_) => Err(ErrorCode::AuthenticationFailed),
                        },
                    },
                    (Broker::Scram(_), Request::WhoAmI(_)) => {
                        let n = counts.authenticated.load(Ordering::SeqCst);
                        let me = WhoAmIResponse {
                            principal: format!("alice#{n}"),
                            authenticated_by: "SCRAM-SHA-256".into(),
                        };
                        send(
                            &mut write,
                            VERSION,
                            correlation_id,
                            Ok(Response::WhoAmI(me)),
                        )
                        .await;
                        break;
                    }
                    (Broker::Impostor, Request::Authenticate(step)) => {
                        let mut rng = rand::thread_rng();
                        let made_up = StoredCredential::generate("?", 4096, &mut rng).unwrap();
                        match scram.start(&step.payload, |_| Some(made_up), &mut rng) {
                            Ok((_, first)) => Ok(authenticate(&first, false)),
                            // The client-final: claim success with a forged signature.
                            Err(_) => Ok(authenticate(
                                b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                                true,
                            )),
                        }
                    }
                    (_, other) => panic!("unexpected {other:?}"),
                };
                let failed = answer.is_err();
                send(&mut write, VERSION, correlation_id, answer).await;
                if failed {
                    break;
                }
            }
        }
    });
    (addr, seen)
}

fn authenticate(payload: &[u8], complete: bool) -> Response {
    Response::Authenticate(AuthenticateResponse {
        payload: Bytes::copy_from_slice(payload),
        complete,
        principal: if complete {
            "alice".into()
        } else {
            String::new()
        },
    })
}

async fn send(
    write: &mut OwnedWriteHalf,
    version: u16,
    correlation_id: u32,
    answer: Result<Response, ErrorCode>,
) {
    let message = match answer {
        Ok(response) => Message::Response {
            correlation_id,
            response,
        },
        Err(code) => Message::Error {
            correlation_id,
            op: 0,
            error: ErrorResponse {
                code,
                message: "authentication failed".into(),
            },
        },
    };
    let mut buf = BytesMut::new();
    message.encode(version, &mut buf).unwrap();
    let _ = write.write_all(&buf).await;
}

fn verifier(password: &str) -> StoredCredential {
    StoredCredential::generate(password, 4096, &mut rand::thread_rng()).unwrap()
}

#[tokio::test]
async fn scram_authenticates_and_every_reconnect_authenticates_again() {
    let (addr, seen) = fake_broker(Broker::Scram(verifier("pencil"))).await;
    let config = config().credentials(Credentials::scram_sha_256("alice", "pencil"));
    let client = Client::connect_with(&addr, config).await.unwrap();
    assert_eq!(client.whoami().await.unwrap().principal, "alice#1");
    // The broker closed the connection after answering; the next request reconnects
    // (a request that raced the close fails as lost, and is asked again).
    let mut tries = 0;
    let me = loop {
        tries += 1;
        match client.whoami().await {
            Ok(me) => break me,
            Err(ClientError::ConnectionLost { .. }) if tries < 10 => continue,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(me.principal, "alice#2");
    assert_eq!(seen.authenticated.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_wrong_password_fails_at_once_and_names_the_user() {
    let (addr, seen) = fake_broker(Broker::Scram(verifier("pencil"))).await;
    let config = config().credentials(Credentials::scram_sha_256("alice", "crayon"));
    let error = Client::connect_with(&addr, config).await.unwrap_err();
    assert!(
        matches!(
            &error,
            ClientError::Authentication {
                reason: AuthFailure::Refused,
                ..
            }
        ),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.starts_with("authentication failed for user \"alice\" (SCRAM-SHA-256)"),
        "{text}"
    );
    assert!(!text.contains("crayon"), "{text}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1, "not retried");
    assert!(!error.is_connection_error());
}

#[tokio::test]
async fn a_refusal_is_not_retried() {
    let (addr, seen) = fake_broker(Broker::Refuses).await;
    let config = config().credentials(Credentials::scram_sha_256("bob", "pw"));
    let error = Client::connect_with(&addr, config).await.unwrap_err();
    assert!(
        matches!(
            &error,
            ClientError::Authentication {
                reason: AuthFailure::Refused,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_broker_that_cannot_prove_itself_is_dropped() {
    let (addr, seen) = fake_broker(Broker::Impostor).await;
    let config = config().credentials(Credentials::scram_sha_256("alice", "pencil"));
    let error = Client::connect_with(&addr, config).await.unwrap_err();
    assert!(
        matches!(
            &error,
            ClientError::Authentication {
                reason: AuthFailure::ServerNotVerified,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("could not prove"), "{error}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1, "not retried");
}

#[tokio::test]
async fn plain_is_not_sent_on_a_plaintext_connection() {
    let (addr, seen) = fake_broker(Broker::Refuses).await;
    let config = config().credentials(Credentials::plain("alice", "hunter2"));
    let error = Client::connect_with(&addr, config).await.unwrap_err();
    assert!(
        matches!(
            &error,
            ClientError::Authentication {
                reason: AuthFailure::PlainWithoutTls,
                ..
            }
        ),
        "{error}"
    );
    // Refused after the handshake (which says whether the broker is new enough),
    // before any Authenticate, and not retried.
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_client_without_credentials_is_told_to_configure_them() {
    let (addr, _) = fake_broker(Broker::RequiresAuthentication).await;
    let client = Client::connect_with(&addr, config()).await.unwrap();
    let error = client.list_topics(false).await.unwrap_err();
    assert!(
        matches!(&error, ClientError::AuthenticationRequired { .. }),
        "{error}"
    );
    let text = error.to_string();
    assert!(text.contains("requires authentication"), "{text}");
    assert!(text.contains("ClientConfig::credentials"), "{text}");
    assert!(text.contains("BROKER_USER"), "{text}");
}
