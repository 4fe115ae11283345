//! The web console in a real browser: starts brokerd, then runs
//! `tests/console/console.test.mjs` (Node's test runner, driving Debian's headless
//! Chromium through playwright-core) against it. Every test there saves a
//! screenshot under `target/console-screenshots/` (`FAILED-*.png` for a failing
//! one), and the overview's render time goes to
//! `target/console-screenshots/measured.json` (quoted in docs/benchmarks.md, never
//! asserted).
//!
//! `.ci/run` installs Chromium (apt) and playwright-core (`npm ci` in
//! `tests/console`); elsewhere, without them, the test says so and passes, except
//! under `CI`, where a missing piece fails.

mod tls_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use client::{Client, ClientConfig, Credentials, TlsConfig};
use integration_tests::{brokerctl_bin, brokerd_bin, Brokerd, Launch};
use protocol::ops::security::{AclBinding, Operation, PatternType, Permission, ResourceType};
use tls_support::pki::Pki;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The browser, the Node.js runtime and playwright-core, if all are there.
fn toolchain() -> Option<PathBuf> {
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let playwright = root()
        .join("tests/console/node_modules/playwright-core/package.json")
        .exists();
    let missing: Vec<&str> = [
        (!chromium.exists()).then_some("chromium (apt install chromium)"),
        (!node).then_some("node"),
        (!playwright).then_some("playwright-core (npm ci --prefix tests/console)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return Some(chromium);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the browser tests need {} under CI; .ci/run installs them",
        missing.join(", ")
    );
    eprintln!("SKIPPED: the browser tests need {}", missing.join(", "));
    None
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), |dir| root().join(dir));
    target.join("console-screenshots")
}

/// Runs one test file of `tests/console` with `env`; fails with its report.
fn run_suite(file: &str, chromium: &Path, shots: &Path, env: &[(&str, String)]) {
    let mut node = Command::new("node");
    node.current_dir(root().join("tests/console"))
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .arg(file)
        .env("CHROMIUM", chromium)
        .env("SCREENSHOT_DIR", shots)
        .env("RESULTS", shots.join(format!("{file}.measured.json")));
    for (key, value) in env {
        node.env(key, value);
    }
    let output = node.output().unwrap();
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "browser tests of {file} failed ({}); screenshots in {}",
        output.status,
        shots.display()
    );
    if let Ok(measured) = std::fs::read_to_string(shots.join(format!("{file}.measured.json"))) {
        println!("measured: {measured}");
    }
}

/// A clean directory for one suite's screenshots: old ones would pass for new ones.
fn fresh_screenshots(suite: &str) -> PathBuf {
    let shots = screenshots().join(suite);
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    shots
}

#[test]
fn the_console_works_in_a_real_browser() {
    let Some(chromium) = toolchain() else {
        return;
    };
    let broker = Brokerd::start();
    let shots = fresh_screenshots("console");
    run_suite(
        "console.test.mjs",
        &chromium,
        &shots,
        &[
            ("BROKERD_HTTP", format!("http://{}", broker.http_addr())),
            ("BROKERD_ADDR", broker.addr().to_string()),
            ("BROKERCTL", brokerctl_bin().display().to_string()),
        ],
    );
}

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "correct horse battery staple";
const VIEWER: &str = "viewer";
const VIEWER_PASSWORD: &str = "viewer-pw";

fn allow_topic(principal: &str, topic: &str, operation: Operation) -> AclBinding {
    AclBinding {
        principal: principal.into(),
        resource: ResourceType::Topic,
        pattern: PatternType::Literal,
        name: topic.into(),
        operation,
        permission: Permission::Allow,
    }
}

#[tokio::test]
async fn the_console_signs_in_over_https_and_shows_only_what_the_principal_may_see() {
    let Some(chromium) = toolchain() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ca");
    let (cert, key, _) = pki.server("server");
    let config = dir.path().join("brokerd.toml");
    std::fs::write(
        &config,
        format!(
            "[security]\nmechanisms = [\"SCRAM-SHA-256\"]\nfailure_delay_ms = 10\n\n\
             [tls]\ncert = {cert:?}\nkey = {key:?}\n"
        ),
    )
    .unwrap();
    let broker = Launch::new(brokerd_bin())
        .args(["--config".into(), config.into_os_string()])
        .log_to(dir.path().join("brokerd.log"))
        .init_admin(ADMIN, ADMIN_PASSWORD)
        .start()
        .unwrap();
    let admin = Client::connect_with(
        broker.addr(),
        ClientConfig::default()
            .tls(TlsConfig::new(&pki.ca_path))
            .credentials(Credentials::scram_sha_256(ADMIN, ADMIN_PASSWORD)),
    )
    .await
    .unwrap();
    admin.create_topic("visible", 1, &[]).await.unwrap();
    admin.create_topic("secret", 1, &[]).await.unwrap();
    admin.create_user(VIEWER, VIEWER_PASSWORD).await.unwrap();
    admin
        .create_acls(vec![
            allow_topic(VIEWER, "visible", Operation::Describe),
            allow_topic(VIEWER, "visible", Operation::Read),
        ])
        .await
        .unwrap();
    let shots = fresh_screenshots("console-login");
    tokio::task::spawn_blocking(move || {
        run_suite(
            "login.test.mjs",
            &chromium,
            &shots,
            &[
                ("BROKERD_HTTPS", format!("https://{}", broker.http_addr())),
                ("ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
                ("VIEWER_PASSWORD", VIEWER_PASSWORD.to_string()),
            ],
        );
        drop(broker);
    })
    .await
    .unwrap();
}
