//! TLS on brokerd's native listener, black-box: certificates are made here with
//! rcgen, into the test's temporary directory; brokerd reads them from `[tls]`.
//! A TLS client of the test's own (tokio-rustls) checks what the client library
//! cannot be made to do: offer only TLS 1.2, read the server's certificate. Both
//! live in [`tls_support`], shared with `security_tls.rs`.
//!
//! Every wait is a deadline for something to happen; the handshake timeout is set
//! far above them, so that a connection closed within a deadline was closed by the
//! check under test, not by the timeout.

mod tls_support;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use client::{Client, ClientConfig, ClientError, ProducerConfig, Record, TlsConfig};
use integration_tests::raw::Raw;
use integration_tests::{brokerctl, brokerd_bin, Brokerd, Launch, LaunchError};
use protocol::{Message, Request};
use rcgen::KeyPair;
use tls_support::client::{client_config, hello_bytes, tls_hello, TlsRaw, BOTH_VERSIONS};
use tls_support::pki::{Leaf, Pki};
use tls_support::DEADLINE;

/// brokerd's handshake timeout in these tests: far above [`DEADLINE`].
const HANDSHAKE_TIMEOUT_MS: u64 = 120_000;

/// A launch of brokerd with `[tls]` set to `tls` (TOML lines), its log in
/// `dir/brokerd.log` at debug level for the connection module.
fn launch(dir: &Path, tls: &str) -> Launch {
    launch_with_limits(
        dir,
        &format!("handshake_timeout_ms = {HANDSHAKE_TIMEOUT_MS}"),
        tls,
    )
}

/// [`launch`] with `limits` (TOML lines) as the `[limits]` table.
fn launch_with_limits(dir: &Path, limits: &str, tls: &str) -> Launch {
    let config = dir.join("brokerd.toml");
    let text = format!("[limits]\n{limits}\n[tls]\n{tls}\n");
    std::fs::write(&config, text).unwrap();
    Launch::new(brokerd_bin())
        .args(["--config".into(), config.into_os_string()])
        .env("RUST_LOG", "info,server::connection=debug")
        .log_to(dir.join("brokerd.log"))
}

/// `[tls]` lines for a server certificate and key.
fn server_lines(cert: &Path, key: &Path) -> String {
    format!("cert = {:?}\nkey = {:?}\n", cert, key)
}

/// Reads `stream` to its end; `true` if the peer closed it within [`DEADLINE`] after
/// sending at most `at_most` bytes.
fn closed_after_at_most(stream: &mut std::net::TcpStream, at_most: usize) -> bool {
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < DEADLINE {
        match stream.read(&mut buf) {
            Ok(0) => return got.len() <= at_most,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return got.len() <= at_most
            }
            Err(_) => return false,
        }
    }
    false
}

/// Polls brokerd's log until a line has every one of `words`.
fn log_has_line(dir: &Path, words: &[&str]) -> bool {
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        let log = std::fs::read_to_string(dir.join("brokerd.log")).unwrap_or_default();
        if log
            .lines()
            .any(|line| words.iter().all(|w| line.contains(w)))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[tokio::test]
async fn plaintext_sent_to_the_tls_port_is_closed_and_brokerd_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let (cert, key, _) = pki.server("server");
    let broker = launch(dir.path(), &server_lines(&cert, &key))
        .start()
        .unwrap();

    for _ in 0..3 {
        let mut plain = std::net::TcpStream::connect(broker.addr()).unwrap();
        plain.write_all(&hello_bytes()).unwrap();
        // At most a TLS alert comes back (7 bytes), then the close.
        assert!(
            closed_after_at_most(&mut plain, 7),
            "a plaintext handshake on the TLS port was not closed promptly"
        );
    }
    // A length prefix as large as it gets, then silence: closed too, at once.
    let mut bogus = std::net::TcpStream::connect(broker.addr()).unwrap();
    bogus.write_all(&[0xff; 16]).unwrap();
    assert!(closed_after_at_most(&mut bogus, 7));

    let config = client_config(&pki.ca_path, None, BOTH_VERSIONS);
    tls_hello(broker.addr(), config).await.unwrap();
}

