//! Finding the workspace's binaries (`brokerd`, `brokerctl`) and building them with
//! cargo.
//!
//! Cargo puts every binary of one profile in `target/<profile>/` (`debug` for the
//! `dev` profile), tests in `deps/` below it and examples in `examples/`. So the
//! running executable says where its siblings are and which profile built them; a
//! caller then decides whether to build first (the tests do, so they never run a
//! stale broker) or to take what is there (broker-bench does).
//!
//! Cargo resolves every dependency's features once per command, from all the
//! packages and targets that command builds. `cargo build --bin brokerd` and
//! `cargo test --workspace` therefore compile tokio, serde, syn and nearly everything
//! above them with different features: two copies of the broker's dependency graph,
//! the second one compiled in the middle of the test run. [`FeatureSet`] says which
//! of the two a build takes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::LaunchError;

/// Subdirectories of `target/<profile>/` that hold executables other than binaries.
const NESTED_EXE_DIRS: [&str; 2] = ["deps", "examples"];

/// What a build shows on the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildOutput {
    /// Cargo's progress and warnings on stderr: for a build the user waits for.
    Progress,
    /// Only errors (`cargo build --quiet`): for a build that is usually a no-op.
    Quiet,
}

/// Which features a build of the workspace's binaries resolves (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureSet {
    /// `cargo build --bin NAME`: exactly the binary a user builds and runs (the
    /// benchmarks measure this one).
    Shipped,
    /// The features `cargo test --workspace` resolves (every member, dev-dependencies
    /// on), so that the tests' build reuses everything that command compiled. The
    /// binaries differ from shipped ones only in what dev-dependencies switch on in
    /// shared crates (tokio's `test-util`, more of regex's Unicode tables), never in
    /// the workspace's own code.
    Tested,
}

/// The test target a [`FeatureSet::Tested`] build names besides the binaries: cargo
/// turns dev-dependencies on for the whole command as soon as it builds one target
/// that needs them, and this one (`tests/tests/binaries.rs`) is small.
const DEV_FEATURES_TEST: &str = "binaries";

/// One profile's output directory, `target/<profile>/`, and the profile that fills it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinDir {
    dir: PathBuf,
    profile: String,
}

impl BinDir {
    /// The directory the running executable was built into: `target/<profile>/`, for
    /// a binary as for a test (in `deps/`) or an example (in `examples/`).
    pub fn of_current_exe() -> Result<BinDir, LaunchError> {
        let exe = std::env::current_exe().map_err(|source| LaunchError::CurrentExe { source })?;
        BinDir::of_exe(&exe).ok_or(LaunchError::NoTargetDir { exe })
    }

    /// The `target/<profile>/` directory that holds `exe`, if it is in one.
    fn of_exe(exe: &Path) -> Option<BinDir> {
        let mut dir = exe.parent()?;
        if NESTED_EXE_DIRS.iter().any(|nested| dir.ends_with(nested)) {
            dir = dir.parent()?;
        }
        let name = dir.file_name()?.to_str()?;
        Some(BinDir {
            dir: dir.to_path_buf(),
            // Cargo names the dev profile's directory `debug`.
            profile: if name == "debug" { "dev" } else { name }.to_string(),
        })
    }

    /// `target/release/` of this workspace (of `$CARGO_TARGET_DIR`, if set).
    pub fn release() -> BinDir {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            // A relative CARGO_TARGET_DIR is relative to where cargo runs: the root.
            .map_or_else(
                || workspace_root().join("target"),
                |dir| workspace_root().join(dir),
            );
        BinDir {
            dir: target.join("release"),
            profile: "release".to_string(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cargo profile whose binaries live here (`dev`, `release`, ...).
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// Where the binary `name` is (or would be, once built).
    pub fn binary(&self, name: &str) -> PathBuf {
        self.dir
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    }

    /// Builds `binaries` of this workspace with this directory's profile and the
    /// given feature set (a no-op when they are up to date) and checks that they are
    /// here afterwards. A [`FeatureSet::Tested`] build builds every binary of the
    /// workspace, as `cargo test --workspace` does.
    pub fn build(
        &self,
        binaries: &[&str],
        features: FeatureSet,
        output: BuildOutput,
    ) -> Result<(), LaunchError> {
        let mut args = vec!["build"];
        if output == BuildOutput::Quiet {
            args.push("--quiet");
        }
        args.extend(["--profile", &self.profile]);
        match features {
            FeatureSet::Shipped => {
                for binary in binaries {
                    args.extend(["--bin", binary]);
                }
            }
            FeatureSet::Tested => {
                args.extend(["--workspace", "--bins", "--test", DEV_FEATURES_TEST])
            }
        }
        let command = format!("cargo {}", args.join(" "));
        let workspace = workspace_root().to_path_buf();
        let status = Command::new(cargo())
            .args(&args)
            .current_dir(&workspace)
            // `cargo test` gives a test process its package's CARGO_MANIFEST_DIR; ring's
            // build script reruns when that variable changes, so passing it on would
            // rebuild ring, rustls and everything above them here, and again on the
            // next plain `cargo build`.
            .env_remove("CARGO_MANIFEST_DIR")
            .status()
            .map_err(|e| LaunchError::Build {
                command: command.clone(),
                workspace: workspace.clone(),
                reason: format!("cannot run cargo: {e}"),
            })?;
        if !status.success() {
            return Err(LaunchError::Build {
                command,
                workspace,
                reason: status.to_string(),
            });
        }
        for binary in binaries {
            let path = self.binary(binary);
            if !path.is_file() {
                return Err(LaunchError::NotBuilt { command, path });
            }
        }
        Ok(())
    }
}

/// The workspace this crate belongs to, where `cargo build --bin <name>` finds every
/// binary of the workspace.
fn workspace_root() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // `tests/` always has a parent: cargo passes an absolute manifest directory.
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// The cargo to build with: the one running us (`cargo test`, `cargo run`), else the
/// one that built us.
fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from(env!("CARGO")), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_tests_and_examples_name_their_profile_directory() {
        for (exe, dir, profile) in [
            (
                "/w/target/release/broker-bench",
                "/w/target/release",
                "release",
            ),
            (
                "/w/target/debug/deps/wire-0123abcd",
                "/w/target/debug",
                "dev",
            ),
            ("/w/target/debug/examples/produce", "/w/target/debug", "dev"),
            (
                "/t/x86_64-unknown-linux-gnu/bench/deps/b-1",
                "/t/x86_64-unknown-linux-gnu/bench",
                "bench",
            ),
        ] {
            let found = BinDir::of_exe(Path::new(exe)).unwrap();
            assert_eq!(found.dir(), Path::new(dir), "{exe}");
            assert_eq!(found.profile(), profile, "{exe}");
            assert_eq!(found.binary("brokerd"), Path::new(dir).join("brokerd"));
        }
        assert_eq!(BinDir::of_exe(Path::new("/")), None);
        assert_eq!(BinDir::of_exe(Path::new("/deps/x")), None);
    }

    #[test]
    fn the_release_directory_is_under_the_workspace_target() {
        let release = BinDir::release();
        assert_eq!(release.profile(), "release");
        assert!(release.dir().ends_with("release"), "{release:?}");
        assert!(release.dir().is_absolute(), "{release:?}");
    }
}
