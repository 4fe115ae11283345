//! Authentication and authorization against the real brokerd, over raw frames: SCRAM
//! logins (the client side from the `auth` crate, as any client would do it), what
//! a refused request leaves unchanged, ACLs applied to live connections, users and
//! ACLs across restarts, and the limits before a connection has authenticated.

use std::path::Path;
use std::time::{Duration, Instant};

use auth::scram::ClientExchange;
use bytes::Bytes;
use integration_tests::raw::Raw;
use integration_tests::{brokerd_bin, Brokerd, Launch};
use protocol::batch::BatchBuilder;
use protocol::ops::fetch::FetchRequest;
use protocol::ops::group::{GroupMode, GroupStart, JoinGroupRequest};
use protocol::ops::group_admin::PurgeGroupRequest;
use protocol::ops::produce::{AckLevel, PartitionSelector, ProduceRequest};
use protocol::ops::routes::AddRouteRequest;
use protocol::ops::security::{
    AclBinding, AclFilter, AclFilterRequest, AuthenticateRequest, CreateAclsRequest, Operation,
    PatternType, Permission, PutUserRequest, ResourceType,
};
use protocol::ops::topic::{
    CreateTopicRequest, DeleteRecordsRequest, DeleteTopicRequest, DescribeTopicRequest,
    ListTopicsRequest,
};
use protocol::ops::Empty;
use protocol::{ErrorCode, Message, Request, Response};

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A brokerd requiring SCRAM, with `admin` initialised by `--init-admin`.
fn secured(dir: &Path, extra: &str) -> Brokerd {
    let config = dir.join("brokerd.toml");
    std::fs::write(
        &config,
        format!("[security]\nmechanisms = [\"SCRAM-SHA-256\"]\nfailure_delay_ms = 10\n{extra}"),
    )
    .unwrap();
    Launch::new(brokerd_bin())
        .args([std::ffi::OsStr::new("--config"), config.as_os_str()])
        .init_admin(ADMIN, ADMIN_PASSWORD)
        .start()
        .unwrap()
}

fn error_of(message: &Message) -> Option<(ErrorCode, String)> {
    match message {
        Message::Error { error, .. } => Some((error.code, error.message.clone())),
        _ => None,
    }
}

fn ok(message: Message) -> Response {
    match message {
        Message::Response { response, .. } => response,
        other => panic!("expected a success, got {other:?}"),
    }
}

fn refused(message: &Message) -> (ErrorCode, String) {
    error_of(message).unwrap_or_else(|| panic!("expected a refusal, got {message:?}"))
}

/// Handshakes and runs a SCRAM-SHA-256 exchange; the refusal if any step fails.
fn login(addr: &str, user: &str, password: &str) -> Result<Raw, (ErrorCode, String)> {
    let mut raw = Raw::handshaken_at(addr, &[3]);
    let (client, first) = ClientExchange::new(user, password, &mut rand::thread_rng()).unwrap();
    let answer = raw.call(authenticate(first));
    let server_first = match answer {
        Message::Response {
            response: Response::Authenticate(step),
            ..
        } => {
            assert!(!step.complete);
            step.payload
        }
        other => return Err(refused(&other)),
    };
    let (client, last) = client.respond(&server_first).unwrap();
    match raw.call(authenticate(last)) {
        Message::Response {
            response: Response::Authenticate(step),
            ..
        } => {
            assert!(step.complete);
            assert_eq!(step.principal, user);
            client
                .verify(&step.payload)
                .expect("the server proves it knows the verifier");
            Ok(raw)
        }
        other => Err(refused(&other)),
    }
}

fn authenticate(payload: Vec<u8>) -> Request {
    Request::Authenticate(AuthenticateRequest {
        mechanism: "SCRAM-SHA-256".into(),
        payload: Bytes::from(payload),
    })
}

fn admin(broker: &Brokerd) -> Raw {
    login(broker.addr(), ADMIN, ADMIN_PASSWORD).expect("the admin logs in")
}

fn create_user(admin: &mut Raw, name: &str, password: &str) {
    let credential =
        auth::scram::StoredCredential::generate(password, 4096, &mut rand::thread_rng())
            .unwrap()
            .to_user_credential(name);
    ok(admin.call(Request::CreateUser(PutUserRequest { credential })));
}

fn binding(
    principal: &str,
    resource: ResourceType,
    name: &str,
    operation: Operation,
) -> AclBinding {
    AclBinding {
        principal: principal.into(),
        resource,
        pattern: PatternType::Literal,
        name: name.into(),
        operation,
        permission: Permission::Allow,
    }
}

