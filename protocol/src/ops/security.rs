//! Authentication, and administration of users and access-control lists (version 3).
//!
//! After the Handshake, a client of a broker with authentication on sends
//! [`AuthenticateRequest`]s, one per step of its SASL mechanism (`SCRAM-SHA-256`: two;
//! `PLAIN`: one), until a response says `complete`. The principal that authenticated
//! is then checked against the broker's ACLs on every request.
//!
//! Users are stored as SCRAM verifiers only ([`UserCredential`]): the client derives
//! them from the password, which never crosses the wire in these operations. Users
//! live on the internal topic `__users` ([`UserEvent`]), ACLs on `__acls`
//! ([`AclEvent`]).

use bytes::{BufMut, Bytes, BytesMut};

use super::{wire_enum, Body};
use crate::error::{DecodeError, EncodeError};
use crate::wire::{self, Reader, MIN_STRING_BYTES};

/// Name of the internal topic holding users' verifiers.
pub const USERS_TOPIC: &str = "__users";
/// Name of the internal topic holding ACL bindings.
pub const ACLS_TOPIC: &str = "__acls";
/// The one name of the cluster resource.
pub const CLUSTER_RESOURCE: &str = "cluster";
/// The principal of a connection that did not authenticate (where anonymous clients
/// are allowed). No user may take this name.
pub const ANONYMOUS: &str = "ANONYMOUS";
/// An ACL principal that matches every principal, anonymous included.
pub const ANY_PRINCIPAL: &str = "*";

/// One step of a SASL exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AuthenticateRequest {
    /// The mechanism: `SCRAM-SHA-256` or `PLAIN`; the same on every step.
    pub mechanism: String,
    /// The mechanism's client message for this step.
    #[cfg_attr(test, proptest(strategy = "crate::proptests::bytes()"))]
    pub payload: Bytes,
}

/// The server's answer to one step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AuthenticateResponse {
    /// The mechanism's server message (SCRAM's server-first or server-final; empty
    /// for PLAIN).
    #[cfg_attr(test, proptest(strategy = "crate::proptests::bytes()"))]
    pub payload: Bytes,
    /// Whether the exchange is over and the connection authenticated.
    pub complete: bool,
    /// The authenticated principal, once complete; empty before.
    pub principal: String,
}

/// Who the connection acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct WhoAmIResponse {
    /// The principal ACLs are checked for ([`ANONYMOUS`] if none).
    pub principal: String,
    /// How it was established: `SCRAM-SHA-256`, `PLAIN`, `TLS` (a client
    /// certificate), or `NONE`.
    pub authenticated_by: String,
}

wire_enum! {
    /// What kind of thing an ACL protects.
    ResourceType, "resource_type" {
        /// A topic (internal topics included, by their `__` names).
        Topic = 1,
        /// A consumer or queue group.
        Group = 2,
        /// The broker as a whole (stats, users, ACLs); its name is [`CLUSTER_RESOURCE`].
        Cluster = 3,
        /// A service of the registry.
        Service = 4,
        /// A routing rule, named by its routing-key pattern; publishing checks the
        /// routing key.
        Route = 5,
        /// Trace spans (the internal topic `__traces`).
        Trace = 6,
    }
}

wire_enum! {
    /// How an ACL's name matches resource names.
    PatternType, "pattern_type" {
        /// The name itself; `*` matches every name.
        Literal = 1,
        /// Every name that starts with it (the empty prefix matches every name).
        Prefix = 2,
    }
}

wire_enum! {
    /// What an ACL allows or denies doing to a resource.
    Operation, "operation" {
        /// Every operation.
        All = 1,
        /// Consume: fetch, subscribe, join a group, ack.
        Read = 2,
        /// Produce, publish, register.
        Write = 3,
        /// Create a topic.
        Create = 4,
        /// Delete a topic, its records, a group, its dead letters.
        Delete = 5,
        /// See that it exists and describe it (implied by read, write, delete, alter).
        Describe = 6,
        /// Change its configuration; routes, users and ACLs.
        Alter = 7,
    }
}

wire_enum! {
    /// Whether an ACL allows or denies.
    Permission, "permission" {
        /// Allows, unless a matching deny exists.
        Allow = 1,
        /// Denies, whatever allows.
        Deny = 2,
    }
}

impl ResourceType {
    /// Every resource type, for parsing and listing.
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::Service,
        ResourceType::Route,
        ResourceType::Trace,
    ];

    /// The lowercase name used in docs, brokerctl and error messages.
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "topic",
            ResourceType::Group => "group",
            ResourceType::Cluster => "cluster",
            ResourceType::Service => "service",
            ResourceType::Route => "route",
            ResourceType::Trace => "trace",
        }
    }
}

