//! Group administration through the dispatch table: each change writes one audit
//! line naming the client and what changed.

use std::io::Write;
use std::sync::{Arc, Mutex};

use protocol::ops::group_admin::{
    DeleteGroupRequest, PurgeGroupRequest, ResetOffsetsRequest, ResetTarget,
};

use super::*;

/// Collects what the `audit` target writes.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn take(&self) -> Vec<String> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn group_changes_write_one_audit_line_each_with_the_client_and_what_changed() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_env_filter("audit=info")
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut t = TestBroker::new();
    t.ok(create("t", 2, &[])).await;
    t.ok(produce("t", PartitionSelector::Partition(1), &["a", "b"]))
        .await;
    t.ok(Request::ResetOffsets(ResetOffsetsRequest {
        group: "g".into(),
        topic: "t".into(),
        partition: None,
        to: ResetTarget::Latest,
    }))
    .await;
    let (member_id, _, _) = member(t.ok(join("q", "t", GroupMode::Queue)).await);
    let refused = t
        .code(Request::PurgeGroup(PurgeGroupRequest { group: "q".into() }))
        .await;
    assert_eq!(refused, "invalid_request", "it has a member");
    t.ok(Request::LeaveGroup(LeaveGroupRequest {
        group: "q".into(),
        member_id,
    }))
    .await;
    t.ok(Request::PurgeGroup(PurgeGroupRequest { group: "q".into() }))
        .await;
    t.ok(Request::DeleteGroup(DeleteGroupRequest {
        group: "g".into(),
    }))
    .await;

    // The topic's own creation is audited too (by the topic handlers); only the
    // group changes are counted here.
    let audit: Vec<String> = lines
        .take()
        .into_iter()
        .filter(|line| !line.contains("op=\"CreateTopic\""))
        .collect();
    assert_eq!(
        audit.len(),
        3,
        "one line per change, none for the refusal: {audit:#?}"
    );
    let expected = [
        (
            "ResetOffsets",
            "group=g topic=t to=latest offsets=[(0, 0), (1, 2)]",
        ),
        ("PurgeGroup", "group=q topic=t dropped=2"),
        ("DeleteGroup", "group=g topic=t"),
    ];
    for (line, (op, fields)) in audit.iter().zip(expected) {
        assert!(line.contains(" audit: "), "{line}");
        assert!(
            line.contains(&format!(
                "op=\"{op}\" client=test/1 principal=ANONYMOUS {fields}"
            )),
            "{line}"
        );
    }
}
