//! Partition assignment of stream groups: a pure function, no I/O.
//!
//! [`sticky`] moves as few partitions as it can. Every partition that moves costs a
//! handover (the old owner stops, commits and releases it before the new one starts),
//! so a member leaving or joining must not shuffle partitions between the members that
//! stayed: removing a member moves only its partitions, adding one moves only the
//! partitions it gets. Queue groups need no assignment (every member may receive from
//! every partition).

/// Assigns `partitions` partitions to members given in a stable order, each with the
/// partitions it holds now (`current[i]`, any order), so that every partition goes to
/// exactly one member, counts differ by at most one, and as few partitions as
/// possible change member.
///
/// Each member gets a quota of `partitions / members` or one more; the larger quotas
/// go to the members holding the most (ties: the earlier member), which keeps the most.
/// A member keeps its lowest-numbered partitions up to its quota; what is left over,
/// and partitions nobody holds, go in ascending order to the members under quota, in
/// member order. Partitions held twice are kept by the earlier member; partitions
/// beyond the count are dropped. The result is sorted per member, and depends on
/// nothing but the arguments.
///
/// ```
/// use server::group::assign::sticky;
///
/// let before = sticky(&[vec![], vec![], vec![]], 6);
/// assert_eq!(before, [vec![0, 1], vec![2, 3], vec![4, 5]]);
/// // The second member leaves: only its partitions move.
/// let after = sticky(&[before[0].clone(), before[2].clone()], 6);
/// assert_eq!(after, [vec![0, 1, 2], vec![3, 4, 5]]);
/// // A member joins: it gets its share, taken from the others.
/// let joined = sticky(&[after[0].clone(), after[1].clone(), vec![]], 6);
/// assert_eq!(joined, [vec![0, 1], vec![3, 4], vec![2, 5]]);
/// ```
pub fn sticky(current: &[Vec<u32>], partitions: u32) -> Vec<Vec<u32>> {
    let members = current.len();
    if members == 0 {
        return Vec::new();
    }
    let held = valid_holdings(current, partitions);
    let quotas = quotas(&held, partitions);
    let mut out: Vec<Vec<u32>> = Vec::with_capacity(members);
    let mut taken = vec![false; partitions as usize];
    for (holding, &quota) in held.iter().zip(&quotas) {
        let kept: Vec<u32> = holding.iter().copied().take(quota).collect();
        for &p in &kept {
            taken[p as usize] = true;
        }
        out.push(kept);
    }
    let mut free = (0..partitions).filter(|&p| !taken[p as usize]);
    for (assigned, &quota) in out.iter_mut().zip(&quotas) {
        while assigned.len() < quota {
            // Quotas add up to the partition count, so there is always one left.
            let Some(p) = free.next() else { break };
            assigned.push(p);
        }
        assigned.sort_unstable();
    }
    debug_assert_eq!(
        out.iter().map(Vec::len).sum::<usize>(),
        partitions as usize,
        "every partition assigned"
    );
    out
}

/// Each member's partitions that exist and that no earlier member holds, sorted.
fn valid_holdings(current: &[Vec<u32>], partitions: u32) -> Vec<Vec<u32>> {
    let mut claimed = vec![false; partitions as usize];
    current
        .iter()
        .map(|holding| {
            let mut valid: Vec<u32> = holding
                .iter()
                .copied()
                .filter(|&p| p < partitions)
                .collect();
            valid.sort_unstable();
            valid.dedup();
            valid.retain(|&p| !std::mem::replace(&mut claimed[p as usize], true));
            valid
        })
        .collect()
}

