//! Authentication: the SASL exchange that follows the handshake on every new
//! connection of a client with [`Credentials`].
//!
//! Like the handshake it runs on the bare stream, before the reader and writer tasks
//! exist: nothing else may be sent until the broker says the exchange is complete.
//! It is two parts:
//! - [`ClientSasl`], the pure client side of a mechanism: what to send first, and what
//!   to send (or whether to stop) given the broker's answer. SCRAM-SHA-256 takes two
//!   steps and ends by checking the broker's signature, so a broker that does not hold
//!   the user's verifier is not trusted; PLAIN takes one, and is only sent on an
//!   encrypted connection (it carries the password itself);
//! - [`authenticate`], the I/O: one Authenticate request per step (correlation ids 2
//!   and 3; every one is answered before the connection's reader starts, so the
//!   connection's own ids may start at 2 again), and the sorting of what can go wrong
//!   for the retry loop: a refusal or a broker that fails its proof is fatal (the same
//!   credentials would fail again), a connection that drops mid-way is retried.
//!
//! Nothing here logs or formats the password or a message that carries it.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use protocol::codec::{CodecError, ProtocolCodec};
use protocol::ops::security::{AuthenticateRequest, AuthenticateResponse};
use protocol::{ErrorCode, Message, Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;

use super::open::OpenError;
use crate::credentials::{Credentials, Mechanism};
use crate::error::{AuthFailure, ClientError};

/// The protocol version that introduced Authenticate.
const AUTHENTICATE_VERSION: u16 = 3;

/// Correlation id of the first Authenticate request (the handshake's is 1).
const FIRST_CORRELATION_ID: u32 = 2;

/// The most steps any mechanism takes (SCRAM-SHA-256: two), so that a broker that
/// keeps answering "not complete" cannot hold a connection attempt forever.
const MAX_STEPS: u32 = 2;
/// The first correlation id free for requests once an exchange has run: the
/// connection's own ids start here, so no id of the exchange is ever reused.
pub(super) const FIRST_ID_AFTER_AUTHENTICATION: u32 = FIRST_CORRELATION_ID + MAX_STEPS;

/// What the connection is, as far as authentication cares.
#[derive(Debug, Clone, Copy)]
pub(super) struct Link<'a> {
    /// The broker's address, for messages.
    pub(super) addr: &'a str,
    /// The protocol version the handshake settled.
    pub(super) version: u16,
    /// Whether the stream is encrypted (TLS), which PLAIN requires.
    pub(super) encrypted: bool,
}

/// Runs the exchange for `credentials` and returns the principal the broker
/// authenticated. I/O errors are sorted for the retry loop by `sort`, as the
/// handshake's are (a TLS failure is fatal, a reset is retried).
pub(super) async fn authenticate<R, W>(
    frames: &mut FramedRead<R, ProtocolCodec>,
    write: &mut W,
    link: Link<'_>,
    credentials: &Credentials,
    sort: &impl Fn(std::io::Error) -> OpenError,
) -> Result<String, OpenError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let failed = |reason| {
        OpenError::Fatal(ClientError::Authentication {
            addr: link.addr.to_string(),
            user: credentials.user().to_string(),
            mechanism: credentials.mechanism(),
            reason,
        })
    };
    if link.version < AUTHENTICATE_VERSION {
        return Err(failed(AuthFailure::BrokerTooOld {
            version: link.version,
        }));
    }
    let (mut sasl, mut message) = ClientSasl::start(credentials, link.encrypted).map_err(failed)?;
    for step in 0..MAX_STEPS {
        let request = AuthenticateRequest {
            mechanism: credentials.mechanism().name().to_string(),
            payload: Bytes::from(message),
        };
        let answer = exchange(
            frames,
            write,
            link,
            FIRST_CORRELATION_ID + step,
            request,
            sort,
        )
        .await
        .map_err(|e| match e {
            StepError::Open(e) => e,
            StepError::Refused(reason) => failed(reason),
        })?;
        match sasl.next(&answer).map_err(failed)? {
            Some((next, reply)) => (sasl, message) = (next, reply),
            None => {
                tracing::debug!(addr = link.addr, principal = %answer.principal, "authenticated");
                return Ok(answer.principal);
            }
        }
    }
    Err(failed(AuthFailure::Exchange(format!(
        "the broker asked for more than {MAX_STEPS} steps"
    ))))
}

