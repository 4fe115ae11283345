//! Routing-key matching with AMQP topic-exchange wildcards: pure, no I/O.
//!
//! Keys and patterns are words separated by `.`; in a pattern `*` matches exactly one
//! word and `#` matches zero or more words. Patterns are kept in a trie keyed by word,
//! with separate `*` and `#` children, so matching a key walks only the branches its
//! words can take: the cost grows with the key's length and the wildcards on its path,
//! not with the number of rules. Each (trie node, key position) pair is visited at
//! most once, so patterns such as `#.#.#.#` cannot make a match take exponential time,
//! and both patterns and keys are limited to [`MAX_WORDS`] words.

use std::collections::{BTreeSet, HashMap, HashSet};

/// Most words a pattern or a routing key may have. Bounds the trie's depth (and the
/// recursion that walks it) and the work of one match.
pub const MAX_WORDS: usize = 128;

/// One node of the pattern trie.
#[derive(Debug, Default)]
struct Node {
    words: HashMap<String, Node>,
    star: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    /// Rules whose pattern ends here.
    rules: BTreeSet<u64>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.words.is_empty() && self.star.is_none() && self.hash.is_none()
    }
}

/// Checks a pattern: non-empty words, wildcards only as whole words.
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("a routing pattern cannot be empty".into());
    }
    if pattern.split('.').count() > MAX_WORDS {
        return Err(format!("a routing pattern has at most {MAX_WORDS} words"));
    }
    for word in pattern.split('.') {
        if word.is_empty() {
            return Err(format!(
                "pattern {pattern:?} has an empty word (two dots, or a dot at an end)"
            ));
        }
        if word.len() > 1 && (word.contains('*') || word.contains('#')) {
            return Err(format!(
                "in pattern {pattern:?}, * and # must be whole words"
            ));
        }
    }
    Ok(())
}

/// Checks a routing key: at most [`MAX_WORDS`] words.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.split('.').count() > MAX_WORDS {
        return Err(format!("a routing key has at most {MAX_WORDS} words"));
    }
    Ok(())
}

/// The set of patterns, by rule id.
#[derive(Debug, Default)]
pub struct Matcher {
    root: Node,
}

impl Matcher {
    /// An empty matcher.
    pub fn new() -> Matcher {
        Matcher::default()
    }

    /// Adds rule `id` with `pattern` (validated by the caller).
    pub fn insert(&mut self, id: u64, pattern: &str) {
        let mut node = &mut self.root;
        for word in pattern.split('.') {
            node = match word {
                "*" => node.star.get_or_insert_with(Box::default),
                "#" => node.hash.get_or_insert_with(Box::default),
                word => node.words.entry(word.to_string()).or_default(),
            };
        }
        node.rules.insert(id);
    }

    /// Removes rule `id` with `pattern`; prunes empty branches.
    pub fn remove(&mut self, id: u64, pattern: &str) {
        let words: Vec<&str> = pattern.split('.').collect();
        remove_at(&mut self.root, &words, id);
    }

    /// Every rule whose pattern matches `key` (checked with [`validate_key`] by the
    /// caller), in id order.
    pub fn matches(&self, key: &str) -> BTreeSet<u64> {
        let words: Vec<&str> = key.split('.').collect();
        let mut out = BTreeSet::new();
        let mut visited = HashSet::new();
        collect(&self.root, &words, 0, &mut visited, &mut out);
        out
    }
}

fn remove_at(node: &mut Node, words: &[&str], id: u64) -> bool {
    let Some((first, rest)) = words.split_first() else {
        node.rules.remove(&id);
        return node.is_empty();
    };
    match *first {
        "*" => {
            if let Some(child) = node.star.as_mut() {
                if remove_at(child, rest, id) {
                    node.star = None;
                }
            }
        }
        "#" => {
            if let Some(child) = node.hash.as_mut() {
                if remove_at(child, rest, id) {
                    node.hash = None;
                }
            }
        }
        word => {
            if let Some(child) = node.words.get_mut(word) {
                if remove_at(child, rest, id) {
                    node.words.remove(word);
                }
            }
        }
    }
    node.is_empty()
}

/// Collects the rules reachable from `node` with `words[at..]` left to match.
/// `visited` holds the (node, position) pairs already explored: a second path to the
/// same pair (through `#`s that took different numbers of words) can find nothing new.
fn collect(
    node: &Node,
    words: &[&str],
    at: usize,
    visited: &mut HashSet<(*const Node, usize)>,
    out: &mut BTreeSet<u64>,
) {
    if !visited.insert((node as *const Node, at)) {
        return;
    }
    if let Some(hash) = &node.hash {
        // `#` takes zero or more of the remaining words.
        for next in at..=words.len() {
            collect(hash, words, next, visited, out);
        }
    }
    let Some(first) = words.get(at) else {
        out.extend(node.rules.iter().copied());
        return;
    };
    if let Some(child) = node.words.get(*first) {
        collect(child, words, at + 1, visited, out);
    }
    if let Some(star) = &node.star {
        collect(star, words, at + 1, visited, out);
    }
}

