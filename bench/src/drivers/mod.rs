//! One module per broker. `brokerd` is always built; peers, and brokerd's Kafka
//! listener through librdkafka, only with their feature.

pub mod brokerd;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "redis")]
pub mod redis;
