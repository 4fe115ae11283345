//! The Kafka listener on the wire, with requests and responses encoded and decoded by
//! the `kafka-protocol` crate: what it advertises, what it answers to an API it does
//! not serve, and what garbage and damaged batches get (a closed connection; a
//! refusal with nothing appended).

mod kafka_support;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::create_topics_response::CreateTopicsResponse;
use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::DeleteTopicsResponse;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::fetch_response::FetchResponse;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::list_offsets_response::ListOffsetsResponse;
use kafka_protocol::messages::produce_response::ProduceResponse;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;
use kafka_protocol::ResponseError;
use kafka_support::wire::{
    call, init_producer_id, kafka_batch, produce, read_frame, record, send_frame, sequenced_batch,
};
use kafka_support::{broker, native};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn api_versions_advertises_what_is_served_within_the_crates_versions() {
    let broker = broker();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let mut body = call(
        &mut socket,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    )
    .await;
    let answer = ApiVersionsResponse::decode(&mut body, 3).unwrap();
    assert_eq!(answer.error_code, 0);
    let served: Vec<i16> = answer.api_keys.iter().map(|k| k.api_key).collect();
    for key in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::ApiVersions,
    ] {
        assert!(
            served.contains(&(key as i16)),
            "{key:?} is not advertised: {served:?}"
        );
    }
    for k in &answer.api_keys {
        let key = ApiKey::try_from(k.api_key).unwrap();
        let range = key.valid_versions();
        assert!(
            range.min <= k.min_version && k.max_version <= range.max,
            "{key:?}"
        );
    }
    assert!(!served.contains(&(ApiKey::ElectLeaders as i16)));
}

#[tokio::test]
async fn an_api_not_served_is_answered_unsupported_version_and_the_connection_stays() {
    let broker = broker();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    // ElectLeaders v0, an API this listener does not serve: header, junk body.
    let mut request = BytesMut::new();
    request.put_i16(ApiKey::ElectLeaders as i16);
    request.put_i16(0);
    request.put_i32(41);
    request.put_i16(-1);
    request.put_slice(b"whatever the body");
    send_frame(&mut socket, &request).await;
    let mut body = read_frame(&mut socket)
        .await
        .expect("an answer, not a closed connection");
    assert_eq!(body.get_i32(), 41, "the correlation id");
    let answer = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(answer.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(!answer.api_keys.is_empty());
    // A key no Kafka version has, then a version past what is served: the same.
    for (key, version) in [(999i16, 0i16), (ApiKey::Metadata as i16, 99)] {
        let mut request = BytesMut::new();
        request.put_i16(key);
        request.put_i16(version);
        request.put_i32(42);
        request.put_i16(-1);
        send_frame(&mut socket, &request).await;
        let mut body = read_frame(&mut socket).await.expect("an answer");
        assert_eq!(body.get_i32(), 42);
        assert_eq!(
            ApiVersionsResponse::decode(&mut body, 0)
                .unwrap()
                .error_code,
            35
        );
    }
    // And the connection still serves.
    let mut body = call(
        &mut socket,
        ApiKey::ApiVersions,
        0,
        &ApiVersionsRequest::default(),
    )
    .await;
    assert_eq!(
        ApiVersionsResponse::decode(&mut body, 0)
            .unwrap()
            .error_code,
        0
    );
}

#[tokio::test]
async fn garbage_closes_the_connection_and_the_listener_serves_on() {
    let broker = broker();
    // A size over the cap: closed before anything is read or allocated.
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    socket.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert!(read_frame(&mut socket).await.is_none());
    // A size too small for a header.
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    send_frame(&mut socket, &[0, 3, 0]).await;
    assert!(read_frame(&mut socket).await.is_none());
    // A served API whose body does not decode.
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let mut request = BytesMut::new();
    request.put_i16(ApiKey::Metadata as i16);
    request.put_i16(1);
    request.put_i32(1);
    request.put_i16(-1);
    request.put_slice(&[0x00, 0x00, 0x00, 0x05, 0x00]);
    send_frame(&mut socket, &request).await;
    assert!(read_frame(&mut socket).await.is_none());
    assert_a_new_connection_is_served(broker.kafka_addr()).await;
}

/// `kafka-protocol`'s array decoders reserve room for the count a request announces
/// before decoding an element. An 18-byte DeleteRecords announcing 2^31 - 1 topics
/// (found by `server/fuzz`'s `kafka_request` target) asked for more memory than the
/// machine has, and a refused allocation aborted brokerd. Now it costs address space
/// only (`server/src/lazy_alloc.rs`): the request does not decode, its connection is
/// closed, and the broker serves on, many times over.
#[tokio::test]
async fn a_request_announcing_billions_of_elements_closes_its_connection_and_nothing_else() {
    let broker = broker();
    for _ in 0..20 {
        let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
        let mut request = BytesMut::new();
        request.put_i16(ApiKey::DeleteRecords as i16);
        request.put_i16(0);
        request.put_i32(1);
        request.put_i16(-1); // no client id
        request.put_i32(i32::MAX); // topics announced, none sent
        send_frame(&mut socket, &request).await;
        assert!(read_frame(&mut socket).await.is_none());
    }
    assert_a_new_connection_is_served(broker.kafka_addr()).await;
}

/// The listener answers an ApiVersions on a new connection: it survived whatever
/// came before.
async fn assert_a_new_connection_is_served(addr: &str) {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let mut body = call(
        &mut socket,
        ApiKey::ApiVersions,
        2,
        &ApiVersionsRequest::default(),
    )
    .await;
    let answer = ApiVersionsResponse::decode(&mut body, 2).unwrap();
    assert_eq!(answer.error_code, 0);
}

#[tokio::test]
async fn a_batch_failing_its_crc_is_refused_and_nothing_is_appended() {
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("crc", 1, &[]).await.unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let mut damaged = kafka_batch(&[record(b"k", b"value")]).to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x40;
    let mut body = call(
        &mut socket,
        ApiKey::Produce,
        9,
        &produce("crc", Bytes::from(damaged), -1),
    )
    .await;
    let answer = ProduceResponse::decode(&mut body, 9).unwrap();
    let partition = &answer.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 2, "CORRUPT_MESSAGE");
    let described = client.describe_topic("crc").await.unwrap();
    assert_eq!(described.partitions[0].end_offset, 0, "nothing appended");
}

