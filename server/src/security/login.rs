//! [`Login`]: one connection's Authenticate exchange, step by step.
//!
//! Pure but for the randomness the SCRAM nonce needs: the connection hands it each
//! Authenticate request and gets back the answer to send, the principal once the
//! exchange completed, or a failure. Every failure is the same
//! [`BrokerError::AuthenticationFailed`] ("authentication failed"), whatever went
//! wrong, so an attacker learns nothing from the answer; the reason goes to the debug
//! log without the client's input.

use std::sync::Arc;

use auth::scram::ServerExchange;
use bytes::Bytes;
use protocol::ops::security::{AuthenticateRequest, AuthenticateResponse};

use super::{AuthenticatedBy, Principal, Security};
use crate::error::BrokerError;

/// Where one connection's exchange stands.
#[derive(Default)]
pub enum Login {
    /// No exchange yet.
    #[default]
    Idle,
    /// SCRAM: server-first sent, waiting for client-final.
    Scram(Box<ServerExchange>),
    /// An exchange completed (or failed): no other may start.
    Over,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Login::Idle => "Idle",
            Login::Scram(_) => "Scram",
            Login::Over => "Over",
        })
    }
}

/// What one step gave.
#[derive(Debug)]
pub enum Step {
    /// Send this and wait for the next step.
    Continue(AuthenticateResponse),
    /// Send this: the connection is now `principal`.
    Done(AuthenticateResponse, Principal),
}

/// Why a step failed.
#[derive(Debug)]
pub enum Refusal {
    /// The credentials or the message were refused: answer
    /// [`BrokerError::AuthenticationFailed`] after the failure delay, then close.
    Failed(&'static str),
    /// A second exchange on an authenticated connection: answer, and go on.
    Again,
}

impl Refusal {
    /// The error the client gets.
    pub fn error(&self) -> BrokerError {
        match self {
            Refusal::Failed(_) => BrokerError::AuthenticationFailed,
            Refusal::Again => BrokerError::InvalidRequest(
                "this connection has already authenticated; open a new one to act as another user"
                    .into(),
            ),
        }
    }
}

impl Login {
    /// Lets the SCRAM exchange under way accept librdkafka's client-final nonce
    /// ([`ServerExchange::accept_repeated_client_nonce`]): for the Kafka listener.
    pub fn accept_repeated_client_nonce(&mut self) {
        if let Login::Scram(exchange) = self {
            exchange.accept_repeated_client_nonce();
        }
    }

    /// Serves one Authenticate request. `over_tls` is whether the connection is
    /// encrypted (PLAIN is refused without it).
    pub fn step(
        &mut self,
        security: &Security,
        over_tls: bool,
        request: &AuthenticateRequest,
    ) -> Result<Step, Refusal> {
        match std::mem::replace(self, Login::Over) {
            Login::Over => Err(Refusal::Again),
            Login::Idle => self.first(security, over_tls, request),
            Login::Scram(exchange) => {
                if request.mechanism != auth::scram::MECHANISM {
                    return Err(Refusal::Failed("the mechanism changed mid-exchange"));
                }
                let (authenticated, server_final) =
                    exchange.finish(&request.payload).map_err(|e| {
                        Refusal::Failed(if e.is_bad_credentials() {
                            "bad credentials"
                        } else {
                            "malformed client-final"
                        })
                    })?;
                let principal = Principal {
                    name: Arc::from(authenticated.user.as_str()),
                    by: AuthenticatedBy::Scram,
                };
                Ok(Step::Done(
                    done(Bytes::from(server_final), &principal),
                    principal,
                ))
            }
        }
    }

