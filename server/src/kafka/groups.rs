//! FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups and
//! ListGroups: Kafka's classic group protocol, served by the broker's
//! [`KafkaGroups`](super::group::KafkaGroups) (brokerd is every group's
//! coordinator). Each request is authorized here, with the permissions Kafka asks
//! for (Read on the group to be a member, Describe to look), through the broker's
//! one ACL check.

use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::heartbeat_response::HeartbeatResponse;
use kafka_protocol::messages::join_group_request::JoinGroupRequest;
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use kafka_protocol::messages::leave_group_request::LeaveGroupRequest;
use kafka_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use kafka_protocol::messages::sync_group_request::SyncGroupRequest;
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::messages::{BrokerId, GroupId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as K;
use protocol::ops::group::GroupMode;
use protocol::ops::security::{Operation, ResourceType};

use super::group::state::{GroupError, Join, MemberRef};
use super::group::Refused;
use super::metadata::NODE_ID;
use super::session::Session;
use crate::security::authorize::{group_permission, Needs};

/// FindCoordinator's key type for consumer groups (1 is transactions').
const GROUP_KEY: i8 = 0;
/// The protocol type ListGroups and DescribeGroups report for native groups.
const CONSUMER: &str = "consumer";

/// A group error's Kafka code.
pub fn group_code(error: GroupError) -> i16 {
    match error {
        GroupError::UnknownMember => K::UnknownMemberId,
        GroupError::IllegalGeneration => K::IllegalGeneration,
        GroupError::RebalanceInProgress => K::RebalanceInProgress,
        GroupError::InconsistentProtocol => K::InconsistentGroupProtocol,
        GroupError::GroupFull => K::GroupMaxSizeReached,
        GroupError::FencedInstance => K::FencedInstanceId,
    }
    .code()
}

fn refused_code(refused: Refused) -> i16 {
    match refused {
        Refused::Group(e) => return group_code(e),
        Refused::InvalidSessionTimeout => K::InvalidSessionTimeout,
        Refused::TooManyGroups => K::GroupMaxSizeReached,
        Refused::NativeGroup => K::InconsistentGroupProtocol,
        Refused::TooManyProtocols => K::InvalidRequest,
    }
    .code()
}

/// Whether `group` may be used by the session with `operation`: the group name's
/// check, then the ACL; the Kafka error code if not.
pub fn admit(s: &Session, group: &str, operation: Operation) -> Result<(), i16> {
    crate::group::validate_group_name(group).map_err(|_| K::InvalidGroupId.code())?;
    s.broker
        .security
        .permits(
            s.principal(),
            &Needs::of(group_permission(group, operation), None),
        )
        .map_err(|_| K::GroupAuthorizationFailed.code())
}

/// Whether the native coordinator holds `group` in a way the Kafka protocol must
/// not touch: live now, or a queue group.
pub fn native_claims(s: &Session, group: &str) -> bool {
    s.broker.groups.is_live(group)
        || s.broker
            .groups
            .offsets()
            .group(group)
            .is_some_and(|g| g.settings.mode == GroupMode::Queue)
}

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// FindCoordinator: brokerd coordinates every group. Transactions' coordinators
/// are refused: brokerd has no transactions.
pub fn find_coordinator(
    s: &mut Session,
    r: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let keys: Vec<String> = if version >= 4 {
        r.coordinator_keys.iter().map(|k| k.to_string()).collect()
    } else {
        vec![r.key.to_string()]
    };
    let answers: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| {
            let found = Coordinator::default()
                .with_node_id(BrokerId(NODE_ID))
                .with_host(text(s.advertised.host.clone()))
                .with_port(i32::from(s.advertised.port));
            let refusal = if r.key_type != GROUP_KEY {
                Some((K::UnsupportedVersion.code(), "brokerd has no transactions"))
            } else if let Err(code) = admit(s, &key, Operation::Describe) {
                Some((code, "not allowed to describe this group"))
            } else {
                None
            };
            let found = found.with_key(text(key));
            match refusal {
                Some((code, why)) => found
                    .with_node_id(BrokerId(-1))
                    .with_host(text(""))
                    .with_port(-1)
                    .with_error_code(code)
                    .with_error_message(Some(text(why))),
                None => found,
            }
        })
        .collect();
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(answers);
    }
    let one = answers.into_iter().next().unwrap_or_default();
    FindCoordinatorResponse::default()
        .with_error_code(one.error_code)
        .with_error_message(one.error_message)
        .with_node_id(one.node_id)
        .with_host(one.host)
        .with_port(one.port)
}

