//! The broker's wire protocol: the one definition of every byte that crosses a
//! connection between a client and `brokerd`, and of the record-batch layout that the
//! storage log keeps on disk.
//!
//! This crate is pure encode/decode. It owns no sockets, spawns no tasks and never
//! blocks: callers hand it bytes and get typed values back (or the reverse). It must
//! never panic or allocate unboundedly on bytes that came from the network.

#![warn(missing_docs)]

pub mod batch;
