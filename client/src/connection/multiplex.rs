//! Pipelining: many requests on one connection, each answer routed to its caller.
//!
//! A caller registers a pending entry under a fresh correlation id ([`Shared::register`],
//! which keeps one of the client's `max_in_flight_requests` permits until the answer
//! arrives or the caller gives up) and awaits the [`PendingReply`] it gets back. The
//! reader task hands every frame from the broker to [`Shared::dispatch`], which sends a
//! response or an error to the oneshot registered under its correlation id, and a
//! pushed delivery to its subscription's channel. A Subscribe's channel is registered
//! when its answer is routed, so no delivery that follows the answer finds no channel.
//!
//! The state is two maps behind a std mutex shared by the callers and the reader: the
//! lock is held only for map operations, never across an `.await`, so it is cheap and
//! cannot wait on the socket. When the connection fails, [`Shared::close`] fails every
//! pending request with [`ClientError::ConnectionLost`] and ends every subscription.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use protocol::ops::subscribe::Delivery;
use protocol::{ErrorCode, Message, Response};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use super::SUBSCRIPTION_BUFFER_DELIVERIES;
use crate::error::ClientError;

/// A request on the wire, awaiting its answer. Dropping it forgets the request (its
/// answer, if it comes, is discarded) and frees its in-flight slot.
#[derive(Debug)]
pub(crate) struct PendingReply {
    pub(super) rx: oneshot::Receiver<Result<Response, ClientError>>,
    pub(super) op: &'static str,
    pub(super) timeout: Duration,
    pub(super) correlation_id: u32,
    pub(super) shared: Arc<Shared>,
}

impl PendingReply {
    /// Waits for the answer, up to the request's timeout.
    pub(crate) async fn wait(mut self) -> Result<Response, ClientError> {
        match tokio::time::timeout(self.timeout, &mut self.rx).await {
            Ok(Ok(result)) => result,
            // The reader dropped the sender without answering: the connection closed.
            Ok(Err(_)) => Err(self.shared.lost()),
            Err(_) => Err(ClientError::Timeout {
                op: self.op,
                timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        self.shared.forget(self.correlation_id);
    }
}

/// State shared by callers and the connection's tasks. The lock is held only for map
/// operations, never across an `.await`.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) addr: String,
    pub(super) state: Mutex<ConnState>,
}

#[derive(Debug)]
pub(super) struct ConnState {
    pub(super) open: bool,
    pub(super) next_id: u32,
    pub(super) pending: HashMap<u32, Pending>,
    pub(super) subscriptions: HashMap<u64, mpsc::Sender<Delivery>>,
}

#[derive(Debug)]
pub(super) struct Pending {
    reply: oneshot::Sender<Result<Response, ClientError>>,
    /// For Subscribe: where the subscription's deliveries go. Registered by the reader
    /// when the answer arrives, before any delivery that follows it is routed.
    deliveries: Option<mpsc::Sender<Delivery>>,
    /// Held until the answer arrives or the caller gives up.
    _permit: OwnedSemaphorePermit,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ConnState> {
        // A panic while holding this lock leaves only maps behind, still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn is_open(&self) -> bool {
        self.lock().open
    }

    pub(super) fn lost(&self) -> ClientError {
        ClientError::ConnectionLost {
            addr: self.addr.clone(),
        }
    }

    pub(super) fn register(
        &self,
        op: &'static str,
        permit: OwnedSemaphorePermit,
        deliveries: Option<mpsc::Sender<Delivery>>,
    ) -> Result<(u32, oneshot::Receiver<Result<Response, ClientError>>), ClientError> {
        let mut state = self.lock();
        if !state.open {
            return Err(self.lost());
        }
        // Ids are unique among pending requests; 0 is skipped because the broker uses
        // it for errors it cannot attribute to a request.
        let mut id = state.next_id;
        while id == 0 || state.pending.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        state.next_id = id.wrapping_add(1);
        let (reply, rx) = oneshot::channel();
        state.pending.insert(
            id,
            Pending {
                reply,
                deliveries,
                _permit: permit,
            },
        );
        tracing::trace!(op, correlation_id = id, "request queued");
        Ok((id, rx))
    }

    fn forget(&self, correlation_id: u32) {
        self.lock().pending.remove(&correlation_id);
    }

    pub(super) fn forget_subscription(&self, subscription_id: u64) {
        self.lock().subscriptions.remove(&subscription_id);
    }

    /// Marks the connection closed and fails everything waiting on it.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        state.open = false;
        for (_, pending) in state.pending.drain() {
            let _ = pending.reply.send(Err(self.lost()));
        }
        // Dropping the senders ends every subscription's stream.
        state.subscriptions.clear();
    }

    /// Routes one frame from the broker.
    pub(super) fn dispatch(&self, frame: protocol::Frame) {
        let message = match Message::decode(frame) {
            Ok(message) => message,
            Err(error) => {
                let pending = error
                    .correlation_id()
                    .and_then(|id| self.lock().pending.remove(&id));
                match pending {
                    Some(p) => {
                        let _ = p.reply.send(Err(ClientError::Protocol(error.to_string())));
                    }
                    None => tracing::warn!(%error, "undecodable frame from the broker"),
                }
                return;
            }
        };
        let mut state = self.lock();
        match message {
            Message::Response {
                correlation_id,
                response,
            } => match state.pending.remove(&correlation_id) {
                Some(pending) => {
                    if let (Response::Subscribe(s), Some(tx)) = (&response, pending.deliveries) {
                        state.subscriptions.insert(s.subscription_id, tx);
                    }
                    let _ = pending.reply.send(Ok(response));
                }
                None => tracing::debug!(correlation_id, "answer to a request nobody awaits"),
            },
            Message::Error {
                correlation_id,
                error,
                ..
            } => match state.pending.remove(&correlation_id) {
                Some(pending) => {
                    let refusal = if error.code == ErrorCode::AuthenticationRequired {
                        // Only a client without credentials gets this (one with them
                        // authenticated before its first request): say how to fix it.
                        ClientError::AuthenticationRequired {
                            addr: self.addr.clone(),
                        }
                    } else {
                        ClientError::Server {
                            code: error.code,
                            message: error.message,
                        }
                    };
                    let _ = pending.reply.send(Err(refusal));
                }
                None => tracing::warn!(
                    correlation_id,
                    code = %error.code,
                    message = %error.message,
                    "broker error for no pending request"
                ),
            },
            Message::Push(delivery) => {
                let id = delivery.subscription_id;
                let Some(tx) = state.subscriptions.get(&id) else {
                    tracing::debug!(subscription_id = id, "delivery for a closed subscription");
                    return;
                };
                if let Err(e) = tx.try_send(delivery) {
                    if let mpsc::error::TrySendError::Full(_) = e {
                        tracing::warn!(
                            subscription_id = id,
                            "subscriber is {SUBSCRIPTION_BUFFER_DELIVERIES} deliveries behind; \
                             ending the subscription (grant less credit)"
                        );
                    }
                    state.subscriptions.remove(&id);
                }
            }
            Message::Request { .. } => tracing::warn!("the broker sent a request frame; ignored"),
        }
    }
}
