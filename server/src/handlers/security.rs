//! Users and ACLs: create, alter, delete, list; and WhoAmI.
//!
//! Who may call these is the authorization table's business (`alter` or `describe`
//! on the cluster); these only do them. Every change writes one audit line naming
//! the principal who made it, never a verifier.

use std::sync::Arc;

use protocol::ops::security::{
    AclBinding, AclFilterRequest, AclsResponse, CreateAclsRequest, DeleteUserRequest,
    ListUsersResponse, PutUserRequest, WhoAmIResponse,
};

use super::Actor;
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::security::Principal;

/// WhoAmI.
pub fn whoami(principal: &Principal) -> WhoAmIResponse {
    WhoAmIResponse {
        principal: principal.name.to_string(),
        authenticated_by: principal.by.name().into(),
    }
}

fn binding_text(b: &AclBinding) -> String {
    format!(
        "{} {} {} {} {} {:?}",
        b.permission.name(),
        b.principal,
        b.operation.name(),
        b.resource.name(),
        b.pattern.name(),
        b.name
    )
}

/// Adds bindings; answered once durable.
pub async fn create_acls(
    broker: Arc<Broker>,
    request: CreateAclsRequest,
    actor: Actor,
) -> Result<(), BrokerError> {
    let added: Vec<String> = request.bindings.iter().map(binding_text).collect();
    broker.security.acls.create(request.bindings).await?;
    tracing::info!(target: "audit", op = "CreateAcls", client = %actor.client, principal = %actor.principal, acls = ?added, "ACLs added");
    Ok(())
}

/// Deletes the bindings a filter selects; answered once durable.
pub async fn delete_acls(
    broker: Arc<Broker>,
    request: AclFilterRequest,
    actor: Actor,
) -> Result<AclsResponse, BrokerError> {
    let bindings = broker.security.acls.delete(&request.filter).await?;
    let deleted: Vec<String> = bindings.iter().map(binding_text).collect();
    tracing::info!(target: "audit", op = "DeleteAcls", client = %actor.client, principal = %actor.principal, acls = ?deleted, "ACLs deleted");
    Ok(AclsResponse { bindings })
}

/// The bindings a filter selects.
pub fn list_acls(broker: &Broker, request: &AclFilterRequest) -> AclsResponse {
    AclsResponse {
        bindings: broker.security.acls.list(&request.filter),
    }
}

/// Creates a user (`create`) or replaces a user's verifier; answered once durable.
pub async fn put_user(
    broker: Arc<Broker>,
    request: PutUserRequest,
    create: bool,
    actor: Actor,
) -> Result<(), BrokerError> {
    let name = request.credential.name.clone();
    broker
        .security
        .users
        .put(request.credential, create)
        .await?;
    let (op, what) = if create {
        ("CreateUser", "user created")
    } else {
        ("AlterUser", "user's password changed")
    };
    tracing::info!(target: "audit", op, client = %actor.client, principal = %actor.principal, user = %name, "{what}");
    Ok(())
}

/// Deletes a user; answered once durable.
pub async fn delete_user(
    broker: Arc<Broker>,
    request: DeleteUserRequest,
    actor: Actor,
) -> Result<(), BrokerError> {
    broker.security.users.delete(&request.name).await?;
    tracing::info!(target: "audit", op = "DeleteUser", client = %actor.client, principal = %actor.principal, user = %request.name, "user deleted");
    Ok(())
}

/// Every user, without verifiers.
pub fn list_users(broker: &Broker) -> ListUsersResponse {
    ListUsersResponse {
        users: broker.security.users.list(),
    }
}

/// `items` without those `principal` may not see (describe): a list answers only
/// what its caller could describe one by one.
pub fn visible<T>(
    broker: &Broker,
    principal: &Principal,
    resource: protocol::ops::security::ResourceType,
    mut items: Vec<T>,
    name: impl Fn(&T) -> &str,
) -> Vec<T> {
    if broker.security.enabled() {
        items.retain(|item| broker.security.may_see(principal, resource, name(item)));
    }
    items
}
