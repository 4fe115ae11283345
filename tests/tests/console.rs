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

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::{brokerctl_bin, Brokerd};

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

#[test]
fn the_console_works_in_a_real_browser() {
    let Some(chromium) = toolchain() else {
        return;
    };
    let broker = Brokerd::start();
    let shots = screenshots();
    // Old screenshots would pass for new ones.
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let dir = root().join("tests/console");
    let output = Command::new("node")
        .current_dir(&dir)
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .arg(Path::new("console.test.mjs"))
        .env("BROKERD_HTTP", format!("http://{}", broker.http_addr()))
        .env("BROKERD_ADDR", broker.addr())
        .env("BROKERCTL", brokerctl_bin())
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT_DIR", &shots)
        .env("RESULTS", shots.join("measured.json"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "browser tests failed ({}); screenshots in {}",
        output.status,
        shots.display()
    );
    if let Ok(measured) = std::fs::read_to_string(shots.join("measured.json")) {
        println!("measured: {measured}");
    }
}