#[tokio::test]
async fn acks_all_answers_base_offsets_and_list_offsets_finds_both_ends_and_times() {
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("acks", 1, &[]).await.unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    for (i, expected_base) in [(0, 0), (1, 2)] {
        let mut late = record(b"b", b"2");
        late.timestamp = 1_700_000_000_000 + 1000 * (i + 1);
        let batch = kafka_batch(&[record(b"a", b"1"), late]);
        let mut body = call(&mut socket, ApiKey::Produce, 9, &produce("acks", batch, -1)).await;
        let answer = ProduceResponse::decode(&mut body, 9).unwrap();
        let partition = &answer.responses[0].partition_responses[0];
        assert_eq!(
            (partition.error_code, partition.base_offset),
            (0, expected_base)
        );
    }
    let query = |timestamp: i64| {
        ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("acks")))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp)])])
    };
    let mut found = Vec::new();
    for timestamp in [-2, -1, 1_700_000_001_500, 0, 1_800_000_000_000] {
        let mut body = call(&mut socket, ApiKey::ListOffsets, 5, &query(timestamp)).await;
        let answer = ListOffsetsResponse::decode(&mut body, 5).unwrap();
        let partition = &answer.topics[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        found.push((partition.offset, partition.timestamp));
    }
    // Earliest, latest, the first record at or after 1.5 s (the second batch's
    // late record, offset 3), before every record: the first, and past every
    // record: -1, as Kafka answers (no such record). A record found by time comes
    // with its own timestamp; earliest and latest with -1, as on Kafka.
    assert_eq!(
        found,
        [
            (0, -1),
            (4, -1),
            (3, 1_700_000_002_000),
            (0, 1_700_000_000_000),
            (-1, -1)
        ]
    );
}

