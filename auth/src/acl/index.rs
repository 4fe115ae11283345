//! The bindings of one principal on one resource type, indexed by name so that a check
//! is a few hash lookups: the literal name, the literal `*`, and one lookup for each
//! distinct length of prefix bindings (usually one or two).
//!
//! Each `(pattern, name)` holds its bindings as two bit sets of operations, one for
//! allow and one for deny. A binding is exactly one bit, so the sets are the bindings
//! themselves, not a summary of them.

use std::collections::{BTreeMap, HashMap};

use protocol::ops::security::{Operation, PatternType, Permission};

/// A set of operations, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OpSet(u8);

impl OpSet {
    /// The set holding `op` alone.
    pub(crate) const fn of(op: Operation) -> OpSet {
        OpSet(match op {
            Operation::All => 1 << 0,
            Operation::Read => 1 << 1,
            Operation::Write => 1 << 2,
            Operation::Create => 1 << 3,
            Operation::Delete => 1 << 4,
            Operation::Describe => 1 << 5,
            Operation::Alter => 1 << 6,
        })
    }

    const fn union(self, other: OpSet) -> OpSet {
        OpSet(self.0 | other.0)
    }

    /// The allow bindings that grant `op`: `All`, `op` itself, and for `Describe` every
    /// operation that implies it (Read, Write, Delete, Alter, as in Kafka).
    pub(crate) const fn allowing(op: Operation) -> OpSet {
        let direct = OpSet::of(Operation::All).union(OpSet::of(op));
        match op {
            Operation::Describe => direct
                .union(OpSet::of(Operation::Read))
                .union(OpSet::of(Operation::Write))
                .union(OpSet::of(Operation::Delete))
                .union(OpSet::of(Operation::Alter)),
            _ => direct,
        }
    }

    /// The deny bindings that refuse `op`: `All` and `op` itself. A denied Read does
    /// not deny Describe (implication runs only through allows, as in Kafka).
    pub(crate) const fn denying(op: Operation) -> OpSet {
        OpSet::of(Operation::All).union(OpSet::of(op))
    }

    fn intersects(self, other: OpSet) -> bool {
        self.0 & other.0 != 0
    }

    fn contains(self, op: Operation) -> bool {
        self.intersects(OpSet::of(op))
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The bindings of one `(principal, resource, pattern, name)`.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    allow: OpSet,
    deny: OpSet,
}

impl Entry {
    fn set(&mut self, permission: Permission) -> &mut OpSet {
        match permission {
            Permission::Allow => &mut self.allow,
            Permission::Deny => &mut self.deny,
        }
    }

    fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// What the bindings that match one resource name say about one operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Some matching binding allows it.
    pub(crate) allowed: bool,
    /// Some matching binding denies it.
    pub(crate) denied: bool,
}

impl Verdict {
    fn add(&mut self, entry: &Entry, op: Operation) {
        self.allowed |= entry.allow.intersects(OpSet::allowing(op));
        self.denied |= entry.deny.intersects(OpSet::denying(op));
    }

    /// Both verdicts' findings.
    pub(crate) fn merge(self, other: Verdict) -> Verdict {
        Verdict {
            allowed: self.allowed | other.allowed,
            denied: self.denied | other.denied,
        }
    }
}

/// The bindings of one principal on one resource type.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameIndex {
    literal: HashMap<String, Entry>,
    prefix: HashMap<String, Entry>,
    /// How many prefix names have each length in bytes: a check looks up one prefix
    /// of the resource name per length present, instead of walking the prefixes.
    prefix_lengths: BTreeMap<usize, usize>,
}

impl NameIndex {
    /// Adds a binding; false if it was there already.
    pub(crate) fn insert(
        &mut self,
        pattern: PatternType,
        name: &str,
        op: Operation,
        permission: Permission,
    ) -> bool {
        let map = match pattern {
            PatternType::Literal => &mut self.literal,
            PatternType::Prefix => &mut self.prefix,
        };
        if pattern == PatternType::Prefix && !map.contains_key(name) {
            *self.prefix_lengths.entry(name.len()).or_default() += 1;
        }
        let set = map.entry(name.to_owned()).or_default().set(permission);
        let added = !set.contains(op);
        *set = set.union(OpSet::of(op));
        added
    }

    /// Removes a binding; false if it was not there.
    pub(crate) fn remove(
        &mut self,
        pattern: PatternType,
        name: &str,
        op: Operation,
        permission: Permission,
    ) -> bool {
        let map = match pattern {
            PatternType::Literal => &mut self.literal,
            PatternType::Prefix => &mut self.prefix,
        };
        let Some(entry) = map.get_mut(name) else {
            return false;
        };
        let set = entry.set(permission);
        if !set.contains(op) {
            return false;
        }
        set.0 &= !OpSet::of(op).0;
        if entry.is_empty() {
            map.remove(name);
            if pattern == PatternType::Prefix {
                self.forget_prefix_length(name.len());
            }
        }
        true
    }

    fn forget_prefix_length(&mut self, len: usize) {
        if let Some(count) = self.prefix_lengths.get_mut(&len) {
            *count -= 1;
            if *count == 0 {
                self.prefix_lengths.remove(&len);
            }
        }
    }

