//! Authentication and authorization on the HTTP gateway against the real brokerd:
//! HTTPS with the native listener's certificate, HTTP Basic checked against the
//! users' SCRAM verifiers, client certificates as principals, the same ACLs as the
//! native port; every failure the same 401; Basic refused on plaintext.

mod http_support;
mod tls_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use client::{Client, ClientConfig, Credentials, TlsConfig};
use http_support::{code, end_offsets, json, HTTP_TIMEOUT};
use integration_tests::{brokerd_bin, Brokerd, Launch};
use protocol::ops::security::{AclBinding, Operation, PatternType, Permission, ResourceType};
use serde_json::{json, Value};
use tls_support::client::{client_config, BOTH_VERSIONS};
use tls_support::pki::Pki;

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// brokerd with SCRAM, `extra` config lines, `admin` initialised; its log in `dir`.
fn secured(dir: &Path, extra: &str) -> Brokerd {
    let path = dir.join("brokerd.toml");
    let config =
        format!("[security]\nmechanisms = [\"SCRAM-SHA-256\"]\nfailure_delay_ms = 10\n\n{extra}");
    std::fs::write(&path, config).unwrap();
    Launch::new(brokerd_bin())
        .args(["--config".into(), path.into_os_string()])
        .log_to(dir.join("brokerd.log"))
        .init_admin(ADMIN, ADMIN_PASSWORD)
        .start()
        .unwrap()
}

/// A CA, brokerd's certificate, and `[tls]` asking (not requiring) client
/// certificates from the CA.
struct Pkix {
    pki: Pki,
    tls_lines: String,
}

impl Pkix {
    fn new(dir: &Path) -> Pkix {
        let pki = Pki::new(dir, "ca");
        let (cert, key, _) = pki.server("server");
        let tls_lines = format!(
            "[tls]\ncert = {cert:?}\nkey = {key:?}\nclient_ca = {:?}\nrequire_client_certificate = false\n",
            pki.ca_path
        );
        Pkix { pki, tls_lines }
    }

    /// An HTTPS client trusting the CA (ALPN h2 and http/1.1), presenting `identity`.
    fn https(&self, identity: Option<&(PathBuf, PathBuf)>) -> reqwest::Client {
        let identity = identity.map(|(c, k)| (c.as_path(), k.as_path()));
        let mut config =
            Arc::unwrap_or_clone(client_config(&self.pki.ca_path, identity, BOTH_VERSIONS));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .use_preconfigured_tls(config)
            .build()
            .unwrap()
    }

    /// The admin, natively, over TLS with SCRAM.
    async fn admin(&self, broker: &Brokerd) -> Client {
        let config = ClientConfig::default()
            .tls(TlsConfig::new(&self.pki.ca_path))
            .credentials(Credentials::scram_sha_256(ADMIN, ADMIN_PASSWORD));
        Client::connect_with(broker.addr(), config).await.unwrap()
    }
}

fn allow(principal: &str, topic: &str, operation: Operation) -> AclBinding {
    AclBinding {
        principal: principal.into(),
        resource: ResourceType::Topic,
        pattern: PatternType::Literal,
        name: topic.into(),
        operation,
        permission: Permission::Allow,
    }
}

fn https_url(broker: &Brokerd, path: &str) -> String {
    format!("https://{}{path}", broker.http_addr())
}

