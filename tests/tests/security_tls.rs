//! Authentication over TLS against the real brokerd, over raw frames on the test's
//! own TLS client: PLAIN (which brokerd accepts only over TLS), SCRAM-SHA-256 over
//! TLS, and mutual TLS, where a verified client certificate is the principal and
//! the ACLs granted to that name decide what it may do.
//!
//! Certificates and the TLS client are `tls_support`'s, shared with `tls.rs`.

mod tls_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use auth::scram::ClientExchange;
use bytes::Bytes;
use integration_tests::{brokerd_bin, Brokerd, Launch, LaunchError};
use protocol::batch::BatchBuilder;
use protocol::ops::produce::{AckLevel, PartitionSelector, ProduceRequest};
use protocol::ops::security::{
    AclBinding, AuthenticateRequest, AuthenticateResponse, CreateAclsRequest, Operation,
    PatternType, Permission, PutUserRequest, ResourceType, WhoAmIResponse,
};
use protocol::ops::topic::{CreateTopicRequest, DescribeTopicRequest};
use protocol::ops::Empty;
use protocol::{ErrorCode, Message, Request, Response};
use tls_support::client::{client_config, TlsRaw, BOTH_VERSIONS};
use tls_support::pki::{Leaf, Pki};

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "correct horse battery staple";
/// What every failed authentication says, whatever failed.
const FAILED: &str = "authentication failed";

/// A CA and a server certificate for brokerd, in `dir`.
struct Setup {
    pki: Pki,
    cert: PathBuf,
    key: PathBuf,
}

impl Setup {
    fn new(dir: &Path) -> Setup {
        let pki = Pki::new(dir, "ca");
        let (cert, key, _) = pki.server("server");
        Setup { pki, cert, key }
    }

    /// `[tls]` with this server certificate, then `extra` lines.
    fn tls_lines(&self, extra: &str) -> String {
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\n{extra}\n",
            self.cert, self.key
        )
    }

    /// `[tls]` asking for client certificates from this CA, their principal taken
    /// from `principal_from`.
    fn mutual_lines(&self, principal_from: &str) -> String {
        self.tls_lines(&format!(
            "client_ca = {:?}\nprincipal_from = {principal_from:?}",
            self.pki.ca_path
        ))
    }

    /// A client configuration trusting the CA, presenting `identity` if given.
    fn client(&self, identity: Option<&(PathBuf, PathBuf)>) -> Arc<rustls::ClientConfig> {
        let identity = identity.map(|(c, k)| (c.as_path(), k.as_path()));
        client_config(&self.pki.ca_path, identity, BOTH_VERSIONS)
    }
}

/// A launch of brokerd with `config` (TOML) as its configuration file, its log in
/// `dir/brokerd.log`.
fn launch(dir: &Path, config: &str) -> Launch {
    let path = dir.join("brokerd.toml");
    std::fs::write(&path, config).unwrap();
    Launch::new(brokerd_bin())
        .args(["--config".into(), path.into_os_string()])
        .log_to(dir.join("brokerd.log"))
}

/// brokerd with `[security]` offering `mechanisms` (TOML array items) and `tls`
/// lines, `admin` initialised by `--init-admin`.
fn secured(dir: &Path, mechanisms: &str, tls: &str) -> Brokerd {
    let config = format!("[security]\nmechanisms = [{mechanisms}]\nfailure_delay_ms = 10\n\n{tls}");
    launch(dir, &config)
        .init_admin(ADMIN, ADMIN_PASSWORD)
        .start()
        .unwrap()
}

async fn connect(addr: &str, config: Arc<rustls::ClientConfig>) -> TlsRaw {
    let raw = TlsRaw::connect(addr, config).await.unwrap();
    assert_eq!(raw.version, 3, "the handshake picks the security version");
    raw
}

fn ok(message: Message) -> Response {
    match message {
        Message::Response { response, .. } => response,
        other => panic!("expected a success, got {other:?}"),
    }
}