impl Operation {
    /// Every operation, for parsing and listing.
    pub const ALL: [Operation; 7] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Describe,
        Operation::Alter,
    ];

    /// The lowercase name used in docs, brokerctl and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Operation::All => "all",
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Create => "create",
            Operation::Delete => "delete",
            Operation::Describe => "describe",
            Operation::Alter => "alter",
        }
    }
}

impl PatternType {
    /// The lowercase name used in docs and brokerctl.
    pub fn name(self) -> &'static str {
        match self {
            PatternType::Literal => "literal",
            PatternType::Prefix => "prefix",
        }
    }
}

impl Permission {
    /// The lowercase name used in docs and brokerctl.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Allow => "allow",
            Permission::Deny => "deny",
        }
    }
}

/// One access-control entry: `permission` for `principal` to do `operation` on the
/// resources of type `resource` whose names match `name` by `pattern`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AclBinding {
    /// A principal's name, or [`ANY_PRINCIPAL`].
    pub principal: String,
    /// The kind of resource.
    pub resource: ResourceType,
    /// How `name` matches.
    pub pattern: PatternType,
    /// The name or prefix.
    pub name: String,
    /// The operation.
    pub operation: Operation,
    /// Allow or deny.
    pub permission: Permission,
}

/// Selects ACL bindings: each field present must equal the binding's (exactly: a
/// filter's `name` is not a pattern).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AclFilter {
    /// Principal.
    pub principal: Option<String>,
    /// Resource type.
    pub resource: Option<ResourceType>,
    /// Pattern type.
    pub pattern: Option<PatternType>,
    /// Name or prefix.
    pub name: Option<String>,
    /// Operation.
    pub operation: Option<Operation>,
    /// Permission.
    pub permission: Option<Permission>,
}

impl AclFilter {
    /// Whether `binding` is selected.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| *p == binding.principal)
            && self.resource.is_none_or(|r| r == binding.resource)
            && self.pattern.is_none_or(|p| p == binding.pattern)
            && self.name.as_ref().is_none_or(|n| *n == binding.name)
            && self.operation.is_none_or(|o| o == binding.operation)
            && self.permission.is_none_or(|p| p == binding.permission)
    }
}

/// Adds bindings (adding one that exists changes nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CreateAclsRequest {
    /// The bindings.
    pub bindings: Vec<AclBinding>,
}

/// Selects bindings to list or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AclFilterRequest {
    /// The filter; the default selects every binding.
    pub filter: AclFilter,
}

/// Bindings listed or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AclsResponse {
    /// In a stable order (sorted).
    pub bindings: Vec<AclBinding>,
}

/// A user's SCRAM-SHA-256 verifier (RFC 5802 section 3): what the broker keeps instead
/// of the password.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct UserCredential {
    /// The user's name.
    pub name: String,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// PBKDF2 salt.
    #[cfg_attr(test, proptest(strategy = "crate::proptests::bytes()"))]
    pub salt: Bytes,
    /// `H(ClientKey)`.
    #[cfg_attr(test, proptest(strategy = "crate::proptests::bytes()"))]
    pub stored_key: Bytes,
    /// `HMAC(SaltedPassword, "Server Key")`.
    #[cfg_attr(test, proptest(strategy = "crate::proptests::bytes()"))]
    pub server_key: Bytes,
}

impl std::fmt::Debug for UserCredential {
    // The keys stay out of logs: with them, an attacker can impersonate the server and
    // run an offline dictionary attack.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredential")
            .field("name", &self.name)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Creates a user, or (`AlterUser`) replaces an existing user's verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PutUserRequest {
    /// The user and verifier.
    pub credential: UserCredential,
}

/// Deletes a user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DeleteUserRequest {
    /// The user's name.
    pub name: String,
}

/// One user, without its verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct UserInfo {
    /// Name.
    pub name: String,
    /// Mechanism of its verifier (`SCRAM-SHA-256`).
    pub mechanism: String,
    /// PBKDF2 iterations of its verifier.
    pub iterations: u32,
}

/// Every user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ListUsersResponse {
    /// By name.
    pub users: Vec<UserInfo>,
}

/// A change of the users, as stored on `__users` (value of a record; the key is the
/// user's name).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum UserEvent {
    /// A user was created or its verifier replaced (tag 1).
    Put(UserCredential),
    /// A user was deleted (tag 2).
    Deleted {
        /// The user's name.
        name: String,
    },
}

/// A change of the ACLs, as stored on `__acls` (value of a record; the key is the
/// binding's encoding, so the last record of a key says whether it exists).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum AclEvent {
    /// A binding was added (tag 1).
    Added(AclBinding),
    /// A binding was deleted (tag 2).
    Deleted(AclBinding),
}

