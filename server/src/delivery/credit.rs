//! Credit: how much a consumer lets the broker push before it asks for more.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// Messages and bytes the broker may still push to one consumer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Credit {
    /// Messages left.
    pub messages: u64,
    /// Bytes left.
    pub bytes: u64,
}

impl Credit {
    /// An initial credit, as a Subscribe grants it.
    pub fn new(messages: u32, bytes: u64) -> Credit {
        Credit {
            messages: u64::from(messages),
            bytes,
        }
    }

    /// Adds what a Credit request grants.
    pub fn grant(&mut self, messages: u32, bytes: u64) {
        self.messages = self.messages.saturating_add(u64::from(messages));
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// Takes off what a delivery carried. Bytes may go below what was left (one
    /// batch of overdraft): the credit then stops at zero.
    pub fn spend(&mut self, messages: u64, bytes: u64) {
        debug_assert!(
            messages <= self.messages,
            "a delivery never exceeds the message credit"
        );
        self.messages = self.messages.saturating_sub(messages);
        self.bytes = self.bytes.saturating_sub(bytes);
    }

    /// Whether another delivery may go out: some credit left in both units.
    pub fn allows_delivery(&self) -> bool {
        self.messages > 0 && self.bytes > 0
    }

    /// How many bytes to read for the next delivery: the byte credit, at most `cap`.
    pub fn read_bytes(&self, cap: usize) -> usize {
        self.bytes.clamp(1, cap.max(1) as u64) as usize
    }
}

/// A credit shared by a delivery task (which spends it) and the connection (which
/// grants more), with a wake-up when it changes.
#[derive(Debug, Default)]
pub struct CreditCell {
    state: Mutex<(Credit, bool)>,
    changed: Notify,
}

impl CreditCell {
    /// A cell holding `credit`.
    pub fn new(credit: Credit) -> CreditCell {
        CreditCell {
            state: Mutex::new((credit, false)),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (Credit, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Grants more and wakes the task.
    pub fn grant(&self, messages: u32, bytes: u64) {
        self.lock().0.grant(messages, bytes);
        self.changed.notify_one();
    }

    /// Closes the cell: [`available`](Self::available) returns `None` from now on.
    pub fn close(&self) {
        self.lock().1 = true;
        self.changed.notify_one();
    }

    /// Waits until a delivery may go out; `None` once closed.
    pub async fn available(&self) -> Option<Credit> {
        loop {
            let notified = self.changed.notified();
            {
                let (credit, closed) = *self.lock();
                if closed {
                    return None;
                }
                if credit.allows_delivery() {
                    return Some(credit);
                }
            }
            notified.await;
        }
    }

    /// Takes off what a delivery carried.
    pub fn spend(&self, messages: u64, bytes: u64) {
        self.lock().0.spend(messages, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_needs_both_units_and_saturates() {
        let mut credit = Credit::new(2, 100);
        assert!(credit.allows_delivery());
        credit.spend(1, 150);
        assert_eq!(
            credit,
            Credit {
                messages: 1,
                bytes: 0
            }
        );
        assert!(
            !credit.allows_delivery(),
            "the byte overdraft stops at zero"
        );
        credit.grant(u32::MAX, u64::MAX);
        assert_eq!(credit.bytes, u64::MAX);
        assert_eq!(credit.read_bytes(1 << 20), 1 << 20);
        assert_eq!(Credit::new(1, 10).read_bytes(1 << 20), 10);
    }

    #[tokio::test]
    async fn a_cell_wakes_its_task_on_grant_and_close() {
        let cell = std::sync::Arc::new(CreditCell::new(Credit::new(0, 10)));
        let waiter = cell.clone();
        let task = tokio::spawn(async move { waiter.available().await });
        tokio::task::yield_now().await;
        cell.grant(3, 0);
        assert_eq!(task.await.unwrap(), Some(Credit::new(3, 10)));
        cell.close();
        assert_eq!(cell.available().await, None);
    }
}
