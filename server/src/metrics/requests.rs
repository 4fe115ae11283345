//! Requests answered and errors, by operation and error code: a fixed table of
//! atomics, sized once from the protocol's lists of operations and codes, so counting
//! an answer is an index and one or two relaxed atomic adds (no map, no lock, no
//! allocation). The label sets are bounded by those lists.

use std::sync::atomic::{AtomicU64, Ordering};

use protocol::{ErrorCode, OpCode};

use crate::handlers::Answer;

/// The slot of an operation code the protocol does not define (counted as
/// `op="unknown"`).
const UNKNOWN_OP: u8 = 0;

/// Answers by operation, and error answers by operation and code.
#[derive(Debug)]
pub struct Requests {
    /// The slot of each wire op code (index into `answered`), `UNKNOWN_OP` for any
    /// code not defined.
    op_slot: Box<[u8]>,
    /// The slot of each wire error code (index into a row of `failed`).
    code_slot: Box<[u8]>,
    /// Answers per op slot; slot 0 is the unknown operation, slot `i + 1` is
    /// `OpCode::ALL[i]`.
    answered: Box<[AtomicU64]>,
    /// Error answers, `op slot * ErrorCode::ALL.len() + code slot`.
    failed: Box<[AtomicU64]>,
}

impl Default for Requests {
    fn default() -> Self {
        Requests::new()
    }
}

impl Requests {
    /// All counts zero.
    pub fn new() -> Requests {
        // Slots are bytes: the protocol has far fewer operations and codes than 255.
        const _: () = assert!(OpCode::ALL.len() < u8::MAX as usize);
        const _: () = assert!(ErrorCode::ALL.len() < u8::MAX as usize);
        let max_op = OpCode::ALL.iter().map(|o| *o as usize).max().unwrap_or(0);
        let mut op_slot = vec![UNKNOWN_OP; max_op + 1];
        for (i, op) in OpCode::ALL.iter().enumerate() {
            op_slot[*op as usize] = (i + 1) as u8;
        }
        let max_code = ErrorCode::ALL
            .iter()
            .map(|c| *c as usize)
            .max()
            .unwrap_or(0);
        let mut code_slot = vec![0u8; max_code + 1];
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            code_slot[*code as usize] = i as u8;
        }
        let ops = OpCode::ALL.len() + 1;
        Requests {
            op_slot: op_slot.into(),
            code_slot: code_slot.into(),
            answered: (0..ops).map(|_| AtomicU64::new(0)).collect(),
            failed: (0..ops * ErrorCode::ALL.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    fn slot(&self, op: u16) -> usize {
        usize::from(
            self.op_slot
                .get(usize::from(op))
                .copied()
                .unwrap_or(UNKNOWN_OP),
        )
    }

    /// Counts the answer to one request of wire operation `op`.
    pub fn count(&self, op: u16, answer: &Answer) {
        let slot = self.slot(op);
        self.answered[slot].fetch_add(1, Ordering::Relaxed);
        if let Err(error) = answer {
            self.count_error(slot, error.code());
        }
    }

    fn count_error(&self, slot: usize, code: ErrorCode) {
        let code = usize::from(self.code_slot[code as usize]);
        self.failed[slot * ErrorCode::ALL.len() + code].fetch_add(1, Ordering::Relaxed);
    }

    /// Answers so far, per operation name (`unknown` for undefined codes), every
    /// operation listed.
    pub fn answered(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.answered
            .iter()
            .enumerate()
            .map(|(slot, n)| (op_name(slot), n.load(Ordering::Relaxed)))
    }

    /// Error answers so far, per operation and code name; only pairs that occurred.
    pub fn failed(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        let codes = ErrorCode::ALL.len();
        self.failed.iter().enumerate().filter_map(move |(i, n)| {
            let n = n.load(Ordering::Relaxed);
            (n > 0).then(|| (op_name(i / codes), ErrorCode::ALL[i % codes].name(), n))
        })
    }
}

fn op_name(slot: usize) -> &'static str {
    match slot.checked_sub(1) {
        Some(i) => OpCode::ALL[i].name(),
        None => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::BrokerError;
    use protocol::ops::{Empty, Response};

    #[test]
    fn answers_are_counted_by_operation_and_errors_by_code() {
        let requests = Requests::new();
        let produce = OpCode::Produce as u16;
        requests.count(produce, &Ok(Response::CreateTopic(Empty)));
        requests.count(produce, &Err(BrokerError::UnknownTopic("t".into())));
        requests.count(9_999, &Err(BrokerError::UnknownTopic("t".into())));
        let answered: Vec<_> = requests.answered().filter(|(_, n)| *n > 0).collect();
        assert_eq!(answered, [("unknown", 1), ("Produce", 2)]);
        let failed: Vec<_> = requests.failed().collect();
        assert_eq!(
            failed,
            [
                ("unknown", "unknown_topic", 1),
                ("Produce", "unknown_topic", 1)
            ]
        );
        assert_eq!(requests.answered().count(), OpCode::ALL.len() + 1);
    }
}
