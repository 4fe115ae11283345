//! `packaging/brokerd.service`: systemd accepts the unit, its hardening scores well,
//! and the brokerd command line it runs works with the example configuration it
//! names. Needs `systemd-analyze` (Debian's `systemd` package; `.ci/run` installs it):
//! without it the test fails under `CI`, and says so and passes elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::Brokerd;

/// Where the unit installs brokerd.
const INSTALLED_BINARY: &str = "/usr/local/bin/brokerd";
/// The worst `systemd-analyze security` exposure level accepted (0 = fully locked
/// down, 10 = nothing restricted; "OK" ends at 4.9). The unit scores 1.6 today.
const MAX_EXPOSURE: f64 = 2.0;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unit_text() -> String {
    std::fs::read_to_string(repo().join("packaging/brokerd.service")).unwrap()
}

/// The words of the unit's `ExecStart=`.
fn exec_start(unit: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart");
    line.split_whitespace().map(str::to_string).collect()
}

fn systemd_analyze_present() -> bool {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing under CI; .ci/run should install Debian's systemd"
        );
        eprintln!("skipping: systemd-analyze is not installed (apt-get install systemd)");
    }
    found
}

/// The unit with the binary it runs replaced by the one under test, written to a
/// temporary directory: `systemd-analyze verify` insists that the binary exists.
fn unit_under_test(dir: &Path) -> PathBuf {
    let unit = unit_text();
    assert_eq!(exec_start(&unit)[0], INSTALLED_BINARY);
    let binary = integration_tests::brokerd_bin();
    let path = dir.join("brokerd.service");
    std::fs::write(
        &path,
        unit.replace(INSTALLED_BINARY, &binary.display().to_string()),
    )
    .unwrap();
    path
}

#[test]
fn systemd_accepts_the_unit_and_its_hardening() {
    if !systemd_analyze_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_under_test(dir.path());
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    let level: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for brokerd.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {report}"));
    assert!(
        level <= MAX_EXPOSURE,
        "exposure {level} > {MAX_EXPOSURE}:\n{report}"
    );
}

#[test]
fn the_units_command_line_starts_brokerd_with_the_example_config() {
    let words = exec_start(&unit_text());
    // The launcher gives its own --listen and --data-dir (a free port, a temporary
    // directory); every other flag of the unit is kept, the config file being the
    // example the unit's comments install.
    let mut args = Vec::new();
    let mut words = words[1..].iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--data-dir" => {
                words.next();
            }
            "--config" => {
                words.next();
                args.push("--config".to_string());
                args.push(repo().join("packaging/brokerd.toml").display().to_string());
            }
            _ => args.push(word.clone()),
        }
    }
    assert!(args.iter().any(|a| a == "--config"), "{args:?}");
    let mut broker = Brokerd::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(broker.stop(), "brokerd did not exit cleanly on SIGTERM");
}