/// Smallest encoded [`AclBinding`]: two empty strings and four tags.
const MIN_BINDING_BYTES: usize = 2 * MIN_STRING_BYTES + 4;

pub(crate) fn put_binding(buf: &mut BytesMut, binding: &AclBinding) -> Result<(), EncodeError> {
    wire::put_string(buf, "principal", &binding.principal)?;
    binding.resource.encode(buf);
    binding.pattern.encode(buf);
    wire::put_string(buf, "name", &binding.name)?;
    binding.operation.encode(buf);
    binding.permission.encode(buf);
    Ok(())
}

pub(crate) fn read_binding(r: &mut Reader) -> Result<AclBinding, DecodeError> {
    Ok(AclBinding {
        principal: r.string("principal")?,
        resource: ResourceType::decode(r)?,
        pattern: PatternType::decode(r)?,
        name: r.string("name")?,
        operation: Operation::decode(r)?,
        permission: Permission::decode(r)?,
    })
}

fn put_credential(buf: &mut BytesMut, credential: &UserCredential) -> Result<(), EncodeError> {
    wire::put_string(buf, "name", &credential.name)?;
    buf.put_u32_le(credential.iterations);
    wire::put_bytes(buf, "salt", &credential.salt)?;
    wire::put_bytes(buf, "stored_key", &credential.stored_key)?;
    wire::put_bytes(buf, "server_key", &credential.server_key)
}

fn read_credential(r: &mut Reader) -> Result<UserCredential, DecodeError> {
    Ok(UserCredential {
        name: r.string("name")?,
        iterations: r.u32("iterations")?,
        salt: r.bytes("salt")?,
        stored_key: r.bytes("stored_key")?,
        server_key: r.bytes("server_key")?,
    })
}

impl AclBinding {
    /// The binding's encoding: its record key on `__acls`.
    pub fn key(&self) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        put_binding(&mut buf, self)?;
        Ok(buf.freeze())
    }
}

impl UserEvent {
    /// The user the event is about.
    pub fn name(&self) -> &str {
        match self {
            UserEvent::Put(credential) => &credential.name,
            UserEvent::Deleted { name } => name,
        }
    }

    /// Encodes as a record value.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        match self {
            UserEvent::Put(credential) => {
                buf.put_u8(1);
                put_credential(&mut buf, credential)?;
            }
            UserEvent::Deleted { name } => {
                buf.put_u8(2);
                wire::put_string(&mut buf, "name", name)?;
            }
        }
        Ok(buf.freeze())
    }

    /// Decodes a record value.
    pub fn decode(bytes: Bytes) -> Result<UserEvent, DecodeError> {
        let mut r = Reader::internal(bytes);
        let event = match r.u8("user event")? {
            1 => UserEvent::Put(read_credential(&mut r)?),
            2 => UserEvent::Deleted {
                name: r.string("name")?,
            },
            other => {
                return Err(DecodeError::InvalidValue {
                    what: "user event",
                    value: u64::from(other),
                })
            }
        };
        r.finish()?;
        Ok(event)
    }
}

impl AclEvent {
    /// The binding the event is about.
    pub fn binding(&self) -> &AclBinding {
        match self {
            AclEvent::Added(binding) | AclEvent::Deleted(binding) => binding,
        }
    }

    /// Encodes as a record value.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        let tag = match self {
            AclEvent::Added(_) => 1,
            AclEvent::Deleted(_) => 2,
        };
        buf.put_u8(tag);
        put_binding(&mut buf, self.binding())?;
        Ok(buf.freeze())
    }

    /// Decodes a record value.
    pub fn decode(bytes: Bytes) -> Result<AclEvent, DecodeError> {
        let mut r = Reader::internal(bytes);
        let event = match r.u8("acl event")? {
            1 => AclEvent::Added(read_binding(&mut r)?),
            2 => AclEvent::Deleted(read_binding(&mut r)?),
            other => {
                return Err(DecodeError::InvalidValue {
                    what: "acl event",
                    value: u64::from(other),
                })
            }
        };
        r.finish()?;
        Ok(event)
    }
}

fn put_opt_string(
    buf: &mut BytesMut,
    what: &'static str,
    value: &Option<String>,
) -> Result<(), EncodeError> {
    wire::put_option(buf, value.as_ref(), |b, v| wire::put_string(b, what, v))
}

fn put_opt_tag(buf: &mut BytesMut, tag: Option<u8>) -> Result<(), EncodeError> {
    wire::put_option(buf, tag.as_ref(), |b, t| {
        b.put_u8(*t);
        Ok(())
    })
}

