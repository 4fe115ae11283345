//! The request layer every listener shares: one handler per operation, one
//! dispatch table, [`handle`], from a typed request to its answer, and in front of
//! it the one authorization check, [`authorize`]; [`serve`] is the two together,
//! what a listener calls.
//!
//! A handler takes the broker, the session's [`Context`] (who is asking, and what the
//! session holds: its subscriptions and where their deliveries go) and a typed
//! request, and returns an [`Outcome`]: the answer now, or a future of it for requests
//! that wait (durability, long polls, group commits). Handlers know nothing of sockets
//! or frames, so the native connection ([`crate::connection`]) and the HTTP gateway
//! ([`crate::http`]) serve every operation through this module; only the transport
//! differs. The gateway calls [`serve`]. The native connection calls [`authorize`]
//! itself, before it charges the request's bytes to its in-flight budget (so a
//! refused request costs and changes nothing), then [`handle`], or, for back-to-back
//! produces, gathers them into runs ([`produce::ProduceRun`]) that append through the
//! same code as [`handle`] does.
//!
//! Every administrative change a handler makes (topics, routes, deleted records)
//! ends, once it succeeded, with one `audit` line: `tracing` target `audit`, fields
//! `op` (the operation's name), `client` (the session's handshake name), `principal`
//! (who it authenticated as; `ANONYMOUS` without authentication) and what changed (`docs/operations.md`, "Audit").

pub mod fetch;
pub mod groups;
pub mod members;
pub mod produce;
pub mod publish;
pub mod queue;
pub mod routes;
pub mod security;
pub mod services;
pub mod stats;
pub mod subscribe;
pub mod topics;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use protocol::ops::{Empty, Request, Response};

use crate::broker::Broker;
use crate::delivery::Pushes;
use crate::error::BrokerError;
use crate::security::Principal;
use crate::subscription::Subscriptions;
use members::SessionMembers;

/// A request's answer.
pub type Answer = Result<Response, BrokerError>;

/// An answer still to come.
pub type Pending = Pin<Box<dyn Future<Output = Answer> + Send + 'static>>;

/// What a handler returned.
pub enum Outcome {
    /// The answer, now.
    Now(Answer),
    /// The answer once this completes: run it as its own task, so one slow request
    /// never holds up the others.
    Later(Pending),
}

impl Outcome {
    /// Waits for the answer (tests, and listeners that answer one request at a time).
    pub async fn answer(self) -> Answer {
        match self {
            Outcome::Now(answer) => answer,
            Outcome::Later(pending) => pending.await,
        }
    }
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Now(answer) => f.debug_tuple("Now").field(answer).finish(),
            Outcome::Later(_) => f.write_str("Later(..)"),
        }
    }
}

/// Where deferred answers go, each request named by the caller's ticket: the native
/// connection's outbound queue, a one-shot channel, ...
pub trait Answers: Clone + Send + Sync + 'static {
    /// What identifies a request to its answerer.
    type Ticket: Send + 'static;
    /// Delivers one answer.
    fn answer(&self, ticket: Self::Ticket, answer: Answer) -> impl Future<Output = ()> + Send;
}

/// Who is asking, and what their session holds.
#[derive(Debug)]
pub struct Context {
    /// The client's name from its handshake (shown in DescribeGroup and audit lines).
    pub client: Arc<str>,
    /// The protocol version the session negotiated: what a handler may answer with
    /// (a field or value of a later version must not reach this client).
    pub version: u16,
    /// The session's push subscriptions; closed when the context is dropped.
    pub subscriptions: Subscriptions,
    /// Where the session's pushed deliveries go.
    pub pushes: Pushes,
    /// The stream-group memberships the session holds, so its fetches can be spanned
    /// as deliveries to them.
    pub members: SessionMembers,
    /// Who the session acts as: what ACLs are checked for.
    pub principal: Principal,
}

impl Context {
    /// A new session's context.
    pub fn new(
        broker: &Broker,
        client: Arc<str>,
        version: u16,
        pushes: Pushes,
        principal: Principal,
    ) -> Context {
        let limit = broker.config.limits.max_subscriptions_per_connection;
        Context {
            client,
            version,
            subscriptions: Subscriptions::new(limit),
            pushes,
            members: SessionMembers::default(),
            principal,
        }
    }
}

/// Who made a change, for its audit line: the handshake's client name and the
/// principal.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The handshake's client name.
    pub client: Arc<str>,
    /// The principal (`ANONYMOUS` when authentication is off).
    pub principal: Arc<str>,
}

