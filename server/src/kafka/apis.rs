//! The supported-API table: which Kafka APIs, at which versions, this listener
//! serves. ApiVersions answers exactly this table, and [`crate::kafka::request`]
//! decodes only what it lists, so a client is never told of a version we would not
//! serve. Each range lies within what the `kafka-protocol` crate's generated code
//! supports (checked by a test); some stop below the crate's newest version where a
//! later one addresses topics by id, which brokerd's topics do not have.

use kafka_protocol::messages::ApiKey;

/// One supported API and its version range, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supported {
    /// The API.
    pub key: ApiKey,
    /// The oldest version served.
    pub min_version: i16,
    /// The newest version served.
    pub max_version: i16,
}

const fn api(key: ApiKey, min_version: i16, max_version: i16) -> Supported {
    Supported {
        key,
        min_version,
        max_version,
    }
}

/// Every API served, by key.
pub const SUPPORTED: &[Supported] = &[
    // v13 addresses topics by id.
    api(ApiKey::Produce, 3, 12),
    // v13 addresses topics by id.
    api(ApiKey::Fetch, 4, 12),
    // v7 adds the max-timestamp query and later ones tiered storage's.
    api(ApiKey::ListOffsets, 1, 6),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::CreateTopics, 2, 7),
    // v6 deletes topics by id.
    api(ApiKey::DeleteTopics, 1, 5),
    api(ApiKey::ApiVersions, 0, 3),
    // v5 and v6 are for transactions' and share groups' coordinators.
    api(ApiKey::FindCoordinator, 0, 4),
    // The classic protocol's; what comes after is KIP-848's ConsumerGroupHeartbeat.
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    // v9 carries KIP-848 member epochs, v10 topic ids.
    api(ApiKey::OffsetCommit, 2, 8),
    api(ApiKey::OffsetFetch, 1, 8),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::ListGroups, 0, 4),
    // librdkafka needs v0 listed to use SASL at all (then speaks v1). A v0 client
    // would send raw SASL tokens outside Kafka's framing next, which close the
    // connection as garbage.
    api(ApiKey::SaslHandshake, 0, 1),
    api(ApiKey::SaslAuthenticate, 0, 2),
    // Idempotent producers only: a transactional id is refused.
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DeleteRecords, 0, 2),
];

/// Whether `key` is served before a SASL exchange completed (everything else then
/// closes the connection, as Kafka's SASL listeners do).
pub fn before_login(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
    )
}

/// The range served for `key` at `version`, if it is served.
pub fn supported(key: ApiKey, version: i16) -> Option<Supported> {
    SUPPORTED
        .iter()
        .copied()
        .find(|s| s.key == key && (s.min_version..=s.max_version).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_is_within_the_crates() {
        for s in SUPPORTED {
            let crate_range = s.key.valid_versions();
            assert!(s.min_version <= s.max_version, "{:?}", s.key);
            assert!(
                crate_range.min <= s.min_version && s.max_version <= crate_range.max,
                "{:?}: {}..={} is outside the crate's {:?}",
                s.key,
                s.min_version,
                s.max_version,
                crate_range
            );
        }
    }

    #[test]
    fn keys_are_listed_once() {
        for (i, s) in SUPPORTED.iter().enumerate() {
            assert!(
                SUPPORTED[i + 1..].iter().all(|t| t.key != s.key),
                "{:?}",
                s.key
            );
        }
    }
}
