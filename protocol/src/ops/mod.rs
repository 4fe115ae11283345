//! Every operation: its code, its request and response bodies, and the typed
//! [`Request`] / [`Response`] enums that dispatch on the code.
//!
//! One file per family of operations, like mini-redis's `cmd/`. Each body type knows
//! how to write itself after the frame header and how to read itself from a frame's
//! body; the enums here only choose which. Byte layouts are specified in
//! `docs/protocol.md`, one section per operation.

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::wire::Reader;

pub mod ack;
pub mod errors;
pub mod fetch;
pub mod group;
pub mod group_admin;
pub mod handshake;
pub mod offsets;
pub mod produce;
pub mod registry;
pub mod routes;
pub mod security;
pub mod stats;
pub mod subscribe;
pub mod topic;

/// A message body: encodes after the frame header, decodes from a frame body.
///
/// A body whose layout changed in a later protocol version writes the layout of the
/// `version` it is given and reads the one of [`Reader::version`]; every other body
/// ignores both.
pub(crate) trait Body: Sized {
    /// Appends the body, in the layout of protocol `version`, to `buf`.
    fn encode(&self, buf: &mut BytesMut, version: u16) -> Result<(), EncodeError>;
    /// Reads the body; the caller checks that nothing is left over.
    fn decode(r: &mut Reader) -> Result<Self, DecodeError>;
}

/// Defines a fieldless enum carried as one `u8` tag, with its encode and decode.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal {
        $($(#[$vdoc:meta])* $variant:ident = $value:literal,)*
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(test, derive(proptest_derive::Arbitrary))]
        pub enum $name {
            $($(#[$vdoc])* $variant = $value,)*
        }

        impl $name {
            pub(crate) fn encode(self, buf: &mut bytes::BytesMut) {
                bytes::BufMut::put_u8(buf, self as u8);
            }

            pub(crate) fn decode(
                r: &mut crate::wire::Reader,
            ) -> Result<$name, crate::error::DecodeError> {
                match r.u8($what)? {
                    $($value => Ok($name::$variant),)*
                    other => Err(crate::error::DecodeError::InvalidValue {
                        what: $what,
                        value: u64::from(other),
                    }),
                }
            }
        }
    };
}
pub(crate) use wire_enum;

/// The body of a response that carries nothing but its success status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Empty;

impl Body for Empty {
    fn encode(&self, _buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        Ok(())
    }

    fn decode(_r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Empty)
    }
}

macro_rules! operations {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, since $since:literal;)*) => {
        /// The operation a frame carries, from the header's `op` field.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum OpCode {
            $($(#[$doc])* $variant = $code,)*
        }

        impl OpCode {
            /// Every operation, in numeric order.
            pub const ALL: &'static [OpCode] = &[$(OpCode::$variant,)*];

            /// The operation for a wire value, if defined.
            pub fn from_u16(value: u16) -> Option<OpCode> {
                match value {
                    $($code => Some(OpCode::$variant),)*
                    _ => None,
                }
            }

            /// The name used in `docs/protocol.md`.
            pub fn name(self) -> &'static str {
                match self {
                    $(OpCode::$variant => $name,)*
                }
            }

            /// The protocol version that introduced the operation.
            pub fn since(self) -> u16 {
                match self {
                    $(OpCode::$variant => $since,)*
                }
            }

            /// The operation for a wire value if the protocol `version` defines it:
            /// an operation of a later version is as unknown as an undefined code.
            pub fn from_u16_in(value: u16, version: u16) -> Option<OpCode> {
                OpCode::from_u16(value).filter(|op| op.since() <= version)
            }
        }
    };
}