#[tokio::test]
async fn a_tls_client_hello_on_the_plaintext_port_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let config = dir.path().join("brokerd.toml");
    std::fs::write(
        &config,
        format!("[limits]\nhandshake_timeout_ms = {HANDSHAKE_TIMEOUT_MS}\n"),
    )
    .unwrap();
    let broker = Brokerd::start_with(&["--config", config.to_str().unwrap()]);
    // The ClientHello's record header reads as a length prefix of about 350 MB: the
    // pre-handshake frame cap refuses it before anything is allocated for it.
    let started = Instant::now();
    let error = tls_hello(
        broker.addr(),
        client_config(&pki.ca_path, None, BOTH_VERSIONS),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < DEADLINE, "{error}");
    assert!(error.starts_with("TLS handshake"), "{error}");
    // brokerd still serves plaintext.
    Raw::handshaken(broker.addr());
}

#[tokio::test]
async fn mutual_tls_refuses_missing_untrusted_and_expired_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let stranger = Pki::new(dir.path(), "other-ca");
    let (cert, key, _) = pki.server("server");
    let (good, good_key) = pki.client("alice", "alice", false);
    let (expired, expired_key) = pki.client("old", "mallory", true);
    let (foreign, foreign_key) = stranger.client("foreign", "eve", false);
    let lines = format!(
        "{}client_ca = {:?}\n",
        server_lines(&cert, &key),
        pki.ca_path
    );
    let broker = launch(dir.path(), &lines).start().unwrap();
    let addr = broker.addr();

    let refused = [
        ("no certificate", None),
        ("an untrusted CA's", Some((&foreign, &foreign_key))),
        ("an expired one", Some((&expired, &expired_key))),
    ];
    for (what, identity) in refused {
        let identity = identity.map(|(c, k)| (c.as_path(), k.as_path()));
        let config = client_config(&pki.ca_path, identity, BOTH_VERSIONS);
        let answer = tls_hello(addr, config).await;
        assert!(answer.is_err(), "{what} was accepted");
    }

    let config = client_config(&pki.ca_path, Some((&good, &good_key)), BOTH_VERSIONS);
    tls_hello(addr, config).await.unwrap();
    assert!(
        log_has_line(dir.path(), &["connection opened", "tls=true", "alice"]),
        "the certificate's principal did not reach the connection"
    );
    let log = std::fs::read_to_string(dir.path().join("brokerd.log")).unwrap();
    // As words: "eve" is also in "every" and "never".
    let named = |name: &str| {
        log.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word == name)
    };
    assert!(!named("mallory") && !named("eve"), "{log}");
}

#[tokio::test]
async fn tls_1_2_is_refused_unless_min_version_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let (cert, key, _) = pki.server("server");
    let only_12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    let strict = launch(dir.path(), &server_lines(&cert, &key))
        .start()
        .unwrap();
    let error = tls_hello(strict.addr(), client_config(&pki.ca_path, None, only_12))
        .await
        .unwrap_err();
    assert!(error.starts_with("TLS handshake"), "{error}");
    drop(strict);

    let lines = format!("{}min_version = \"1.2\"\n", server_lines(&cert, &key));
    let lenient = launch(dir.path(), &lines).start().unwrap();
    tls_hello(lenient.addr(), client_config(&pki.ca_path, None, only_12))
        .await
        .unwrap();
}

#[test]
fn bad_tls_files_stop_brokerd_at_startup_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let (cert, key, _) = pki.server("server");
    let secret_line = std::fs::read_to_string(&key)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let missing = dir.path().join("missing-key.pem");
    let cases = [
        (server_lines(&cert, &missing), "tls.key", "missing-key.pem"),
        // The key where the certificate should be.
        (server_lines(&key, &key), "tls.cert", "holds no certificate"),
        (
            format!("{}min_version = \"1.1\"\n", server_lines(&cert, &key)),
            "min_version",
            "1.1",
        ),
    ];
    for (lines, setting, says) in cases {
        let log = dir.path().join("brokerd.log");
        let _ = std::fs::remove_file(&log);
        let error = launch(dir.path(), &lines).start().unwrap_err();
        assert!(matches!(error, LaunchError::Exited { .. }), "{error}");
        let log = std::fs::read_to_string(&log).unwrap();
        assert!(log.contains(setting) && log.contains(says), "{log}");
        assert!(!log.contains(&secret_line), "key material in {log}");
    }
}

