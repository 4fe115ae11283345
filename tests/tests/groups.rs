//! Produce and consume through consumer groups, end to end against the real brokerd.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{Client, ClientConfig, ConsumerConfig, ConsumerRecord, ProducerConfig, Record};
use integration_tests::Brokerd;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

const DEADLINE: Duration = Duration::from_secs(120);

fn consumer_config() -> ConsumerConfig {
    ConsumerConfig::default()
        .auto_commit(None)
        .session_timeout(Duration::from_secs(3))
        .fetch_max_wait(Duration::from_millis(100))
}

/// Sends `count` records numbered from `first`, keyed so they spread over partitions;
/// returns where each landed.
async fn produce(client: &Client, topic: &str, first: u64, count: u64) -> HashMap<u64, (u32, u64)> {
    let producer = client
        .producer(topic, ProducerConfig::default())
        .await
        .unwrap();
    let mut pending = Vec::with_capacity(count as usize);
    for n in first..first + count {
        let record = Record::new(n.to_string()).with_key(format!("key-{}", n % 97));
        pending.push((n, producer.send(record).await.unwrap()));
    }
    producer.flush().await.unwrap();
    let mut placed = HashMap::new();
    for (n, future) in pending {
        let meta = future.await.unwrap();
        placed.insert(n, (meta.partition, meta.offset.unwrap()));
    }
    producer.close().await.unwrap();
    placed
}

fn number(record: &ConsumerRecord) -> u64 {
    std::str::from_utf8(record.value.as_deref().unwrap())
        .unwrap()
        .parse()
        .unwrap()
}

/// Reads until `count` records arrived (or the deadline passes).
async fn take(consumer: &mut client::Consumer, count: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::with_capacity(count);
    let deadline = Instant::now() + DEADLINE;
    while out.len() < count {
        let record = timeout(deadline - Instant::now(), consumer.next())
            .await
            .expect("records in time")
            .unwrap();
        out.push(record);
    }
    out
}

