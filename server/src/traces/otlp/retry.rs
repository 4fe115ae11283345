//! What an export attempt's outcome means (sent, retry, give up) and how long to wait
//! before a retry: pure.
//!
//! The classes are OTLP/HTTP's: 2xx is accepted (perhaps partially: the answer says
//! how many spans were rejected), 429, 502, 503 and 504 are worth retrying, as are
//! failures to connect or to answer in time; any other answer is final.

use std::time::Duration;

use hyper::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

/// How often, and after what waits, a failed export is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt, at most.
    pub max_retries: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first): doubling from
    /// `initial_backoff`, capped at `max_backoff`. No jitter: one exporter per broker
    /// does not stampede a collector.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// Whether retry number `retry` (0 for the first) may be made.
    pub fn allows(&self, retry: u32) -> bool {
        retry < self.max_retries
    }
}

/// What an attempt's outcome means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The collector took the request; it refused `rejected` of its spans.
    Accepted {
        /// Spans the collector said it rejected (a partial success).
        rejected: u64,
        /// Why, when it said.
        message: String,
    },
    /// Worth trying again: the collector is unreachable, slow or busy.
    Retry(String),
    /// Not worth trying again: the collector refused the request itself.
    Refused(String),
}

/// Judges an answer: its status and (for a success) its body, an
/// `ExportTraceServiceResponse` that may report a partial success.
pub fn judge_answer(status: StatusCode, body: &[u8]) -> Verdict {
    if status.is_success() {
        // An empty or unreadable body is a full success: the spec lets collectors
        // answer 200 with nothing, and the request was taken either way.
        let partial = ExportTraceServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success);
        return match partial {
            Some(p) => Verdict::Accepted {
                rejected: u64::try_from(p.rejected_spans).unwrap_or(0),
                message: p.error_message,
            },
            None => Verdict::Accepted {
                rejected: 0,
                message: String::new(),
            },
        };
    }
    let why = format!("the collector answered {status}");
    match status.as_u16() {
        429 | 502 | 503 | 504 => Verdict::Retry(why),
        _ => Verdict::Refused(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_millis(1000),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_never_overflows() {
        let p = policy();
        let waits: Vec<u128> = (0..5).map(|r| p.backoff(r).as_millis()).collect();
        assert_eq!(waits, [200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(1000));
        assert!(p.allows(0) && p.allows(2));
        assert!(!p.allows(3), "three retries, not four");
        let none = RetryPolicy {
            max_retries: 0,
            ..p
        };
        assert!(!none.allows(0));
    }

    #[test]
    fn answers_are_judged_as_otlp_http_says() {
        assert_eq!(
            judge_answer(StatusCode::OK, b""),
            Verdict::Accepted {
                rejected: 0,
                message: String::new()
            }
        );
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec();
        assert_eq!(
            judge_answer(StatusCode::OK, &partial),
            Verdict::Accepted {
                rejected: 2,
                message: "too old".into()
            }
        );
        assert!(matches!(
            judge_answer(StatusCode::OK, b"\xff\xff garbage"),
            Verdict::Accepted { rejected: 0, .. }
        ));
        for retry in [429, 502, 503, 504] {
            let status = StatusCode::from_u16(retry).unwrap();
            assert!(
                matches!(judge_answer(status, b""), Verdict::Retry(_)),
                "{retry}"
            );
        }
        for refused in [400, 401, 404, 413, 500] {
            let status = StatusCode::from_u16(refused).unwrap();
            let verdict = judge_answer(status, b"");
            assert!(
                matches!(verdict, Verdict::Refused(ref why) if why.contains(&refused.to_string())),
                "{refused}: {verdict:?}"
            );
        }
    }
}