fn grant(admin: &mut Raw, bindings: Vec<AclBinding>) {
    ok(admin.call(Request::CreateAcls(CreateAclsRequest { bindings })));
}

fn create_topic(raw: &mut Raw, name: &str) {
    ok(raw.call(Request::CreateTopic(CreateTopicRequest {
        name: name.into(),
        partitions: 1,
        config: Vec::new(),
    })));
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

fn end_offset(raw: &mut Raw, topic: &str) -> u64 {
    match ok(raw.call(Request::DescribeTopic(DescribeTopicRequest {
        name: topic.into(),
    }))) {
        Response::DescribeTopic(d) => d.partitions[0].end_offset,
        other => panic!("{other:?}"),
    }
}

fn fetch_request(topic: &str) -> Request {
    Request::Fetch(FetchRequest {
        topic: topic.into(),
        partition: 0,
        offset: 0,
        max_bytes: 1 << 20,
        max_wait_ms: 0,
    })
}

#[test]
fn a_wrong_password_and_an_unknown_user_get_the_same_answer_and_the_connection_closes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path(), "");
    let wrong = login(broker.addr(), ADMIN, "not the password")
        .err()
        .expect("refused");
    let unknown = login(broker.addr(), "nobody", "whatever")
        .err()
        .expect("refused");
    assert_eq!(wrong, unknown);
    assert_eq!(
        wrong,
        (
            ErrorCode::AuthenticationFailed,
            "authentication failed".into()
        )
    );

    let mut raw = Raw::handshaken_at(broker.addr(), &[3]);
    let (_, first) = ClientExchange::new("nobody", "x", &mut rand::thread_rng()).unwrap();
    ok(raw.call(authenticate(first)));
    let answer = raw.call(authenticate(b"c=biws,r=garbage,p=AAAA".to_vec()));
    assert_eq!(refused(&answer).0, ErrorCode::AuthenticationFailed);
    assert!(
        raw.receive().is_none(),
        "a failed login closes the connection"
    );

    admin(&broker);
}

#[test]
fn nothing_is_served_before_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path(), "");
    let mut raw = Raw::handshaken_at(broker.addr(), &[3]);
    let answer = raw.call(Request::ListTopics(ListTopicsRequest {
        include_internal: true,
    }));
    assert_eq!(refused(&answer).0, ErrorCode::AuthenticationRequired);
    assert!(raw.receive().is_none(), "and the connection is closed");

    // A version-2 client cannot authenticate; it learns so in a code it knows.
    let mut old = Raw::handshaken_at(broker.addr(), &[1, 2]);
    let answer = old.call(Request::ListTopics(ListTopicsRequest {
        include_internal: true,
    }));
    assert_eq!(refused(&answer).0, ErrorCode::HandshakeRequired);
}