fn refused(message: &Message) -> (ErrorCode, String) {
    match message {
        Message::Error { error, .. } => (error.code, error.message.clone()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn authenticate(mechanism: &str, payload: Vec<u8>) -> Request {
    Request::Authenticate(AuthenticateRequest {
        mechanism: mechanism.into(),
        payload: Bytes::from(payload),
    })
}

fn plain_message(user: &str, password: &str) -> Vec<u8> {
    format!("\0{user}\0{password}").into_bytes()
}

async fn whoami(raw: &mut TlsRaw) -> WhoAmIResponse {
    match ok(raw.call(Request::WhoAmI(Empty)).await.unwrap()) {
        Response::WhoAmI(me) => me,
        other => panic!("{other:?}"),
    }
}

/// One step of an Authenticate exchange that must succeed.
fn step(message: Message) -> AuthenticateResponse {
    match ok(message) {
        Response::Authenticate(step) => step,
        other => panic!("{other:?}"),
    }
}

/// A SCRAM-SHA-256 exchange on `raw`; the refusal if a step fails.
async fn scram(raw: &mut TlsRaw, user: &str, password: &str) -> Result<(), (ErrorCode, String)> {
    let (client, first) = ClientExchange::new(user, password, &mut rand::thread_rng()).unwrap();
    let answer = raw
        .call(authenticate("SCRAM-SHA-256", first))
        .await
        .unwrap();
    if let Message::Error { .. } = answer {
        return Err(refused(&answer));
    }
    let server_first = step(answer);
    assert!(!server_first.complete);
    let (client, last) = client.respond(&server_first.payload).unwrap();
    let answer = raw.call(authenticate("SCRAM-SHA-256", last)).await.unwrap();
    if let Message::Error { .. } = answer {
        return Err(refused(&answer));
    }
    let server_final = step(answer);
    assert!(server_final.complete);
    assert_eq!(server_final.principal, user);
    client
        .verify(&server_final.payload)
        .expect("the server proves it knows the verifier");
    Ok(())
}

fn create_topic(name: &str) -> Request {
    Request::CreateTopic(CreateTopicRequest {
        name: name.into(),
        partitions: 1,
        config: Vec::new(),
    })
}

fn produce_request(topic: &str, value: &[u8]) -> Request {
    let mut builder = BatchBuilder::new();
    builder.push(1, None, Some(value), &[]).unwrap();
    Request::Produce(ProduceRequest {
        topic: topic.into(),
        partition: PartitionSelector::Partition(0),
        ack: AckLevel::Durable,
        timeout_ms: 10_000,
        producer: None,
        batch: builder.finish(),
    })
}

async fn end_offset(raw: &mut TlsRaw, topic: &str) -> u64 {
    let request = Request::DescribeTopic(DescribeTopicRequest { name: topic.into() });
    match ok(raw.call(request).await.unwrap()) {
        Response::DescribeTopic(d) => d.partitions[0].end_offset,
        other => panic!("{other:?}"),
    }
}

fn allow(principal: &str, resource: ResourceType, name: &str, op: Operation) -> Request {
    Request::CreateAcls(CreateAclsRequest {
        bindings: vec![AclBinding {
            principal: principal.into(),
            resource,
            pattern: PatternType::Literal,
            name: name.into(),
            operation: op,
            permission: Permission::Allow,
        }],
    })
}

#[tokio::test]
async fn plain_over_tls_logs_in_and_a_wrong_password_is_refused_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(dir.path());
    let broker = secured(
        dir.path(),
        "\"SCRAM-SHA-256\", \"PLAIN\"",
        &setup.tls_lines(""),
    );

    let mut raw = connect(broker.addr(), setup.client(None)).await;
    let answer = raw
        .call(authenticate("PLAIN", plain_message(ADMIN, ADMIN_PASSWORD)))
        .await
        .unwrap();
    let done = step(answer);
    assert!(done.complete);
    assert_eq!(done.principal, ADMIN);
    assert!(done.payload.is_empty(), "PLAIN's answer carries nothing");
    let me = whoami(&mut raw).await;
    assert_eq!(
        (me.principal.as_str(), me.authenticated_by.as_str()),
        (ADMIN, "PLAIN")
    );
    ok(raw.call(create_topic("orders")).await.unwrap());

    // A wrong password and an unknown user: the same answer, then the close.
    for (user, password) in [(ADMIN, "not the password"), ("nobody", "whatever")] {
        let mut raw = connect(broker.addr(), setup.client(None)).await;
        let answer = raw
            .call(authenticate("PLAIN", plain_message(user, password)))
            .await
            .unwrap();
        assert_eq!(
            refused(&answer),
            (ErrorCode::AuthenticationFailed, FAILED.into()),
            "{user}"
        );
        assert!(raw.closed().await, "a failed login closes the connection");
    }
    let log = std::fs::read_to_string(dir.path().join("brokerd.log")).unwrap();
    assert!(!log.contains("not the password"), "a password in the log");
}

#[test]
fn plain_without_tls_stops_brokerd_at_startup_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[security]\nmechanisms = [\"SCRAM-SHA-256\", \"PLAIN\"]\n";
    let error = launch(dir.path(), config).start().unwrap_err();
    assert!(matches!(error, LaunchError::Exited { .. }), "{error}");
    let log = std::fs::read_to_string(dir.path().join("brokerd.log")).unwrap();
    assert!(
        log.contains("PLAIN") && log.contains("needs [tls]"),
        "the refusal does not say why: {log}"
    );
}

#[tokio::test]
async fn scram_over_tls_logs_in_and_proves_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(dir.path());
    let broker = secured(dir.path(), "\"SCRAM-SHA-256\"", &setup.tls_lines(""));

    let mut admin = connect(broker.addr(), setup.client(None)).await;
    scram(&mut admin, ADMIN, ADMIN_PASSWORD).await.unwrap();
    let me = whoami(&mut admin).await;
    assert_eq!(
        (me.principal.as_str(), me.authenticated_by.as_str()),
        (ADMIN, "SCRAM-SHA-256")
    );
    let credential =
        auth::scram::StoredCredential::generate("carol-pw", 4096, &mut rand::thread_rng())
            .unwrap()
            .to_user_credential("carol");
    ok(admin
        .call(Request::CreateUser(PutUserRequest { credential }))
        .await
        .unwrap());

    let mut carol = connect(broker.addr(), setup.client(None)).await;
    scram(&mut carol, "carol", "carol-pw").await.unwrap();
    assert_eq!(whoami(&mut carol).await.principal, "carol");

    let mut wrong = connect(broker.addr(), setup.client(None)).await;
    let refusal = scram(&mut wrong, "carol", "not carol's").await.unwrap_err();
    assert_eq!(refusal, (ErrorCode::AuthenticationFailed, FAILED.into()));
    assert!(wrong.closed().await, "a failed login closes the connection");

    // PLAIN is not offered here: asking for it fails like any other failure.
    let mut plain = connect(broker.addr(), setup.client(None)).await;
    let answer = plain
        .call(authenticate("PLAIN", plain_message("carol", "carol-pw")))
        .await
        .unwrap();
    assert_eq!(
        refused(&answer),
        (ErrorCode::AuthenticationFailed, FAILED.into())
    );
}

#[tokio::test]
async fn a_client_certificate_is_the_principal_and_only_its_acls_apply() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(dir.path());
    let broker = secured(dir.path(), "\"SCRAM-SHA-256\"", &setup.mutual_lines("cn"));
    let ops = setup.pki.client("ops", "ops", false);
    let orders = setup.pki.client("svc-orders", "svc-orders", false);

    // The operator's certificate gets it through TLS; SCRAM then makes it the admin.
    let mut admin = connect(broker.addr(), setup.client(Some(&ops))).await;
    assert_eq!(whoami(&mut admin).await.principal, "ops");
    scram(&mut admin, ADMIN, ADMIN_PASSWORD).await.unwrap();
    assert_eq!(whoami(&mut admin).await.principal, ADMIN);
    for topic in ["orders", "payments"] {
        ok(admin.call(create_topic(topic)).await.unwrap());
    }

    // The service runs no SASL at all: its certificate is who it is.
    let mut service = connect(broker.addr(), setup.client(Some(&orders))).await;
    let me = whoami(&mut service).await;
    assert_eq!(
        (me.principal.as_str(), me.authenticated_by.as_str()),
        ("svc-orders", "TLS")
    );
    let (code, _) = refused(&service.call(produce_request("orders", b"1")).await.unwrap());
    assert_eq!(code, ErrorCode::NotAuthorized, "denied until granted");

    let grant = allow(
        "svc-orders",
        ResourceType::Topic,
        "orders",
        Operation::Write,
    );
    ok(admin.call(grant).await.unwrap());
    let answer = service.call(produce_request("orders", b"2")).await.unwrap();
    assert!(matches!(ok(answer), Response::Produce(_)));
    assert_eq!(end_offset(&mut admin, "orders").await, 1);

    let answer = service
        .call(produce_request("payments", b"3"))
        .await
        .unwrap();
    assert_eq!(
        refused(&answer),
        (
            ErrorCode::NotAuthorized,
            "not authorized to write topic \"payments\"".into()
        )
    );
    assert_eq!(
        end_offset(&mut admin, "payments").await,
        0,
        "nothing appended"
    );
}

