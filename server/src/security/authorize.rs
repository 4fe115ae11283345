//! What each request needs permission for: the one table from an operation to the
//! resources it touches and the ACL operation it does to each, and the one check.
//!
//! Every listener calls [`check`] before it serves a request, so a refused request
//! changes nothing and no handler checks permissions of its own. The lists that
//! several operations answer (topics, groups, services, routes) are filtered by
//! `describe` here too ([`visible`]), so a principal learns only of what it may see.
//!
//! Pure: the table reads nothing but the request (and, for DeleteRoute, the rule's
//! pattern, which the caller resolves).

use std::borrow::Cow;

use auth::acl::Authorizer;
use protocol::ops::security::{Operation, ResourceType, ACLS_TOPIC, CLUSTER_RESOURCE, USERS_TOPIC};
use protocol::ops::subscribe::SubscribeTarget;
use protocol::trace::TRACES_TOPIC;
use protocol::Request;

use crate::error::BrokerError;

/// One permission a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need<'a> {
    /// The kind of resource.
    pub resource: ResourceType,
    /// Its name.
    pub name: Cow<'a, str>,
    /// What the request does to it.
    pub operation: Operation,
}

/// Every permission one request needs: at most two (a group and its topic, a route
/// and its destination), so the table allocates nothing on the produce path.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Needs<'a>([Option<Need<'a>>; 2]);

impl<'a> Needs<'a> {
    fn none() -> Needs<'a> {
        Needs::default()
    }

    fn one(need: Need<'a>) -> Needs<'a> {
        Needs([Some(need), None])
    }

    fn two(first: Need<'a>, second: Need<'a>) -> Needs<'a> {
        Needs([Some(first), Some(second)])
    }

    /// One permission, and perhaps a second: for requests that are not native
    /// ones (the Kafka group coordinator's), built from [`group_permission`] and
    /// [`topic_permission`].
    pub fn of(first: Need<'a>, second: Option<Need<'a>>) -> Needs<'a> {
        Needs([Some(first), second])
    }

    /// The permissions, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Need<'a>> {
        self.0.iter().flatten()
    }
}

/// A topic permission. Internal topics are resources too: `__traces` is the trace
/// resource, and `__users` and `__acls` (verifiers, and the ACLs themselves) are the
/// cluster's, altering it, so only who administers security reads them.
fn topic(name: &str, operation: Operation) -> Need<'_> {
    match name {
        TRACES_TOPIC => Need {
            resource: ResourceType::Trace,
            name: Cow::Borrowed(name),
            operation,
        },
        USERS_TOPIC | ACLS_TOPIC => cluster(Operation::Alter),
        _ => Need {
            resource: ResourceType::Topic,
            name: Cow::Borrowed(name),
            operation,
        },
    }
}

fn named(resource: ResourceType, name: &str, operation: Operation) -> Need<'_> {
    Need {
        resource,
        name: Cow::Borrowed(name),
        operation,
    }
}

/// The permission to do `operation` to topic `name` (internal topics map to the
/// resources that guard them, as for native requests).
pub fn topic_permission(name: &str, operation: Operation) -> Need<'_> {
    topic(name, operation)
}

/// The permission to do `operation` to group `name`.
pub fn group_permission(name: &str, operation: Operation) -> Need<'_> {
    group(name, operation)
}

fn group(name: &str, operation: Operation) -> Need<'_> {
    named(ResourceType::Group, name, operation)
}

fn cluster(operation: Operation) -> Need<'static> {
    Need {
        resource: ResourceType::Cluster,
        name: Cow::Borrowed(CLUSTER_RESOURCE),
        operation,
    }
}