/// How one step failed.
enum StepError {
    /// As the retry loop sorts it (a lost connection, a broken frame).
    Open(OpenError),
    /// The broker refused the authentication.
    Refused(AuthFailure),
}

/// Sends one Authenticate request and reads its answer.
async fn exchange<R, W>(
    frames: &mut FramedRead<R, ProtocolCodec>,
    write: &mut W,
    link: Link<'_>,
    correlation_id: u32,
    request: AuthenticateRequest,
    sort: &impl Fn(std::io::Error) -> OpenError,
) -> Result<AuthenticateResponse, StepError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::new();
    Message::Request {
        correlation_id,
        request: Request::Authenticate(request),
    }
    .encode(link.version, &mut buf)
    .map_err(|e| {
        // The error names the field, never its contents.
        StepError::Open(OpenError::Fatal(ClientError::InvalidArgument(format!(
            "cannot encode the Authenticate request: {e}"
        ))))
    })?;
    write
        .write_all(&buf)
        .await
        .map_err(|e| StepError::Open(sort(e)))?;
    write.flush().await.map_err(|e| StepError::Open(sort(e)))?;
    drop(buf);
    let frame = match frames.next().await {
        Some(Ok(frame)) => frame,
        Some(Err(CodecError::Io(e))) => return Err(StepError::Open(sort(e))),
        Some(Err(e)) => {
            return Err(StepError::Open(OpenError::Fatal(ClientError::Protocol(
                format!("the answer to Authenticate is not a frame: {e}"),
            ))))
        }
        None => {
            return Err(StepError::Open(OpenError::Retry(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the connection was closed during authentication",
            ))))
        }
    };
    match Message::decode(frame) {
        Ok(Message::Response {
            correlation_id: id,
            response: Response::Authenticate(answer),
        }) if id == correlation_id => Ok(answer),
        Ok(Message::Error { error, .. }) if error.code == ErrorCode::AuthenticationFailed => {
            Err(StepError::Refused(AuthFailure::Refused))
        }
        Ok(Message::Error { error, .. }) => Err(StepError::Refused(AuthFailure::Server {
            code: error.code,
            message: error.message,
        })),
        Ok(other) => Err(StepError::Open(OpenError::Fatal(ClientError::Protocol(
            format!(
                "expected the answer to Authenticate {correlation_id}, got {}",
                describe(&other)
            ),
        )))),
        Err(e) => Err(StepError::Open(OpenError::Fatal(ClientError::Protocol(
            format!("the answer to Authenticate does not decode: {e}"),
        )))),
    }
}

/// A message in a few words, without its contents (an answer to the wrong request
/// could still carry a SCRAM message).
fn describe(message: &Message) -> String {
    match message {
        Message::Request { request, .. } => format!("a {} request", request.op_code().name()),
        Message::Response {
            correlation_id,
            response,
        } => format!(
            "a {} response to request {correlation_id}",
            response.op_code().name()
        ),
        Message::Error { error, .. } => format!("an error ({})", error.code),
        Message::Push(_) => "a pushed delivery".to_string(),
    }
}

/// The client's side of one SASL exchange, between two of its messages: pure, so
/// that every answer a broker can give is tested without a socket.
enum ClientSasl {
    /// SCRAM's client-first message was sent; the server-first is awaited.
    ScramFirst(auth::scram::ClientExchange),
    /// SCRAM's client-final message was sent; the server-final, with the broker's
    /// signature, is awaited.
    ScramFinal(auth::scram::ClientFinal),
    /// The one PLAIN message was sent.
    Plain,
}