#[tokio::test]
async fn acks_zero_gets_no_response_and_the_records_are_appended() {
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("fire", 1, &[]).await.unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(9)
        .with_correlation_id(1)
        .encode(&mut body, ApiKey::Produce.request_header_version(9))
        .unwrap();
    produce("fire", kafka_batch(&[record(b"k", b"v")]), 0)
        .encode(&mut body, 9)
        .unwrap();
    send_frame(&mut socket, &body).await;
    // The next answer on the connection is the ApiVersions asked for after it: the
    // produce had none.
    let mut answer = call(
        &mut socket,
        ApiKey::ApiVersions,
        0,
        &ApiVersionsRequest::default(),
    )
    .await;
    assert_eq!(
        ApiVersionsResponse::decode(&mut answer, 0)
            .unwrap()
            .error_code,
        0
    );
    let described = client.describe_topic("fire").await.unwrap();
    assert_eq!(described.partitions[0].end_offset, 1);
}

#[tokio::test]
async fn create_topics_and_delete_topics_are_brokerd_topics() {
    let broker = broker();
    let client = native(&broker).await;
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let topic = |name: &'static str, partitions: i32, replication: i16| {
        CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(replication)
    };
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            topic("made", 3, 1),
            topic("replicated", 1, 3),
            topic("made", 1, -1),
        ]);
    let mut body = call(&mut socket, ApiKey::CreateTopics, 5, &request).await;
    let answer = CreateTopicsResponse::decode(&mut body, 5).unwrap();
    let codes: Vec<i16> = answer.topics.iter().map(|t| t.error_code).collect();
    // Created; INVALID_REPLICATION_FACTOR; TOPIC_ALREADY_EXISTS.
    assert_eq!(codes, [0, 38, 36]);
    assert_eq!(
        client
            .describe_topic("made")
            .await
            .unwrap()
            .partitions
            .len(),
        3
    );
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topic_names(vec![
            TopicName(StrBytes::from_static_str("made")),
            TopicName(StrBytes::from_static_str("never")),
        ]);
    let mut body = call(&mut socket, ApiKey::DeleteTopics, 4, &request).await;
    let answer = DeleteTopicsResponse::decode(&mut body, 4).unwrap();
    let codes: Vec<i16> = answer.responses.iter().map(|t| t.error_code).collect();
    // Deleted; UNKNOWN_TOPIC_OR_PARTITION.
    assert_eq!(codes, [0, 3]);
    assert!(client.describe_topic("made").await.is_err());
}

#[tokio::test]
async fn a_full_fetch_answers_the_other_partitions_with_their_ends_only() {
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("two", 2, &[]).await.unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    for partition in [0, 1] {
        let mut request = produce(
            "two",
            kafka_batch(&[record(b"k", b"v"), record(b"k", b"w")]),
            1,
        );
        request.topic_data[0].partition_data[0].index = partition;
        let mut body = call(&mut socket, ApiKey::Produce, 9, &request).await;
        let answer = ProduceResponse::decode(&mut body, 9).unwrap();
        assert_eq!(answer.responses[0].partition_responses[0].error_code, 0);
    }
    // The durable watermark may move just after the answer: wait until both
    // partitions are readable, natively.
    for partition in [0, 1] {
        let read = client
            .fetch("two", partition, 0, 1, std::time::Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(read.high_watermark, 2);
    }
    let partitions = (0..2)
        .map(|p| {
            FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        // Less than one batch: the first partition's batch is answered whole, the
        // second has no room left.
        .with_max_bytes(1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("two")))
            .with_partitions(partitions)]);
    let mut body = call(&mut socket, ApiKey::Fetch, 12, &request).await;
    let answer = FetchResponse::decode(&mut body, 12).unwrap();
    let got = &answer.responses[0].partitions;
    assert_eq!(got.len(), 2);
    let first = RecordBatchDecoder::decode_all(&mut got[0].records.clone().unwrap()).unwrap();
    assert_eq!(first[0].records.len(), 2);
    assert_eq!((got[0].error_code, got[0].high_watermark), (0, 2));
    assert_eq!((got[1].error_code, got[1].high_watermark), (0, 2));
    assert!(got[1].records.as_ref().is_none_or(|r| r.is_empty()));
}