/// The permissions `request` needs. `route_pattern` names the pattern of a rule by
/// id (for DeleteRoute); an unknown id needs `alter` on every route, so a principal
/// without it cannot probe which ids exist.
pub fn needs<'a>(
    request: &'a Request,
    route_pattern: impl FnOnce(u64) -> Option<String>,
) -> Needs<'a> {
    use Operation::*;
    use Request as Q;
    match request {
        Q::Handshake(_) | Q::Authenticate(_) | Q::WhoAmI(_) => Needs::none(),
        // Ids and credit are the session's own, and lists are filtered (`visible`).
        Q::InitProducer(_) | Q::Credit(_) | Q::Unsubscribe(_) => Needs::none(),
        Q::ListTopics(_) | Q::ListGroups(_) | Q::ListServices(_) | Q::ListRoutes(_) => {
            Needs::none()
        }
        Q::CreateTopic(r) => Needs::one(topic(&r.name, Create)),
        Q::DeleteTopic(r) => Needs::one(topic(&r.name, Delete)),
        Q::AlterTopic(r) => Needs::one(topic(&r.name, Alter)),
        Q::CreatePartitions(r) => Needs::one(topic(&r.name, Alter)),
        Q::DescribeTopic(r) => Needs::one(topic(&r.name, Describe)),
        Q::DeleteRecords(r) => Needs::one(topic(&r.topic, Delete)),
        Q::Produce(r) => Needs::one(topic(&r.topic, Write)),
        Q::Fetch(r) => Needs::one(topic(&r.topic, Read)),
        Q::ListOffsets(r) => Needs::one(topic(&r.topic, Describe)),
        Q::TopicStats(r) => Needs::one(topic(&r.topic, Describe)),
        Q::Subscribe(r) => match &r.target {
            SubscribeTarget::Partition(_) => Needs::one(topic(&r.topic, Read)),
            SubscribeTarget::Group { group: g, .. } => {
                Needs::two(group(g, Read), topic(&r.topic, Read))
            }
        },
        Q::JoinGroup(r) => Needs::two(group(&r.group, Read), topic(&r.topic, Read)),
        Q::Heartbeat(r) => Needs::one(group(&r.group, Read)),
        Q::LeaveGroup(r) => Needs::one(group(&r.group, Read)),
        Q::CommitOffsets(r) => Needs::one(group(&r.group, Read)),
        Q::FetchOffsets(r) => Needs::one(group(&r.group, Describe)),
        Q::DescribeGroup(r) => Needs::one(group(&r.group, Describe)),
        Q::DeleteGroup(r) => Needs::one(group(&r.group, Delete)),
        Q::ResetOffsets(r) => Needs::one(group(&r.group, Alter)),
        // Purging drops the group's dead letters.
        Q::PurgeGroup(r) => Needs::one(group(&r.group, Delete)),
        Q::Ack(r) => Needs::one(group(&r.group, Read)),
        Q::Nack(r) => Needs::one(group(&r.group, Read)),
        Q::ExtendDeadline(r) => Needs::one(group(&r.group, Read)),
        Q::ServerStats(_) => Needs::one(cluster(Describe)),
        Q::RegisterInstance(r) => Needs::one(named(ResourceType::Service, &r.service, Write)),
        Q::InstanceHeartbeat(r) | Q::DeregisterInstance(r) => {
            Needs::one(named(ResourceType::Service, &r.service, Write))
        }
        Q::DescribeService(r) => Needs::one(named(ResourceType::Service, &r.service, Describe)),
        // A rule writes into its destination: its author must be allowed to.
        Q::AddRoute(r) => Needs::two(
            named(ResourceType::Route, &r.pattern, Alter),
            topic(&r.topic, Write),
        ),
        Q::DeleteRoute(r) => Needs::one(Need {
            resource: ResourceType::Route,
            name: Cow::Owned(route_pattern(r.route_id).unwrap_or_default()),
            operation: Alter,
        }),
        Q::Publish(r) => Needs::one(named(ResourceType::Route, &r.routing_key, Write)),
        Q::CreateAcls(_)
        | Q::DeleteAcls(_)
        | Q::CreateUser(_)
        | Q::AlterUser(_)
        | Q::DeleteUser(_) => Needs::one(cluster(Alter)),
        Q::ListAcls(_) | Q::ListUsers(_) => Needs::one(cluster(Describe)),
    }
}

/// Whether `principal` may do everything `needs` lists; the refusal names the first
/// permission missing.
pub fn check(
    authorizer: &Authorizer,
    principal: &str,
    needs: &Needs<'_>,
) -> Result<(), BrokerError> {
    for need in needs.iter() {
        if !authorizer
            .authorize(principal, need.resource, &need.name, need.operation)
            .is_allowed()
        {
            return Err(BrokerError::NotAuthorized {
                operation: need.operation.name(),
                resource: need.resource.name(),
                name: need.name.to_string(),
            });
        }
    }
    Ok(())
}

