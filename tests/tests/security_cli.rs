//! brokerctl's and the client library's side of security against a real brokerd with
//! SCRAM-SHA-256 on: `users` add/list/passwd/delete, logins with the new password and
//! not the old, `whoami`, `acls` add/list/delete with `--json`, the one error a wrong
//! password and an unknown user share, the hint a client without credentials gets,
//! re-authentication after a restart, PLAIN (and SCRAM) over TLS, and the `console`
//! transcripts of docs/client.md (which need a secured broker, so `doc_commands`
//! leaves them out).

use std::path::Path;
use std::process::{Command, Stdio};

use client::{AuthFailure, Client, ClientConfig, ClientError, Credentials};
use integration_tests::{brokerctl_bin, brokerd_bin, Brokerd, Launch};
use serde_json::Value;

const ADMIN: &str = "admin";
/// The administrator's password, as docs/client.md's transcripts use it.
const ADMIN_PASSWORD: &str = "admin-secret";

/// A brokerd requiring SCRAM-SHA-256, with `admin` made by `--init-admin` and a
/// superuser (so that `acls delete --all` does not lock it out).
fn secured(dir: &Path) -> Brokerd {
    let config = dir.join("brokerd.toml");
    std::fs::write(
        &config,
        "[security]\nmechanisms = [\"SCRAM-SHA-256\"]\nsuperusers = [\"admin\"]\n\
         failure_delay_ms = 10\n",
    )
    .unwrap();
    Launch::new(brokerd_bin())
        .args([std::ffi::OsStr::new("--config"), config.as_os_str()])
        .init_admin(ADMIN, ADMIN_PASSWORD)
        .start()
        .unwrap()
}

/// What a brokerctl run left: whether it succeeded, its exit code, stdout, stderr.
struct Run {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs brokerctl against `broker`, logged in as `user` with `password` (through the
/// environment, as a script would) or anonymously, with `stdin`.
fn ctl(broker: &Brokerd, login: Option<(&str, &str)>, args: &[&str], stdin: &str) -> Run {
    let mut command = Command::new(brokerctl_bin());
    command
        .env_remove("BROKER_USER")
        .env_remove("BROKER_PASSWORD")
        .env_remove("BROKER_SASL_MECHANISM")
        .env("BROKER_ADDR", broker.addr())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((user, password)) = login {
        command
            .env("BROKER_USER", user)
            .env("BROKER_PASSWORD", password);
    }
    let mut child = command.spawn().unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    Run {
        ok: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// [`ctl`] as the administrator, which must succeed; its stdout.
fn admin(broker: &Brokerd, args: &[&str], stdin: &str) -> String {
    let run = ctl(broker, Some((ADMIN, ADMIN_PASSWORD)), args, stdin);
    assert!(run.ok, "brokerctl {args:?}: {}{}", run.stdout, run.stderr);
    run.stdout
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The bindings of a listing but the administrator's own (`--init-admin` grants it
/// everything).
fn others(listing: &str) -> Vec<Value> {
    let all = json(listing);
    let all = all.as_array().unwrap_or_else(|| panic!("{listing}"));
    all.iter()
        .filter(|b| b["principal"] != ADMIN)
        .cloned()
        .collect()
}

#[test]
fn users_round_trip_and_only_the_current_password_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path());
    assert_eq!(
        admin(&broker, &["users", "add", "alice"], "first-pw-4c1d\n"),
        "created user alice\n"
    );
    let users = json(&admin(&broker, &["users", "list", "--json"], ""));
    let alice = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice")
        .unwrap_or_else(|| panic!("{users}"));
    assert_eq!(alice["mechanism"], "SCRAM-SHA-256");
    assert_eq!(alice["iterations"], 4096);

    let whoami = ctl(
        &broker,
        Some(("alice", "first-pw-4c1d")),
        &["whoami", "--json"],
        "",
    );
    assert!(whoami.ok, "{}", whoami.stderr);
    assert_eq!(
        json(&whoami.stdout),
        json(r#"{"principal":"alice","authenticated_by":"SCRAM-SHA-256"}"#)
    );
    let table = ctl(&broker, Some(("alice", "first-pw-4c1d")), &["whoami"], "");
    assert_eq!(
        table.stdout,
        "principal         alice\nauthenticated_by  SCRAM-SHA-256\n"
    );

    assert_eq!(
        admin(&broker, &["users", "passwd", "alice"], "second-pw-9e2b\n"),
        "changed the password of user alice\n"
    );
    let old = ctl(&broker, Some(("alice", "first-pw-4c1d")), &["whoami"], "");
    assert!(!old.ok && old.code == Some(1), "{}", old.stdout);
    assert!(
        old.stderr
            .starts_with("brokerctl: error: authentication failed for user \"alice\""),
        "{}",
        old.stderr
    );
    assert!(!old.stderr.contains("first-pw"), "{}", old.stderr);
    let new = ctl(&broker, Some(("alice", "second-pw-9e2b")), &["whoami"], "");
    assert!(new.ok, "{}", new.stderr);

    // An empty password is refused, whoever asks.
    let empty = ctl(
        &broker,
        Some((ADMIN, ADMIN_PASSWORD)),
        &["users", "add", "bob"],
        "\n",
    );
    assert!(!empty.ok);
    assert!(
        empty.stderr.contains("empty password is refused"),
        "{}",
        empty.stderr
    );
    let users = json(&admin(&broker, &["users", "--json"], ""));
    assert!(!users.to_string().contains("\"bob\""), "{users}");

    // The data directory holds verifiers, never a password.
    for password in ["first-pw-4c1d", "second-pw-9e2b", ADMIN_PASSWORD] {
        assert_no_file_contains(broker.data_dir(), password.as_bytes());
    }

    assert_eq!(
        admin(&broker, &["users", "delete", "alice"], ""),
        "deleted user alice\n"
    );
    let gone = ctl(&broker, Some(("alice", "second-pw-9e2b")), &["whoami"], "");
    assert!(!gone.ok);
    assert!(
        gone.stderr.contains("authentication failed"),
        "{}",
        gone.stderr
    );
    let users = admin(&broker, &["users"], "");
    assert!(users.starts_with("NAME"), "{users}");
    assert!(!users.contains("alice"), "{users}");
}

fn assert_no_file_contains(dir: &Path, needle: &[u8]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_no_file_contains(&path, needle);
        } else if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds a password",
                path.display()
            );
        }
    }
}