impl Actor {
    /// The actor of a session.
    pub fn of(cx: &Context) -> Actor {
        Actor {
            client: cx.client.clone(),
            principal: cx.principal.name.clone(),
        }
    }
}

/// `KEY=VALUE` pairs as one field of an audit line: `k=v,k=v` (`-` for none).
fn entries_text(entries: &[protocol::ops::topic::ConfigEntry]) -> String {
    if entries.is_empty() {
        return "-".into();
    }
    entries
        .iter()
        .map(|e| format!("{}={}", e.key, e.value))
        .collect::<Vec<_>>()
        .join(",")
}

fn now<T>(result: Result<T, BrokerError>, wrap: fn(T) -> Response) -> Outcome {
    Outcome::Now(result.map(wrap))
}

fn later<T: 'static, F>(future: F, wrap: fn(T) -> Response) -> Outcome
where
    F: Future<Output = Result<T, BrokerError>> + Send + 'static,
{
    Outcome::Later(Box::pin(async move { future.await.map(wrap) }))
}

/// The one authorization check, before any handler runs: whether the session's
/// principal may make `request` (free when authentication is off). A refused request
/// changes nothing.
pub fn authorize(broker: &Broker, cx: &Context, request: &Request) -> Result<(), BrokerError> {
    let routes = &broker.routes;
    broker
        .security
        .authorize(&cx.principal, request, |id| routes.pattern(id))
        .inspect_err(|refused| {
            tracing::debug!(principal = %cx.principal.name, op = request.op_code().name(), error = %refused, "refused");
        })
}

/// Serves one request as a listener must: [`authorize`], then [`handle`].
pub fn serve(broker: &Arc<Broker>, cx: &mut Context, request: Request) -> Outcome {
    if let Err(refused) = authorize(broker, cx, &request) {
        return Outcome::Now(Err(refused));
    }
    handle(broker, cx, request)
}