/// A client configuration that tries once: a refused connection is not waited for.
fn one_attempt() -> ClientConfig {
    ClientConfig::default()
        .reconnect_max_attempts(1)
        .connect_timeout(DEADLINE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokerctl_and_the_client_produce_and_consume_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let (cert, key, _) = pki.server("server");
    let (alice, alice_key) = pki.client("alice", "alice", false);
    // Mutual TLS, optional: brokerctl comes without a certificate, the client with one.
    // Asking for client certificates turns authorization on; this test is about the
    // transport, so both principals may do everything.
    let lines = format!(
        "{}client_ca = {:?}\nrequire_client_certificate = false\n\n[security]\nallow_anonymous = true\nsuperusers = [\"ANONYMOUS\", \"alice\"]\n",
        server_lines(&cert, &key),
        pki.ca_path
    );
    let broker = launch(dir.path(), &lines).start().unwrap();
    let addr = broker.addr().to_string();
    let ca = pki.ca_path.to_str().unwrap();
    let tls = |args: &[&str]| {
        let mut all = vec!["--tls-ca", ca];
        all.extend_from_slice(args);
        all.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, stdin: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        brokerctl(&addr, &args, stdin)
    };
    let (ok, _, err) = run(
        tls(&["topics", "create", "secure", "--partitions", "1"]),
        "",
    );
    assert!(ok, "{err}");
    let (ok, _, err) = run(tls(&["produce", "secure"]), "one\ntwo\n");
    assert!(ok, "{err}");

    let config = one_attempt().tls(
        TlsConfig::new(&pki.ca_path)
            .client_certificate(&alice, &alice_key)
            .server_name("localhost"),
    );
    let client = Client::connect_with(addr.clone(), config).await.unwrap();
    let producer = client
        .producer("secure", ProducerConfig::default())
        .await
        .unwrap();
    producer
        .send(Record::new("three").with_partition(0))
        .await
        .unwrap()
        .await
        .unwrap();
    producer.close().await.unwrap();
    let mut reader = client.partition_reader("secure", &[(0, 0)]);
    let mut values = Vec::new();
    for _ in 0..3 {
        let record = reader.next().await.unwrap();
        values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
    }
    assert_eq!(values, ["one", "two", "three"]);
    assert!(log_has_line(dir.path(), &["connection opened", "alice"]));

    let (ok, out, err) = run(
        tls(&["consume", "secure", "--from", "earliest", "--count", "3"]),
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["one", "two", "three"]);

    // Without --tls-ca brokerctl is told the broker speaks TLS.
    let (ok, _, err) = run(vec!["topics".to_string()], "");
    assert!(!ok);
    assert!(
        err.contains("speaks TLS") && err.contains("--tls-ca"),
        "{err}"
    );
    // And with TLS against a plaintext broker, that it does not.
    let plain = Brokerd::start();
    let (ok, _, err) = brokerctl(plain.addr(), &["--tls-ca", ca, "topics"], "");
    assert!(!ok);
    assert!(err.contains("did not answer in TLS"), "{err}");
}

#[tokio::test]
async fn the_client_refuses_untrusted_expired_and_misnamed_server_certificates_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let stranger = Pki::new(dir.path(), "other-ca");
    let (cert, key, _) = pki.server("server");
    let (old, old_key, _) = pki.issue(
        "expired-server",
        Leaf {
            common_name: "brokerd",
            sans: &["localhost", "127.0.0.1"],
            expired: true,
        },
    );
    let good = launch(dir.path(), &server_lines(&cert, &key))
        .start()
        .unwrap();
    let expired = {
        let sub = dir.path().join("expired");
        std::fs::create_dir(&sub).unwrap();
        launch(&sub, &server_lines(&old, &old_key)).start().unwrap()
    };
    let cases = [
        (
            good.addr(),
            TlsConfig::new(&stranger.ca_path),
            "not trusted",
        ),
        (expired.addr(), TlsConfig::new(&pki.ca_path), "expired"),
        (
            good.addr(),
            TlsConfig::new(&pki.ca_path).server_name("elsewhere.example"),
            "not valid for \"elsewhere.example\"",
        ),
    ];
    for (addr, tls, says) in cases {
        // Many attempts allowed: a fatal error must not use them.
        let config = ClientConfig::default()
            .reconnect_max_attempts(50)
            .reconnect_backoff(Duration::from_secs(1), Duration::from_secs(1))
            .tls(tls);
        let started = Instant::now();
        let error = Client::connect_with(addr.to_string(), config)
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::Tls { .. }), "{error}");
        assert!(error.to_string().contains(says), "{says}: {error}");
        assert!(started.elapsed() < DEADLINE, "retried: {error}");
    }

    let mutual = {
        let sub = dir.path().join("mutual");
        std::fs::create_dir(&sub).unwrap();
        let lines = format!(
            "{}client_ca = {:?}\n",
            server_lines(&cert, &key),
            pki.ca_path
        );
        launch(&sub, &lines).start().unwrap()
    };
    let config = one_attempt().tls(TlsConfig::new(&pki.ca_path));
    let error = Client::connect_with(mutual.addr().to_string(), config)
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Tls { .. }), "{error}");
    assert!(error.to_string().contains("--tls-cert"), "{error}");

    let missing = dir.path().join("nope.pem");
    let config = one_attempt().tls(TlsConfig::new(&missing));
    let error = Client::connect_with(good.addr().to_string(), config)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::TlsFile { setting: "ca", .. }),
        "{error}"
    );
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_open_connections_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let (cert, key, first) = pki.server("server");
    let broker = launch(dir.path(), &server_lines(&cert, &key))
        .start()
        .unwrap();
    let config = client_config(&pki.ca_path, None, BOTH_VERSIONS);
    let mut open = TlsRaw::connect(broker.addr(), config.clone())
        .await
        .unwrap();
    assert_eq!(open.chain()[0], first);

    // A key that does not match: the reload fails, the old certificate stays.
    let other = KeyPair::generate().unwrap();
    std::fs::write(&key, other.serialize_pem()).unwrap();
    broker.send_hangup().unwrap();
    assert!(log_has_line(dir.path(), &["reload", "tls.key"]));
    let chain = tls_hello(broker.addr(), config.clone()).await.unwrap();
    assert_eq!(chain[0], first, "a failed reload changed the certificate");

    // A new certificate and key, written the way an operator would: each replaced
    // whole (renamed into place).
    let (new_cert, new_key, second) = pki.server("renewed");
    std::fs::rename(&new_key, &key).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();
    assert_ne!(first, second);
    broker.send_hangup().unwrap();
    let started = Instant::now();
    loop {
        let chain = tls_hello(broker.addr(), config.clone()).await.unwrap();
        if chain[0] == second {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The connection opened before both reloads still works, on its old certificate.
    let answer = open
        .call(Request::ServerStats(protocol::ops::Empty))
        .await
        .unwrap();
    assert!(matches!(answer, Message::Response { .. }), "{answer:?}");
    assert_eq!(open.chain()[0], first);
}

#[tokio::test]
async fn the_tls_handshake_counts_against_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let (cert, key, _) = pki.server("server");
    let broker = launch_with_limits(
        dir.path(),
        "handshake_timeout_ms = 300",
        &server_lines(&cert, &key),
    )
    .start()
    .unwrap();
    // Silent, and a ClientHello's first bytes then nothing: both closed in time.
    for sent in [&[][..], &[0x16, 0x03, 0x01, 0x01]] {
        let mut stalled = std::net::TcpStream::connect(broker.addr()).unwrap();
        stalled.write_all(sent).unwrap();
        assert!(closed_after_at_most(&mut stalled, 7), "{sent:?}");
    }
    let config = client_config(&pki.ca_path, None, BOTH_VERSIONS);
    tls_hello(broker.addr(), config).await.unwrap();
}

#[tokio::test]
async fn over_the_connection_limit_a_tls_client_is_told_so_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let (cert, key, _) = pki.server("server");
    let limits = format!("handshake_timeout_ms = {HANDSHAKE_TIMEOUT_MS}\nmax_connections = 1");
    let broker = launch_with_limits(dir.path(), &limits, &server_lines(&cert, &key))
        .start()
        .unwrap();
    let config = client_config(&pki.ca_path, None, BOTH_VERSIONS);
    let _held = TlsRaw::connect(broker.addr(), config.clone())
        .await
        .unwrap();
    let refused = TlsRaw::connect(broker.addr(), config).await;
    let error = refused.err().expect("a second connection over the limit");
    assert!(error.contains("TooManyConnections"), "{error}");
}