impl ClientSasl {
    /// The first message of `credentials`' mechanism, and the state awaiting its
    /// answer.
    fn start(
        credentials: &Credentials,
        encrypted: bool,
    ) -> Result<(ClientSasl, Vec<u8>), AuthFailure> {
        let (user, password) = (credentials.user(), credentials.password());
        if user.is_empty() {
            return Err(AuthFailure::InvalidCredentials(
                "the user name is empty".into(),
            ));
        }
        match credentials.mechanism() {
            Mechanism::ScramSha256 => {
                // The generator is made and dropped here: it must not live across an
                // `.await` (it is not `Send`).
                let (exchange, first) =
                    auth::scram::ClientExchange::new(user, password, &mut rand::thread_rng())
                        .map_err(|e| AuthFailure::InvalidCredentials(e.to_string()))?;
                Ok((ClientSasl::ScramFirst(exchange), first))
            }
            Mechanism::Plain => {
                if !encrypted {
                    return Err(AuthFailure::PlainWithoutTls);
                }
                check_plain(user, password)?;
                // RFC 4616: [authzid] NUL authcid NUL passwd, with no authzid.
                let message = [b"\0", user.as_bytes(), b"\0", password.as_bytes()].concat();
                Ok((ClientSasl::Plain, message))
            }
        }
    }

    /// Reads the broker's answer: the next message to send, or `None` once the
    /// exchange is complete and, for SCRAM, the broker has proven itself.
    fn next(
        self,
        answer: &AuthenticateResponse,
    ) -> Result<Option<(ClientSasl, Vec<u8>)>, AuthFailure> {
        let exchange_error = |e: auth::scram::ScramError| AuthFailure::Exchange(e.to_string());
        match self {
            // "Complete" before the client's proof: the broker never proved itself.
            ClientSasl::ScramFirst(_) if answer.complete => Err(AuthFailure::ServerNotVerified),
            ClientSasl::ScramFirst(exchange) => {
                let (last, message) = exchange.respond(&answer.payload).map_err(exchange_error)?;
                Ok(Some((ClientSasl::ScramFinal(last), message)))
            }
            ClientSasl::ScramFinal(_) if !answer.complete => Err(AuthFailure::Exchange(
                "the broker did not end the exchange after the client's proof".into(),
            )),
            ClientSasl::ScramFinal(last) => match last.verify(&answer.payload) {
                Ok(()) => Ok(None),
                Err(auth::scram::ScramError::ServerSignatureMismatch) => {
                    Err(AuthFailure::ServerNotVerified)
                }
                Err(e) => Err(exchange_error(e)),
            },
            ClientSasl::Plain if answer.complete => Ok(None),
            ClientSasl::Plain => Err(AuthFailure::Exchange(
                "the broker asked for a second PLAIN message".into(),
            )),
        }
    }
}

