//! A kill -9 during Kafka-protocol production with `acks=all` loses no acknowledged
//! record: every record brokerd answered for is there after the restart, at the
//! offset it was answered with, with its value.

mod kafka_support;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::produce_response::ProduceResponse;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_support::wire::{call, kafka_batch, produce, record, send_frame};
use kafka_support::{broker, native};
use tokio::net::TcpStream;

/// Records produced and acknowledged before the kill.
const ACKED_RECORDS: usize = 40;
/// Requests sent without waiting for their answers just before the kill.
const UNANSWERED_REQUESTS: usize = 5;

#[tokio::test]
async fn a_kill_9_loses_no_record_acknowledged_with_acks_all() {
    let mut broker = broker();
    let client = native(&broker).await;
    client
        .create_topic("orders", 1, &[("durability", "always")])
        .await
        .unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..ACKED_RECORDS {
        let value = format!("order-{i}");
        let batch = kafka_batch(&[record(b"k", value.as_bytes())]);
        let mut body = call(
            &mut socket,
            ApiKey::Produce,
            9,
            &produce("orders", batch, -1),
        )
        .await;
        let answer = ProduceResponse::decode(&mut body, 9).unwrap();
        let partition = &answer.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 0);
        acked.push((partition.base_offset as u64, value));
    }
    // More in flight, unanswered, when the broker dies.
    for i in 0..UNANSWERED_REQUESTS {
        let value = format!("late-{i}");
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(9)
            .with_correlation_id(100 + i as i32)
            .encode(&mut body, ApiKey::Produce.request_header_version(9))
            .unwrap();
        produce("orders", kafka_batch(&[record(b"k", value.as_bytes())]), -1)
            .encode(&mut body, 9)
            .unwrap();
        send_frame(&mut socket, &body).await;
    }
    broker.kill9();
    drop(client);
    broker.restart();
    let client = native(&broker).await;
    let fetched = client
        .fetch("orders", 0, 0, 1 << 20, Duration::ZERO)
        .await
        .unwrap();
    let mut records = VecDeque::new();
    client::decode_records(0, fetched.batches, 0, None, &mut records).unwrap();
    assert!(
        records.len() >= ACKED_RECORDS,
        "{} records survived",
        records.len()
    );
    for (offset, value) in acked {
        let found = records
            .iter()
            .find(|r| r.offset == offset)
            .unwrap_or_else(|| panic!("acknowledged offset {offset} is gone"));
        assert_eq!(
            found.value.as_deref(),
            Some(value.as_bytes()),
            "offset {offset}"
        );
    }
}
