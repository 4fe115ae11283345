//! One test per rule of the module doc, and a property test against a reference model
//! that evaluates a plain list of bindings the slow, obvious way.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn binding(
    principal: &str,
    resource: ResourceType,
    pattern: PatternType,
    name: &str,
    operation: Operation,
    permission: Permission,
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

fn allow(principal: &str, name: &str, operation: Operation) -> AclBinding {
    binding(
        principal,
        ResourceType::Topic,
        PatternType::Literal,
        name,
        operation,
        Permission::Allow,
    )
}

fn deny(principal: &str, name: &str, operation: Operation) -> AclBinding {
    binding(
        principal,
        ResourceType::Topic,
        PatternType::Literal,
        name,
        operation,
        Permission::Deny,
    )
}

fn authorizer(bindings: &[AclBinding]) -> Authorizer {
    Authorizer::with_bindings(["root".to_owned()], bindings.iter().cloned()).unwrap()
}

fn topic(acls: &Authorizer, principal: &str, name: &str, op: Operation) -> Decision {
    acls.authorize(principal, ResourceType::Topic, name, op)
}

#[test]
fn superusers_may_do_everything_even_against_a_deny() {
    let acls = authorizer(&[deny("root", "t", Operation::All)]);
    for op in Operation::ALL {
        assert_eq!(topic(&acls, "root", "t", op), Decision::Superuser);
    }
    assert_eq!(
        acls.authorize("root", ResourceType::Cluster, "cluster", Operation::Alter),
        Decision::Superuser
    );
}

#[test]
fn no_match_is_denied() {
    let acls = authorizer(&[allow("alice", "t", Operation::Read)]);
    assert_eq!(
        topic(&acls, "bob", "t", Operation::Read),
        Decision::NoMatchingAcl
    );
    assert_eq!(
        topic(&acls, "alice", "u", Operation::Read),
        Decision::NoMatchingAcl
    );
    assert_eq!(
        topic(&acls, "alice", "t", Operation::Write),
        Decision::NoMatchingAcl
    );
    assert_eq!(
        acls.authorize("alice", ResourceType::Group, "t", Operation::Read),
        Decision::NoMatchingAcl
    );
    assert!(!Decision::NoMatchingAcl.is_allowed());
}

#[test]
fn deny_wins_over_allow() {
    let acls = authorizer(&[
        allow("alice", "t", Operation::All),
        deny("*", "t", Operation::Write),
    ]);
    assert_eq!(
        topic(&acls, "alice", "t", Operation::Write),
        Decision::DeniedByAcl
    );
    assert_eq!(
        topic(&acls, "alice", "t", Operation::Read),
        Decision::Allowed
    );
    let acls = authorizer(&[
        binding(
            "alice",
            ResourceType::Topic,
            PatternType::Prefix,
            "",
            Operation::Read,
            Permission::Allow,
        ),
        binding(
            "alice",
            ResourceType::Topic,
            PatternType::Prefix,
            "secret.",
            Operation::Read,
            Permission::Deny,
        ),
    ]);
    assert_eq!(
        topic(&acls, "alice", "public", Operation::Read),
        Decision::Allowed
    );
    assert_eq!(
        topic(&acls, "alice", "secret.x", Operation::Read),
        Decision::DeniedByAcl
    );
}

#[test]
fn all_covers_every_operation() {
    let acls = authorizer(&[allow("alice", "t", Operation::All)]);
    for op in Operation::ALL {
        assert_eq!(topic(&acls, "alice", "t", op), Decision::Allowed, "{op:?}");
    }
    let acls = authorizer(&[
        allow("alice", "t", Operation::All),
        deny("alice", "t", Operation::All),
    ]);
    for op in Operation::ALL {
        assert_eq!(
            topic(&acls, "alice", "t", op),
            Decision::DeniedByAcl,
            "{op:?}"
        );
    }
}