    /// Whether this binding is held.
    pub(crate) fn contains(
        &self,
        pattern: PatternType,
        name: &str,
        op: Operation,
        permission: Permission,
    ) -> bool {
        let map = match pattern {
            PatternType::Literal => &self.literal,
            PatternType::Prefix => &self.prefix,
        };
        map.get(name).is_some_and(|entry| match permission {
            Permission::Allow => entry.allow.contains(op),
            Permission::Deny => entry.deny.contains(op),
        })
    }

    /// Whether no binding is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.literal.is_empty() && self.prefix.is_empty()
    }

    /// What the bindings matching `name` say about `op`.
    pub(crate) fn check(&self, name: &str, op: Operation) -> Verdict {
        let mut verdict = Verdict::default();
        if let Some(entry) = self.literal.get(name) {
            verdict.add(entry, op);
        }
        if name != super::ANY_NAME {
            if let Some(entry) = self.literal.get(super::ANY_NAME) {
                verdict.add(entry, op);
            }
        }
        for &len in self.prefix_lengths.keys() {
            // Lengths are sorted: none further can be a prefix.
            let Some(prefix) = name.get(..len) else {
                if len > name.len() {
                    break;
                }
                continue; // not a char boundary of `name`, so no prefix of that length
            };
            if let Some(entry) = self.prefix.get(prefix) {
                verdict.add(entry, op);
            }
        }
        verdict
    }

    /// Every binding, as `(pattern, name, operation, permission)`.
    pub(crate) fn bindings(
        &self,
    ) -> impl Iterator<Item = (PatternType, &str, Operation, Permission)> {
        let literal = self
            .literal
            .iter()
            .map(|(name, entry)| (PatternType::Literal, name, entry));
        let prefix = self
            .prefix
            .iter()
            .map(|(name, entry)| (PatternType::Prefix, name, entry));
        literal.chain(prefix).flat_map(|(pattern, name, entry)| {
            Operation::ALL.into_iter().flat_map(move |op| {
                let allow = entry.allow.contains(op).then_some((
                    pattern,
                    name.as_str(),
                    op,
                    Permission::Allow,
                ));
                let deny = entry.deny.contains(op).then_some((
                    pattern,
                    name.as_str(),
                    op,
                    Permission::Deny,
                ));
                allow.into_iter().chain(deny)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_sets_are_distinct_bits() {
        let mut seen = 0u8;
        for op in Operation::ALL {
            let bit = OpSet::of(op).0;
            assert_eq!(bit.count_ones(), 1);
            assert_eq!(seen & bit, 0, "{op:?}");
            seen |= bit;
        }
    }

    #[test]
    fn prefix_lengths_follow_inserts_and_removes() {
        let mut index = NameIndex::default();
        assert!(index.insert(
            PatternType::Prefix,
            "ab",
            Operation::Read,
            Permission::Allow
        ));
        assert!(!index.insert(
            PatternType::Prefix,
            "ab",
            Operation::Read,
            Permission::Allow
        ));
        assert!(index.insert(
            PatternType::Prefix,
            "ab",
            Operation::Write,
            Permission::Deny
        ));
        assert!(index.insert(
            PatternType::Prefix,
            "cd",
            Operation::Read,
            Permission::Allow
        ));
        assert_eq!(index.prefix_lengths.get(&2), Some(&2));
        assert!(index.remove(
            PatternType::Prefix,
            "ab",
            Operation::Read,
            Permission::Allow
        ));
        assert_eq!(
            index.prefix_lengths.get(&2),
            Some(&2),
            "ab still has a deny"
        );
        assert!(index.remove(
            PatternType::Prefix,
            "ab",
            Operation::Write,
            Permission::Deny
        ));
        assert!(!index.remove(
            PatternType::Prefix,
            "ab",
            Operation::Write,
            Permission::Deny
        ));
        assert_eq!(index.prefix_lengths.get(&2), Some(&1));
        assert!(index.remove(
            PatternType::Prefix,
            "cd",
            Operation::Read,
            Permission::Allow
        ));
        assert!(index.prefix_lengths.is_empty() && index.is_empty());
    }

    #[test]
    fn a_prefix_longer_than_the_name_or_off_a_char_boundary_does_not_match() {
        let mut index = NameIndex::default();
        index.insert(PatternType::Prefix, "é", Operation::Read, Permission::Allow); // 2 bytes
        index.insert(
            PatternType::Prefix,
            "abc",
            Operation::Read,
            Permission::Allow,
        );
        assert!(!index.check("a", Operation::Read).allowed);
        assert!(!index.check("ab", Operation::Read).allowed);
        assert!(index.check("abc", Operation::Read).allowed);
        assert!(index.check("é!", Operation::Read).allowed);
        // "aé": byte 2 is inside 'é', so no 2-byte prefix; the 3-byte one is "aé".
        assert!(!index.check("aé", Operation::Read).allowed);
        // A length that falls inside a character must not stop the longer ones.
        index.insert(
            PatternType::Prefix,
            "éa",
            Operation::Write,
            Permission::Allow,
        ); // 3 bytes
        index.insert(
            PatternType::Prefix,
            "x",
            Operation::Write,
            Permission::Allow,
        ); // 1 byte
        assert!(index.check("éa", Operation::Write).allowed);
    }
}