/// JoinGroup: waits until the rebalance completes (every member rejoined, or the
/// rebalance timeout passed); a static member's new instance in a Stable group is
/// answered at once.
pub async fn join(s: &mut Session, r: JoinGroupRequest, version: i16) -> JoinGroupResponse {
    let group = r.group_id.0.to_string();
    let refused = |code: i16| {
        JoinGroupResponse::default()
            .with_error_code(code)
            .with_generation_id(-1)
            .with_protocol_type(Some(text("")))
            .with_protocol_name(Some(text("")))
            .with_member_id(r.member_id.clone())
    };
    if let Err(code) = admit(s, &group, Operation::Read) {
        return refused(code);
    }
    let session_timeout_ms = u64::try_from(r.session_timeout_ms).unwrap_or(0);
    let join = Join {
        member_id: r.member_id.to_string(),
        instance_id: r.group_instance_id.as_ref().map(|id| id.to_string()),
        client_id: s.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", s.peer.ip()),
        session_timeout_ms,
        // v0 has none: the session timeout is the rebalance timeout.
        rebalance_timeout_ms: u64::try_from(r.rebalance_timeout_ms).unwrap_or(session_timeout_ms),
        protocol_type: r.protocol_type.to_string(),
        protocols: r
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
    };
    let native = native_claims(s, &group);
    match s.broker.kafka_groups.join(&group, join, native).await {
        Ok(answer) => {
            let members = answer
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(text(id))
                        // A member of a version without instance ids (before 5) may
                        // lead static ones.
                        .with_group_instance_id(instance.filter(|_| version >= 5).map(text))
                        .with_metadata(metadata)
                })
                .collect();
            JoinGroupResponse::default()
                .with_skip_assignment(answer.skip_assignment && version >= 9)
                .with_generation_id(answer.generation)
                .with_protocol_type(Some(text(answer.protocol_type)))
                .with_protocol_name(Some(text(answer.protocol)))
                .with_leader(text(answer.leader))
                .with_member_id(text(answer.member_id))
                .with_members(members)
        }
        Err(e) => refused(refused_code(e)),
    }
}

/// SyncGroup: the leader's carries the assignment; a follower's waits for it.
pub async fn sync(s: &mut Session, r: SyncGroupRequest) -> SyncGroupResponse {
    let group = r.group_id.0.to_string();
    let answer = SyncGroupResponse::default()
        .with_protocol_type(r.protocol_type.clone())
        .with_protocol_name(r.protocol_name.clone());
    if let Err(code) = admit(s, &group, Operation::Read) {
        return answer.with_error_code(code);
    }
    let assignments = r
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let member = MemberRef {
        id: &r.member_id,
        instance: r.group_instance_id.as_deref(),
    };
    match s
        .broker
        .kafka_groups
        .sync(&group, member, r.generation_id, assignments)
        .await
    {
        Ok(assignment) => answer.with_assignment(assignment),
        Err(e) => answer.with_error_code(group_code(e)),
    }
}

/// Heartbeat.
pub fn heartbeat(s: &mut Session, r: HeartbeatRequest) -> HeartbeatResponse {
    let group = r.group_id.0.to_string();
    let code = admit(s, &group, Operation::Read).err().unwrap_or_else(|| {
        let member = MemberRef {
            id: &r.member_id,
            instance: r.group_instance_id.as_deref(),
        };
        match s
            .broker
            .kafka_groups
            .heartbeat(&group, member, r.generation_id)
        {
            Ok(()) => 0,
            Err(e) => group_code(e),
        }
    });
    HeartbeatResponse::default().with_error_code(code)
}