#[test]
fn read_write_delete_and_alter_imply_describe_but_create_does_not() {
    for op in [
        Operation::Read,
        Operation::Write,
        Operation::Delete,
        Operation::Alter,
    ] {
        let acls = authorizer(&[allow("alice", "t", op)]);
        assert_eq!(
            topic(&acls, "alice", "t", Operation::Describe),
            Decision::Allowed,
            "{op:?}"
        );
        // Implication does not run the other way, nor between the four.
        let acls = authorizer(&[allow("alice", "t", Operation::Describe)]);
        assert_eq!(
            topic(&acls, "alice", "t", op),
            Decision::NoMatchingAcl,
            "{op:?}"
        );
    }
    let acls = authorizer(&[allow("alice", "t", Operation::Create)]);
    assert_eq!(
        topic(&acls, "alice", "t", Operation::Describe),
        Decision::NoMatchingAcl
    );
}

#[test]
fn a_denied_read_does_not_deny_describe() {
    let acls = authorizer(&[
        allow("alice", "t", Operation::Describe),
        deny("alice", "t", Operation::Read),
    ]);
    assert_eq!(
        topic(&acls, "alice", "t", Operation::Describe),
        Decision::Allowed
    );
    assert_eq!(
        topic(&acls, "alice", "t", Operation::Read),
        Decision::DeniedByAcl
    );
    let acls = authorizer(&[
        allow("alice", "t", Operation::Describe),
        deny("alice", "t", Operation::Describe),
    ]);
    assert_eq!(
        topic(&acls, "alice", "t", Operation::Describe),
        Decision::DeniedByAcl
    );
}

#[test]
fn the_any_principal_matches_everyone_anonymous_included() {
    let acls = authorizer(&[allow("*", "t", Operation::Read)]);
    for who in ["alice", "bob", protocol::ops::security::ANONYMOUS, "*"] {
        assert_eq!(
            topic(&acls, who, "t", Operation::Read),
            Decision::Allowed,
            "{who}"
        );
    }
    // A principal named like a user matches only that user.
    let acls = authorizer(&[allow("alice", "t", Operation::Read)]);
    assert_eq!(
        topic(
            &acls,
            protocol::ops::security::ANONYMOUS,
            "t",
            Operation::Read
        ),
        Decision::NoMatchingAcl
    );
}

#[test]
fn the_literal_star_matches_every_name_but_a_prefix_star_only_stars() {
    let acls = authorizer(&[allow("alice", "*", Operation::Read)]);
    for name in ["t", "", "*", "__traces"] {
        assert_eq!(
            topic(&acls, "alice", name, Operation::Read),
            Decision::Allowed,
            "{name}"
        );
    }
    let star_prefix = binding(
        "alice",
        ResourceType::Topic,
        PatternType::Prefix,
        "*",
        Operation::Read,
        Permission::Allow,
    );
    let acls = authorizer(&[star_prefix]);
    assert_eq!(
        topic(&acls, "alice", "t", Operation::Read),
        Decision::NoMatchingAcl
    );
    assert_eq!(
        topic(&acls, "alice", "*x", Operation::Read),
        Decision::Allowed
    );
}

#[test]
fn prefixes_match_names_that_start_with_them() {
    let prefix = |name: &str| {
        binding(
            "alice",
            ResourceType::Topic,
            PatternType::Prefix,
            name,
            Operation::Read,
            Permission::Allow,
        )
    };
    let acls = authorizer(&[prefix("orders."), prefix("x")]);
    assert_eq!(
        topic(&acls, "alice", "orders.eu", Operation::Read),
        Decision::Allowed
    );
    assert_eq!(
        topic(&acls, "alice", "orders.", Operation::Read),
        Decision::Allowed
    );
    assert_eq!(
        topic(&acls, "alice", "orders", Operation::Read),
        Decision::NoMatchingAcl
    );
    assert_eq!(
        topic(&acls, "alice", "xyz", Operation::Read),
        Decision::Allowed
    );
    let acls = authorizer(&[prefix("")]);
    assert_eq!(
        topic(&acls, "alice", "anything", Operation::Read),
        Decision::Allowed
    );
    assert_eq!(
        topic(&acls, "alice", "", Operation::Read),
        Decision::Allowed
    );
}

#[test]
fn resource_types_are_separate() {
    let acls = authorizer(&[binding(
        "alice",
        ResourceType::Group,
        PatternType::Literal,
        "g",
        Operation::Read,
        Permission::Allow,
    )]);
    assert_eq!(
        acls.authorize("alice", ResourceType::Group, "g", Operation::Read),
        Decision::Allowed
    );
    assert_eq!(
        acls.authorize("alice", ResourceType::Topic, "g", Operation::Read),
        Decision::NoMatchingAcl
    );
}

