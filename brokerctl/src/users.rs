//! `brokerctl users` (list, add, passwd, delete) and `brokerctl whoami`.
//!
//! A new password is read from the first line of standard input (`echo pw | brokerctl
//! users add alice`), never from the command line; the client derives its SCRAM
//! verifier, so the broker is never sent the password.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use client::{Client, UserInfo, WhoAmIResponse, USER_ITERATIONS};
use serde_json::json;

use crate::login::first_line;
use crate::print_json;
use crate::table::Table;

/// The most bytes of standard input read for a password: more than any password the
/// broker accepts, so a longer one is refused as too long rather than cut.
const MAX_PASSWORD_INPUT_BYTES: u64 = 64 * 1024;

/// Arguments of `users`.
#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    action: Option<UsersAction>,
}

/// What to do with users.
#[derive(Debug, Subcommand)]
enum UsersAction {
    /// List users (the default).
    List,
    /// Create user NAME with the password on the first line of standard input.
    Add {
        /// The user's name: the principal ACLs name.
        name: String,
    },
    /// Change user NAME's password to the first line of standard input.
    Passwd {
        /// The user's name.
        name: String,
    },
    /// Delete user NAME (its ACL bindings stay until deleted).
    Delete {
        /// The user's name.
        name: String,
    },
}

/// Runs `users`.
pub async fn run(client: &Client, args: UsersArgs, json: bool) -> anyhow::Result<ExitCode> {
    match args.action.unwrap_or(UsersAction::List) {
        UsersAction::List => {
            let users = client.list_users().await?;
            if json {
                print_json(&users_json(&users))?;
            } else {
                out!("{}", users_table(&users))?;
            }
        }
        UsersAction::Add { name } => {
            let password = password_from_stdin(&name)?;
            client.create_user(&name, &password).await?;
            if json {
                print_json(&json!({
                    "name": name,
                    "mechanism": client::Mechanism::ScramSha256.name(),
                    "iterations": USER_ITERATIONS,
                }))?;
            } else {
                outln!("created user {name}")?;
            }
        }
        UsersAction::Passwd { name } => {
            let password = password_from_stdin(&name)?;
            client.alter_user(&name, &password).await?;
            if json {
                print_json(&json!({ "name": name }))?;
            } else {
                outln!("changed the password of user {name}")?;
            }
        }
        UsersAction::Delete { name } => {
            client.delete_user(&name).await?;
            if !json {
                outln!("deleted user {name}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `whoami`.
pub async fn whoami(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let me = client.whoami().await?;
    if json {
        print_json(&whoami_json(&me))?;
    } else {
        out!("{}", whoami_text(&me))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The new password of `user` from standard input. On a terminal, a prompt on stderr
/// says that the password shows as it is typed (brokerctl does not turn echo off).
fn password_from_stdin(user: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("new password for user {user} (shown as typed; pipe it in to avoid that): ");
    }
    read_password(stdin.lock(), user)
}

/// The first line of `input`: the new password of `user`. Only that line is read, so
/// that on a terminal Enter ends it. Empty is refused.
fn read_password(input: impl BufRead, user: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    input
        .take(MAX_PASSWORD_INPUT_BYTES)
        .read_line(&mut text)
        .context("cannot read the password from standard input")?;
    let password = first_line(&text);
    if password.is_empty() {
        bail!(
            "no password for user {user}: give it on the first line of standard input \
             (echo 'PASSWORD' | brokerctl users add {user}); an empty password is refused"
        );
    }
    Ok(password.to_string())
}

fn users_table(users: &[UserInfo]) -> String {
    let mut table = Table::new(&["NAME", "MECHANISM", "ITERATIONS"]);
    for user in users {
        table.row(vec![
            user.name.clone(),
            user.mechanism.clone(),
            user.iterations.to_string(),
        ]);
    }
    table.render()
}

fn users_json(users: &[UserInfo]) -> serde_json::Value {
    users
        .iter()
        .map(|u| json!({ "name": u.name, "mechanism": u.mechanism, "iterations": u.iterations }))
        .collect()
}

fn whoami_text(me: &WhoAmIResponse) -> String {
    format!(
        "principal         {}\nauthenticated_by  {}\n",
        me.principal, me.authenticated_by
    )
}

fn whoami_json(me: &WhoAmIResponse) -> serde_json::Value {
    json!({ "principal": me.principal, "authenticated_by": me.authenticated_by })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_the_first_line_of_input() {
        assert_eq!(read_password(&b"pw\n"[..], "alice").unwrap(), "pw");
        assert_eq!(read_password(&b"pw\r\nrest"[..], "alice").unwrap(), "pw");
        assert_eq!(
            read_password(&b"no newline"[..], "alice").unwrap(),
            "no newline"
        );
        for empty in [&b""[..], b"\n", b"\r\n"] {
            let error = read_password(empty, "alice").unwrap_err().to_string();
            assert!(error.contains("empty password is refused"), "{error}");
        }
    }

    #[test]
    fn renderings() {
        let users = vec![UserInfo {
            name: "alice".into(),
            mechanism: "SCRAM-SHA-256".into(),
            iterations: 4096,
        }];
        assert_eq!(
            users_table(&users),
            "NAME   MECHANISM      ITERATIONS\nalice  SCRAM-SHA-256        4096\n"
        );
        assert_eq!(
            users_json(&users).to_string(),
            r#"[{"name":"alice","mechanism":"SCRAM-SHA-256","iterations":4096}]"#
        );
        let me = WhoAmIResponse {
            principal: "alice".into(),
            authenticated_by: "SCRAM-SHA-256".into(),
        };
        assert_eq!(
            whoami_text(&me),
            "principal         alice\nauthenticated_by  SCRAM-SHA-256\n"
        );
        assert_eq!(
            whoami_json(&me).to_string(),
            r#"{"principal":"alice","authenticated_by":"SCRAM-SHA-256"}"#
        );
    }
}