/// Produces `batch` to partition 0 of `topic` with `acks = -1`: the error code and
/// base offset.
async fn produce_one(socket: &mut TcpStream, topic: &str, batch: Bytes) -> (i16, i64) {
    let mut body = call(socket, ApiKey::Produce, 9, &produce(topic, batch, -1)).await;
    first_partition_answer(&mut body)
}

/// The error code and base offset of the first partition in a v9 Produce answer.
fn first_partition_answer(body: &mut Bytes) -> (i16, i64) {
    let answer = ProduceResponse::decode(body, 9).unwrap();
    let partition = &answer.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

/// The values stored in partition 0 of `topic`, read natively from its start.
async fn stored_values(client: &client::Client, topic: &str) -> Vec<String> {
    let start = client.describe_topic(topic).await.unwrap().partitions[0].start_offset;
    let fetched = client
        .fetch(topic, 0, start, 1 << 20, std::time::Duration::ZERO)
        .await
        .unwrap();
    let mut records = std::collections::VecDeque::new();
    client::decode_records(0, fetched.batches, start, None, &mut records).unwrap();
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

#[tokio::test]
async fn an_idempotent_retry_is_answered_with_its_first_offset_and_stored_once() {
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("idem", 1, &[]).await.unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let producer = init_producer_id(&mut socket).await;
    assert!(producer.0 >= 1 && producer.1 == 0, "{producer:?}");
    let first = sequenced_batch(producer, 0, &["a", "b"]);
    assert_eq!(
        produce_one(&mut socket, "idem", first.clone()).await,
        (0, 0)
    );
    // Sequences count records: the next batch starts at 2.
    let second = sequenced_batch(producer, 2, &["c"]);
    assert_eq!(produce_one(&mut socket, "idem", second).await, (0, 2));
    // The retry of the first, as a client sends it when its answer was lost:
    // success (Kafka 3.x answers NONE) with the original offset, nothing stored.
    assert_eq!(produce_one(&mut socket, "idem", first).await, (0, 0));
    assert_eq!(stored_values(&client, "idem").await, ["a", "b", "c"]);
    // Another producer gets another id, and its own sequences.
    let other = init_producer_id(&mut socket).await;
    assert_ne!(other.0, producer.0);
    let batch = sequenced_batch(other, 0, &["d"]);
    assert_eq!(produce_one(&mut socket, "idem", batch).await, (0, 3));
}

#[tokio::test]
async fn a_sequence_gap_or_a_fenced_epoch_is_refused_with_nothing_appended() {
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("gap", 1, &[]).await.unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let producer = init_producer_id(&mut socket).await;
    let batch = sequenced_batch(producer, 0, &["a"]);
    assert_eq!(produce_one(&mut socket, "gap", batch).await, (0, 0));
    let skipping = sequenced_batch(producer, 5, &["lost"]);
    let (code, _) = produce_one(&mut socket, "gap", skipping).await;
    assert_eq!(code, ResponseError::OutOfOrderSequenceNumber.code());
    // The Java client bumps its epoch itself and starts over at 0: accepted, and
    // the old epoch is fenced from then on.
    let bumped = (producer.0, producer.1 + 1);
    let batch = sequenced_batch(bumped, 0, &["b"]);
    assert_eq!(produce_one(&mut socket, "gap", batch).await, (0, 1));
    let stale = sequenced_batch(producer, 1, &["stale"]);
    let (code, _) = produce_one(&mut socket, "gap", stale).await;
    assert_eq!(code, ResponseError::InvalidProducerEpoch.code());
    // An id this broker never handed out.
    let unknown = sequenced_batch((1 << 40, 0), 0, &["who"]);
    let (code, _) = produce_one(&mut socket, "gap", unknown).await;
    assert_eq!(code, ResponseError::UnknownProducerId.code());
    assert_eq!(stored_values(&client, "gap").await, ["a", "b"]);
}

#[tokio::test]
async fn transactions_are_refused_and_the_connection_stays() {
    use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
    use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("txn", 1, &[]).await.unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(StrBytes::from_static_str("tx-1").into()))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    let mut body = call(&mut socket, ApiKey::InitProducerId, 4, &request).await;
    let answer = InitProducerIdResponse::decode(&mut body, 4).unwrap();
    assert_eq!(
        answer.error_code,
        ResponseError::TransactionalIdAuthorizationFailed.code()
    );
    assert_eq!(answer.producer_id.0, -1);
    // A produce naming a transactional id, on the same connection.
    let request = produce("txn", kafka_batch(&[record(b"k", b"v")]), -1)
        .with_transactional_id(Some(StrBytes::from_static_str("tx-1").into()));
    let mut body = call(&mut socket, ApiKey::Produce, 9, &request).await;
    let answer = ProduceResponse::decode(&mut body, 9).unwrap();
    assert_eq!(
        answer.responses[0].partition_responses[0].error_code,
        ResponseError::TransactionalIdAuthorizationFailed.code()
    );
    assert!(stored_values(&client, "txn").await.is_empty());
}

#[tokio::test]
async fn a_duplicate_of_an_acknowledged_batch_is_dropped_after_a_kill_9_restart() {
    let mut broker = broker();
    let client = native(&broker).await;
    client.create_topic("crash", 1, &[]).await.unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let producer = init_producer_id(&mut socket).await;
    let mut sequence = 0;
    let mut acked = Vec::new();
    for i in 0..4 {
        let values = [format!("r{i}-0"), format!("r{i}-1")];
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let batch = sequenced_batch(producer, sequence, &values);
        let (code, base) = produce_one(&mut socket, "crash", batch.clone()).await;
        assert_eq!(code, 0);
        acked.push((batch, base));
        sequence += 2;
    }
    drop(socket);
    drop(client);
    broker.kill9();
    broker.restart();
    let client = native(&broker).await;
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    // The retries of the last acknowledged batches, after the restart: each one
    // answered with its first offset, none stored again.
    for (batch, base) in &acked {
        assert_eq!(
            produce_one(&mut socket, "crash", batch.clone()).await,
            (0, *base)
        );
    }
    let next = sequenced_batch(producer, sequence, &["after"]);
    assert_eq!(produce_one(&mut socket, "crash", next).await, (0, 8));
    let gap = sequenced_batch(producer, sequence + 5, &["gap"]);
    let (code, _) = produce_one(&mut socket, "crash", gap).await;
    assert_eq!(code, ResponseError::OutOfOrderSequenceNumber.code());
    assert_eq!(stored_values(&client, "crash").await.len(), 9);
    // A new id after the restart is not one handed out before it.
    let after = init_producer_id(&mut socket).await;
    assert!(after.0 > producer.0);
}

#[tokio::test]
async fn describe_configs_shows_topic_settings_under_kafkas_names_per_resource() {
    use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
    use kafka_protocol::messages::describe_configs_request::{
        DescribeConfigsRequest, DescribeConfigsResource,
    };
    use kafka_protocol::messages::describe_configs_response::DescribeConfigsResponse;
    let broker = broker();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    // Created with Kafka's name for a brokerd setting.
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("cfg")))
            .with_num_partitions(1)
            .with_replication_factor(-1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_static_str("60000")))])]);
    let mut body = call(&mut socket, ApiKey::CreateTopics, 5, &request).await;
    let answer = CreateTopicsResponse::decode(&mut body, 5).unwrap();
    assert_eq!(answer.topics[0].error_code, 0, "{:?}", answer.topics[0]);
    let resource = |kind: i8, name: &'static str, keys: Option<Vec<&'static str>>| {
        DescribeConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(StrBytes::from_static_str(name))
            .with_configuration_keys(
                keys.map(|k| k.into_iter().map(StrBytes::from_static_str).collect()),
            )
    };
    let request = DescribeConfigsRequest::default().with_resources(vec![
        resource(2, "cfg", None),
        resource(2, "missing", None),
        resource(2, "cfg", Some(vec!["retention.bytes"])),
        resource(4, "0", None),
        resource(8, "0", None),
    ]);
    let mut body = call(&mut socket, ApiKey::DescribeConfigs, 4, &request).await;
    let answer = DescribeConfigsResponse::decode(&mut body, 4).unwrap();
    let codes: Vec<i16> = answer.results.iter().map(|r| r.error_code).collect();
    // The topic; UNKNOWN_TOPIC_OR_PARTITION; the topic, one key; the broker;
    // INVALID_REQUEST for a broker logger.
    assert_eq!(codes, [0, 3, 0, 0, 42]);
    let value = |result: usize, name: &str| {
        answer.results[result]
            .configs
            .iter()
            .find(|c| c.name.as_str() == name)
            .and_then(|c| c.value.as_ref().map(|v| v.to_string()))
    };
    assert_eq!(value(0, "retention.ms").as_deref(), Some("60000"));
    assert_eq!(value(0, "retention.bytes").as_deref(), Some("-1"));
    assert_eq!(value(0, "cleanup.policy").as_deref(), Some("delete"));
    assert!(value(0, "segment.bytes").is_some());
    assert!(value(0, "max.message.bytes").is_some());
    assert!(value(0, "durability").is_some(), "brokerd's own keys too");
    assert_eq!(answer.results[2].configs.len(), 1);
    assert_eq!(value(3, "broker.id").as_deref(), Some("0"));
}

