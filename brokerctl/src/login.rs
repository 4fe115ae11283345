//! Who brokerctl authenticates as: `--user` (or `BROKER_USER`), the password from
//! `--password-file` or `BROKER_PASSWORD`, and `--sasl-mechanism`.
//!
//! The password is deliberately not a flag: a command line is visible to every user of
//! the machine (`ps`, `/proc/PID/cmdline`) and lands in shell history. It is read from
//! a file (its first line) or the environment, and goes nowhere but into the client's
//! [`Credentials`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use client::{Credentials, Mechanism, PASSWORD_ENV};

/// What the command line says about authentication.
#[derive(Debug, Clone, Default)]
pub struct Login {
    /// `--user` / `BROKER_USER`.
    pub user: Option<String>,
    /// `--password-file`.
    pub password_file: Option<PathBuf>,
    /// `--sasl-mechanism` / `BROKER_SASL_MECHANISM`.
    pub mechanism: Mechanism,
}

impl Login {
    /// The credentials to connect with, if any: the password from `--password-file`
    /// if given, else from `env_password` (`BROKER_PASSWORD`). No user and no password
    /// file means none (and `BROKER_PASSWORD` alone is an error: it names no one).
    pub fn credentials(&self, env_password: Option<String>) -> anyhow::Result<Option<Credentials>> {
        let env_password = env_password.filter(|p| !p.is_empty());
        let Some(user) = self.user.as_deref().filter(|u| !u.is_empty()) else {
            if let Some(path) = &self.password_file {
                bail!(
                    "--password-file {} is given but no user: add --user NAME (or set BROKER_USER)",
                    path.display()
                );
            }
            if env_password.is_some() {
                bail!("{PASSWORD_ENV} is set but no user: add --user NAME (or set BROKER_USER)");
            }
            return Ok(None);
        };
        let password = match (&self.password_file, env_password) {
            (Some(path), _) => read_password_file(path)?,
            (None, Some(password)) => password,
            (None, None) => bail!(
                "no password for user {user:?}: set {PASSWORD_ENV} or give --password-file PATH \
                 (brokerctl takes no password on its command line, where other users could see it)"
            ),
        };
        Ok(Some(Credentials::new(self.mechanism, user, password)))
    }
}

/// The first line of `path`, without its line ending; refused if empty.
fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    let password = first_line(&text);
    if password.is_empty() {
        bail!(
            "the password file {} is empty (its first line is the password)",
            path.display()
        );
    }
    Ok(password.to_string())
}

/// The first line of `text` without its `\n` or `\r\n`: the one shape a password is
/// given in, from a file or standard input (`echo pw | brokerctl users add NAME`).
pub fn first_line(text: &str) -> &str {
    let line = text.split('\n').next().unwrap_or_default();
    line.strip_suffix('\r').unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(user: Option<&str>, file: Option<&Path>) -> Login {
        Login {
            user: user.map(Into::into),
            password_file: file.map(Into::into),
            mechanism: Mechanism::ScramSha256,
        }
    }

    #[test]
    fn no_user_means_no_credentials() {
        assert_eq!(login(None, None).credentials(None).unwrap(), None);
        assert_eq!(login(Some(""), None).credentials(None).unwrap(), None);
    }

    #[test]
    fn the_password_comes_from_the_environment() {
        let credentials = login(Some("alice"), None)
            .credentials(Some("s3cret".into()))
            .unwrap()
            .unwrap();
        assert_eq!(credentials, Credentials::scram_sha_256("alice", "s3cret"));
    }

    #[test]
    fn a_password_file_wins_and_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "from-file\r\nsecond line\n").unwrap();
        let credentials = login(Some("alice"), Some(&path))
            .credentials(Some("from-env".into()))
            .unwrap()
            .unwrap();
        assert_eq!(
            credentials,
            Credentials::scram_sha_256("alice", "from-file")
        );
        let plain = Login {
            mechanism: Mechanism::Plain,
            ..login(Some("alice"), Some(&path))
        };
        assert_eq!(
            plain.credentials(None).unwrap().unwrap().mechanism(),
            Mechanism::Plain
        );
    }

    #[test]
    fn missing_halves_are_refused_without_showing_the_password() {
        let error = login(Some("alice"), None).credentials(None).unwrap_err();
        assert!(error.to_string().contains("BROKER_PASSWORD"), "{error}");
        let error = login(None, None)
            .credentials(Some("hunter2".into()))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--user") && !error.contains("hunter2"),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let error = login(Some("alice"), Some(&empty))
            .credentials(None)
            .unwrap_err();
        assert!(error.to_string().contains("is empty"), "{error}");
        let missing = dir.path().join("missing");
        let error = login(Some("alice"), Some(&missing))
            .credentials(None)
            .unwrap_err();
        assert!(error.to_string().contains("cannot read"), "{error}");
        let error = login(None, Some(&missing)).credentials(None).unwrap_err();
        assert!(error.to_string().contains("no user"), "{error}");
    }

    #[test]
    fn first_lines() {
        assert_eq!(first_line("pw\n"), "pw");
        assert_eq!(first_line("pw\r\nmore"), "pw");
        assert_eq!(first_line("pw"), "pw");
        assert_eq!(first_line(""), "");
        assert_eq!(first_line(" spaced pw \n"), " spaced pw ");
    }
}
