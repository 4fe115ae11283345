//! The queue state against its rules: random operations keep the indexes true, and
//! each rule has its scenario.

use super::partition::timer_of;
use super::*;

/// Both clocks at `ms`.
fn t(ms: i64) -> Now {
    Now::at(ms.max(0) as u64)
}
use proptest::prelude::*;

proptest! {
    /// Random operations keep the indexes consistent with the entries, and a
    /// replay of the events gives the same entries.
    #[test]
    fn indexes_and_replay_stay_consistent(ops in proptest::collection::vec((0u8..6, 0u64..30, 0i64..5000), 1..200)) {
        let mut q = QueueState::new(QueuePolicy { max_unacked_per_partition: 20, ..policy() }, &[0, 0]);
        let members = [member("a"), member("b")];
        let mut log = Vec::new();
        let mut now = 0;
        for (op, x, dt) in ops {
            now += dt / 10;
            let p = (x % 2) as u32;
            match op {
                0 => if let Some((from, to)) = q.new_range(p, 40, 1 + x % 5) {
                    log.push(q.deliver(p, from, to, &members[(x % 2) as usize], t(now)));
                },
                1 => if let Ok(e) = q.ack(p, &[x]) { log.push(e) },
                2 => if let Ok(e) = q.fail(p, x, "r", (x % 3 == 0).then_some(5), t(now), x) { log.push(e) },
                3 => { let _ = q.extend(p, x, 100, t(now)); }
                4 => log.extend(q.expire(t(now), Some(&|m: &str| m == "b"), x)),
                _ => {
                    for (p, o) in q.due_retries(t(now), 3) { log.push(q.deliver(p, o, o + 1, &members[0], t(now))); }
                    for (p, o, from) in q.dead_lettering() {
                        if let Ok(e) = q.dead_lettered(p, o, from + x) { log.push(e) }
                        // Some copies are still waiting to be durable at the end.
                        if (o + x) % 3 != 0 { q.copy_durable(p, o); }
                    }
                }
            }
            q.assert_indexes();
        }
        let mut replayed = QueueState::new(q.policy.clone(), &[0, 0]);
        for event in &log { replayed.apply(event, Replayed::default()); }
        // Recovery finds every recorded copy; the running state saw them durable.
        replayed.confirm_copies(|_| true, 0);
        q.confirm_copies(|_| true, 0);
        replayed.assert_indexes();
        for p in 0..2 {
            let (a, b) = (q.partition(p).unwrap(), replayed.partition(p).unwrap());
            prop_assert_eq!(a.floor(), b.floor());
            prop_assert_eq!(a.read, b.read);
            prop_assert_eq!(a.dead_lettered, b.dead_lettered);
            let attempts = |x: &PartitionQueue| x.entries.iter().map(|(o, e)| (*o, e.attempts)).collect::<Vec<_>>();
            prop_assert_eq!(attempts(a), attempts(b));
        }
    }
}

fn policy() -> QueuePolicy {
    QueuePolicy {
        ack_deadline_ms: 1000,
        max_attempts: 3,
        backoff: Backoff {
            initial_ms: 100,
            multiplier: 2.0,
            max_ms: 10_000,
            jitter: 0.0,
        },
        max_unacked_per_partition: 100,
    }
}

fn member(name: &str) -> Arc<str> {
    Arc::from(name)
}

#[test]
fn a_partition_with_many_retries_does_not_hide_an_earlier_one_elsewhere() {
    let mut q = QueueState::new(policy(), &[0, 0]);
    let a = member("a");
    q.new_range(0, 20, 20).unwrap();
    q.deliver(0, 0, 20, &a, t(0));
    q.new_range(1, 1, 1).unwrap();
    q.deliver(1, 0, 1, &a, t(0));
    // Partition 1's retry is due first; partition 0 has 20 due a little later.
    q.fail(1, 0, "r", Some(10), t(0), 0).unwrap();
    for offset in 0..20 {
        q.fail(0, offset, "r", Some(20), t(0), 0).unwrap();
    }
    let due = q.due_retries(t(100), 3);
    assert_eq!(due.len(), 3);
    assert_eq!(due[0], (1, 0), "the earliest retry comes first: {due:?}");
}

#[test]
fn offsets_gone_from_the_log_are_skipped_and_their_entries_settled() {
    let mut q = QueueState::new(policy(), &[0]);
    q.new_range(0, 4, 10).unwrap();
    q.deliver(0, 0, 4, &member("a"), t(0));
    q.fail(0, 1, "r", None, t(0), 0).unwrap(); // waiting for a retry
    assert_eq!(q.skip_before(0, 0), None, "nothing below the start yet");
    // Retention removed [0, 10): the retry and the in-flight ones are settled,
    // and reading resumes at 10.
    let event = q.skip_before(0, 10).unwrap();
    assert!(matches!(
        event,
        QueueEvent::Position {
            floor: 10,
            read: 10,
            ..
        }
    ));
    let part = q.partition(0).unwrap();
    assert_eq!(part.read, 10);
    assert!((0..4).all(|o| part.entry(o).is_none()));
    assert!(q.due_retries(t(i64::MAX), 10).is_empty());
    assert_eq!(q.new_range(0, 12, 10), Some((10, 12)));
    assert_eq!(q.skip_before(0, 10), None, "done once");
}