#[tokio::test]
async fn create_partitions_grows_a_topic_and_refuses_a_count_that_does_not() {
    use kafka_protocol::messages::create_partitions_request::{
        CreatePartitionsRequest, CreatePartitionsTopic,
    };
    use kafka_protocol::messages::create_partitions_response::CreatePartitionsResponse;
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("grow", 1, &[]).await.unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let topic = |name: &'static str, count: i32| {
        CreatePartitionsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_count(count)
    };
    let request = |topics, validate_only| {
        CreatePartitionsRequest::default()
            .with_timeout_ms(10_000)
            .with_validate_only(validate_only)
            .with_topics(topics)
    };
    let grown = request(vec![topic("grow", 3), topic("nowhere", 2)], false);
    let mut body = call(&mut socket, ApiKey::CreatePartitions, 3, &grown).await;
    let answer = CreatePartitionsResponse::decode(&mut body, 3).unwrap();
    let codes: Vec<i16> = answer.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [0, 3], "grown; UNKNOWN_TOPIC_OR_PARTITION");
    let partitions = |client: &client::Client| {
        let client = client.clone();
        async move {
            client
                .describe_topic("grow")
                .await
                .unwrap()
                .partitions
                .len()
        }
    };
    assert_eq!(partitions(&client).await, 3);
    let shrink = request(vec![topic("grow", 2)], false);
    let mut body = call(&mut socket, ApiKey::CreatePartitions, 3, &shrink).await;
    let answer = CreatePartitionsResponse::decode(&mut body, 3).unwrap();
    assert_eq!(answer.results[0].error_code, 37, "INVALID_PARTITIONS");
    let validate = request(vec![topic("grow", 5)], true);
    let mut body = call(&mut socket, ApiKey::CreatePartitions, 3, &validate).await;
    let answer = CreatePartitionsResponse::decode(&mut body, 3).unwrap();
    assert_eq!(answer.results[0].error_code, 0);
    assert_eq!(
        partitions(&client).await,
        3,
        "validate_only changes nothing"
    );
    // A new partition takes Kafka produces at once.
    let batch = kafka_batch(&[record(b"k", b"v")]);
    let mut request = produce("grow", batch, -1);
    request.topic_data[0].partition_data[0].index = 2;
    let mut body = call(&mut socket, ApiKey::Produce, 9, &request).await;
    let answer = ProduceResponse::decode(&mut body, 9).unwrap();
    assert_eq!(answer.responses[0].partition_responses[0].error_code, 0);
}