/// LeaveGroup: one member (v0–2) or several (v3 on).
pub fn leave(s: &mut Session, r: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let group = r.group_id.0.to_string();
    if let Err(code) = admit(s, &group, Operation::Read) {
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let leave = |member: MemberRef<'_>| match s.broker.kafka_groups.leave(&group, member) {
        Ok(()) => 0,
        Err(e) => group_code(e),
    };
    if version < 3 {
        return LeaveGroupResponse::default().with_error_code(leave(r.member_id.as_str().into()));
    }
    let members = r
        .members
        .iter()
        .map(|m| {
            MemberResponse::default()
                .with_member_id(m.member_id.clone())
                .with_group_instance_id(m.group_instance_id.clone())
                .with_error_code(leave(MemberRef {
                    id: &m.member_id,
                    instance: m.group_instance_id.as_deref(),
                }))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

/// DescribeGroups: a Kafka group's phase, protocol and members; a native group, or
/// one with only committed offsets, as a group of no Kafka members; an unknown one
/// as `Dead`, as Kafka does.
pub fn describe(s: &mut Session, r: DescribeGroupsRequest, version: i16) -> DescribeGroupsResponse {
    let groups = r
        .groups
        .iter()
        .map(|id| describe_one(s, &id.0, version))
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

fn describe_one(s: &Session, group: &str, version: i16) -> DescribedGroup {
    let entry = DescribedGroup::default().with_group_id(GroupId(text(group)));
    if let Err(code) = admit(s, group, Operation::Describe) {
        return entry.with_error_code(code).with_group_state(text("Dead"));
    }
    if let Some(described) = s.broker.kafka_groups.describe(group) {
        let members = described
            .members
            .iter()
            .map(|m| {
                DescribedGroupMember::default()
                    .with_member_id(text(m.join.member_id.clone()))
                    // Instance ids are in answers from version 4 on.
                    .with_group_instance_id(
                        m.join
                            .instance_id
                            .clone()
                            .filter(|_| version >= 4)
                            .map(text),
                    )
                    .with_client_id(text(m.join.client_id.clone()))
                    .with_client_host(text(m.join.client_host.clone()))
                    .with_member_metadata(m.metadata(&described.protocol))
                    .with_member_assignment(m.assignment.clone())
            })
            .collect();
        return entry
            .with_group_state(text(described.phase.name()))
            .with_protocol_type(text(described.protocol_type))
            .with_protocol_data(text(described.protocol))
            .with_members(members);
    }
    let native = &s.broker.groups;
    let state = if native.is_live(group) {
        "Stable"
    } else if native.offsets().group(group).is_some() {
        "Empty"
    } else {
        "Dead"
    };
    let kind = if state == "Dead" { "" } else { CONSUMER };
    entry
        .with_group_state(text(state))
        .with_protocol_type(text(kind))
}

/// ListGroups: the Kafka groups and the native ones (as `consumer` groups), those
/// the principal may see, filtered by state (v4 on) when asked.
pub fn list(s: &mut Session, r: ListGroupsRequest) -> ListGroupsResponse {
    let mut listed: Vec<(String, String, String)> = s
        .broker
        .kafka_groups
        .list()
        .into_iter()
        .map(|g| (g.group, g.phase.name().to_owned(), g.protocol_type))
        .collect();
    let kafka: std::collections::HashSet<String> =
        listed.iter().map(|(name, _, _)| name.clone()).collect();
    for native in s.broker.groups.list() {
        if !kafka.contains(&native.group) {
            let state = if native.members > 0 {
                "Stable"
            } else {
                "Empty"
            };
            listed.push((native.group, state.to_owned(), CONSUMER.to_owned()));
        }
    }
    listed.sort();
    let wanted = |state: &str| {
        r.states_filter.is_empty()
            || r.states_filter
                .iter()
                .any(|f| f.eq_ignore_ascii_case(state))
    };
    let groups = listed
        .into_iter()
        .filter(|(name, state, _)| {
            wanted(state)
                && s.broker
                    .security
                    .may_see(s.principal(), ResourceType::Group, name)
        })
        .map(|(name, state, kind)| {
            ListedGroup::default()
                .with_group_id(GroupId(text(name)))
                .with_protocol_type(text(kind))
                .with_group_state(text(state))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
