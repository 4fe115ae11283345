//! `brokerctl acls` (list, add, delete), with flags like Kafka's `kafka-acls`.
//!
//! `add` takes one or more principals (`--allow P`, `--deny P`), one or more
//! operations (`--operation OP`) and exactly one resource (`--topic NAME`, `--group
//! NAME`, `--cluster`, `--service NAME`, `--route PATTERN`, `--trace NAME`; `--prefix`
//! makes the name a prefix), and adds every combination. `list` and `delete` take the
//! same flags, each optional, as a filter (a filter holds one value per field, so at
//! most one principal, operation and resource); `delete` without any filter deletes
//! nothing unless `--all` says to delete every binding. The conversion from flags to
//! bindings and filters is pure ([`bindings`], [`filter`]) and checked before
//! connecting, so a mistake exits with status 2 and changes nothing.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use client::{
    AclBinding, AclFilter, Client, Operation, PatternType, Permission, ResourceType,
    CLUSTER_RESOURCE,
};
use serde_json::json;

use crate::print_json;
use crate::table::Table;

/// Arguments of `acls`.
#[derive(Debug, Args)]
pub struct AclsArgs {
    #[command(subcommand)]
    action: Option<AclsAction>,
}

/// What to do with ACL bindings.
#[derive(Debug, Subcommand)]
enum AclsAction {
    /// List bindings (the default), optionally only those the flags select.
    List(AclFlags),
    /// Add a binding for every principal and operation given, on one resource.
    Add(AclFlags),
    /// Delete the bindings the flags select (`--all` for every binding).
    Delete {
        #[command(flatten)]
        flags: AclFlags,
        /// Delete every binding (required when no filter is given).
        #[arg(long)]
        all: bool,
    },
}

/// The flags shared by `add`, `list` and `delete`.
#[derive(Debug, Clone, Default, Args)]
pub struct AclFlags {
    /// Allow PRINCIPAL (a user name, or `*` for everyone, anonymous included);
    /// repeatable for `add`.
    #[arg(long, value_name = "PRINCIPAL")]
    allow: Vec<String>,
    /// Deny PRINCIPAL (deny wins over any allow); repeatable for `add`.
    #[arg(long, value_name = "PRINCIPAL")]
    deny: Vec<String>,
    /// Only bindings of PRINCIPAL, allow or deny (`list` and `delete`).
    #[arg(long, value_name = "PRINCIPAL")]
    principal: Option<String>,
    /// read, write, create, delete, describe, alter or all; repeatable for `add`.
    #[arg(long = "operation", value_name = "OP", value_parser = parse_operation)]
    operations: Vec<Operation>,
    /// The topic NAME (`*` for every topic; internal topics by their `__` names).
    #[arg(long, value_name = "NAME")]
    topic: Option<String>,
    /// The consumer or queue group NAME.
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// The cluster: the broker itself (stats, users, ACLs).
    #[arg(long)]
    cluster: bool,
    /// The service NAME of the registry.
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// The routing rule PATTERN (publishing checks the routing key).
    #[arg(long, value_name = "PATTERN")]
    route: Option<String>,
    /// Trace spans (`__traces`), by NAME.
    #[arg(long, value_name = "NAME")]
    trace: Option<String>,
    /// The resource name is a prefix: it covers every name that starts with it.
    #[arg(long)]
    prefix: bool,
}

/// Parses an operation's name, as ACLs list it.
fn parse_operation(name: &str) -> Result<Operation, String> {
    Operation::ALL
        .into_iter()
        .find(|op| op.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
            format!(
                "unknown operation {name:?}: use one of {}",
                names.join(", ")
            )
        })
}

impl AclFlags {
    /// The resource selectors given, as (type, name).
    fn resources(&self) -> Vec<(ResourceType, String)> {
        let named = [
            (ResourceType::Topic, &self.topic),
            (ResourceType::Group, &self.group),
            (ResourceType::Service, &self.service),
            (ResourceType::Route, &self.route),
            (ResourceType::Trace, &self.trace),
        ];
        let mut out: Vec<(ResourceType, String)> = named
            .into_iter()
            .filter_map(|(kind, name)| name.clone().map(|n| (kind, n)))
            .collect();
        if self.cluster {
            out.push((ResourceType::Cluster, CLUSTER_RESOURCE.to_string()));
        }
        out
    }

    /// The principals given, each with its permission.
    fn principals(&self) -> Vec<(String, Permission)> {
        let allow = self.allow.iter().map(|p| (p.clone(), Permission::Allow));
        let deny = self.deny.iter().map(|p| (p.clone(), Permission::Deny));
        allow.chain(deny).collect()
    }