#[test]
fn insert_remove_and_list() {
    let mut acls = Authorizer::new([]);
    let a = allow("alice", "t", Operation::Read);
    let b = deny("bob", "t", Operation::Write);
    assert_eq!(acls.insert(&a), Ok(true));
    assert_eq!(acls.insert(&a), Ok(false));
    assert_eq!(acls.insert(&b), Ok(true));
    assert_eq!(acls.len(), 2);
    assert!(acls.contains(&a));
    assert_eq!(acls.list(&AclFilter::default()), vec![a.clone(), b.clone()]);
    let only_bob = AclFilter {
        principal: Some("bob".into()),
        ..AclFilter::default()
    };
    assert_eq!(acls.list(&only_bob), vec![b.clone()]);
    assert_eq!(
        topic(&acls, "alice", "t", Operation::Read),
        Decision::Allowed
    );
    assert!(acls.remove(&a));
    assert!(!acls.remove(&a));
    assert_eq!(
        topic(&acls, "alice", "t", Operation::Read),
        Decision::NoMatchingAcl
    );
    assert_eq!(acls.remove_matching(&only_bob), vec![b]);
    assert!(acls.is_empty());
    assert!(acls.index.is_empty(), "empty indexes are dropped");
}

#[test]
fn superusers_can_be_replaced() {
    let mut acls = Authorizer::new(["root".to_owned()]);
    assert!(acls.is_superuser("root"));
    acls.set_superusers(["admin".to_owned()]);
    assert!(!acls.is_superuser("root"));
    assert_eq!(
        topic(&acls, "admin", "t", Operation::Delete),
        Decision::Superuser
    );
}

/// Deny wins, allow allows, nothing denies: evaluated over a plain list.
fn model(
    bindings: &BTreeSet<AclBinding>,
    principal: &str,
    resource: ResourceType,
    name: &str,
    op: Operation,
) -> bool {
    let matches = |b: &AclBinding| {
        (b.principal == principal || b.principal == ANY_PRINCIPAL)
            && b.resource == resource
            && match b.pattern {
                PatternType::Literal => b.name == name || b.name == ANY_NAME,
                PatternType::Prefix => name.starts_with(&b.name),
            }
    };
    let denies = |b: &AclBinding| b.operation == Operation::All || b.operation == op;
    let implies_describe = |o| {
        matches!(
            o,
            Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
        )
    };
    let allows =
        |b: &AclBinding| denies(b) || (op == Operation::Describe && implies_describe(b.operation));
    let denied = bindings
        .iter()
        .any(|b| matches(b) && b.permission == Permission::Deny && denies(b));
    let allowed = bindings
        .iter()
        .any(|b| matches(b) && b.permission == Permission::Allow && allows(b));
    allowed && !denied
}

fn principal() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "alice",
        "bob",
        "*",
        protocol::ops::security::ANONYMOUS,
    ])
    .prop_map(str::to_owned)
}

/// Short names over a tiny alphabet, so literals, prefixes and `*` collide often.
fn name() -> impl Strategy<Value = String> {
    "[ab*é]{0,3}"
}

fn resource() -> impl Strategy<Value = ResourceType> {
    prop::sample::select(ResourceType::ALL.to_vec())
}

fn operation() -> impl Strategy<Value = Operation> {
    prop::sample::select(Operation::ALL.to_vec())
}

fn any_binding() -> impl Strategy<Value = AclBinding> {
    let pattern = prop::sample::select(vec![PatternType::Literal, PatternType::Prefix]);
    let permission = prop::sample::select(vec![Permission::Allow, Permission::Deny]);
    (
        principal(),
        resource(),
        pattern,
        name(),
        operation(),
        permission,
    )
        .prop_map(
            |(principal, resource, pattern, name, operation, permission)| AclBinding {
                principal,
                resource,
                pattern,
                name,
                operation,
                permission,
            },
        )
}