operations! {
    /// Negotiates the version and names the client; always the first request.
    Handshake = 1, "Handshake", since 1;
    /// One step of a SASL exchange: authenticates the connection.
    Authenticate = 2, "Authenticate", since 3;
    /// Names the principal the connection acts as.
    WhoAmI = 3, "WhoAmI", since 3;
    /// Creates a topic.
    CreateTopic = 10, "CreateTopic", since 1;
    /// Deletes a topic and its data.
    DeleteTopic = 11, "DeleteTopic", since 1;
    /// Lists topics with summary counters.
    ListTopics = 12, "ListTopics", since 1;
    /// A topic's config and per-partition offsets.
    DescribeTopic = 13, "DescribeTopic", since 1;
    /// Deletes a partition's records below an offset.
    DeleteRecords = 14, "DeleteRecords", since 1;
    /// Changes settings of an existing topic.
    AlterTopic = 15, "AlterTopic", since 2;
    /// Grows a topic to more partitions.
    CreatePartitions = 16, "CreatePartitions", since 2;
    /// Appends one record batch.
    Produce = 20, "Produce", since 1;
    /// Reads batches from one partition, with long polling.
    Fetch = 21, "Fetch", since 1;
    /// Allocates an idempotent producer's id.
    InitProducer = 22, "InitProducer", since 2;
    /// Per partition, the first offset at or after a time.
    ListOffsets = 25, "ListOffsets", since 2;
    /// Opens a push subscription.
    Subscribe = 30, "Subscribe", since 1;
    /// Grants a subscription more credit.
    Credit = 31, "Credit", since 1;
    /// Closes a subscription.
    Unsubscribe = 32, "Unsubscribe", since 1;
    /// A pushed delivery of records for a subscription (server to client only).
    Delivery = 33, "Delivery", since 1;
    /// Joins (or rejoins) a consumer group.
    JoinGroup = 40, "JoinGroup", since 1;
    /// Keeps a membership alive and reports the current assignment.
    Heartbeat = 41, "Heartbeat", since 1;
    /// Leaves a consumer group.
    LeaveGroup = 42, "LeaveGroup", since 1;
    /// Commits stream-mode consumer offsets.
    CommitOffsets = 43, "CommitOffsets", since 1;
    /// Reads committed offsets.
    FetchOffsets = 44, "FetchOffsets", since 1;
    /// Lists consumer groups.
    ListGroups = 45, "ListGroups", since 1;
    /// Members, assignments, offsets and lag of a group.
    DescribeGroup = 46, "DescribeGroup", since 1;
    /// Deletes a group without active members, with its commits or queue state.
    DeleteGroup = 47, "DeleteGroup", since 2;
    /// Moves a stream group's committed offsets (no active members).
    ResetOffsets = 48, "ResetOffsets", since 2;
    /// Drops a queue group's pending state so it starts at the end (no active members).
    PurgeGroup = 49, "PurgeGroup", since 2;
    /// Acknowledges queue-mode messages.
    Ack = 50, "Ack", since 1;
    /// Rejects a queue-mode message for redelivery or dead-lettering.
    Nack = 51, "Nack", since 1;
    /// Extends a queue-mode message's processing deadline.
    ExtendDeadline = 52, "ExtendDeadline", since 1;
    /// Server-wide counters.
    ServerStats = 60, "ServerStats", since 1;
    /// One topic's counters.
    TopicStats = 61, "TopicStats", since 1;
    /// Registers a service instance with a TTL.
    RegisterInstance = 70, "RegisterInstance", since 1;
    /// Keeps a service instance alive.
    InstanceHeartbeat = 71, "InstanceHeartbeat", since 1;
    /// Removes a service instance.
    DeregisterInstance = 72, "DeregisterInstance", since 1;
    /// Services with healthy instances.
    ListServices = 73, "ListServices", since 1;
    /// A service's healthy instances.
    DescribeService = 74, "DescribeService", since 1;
    /// Adds a routing rule.
    AddRoute = 80, "AddRoute", since 1;
    /// Deletes a routing rule.
    DeleteRoute = 81, "DeleteRoute", since 1;
    /// Lists routing rules.
    ListRoutes = 82, "ListRoutes", since 1;
    /// Publishes a batch by routing key.
    Publish = 83, "Publish", since 1;
    /// Adds ACL bindings.
    CreateAcls = 90, "CreateAcls", since 3;
    /// Deletes the ACL bindings a filter selects.
    DeleteAcls = 91, "DeleteAcls", since 3;
    /// Lists the ACL bindings a filter selects.
    ListAcls = 92, "ListAcls", since 3;
    /// Creates a user from its SCRAM verifier.
    CreateUser = 93, "CreateUser", since 3;
    /// Replaces a user's SCRAM verifier (a password change).
    AlterUser = 94, "AlterUser", since 3;
    /// Deletes a user.
    DeleteUser = 95, "DeleteUser", since 3;
    /// Lists users, without their verifiers.
    ListUsers = 96, "ListUsers", since 3;
}

