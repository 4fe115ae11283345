//! One Kafka connection's session in the request layer: its [`Context`] (the
//! principal: the one its SASL exchange authenticated, its verified TLS client
//! certificate named, or the anonymous one where the broker admits it) and the calls into [`handlers::serve`], the same
//! authorization and dispatch table the native and HTTP listeners use.

use std::net::SocketAddr;
use std::sync::Arc;

use protocol::{Request, Response};
use tokio::sync::mpsc;

use super::buffers::BatchBuffers;
use crate::broker::Broker;
use crate::connection::Peer;
use crate::delivery::Pushes;
use crate::error::BrokerError;
use crate::handlers::{self, Answer, Context, Outcome, Pending};
use crate::security::login::Login;
use crate::security::Principal;

/// The client name Kafka sessions carry in the request layer (audit lines,
/// DescribeGroup).
pub const KAFKA_CLIENT_NAME: &str = "kafka";

/// What a Kafka connection's requests reach.
#[derive(Debug)]
pub struct Session {
    /// The broker.
    pub broker: Arc<Broker>,
    /// The address Metadata advertises.
    pub advertised: Advertised,
    /// The listener's buffers produced records are converted into.
    pub buffers: Arc<BatchBuffers>,
    /// The client's address, as DescribeGroups reports a member's host.
    pub peer: SocketAddr,
    /// Whether the connection is TLS (SASL PLAIN is offered only then).
    pub tls: bool,
    /// The `client.id` of the request being served (from its header).
    pub client_id: Option<String>,
    /// Where the SASL exchange stands.
    pub login: Login,
    /// The mechanism SaslHandshake chose, until SaslAuthenticate completes.
    pub mechanism: Option<String>,
    /// Until a SASL exchange completes: no principal yet, so nothing but
    /// ApiVersions, SaslHandshake and SaslAuthenticate is served.
    pub unauthenticated: bool,
    /// The connection closes once the answer being written is sent (a failed
    /// authentication).
    pub close_after_answer: bool,
    cx: Context,
}

/// The host and port Metadata names as the one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl From<SocketAddr> for Advertised {
    fn from(address: SocketAddr) -> Advertised {
        Advertised {
            host: address.ip().to_string(),
            port: address.port(),
        }
    }
}

impl Session {
    /// A new connection's session: its principal is the one `peer`'s verified
    /// client certificate names, or the anonymous one where the broker admits it;
    /// without either it must log in with SASL first.
    pub fn new(
        broker: Arc<Broker>,
        advertised: Advertised,
        buffers: Arc<BatchBuffers>,
        peer: Peer,
    ) -> Session {
        // No pushes on this listener: Kafka consumers fetch.
        let (nowhere, _) = mpsc::channel(1);
        let initial = broker
            .security
            .initial_principal(peer.certificate_principal.clone());
        let unauthenticated = initial.is_none();
        let cx = Context::new(
            &broker,
            Arc::from(KAFKA_CLIENT_NAME),
            protocol::PROTOCOL_VERSION,
            Pushes::new(nowhere),
            initial.unwrap_or_else(Principal::anonymous),
        );
        Session {
            broker,
            advertised,
            buffers,
            peer: peer.remote,
            tls: peer.tls,
            client_id: None,
            login: Login::Idle,
            mechanism: None,
            unauthenticated,
            close_after_answer: false,
            cx,
        }
    }

    /// The connection now acts as `principal`.
    pub fn authenticated(&mut self, principal: Principal) {
        self.cx.principal = principal;
        self.unauthenticated = false;
    }

    /// Who the connection acts as.
    pub fn principal(&self) -> &Principal {
        &self.cx.principal
    }

    /// Starts `request` in the request layer (authorization, then the dispatch
    /// table) without waiting for an answer that waits.
    pub fn start(&mut self, request: Request) -> Outcome {
        handlers::serve(&self.broker, &mut self.cx, request)
    }

    /// Serves `request` and waits for its answer.
    pub async fn call(&mut self, request: Request) -> Answer {
        self.begin(request).await
    }

    /// Starts `request` now, in the order the connection read it (a produce is
    /// appended before this returns), and gives a future of its answer that the
    /// connection may await later, while it reads and starts the next requests.
    /// An answer that waits runs as its own task, as on the other listeners, so the
    /// request runs to its end, and is counted in the metrics, whether or not the
    /// future is polled (a client that hangs up, or `acks = 0`, drops it).
    pub fn begin(&mut self, request: Request) -> Pending {
        let op = request.op_code().as_u16();
        match self.start(request) {
            Outcome::Now(answer) => {
                self.broker.metrics.requests.count(op, &answer);
                Box::pin(std::future::ready(answer))
            }
            Outcome::Later(pending) => {
                let broker = self.broker.clone();
                let task = tokio::spawn(async move {
                    let answer = pending.await;
                    broker.metrics.requests.count(op, &answer);
                    answer
                });
                Box::pin(async move {
                    task.await.unwrap_or_else(|e| {
                        Err(BrokerError::Internal(format!("a request task failed: {e}")))
                    })
                })
            }
        }
    }
}

/// An answer of the wrong kind: a bug, since the dispatch table answers each
/// request with its own response.
pub fn unexpected(response: &Response) -> BrokerError {
    BrokerError::Internal(format!(
        "the request layer answered {:?}",
        response.op_code().name()
    ))
}
