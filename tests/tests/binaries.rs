//! The binaries every black-box test runs, as `integration_tests` builds them.
//!
//! This target is also the one that build names to get `cargo test --workspace`'s
//! dependency features (`FeatureSet::Tested` in `tests/src/binaries.rs`): keep it
//! small, and keep its name.

use std::process::Command;

#[test]
fn brokerd_and_brokerctl_are_built_from_this_workspace() {
    for binary in [
        integration_tests::brokerd_bin(),
        integration_tests::brokerctl_bin(),
    ] {
        let output = Command::new(&binary)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{}: {output:?}", binary.display());
        let name = binary.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            stdout.trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION")),
            "{}",
            binary.display()
        );
    }
}