impl OpCode {
    /// The wire value.
    pub fn as_u16(self) -> u16 {
        self as u16
    }
}

macro_rules! messages {
    ($($variant:ident($req:ty, $resp:ty);)*) => {
        /// A request from client to server, one variant per operation.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[cfg_attr(test, derive(proptest_derive::Arbitrary))]
        pub enum Request {
            $(
                #[doc = concat!("See [`OpCode::", stringify!($variant), "`].")]
                $variant($req),
            )*
        }

        /// A successful response, one variant per operation that has one.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[cfg_attr(test, derive(proptest_derive::Arbitrary))]
        pub enum Response {
            $(
                #[doc = concat!("See [`OpCode::", stringify!($variant), "`].")]
                $variant($resp),
            )*
        }

        impl Request {
            /// The operation code the frame header carries.
            pub fn op_code(&self) -> OpCode {
                match self {
                    $(Request::$variant(_) => OpCode::$variant,)*
                }
            }

            /// Appends the body (not the frame header), in the layout of protocol
            /// `version`, to `buf`. An operation that `version` does not define is
            /// refused: sending it would only earn `unknown_operation`.
            pub fn encode_body(&self, buf: &mut BytesMut, version: u16) -> Result<(), EncodeError> {
                let op = self.op_code();
                if op.since() > version {
                    return Err(EncodeError::NotInVersion { what: op.name(), since: op.since(), version });
                }
                match self {
                    $(Request::$variant(body) => body.encode(buf, version),)*
                }
            }

            /// Decodes a request body for `op` in the layout of protocol `version`.
            /// The whole body must be consumed.
            pub fn decode_body(op: OpCode, version: u16, body: bytes::Bytes) -> Result<Request, DecodeError> {
                if op.since() > version {
                    return Err(DecodeError::UnknownOperation { op: op.as_u16() });
                }
                let mut r = Reader::new(body, version);
                let request = match op {
                    $(OpCode::$variant => Request::$variant(<$req>::decode(&mut r)?),)*
                    OpCode::Delivery => {
                        return Err(DecodeError::WrongDirection {
                            op: op.as_u16(),
                            flags: crate::FrameKind::Request.flags(),
                        })
                    }
                };
                r.finish()?;
                Ok(request)
            }
        }

        impl Response {
            /// The operation code the frame header carries.
            pub fn op_code(&self) -> OpCode {
                match self {
                    $(Response::$variant(_) => OpCode::$variant,)*
                }
            }

            /// Appends the success body (after the status), in the layout of protocol
            /// `version`, to `buf`.
            pub fn encode_body(&self, buf: &mut BytesMut, version: u16) -> Result<(), EncodeError> {
                let op = self.op_code();
                if op.since() > version {
                    return Err(EncodeError::NotInVersion { what: op.name(), since: op.since(), version });
                }
                match self {
                    $(Response::$variant(body) => body.encode(buf, version),)*
                }
            }

            /// Decodes a success body (after the status) for `op` in the layout of
            /// protocol `version`. The whole body must be consumed.
            pub fn decode_body(op: OpCode, version: u16, body: bytes::Bytes) -> Result<Response, DecodeError> {
                let mut r = Reader::new(body, version);
                let response = Response::decode_from(op, &mut r)?;
                r.finish()?;
                Ok(response)
            }

            /// Decodes a success body for `op` in the layout of the reader's version.
            pub(crate) fn decode_from(op: OpCode, r: &mut Reader) -> Result<Response, DecodeError> {
                if op.since() > r.version() {
                    return Err(DecodeError::UnknownOperation { op: op.as_u16() });
                }
                Ok(match op {
                    $(OpCode::$variant => Response::$variant(<$resp>::decode(r)?),)*
                    OpCode::Delivery => {
                        return Err(DecodeError::WrongDirection {
                            op: op.as_u16(),
                            flags: crate::FrameKind::Response.flags(),
                        })
                    }
                })
            }
        }
    };
}