fn assert_in_order_per_partition(records: &[ConsumerRecord]) {
    let mut last: HashMap<u32, u64> = HashMap::new();
    for r in records {
        if let Some(previous) = last.insert(r.partition, r.offset) {
            assert!(
                r.offset > previous,
                "partition {} went from {previous} to {}",
                r.partition,
                r.offset
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_messages_through_a_group_exactly_once_in_order() {
    const MESSAGES: u64 = 100_000;
    let broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    client.create_topic("events", 4, &[]).await.unwrap();
    let placed = produce(&client, "events", 0, MESSAGES).await;
    let partitions: HashSet<u32> = placed.values().map(|(p, _)| *p).collect();
    assert_eq!(partitions.len(), 4, "keys spread over all partitions");
    for (n, (partition, _)) in &placed {
        let key = format!("key-{}", n % 97);
        assert_eq!(
            *partition,
            client::protocol::ops::produce::partition_for_key(key.as_bytes(), 4)
        );
    }

    let mut consumer = client
        .consumer("events", "readers", consumer_config())
        .await
        .unwrap();
    let records = take(&mut consumer, MESSAGES as usize).await;
    consumer.commit().await.unwrap();
    let seen: HashSet<u64> = records.iter().map(number).collect();
    assert_eq!(seen.len(), MESSAGES as usize, "no duplicates");
    assert!(seen.iter().all(|n| *n < MESSAGES));
    for r in &records {
        assert_eq!(
            placed[&number(r)],
            (r.partition, r.offset),
            "each record where the producer was told"
        );
    }
    assert_in_order_per_partition(&records);
    consumer.close().await.unwrap();

    let described = client.describe_group("readers").await.unwrap();
    assert!(
        described.partitions.iter().all(|p| p.lag == 0),
        "{described:?}"
    );
    assert_eq!(
        described
            .partitions
            .iter()
            .map(|p| p.committed_offset.unwrap())
            .sum::<u64>(),
        MESSAGES
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_fan_out_members_share_and_a_leaver_hands_over_without_redelivery() {
    let broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    client.create_topic("orders", 4, &[]).await.unwrap();

    // Group "b" has two members, both joined before anything is produced.
    let mut b1 = client
        .consumer("orders", "b", consumer_config())
        .await
        .unwrap();
    let mut b2 = client
        .consumer("orders", "b", consumer_config())
        .await
        .unwrap();
    // Wait until the broker has handed two partitions to each member, and both
    // consumers have applied that (polling `next` applies it; there is no data yet,
    // so nothing is consumed).
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "rebalance to 2 + 2 partitions");
        let group = client.describe_group("b").await.unwrap();
        let told = |member_id: String| {
            group
                .members
                .iter()
                .find(|m| m.member_id == member_id)
                .map(|m| m.partitions.clone())
        };
        let settled =
            group.members.len() == 2 && group.members.iter().all(|m| m.partitions.len() == 2);
        if settled
            && told(b1.member_id()) == Some(b1.assignment())
            && told(b2.member_id()) == Some(b2.assignment())
        {
            break;
        }
        let _ = timeout(Duration::from_millis(50), b1.next()).await;
        let _ = timeout(Duration::from_millis(50), b2.next()).await;
    }
    let (b1_parts, b2_parts): (HashSet<u32>, HashSet<u32>) = (
        b1.assignment().into_iter().collect(),
        b2.assignment().into_iter().collect(),
    );
    assert!(b1_parts.is_disjoint(&b2_parts));

    produce(&client, "orders", 0, 2000).await;

    // Group "a", a single member, receives everything.
    let mut a = client
        .consumer("orders", "a", consumer_config())
        .await
        .unwrap();
    let all: HashSet<u64> = take(&mut a, 2000).await.iter().map(number).collect();
    assert_eq!(all.len(), 2000);

    // In group "b" every message goes to exactly one member.
    let b1_count = client
        .describe_topic("orders")
        .await
        .unwrap()
        .partitions
        .iter()
        .filter(|p| b1_parts.contains(&p.partition))
        .map(|p| p.end_offset)
        .sum::<u64>() as usize;
    let from_b1 = take(&mut b1, b1_count).await;
    let from_b2 = take(&mut b2, 2000 - b1_count).await;
    assert!(from_b1.iter().all(|r| b1_parts.contains(&r.partition)));
    assert!(from_b2.iter().all(|r| b2_parts.contains(&r.partition)));
    let b1_set: HashSet<u64> = from_b1.iter().map(number).collect();
    let b2_set: HashSet<u64> = from_b2.iter().map(number).collect();
    assert!(b1_set.is_disjoint(&b2_set));
    assert_eq!(b1_set.len() + b2_set.len(), 2000);
    b1.commit().await.unwrap();
    b2.commit().await.unwrap();

    // b2 leaves; b1 takes over its partitions, starting at b2's committed offsets.
    b2.close().await.unwrap();
    produce(&client, "orders", 2000, 1000).await;
    let rest = take(&mut b1, 1000).await;
    let rest_set: HashSet<u64> = rest.iter().map(number).collect();
    assert_eq!(
        rest_set,
        (2000..3000).collect::<HashSet<u64>>(),
        "exactly the new messages, nothing committed again"
    );
    assert_eq!(b1.assignment().len(), 4);
    b1.commit().await.unwrap();
    b1.close().await.unwrap();
    a.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_heartbeating_is_expired_and_its_partitions_move() {
    let broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    client.create_topic("jobs", 2, &[]).await.unwrap();
    // A raw member that joins and then goes silent.
    let joined = client
        .join_group(
            "workers",
            "jobs",
            "",
            Duration::from_secs(1),
            client::protocol::ops::group::GroupStart::Earliest,
        )
        .await
        .unwrap();
    let mut live = client
        .consumer("jobs", "workers", consumer_config())
        .await
        .unwrap();
    produce(&client, "jobs", 0, 100).await;
    // Once the silent member's session (1 s) expires, the live one owns both partitions
    // and receives all 100 messages.
    let records = take(&mut live, 100).await;
    assert_eq!(
        records.iter().map(number).collect::<HashSet<_>>().len(),
        100
    );
    let described = client.describe_group("workers").await.unwrap();
    assert!(
        described
            .members
            .iter()
            .all(|m| m.member_id != joined.member_id),
        "expired"
    );
    live.close().await.unwrap();
}

/// A TCP link between one consumer and the broker that the test cuts to crash the
/// consumer the way a killed process would: every connection through it closes at
/// once, so nothing more (no commit, no LeaveGroup) reaches the broker, and the
/// member's session has to expire. A cut link keeps its port and closes whatever
/// connects to it, so no later link can get the port and carry a dead consumer's
/// retries.
struct Link {
    addr: String,
    /// `true` once cut; the connections carried until then.
    state: Arc<Mutex<(bool, Vec<JoinHandle<()>>)>>,
    accept: JoinHandle<()>,
}

impl Link {
    async fn open(broker: &str) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state: Arc<Mutex<(bool, Vec<JoinHandle<()>>)>> = Arc::default();
        let broker = broker.to_string();
        let accept = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((mut socket, _)) = listener.accept().await {
                    let mut state = state.lock().unwrap();
                    if state.0 {
                        continue; // cut: dropping the socket closes it
                    }
                    let broker = broker.clone();
                    state.1.push(tokio::spawn(async move {
                        if let Ok(mut upstream) = TcpStream::connect(&broker).await {
                            let _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
                        }
                    }));
                }
            }
        });
        Link {
            addr,
            state,
            accept,
        }
    }

    fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.0 = true;
        for connection in state.1.drain(..) {
            connection.abort();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// One record handed out by a consumer's `next`, in the order they were handed out.
#[derive(Debug, Clone, Copy)]
struct Returned {
    member: usize,
    number: u64,
    partition: u32,
    offset: u64,
}

/// A member of the churn test: a consumer on its own link, read by its own task.
struct ChurnMember {
    link: Link,
    member_id: String,
    task: JoinHandle<Result<(), client::ClientError>>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// How long a member of the churn test waits after each record while `pace` is set:
/// slow enough that members always hold records returned and not yet committed when
/// the group changes, and that the producer stays ahead.
const CHURN_PACE: Duration = Duration::from_millis(1);

async fn churn_member(
    broker: &str,
    index: usize,
    session_timeout: Duration,
    log: Arc<Mutex<Vec<Returned>>>,
    pace: Arc<AtomicBool>,
) -> ChurnMember {
    let link = Link::open(broker).await;
    let client_config = ClientConfig::default()
        .client_name(format!("churn-{index}"))
        .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .reconnect_max_attempts(2);
    let client = Client::connect_with(link.addr.clone(), client_config)
        .await
        .unwrap();
    let config = ConsumerConfig::default()
        .session_timeout(session_timeout)
        .heartbeat_interval(Duration::from_millis(100))
        .auto_commit(Some(Duration::from_millis(200)))
        .fetch_max_bytes(16 * 1024)
        .fetch_max_wait(Duration::from_millis(100));
    let mut consumer = client.consumer("churn", "churners", config).await.unwrap();
    let member_id = consumer.member_id();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                record = consumer.next() => {
                    let record = record?;
                    log.lock().unwrap().push(Returned {
                        member: index,
                        number: number(&record),
                        partition: record.partition,
                        offset: record.offset,
                    });
                    if pace.load(Ordering::Relaxed) {
                        tokio::time::sleep(CHURN_PACE).await;
                    }
                }
                _ = stopped.changed() => return consumer.close().await,
            }
        }
    });
    ChurnMember {
        link,
        member_id,
        task,
        stop,
    }
}

