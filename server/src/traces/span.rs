//! The vocabulary of spans: what a span says happened ([`SpanName`]), which message it
//! is about ([`At`]), who a delivery went to ([`Recipient`]).

use super::Traced;

/// What a span says happened. The names are part of `__traces`' format
/// (`docs/storage.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanName {
    /// From receipt of a produce to the end of its append: the message's root span.
    Produce,
    /// The log write, below `produce`.
    Append,
    /// From the append until the message was durable.
    Durable,
    /// A publish choosing its destination topics.
    Route,
    /// A delivery to a consumer.
    Deliver,
    /// An ack of a queue delivery.
    Ack,
    /// A nack (or an expired deadline) of a queue delivery.
    Nack,
    /// The wait before a redelivery.
    Retry,
    /// The copy to the dead-letter topic.
    DeadLetter,
    /// A stream group's commit of an offset past a message it fetched.
    Commit,
}

impl SpanName {
    /// The name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanName::Produce => "produce",
            SpanName::Append => "append",
            SpanName::Durable => "durable",
            SpanName::Route => "route",
            SpanName::Deliver => "deliver",
            SpanName::Ack => "ack",
            SpanName::Nack => "nack",
            SpanName::Retry => "retry",
            SpanName::DeadLetter => "dead-letter",
            SpanName::Commit => "commit",
        }
    }
}

/// Where a message is stored: what its spans are about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: u32,
    /// Offset.
    pub offset: u64,
}

impl At<'_> {
    /// The attributes naming the message.
    pub(super) fn attributes(&self) -> Vec<(String, String)> {
        vec![
            ("topic".into(), self.topic.into()),
            ("partition".into(), self.partition.to_string()),
            ("offset".into(), self.offset.to_string()),
        ]
    }
}

/// Who a delivery went to.
#[derive(Clone, Copy)]
pub enum Recipient<'a> {
    /// A push subscription, to a stream group's member or to nobody in particular.
    Subscription {
        /// The subscription.
        id: u64,
        /// The stream group, if any.
        group: Option<&'a str>,
    },
    /// A queue group's member; `attempt` gives the delivery number of each offset.
    Queue {
        /// The queue group.
        group: &'a str,
        /// Deliveries so far of an offset, this one included.
        attempt: &'a dyn Fn(u64) -> u32,
    },
}

/// The traced records of an appended batch, for their `durable` spans.
#[derive(Debug)]
pub struct TracedAppend {
    pub(super) topic: String,
    pub(super) partition: u32,
    pub(super) records: Vec<Traced>,
    pub(super) appended_us: u64,
}

/// One destination a traced, published batch was appended to.
#[derive(Debug, Clone, Copy)]
pub struct RoutedTo<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: u32,
    /// Offset of the batch's first record there.
    pub base_offset: u64,
}