#[tokio::test]
async fn basic_over_https_uses_the_users_and_the_acls_of_the_native_port() {
    let dir = tempfile::tempdir().unwrap();
    let pkix = Pkix::new(dir.path());
    let broker = secured(dir.path(), &pkix.tls_lines);
    let admin = pkix.admin(&broker).await;
    admin.create_topic("orders", 1, &[]).await.unwrap();
    admin.create_user("reader", "reader-pw").await.unwrap();
    admin
        .create_acls(vec![
            allow("reader", "orders", Operation::Read),
            allow("reader", "orders", Operation::Describe),
        ])
        .await
        .unwrap();
    let https = pkix.https(None);
    let produce = https_url(&broker, "/v1/topics/orders/records");
    let one = json!({"records": [{"value": "hello"}]});

    // The administrator logs in with Basic and produces, over HTTP/2 by ALPN.
    let response = https
        .post(&produce)
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .json(&one)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    // Again: the remembered login.
    let (status, _) = json(
        https
            .post(&produce)
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .json(&one)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let before = end_offsets(&admin, "orders").await;
    assert_eq!(before, vec![2]);

    // The reader may read but not write: 403, nothing stored.
    let (status, body) = json(
        https
            .post(&produce)
            .basic_auth("reader", Some("reader-pw"))
            .json(&one)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(code(&body), "not_authorized");
    assert_eq!(
        end_offsets(&admin, "orders").await,
        before,
        "a refused produce stores nothing"
    );
    let (status, fetched) = json(
        https
            .get(https_url(
                &broker,
                "/v1/topics/orders/partitions/0/records?offset=0",
            ))
            .basic_auth("reader", Some("reader-pw"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{fetched}");
    assert_eq!(fetched["records"][0]["value"], "hello");
    // Listings are filtered by describe, as natively.
    admin.create_topic("secret", 1, &[]).await.unwrap();
    let (_, list) = json(
        https
            .get(https_url(&broker, "/v1/topics"))
            .basic_auth("reader", Some("reader-pw"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let names: Vec<&Value> = list["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["name"])
        .collect();
    assert_eq!(names, [&json!("orders")], "{list}");

    // No credentials at all: 401, asking for Basic.
    let response = https
        .get(https_url(&broker, "/v1/topics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"brokerd\", charset=\"UTF-8\""
    );
    let (status, body) = json(response).await;
    assert_eq!(
        (status, code(&body)),
        (401, "authentication_required"),
        "{body}"
    );

    // The same from a script (the web console): the 401 without the challenge, so a
    // browser shows the page's own login form rather than its password dialog.
    let response = https
        .get(https_url(&broker, "/v1/topics"))
        .header("x-requested-with", "XMLHttpRequest")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("www-authenticate").is_none());
    let (status, body) = json(response).await;
    assert_eq!(
        (status, code(&body)),
        (401, "authentication_required"),
        "{body}"
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    let dir = tempfile::tempdir().unwrap();
    let pkix = Pkix::new(dir.path());
    let broker = secured(dir.path(), &pkix.tls_lines);
    let admin = pkix.admin(&broker).await;
    admin.create_topic("t", 1, &[]).await.unwrap();
    let https = pkix.https(None);
    let mut answers = Vec::new();
    for (user, password) in [(ADMIN, "wrong"), ("nobody", "wrong"), (ADMIN, "")] {
        let response = https
            .post(https_url(&broker, "/v1/topics/t/records"))
            .basic_auth(user, Some(password))
            .json(&json!({"records": [{"value": 1}]}))
            .send()
            .await
            .unwrap();
        let challenge = response.headers().get("www-authenticate").cloned();
        let (status, body) = json(response).await;
        answers.push((status, body, challenge));
    }
    let garbage = https
        .get(https_url(&broker, "/v1/topics"))
        .header("authorization", "Basic !!!")
        .send()
        .await
        .unwrap();
    let challenge = garbage.headers().get("www-authenticate").cloned();
    let (status, body) = json(garbage).await;
    answers.push((status, body, challenge));
    for answer in &answers {
        assert_eq!(answer, &answers[0], "every failure looks the same");
    }
    assert_eq!(answers[0].0, 401);
    assert_eq!(
        answers[0].1,
        json!({"error": {"code": "authentication_failed", "message": "authentication failed"}})
    );
    assert!(answers[0].2.is_some());
    assert_eq!(end_offsets(&admin, "t").await, vec![0]);
}

#[tokio::test]
async fn a_changed_password_is_refused_at_once_and_a_deleted_user_too() {
    let dir = tempfile::tempdir().unwrap();
    let pkix = Pkix::new(dir.path());
    let broker = secured(dir.path(), &pkix.tls_lines);
    let admin = pkix.admin(&broker).await;
    admin.create_user("app", "old-pw").await.unwrap();
    let https = pkix.https(None);
    let topics = https_url(&broker, "/v1/topics");
    let status = |response: reqwest::Response| response.status().as_u16();
    assert_eq!(
        status(
            https
                .get(&topics)
                .basic_auth("app", Some("old-pw"))
                .send()
                .await
                .unwrap()
        ),
        200
    );
    admin.alter_user("app", "new-pw").await.unwrap();
    assert_eq!(
        status(
            https
                .get(&topics)
                .basic_auth("app", Some("old-pw"))
                .send()
                .await
                .unwrap()
        ),
        401,
        "the remembered login is not trusted"
    );
    assert_eq!(
        status(
            https
                .get(&topics)
                .basic_auth("app", Some("new-pw"))
                .send()
                .await
                .unwrap()
        ),
        200
    );
    admin.delete_user("app").await.unwrap();
    assert_eq!(
        status(
            https
                .get(&topics)
                .basic_auth("app", Some("new-pw"))
                .send()
                .await
                .unwrap()
        ),
        401
    );
}

#[tokio::test]
async fn a_client_certificate_is_the_principal() {
    let dir = tempfile::tempdir().unwrap();
    let pkix = Pkix::new(dir.path());
    let broker = secured(dir.path(), &pkix.tls_lines);
    let admin = pkix.admin(&broker).await;
    admin.create_topic("jobs", 1, &[]).await.unwrap();
    admin
        .create_acls(vec![allow("svc-a", "jobs", Operation::Write)])
        .await
        .unwrap();
    let produce = https_url(&broker, "/v1/topics/jobs/records");
    let one = json!({"records": [{"value": "job"}]});
    let svc_a = pkix.pki.client("svc-a", "svc-a", false);
    let (status, body) = json(
        pkix.https(Some(&svc_a))
            .post(&produce)
            .json(&one)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let svc_b = pkix.pki.client("svc-b", "svc-b", false);
    let (status, body) = json(
        pkix.https(Some(&svc_b))
            .post(&produce)
            .json(&one)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "not_authorized"), "{body}");
    assert_eq!(end_offsets(&admin, "jobs").await, vec![1]);
}

#[tokio::test]
async fn basic_on_plaintext_is_refused_without_being_checked() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path(), "");
    let http = http_support::http1();
    let response = http
        .post(format!("http://{}/v1/topics", broker.http_addr()))
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .json(&json!({"name": "plain"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(
        (status, code(&body)),
        (401, "authentication_failed"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only over TLS"),
        "{body}"
    );
    let admin = Client::connect_with(
        broker.addr(),
        ClientConfig::default().credentials(Credentials::scram_sha_256(ADMIN, ADMIN_PASSWORD)),
    )
    .await
    .unwrap();
    assert!(
        admin.describe_topic("plain").await.is_err(),
        "nothing was created"
    );
}

/// The leaf certificate `addr` serves in a TLS handshake.
async fn served_certificate(addr: &str, pki: &Pki) -> rustls::pki_types::CertificateDer<'static> {
    let connector =
        tokio_rustls::TlsConnector::from(client_config(&pki.ca_path, None, BOTH_VERSIONS));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[tokio::test]
async fn sighup_reloads_the_https_certificate_with_the_native_one() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let (cert, key, first) = pki.server("server");
    let path = dir.path().join("brokerd.toml");
    std::fs::write(&path, format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n")).unwrap();
    let broker = Launch::new(brokerd_bin())
        .args(["--config".into(), path.into_os_string()])
        .start()
        .unwrap();
    assert_eq!(served_certificate(broker.http_addr(), &pki).await, first);

    let (new_cert, new_key, second) = pki.server("renewed");
    std::fs::rename(&new_key, &key).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();
    broker.send_hangup().unwrap();
    let deadline = std::time::Instant::now() + tls_support::DEADLINE;
    while served_certificate(broker.http_addr(), &pki).await != second {
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was never served over HTTPS"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        served_certificate(broker.addr(), &pki).await,
        second,
        "one reload, both listeners"
    );
    let https = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .use_preconfigured_tls(Arc::unwrap_or_clone(client_config(
            &pki.ca_path,
            None,
            BOTH_VERSIONS,
        )))
        .build()
        .unwrap();
    let (status, body) = json(
        https
            .get(https_url(&broker, "/healthz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")));
    // Plaintext HTTP on the HTTPS port is not served.
    let plain = http_support::http1()
        .get(format!("http://{}/healthz", broker.http_addr()))
        .send()
        .await;
    assert!(
        plain.map_or(true, |r| !r.status().is_success()),
        "plaintext served on the HTTPS port"
    );
}

#[tokio::test]
async fn without_read_a_principal_can_neither_receive_nor_read_as_a_group_and_no_group_appears() {
    let dir = tempfile::tempdir().unwrap();
    let pkix = Pkix::new(dir.path());
    let broker = secured(dir.path(), &pkix.tls_lines);
    let admin = pkix.admin(&broker).await;
    admin.create_topic("jobs", 1, &[]).await.unwrap();
    admin.create_user("outsider", "outsider-pw").await.unwrap();
    let https = pkix.https(None);
    let (status, body) = json(
        https
            .post(https_url(&broker, "/v1/topics/jobs/records"))
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .json(&json!({"records": [{"value": "job-1"}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = json(
        https
            .post(https_url(&broker, "/v1/topics/jobs/queues/workers/receive"))
            .basic_auth("outsider", Some("outsider-pw"))
            .json(&json!({"max_messages": 10}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "not_authorized"), "{body}");
    let (status, body) = json(
        https
            .get(https_url(&broker, "/v1/topics/jobs/groups/readers/records"))
            .basic_auth("outsider", Some("outsider-pw"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "not_authorized"), "{body}");
    // Refused requests changed nothing: neither group exists, and the message is still
    // there for a member that may read it.
    for group in ["workers", "readers"] {
        let described = admin.describe_group(group).await;
        assert!(described.is_err(), "{group} was created: {described:?}");
    }
    let (status, body) = json(
        https
            .post(https_url(&broker, "/v1/topics/jobs/queues/workers/receive"))
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .json(&json!({"max_messages": 10, "max_wait_ms": 2000}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["record"]["value"], "job-1", "{body}");
}
