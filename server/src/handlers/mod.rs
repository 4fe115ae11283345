//! Request handlers, one module per family of operations. Each takes the broker and a
//! decoded request and returns a response or a [`BrokerError`]; none of them touches a
//! socket.

pub mod admin;
pub mod fetch;
pub mod groups;
pub mod produce;
pub mod stats;