#[test]
fn a_wrong_password_and_an_unknown_user_print_the_same_error() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path());
    admin(&broker, &["users", "add", "carol"], "carols-pw\n");
    let wrong = ctl(&broker, Some(("carol", "not-carols-pw")), &["topics"], "");
    let unknown = ctl(&broker, Some(("mallory", "not-carols-pw")), &["topics"], "");
    assert!(!wrong.ok && !unknown.ok);
    assert_eq!(wrong.code, unknown.code);
    assert!(wrong.stdout.is_empty() && unknown.stdout.is_empty());
    // The same line, but for the name the client itself gave.
    assert_eq!(
        wrong.stderr.replace("\"carol\"", "USER"),
        unknown.stderr.replace("\"mallory\"", "USER")
    );
    assert!(
        wrong.stderr.contains("wrong user name or password"),
        "{}",
        wrong.stderr
    );
}

#[test]
fn without_credentials_brokerctl_says_how_to_give_them() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path());
    let run = ctl(&broker, None, &["topics"], "");
    assert!(!run.ok && run.code == Some(1));
    assert!(
        run.stderr.contains("requires authentication"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("BROKER_USER"), "{}", run.stderr);
    // A user without a password is refused before connecting.
    let run = ctl(&broker, None, &["--user", "admin", "topics"], "");
    assert!(!run.ok);
    assert!(
        run.stderr.contains("no password for user"),
        "{}",
        run.stderr
    );
}

