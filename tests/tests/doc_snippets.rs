//! The Rust code in README.md and docs/client.md compiles against today's client:
//! `tests/build.rs` makes a module of every ```rust block, included here. A document
//! that drifts from the library fails this test's build, naming the block's line.

include!(concat!(env!("OUT_DIR"), "/doc_snippets.rs"));

#[test]
fn every_rust_fence_of_the_documents_became_a_compiled_module() {
    // Counted independently of the generator's parser: one that missed blocks would
    // compile nothing and pass.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let fences: usize = ["README.md", "docs/client.md"]
        .iter()
        .map(|doc| std::fs::read_to_string(root.join(doc)).unwrap())
        .map(|text| text.lines().filter(|l| l.trim() == "```rust").count())
        .sum();
    assert!(fences >= 10, "the documents lost their examples: {fences}");
    assert_eq!(SNIPPETS, fences);
}
