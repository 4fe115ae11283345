//! The connection's side of authentication: opening the session once the connection
//! has a principal, and serving Authenticate steps (the exchange itself is
//! [`crate::security::login`]'s). A failure is answered after the failure delay and
//! closes the connection.

use std::sync::Arc;

use protocol::Response;

use super::{Connection, READ_BUFFER_BYTES};
use crate::delivery::Pushes;
use crate::handlers::Context;
use crate::security::login::{Refusal, Step};
use crate::security::Principal;
use crate::stats::Closed;

impl<R: tokio::io::AsyncRead + Unpin + Send + 'static> Connection<R> {
    /// Opens the session for `principal`: the handlers' context, and the full frame
    /// size and read buffer (who it is is known now).
    pub(super) fn admit(&mut self, client: Arc<str>, principal: Principal) {
        let version = self
            .negotiated
            .get()
            .copied()
            .unwrap_or(protocol::HANDSHAKE_VERSION);
        let pushes = Pushes::new(self.outbound.clone());
        self.context = Some(Context::new(
            &self.broker,
            client,
            version,
            pushes,
            principal,
        ));
        let max_frame_bytes = self.broker.config.limits.max_frame_bytes;
        self.frames
            .decoder_mut()
            .set_max_frame_bytes(max_frame_bytes);
        self.frames.read_buffer_mut().reserve(READ_BUFFER_BYTES);
    }

    /// Serves one Authenticate step; `false` when the connection must close (a
    /// failure: answered after the failure delay, so guessing is slow).
    pub(super) async fn authenticate(
        &mut self,
        correlation_id: u32,
        op: u16,
        step: &protocol::ops::security::AuthenticateRequest,
    ) -> bool {
        let security = self.broker.security.clone();
        let address = self.peer.remote.ip();
        let outcome = if security.blocked(address) {
            Err(Refusal::Failed("too many failures from this address"))
        } else {
            self.login.step(&security, self.peer.tls, step)
        };
        match outcome {
            Ok(Step::Continue(response)) => {
                self.answer(correlation_id, op, Ok(Response::Authenticate(response)))
                    .await;
                true
            }
            Ok(Step::Done(response, principal)) => {
                tracing::info!(target: "audit", op = "Authenticate", principal = %principal.name, mechanism = principal.by.name(), remote = %self.peer.remote, "authenticated");
                match (self.context.as_mut(), self.awaiting_login.take()) {
                    (Some(cx), _) => cx.principal = principal,
                    (None, Some(client)) => self.admit(client, principal),
                    (None, None) => return false,
                }
                self.answer(correlation_id, op, Ok(Response::Authenticate(response)))
                    .await;
                true
            }
            Err(refusal) => {
                let close = matches!(refusal, Refusal::Failed(_));
                if let Refusal::Failed(why) = refusal {
                    // The reason, never the client's input (names, proofs, passwords).
                    let mechanism = crate::security::MECHANISMS
                        .iter()
                        .find(|m| **m == step.mechanism)
                        .copied()
                        .unwrap_or("unknown");
                    tracing::info!(target: "audit", op = "Authenticate", remote = %self.peer.remote, mechanism, reason = why, "authentication failed");
                    security.failed(address);
                    self.broker.stats.count_closed(Closed::AuthenticationFailed);
                    tokio::select! {
                        _ = tokio::time::sleep(security.failure_delay()) => {}
                        _ = self.shutdown.recv() => {}
                    }
                }
                self.answer(correlation_id, op, Err(refusal.error())).await;
                !close
            }
        }
    }
}