proptest! {
    #[test]
    fn agrees_with_the_reference_model(
        added in prop::collection::vec(any_binding(), 0..40),
        removed in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        queries in prop::collection::vec((principal(), resource(), name(), operation()), 1..40),
    ) {
        let mut acls = Authorizer::new([]);
        let mut reference = BTreeSet::new();
        for binding in &added {
            prop_assert_eq!(acls.insert(binding).unwrap(), reference.insert(binding.clone()));
        }
        for index in removed {
            if added.is_empty() {
                break;
            }
            let binding = &added[index.index(added.len())];
            prop_assert_eq!(acls.remove(binding), reference.remove(binding));
        }
        prop_assert_eq!(acls.len(), reference.len());
        prop_assert_eq!(acls.list(&AclFilter::default()), reference.iter().cloned().collect::<Vec<_>>());
        for (principal, resource, name, op) in queries {
            let decision = acls.authorize(&principal, resource, &name, op);
            prop_assert_eq!(
                decision.is_allowed(),
                model(&reference, &principal, resource, &name, op),
                "{} {:?} {:?} {:?}: {:?}", principal, resource, name, op, decision
            );
        }
    }

    #[test]
    fn a_matching_deny_always_wins(
        base in prop::collection::vec(any_binding(), 0..30),
        principal in principal(),
        resource in resource(),
        name in name(),
        op in operation(),
    ) {
        let mut acls = Authorizer::with_bindings([], base).unwrap();
        let deny = AclBinding {
            principal: principal.clone(),
            resource,
            pattern: PatternType::Literal,
            name: name.clone(),
            operation: op,
            permission: Permission::Deny,
        };
        acls.insert(&deny).unwrap();
        prop_assert_eq!(acls.authorize(&principal, resource, &name, op), Decision::DeniedByAcl);
    }

    #[test]
    fn list_filters_like_the_filter_says(
        bindings in prop::collection::vec(any_binding(), 0..30),
        who in prop::option::of(principal()),
        what in prop::option::of(resource()),
        op in prop::option::of(operation()),
    ) {
        let acls = Authorizer::with_bindings([], bindings.clone()).unwrap();
        let filter = AclFilter { principal: who, resource: what, operation: op, ..AclFilter::default() };
        let expected: BTreeSet<AclBinding> = bindings.into_iter().filter(|b| filter.matches(b)).collect();
        prop_assert_eq!(acls.list(&filter), expected.into_iter().collect::<Vec<_>>());
    }
}

#[test]
fn the_number_of_bindings_is_bounded() {
    let mut acls = Authorizer::new([]);
    for i in 0..MAX_BINDINGS {
        acls.insert(&allow("alice", &i.to_string(), Operation::Read))
            .unwrap();
    }
    let one_more = allow("alice", "one more", Operation::Read);
    assert_eq!(
        acls.insert(&one_more),
        Err(AclError::TooManyBindings { max: MAX_BINDINGS })
    );
    // Re-adding a held binding is still fine: it adds nothing.
    assert_eq!(
        acls.insert(&allow("alice", "0", Operation::Read)),
        Ok(false)
    );
    assert!(acls.remove(&allow("alice", "0", Operation::Read)));
    assert_eq!(acls.insert(&one_more), Ok(true));
}

#[test]
fn principals_and_names_are_bounded() {
    let mut acls = Authorizer::new([]);
    let invalid = Err(AclError::InvalidPrincipal {
        max: MAX_PRINCIPAL_BYTES,
    });
    assert_eq!(acls.insert(&allow("", "t", Operation::Read)), invalid);
    assert_eq!(
        acls.insert(&allow(
            &"p".repeat(MAX_PRINCIPAL_BYTES + 1),
            "t",
            Operation::Read
        )),
        invalid
    );
    assert_eq!(
        acls.insert(&allow(
            &"p".repeat(MAX_PRINCIPAL_BYTES),
            "t",
            Operation::Read
        )),
        Ok(true)
    );
    let long = "n".repeat(MAX_ACL_NAME_BYTES + 1);
    assert_eq!(
        acls.insert(&allow("p", &long, Operation::Read)),
        Err(AclError::NameTooLong {
            max: MAX_ACL_NAME_BYTES
        })
    );
    assert_eq!(
        acls.insert(&allow("p", "", Operation::Read)),
        Ok(true),
        "the empty literal is a name like any"
    );
    assert_eq!(acls.len(), 2);
}