#[test]
fn a_principal_without_permission_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path(), "");
    let mut admin = admin(&broker);
    create_topic(&mut admin, "orders");
    ok(admin.call(produce_request("orders", b"first")));
    create_user(&mut admin, "alice", "alice-pw");
    let mut alice = login(broker.addr(), "alice", "alice-pw").unwrap();

    // No ACL at all: denied by default, and the error names what was refused.
    let answer = alice.call(produce_request("orders", b"sneaky"));
    let (code, message) = refused(&answer);
    assert_eq!(code, ErrorCode::NotAuthorized);
    assert_eq!(message, "not authorized to write topic \"orders\"");
    assert_eq!(end_offset(&mut admin, "orders"), 1, "nothing was appended");

    assert_eq!(
        refused(&alice.call(fetch_request("orders"))).0,
        ErrorCode::NotAuthorized
    );
    let join = Request::JoinGroup(JoinGroupRequest {
        group: "billing".into(),
        topic: "orders".into(),
        member_id: String::new(),
        session_timeout_ms: 10_000,
        mode: GroupMode::Queue,
        start: GroupStart::Earliest,
        config: Vec::new(),
    });
    assert_eq!(
        refused(&alice.call(join.clone())).0,
        ErrorCode::NotAuthorized
    );

    let delete_records = Request::DeleteRecords(DeleteRecordsRequest {
        topic: "orders".into(),
        partition: 0,
        before_offset: 1,
    });
    assert_eq!(
        refused(&alice.call(delete_records.clone())).0,
        ErrorCode::NotAuthorized
    );
    let delete_topic = Request::DeleteTopic(DeleteTopicRequest {
        name: "orders".into(),
    });
    assert_eq!(
        refused(&alice.call(delete_topic.clone())).0,
        ErrorCode::NotAuthorized
    );
    assert_eq!(
        end_offset(&mut admin, "orders"),
        1,
        "the topic and its record are there"
    );

    // Read on the topic alone does not let her join a group: the group needs it too.
    grant(
        &mut admin,
        vec![binding(
            "alice",
            ResourceType::Topic,
            "orders",
            Operation::Read,
        )],
    );
    assert!(matches!(
        ok(alice.call(fetch_request("orders"))),
        Response::Fetch(_)
    ));
    let (code, message) = refused(&alice.call(join.clone()));
    assert_eq!(
        (code, message.as_str()),
        (
            ErrorCode::NotAuthorized,
            "not authorized to read group \"billing\""
        )
    );
    grant(
        &mut admin,
        vec![binding(
            "alice",
            ResourceType::Group,
            "billing",
            Operation::Read,
        )],
    );
    assert!(matches!(ok(alice.call(join)), Response::JoinGroup(_)));

    // Dead letters: purging them needs delete on the group.
    let purge = Request::PurgeGroup(PurgeGroupRequest {
        group: "billing".into(),
    });
    assert_eq!(refused(&alice.call(purge)).0, ErrorCode::NotAuthorized);

    // Routes need alter on the route, and write on where they send.
    let add_route = Request::AddRoute(AddRouteRequest {
        pattern: "orders.#".into(),
        topic: "orders".into(),
        headers: Vec::new(),
    });
    assert_eq!(
        refused(&alice.call(add_route.clone())).0,
        ErrorCode::NotAuthorized
    );
    grant(
        &mut admin,
        vec![binding(
            "alice",
            ResourceType::Route,
            "orders.#",
            Operation::Alter,
        )],
    );
    let (_, message) = refused(&alice.call(add_route.clone()));
    assert_eq!(message, "not authorized to write topic \"orders\"");
    grant(
        &mut admin,
        vec![binding(
            "alice",
            ResourceType::Topic,
            "orders",
            Operation::Write,
        )],
    );
    assert!(matches!(ok(alice.call(add_route)), Response::AddRoute(_)));

    // ACLs themselves need alter on the cluster.
    let answer = alice.call(Request::CreateAcls(CreateAclsRequest {
        bindings: vec![binding("alice", ResourceType::Topic, "*", Operation::All)],
    }));
    let (code, message) = refused(&answer);
    assert_eq!(
        (code, message.as_str()),
        (
            ErrorCode::NotAuthorized,
            "not authorized to alter cluster \"cluster\""
        )
    );

    // With delete, the records go.
    grant(
        &mut admin,
        vec![binding(
            "alice",
            ResourceType::Topic,
            "orders",
            Operation::Delete,
        )],
    );
    assert!(matches!(
        ok(alice.call(delete_records)),
        Response::DeleteRecords(_)
    ));
}

#[test]
fn an_acl_applies_to_a_live_connection_at_its_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path(), "");
    let mut admin = admin(&broker);
    create_topic(&mut admin, "events");
    create_user(&mut admin, "bob", "bob-pw");
    let mut bob = login(broker.addr(), "bob", "bob-pw").unwrap();
    assert_eq!(
        refused(&bob.call(produce_request("events", b"1"))).0,
        ErrorCode::NotAuthorized
    );

    grant(
        &mut admin,
        vec![binding(
            "bob",
            ResourceType::Topic,
            "events",
            Operation::Write,
        )],
    );
    assert!(matches!(
        ok(bob.call(produce_request("events", b"2"))),
        Response::Produce(_)
    ));

    // A deny wins over the allow, from the next request on.
    let mut deny = binding("*", ResourceType::Topic, "events", Operation::Write);
    deny.permission = Permission::Deny;
    grant(&mut admin, vec![deny]);
    assert_eq!(
        refused(&bob.call(produce_request("events", b"3"))).0,
        ErrorCode::NotAuthorized
    );
    assert_eq!(end_offset(&mut admin, "events"), 1);

    // Lists show only what the principal may describe.
    create_topic(&mut admin, "hidden");
    let topics = match ok(bob.call(Request::ListTopics(ListTopicsRequest {
        include_internal: true,
    }))) {
        Response::ListTopics(list) => list.topics.into_iter().map(|t| t.name).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        topics,
        vec!["events".to_string()],
        "write implies describe; nothing else shows"
    );
}