#[test]
fn acls_add_list_and_delete_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path());
    let added = json(&admin(
        &broker,
        &[
            "acls",
            "add",
            "--allow",
            "dave",
            "--operation",
            "read",
            "--operation",
            "describe",
            "--topic",
            "logs.",
            "--prefix",
            "--json",
        ],
        "",
    ));
    assert_eq!(added.as_array().unwrap().len(), 2, "{added}");
    admin(
        &broker,
        &[
            "acls",
            "add",
            "--deny",
            "*",
            "--operation",
            "alter",
            "--cluster",
        ],
        "",
    );
    let all = others(&admin(&broker, &["acls", "--json"], ""));
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.contains(&json(
        r#"{"principal":"*","permission":"deny","operation":"alter","resource":"cluster","pattern":"literal","name":"cluster"}"#
    )));
    let daves = json(&admin(
        &broker,
        &["acls", "list", "--allow", "dave", "--json"],
        "",
    ));
    assert_eq!(&daves, &added);
    let table = admin(&broker, &["acls", "list", "--operation", "alter"], "");
    assert_eq!(
        table,
        "PRINCIPAL  PERMISSION  OPERATION  RESOURCE  PATTERN  NAME\n\
         *          deny        alter      cluster   literal  cluster\n"
    );

    // A literal filter does not select the prefix bindings of the same name.
    let none = json(&admin(
        &broker,
        &["acls", "delete", "--topic", "logs.", "--json"],
        "",
    ));
    assert_eq!(none, json("[]"));
    let deleted = json(&admin(
        &broker,
        &[
            "acls",
            "delete",
            "--topic",
            "logs.",
            "--prefix",
            "--operation",
            "read",
            "--json",
        ],
        "",
    ));
    assert_eq!(deleted.as_array().unwrap().len(), 1, "{deleted}");
    assert_eq!(deleted[0]["operation"], "read");

    let refused = ctl(
        &broker,
        Some((ADMIN, ADMIN_PASSWORD)),
        &["acls", "delete"],
        "",
    );
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert_eq!(others(&admin(&broker, &["acls", "--json"], "")).len(), 2);
    let rest = others(&admin(&broker, &["acls", "delete", "--all", "--json"], ""));
    assert_eq!(rest.len(), 2, "{rest:?}");
    // Everything went, the administrator's bindings too (it is a superuser here).
    assert_eq!(json(&admin(&broker, &["acls", "--json"], "")), json("[]"));
}

#[tokio::test]
async fn the_library_authenticates_and_does_so_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = secured(dir.path());
    let config = ClientConfig::default()
        .reconnect_max_attempts(50)
        .reconnect_backoff(
            std::time::Duration::from_millis(20),
            std::time::Duration::from_millis(200),
        );
    let admin = Client::connect_with(
        broker.addr(),
        config
            .clone()
            .credentials(Credentials::scram_sha_256(ADMIN, ADMIN_PASSWORD)),
    )
    .await
    .unwrap();
    admin.create_user("erin", "erins-pw").await.unwrap();
    let erin = Client::connect_with(
        broker.addr(),
        config
            .clone()
            .credentials(Credentials::scram_sha_256("erin", "erins-pw")),
    )
    .await
    .unwrap();
    let me = erin.whoami().await.unwrap();
    assert_eq!(
        (me.principal.as_str(), me.authenticated_by.as_str()),
        ("erin", "SCRAM-SHA-256")
    );

    let wrong = Client::connect_with(
        broker.addr(),
        config
            .clone()
            .credentials(Credentials::scram_sha_256("erin", "not-erins-pw")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            &wrong,
            ClientError::Authentication {
                reason: AuthFailure::Refused,
                ..
            }
        ),
        "{wrong}"
    );
    let anonymous = Client::connect_with(broker.addr(), config.clone())
        .await
        .unwrap();
    let refused = anonymous.list_topics(false).await.unwrap_err();
    assert!(
        matches!(refused, ClientError::AuthenticationRequired { .. }),
        "{refused}"
    );

    // The user survives the restart, and the client logs in again by itself.
    broker.restart();
    let mut tries = 0;
    let me = loop {
        tries += 1;
        match erin.whoami().await {
            Ok(me) => break me,
            Err(e) if e.is_connection_error() && tries < 10 => continue,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(me.principal, "erin");
}

#[tokio::test]
async fn an_acl_added_with_brokerctl_applies_to_a_live_connection_at_its_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path());
    admin(
        &broker,
        &["topics", "create", "live", "--partitions", "1"],
        "",
    );
    admin(&broker, &["users", "add", "frank"], "franks-pw\n");
    let frank = Client::connect_with(
        broker.addr(),
        ClientConfig::default().credentials(Credentials::scram_sha_256("frank", "franks-pw")),
    )
    .await
    .unwrap();
    let refused = frank.describe_topic("live").await.unwrap_err();
    assert_eq!(
        refused.code(),
        Some(client::protocol::ErrorCode::NotAuthorized),
        "{refused}"
    );

    admin(
        &broker,
        &[
            "acls",
            "add",
            "--allow",
            "frank",
            "--operation",
            "describe",
            "--topic",
            "live",
        ],
        "",
    );
    // The same connection, its next request: no reconnect, no new login.
    let described = frank.describe_topic("live").await.unwrap();
    assert_eq!(described.name, "live");

    admin(
        &broker,
        &["acls", "delete", "--allow", "frank", "--topic", "live"],
        "",
    );
    let refused = frank.describe_topic("live").await.unwrap_err();
    assert_eq!(
        refused.code(),
        Some(client::protocol::ErrorCode::NotAuthorized),
        "{refused}"
    );
}