/// Polls `done` every 20 ms until it holds; panics with `what` after [`DEADLINE`].
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn returned_by(log: &Mutex<Vec<Returned>>, member: usize) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.member == member)
        .count()
}

/// Finding 6 of issue 13: members crash and are replaced while the group reads, and
/// only the crashed members' uncommitted records are read twice. Two members stay
/// healthy throughout; the third place is taken by one member after another, each
/// crashed (its connection cut, so no commit and no LeaveGroup reach the broker and
/// its session has to expire) once it has read a while, either replaced at once or
/// after its session expired. Every partition move between live members goes through
/// the handover (stop, commit, release), so the healthy members cause no duplicates
/// at all, and a record is read again only if a crashed member had returned it after
/// its last commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_crashing_and_replaced_cause_duplicates_only_of_their_own_uncommitted_records() {
    const PARTITIONS: u32 = 6;
    const CRASHES: usize = 4;
    /// Records a victim returns before it is crashed.
    const READ_BEFORE_CRASH: usize = 300;
    let broker = Brokerd::start();
    let admin = Client::connect(broker.addr()).await.unwrap();
    admin.create_topic("churn", PARTITIONS, &[]).await.unwrap();

    // The producer writes about 2,000 records a second until the crashes are over;
    // paced, the members read at most 1,000 a second each.
    let producing = Arc::new(AtomicBool::new(true));
    let producer_task = tokio::spawn({
        let client = admin.clone();
        let producing = producing.clone();
        async move {
            let producer = client
                .producer("churn", ProducerConfig::default())
                .await
                .unwrap();
            let mut acks = Vec::new();
            let mut next = 0u64;
            while producing.load(Ordering::Relaxed) {
                for _ in 0..20 {
                    let record =
                        Record::new(next.to_string()).with_key(format!("key-{}", next % 997));
                    acks.push(producer.send(record).await.unwrap());
                    next += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            producer.flush().await.unwrap();
            for ack in acks {
                ack.await.unwrap();
            }
            producer.close().await.unwrap();
            next
        }
    });

    let log: Arc<Mutex<Vec<Returned>>> = Arc::default();
    let pace = Arc::new(AtomicBool::new(true));
    let healthy_session = Duration::from_secs(10);
    // The broker's smallest session timeout, so that crashed members go quickly.
    let victim_session = Duration::from_secs(1);
    let mut healthy = Vec::new();
    for index in 0..2 {
        healthy.push(
            churn_member(
                broker.addr(),
                index,
                healthy_session,
                log.clone(),
                pace.clone(),
            )
            .await,
        );
    }
    let mut next_index = 2;
    let mut victim = churn_member(
        broker.addr(),
        next_index,
        victim_session,
        log.clone(),
        pace.clone(),
    )
    .await;
    // For each crashed member: the group's committed offsets just before it crashed.
    // Only its own commits move those of the partitions it owns, so what it returned
    // at or past them is at most what it returned after its last commit.
    let mut crashed: HashMap<usize, HashMap<u32, u64>> = HashMap::new();
    for round in 0..CRASHES {
        let index = next_index;
        wait_until("the victim reads", || {
            returned_by(&log, index) >= READ_BEFORE_CRASH
        })
        .await;
        let committed: HashMap<u32, u64> = admin
            .fetch_offsets("churners", "churn")
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.partition, c.offset.unwrap_or(0)))
            .collect();
        victim.link.cut();
        victim.task.abort();
        let _ = victim.task.await; // dropped: its LeaveGroup cannot get through
        crashed.insert(index, committed);
        if round % 2 == 1 {
            // Let the session expire before the replacement joins.
            let gone = victim.member_id.clone();
            let deadline = Instant::now() + DEADLINE;
            loop {
                assert!(
                    Instant::now() < deadline,
                    "the crashed member's session expires"
                );
                let group = admin.describe_group("churners").await.unwrap();
                if group.members.iter().all(|m| m.member_id != gone) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        drop(victim.link);
        next_index += 1;
        victim = churn_member(
            broker.addr(),
            next_index,
            victim_session,
            log.clone(),
            pace.clone(),
        )
        .await;
    }
    let last = next_index;
    wait_until("the last replacement reads", || {
        returned_by(&log, last) >= READ_BEFORE_CRASH
    })
    .await;

    // Stop producing; read the rest at full speed; close the live members.
    producing.store(false, Ordering::Relaxed);
    let produced = producer_task.await.unwrap();
    pace.store(false, Ordering::Relaxed);
    wait_until("every record is read", || {
        let log = log.lock().unwrap();
        log.iter().map(|r| r.number).collect::<HashSet<_>>().len() as u64 >= produced
    })
    .await;
    for member in healthy.into_iter().chain([victim]) {
        member.stop.send_replace(true);
        member.task.await.unwrap().unwrap();
        drop(member.link);
    }

    let log = log.lock().unwrap();
    let mut returns: HashMap<u64, Vec<Returned>> = HashMap::new();
    for r in log.iter() {
        returns.entry(r.number).or_default().push(*r);
    }
    let in_window = |r: &Returned| {
        crashed
            .get(&r.member)
            .is_some_and(|committed| r.offset >= committed.get(&r.partition).copied().unwrap_or(0))
    };
    let windows: usize = log.iter().filter(|r| in_window(r)).count();
    let duplicates = log.len() - returns.len();
    // A record is read again because the member that returned it lost its position.
    let lost_position: Vec<&Returned> = returns
        .values()
        .flat_map(|all| &all[..all.len() - 1])
        .collect();
    let by_healthy = lost_position.iter().filter(|r| r.member < 2).count();
    let outside_windows = lost_position.iter().filter(|r| !in_window(r)).count();
    eprintln!(
        "churn: {produced} records produced, {} returned, {duplicates} duplicates \
         ({by_healthy} of healthy members' records, {outside_windows} outside the crashed \
         members' uncommitted windows, which held {windows})",
        log.len()
    );
    assert_eq!(returns.len() as u64, produced, "nothing lost");
    assert!(returns.keys().all(|n| *n < produced));
    assert_eq!(by_healthy, 0, "healthy members cause no duplicates");
    assert_eq!(
        outside_windows, 0,
        "only records a crashed member returned after its last commit are read again"
    );
    assert!(duplicates <= windows);
}
