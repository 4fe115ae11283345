//! One module per broker. `brokerd` is always built; peers only with their feature.

pub mod brokerd;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
#[cfg(feature = "redis")]
pub mod redis;
