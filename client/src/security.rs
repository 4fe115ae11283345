//! Who the connection is ([`Client::whoami`]), and the administration of users and
//! ACLs (protocol version 3).
//!
//! Users are created and changed from a password, but the broker is sent only the
//! SCRAM-SHA-256 verifier derived from it here ([`auth::StoredCredential`]: a random
//! salt, PBKDF2 iterations, StoredKey and ServerKey): the password never crosses the
//! wire and the broker never holds it. ACL bindings and filters are the protocol's own
//! types, re-exported from the crate root.

use protocol::ops::security::{
    AclBinding, AclFilter, AclFilterRequest, CreateAclsRequest, DeleteUserRequest, PutUserRequest,
    UserInfo, WhoAmIResponse,
};
use protocol::ops::Empty;
use protocol::{Request, Response};

use crate::admin::expect_response;
use crate::connection::Client;
use crate::error::ClientError;

/// PBKDF2 iterations of the verifiers [`Client::create_user`] and
/// [`Client::alter_user`] derive (RFC 7677's minimum, as Kafka's default): each
/// authentication costs the broker and the client this many rounds.
pub const USER_ITERATIONS: u32 = auth::scram::DEFAULT_ITERATIONS;

impl Client {
    /// The principal this connection acts as, and how it was established
    /// (`SCRAM-SHA-256`, `PLAIN`, `TLS`, or `NONE` for `ANONYMOUS`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), client::ClientError> {
    /// use client::{Client, ClientConfig, Credentials};
    ///
    /// let config = ClientConfig::default().credentials(Credentials::scram_sha_256("alice", "pw"));
    /// let client = Client::connect_with("127.0.0.1:7171", config).await?;
    /// let me = client.whoami().await?;
    /// assert_eq!((me.principal.as_str(), me.authenticated_by.as_str()), ("alice", "SCRAM-SHA-256"));
    /// # Ok(()) }
    /// ```
    pub async fn whoami(&self) -> Result<WhoAmIResponse, ClientError> {
        expect_response!(self.request(Request::WhoAmI(Empty)).await?, WhoAmI)
    }

    /// Adds ACL bindings (one that exists already changes nothing). They apply to
    /// every connection's next request. Needs `alter` on the cluster.
    ///
    /// ```no_run
    /// # async fn demo(client: client::Client) -> Result<(), client::ClientError> {
    /// use client::{AclBinding, Operation, PatternType, Permission, ResourceType};
    ///
    /// // alice may produce to every topic whose name starts with "orders.".
    /// client.create_acls(vec![AclBinding {
    ///     principal: "alice".into(),
    ///     resource: ResourceType::Topic,
    ///     pattern: PatternType::Prefix,
    ///     name: "orders.".into(),
    ///     operation: Operation::Write,
    ///     permission: Permission::Allow,
    /// }]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_acls(&self, bindings: Vec<AclBinding>) -> Result<(), ClientError> {
        let request = Request::CreateAcls(CreateAclsRequest { bindings });
        let _: Empty = expect_response!(self.request(request).await?, CreateAcls)?;
        Ok(())
    }

    /// Deletes every binding `filter` selects and returns them. The default filter
    /// selects every binding. Needs `alter` on the cluster.
    ///
    /// ```no_run
    /// # async fn demo(client: client::Client) -> Result<(), client::ClientError> {
    /// use client::AclFilter;
    ///
    /// let gone = client
    ///     .delete_acls(AclFilter { principal: Some("alice".into()), ..AclFilter::default() })
    ///     .await?;
    /// println!("deleted {} binding(s) of alice", gone.len());
    /// # Ok(()) }
    /// ```
    pub async fn delete_acls(&self, filter: AclFilter) -> Result<Vec<AclBinding>, ClientError> {
        let request = Request::DeleteAcls(AclFilterRequest { filter });
        expect_response!(self.request(request).await?, DeleteAcls).map(|r| r.bindings)
    }

    /// The bindings `filter` selects, sorted. Each field of the filter that is set must
    /// equal the binding's (a filter's name is compared exactly, not as a pattern).
    /// Needs `describe` on the cluster.
    ///
    /// ```no_run
    /// # async fn demo(client: client::Client) -> Result<(), client::ClientError> {
    /// use client::{AclFilter, ResourceType};
    ///
    /// let on_topics = AclFilter { resource: Some(ResourceType::Topic), ..AclFilter::default() };
    /// for binding in client.list_acls(on_topics).await? {
    ///     println!("{} {} {}", binding.principal, binding.operation.name(), binding.name);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_acls(&self, filter: AclFilter) -> Result<Vec<AclBinding>, ClientError> {
        let request = Request::ListAcls(AclFilterRequest { filter });
        expect_response!(self.request(request).await?, ListAcls).map(|r| r.bindings)
    }

    /// Creates user `name` with `password`. Only the SCRAM-SHA-256 verifier derived
    /// here is sent ([`USER_ITERATIONS`] PBKDF2 rounds over a fresh random salt); the
    /// broker never sees the password. Fails with `user_exists` if the user exists.
    /// Needs `alter` on the cluster.
    ///
    /// ```no_run
    /// # async fn demo(client: client::Client) -> Result<(), client::ClientError> {
    /// client.create_user("alice", "correct horse battery staple").await?;
    /// client.alter_user("alice", "another horse").await?;  // a new password
    /// assert!(client.list_users().await?.iter().any(|u| u.name == "alice"));
    /// client.delete_user("alice").await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_user(&self, name: &str, password: &str) -> Result<(), ClientError> {
        let request = Request::CreateUser(put_user(name, password)?);
        let _: Empty = expect_response!(self.request(request).await?, CreateUser)?;
        Ok(())
    }

    /// Replaces the password of existing user `name` (sending only the new verifier,
    /// as [`create_user`](Self::create_user) does). Connections already authenticated
    /// stay so. Fails with `unknown_user` if there is no such user. Needs `alter` on
    /// the cluster.
    pub async fn alter_user(&self, name: &str, password: &str) -> Result<(), ClientError> {
        let request = Request::AlterUser(put_user(name, password)?);
        let _: Empty = expect_response!(self.request(request).await?, AlterUser)?;
        Ok(())
    }

    /// Deletes user `name` (its ACL bindings stay until deleted). Fails with
    /// `unknown_user` if there is no such user. Needs `alter` on the cluster.
    pub async fn delete_user(&self, name: &str) -> Result<(), ClientError> {
        let request = Request::DeleteUser(DeleteUserRequest { name: name.into() });
        let _: Empty = expect_response!(self.request(request).await?, DeleteUser)?;
        Ok(())
    }

    /// Every user, by name, with its verifier's mechanism and iteration count (never
    /// the verifier). Needs `describe` on the cluster.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>, ClientError> {
        expect_response!(self.request(Request::ListUsers(Empty)).await?, ListUsers).map(|r| r.users)
    }
}