#[tokio::test]
async fn delete_records_moves_the_log_start_and_refuses_offsets_past_the_end() {
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::delete_records_response::DeleteRecordsResponse;
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("trim", 1, &[]).await.unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let records: Vec<_> = (0..5)
        .map(|i| record(b"k", format!("v{i}").as_bytes()))
        .collect();
    assert_eq!(
        produce_one(&mut socket, "trim", kafka_batch(&records)).await,
        (0, 0)
    );
    let delete = |partitions: Vec<(i32, i64)>| {
        DeleteRecordsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("trim")))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, offset)| {
                            DeleteRecordsPartition::default()
                                .with_partition_index(index)
                                .with_offset(offset)
                        })
                        .collect(),
                )])
    };
    let mut body = call(
        &mut socket,
        ApiKey::DeleteRecords,
        2,
        &delete(vec![(0, 3), (7, 1)]),
    )
    .await;
    let answer = DeleteRecordsResponse::decode(&mut body, 2).unwrap();
    let got: Vec<(i16, i64)> = answer.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.low_watermark))
        .collect();
    assert_eq!(
        got,
        [(0, 3), (3, -1)],
        "deleted below 3; UNKNOWN_TOPIC_OR_PARTITION"
    );
    let described = client.describe_topic("trim").await.unwrap();
    assert_eq!(described.partitions[0].start_offset, 3);
    assert_eq!(
        stored_values(&client, "trim")
            .await
            .first()
            .map(String::as_str),
        Some("v3")
    );
    let mut body = call(&mut socket, ApiKey::DeleteRecords, 2, &delete(vec![(0, 9)])).await;
    let answer = DeleteRecordsResponse::decode(&mut body, 2).unwrap();
    assert_eq!(
        answer.topics[0].partitions[0].error_code, 1,
        "OFFSET_OUT_OF_RANGE"
    );
    // -1: everything below the high watermark.
    let mut body = call(
        &mut socket,
        ApiKey::DeleteRecords,
        2,
        &delete(vec![(0, -1)]),
    )
    .await;
    let answer = DeleteRecordsResponse::decode(&mut body, 2).unwrap();
    let p = &answer.topics[0].partitions[0];
    assert_eq!((p.error_code, p.low_watermark), (0, 5));
}