/// The limits PLAIN messages are held to, checked before the password is sent.
fn check_plain(user: &str, password: &str) -> Result<(), AuthFailure> {
    if user.len() > auth::MAX_USER_NAME_BYTES || user.contains('\0') {
        return Err(AuthFailure::InvalidCredentials(format!(
            "a user name must have 1 to {} bytes and no NUL",
            auth::MAX_USER_NAME_BYTES
        )));
    }
    if password.is_empty() || password.len() > auth::MAX_PASSWORD_BYTES || password.contains('\0') {
        return Err(AuthFailure::InvalidCredentials(format!(
            "a password must have 1 to {} bytes and no NUL",
            auth::MAX_PASSWORD_BYTES
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The client's side against the broker's own SCRAM implementation (`auth`'s
    //! server), and against brokers that misbehave.

    use auth::scram::{ScramServer, StoredCredential};

    use super::*;

    fn answer(payload: &[u8], complete: bool) -> AuthenticateResponse {
        AuthenticateResponse {
            payload: Bytes::copy_from_slice(payload),
            complete,
            principal: if complete {
                "alice".into()
            } else {
                String::new()
            },
        }
    }

    fn scram_first(password: &str) -> (ClientSasl, Vec<u8>) {
        ClientSasl::start(&Credentials::scram_sha_256("alice", password), false).unwrap()
    }

    /// Runs SCRAM against a server holding `stored`'s verifier, up to the client's
    /// check of the server-final message.
    fn scram_against(stored: &StoredCredential, password: &str) -> Result<(), AuthFailure> {
        let mut rng = rand::thread_rng();
        let (sasl, first) = scram_first(password);
        let server = ScramServer::new(&mut rng);
        let (exchange, server_first) = server
            .start(&first, |_| Some(stored.clone()), &mut rng)
            .unwrap();
        let (sasl, client_final) = sasl
            .next(&answer(&server_first, false))?
            .expect("SCRAM has a second step");
        let (_, server_final) = exchange
            .finish(&client_final)
            .map_err(|_| AuthFailure::Refused)?;
        assert!(sasl.next(&answer(&server_final, true))?.is_none());
        Ok(())
    }

    #[test]
    fn scram_completes_against_the_brokers_side() {
        let stored = StoredCredential::generate("pencil", 4096, &mut rand::thread_rng()).unwrap();
        assert_eq!(scram_against(&stored, "pencil"), Ok(()));
        assert_eq!(scram_against(&stored, "pencil!"), Err(AuthFailure::Refused));
    }

    #[test]
    fn a_broker_without_the_verifier_is_not_trusted() {
        let mut rng = rand::thread_rng();
        let real = StoredCredential::generate("pencil", 4096, &mut rng).unwrap();
        let (sasl, first) = scram_first("pencil");
        let (_, server_first) = ScramServer::new(&mut rng)
            .start(&first, |_| Some(real.clone()), &mut rng)
            .unwrap();
        let (sasl, _) = sasl.next(&answer(&server_first, false)).unwrap().unwrap();
        // An impostor that passed the client's proof through but cannot sign.
        let forged = b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert_eq!(
            sasl.next(&answer(forged, true)).err(),
            Some(AuthFailure::ServerNotVerified)
        );
    }

    #[test]
    fn a_broker_that_skips_steps_is_refused() {
        let (sasl, _) = scram_first("pencil");
        assert_eq!(
            sasl.next(&answer(b"", true)).err(),
            Some(AuthFailure::ServerNotVerified)
        );
        let (sasl, _) = scram_first("pencil");
        let refused = sasl.next(&answer(b"r=not-our-nonce,s=c2FsdA==,i=4096", false));
        assert!(
            matches!(refused, Err(AuthFailure::Exchange(_))),
            "{:?}",
            refused.err()
        );
        let (sasl, first) = scram_first("pencil");
        let nonce = String::from_utf8(first).unwrap();
        let nonce = nonce.split("r=").nth(1).unwrap().to_string();
        // A server asking for fewer PBKDF2 rounds than the floor weakens the proof.
        let weak = format!("r={nonce}xyz,s=c2FsdA==,i=1000");
        assert!(matches!(
            sasl.next(&answer(weak.as_bytes(), false)),
            Err(AuthFailure::Exchange(_))
        ));
    }

    #[test]
    fn plain_is_one_message_and_only_when_encrypted() {
        let credentials = Credentials::plain("alice", "hunter2");
        assert!(matches!(
            ClientSasl::start(&credentials, false),
            Err(AuthFailure::PlainWithoutTls)
        ));
        let (sasl, message) = ClientSasl::start(&credentials, true).unwrap();
        assert_eq!(message, b"\0alice\0hunter2");
        assert!(auth::plain::parse(&message).is_ok());
        assert!(sasl.next(&answer(b"", true)).unwrap().is_none());
        let (sasl, _) = ClientSasl::start(&credentials, true).unwrap();
        assert!(matches!(
            sasl.next(&answer(b"", false)),
            Err(AuthFailure::Exchange(_))
        ));
    }

    #[test]
    fn unusable_credentials_fail_before_anything_is_sent() {
        let long = "p".repeat(auth::MAX_PASSWORD_BYTES + 1);
        for credentials in [
            Credentials::scram_sha_256("", "pw"),
            Credentials::scram_sha_256("alice", long.clone()),
            Credentials::plain("alice", ""),
            Credentials::plain("al\0ice", "pw"),
            Credentials::plain("alice", long.clone()),
        ] {
            let failure = ClientSasl::start(&credentials, true).err();
            assert!(
                matches!(failure, Some(AuthFailure::InvalidCredentials(_))),
                "{credentials:?}: {failure:?}"
            );
            let text = failure.unwrap().to_string();
            assert!(!text.contains(&long), "{text}");
        }
    }
}