    /// Whether no flag selects anything (a filter that selects every binding).
    fn is_empty(&self) -> bool {
        self.principals().is_empty()
            && self.principal.is_none()
            && self.operations.is_empty()
            && self.resources().is_empty()
            && !self.prefix
    }
}

/// The bindings `acls add` adds: every principal with every operation, on the one
/// resource.
pub fn bindings(flags: &AclFlags) -> Result<Vec<AclBinding>, String> {
    if flags.principal.is_some() {
        return Err("acls add takes --allow or --deny PRINCIPAL, not --principal".into());
    }
    let principals = flags.principals();
    if principals.is_empty() {
        return Err("acls add needs --allow PRINCIPAL or --deny PRINCIPAL".into());
    }
    if flags.operations.is_empty() {
        return Err(
            "acls add needs --operation OP (read, write, create, delete, describe, alter, all)"
                .into(),
        );
    }
    let (resource, name) = match flags.resources().as_slice() {
        [one] => one.clone(),
        _ => {
            return Err(
                "acls add needs exactly one of --topic, --group, --cluster, \
                 --service, --route, --trace"
                    .into(),
            )
        }
    };
    check_name(&name)?;
    let pattern = pattern(flags);
    let mut out = Vec::new();
    for (principal, permission) in &principals {
        check_principal(principal)?;
        for &operation in &flags.operations {
            out.push(AclBinding {
                principal: principal.clone(),
                resource,
                pattern,
                name: name.clone(),
                operation,
                permission: *permission,
            });
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The filter `acls list` and `acls delete` send. A resource name is matched as a
/// literal unless `--prefix` is given (as Kafka's `kafka-acls` does); with no resource
/// flag, bindings of both pattern types are selected.
pub fn filter(flags: &AclFlags) -> Result<AclFilter, String> {
    let mut filter = AclFilter::default();
    let principals = flags.principals();
    match (principals.as_slice(), &flags.principal) {
        ([], None) => {}
        ([], Some(principal)) => filter.principal = Some(principal.clone()),
        ([(principal, permission)], None) => {
            filter.principal = Some(principal.clone());
            filter.permission = Some(*permission);
        }
        _ => return Err("a filter takes at most one of --allow, --deny, --principal".into()),
    }
    match flags.operations.as_slice() {
        [] => {}
        [operation] => filter.operation = Some(*operation),
        _ => return Err("a filter takes at most one --operation".into()),
    }
    match flags.resources().as_slice() {
        [] if flags.prefix => {
            filter.pattern = Some(PatternType::Prefix);
        }
        [] => {}
        [(resource, name)] => {
            filter.resource = Some(*resource);
            filter.name = Some(name.clone());
            filter.pattern = Some(pattern(flags));
        }
        _ => {
            return Err(
                "a filter takes at most one of --topic, --group, --cluster, \
                 --service, --route, --trace"
                    .into(),
            )
        }
    }
    Ok(filter)
}

fn pattern(flags: &AclFlags) -> PatternType {
    if flags.prefix {
        PatternType::Prefix
    } else {
        PatternType::Literal
    }
}

fn check_principal(principal: &str) -> Result<(), String> {
    if principal.is_empty() {
        return Err("a principal may not be empty (use '*' for everyone)".into());
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a resource name may not be empty (use '*' for every name)".into());
    }
    Ok(())
}

/// Usage errors, found before connecting.
pub fn check(args: &AclsArgs) -> Result<(), String> {
    match &args.action {
        None => Ok(()),
        Some(AclsAction::List(flags)) => filter(flags).map(drop),
        Some(AclsAction::Add(flags)) => bindings(flags).map(drop),
        Some(AclsAction::Delete { flags, all }) => delete_filter(flags, *all).map(drop),
    }
}

/// The filter of `acls delete`: refused if it would select every binding without
/// `--all`, so that a forgotten flag does not wipe the ACLs.
fn delete_filter(flags: &AclFlags, all: bool) -> Result<AclFilter, String> {
    match (flags.is_empty(), all) {
        (true, false) => Err("acls delete without a filter would delete every binding: \
             give --allow, --deny, --principal, --operation or a resource, or --all"
            .into()),
        (false, true) => Err("acls delete --all takes no filter flags".into()),
        _ => filter(flags),
    }
}

/// Runs `acls`.
pub async fn run(client: &Client, args: AclsArgs, json: bool) -> anyhow::Result<ExitCode> {
    let usage = |e: String| anyhow::anyhow!(e);
    match args.action.unwrap_or(AclsAction::List(AclFlags::default())) {
        AclsAction::List(flags) => {
            let listed = client.list_acls(filter(&flags).map_err(usage)?).await?;
            print_bindings(&listed, json)?;
        }
        AclsAction::Add(flags) => {
            let added = bindings(&flags).map_err(usage)?;
            client.create_acls(added.clone()).await?;
            if json {
                print_json(&bindings_json(&added))?;
            } else {
                for binding in &added {
                    outln!("added {}", describe(binding))?;
                }
            }
        }
        AclsAction::Delete { flags, all } => {
            let filter = delete_filter(&flags, all).map_err(usage)?;
            let deleted = client.delete_acls(filter).await?;
            if json {
                print_json(&bindings_json(&deleted))?;
            } else {
                outln!("deleted {} binding(s)", deleted.len())?;
                for binding in &deleted {
                    outln!("  {}", describe(binding))?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_bindings(bindings: &[AclBinding], json: bool) -> std::io::Result<()> {
    if json {
        return print_json(&bindings_json(bindings));
    }
    let mut table = Table::new(&[
        "PRINCIPAL",
        "PERMISSION",
        "OPERATION",
        "RESOURCE",
        "PATTERN",
        "NAME",
    ]);
    for b in bindings {
        table.row(vec![
            b.principal.clone(),
            b.permission.name().into(),
            b.operation.name().into(),
            b.resource.name().into(),
            b.pattern.name().into(),
            shown_name(&b.name),
        ]);
    }
    out!("{}", table.render())
}

/// A resource name as the table and messages show it: the empty prefix (every name,
/// as `--init-admin` grants) as `""`, so that it is not a blank cell.
fn shown_name(name: &str) -> String {
    if name.is_empty() {
        "\"\"".to_string()
    } else {
        name.to_string()
    }
}

/// One binding in words: `allow alice write topic orders`, `... topic prefix orders.`.
fn describe(b: &AclBinding) -> String {
    let pattern = match b.pattern {
        PatternType::Literal => "",
        PatternType::Prefix => "prefix ",
    };
    format!(
        "{} {} {} {} {pattern}{}",
        b.permission.name(),
        b.principal,
        b.operation.name(),
        b.resource.name(),
        shown_name(&b.name)
    )
}

fn bindings_json(bindings: &[AclBinding]) -> serde_json::Value {
    bindings
        .iter()
        .map(|b| {
            json!({
                "principal": b.principal,
                "permission": b.permission.name(),
                "operation": b.operation.name(),
                "resource": b.resource.name(),
                "pattern": b.pattern.name(),
                "name": b.name,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        flags: AclFlags,
    }

    fn flags(args: &[&str]) -> AclFlags {
        Cli::try_parse_from(std::iter::once("acls").chain(args.iter().copied()))
            .unwrap()
            .flags
    }

    fn binding(
        principal: &str,
        permission: Permission,
        operation: Operation,
        resource: ResourceType,
        pattern: PatternType,
        name: &str,
    ) -> AclBinding {
        AclBinding {
            principal: principal.into(),
            resource,
            pattern,
            name: name.into(),
            operation,
            permission,
        }
    }

    #[test]
    fn add_makes_every_principal_and_operation_on_one_resource() {
        let added = bindings(&flags(&[
            "--allow",
            "alice",
            "--deny",
            "*",
            "--operation",
            "write",
            "--operation",
            "READ",
            "--topic",
            "orders.",
            "--prefix",
        ]))
        .unwrap();
        use Operation::{Read, Write};
        use Permission::{Allow, Deny};
        let topic = |p, perm, op| {
            binding(
                p,
                perm,
                op,
                ResourceType::Topic,
                PatternType::Prefix,
                "orders.",
            )
        };
        let mut expected = vec![
            topic("alice", Allow, Write),
            topic("alice", Allow, Read),
            topic("*", Deny, Write),
            topic("*", Deny, Read),
        ];
        expected.sort();
        assert_eq!(added, expected);
    }

    #[test]
    fn every_resource_selector_maps_to_its_type() {
        for (args, resource, name) in [
            (&["--topic", "t"][..], ResourceType::Topic, "t"),
            (&["--group", "g"], ResourceType::Group, "g"),
            (&["--cluster"], ResourceType::Cluster, CLUSTER_RESOURCE),
            (&["--service", "s"], ResourceType::Service, "s"),
            (&["--route", "orders.#"], ResourceType::Route, "orders.#"),
            (&["--trace", "*"], ResourceType::Trace, "*"),
        ] {
            let mut line = vec!["--allow", "bob", "--operation", "all"];
            line.extend_from_slice(args);
            let added = bindings(&flags(&line)).unwrap();
            assert_eq!(
                added,
                vec![binding(
                    "bob",
                    Permission::Allow,
                    Operation::All,
                    resource,
                    PatternType::Literal,
                    name
                )],
                "{args:?}"
            );
        }
    }

    #[test]
    fn add_refuses_incomplete_or_ambiguous_flags() {
        for (args, says) in [
            (&["--operation", "read", "--topic", "t"][..], "--allow"),
            (&["--allow", "a", "--topic", "t"], "--operation"),
            (&["--allow", "a", "--operation", "read"], "exactly one"),
            (
                &[
                    "--allow",
                    "a",
                    "--operation",
                    "read",
                    "--topic",
                    "t",
                    "--cluster",
                ],
                "exactly one",
            ),
            (
                &["--principal", "a", "--operation", "read", "--topic", "t"],
                "not --principal",
            ),
            (
                &["--allow", "", "--operation", "read", "--topic", "t"],
                "empty",
            ),
            (
                &["--allow", "a", "--operation", "read", "--topic", ""],
                "empty",
            ),
        ] {
            let error = bindings(&flags(args)).unwrap_err();
            assert!(error.contains(says), "{args:?}: {error}");
        }
    }

    #[test]
    fn unknown_operations_are_named_with_the_known_ones() {
        let error = parse_operation("publish").unwrap_err();
        assert!(error.contains("\"publish\""), "{error}");
        for op in Operation::ALL {
            assert!(error.contains(op.name()), "{error}");
            assert_eq!(parse_operation(op.name()), Ok(op));
        }
        let error = Cli::try_parse_from(["acls", "--operation", "publish"]).unwrap_err();
        assert!(error.to_string().contains("unknown operation"), "{error}");
    }

    #[test]
    fn filters_select_what_is_given() {
        assert_eq!(filter(&flags(&[])).unwrap(), AclFilter::default());
        assert_eq!(
            filter(&flags(&[
                "--deny",
                "bob",
                "--operation",
                "delete",
                "--group",
                "g"
            ]))
            .unwrap(),
            AclFilter {
                principal: Some("bob".into()),
                resource: Some(ResourceType::Group),
                pattern: Some(PatternType::Literal),
                name: Some("g".into()),
                operation: Some(Operation::Delete),
                permission: Some(Permission::Deny),
            }
        );
        assert_eq!(
            filter(&flags(&["--principal", "bob"])).unwrap(),
            AclFilter {
                principal: Some("bob".into()),
                ..AclFilter::default()
            }
        );
        assert_eq!(
            filter(&flags(&["--topic", "orders.", "--prefix"])).unwrap(),
            AclFilter {
                resource: Some(ResourceType::Topic),
                pattern: Some(PatternType::Prefix),
                name: Some("orders.".into()),
                ..AclFilter::default()
            }
        );
        assert_eq!(
            filter(&flags(&["--prefix"])).unwrap(),
            AclFilter {
                pattern: Some(PatternType::Prefix),
                ..AclFilter::default()
            }
        );
        for args in [
            &["--allow", "a", "--deny", "b"][..],
            &["--allow", "a", "--principal", "a"],
            &["--operation", "read", "--operation", "write"],
            &["--topic", "t", "--group", "g"],
        ] {
            assert!(
                filter(&flags(args)).unwrap_err().contains("at most one"),
                "{args:?}"
            );
        }
    }

    #[test]
    fn delete_needs_a_filter_or_all() {
        let error = delete_filter(&flags(&[]), false).unwrap_err();
        assert!(error.contains("--all"), "{error}");
        assert_eq!(
            delete_filter(&flags(&[]), true).unwrap(),
            AclFilter::default()
        );
        assert!(delete_filter(&flags(&["--principal", "a"]), true).is_err());
        assert!(delete_filter(&flags(&["--principal", "a"]), false).is_ok());
        // `--prefix` alone is a filter (every prefix binding).
        assert!(delete_filter(&flags(&["--prefix"]), false).is_ok());
    }

    #[test]
    fn renderings() {
        let b = binding(
            "alice",
            Permission::Allow,
            Operation::Write,
            ResourceType::Topic,
            PatternType::Prefix,
            "orders.",
        );
        assert_eq!(describe(&b), "allow alice write topic prefix orders.");
        let every = AclBinding {
            name: String::new(),
            ..b.clone()
        };
        assert_eq!(describe(&every), "allow alice write topic prefix \"\"");
        assert_eq!(shown_name(""), "\"\"");
        assert_eq!(
            bindings_json(std::slice::from_ref(&b)).to_string(),
            r#"[{"principal":"alice","permission":"allow","operation":"write","resource":"topic","pattern":"prefix","name":"orders."}]"#
        );
    }
}