messages! {
    Handshake(handshake::HandshakeRequest, handshake::HandshakeResponse);
    Authenticate(security::AuthenticateRequest, security::AuthenticateResponse);
    WhoAmI(Empty, security::WhoAmIResponse);
    CreateTopic(topic::CreateTopicRequest, Empty);
    DeleteTopic(topic::DeleteTopicRequest, Empty);
    ListTopics(topic::ListTopicsRequest, topic::ListTopicsResponse);
    DescribeTopic(topic::DescribeTopicRequest, topic::DescribeTopicResponse);
    DeleteRecords(topic::DeleteRecordsRequest, topic::DeleteRecordsResponse);
    AlterTopic(topic::AlterTopicRequest, Empty);
    CreatePartitions(topic::CreatePartitionsRequest, Empty);
    Produce(produce::ProduceRequest, produce::ProduceResponse);
    Fetch(fetch::FetchRequest, fetch::FetchResponse);
    InitProducer(Empty, produce::InitProducerResponse);
    ListOffsets(fetch::ListOffsetsRequest, fetch::ListOffsetsResponse);
    Subscribe(subscribe::SubscribeRequest, subscribe::SubscribeResponse);
    Credit(subscribe::CreditRequest, Empty);
    Unsubscribe(subscribe::UnsubscribeRequest, Empty);
    JoinGroup(group::JoinGroupRequest, group::JoinGroupResponse);
    Heartbeat(group::HeartbeatRequest, group::HeartbeatResponse);
    LeaveGroup(group::LeaveGroupRequest, Empty);
    CommitOffsets(offsets::CommitOffsetsRequest, Empty);
    FetchOffsets(offsets::FetchOffsetsRequest, offsets::FetchOffsetsResponse);
    ListGroups(Empty, group::ListGroupsResponse);
    DescribeGroup(group::DescribeGroupRequest, group::DescribeGroupResponse);
    DeleteGroup(group_admin::DeleteGroupRequest, Empty);
    ResetOffsets(group_admin::ResetOffsetsRequest, group_admin::ResetOffsetsResponse);
    PurgeGroup(group_admin::PurgeGroupRequest, group_admin::PurgeGroupResponse);
    Ack(ack::AckRequest, Empty);
    Nack(ack::NackRequest, Empty);
    ExtendDeadline(ack::ExtendDeadlineRequest, Empty);
    ServerStats(Empty, stats::ServerStatsResponse);
    TopicStats(stats::TopicStatsRequest, stats::TopicStatsResponse);
    RegisterInstance(registry::RegisterRequest, Empty);
    InstanceHeartbeat(registry::InstanceRequest, Empty);
    DeregisterInstance(registry::InstanceRequest, Empty);
    ListServices(Empty, registry::ListServicesResponse);
    DescribeService(registry::DescribeServiceRequest, registry::DescribeServiceResponse);
    AddRoute(routes::AddRouteRequest, routes::AddRouteResponse);
    DeleteRoute(routes::DeleteRouteRequest, Empty);
    ListRoutes(Empty, routes::ListRoutesResponse);
    Publish(routes::PublishRequest, routes::PublishResponse);
    CreateAcls(security::CreateAclsRequest, Empty);
    DeleteAcls(security::AclFilterRequest, security::AclsResponse);
    ListAcls(security::AclFilterRequest, security::AclsResponse);
    CreateUser(security::PutUserRequest, Empty);
    AlterUser(security::PutUserRequest, Empty);
    DeleteUser(security::DeleteUserRequest, Empty);
    ListUsers(Empty, security::ListUsersResponse);
}

/// Writes a `u32` partition id; shared by several bodies.
pub(crate) fn put_partitions(buf: &mut BytesMut, partitions: &[u32]) -> Result<(), EncodeError> {
    crate::wire::put_array(buf, "partitions", partitions, |b, p| {
        b.put_u32_le(*p);
        Ok(())
    })
}

/// Reads a `u32` array of partition ids.
pub(crate) fn read_partitions(r: &mut Reader) -> Result<Vec<u32>, DecodeError> {
    r.array("partitions", 4, |r| r.u32("partition"))
}
