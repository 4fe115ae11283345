//! The idempotent producer's bookkeeping, pure: its id, the next sequence number of
//! each partition, which batches are still unanswered, and which failures are retried.
//!
//! A batch gets its `(producer id, sequence)` when it is first sent and keeps it for
//! every retry, so the broker can tell a retry from a new batch. A failure is retried
//! when the batch may still be stored or storable in order:
//! - the connection failed or the answer did not come in time: the broker may or may
//!   not have stored it, and a retry is answered either way;
//! - the broker answered `timeout` (stored, but not durable within `ack_timeout`): a
//!   retry is a duplicate, answered once the original is durable;
//! - `out_of_order_sequence` while an earlier batch of the same producer and
//!   partition is unanswered: that one is being retried, and this one follows it.
//!
//! Any other failure fails the batch for good, and its sequence may then be a hole
//! the broker would refuse everything after: the producer *starts over*, asking for a
//! new id (sequences from 0) once nothing is in flight.

use std::collections::{BTreeSet, HashMap};

use protocol::ops::produce::ProducerSequence;
use protocol::ErrorCode;

use crate::error::ClientError;

/// The producer id and sequences (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct Idempotence {
    /// `None` until `InitProducer` answered, and again after a start-over.
    producer_id: Option<u64>,
    next_sequence: HashMap<u32, u64>,
    /// `(producer id, partition, sequence)` of every batch sent and not yet finished.
    unanswered: BTreeSet<(u64, u32, u64)>,
    /// A batch failed for good: start over once nothing is unanswered.
    start_over: bool,
}

impl Idempotence {
    /// Whether a new producer id is needed before the next new batch: there is none
    /// yet, or a start-over is due (then only once nothing is
    /// [`unanswered`](Self::has_unanswered)).
    pub(super) fn needs_id(&self) -> bool {
        self.producer_id.is_none() || self.start_over
    }

    /// Some batch sent is not finished yet.
    pub(super) fn has_unanswered(&self) -> bool {
        !self.unanswered.is_empty()
    }

    /// Adopts a new producer id: every partition's sequence starts at 0 again.
    pub(super) fn set_producer_id(&mut self, producer_id: u64) {
        debug_assert!(self.unanswered.is_empty() || self.producer_id.is_none());
        self.producer_id = Some(producer_id);
        self.next_sequence.clear();
        self.start_over = false;
    }

    /// Tags a new batch for `partition` with the next sequence. `None` without an id.
    pub(super) fn tag(&mut self, partition: u32) -> Option<ProducerSequence> {
        let producer_id = self.producer_id?;
        let next = self.next_sequence.entry(partition).or_insert(0);
        let sequence = *next;
        *next += 1;
        self.unanswered.insert((producer_id, partition, sequence));
        Some(ProducerSequence {
            producer_id,
            sequence,
        })
    }

    /// Whether a failed batch should be sent again (it stays unanswered), rather than
    /// failed.
    pub(super) fn should_retry(
        &self,
        partition: u32,
        tag: ProducerSequence,
        error: &ClientError,
    ) -> bool {
        // The broker's own `timeout`: stored, not yet durable when the wait ended; a
        // retry is answered once it is.
        if error.is_connection_error() || error.code() == Some(ErrorCode::Timeout) {
            return true;
        }
        error.code() == Some(ErrorCode::OutOfOrderSequence)
            && self
                .unanswered
                .range((tag.producer_id, partition, 0)..(tag.producer_id, partition, tag.sequence))
                .next()
                .is_some()
    }

    /// A tagged batch is finished: answered, or failed for good (`failed`), which
    /// makes the producer start over.
    pub(super) fn finished(&mut self, partition: u32, tag: ProducerSequence, failed: bool) {
        self.unanswered
            .remove(&(tag.producer_id, partition, tag.sequence));
        if failed && Some(tag.producer_id) == self.producer_id {
            self.start_over = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: ErrorCode) -> ClientError {
        ClientError::Server {
            code,
            message: String::new(),
        }
    }

    #[test]
    fn sequences_count_per_partition_and_start_over_with_a_new_id() {
        let mut idem = Idempotence::default();
        assert!(idem.needs_id());
        assert_eq!(idem.tag(0), None);
        idem.set_producer_id(7);
        let a = idem.tag(0).unwrap();
        let b = idem.tag(0).unwrap();
        let c = idem.tag(1).unwrap();
        assert_eq!((a.sequence, b.sequence, c.sequence), (0, 1, 0));
        idem.finished(0, a, false);
        assert!(!idem.needs_id());
        idem.finished(0, b, true);
        assert!(idem.needs_id());
        assert!(idem.has_unanswered(), "wait for the old id's last batch");
        idem.finished(1, c, false);
        assert!(!idem.has_unanswered());
        idem.set_producer_id(8);
        assert_eq!(
            idem.tag(0).unwrap(),
            ProducerSequence {
                producer_id: 8,
                sequence: 0
            }
        );
    }

    #[test]
    fn lost_answers_are_retried_and_refusals_only_behind_an_earlier_retry() {
        let mut idem = Idempotence::default();
        idem.set_producer_id(1);
        let first = idem.tag(0).unwrap();
        let second = idem.tag(0).unwrap();
        let lost = ClientError::ConnectionLost { addr: "x".into() };
        assert!(idem.should_retry(0, first, &lost));
        assert!(idem.should_retry(0, first, &server(ErrorCode::Timeout)));
        let refused = server(ErrorCode::OutOfOrderSequence);
        assert!(idem.should_retry(0, second, &refused), "behind the first");
        assert!(!idem.should_retry(0, first, &refused), "nothing before it");
        assert!(!idem.should_retry(0, second, &server(ErrorCode::UnknownTopic)));
        idem.finished(0, first, false);
        assert!(!idem.should_retry(0, second, &refused));
    }
}
