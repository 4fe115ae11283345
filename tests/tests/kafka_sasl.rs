//! SASL on the Kafka listener against the real brokerd with authentication on:
//! kcat (librdkafka) logs in with SCRAM-SHA-256 as a broker user and is held to its
//! ACLs (a refused produce appends nothing), a wrong password is refused, and a
//! request before logging in closes the connection.

mod kafka_support;

use std::path::{Path, PathBuf};

use integration_tests::{brokerctl, brokerd_bin, Brokerd, Launch};
use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_support::wire::{read_frame, send_frame};
use kafka_support::{kcat, try_kcat};
use tokio::net::TcpStream;

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "correct horse battery staple";
const ALICE_PASSWORD: &str = "alice's own passphrase";

/// A brokerd requiring SCRAM, with `admin` initialised and the Kafka listener on.
fn secured(dir: &Path) -> Brokerd {
    let config = dir.join("brokerd.toml");
    std::fs::write(
        &config,
        "[security]\nmechanisms = [\"SCRAM-SHA-256\"]\nfailure_delay_ms = 10\n",
    )
    .unwrap();
    Launch::new(brokerd_bin())
        .args([std::ffi::OsStr::new("--config"), config.as_os_str()])
        .init_admin(ADMIN, ADMIN_PASSWORD)
        .with_kafka()
        .start()
        .unwrap()
}

/// brokerctl as the admin; panics unless it succeeds.
fn admin(broker: &Brokerd, password_file: &Path, args: &[&str], stdin: &str) -> String {
    let mut full = vec![
        "--user",
        ADMIN,
        "--password-file",
        password_file.to_str().unwrap(),
    ];
    full.extend_from_slice(args);
    let (ok, out, err) = brokerctl(broker.addr(), &full, stdin);
    assert!(ok, "brokerctl {args:?}: {out}{err}");
    out
}

/// kcat logged in as `user`; (success, stdout, stderr).
fn kcat_as(
    kcat: &PathBuf,
    broker: &Brokerd,
    user: &str,
    password: &str,
    args: &[&str],
    stdin: &str,
) -> (bool, String, String) {
    let username = format!("sasl.username={user}");
    let password = format!("sasl.password={password}");
    let mut all = vec![
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanisms=SCRAM-SHA-256",
        "-X",
        &username,
        "-X",
        &password,
    ];
    all.extend_from_slice(args);
    try_kcat(kcat, broker, &all, stdin)
}

#[tokio::test]
async fn kcat_logs_in_with_scram_and_is_held_to_its_acls() {
    let Some(kcat) = kcat() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path());
    let password_file = dir.path().join("admin.password");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).unwrap();
    admin(
        &broker,
        &password_file,
        &["users", "add", "alice"],
        &format!("{ALICE_PASSWORD}\n"),
    );
    admin(
        &broker,
        &password_file,
        &["topics", "create", "ledger", "--partitions", "1"],
        "",
    );
    admin(
        &broker,
        &password_file,
        &["topics", "create", "secret", "--partitions", "1"],
        "",
    );
    admin(
        &broker,
        &password_file,
        &[
            "acls",
            "add",
            "--allow",
            "alice",
            "--operation",
            "write",
            "--operation",
            "describe",
            "--topic",
            "ledger",
        ],
        "",
    );

    // alice writes where the ACLs let her ...
    let (ok, out, err) = kcat_as(
        &kcat,
        &broker,
        "alice",
        ALICE_PASSWORD,
        &["-P", "-t", "ledger", "-K:"],
        "k1:hello\n",
    );
    assert!(ok, "{out}{err}");
    // ... and the admin reads it back over the Kafka port too.
    let (ok, out, err) = kcat_as(
        &kcat,
        &broker,
        ADMIN,
        ADMIN_PASSWORD,
        &["-C", "-t", "ledger", "-o", "0", "-e", "-f", "%k=%s\\n"],
        "",
    );
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "k1=hello");

    // A produce the ACLs refuse appends nothing.
    let (ok, out, err) = kcat_as(
        &kcat,
        &broker,
        "alice",
        ALICE_PASSWORD,
        &["-P", "-t", "secret"],
        "nope\n",
    );
    assert!(!ok || err.contains("authorization"), "{out}{err}");
    let described = admin(
        &broker,
        &password_file,
        &["topics", "describe", "secret", "--json"],
        "",
    );
    let described: serde_json::Value = serde_json::from_str(&described).unwrap();
    let end: u64 = described["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["end_offset"].as_u64().unwrap())
        .sum();
    assert_eq!(end, 0, "{described}");

    // A wrong password is refused.
    let (ok, out, err) = kcat_as(
        &kcat,
        &broker,
        "alice",
        "not her password",
        &["-L", "-m", "5"],
        "",
    );
    assert!(!ok, "{out}{err}");
    assert!(err.contains("uthentication"), "{err}");
}

#[tokio::test]
async fn a_request_before_logging_in_closes_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path());
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let mut body = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(9)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("kafka_sasl")))
        .encode(&mut body, ApiKey::Metadata.request_header_version(9))
        .unwrap();
    MetadataRequest::default().encode(&mut body, 9).unwrap();
    send_frame(&mut socket, &body).await;
    assert!(
        read_frame(&mut socket).await.is_none(),
        "answered before a login"
    );
}
