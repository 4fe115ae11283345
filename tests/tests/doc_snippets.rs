//! The Rust code in README.md and docs/client.md compiles against today's client:
//! `tests/build.rs` makes a module of every ```rust block, included here. A document
//! that drifts from the library fails this test's build, naming the block's line.

include!(concat!(env!("OUT_DIR"), "/doc_snippets.rs"));

#[test]
fn every_rust_block_of_the_documents_is_compiled() {
    // README.md has one, docs/client.md nine; a parser that missed blocks would
    // compile nothing and pass.
    assert!(SNIPPETS >= 10, "only {SNIPPETS} blocks found");
}