#[test]
fn users_and_acls_survive_a_restart_and_the_password_never_reaches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = secured(dir.path(), "");
    let mut admin = admin(&broker);
    create_topic(&mut admin, "t");
    let password = "a-password-to-grep-for-7f3a";
    create_user(&mut admin, "carol", password);
    grant(
        &mut admin,
        vec![binding("carol", ResourceType::Topic, "t", Operation::Write)],
    );
    drop(admin);
    broker.restart();

    let mut carol = login(broker.addr(), "carol", password).expect("carol survives the restart");
    assert!(matches!(
        ok(carol.call(produce_request("t", b"x"))),
        Response::Produce(_)
    ));
    let mut admin = self::admin(&broker);
    let listed = match ok(admin.call(Request::ListAcls(AclFilterRequest {
        filter: AclFilter {
            principal: Some("carol".into()),
            ..AclFilter::default()
        },
    }))) {
        Response::ListAcls(list) => list.bindings,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        listed,
        vec![binding("carol", ResourceType::Topic, "t", Operation::Write)]
    );
    assert!(broker.stop());

    for secret in [password, ADMIN_PASSWORD] {
        let found = grep(broker.data_dir(), secret.as_bytes());
        assert!(found.is_empty(), "{secret:?} found in {found:?}");
    }
}

/// Files under `dir` that contain `needle`.
fn grep(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn before_authentication_frames_are_small_and_time_is_short() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path(), "authentication_timeout_ms = 500\n");
    // A 5 KiB Authenticate: over the 4 KiB cap, so refused and closed.
    let mut raw = Raw::handshaken_at(broker.addr(), &[3]);
    let answer = raw.call(authenticate(vec![b'a'; 5 * 1024]));
    assert_eq!(refused(&answer).0, ErrorCode::FrameTooLarge);
    assert!(raw.receive().is_none());

    // Handshaken, then silent: closed at the authentication timeout.
    let mut raw = Raw::handshaken_at(broker.addr(), &[3]);
    let started = Instant::now();
    assert!(raw.receive().is_none(), "closed");
    assert!(started.elapsed() >= Duration::from_millis(450));

    // Once authenticated, the full frame size applies.
    let mut admin = admin(&broker);
    create_topic(&mut admin, "big");
    assert!(matches!(
        ok(admin.call(produce_request("big", &[7u8; 64 * 1024]))),
        Response::Produce(_)
    ));
    assert!(
        matches!(ok(admin.call(Request::WhoAmI(Empty))), Response::WhoAmI(w) if w.principal == ADMIN)
    );
}

#[test]
fn failures_from_one_address_are_capped_per_minute() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path(), "max_failures_per_minute = 2\n");
    for _ in 0..2 {
        assert!(login(broker.addr(), ADMIN, "wrong").is_err());
    }
    // Over the cap even the right password is refused, the same way.
    let refused = login(broker.addr(), ADMIN, ADMIN_PASSWORD)
        .err()
        .expect("capped");
    assert_eq!(
        refused,
        (
            ErrorCode::AuthenticationFailed,
            "authentication failed".into()
        )
    );
}

#[test]
fn anonymous_clients_get_only_what_acls_grant_them() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path(), "allow_anonymous = true\n");
    let mut admin = admin(&broker);
    create_topic(&mut admin, "public");
    create_topic(&mut admin, "private");
    grant(
        &mut admin,
        vec![binding(
            "ANONYMOUS",
            ResourceType::Topic,
            "public",
            Operation::Read,
        )],
    );
    let mut anonymous = Raw::handshaken_at(broker.addr(), &[3]);
    assert!(
        matches!(ok(anonymous.call(Request::WhoAmI(Empty))), Response::WhoAmI(w) if w.principal == "ANONYMOUS" && w.authenticated_by == "NONE")
    );
    assert!(matches!(
        ok(anonymous.call(fetch_request("public"))),
        Response::Fetch(_)
    ));
    assert_eq!(
        refused(&anonymous.call(fetch_request("private"))).0,
        ErrorCode::NotAuthorized
    );
}

#[test]
fn without_authentication_brokerd_refuses_a_non_loopback_address_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(brokerd_bin())
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{stderr}"
    );
    assert!(stderr.contains("allow_anonymous"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[test]
fn a_superuser_from_the_config_needs_no_acl() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path(), "superusers = [\"root\"]\n");
    let mut admin = admin(&broker);
    create_user(&mut admin, "root", "root-pw");
    create_user(&mut admin, "other", "other-pw");
    let mut root = login(broker.addr(), "root", "root-pw").unwrap();
    create_topic(&mut root, "made-by-root");
    assert!(matches!(
        ok(root.call(produce_request("made-by-root", b"x"))),
        Response::Produce(_)
    ));
    let mut other = login(broker.addr(), "other", "other-pw").unwrap();
    assert_eq!(
        refused(&other.call(fetch_request("made-by-root"))).0,
        ErrorCode::NotAuthorized
    );
}
