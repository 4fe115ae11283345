//! Partition assignment: pure functions, no I/O.

/// Assigns `partitions` partitions to `members` (given in a stable order): member `i`
/// gets partitions `i, i + m, i + 2m, ...`. Every partition goes to exactly one
/// member; counts differ by at most one. With no members nothing is assigned.
pub fn round_robin(members: usize, partitions: u32) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); members];
    if members == 0 {
        return out;
    }
    for partition in 0..partitions {
        out[partition as usize % members].push(partition);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_partition_to_exactly_one_member(members in 1usize..20, partitions in 0u32..100) {
            let assignment = round_robin(members, partitions);
            let mut seen: Vec<u32> = assignment.iter().flatten().copied().collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..partitions).collect::<Vec<_>>());
            let sizes: Vec<usize> = assignment.iter().map(Vec::len).collect();
            prop_assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn no_members_no_assignment() {
        assert!(round_robin(0, 5).is_empty());
    }
}