/// Whether `principal` may see that `name` exists (list filtering).
pub fn visible(
    authorizer: &Authorizer,
    principal: &str,
    resource: ResourceType,
    name: &str,
) -> bool {
    let need = match resource {
        ResourceType::Topic => topic(name, Operation::Describe),
        other => named(other, name, Operation::Describe),
    };
    authorizer
        .authorize(principal, need.resource, &need.name, need.operation)
        .is_allowed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ops::fetch::FetchRequest;
    use protocol::ops::group::{GroupMode, GroupStart, JoinGroupRequest};
    use protocol::ops::routes::DeleteRouteRequest;
    use protocol::ops::security::{AclBinding, PatternType, Permission};
    use protocol::ops::Empty;

    fn fetch(topic: &str) -> Request {
        Request::Fetch(FetchRequest {
            topic: topic.into(),
            partition: 0,
            offset: 0,
            max_bytes: 1,
            max_wait_ms: 0,
        })
    }

    fn listed<'a>(needs: &'a Needs<'a>) -> Vec<(ResourceType, &'a str, Operation)> {
        needs
            .iter()
            .map(|n| (n.resource, &*n.name, n.operation))
            .collect()
    }

    #[test]
    fn internal_topics_are_resources_of_their_own() {
        let request = fetch("orders");
        assert_eq!(
            listed(&needs(&request, |_| None)),
            [(ResourceType::Topic, "orders", Operation::Read)]
        );
        let request = fetch(TRACES_TOPIC);
        assert_eq!(
            listed(&needs(&request, |_| None)),
            [(ResourceType::Trace, TRACES_TOPIC, Operation::Read)]
        );
        for topic in [USERS_TOPIC, ACLS_TOPIC] {
            let request = fetch(topic);
            assert_eq!(
                listed(&needs(&request, |_| None)),
                [(ResourceType::Cluster, CLUSTER_RESOURCE, Operation::Alter)],
                "{topic}: verifiers and ACLs are for who administers them"
            );
        }
    }

    #[test]
    fn a_group_member_needs_the_group_and_its_topic() {
        let join = Request::JoinGroup(JoinGroupRequest {
            group: "g".into(),
            topic: "t".into(),
            member_id: String::new(),
            session_timeout_ms: 1,
            mode: GroupMode::Stream,
            start: GroupStart::Earliest,
            config: Vec::new(),
        });
        assert_eq!(
            listed(&needs(&join, |_| None)),
            [
                (ResourceType::Group, "g", Operation::Read),
                (ResourceType::Topic, "t", Operation::Read)
            ]
        );
    }

    #[test]
    fn deleting_a_route_is_checked_against_its_pattern() {
        let delete = Request::DeleteRoute(DeleteRouteRequest { route_id: 7 });
        let found = needs(&delete, |id| (id == 7).then(|| "orders.#".to_string()));
        assert_eq!(
            listed(&found),
            [(ResourceType::Route, "orders.#", Operation::Alter)]
        );
        // An unknown id: only who may alter every route learns it does not exist.
        let unknown = needs(&delete, |_| None);
        assert_eq!(
            listed(&unknown),
            [(ResourceType::Route, "", Operation::Alter)]
        );
    }

    #[test]
    fn the_check_names_the_first_permission_missing_and_the_session_ops_need_none() {
        let mut authorizer = Authorizer::new(Vec::<String>::new());
        authorizer
            .insert(&AclBinding {
                principal: "alice".into(),
                resource: ResourceType::Group,
                pattern: PatternType::Prefix,
                name: "".into(),
                operation: Operation::Read,
                permission: Permission::Allow,
            })
            .unwrap();
        let join = Request::JoinGroup(JoinGroupRequest {
            group: "g".into(),
            topic: "t".into(),
            member_id: String::new(),
            session_timeout_ms: 1,
            mode: GroupMode::Queue,
            start: GroupStart::Earliest,
            config: Vec::new(),
        });
        let error = check(&authorizer, "alice", &needs(&join, |_| None)).unwrap_err();
        assert_eq!(error.to_string(), "not authorized to read topic \"t\"");
        for free in [
            Request::WhoAmI(Empty),
            Request::InitProducer(Empty),
            Request::ListGroups(Empty),
        ] {
            assert!(check(&authorizer, "nobody", &needs(&free, |_| None)).is_ok());
        }
    }
}
