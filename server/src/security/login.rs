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
