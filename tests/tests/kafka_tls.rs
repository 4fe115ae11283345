//! TLS on the Kafka listener against the real brokerd with `[tls]` and
//! authentication on, driven by kcat (librdkafka over OpenSSL): SASL PLAIN over
//! TLS (`SASL_SSL`) produces, a verified client certificate (`SSL`) is the
//! principal it names and is held to that name's ACLs (a refused produce appends
//! nothing), and a plaintext client is refused by the TLS handshake.

mod kafka_support;
mod tls_support;

use std::path::{Path, PathBuf};

use integration_tests::{brokerctl, brokerd_bin, Brokerd, Launch};
use kafka_support::{kcat, try_kcat};
use tls_support::pki::Pki;

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A brokerd with `[tls]` (client certificates from `pki`'s CA optional, the
/// principal their CN), SCRAM and PLAIN, `admin` initialised, and the Kafka
/// listener on.
fn secured(dir: &Path, pki: &Pki) -> Brokerd {
    let (cert, key, _) = pki.server("server");
    let config = dir.join("brokerd.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert = {cert:?}\nkey = {key:?}\nclient_ca = {:?}\nrequire_client_certificate = false\nprincipal_from = \"cn\"\n\n[security]\nmechanisms = [\"SCRAM-SHA-256\", \"PLAIN\"]\nfailure_delay_ms = 10\n",
            pki.ca_path
        ),
    )
    .unwrap();
    Launch::new(brokerd_bin())
        .args([std::ffi::OsStr::new("--config"), config.as_os_str()])
        .init_admin(ADMIN, ADMIN_PASSWORD)
        .with_kafka()
        .log_to(dir.join("brokerd.log"))
        .start()
        .unwrap()
}

/// brokerctl over TLS as the admin; panics unless it succeeds.
fn admin(broker: &Brokerd, ca: &Path, password_file: &Path, args: &[&str]) -> String {
    let mut full = vec![
        "--tls-ca",
        ca.to_str().unwrap(),
        "--user",
        ADMIN,
        "--password-file",
        password_file.to_str().unwrap(),
    ];
    full.extend_from_slice(args);
    let (ok, out, err) = brokerctl(broker.addr(), &full, "");
    assert!(ok, "brokerctl {args:?}: {out}{err}");
    out
}

/// kcat with `settings` (each one `-X key=value`) before `args`.
fn kcat_with(
    kcat: &PathBuf,
    broker: &Brokerd,
    settings: &[String],
    args: &[&str],
    stdin: &str,
) -> (bool, String, String) {
    let mut all = Vec::new();
    for setting in settings {
        all.push("-X");
        all.push(setting.as_str());
    }
    all.extend_from_slice(args);
    try_kcat(kcat, broker, &all, stdin)
}

/// The sum of `topic`'s partitions' end offsets, as brokerctl describes them.
fn end_offset(broker: &Brokerd, ca: &Path, password_file: &Path, topic: &str) -> u64 {
    let described = admin(
        broker,
        ca,
        password_file,
        &["topics", "describe", topic, "--json"],
    );
    let described: serde_json::Value = serde_json::from_str(&described).unwrap();
    described["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["end_offset"].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn kcat_uses_sasl_plain_over_tls_and_client_certificates() {
    let Some(kcat) = kcat() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let broker = secured(dir.path(), &pki);
    let ca = pki.ca_path.clone();
    let password_file = dir.path().join("admin.password");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).unwrap();
    admin(
        &broker,
        &ca,
        &password_file,
        &["topics", "create", "ledger", "--partitions", "1"],
    );
    // The certificate's name gets read access, nothing more.
    admin(
        &broker,
        &ca,
        &password_file,
        &[
            "acls",
            "add",
            "--allow",
            "reader",
            "--operation",
            "read",
            "--operation",
            "describe",
            "--topic",
            "ledger",
        ],
    );
    let trust = format!("ssl.ca.location={}", ca.display());

    // SASL PLAIN, over TLS only: the admin produces with a key and a header.
    let plain = |password: &str| {
        vec![
            "security.protocol=SASL_SSL".to_string(),
            trust.clone(),
            "sasl.mechanisms=PLAIN".to_string(),
            format!("sasl.username={ADMIN}"),
            format!("sasl.password={password}"),
        ]
    };
    let (ok, out, err) = kcat_with(
        &kcat,
        &broker,
        &plain(ADMIN_PASSWORD),
        &["-P", "-t", "ledger", "-K:", "-H", "origin=tls"],
        "k1:hello\n",
    );
    assert!(ok, "{out}{err}");
    assert_eq!(end_offset(&broker, &ca, &password_file, "ledger"), 1);

    // A wrong password over TLS is refused.
    let (ok, out, err) = kcat_with(
        &kcat,
        &broker,
        &plain("not the password"),
        &["-L", "-m", "5"],
        "",
    );
    assert!(!ok, "{out}{err}");
    assert!(err.contains("uthentication"), "{err}");

    // A verified client certificate is the principal its CN names, with no SASL.
    let (reader_cert, reader_key) = pki.client("reader", "reader", false);
    let certificate = vec![
        "security.protocol=SSL".to_string(),
        trust.clone(),
        format!("ssl.certificate.location={}", reader_cert.display()),
        format!("ssl.key.location={}", reader_key.display()),
    ];
    let (ok, out, err) = kcat_with(
        &kcat,
        &broker,
        &certificate,
        &["-C", "-t", "ledger", "-o", "0", "-e", "-f", "%k=%s %h\\n"],
        "",
    );
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "k1=hello origin=tls");

    // ... held to that name's ACLs: its produce is refused and appends nothing.
    let (ok, out, err) = kcat_with(
        &kcat,
        &broker,
        &certificate,
        &["-P", "-t", "ledger"],
        "nope\n",
    );
    assert!(!ok || err.contains("uthoriz"), "{out}{err}");
    assert_eq!(end_offset(&broker, &ca, &password_file, "ledger"), 1);

    // A plaintext client is refused by the handshake: no metadata, no login.
    let (ok, out, err) = kcat_with(
        &kcat,
        &broker,
        &[
            "security.protocol=SASL_PLAINTEXT".to_string(),
            "sasl.mechanisms=SCRAM-SHA-256".to_string(),
            format!("sasl.username={ADMIN}"),
            format!("sasl.password={ADMIN_PASSWORD}"),
        ],
        &["-L", "-m", "5"],
        "",
    );
    assert!(!ok, "a plaintext client got an answer: {out}{err}");
}