#[test]
fn a_long_nack_reason_is_clipped_in_memory_and_in_its_event() {
    let mut q = QueueState::new(policy(), &[0]);
    q.new_range(0, 1, 10).unwrap();
    q.deliver(0, 0, 1, &member("a"), t(0));
    let reason = "x".repeat(64 * 1024);
    let event = q.fail(0, 0, &reason, None, t(0), 0).unwrap();
    let max = protocol::internal::queue::MAX_REASON_BYTES;
    assert!(matches!(event, QueueEvent::Failed { ref reason, .. } if reason.len() == max));
    let kept = q.partition(0).unwrap().entry(0).unwrap().reason.clone();
    assert_eq!(kept.map(|r| r.len()), Some(max));
}

#[test]
fn a_poison_message_is_retried_with_growing_backoff_then_dead_lettered_without_blocking_others() {
    let mut q = QueueState::new(policy(), &[0]);
    let a = member("a");
    let (from, to) = q.new_range(0, 10, 10).unwrap();
    assert_eq!((from, to), (0, 10));
    q.deliver(0, from, to, &a, t(0));
    // Offset 3 is poison: nacked every time; everything else is acked.
    q.ack(0, &[0, 1, 2, 4, 5, 6, 7, 8, 9]).unwrap();
    let mut now = 0;
    let mut dues = Vec::new();
    for attempt in 1..=3 {
        let event = q.fail(0, 3, "bad payload", None, t(now), 0).unwrap();
        match event {
            QueueEvent::Failed { due_ms, .. } => {
                assert!(attempt < 3);
                dues.push(due_ms - now);
                assert!(
                    q.due_retries(t(due_ms - 1), 10).is_empty(),
                    "not before its time"
                );
                assert_eq!(q.due_retries(t(due_ms), 10), [(0, 3)]);
                now = due_ms;
                q.deliver(0, 3, 4, &a, t(now));
                assert_eq!(
                    q.partition(0).unwrap().entry(3).unwrap().attempts,
                    attempt + 1
                );
            }
            QueueEvent::DeadLettering { reason, .. } => {
                assert_eq!(attempt, 3);
                assert_eq!(reason, "bad payload");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(dues, [100, 200], "backoff grows per attempt");
    // The messages behind it were never held up: all settled but the poison one.
    assert_eq!(q.partition(0).unwrap().floor(), 3);
    q.dead_lettered(0, 3, 0).unwrap();
    assert_eq!(
        q.partition(0).unwrap().floor(),
        3,
        "settled once the copy is durable"
    );
    assert!(q.copy_durable(0, 3));
    assert_eq!(q.partition(0).unwrap().floor(), 10);
    assert_eq!(
        q.counts(0),
        Counts {
            in_flight: 0,
            waiting_retry: 0,
            dead_lettered: 1
        }
    );
}

#[test]
fn deadlines_expire_and_disconnected_members_lose_their_deliveries() {
    let mut q = QueueState::new(policy(), &[0, 0]);
    let (a, b) = (member("a"), member("b"));
    q.deliver(0, 0, 2, &a, t(0));
    q.deliver(1, 0, 2, &b, t(500));
    q.extend(0, 1, 5000, t(900)).unwrap();
    let events = q.expire(t(1000), None, 0);
    assert_eq!(
        events.len(),
        1,
        "only partition 0 offset 0 passed its deadline: {events:?}"
    );
    let events = q.expire(t(1001), Some(&|m: &str| m == "b"), 0);
    assert_eq!(events.len(), 2, "b's deliveries fail when b is gone");
    assert!(
        matches!(q.ack(0, &[5]), Err(Refusal::NotInFlight { .. })),
        "never delivered"
    );
    q.ack(0, &[1]).unwrap();
    q.ack(0, &[1])
        .unwrap_or_else(|e| panic!("acks are idempotent: {e:?}"));
    assert_eq!(q.next_wakeup_mono_ms(), Some(1100));
}

#[test]
fn flow_control_bounds_unsettled_messages() {
    let mut q = QueueState::new(
        QueuePolicy {
            max_unacked_per_partition: 5,
            ..policy()
        },
        &[0],
    );
    let a = member("a");
    let (from, to) = q.new_range(0, 100, 100).unwrap();
    assert_eq!(to - from, 5);
    q.deliver(0, from, to, &a, t(0));
    assert_eq!(q.new_range(0, 100, 100), None);
    q.ack(0, &[0, 1]).unwrap();
    assert_eq!(q.new_range(0, 100, 100), Some((5, 7)));
}

#[test]
fn replaying_events_or_a_snapshot_gives_the_same_state() {
    let mut q = QueueState::new(policy(), &[0]);
    let a = member("a");
    let mut log = vec![
        q.deliver(0, 0, 6, &a, t(10)),
        q.ack(0, &[0, 2]).unwrap(),
        q.fail(0, 1, "nope", Some(50), t(20), 0).unwrap(),
        q.fail(0, 3, "later", None, t(30), 0).unwrap(),
    ];
    for (p, o) in q.due_retries(t(70), 10) {
        log.push(q.deliver(p, o, o + 1, &a, t(70)));
    }
    let mut replayed = QueueState::new(policy(), &[0]);
    for event in &log {
        replayed.apply(event, Replayed::default());
    }
    let mut from_snapshot = QueueState::new(policy(), &[0]);
    assert_eq!(q.snapshot_len(), q.snapshot(t(70)).len());
    for event in q.snapshot(t(70)) {
        from_snapshot.apply(&event, Replayed::default());
    }
    for state in [&replayed, &from_snapshot] {
        let part = state.partition(0).unwrap();
        assert_eq!(part.floor(), 1);
        assert_eq!(part.read, 6);
        assert_eq!(part.entry(1).unwrap().attempts, 2);
        assert_eq!(part.entry(3).unwrap().attempts, 1);
        assert!(matches!(
            part.entry(3).unwrap().state,
            EntryState::Waiting { due_mono_ms: 130 }
        ));
        assert_eq!(
            state.counts(0),
            Counts {
                in_flight: 3,
                waiting_retry: 1,
                dead_lettered: 0
            }
        );
    }
}

impl QueueState {
    /// The timer and dead-letter indexes agree with the entries.
    fn assert_indexes(&self) {
        for part in &self.partitions {
            let timers: std::collections::BTreeSet<(u64, u64)> = part
                .entries
                .iter()
                .filter_map(|(o, e)| timer_of(&e.state).map(|t| (t, *o)))
                .collect();
            assert_eq!(part.timers, timers);
            let dead: std::collections::BTreeSet<u64> = part
                .entries
                .iter()
                .filter(|(_, e)| matches!(e.state, EntryState::DeadLettering { .. }))
                .map(|(o, _)| *o)
                .collect();
            assert_eq!(part.dead, dead);
            let copied = part
                .entries
                .values()
                .filter(|e| matches!(e.state, EntryState::Copied { .. }))
                .count();
            assert_eq!(part.copied, copied);
        }
    }
}

#[test]
fn recovery_settles_a_copy_it_finds_and_redoes_one_the_crash_took() {
    let mut q = QueueState::new(
        QueuePolicy {
            max_attempts: 1,
            ..policy()
        },
        &[0],
    );
    let mut log = vec![q.deliver(0, 0, 2, &member("a"), t(0))];
    log.push(q.fail(0, 0, "bad", None, t(1), 3).unwrap());
    log.push(q.fail(0, 1, "bad", None, t(1), 3).unwrap());
    assert_eq!(q.dead_lettering(), [(0, 0, 3), (0, 1, 3)]);
    log.push(q.dead_lettered(0, 0, 3).unwrap());
    log.push(q.dead_lettered(0, 1, 5).unwrap());
    let counts = q.counts(0);
    assert_eq!(
        (counts.waiting_retry, counts.dead_lettered),
        (0, 2),
        "copied counts as dead-lettered"
    );
    let copied = |offset| {
        q.partition(0)
            .and_then(|p| p.entry(offset))
            .map(|e| matches!(e.state, EntryState::Copied { .. }))
    };
    assert_eq!(
        (copied(0), copied(1)),
        (Some(true), Some(true)),
        "settled only once durable"
    );

    // The crash kept the dead-letter topic up to offset 4: copy 3 is there, 5 is not.
    let replay = |log: &[QueueEvent]| {
        let mut r = QueueState::new(q.policy.clone(), &[0]);
        for event in log {
            r.apply(event, Replayed::default());
        }
        r
    };
    let mut r = replay(&log);
    assert_eq!(r.confirm_copies(|d| d < 4, 4), (1, 1));
    assert_eq!(
        r.dead_lettering(),
        [(0, 1, 4)],
        "copied again, from the end now"
    );
    assert_eq!(r.counts(0).dead_lettered, 1);
    r.assert_indexes();

    // Copied again at 4; the later record wins at the next restart.
    log.push(r.dead_lettered(0, 1, 4).unwrap());
    let mut r = replay(&log);
    assert_eq!(r.confirm_copies(|d| d < 5, 5), (2, 0));
    assert_eq!(r.counts(0).dead_lettered, 2);
    assert_eq!(r.partition(0).unwrap().floor(), 2);

    // A snapshot keeps a copy waiting to be durable as what it was written as.
    let mut snapshot = q.snapshot(t(2));
    assert_eq!(snapshot.len(), q.snapshot_len());
    snapshot.retain(|e| matches!(e, QueueEvent::DeadLettered { .. }));
    assert_eq!(snapshot.len(), 2);
}