#[tokio::test]
async fn principal_from_san_takes_the_subject_alternative_name() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(dir.path());
    let broker = secured(dir.path(), "\"SCRAM-SHA-256\"", &setup.mutual_lines("san"));
    let (cert, key, _) = setup.pki.issue(
        "payments",
        Leaf {
            common_name: "not-the-principal",
            sans: &["svc-payments.internal"],
            expired: false,
        },
    );
    let mut raw = connect(broker.addr(), setup.client(Some(&(cert, key)))).await;
    let me = whoami(&mut raw).await;
    assert_eq!(
        (me.principal.as_str(), me.authenticated_by.as_str()),
        ("svc-payments.internal", "TLS")
    );
}

#[tokio::test]
async fn mutual_tls_alone_turns_authorization_on() {
    // No SASL mechanism at all: the client certificate is the only authentication,
    // and it must be checked against the ACLs like any other, not let through.
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(dir.path());
    let config = format!(
        "[security]\nsuperusers = [\"ops\"]\n\n{}",
        setup.mutual_lines("cn")
    );
    let broker = launch(dir.path(), &config).start().unwrap();
    let ops = setup.pki.client("ops", "ops", false);
    let orders = setup.pki.client("svc-orders", "svc-orders", false);

    let mut admin = connect(broker.addr(), setup.client(Some(&ops))).await;
    ok(admin.call(create_topic("orders")).await.unwrap());
    let mut service = connect(broker.addr(), setup.client(Some(&orders))).await;
    let me = whoami(&mut service).await;
    assert_eq!(
        (me.principal.as_str(), me.authenticated_by.as_str()),
        ("svc-orders", "TLS")
    );
    let (code, _) = refused(&service.call(produce_request("orders", b"1")).await.unwrap());
    assert_eq!(code, ErrorCode::NotAuthorized);
    assert_eq!(end_offset(&mut admin, "orders").await, 0);
}
