//! `docs/protocol.md` and `protocol::ops::errors` agree on which error codes each
//! operation may answer with, in both directions. The server checks every error it
//! sends against the table, so the document is what a client can rely on.

use std::collections::BTreeSet;

use protocol::ops::errors::ANY_REQUEST;
use protocol::{ErrorCode, OpCode};

const SPEC: &str = include_str!("../../docs/protocol.md");

/// The backticked error-code names in `text`.
fn codes_in(text: &str) -> BTreeSet<&'static str> {
    ErrorCode::ALL
        .iter()
        .map(|c| c.name())
        .filter(|name| text.contains(&format!("`{name}`")))
        .collect()
}

fn names(codes: &[ErrorCode]) -> BTreeSet<&'static str> {
    codes.iter().map(|c| c.name()).collect()
}

/// The text of the operation's section, from its heading to the next one.
fn section(op: OpCode) -> &'static str {
    let heading = format!("\n### {} ({}", op.name(), op.as_u16());
    let start = SPEC
        .find(&heading)
        .unwrap_or_else(|| panic!("docs/protocol.md has no section for {}", op.name()));
    let rest = &SPEC[start + heading.len()..];
    let end = rest
        .find("\n### ")
        .or_else(|| rest.find("\n## "))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The paragraph of `text` that starts at `marker`.
fn paragraph_from<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let start = text.find(marker)?;
    let rest = &text[start + marker.len()..];
    Some(&rest[..rest.find("\n\n").unwrap_or(rest.len())])
}

#[test]
fn every_operation_lists_exactly_the_codes_the_table_has() {
    let mut wrong = Vec::new();
    for &op in OpCode::ALL {
        if op == OpCode::Delivery {
            continue; // pushed by the server, never answered
        }
        let Some(line) = paragraph_from(section(op), "Errors:") else {
            wrong.push(format!("{}: no \"Errors:\" line", op.name()));
            continue;
        };
        // A line may also name codes any request may get, to say when they happen.
        let any = names(ANY_REQUEST);
        let documented: BTreeSet<_> = codes_in(line).difference(&any).copied().collect();
        let table: BTreeSet<_> = names(op.errors()).difference(&any).copied().collect();
        if documented != table {
            wrong.push(format!(
                "{}: the document lists {documented:?}, the table {table:?}",
                op.name()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_codes_any_request_may_get_are_stated_once() {
    let line = paragraph_from(SPEC, "Any request may also be answered")
        .expect("the Error codes section states what any request may get");
    assert_eq!(codes_in(line), names(ANY_REQUEST));
}

#[test]
fn every_code_the_table_uses_is_in_the_code_list() {
    let start = SPEC
        .find("\n## Error codes")
        .expect("an Error codes section");
    let list = &SPEC[start..];
    let list = &list[..list[1..].find("\n## ").map_or(list.len(), |i| i + 1)];
    for &op in OpCode::ALL {
        for code in op.errors() {
            assert!(
                list.contains(&format!("`{}`", code.name())),
                "{} is not in the Error codes table",
                code.name()
            );
        }
    }
}