/// How many partitions each member gets: `partitions / members`, plus one for the
/// `partitions % members` members holding the most (earlier first among equals).
fn quotas(held: &[Vec<u32>], partitions: u32) -> Vec<usize> {
    let members = held.len();
    let base = partitions as usize / members;
    let extra = partitions as usize % members;
    let mut by_holding: Vec<usize> = (0..members).collect();
    // Stable: equal holdings keep member order.
    by_holding.sort_by_key(|&i| std::cmp::Reverse(held[i].len()));
    let mut quotas = vec![base; members];
    for &i in by_holding.iter().take(extra) {
        quotas[i] += 1;
    }
    quotas
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Partitions that changed member between two assignments of the same members
    /// (`before` may have more members, listed first: they are the ones that stayed).
    fn moves(before: &[Vec<u32>], after: &[Vec<u32>]) -> usize {
        after
            .iter()
            .enumerate()
            .map(|(i, now)| {
                let had = before.get(i).map(Vec::as_slice).unwrap_or(&[]);
                now.iter().filter(|p| !had.contains(p)).count()
            })
            .sum()
    }

    fn assert_valid(assignment: &[Vec<u32>], partitions: u32) -> Result<(), TestCaseError> {
        let mut seen: Vec<u32> = assignment.iter().flatten().copied().collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..partitions).collect::<Vec<_>>(), "exactly once");
        let sizes: Vec<usize> = assignment.iter().map(Vec::len).collect();
        if let (Some(max), Some(min)) = (sizes.iter().max(), sizes.iter().min()) {
            prop_assert!(max - min <= 1, "balanced: {:?}", sizes);
        }
        Ok(())
    }

    /// The model of "as few moves as possible": the most partitions the members can
    /// keep, trying every choice of which members get the larger quota.
    fn most_kept(current: &[Vec<u32>], partitions: u32) -> usize {
        let held = valid_holdings(current, partitions);
        let members = held.len();
        let base = partitions as usize / members;
        let extra = partitions as usize % members;
        (0u32..1 << members)
            .filter(|set| set.count_ones() as usize == extra)
            .map(|set| {
                (0..members)
                    .map(|i| held[i].len().min(base + usize::from(set & (1 << i) != 0)))
                    .sum()
            })
            .max()
            .unwrap_or(0)
    }

    /// Holdings as they come out of earlier rebalances: a start, then members
    /// leaving (`Err(index)`) and joining (`Ok(())`).
    fn history(partitions: u32, steps: &[Result<(), usize>]) -> Vec<Vec<u32>> {
        let mut members = sticky(&[vec![]], partitions);
        for step in steps {
            match step {
                Ok(()) => members.push(Vec::new()),
                Err(i) if members.len() > 1 => {
                    members.remove(i % members.len());
                }
                Err(_) => {}
            }
            members = sticky(&members, partitions);
        }
        members
    }

    fn steps() -> impl Strategy<Value = Vec<Result<(), usize>>> {
        prop::collection::vec(prop_oneof![Just(Ok(())), (0usize..32).prop_map(Err)], 0..24)
    }

    proptest! {
        #[test]
        fn any_holdings_give_a_balanced_cover_with_the_fewest_moves(
            (members, owners) in (1usize..8).prop_flat_map(|members| {
                (Just(members), prop::collection::vec(0..=members, 0..36))
            }),
        ) {
            // Partition p is held by member owners[p], or by nobody (== members).
            let partitions = owners.len() as u32;
            let mut current = vec![Vec::new(); members];
            for (p, &owner) in owners.iter().enumerate() {
                if owner < members {
                    current[owner].push(p as u32);
                }
            }
            for holding in &mut current {
                holding.reverse(); // any order within a holding will do
            }
            let assignment = sticky(&current, partitions);
            prop_assert_eq!(assignment.len(), members);
            assert_valid(&assignment, partitions)?;
            let kept: usize = assignment
                .iter()
                .zip(&current)
                .map(|(now, had)| now.iter().filter(|p| had.contains(p)).count())
                .sum();
            prop_assert_eq!(kept, most_kept(&current, partitions));
            prop_assert_eq!(sticky(&current, partitions), assignment, "deterministic");
        }

        #[test]
        fn nonsense_holdings_still_give_a_balanced_cover(
            current in prop::collection::vec(prop::collection::vec(0u32..40, 0..12), 1..8),
            partitions in 0u32..36,
        ) {
            let assignment = sticky(&current, partitions);
            prop_assert_eq!(assignment.len(), current.len());
            assert_valid(&assignment, partitions)?;
        }

        #[test]
        fn a_member_leaving_moves_only_its_partitions(
            partitions in 0u32..64,
            steps in steps(),
            leaver in 0usize..32,
        ) {
            let before = history(partitions, &steps);
            prop_assume!(before.len() > 1);
            let leaver = leaver % before.len();
            let mut stayed = before.clone();
            let gone = stayed.remove(leaver);
            let after = sticky(&stayed, partitions);
            assert_valid(&after, partitions)?;
            for (had, now) in stayed.iter().zip(&after) {
                prop_assert!(had.iter().all(|p| now.contains(p)), "{:?} lost some of {:?}", now, had);
            }
            prop_assert_eq!(moves(&stayed, &after), gone.len());
        }

        #[test]
        fn a_member_joining_moves_at_most_its_share(
            partitions in 0u32..64,
            steps in steps(),
        ) {
            let mut members = history(partitions, &steps);
            let before = members.clone();
            members.push(Vec::new());
            let after = sticky(&members, partitions);
            assert_valid(&after, partitions)?;
            let share = (partitions as usize).div_ceil(members.len());
            prop_assert!(moves(&before, &after) <= share);
            for (had, now) in before.iter().zip(&after) {
                prop_assert!(now.iter().all(|p| had.contains(p)), "only the newcomer gains");
            }
        }
    }

    #[test]
    fn no_members_no_assignment() {
        assert!(sticky(&[], 5).is_empty());
    }

    #[test]
    fn the_larger_quotas_go_to_those_holding_most() {
        // 7 over 3: one quota of 3, two of 2. The 3 goes to the second member, which
        // holds four: it keeps three, and its fourth goes to the first member.
        let out = sticky(&[vec![0], vec![1, 2, 3, 4], vec![5, 6]], 7);
        assert_eq!(out, [vec![0, 4], vec![1, 2, 3], vec![5, 6]]);
    }

    #[test]
    fn doubly_held_and_vanished_partitions_are_sorted_out() {
        let out = sticky(&[vec![1, 9], vec![1, 0]], 2);
        assert_eq!(out, [vec![1], vec![0]]);
    }
}