    fn first(
        &mut self,
        security: &Security,
        over_tls: bool,
        request: &AuthenticateRequest,
    ) -> Result<Step, Refusal> {
        if !security.enabled() {
            return Err(Refusal::Failed("authentication is off on this broker"));
        }
        if !security.offers(&request.mechanism) {
            return Err(Refusal::Failed("a mechanism the broker does not offer"));
        }
        if request.mechanism == auth::plain::MECHANISM {
            if !over_tls {
                return Err(Refusal::Failed("PLAIN without TLS"));
            }
            let authenticated = auth::plain::authenticate(
                &request.payload,
                |user| security.users.credential(user),
                security.plain_decoy(),
            )
            .map_err(|_| Refusal::Failed("PLAIN refused"))?;
            let principal = Principal {
                name: Arc::from(authenticated.user.as_str()),
                by: AuthenticatedBy::Plain,
            };
            return Ok(Step::Done(done(Bytes::new(), &principal), principal));
        }
        let (exchange, server_first) = security
            .scram()
            .start(
                &request.payload,
                |user| security.users.credential(user),
                &mut rand::thread_rng(),
            )
            .map_err(|_| Refusal::Failed("malformed client-first"))?;
        *self = Login::Scram(Box::new(exchange));
        Ok(Step::Continue(AuthenticateResponse {
            payload: Bytes::from(server_first),
            complete: false,
            principal: String::new(),
        }))
    }
}

fn done(payload: Bytes, principal: &Principal) -> AuthenticateResponse {
    AuthenticateResponse {
        payload,
        complete: true,
        principal: principal.name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    //! The exchange against a real `Security` (users on a temporary `__users`): the
    //! happy paths, and random bytes at every step, which must fail cleanly.

    use auth::scram::{ClientExchange, StoredCredential};
    use proptest::prelude::*;

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::ServerConfig;
    use crate::topics::Topics;

    fn security(mechanisms: &[&str]) -> (Security, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            data_dir: dir.path().to_path_buf(),
            ..ServerConfig::default()
        };
        config.security.mechanisms = mechanisms.iter().map(|m| m.to_string()).collect();
        let clock = Arc::new(ManualClock::new(1_800_000_000_000));
        let topics = Arc::new(Topics::open_with_clock(dir.path(), clock.clone()).unwrap());
        let security = Security::open(&config, &topics, clock).unwrap();
        (security, dir)
    }

    fn add_user(security: &Security, name: &str, password: &str) {
        let credential = StoredCredential::generate(password, 4096, &mut rand::thread_rng())
            .unwrap()
            .to_user_credential(name);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(security.users.put(credential, true))
            .unwrap();
    }

    fn step(mechanism: &str, payload: &[u8]) -> AuthenticateRequest {
        AuthenticateRequest {
            mechanism: mechanism.into(),
            payload: Bytes::copy_from_slice(payload),
        }
    }

    #[test]
    fn scram_logs_in_once_and_plain_needs_tls() {
        let (security, _dir) = security(&["SCRAM-SHA-256", "PLAIN"]);
        add_user(&security, "alice", "pw");
        let mut login = Login::Idle;
        let (client, first) = ClientExchange::new("alice", "pw", &mut rand::thread_rng()).unwrap();
        let Ok(Step::Continue(server_first)) =
            login.step(&security, false, &step("SCRAM-SHA-256", &first))
        else {
            panic!("server-first expected");
        };
        let (client, last) = client.respond(&server_first.payload).unwrap();
        let Ok(Step::Done(done, principal)) =
            login.step(&security, false, &step("SCRAM-SHA-256", &last))
        else {
            panic!("done expected");
        };
        client.verify(&done.payload).unwrap();
        assert_eq!(
            (&*principal.name, principal.by),
            ("alice", AuthenticatedBy::Scram)
        );
        assert!(matches!(
            login.step(&security, false, &step("SCRAM-SHA-256", &first)),
            Err(Refusal::Again)
        ));

        let plain = step("PLAIN", b"\0alice\0pw");
        assert!(matches!(
            Login::Idle.step(&security, false, &plain),
            Err(Refusal::Failed(_))
        ));
        let Ok(Step::Done(_, principal)) = Login::Idle.step(&security, true, &plain) else {
            panic!("PLAIN over TLS logs in");
        };
        assert_eq!(principal.by, AuthenticatedBy::Plain);
        let wrong = step("PLAIN", b"\0alice\0nope");
        assert!(matches!(
            Login::Idle.step(&security, true, &wrong),
            Err(Refusal::Failed(_))
        ));
    }

    #[test]
    fn a_mechanism_not_offered_is_refused_like_bad_credentials() {
        let (security, _dir) = security(&["SCRAM-SHA-256"]);
        let plain = step("PLAIN", b"\0alice\0pw");
        let refusal = Login::Idle.step(&security, true, &plain).unwrap_err();
        assert_eq!(refusal.error().to_string(), "authentication failed");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_bytes_at_any_step_fail_cleanly(
            first in proptest::collection::vec(any::<u8>(), 0..300),
            last in proptest::collection::vec(any::<u8>(), 0..300),
            mechanism in prop_oneof![Just("SCRAM-SHA-256".to_string()), Just("PLAIN".to_string()), ".{0,20}"],
        ) {
            let (security, _dir) = security(&["SCRAM-SHA-256", "PLAIN"]);
            add_user(&security, "user", "pencil");
            let mut login = Login::Idle;
            match login.step(&security, true, &step(&mechanism, &first)) {
                Ok(Step::Continue(_)) => {
                    // A well-formed client-first: the random client-final must not log in.
                    let outcome = login.step(&security, true, &step(&mechanism, &last));
                    prop_assert!(matches!(outcome, Err(Refusal::Failed(_))), "{outcome:?}");
                }
                Ok(Step::Done(..)) => prop_assert!(false, "random bytes logged in"),
                Err(refusal) => {
                    prop_assert!(matches!(refusal, Refusal::Failed(_)));
                    prop_assert_eq!(refusal.error().to_string(), "authentication failed");
                }
            }
        }

        #[test]
        fn a_random_client_final_after_a_real_client_first_fails(
            last in proptest::collection::vec(any::<u8>(), 0..300),
            user in prop_oneof![Just("user".to_string()), "[a-z]{1,8}"],
        ) {
            let (security, _dir) = security(&["SCRAM-SHA-256"]);
            add_user(&security, "user", "pencil");
            let (_, first) = ClientExchange::new(&user, "pencil", &mut rand::thread_rng()).unwrap();
            let mut login = Login::Idle;
            let started = login.step(&security, false, &step("SCRAM-SHA-256", &first));
            prop_assert!(matches!(started, Ok(Step::Continue(_))), "known or not, the user gets a server-first");
            let outcome = login.step(&security, false, &step("SCRAM-SHA-256", &last));
            prop_assert!(matches!(outcome, Err(Refusal::Failed(_))), "{outcome:?}");
        }
    }
}