impl Body for AuthenticateRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "mechanism", &self.mechanism)?;
        wire::put_bytes(buf, "payload", &self.payload)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AuthenticateRequest {
            mechanism: r.string("mechanism")?,
            payload: r.bytes("payload")?,
        })
    }
}

impl Body for AuthenticateResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_bytes(buf, "payload", &self.payload)?;
        wire::put_bool(buf, self.complete);
        wire::put_string(buf, "principal", &self.principal)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AuthenticateResponse {
            payload: r.bytes("payload")?,
            complete: r.bool("complete")?,
            principal: r.string("principal")?,
        })
    }
}

impl Body for WhoAmIResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "principal", &self.principal)?;
        wire::put_string(buf, "authenticated_by", &self.authenticated_by)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(WhoAmIResponse {
            principal: r.string("principal")?,
            authenticated_by: r.string("authenticated_by")?,
        })
    }
}

impl Body for CreateAclsRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_array(buf, "bindings", &self.bindings, put_binding)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(CreateAclsRequest {
            bindings: r.array("bindings", MIN_BINDING_BYTES, read_binding)?,
        })
    }
}

impl Body for AclFilterRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        let f = &self.filter;
        put_opt_string(buf, "principal", &f.principal)?;
        put_opt_tag(buf, f.resource.map(|t| t as u8))?;
        put_opt_tag(buf, f.pattern.map(|t| t as u8))?;
        put_opt_string(buf, "name", &f.name)?;
        put_opt_tag(buf, f.operation.map(|t| t as u8))?;
        put_opt_tag(buf, f.permission.map(|t| t as u8))
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AclFilterRequest {
            filter: AclFilter {
                principal: r.option("principal", |r| r.string("principal"))?,
                resource: r.option("resource_type", ResourceType::decode)?,
                pattern: r.option("pattern_type", PatternType::decode)?,
                name: r.option("name", |r| r.string("name"))?,
                operation: r.option("operation", Operation::decode)?,
                permission: r.option("permission", Permission::decode)?,
            },
        })
    }
}

impl Body for AclsResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_array(buf, "bindings", &self.bindings, put_binding)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AclsResponse {
            bindings: r.array("bindings", MIN_BINDING_BYTES, read_binding)?,
        })
    }
}

impl Body for PutUserRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        put_credential(buf, &self.credential)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PutUserRequest {
            credential: read_credential(r)?,
        })
    }
}

impl Body for DeleteUserRequest {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_string(buf, "name", &self.name)
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(DeleteUserRequest {
            name: r.string("name")?,
        })
    }
}

impl Body for ListUsersResponse {
    fn encode(&self, buf: &mut BytesMut, _version: u16) -> Result<(), EncodeError> {
        wire::put_array(buf, "users", &self.users, |b, user| {
            wire::put_string(b, "name", &user.name)?;
            wire::put_string(b, "mechanism", &user.mechanism)?;
            b.put_u32_le(user.iterations);
            Ok(())
        })
    }

    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ListUsersResponse {
            users: r.array("users", 2 * MIN_STRING_BYTES + 4, |r| {
                Ok(UserInfo {
                    name: r.string("name")?,
                    mechanism: r.string("mechanism")?,
                    iterations: r.u32("iterations")?,
                })
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn user_events_round_trip(event in any::<UserEvent>()) {
            prop_assert_eq!(UserEvent::decode(event.encode().unwrap()).unwrap(), event);
        }

        #[test]
        fn acl_events_round_trip(event in any::<AclEvent>()) {
            prop_assert_eq!(AclEvent::decode(event.encode().unwrap()).unwrap(), event);
        }

        #[test]
        fn security_records_survive_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = UserEvent::decode(Bytes::from(bytes.clone()));
            let _ = AclEvent::decode(Bytes::from(bytes));
        }

        #[test]
        fn a_filter_of_a_binding_selects_it(binding in any::<AclBinding>()) {
            let exact = AclFilter {
                principal: Some(binding.principal.clone()),
                resource: Some(binding.resource),
                pattern: Some(binding.pattern),
                name: Some(binding.name.clone()),
                operation: Some(binding.operation),
                permission: Some(binding.permission),
            };
            prop_assert!(exact.matches(&binding));
            prop_assert!(AclFilter::default().matches(&binding));
        }
    }

    #[test]
    fn a_credential_debug_leaves_out_the_keys() {
        let credential = UserCredential {
            name: "alice".into(),
            iterations: 4096,
            salt: Bytes::from_static(b"salt-salt"),
            stored_key: Bytes::from_static(b"stored-secret"),
            server_key: Bytes::from_static(b"server-secret"),
        };
        let shown = format!("{credential:?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(
            !shown.contains("secret") && !shown.contains("salt-salt"),
            "{shown}"
        );
    }
}