/// Serves one request that passed [`authorize`]: the dispatch table.
pub fn handle(broker: &Arc<Broker>, cx: &mut Context, request: Request) -> Outcome {
    use protocol::ops::security::ResourceType as R;
    use Request as Q;
    use Response as A;
    let b = broker;
    match request {
        // The session admits the first handshake; any that reaches the table is a
        // second one.
        Q::Handshake(_) => Outcome::Now(Err(BrokerError::HandshakeRequired(
            "the handshake was already done on this session",
        ))),
        Q::CreateTopic(r) => later(topics::create(b.clone(), r, Actor::of(cx)), |()| {
            A::CreateTopic(Empty)
        }),
        Q::DeleteTopic(r) => later(topics::delete(b.clone(), r, Actor::of(cx)), |()| {
            A::DeleteTopic(Empty)
        }),
        Q::AlterTopic(r) => later(topics::alter(b.clone(), r, Actor::of(cx)), |()| {
            A::AlterTopic(Empty)
        }),
        Q::CreatePartitions(r) => later(
            topics::create_partitions(b.clone(), r, Actor::of(cx)),
            |()| A::CreatePartitions(Empty),
        ),
        Q::ListTopics(r) => {
            let mut list = topics::list(b, r);
            list.topics = security::visible(b, &cx.principal, R::Topic, list.topics, |t| &t.name);
            now(Ok(list), A::ListTopics)
        }
        Q::DescribeTopic(r) => now(topics::describe(b, r), A::DescribeTopic),
        Q::DeleteRecords(r) => later(
            topics::delete_records(b.clone(), r, Actor::of(cx)),
            A::DeleteRecords,
        ),
        Q::Produce(r) => produce::produce(b, r),
        Q::InitProducer(Empty) => later(produce::init_producer(b.clone()), A::InitProducer),
        Q::Publish(r) => publish::publish(b, r),
        Q::Fetch(r) => {
            let members = cx.members.reading(&r.topic);
            later(fetch::fetch(b.clone(), r, members), A::Fetch)
        }
        Q::ListOffsets(r) => now(fetch::list_offsets(b, r), A::ListOffsets),
        Q::Subscribe(r) => now(subscribe::subscribe(b, cx, r), A::Subscribe),
        Q::Credit(r) => now(subscribe::credit(cx, r), |()| A::Credit(Empty)),
        Q::Unsubscribe(r) => now(subscribe::unsubscribe(cx, r), |()| A::Unsubscribe(Empty)),
        Q::JoinGroup(r) => later(
            groups::join(b.clone(), r, cx.client.clone(), cx.members.clone()),
            A::JoinGroup,
        ),
        Q::Heartbeat(r) => now(groups::heartbeat(b, &cx.members, r), A::Heartbeat),
        Q::LeaveGroup(r) => now(groups::leave(b, &cx.members, r), |()| A::LeaveGroup(Empty)),
        Q::CommitOffsets(r) => later(groups::commit(b.clone(), r, cx.members.clone()), |()| {
            A::CommitOffsets(Empty)
        }),
        Q::FetchOffsets(r) => now(groups::fetch_offsets(b, r), A::FetchOffsets),
        Q::ListGroups(Empty) => {
            let mut list = groups::list(b);
            list.groups = security::visible(b, &cx.principal, R::Group, list.groups, |g| &g.group);
            now(Ok(list), A::ListGroups)
        }
        Q::DescribeGroup(r) => now(groups::describe(b, r), A::DescribeGroup),
        Q::DeleteGroup(r) => later(groups::delete(b.clone(), r, Actor::of(cx)), |()| {
            A::DeleteGroup(Empty)
        }),
        Q::ResetOffsets(r) => later(
            groups::reset_offsets(b.clone(), r, Actor::of(cx)),
            A::ResetOffsets,
        ),
        Q::PurgeGroup(r) => later(groups::purge(b.clone(), r, Actor::of(cx)), A::PurgeGroup),
        Q::Ack(r) => later(queue::ack(b.clone(), r), |()| A::Ack(Empty)),
        Q::Nack(r) => later(queue::nack(b.clone(), r), |()| A::Nack(Empty)),
        Q::ExtendDeadline(r) => now(queue::extend(b, r), |()| A::ExtendDeadline(Empty)),
        Q::ServerStats(Empty) => now(Ok(stats::server(b)), A::ServerStats),
        Q::TopicStats(r) => now(stats::topic(b, r), A::TopicStats),
        Q::RegisterInstance(r) => later(services::register(b.clone(), r), |()| {
            A::RegisterInstance(Empty)
        }),
        Q::InstanceHeartbeat(r) => now(services::heartbeat(b, r), |()| A::InstanceHeartbeat(Empty)),
        Q::DeregisterInstance(r) => later(services::deregister(b.clone(), r), |()| {
            A::DeregisterInstance(Empty)
        }),
        Q::ListServices(Empty) => {
            let mut list = services::list(b);
            list.services =
                security::visible(b, &cx.principal, R::Service, list.services, |s| &s.service);
            now(Ok(list), A::ListServices)
        }
        Q::DescribeService(r) => now(Ok(services::describe(b, r)), A::DescribeService),
        Q::AddRoute(r) => later(routes::add(b.clone(), r, Actor::of(cx)), A::AddRoute),
        Q::DeleteRoute(r) => later(routes::delete(b.clone(), r, Actor::of(cx)), |()| {
            A::DeleteRoute(Empty)
        }),
        Q::ListRoutes(Empty) => {
            let mut list = routes::list(b);
            list.routes =
                security::visible(b, &cx.principal, R::Route, list.routes, |r| &r.pattern);
            now(Ok(list), A::ListRoutes)
        }
        // The connection serves Authenticate itself (it changes the session); one
        // that reaches the table comes from a listener without SASL.
        Q::Authenticate(_) => Outcome::Now(Err(BrokerError::AuthenticationFailed)),
        Q::WhoAmI(Empty) => now(Ok(security::whoami(&cx.principal)), A::WhoAmI),
        Q::CreateAcls(r) => later(security::create_acls(b.clone(), r, Actor::of(cx)), |()| {
            A::CreateAcls(Empty)
        }),
        Q::DeleteAcls(r) => later(
            security::delete_acls(b.clone(), r, Actor::of(cx)),
            A::DeleteAcls,
        ),
        Q::ListAcls(r) => now(Ok(security::list_acls(b, &r)), A::ListAcls),
        Q::CreateUser(r) => later(
            security::put_user(b.clone(), r, true, Actor::of(cx)),
            |()| A::CreateUser(Empty),
        ),
        Q::AlterUser(r) => later(
            security::put_user(b.clone(), r, false, Actor::of(cx)),
            |()| A::AlterUser(Empty),
        ),
        Q::DeleteUser(r) => later(security::delete_user(b.clone(), r, Actor::of(cx)), |()| {
            A::DeleteUser(Empty)
        }),
        Q::ListUsers(Empty) => now(Ok(security::list_users(b)), A::ListUsers),
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