/// The CreateUser or AlterUser body for `name` and `password`: the verifier, derived
/// here with a fresh salt.
fn put_user(name: &str, password: &str) -> Result<PutUserRequest, ClientError> {
    if name.is_empty() {
        return Err(ClientError::InvalidArgument(
            "a user name may not be empty".into(),
        ));
    }
    if password.is_empty() {
        return Err(ClientError::InvalidArgument(format!(
            "the password of user {name:?} may not be empty"
        )));
    }
    let credential =
        auth::StoredCredential::generate(password, USER_ITERATIONS, &mut rand::thread_rng())
            // The error says what limit the password broke, never the password.
            .map_err(|e| ClientError::InvalidArgument(format!("user {name:?}: {e}")))?;
    Ok(PutUserRequest {
        credential: credential.to_user_credential(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_sent_as_a_verifier_of_its_password() {
        let request = put_user("alice", "pencil").unwrap();
        let sent = &request.credential;
        assert_eq!(sent.name, "alice");
        assert_eq!(sent.iterations, USER_ITERATIONS);
        assert_eq!(sent.salt.len(), auth::scram::DEFAULT_SALT_BYTES);
        let stored = auth::StoredCredential::from_user_credential(sent).unwrap();
        assert!(stored.verify_password("pencil"));
        assert!(!stored.verify_password("pencil!"));
        // Nothing sent holds the password's bytes.
        let mut encoded = bytes::BytesMut::new();
        protocol::Message::Request {
            correlation_id: 7,
            request: Request::CreateUser(request),
        }
        .encode(protocol::PROTOCOL_VERSION, &mut encoded)
        .unwrap();
        assert!(!encoded.windows(6).any(|w| w == b"pencil"));
    }

    #[test]
    fn every_user_gets_a_fresh_salt() {
        let a = put_user("alice", "pencil").unwrap().credential;
        let b = put_user("alice", "pencil").unwrap().credential;
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.stored_key, b.stored_key);
    }

    #[test]
    fn empty_and_overlong_passwords_are_refused_without_showing_them() {
        for (name, password) in [("alice", String::new()), ("", "pw".to_string())] {
            assert!(matches!(
                put_user(name, &password),
                Err(ClientError::InvalidArgument(_))
            ));
        }
        let long = "x".repeat(auth::MAX_PASSWORD_BYTES + 1);
        let error = put_user("alice", &long).unwrap_err().to_string();
        assert!(!error.contains(&long) && error.contains("alice"), "{error}");
    }
}