/// The obviously correct matcher the trie is tested against.
pub fn reference_match(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| reference_match(rest, &key[skip..])),
        Some((&"*", rest)) => !key.is_empty() && reference_match(rest, &key[1..]),
        Some((word, rest)) => key.first() == Some(word) && reference_match(rest, &key[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wildcard_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("orders.created", "orders.created", true),
            ("orders.created", "orders.deleted", false),
            ("orders.*", "orders.created", true),
            ("orders.*", "orders", false),
            ("orders.*", "orders.created.eu", false),
            ("orders.#", "orders", true),
            ("orders.#", "orders.created.eu", true),
            ("#", "anything.at.all", true),
            ("#", "x", true),
            ("*.created", "orders.created", true),
            ("*.created", "created", false),
            ("#.created", "created", true),
            ("#.created", "a.b.created", true),
            ("#.created", "a.b.created.x", false),
            ("a.#.z", "a.z", true),
            ("a.#.z", "a.b.c.z", true),
            ("a.#.z", "a.b.c", false),
            ("a.*.#", "a", false),
            ("a.*.#", "a.b", true),
            ("#.#", "a.b", true),
            ("*.*", "a.b", true),
            ("*.*", "a.b.c", false),
        ];
        for &(pattern, key, expected) in cases {
            let mut matcher = Matcher::new();
            matcher.insert(1, pattern);
            assert_eq!(
                matcher.matches(key).contains(&1),
                expected,
                "{pattern} vs {key}"
            );
            let (p, k): (Vec<&str>, Vec<&str>) =
                (pattern.split('.').collect(), key.split('.').collect());
            assert_eq!(
                reference_match(&p, &k),
                expected,
                "reference: {pattern} vs {key}"
            );
        }
    }

    #[test]
    fn many_hashes_against_a_long_key_take_polynomial_time() {
        // Without memoisation this is about C(136, 8) ≈ 10^12 paths.
        let mut matcher = Matcher::new();
        matcher.insert(1, "#.#.#.#.#.#.#.#.z");
        let key = vec!["a"; MAX_WORDS].join(".");
        assert!(matcher.matches(&key).is_empty());
        let key = format!("{}.z", vec!["a"; MAX_WORDS - 1].join("."));
        assert_eq!(matcher.matches(&key), BTreeSet::from([1]));
    }

    #[test]
    fn word_counts_are_limited() {
        let long = vec!["a"; MAX_WORDS + 1].join(".");
        assert!(validate_pattern(&long).is_err());
        assert!(validate_key(&long).is_err());
        let longest = vec!["a"; MAX_WORDS].join(".");
        validate_pattern(&longest).unwrap();
        validate_key(&longest).unwrap();
    }

    #[test]
    fn patterns_are_validated() {
        validate_pattern("a.*.#").unwrap();
        for bad in ["", "a..b", ".a", "a.", "a*.b", "a.#b"] {
            assert!(validate_pattern(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn removing_a_rule_leaves_the_others() {
        let mut matcher = Matcher::new();
        matcher.insert(1, "a.*");
        matcher.insert(2, "a.#");
        matcher.insert(3, "a.*");
        matcher.remove(1, "a.*");
        assert_eq!(matcher.matches("a.b"), BTreeSet::from([2, 3]));
        matcher.remove(3, "a.*");
        matcher.remove(2, "a.#");
        assert!(matcher.root.is_empty(), "pruned");
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("c".to_string())
        ]
    }

    fn pattern_word() -> impl Strategy<Value = String> {
        prop_oneof![3 => word(), 1 => Just("*".to_string()), 1 => Just("#".to_string())]
    }

    proptest! {
        #[test]
        fn the_trie_agrees_with_the_reference(
            patterns in proptest::collection::vec(proptest::collection::vec(pattern_word(), 1..5), 1..12),
            keys in proptest::collection::vec(proptest::collection::vec(word(), 1..6), 1..12),
        ) {
            let mut matcher = Matcher::new();
            for (id, p) in patterns.iter().enumerate() {
                matcher.insert(id as u64, &p.join("."));
            }
            for key in &keys {
                let k: Vec<&str> = key.iter().map(String::as_str).collect();
                let expected: BTreeSet<u64> = patterns
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| reference_match(&p.iter().map(String::as_str).collect::<Vec<_>>(), &k))
                    .map(|(id, _)| id as u64)
                    .collect();
                prop_assert_eq!(matcher.matches(&key.join(".")), expected);
            }
        }
    }
}
