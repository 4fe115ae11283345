//! `queue::receive`, the pull a listener without connections serves: who may pull,
//! long polling woken by new data, and the lease a receive asks for.

use std::sync::Arc;
use std::time::Duration;

use protocol::ops::group::GroupMode;
use protocol::ops::produce::PartitionSelector;

use super::super::queue::{receive, ReceiveRequest};
use super::super::testing::TestBroker;
use super::{create, join, member, produce};

fn pull(member_id: &str, max_wait_ms: u32) -> ReceiveRequest {
    ReceiveRequest {
        group: "w".into(),
        topic: "q".into(),
        member_id: member_id.into(),
        max_messages: 10,
        max_bytes: 1 << 20,
        max_wait_ms,
        lease_ms: None,
    }
}

#[tokio::test]
async fn only_a_known_member_of_a_queue_group_of_the_topic_pulls() {
    let mut t = TestBroker::new();
    t.ok(create("q", 1, &[])).await;
    t.ok(create("other", 1, &[])).await;
    let b = t.broker.clone();
    let code = |r: Result<_, crate::error::BrokerError>| r.map(|_| ()).unwrap_err().code().name();
    assert_eq!(
        code(receive(b.clone(), pull("m", 0)).await),
        "unknown_group"
    );
    let (member_id, _, _) = member(t.ok(join("w", "q", GroupMode::Queue)).await);
    assert_eq!(
        code(receive(b.clone(), pull("stranger", 0)).await),
        "unknown_member"
    );
    let wrong_topic = ReceiveRequest {
        topic: "other".into(),
        ..pull(&member_id, 0)
    };
    assert_eq!(
        code(receive(b.clone(), wrong_topic).await),
        "invalid_request"
    );
    let nothing = ReceiveRequest {
        max_messages: 0,
        ..pull(&member_id, 0)
    };
    assert_eq!(code(receive(b.clone(), nothing).await), "invalid_request");
    assert!(receive(b, pull(&member_id, 0)).await.unwrap().is_empty());
    // Authorized as the Subscribe of the same member would be.
    assert!(matches!(
        pull(&member_id, 0).authorized_as(),
        protocol::Request::Subscribe(_)
    ));
}

#[tokio::test]
async fn a_waiting_receive_answers_when_a_message_arrives() {
    let mut t = TestBroker::new();
    t.ok(create("q", 1, &[])).await;
    let (member_id, _, _) = member(t.ok(join("w", "q", GroupMode::Queue)).await);
    let waiting = tokio::spawn(receive(t.broker.clone(), pull(&member_id, 20_000)));
    t.ok(produce("q", PartitionSelector::Partition(0), &["late"]))
        .await;
    let pulled = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("answered once the message came, long before its wait")
        .unwrap()
        .unwrap();
    assert_eq!(pulled.len(), 1);
    assert_eq!(
        (
            pulled[0].from_offset,
            pulled[0].to_offset,
            pulled[0].attempt
        ),
        (0, 1, 1)
    );
}

#[tokio::test]
async fn a_receive_may_ask_for_its_own_lease() {
    let mut t = TestBroker::new();
    t.ok(create("q", 1, &[("ack_deadline_ms", "600000")])).await;
    let (member_id, _, _) = member(t.ok(join("w", "q", GroupMode::Queue)).await);
    t.ok(produce("q", PartitionSelector::Partition(0), &["job"]))
        .await;
    let short = ReceiveRequest {
        lease_ms: Some(1_000),
        ..pull(&member_id, 0)
    };
    assert_eq!(receive(t.broker.clone(), short).await.unwrap().len(), 1);
    let group: Arc<crate::queue::QueueGroup> = t.broker.queues.get("w").unwrap();
    assert_eq!(group.counts(0).in_flight, 1);
    // Past the receive's lease (not the group's ten minutes) the message is expired
    // by the dispatcher and waits for its retry.
    t.clock.advance(1_001);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while group.counts(0).in_flight > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease never ran out"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(group.counts(0).waiting_retry, 1);
}
