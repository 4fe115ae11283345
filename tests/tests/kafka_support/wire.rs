//! Kafka requests on a raw socket, encoded and decoded by the `kafka-protocol` crate.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one request and reads its response body (after the response header).
pub async fn call<R: Encodable>(
    socket: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &R,
) -> Bytes {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("kafka_wire")))
        .encode(&mut body, key.request_header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    send_frame(socket, &body).await;
    let mut response = read_frame(socket)
        .await
        .expect("a response, not a closed connection");
    let header =
        ResponseHeader::decode(&mut response, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    response
}

pub async fn send_frame(socket: &mut TcpStream, body: &[u8]) {
    let mut frame = BytesMut::new();
    frame.put_u32(body.len() as u32);
    frame.put_slice(body);
    socket.write_all(&frame).await.unwrap();
}

/// One response frame, or `None` when the broker closed the connection.
pub async fn read_frame(socket: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    socket.read_exact(&mut size).await.ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
    socket.read_exact(&mut body).await.ok()?;
    Some(Bytes::from(body))
}

pub fn record(key: &[u8], value: &[u8]) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::copy_from_slice(key)),
        value: Some(Bytes::copy_from_slice(value)),
        headers: IndexMap::new(),
    }
}

pub fn kafka_batch(records: &[Record]) -> Bytes {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
    buf.freeze()
}

pub fn produce(topic: &str, records: Bytes, acks: i16) -> ProduceRequest {
    let partition = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(records));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![partition]);
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![topic])
}

/// An idempotent producer's id and epoch from InitProducerId (v4).
pub async fn init_producer_id(socket: &mut TcpStream) -> (i64, i16) {
    use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
    use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
    // The crate's default transactional id is "", not null.
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(-1)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    let mut body = call(socket, ApiKey::InitProducerId, 4, &request).await;
    let answer = InitProducerIdResponse::decode(&mut body, 4).unwrap();
    assert_eq!(answer.error_code, 0);
    (answer.producer_id.0, answer.producer_epoch)
}

/// One Kafka batch of `values` from an idempotent producer, starting at `base_sequence`.
pub fn sequenced_batch(producer: (i64, i16), base_sequence: i32, values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .zip(0..)
        .map(|(value, i)| {
            let mut r = record(b"k", value.as_bytes());
            // The crate's encoder keeps records in one batch while offset - sequence
            // stays the same.
            (r.producer_id, r.producer_epoch) = producer;
            (r.offset, r.sequence) = (i64::from(i), base_sequence.wrapping_add(i));
            r
        })
        .collect();
    kafka_batch(&records)
}