/// A request frame, size prefix included: header with `correlation_id`, then the
/// body.
fn request_frame<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &R,
) -> Vec<u8> {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .encode(&mut body, key.request_header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[tokio::test]
async fn pipelined_requests_are_appended_and_answered_in_the_order_sent() {
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("pipe", 1, &[]).await.unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let producer = init_producer_id(&mut socket).await;
    // 40 requests written at once, before any answer is read: durable produces of
    // an idempotent producer (refused if they arrived out of step) between plain
    // durable produces, and in the middle an ApiVersions, ready at once but to be
    // written after the produces before it. More than `MAX_IN_FLIGHT`, so the
    // connection also stops reading while its queue is full, and goes on.
    const PRODUCES: i32 = 39;
    const VERSIONS_ID: i32 = 1000;
    let mut sent = Vec::new();
    let mut expected_ids = Vec::new();
    for i in 0..PRODUCES {
        let value = format!("v{i}");
        let batch = match i % 2 {
            0 => sequenced_batch(producer, i / 2, &[value.as_str()]),
            _ => kafka_batch(&[record(b"k", value.as_bytes())]),
        };
        sent.extend(request_frame(
            ApiKey::Produce,
            9,
            i,
            &produce("pipe", batch, -1),
        ));
        expected_ids.push(i);
        if i == PRODUCES / 2 {
            let versions = ApiVersionsRequest::default();
            sent.extend(request_frame(
                ApiKey::ApiVersions,
                0,
                VERSIONS_ID,
                &versions,
            ));
            expected_ids.push(VERSIONS_ID);
        }
    }
    socket.write_all(&sent).await.unwrap();
    let mut offsets = Vec::new();
    for expected in expected_ids {
        let mut frame = read_frame(&mut socket).await.expect("an answer");
        let (key, version) = match expected {
            VERSIONS_ID => (ApiKey::ApiVersions, 0),
            _ => (ApiKey::Produce, 9),
        };
        let header =
            ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
        assert_eq!(
            header.correlation_id, expected,
            "answers come in request order"
        );
        if key == ApiKey::Produce {
            let (error_code, base_offset) = first_partition_answer(&mut frame);
            assert_eq!(error_code, 0, "request {expected}");
            offsets.push(base_offset);
        }
    }
    // Appended in the order sent: request i holds offset i and value "v{i}".
    assert_eq!(offsets, (0..i64::from(PRODUCES)).collect::<Vec<_>>());
    let values: Vec<String> = (0..PRODUCES).map(|i| format!("v{i}")).collect();
    assert_eq!(stored_values(&client, "pipe").await, values);
}
