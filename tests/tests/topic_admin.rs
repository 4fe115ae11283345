//! Topic administration through brokerctl, as a user runs it: refusals that name the
//! limit, topic directories that hold data, changing a topic after creation.

use integration_tests::{brokerctl, Brokerd};

/// A partition count beyond the limit is the request's fault: `invalid_config`
/// naming the limit, never `internal` or a message about the broker's own defaults.
#[test]
fn too_many_partitions_is_invalid_config_naming_the_limit() {
    let broker = Brokerd::start();
    let addr = broker.addr();
    for count in ["5000", "0"] {
        let (ok, out, err) = brokerctl(addr, &["topics", "create", "x", "--partitions", count], "");
        assert!(!ok, "created with {count} partitions: {out}");
        assert!(
            err.contains("(invalid_config)") && err.contains("partitions must be within 1..=1024"),
            "{err}"
        );
        assert!(
            !err.contains("internal") && !err.contains("topic_defaults"),
            "{err}"
        );
    }
    let (ok, out, err) = brokerctl(
        addr,
        &[
            "topics",
            "create",
            "x",
            "--partitions",
            "1",
            "--config",
            "segment_bytes=1",
        ],
        "",
    );
    assert!(
        !ok && err.contains("(invalid_config)") && err.contains("4096"),
        "{out}{err}"
    );
    let (ok, out, _) = brokerctl(addr, &["topics"], "");
    assert!(ok && !out.contains('x'), "nothing was created: {out}");
}