/// The fenced `console` blocks of docs/client.md, in order: each `$ ` command with
/// the lines it shows.
fn console_transcripts(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        match line.trim_start().strip_prefix("```") {
            Some(tag) if !inside => inside = tag.trim() == "console",
            Some(_) => inside = false,
            None if inside => match line.strip_prefix("$ ") {
                Some(command) => out.push((command.to_string(), Vec::new())),
                None => match out.last_mut() {
                    Some((_, shown)) => shown.push(line.to_string()),
                    None => panic!("a console block starts without a command: {line}"),
                },
            },
            None => {}
        }
    }
    out
}

#[test]
fn the_client_guide_security_transcripts_run_and_print_what_they_show() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = std::fs::read_to_string(root.join("docs/client.md")).unwrap();
    let transcripts = console_transcripts(&text);
    assert!(
        transcripts.len() >= 10,
        "only {} commands",
        transcripts.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path());
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(brokerctl_bin(), bin.join("brokerctl")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (i, (command, shown)) in transcripts.iter().enumerate() {
        if command == "echo $?" {
            continue;
        }
        // `echo $?` after a command shows its status; a shown error means 1.
        let echoed = transcripts
            .get(i + 1)
            .filter(|(next, _)| next == "echo $?")
            .map(|(_, status)| status[0].trim().parse::<i32>().unwrap());
        let shows_error = shown
            .first()
            .is_some_and(|l| l.starts_with("brokerctl: error:"));
        let status = echoed.unwrap_or(if shows_error { 1 } else { 0 });
        let output = Command::new("bash")
            .args(["-c", command])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("BROKER_ADDR", broker.addr())
            .env("BROKER_USER", ADMIN)
            .env("BROKER_PASSWORD", ADMIN_PASSWORD)
            .env_remove("BROKER_SASL_MECHANISM")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(status),
            "docs/client.md: `{command}`:\n{stdout}{stderr}"
        );
        // What it printed is what the document shows (the broker's address aside).
        let printed = if status == 0 { &stdout } else { &stderr };
        let shown = shown
            .iter()
            .map(|l| format!("{}\n", l.replace("127.0.0.1:7171", broker.addr())))
            .collect::<String>();
        assert_eq!(printed.as_ref(), shown, "docs/client.md: `{command}`");
    }
}

/// A CA and a server certificate for 127.0.0.1 under `dir`: (CA, certificate, key).
fn tls_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = server.signed_by(&key, &ca).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server-key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[test]
fn plain_goes_over_tls_and_scram_too() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(dir.path());
    let config = dir.path().join("brokerd.toml");
    std::fs::write(
        &config,
        format!(
            "[security]\nmechanisms = [\"PLAIN\", \"SCRAM-SHA-256\"]\nfailure_delay_ms = 10\n\
             [tls]\ncert = {cert:?}\nkey = {key:?}\n"
        ),
    )
    .unwrap();
    let broker = Launch::new(brokerd_bin())
        .args([std::ffi::OsStr::new("--config"), config.as_os_str()])
        .init_admin(ADMIN, ADMIN_PASSWORD)
        .start()
        .unwrap();
    let ca = ca.to_str().unwrap();
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let args = [
            "--tls-ca",
            ca,
            "--sasl-mechanism",
            mechanism,
            "whoami",
            "--json",
        ];
        let me = json(&admin(&broker, &args, ""));
        assert_eq!(me["principal"], ADMIN);
        assert_eq!(me["authenticated_by"], mechanism);
    }
    // A wrong PLAIN password is refused like a wrong SCRAM one.
    let wrong = ctl(
        &broker,
        Some((ADMIN, "not-the-password")),
        &["--tls-ca", ca, "--sasl-mechanism", "PLAIN", "whoami"],
        "",
    );
    assert!(!wrong.ok);
    assert!(
        wrong
            .stderr
            .contains("authentication failed for user \"admin\" (PLAIN)"),
        "{}",
        wrong.stderr
    );
}
