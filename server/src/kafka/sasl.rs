//! SaslHandshake and SaslAuthenticate: Kafka clients log in with the broker's own
//! users (`__users`) and exchange ([`crate::security::login`], the one the native
//! listener runs), so a Kafka client is the same principal, under the same ACLs, as
//! a native one with the same name. PLAIN, which sends the password itself, is
//! offered only when the listener speaks TLS (`[tls]`: `SASL_SSL`); in plaintext
//! only SCRAM-SHA-256 is. A verified TLS client certificate logs the connection in
//! without SASL, as on the native listener (`security.protocol=SSL` with a
//! keystore).
//!
//! A failure is answered SASL_AUTHENTICATION_FAILED after the broker's failure delay
//! and the connection closes, as the native listener does; the reason goes to the
//! audit log, never the client's input. SaslHandshake v0 is answered (librdkafka
//! wants it listed) but the raw tokens a v0 client sends next are a framing of their
//! own, not served: they close the connection as garbage; clients use v1 and
//! SaslAuthenticate.

use kafka_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use kafka_protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;
use kafka_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use kafka_protocol::messages::sasl_handshake_response::SaslHandshakeResponse;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as K;
use protocol::ops::security::AuthenticateRequest;

use super::session::Session;
use crate::security::login::{Refusal, Step};
use crate::stats::Closed;

/// The mechanisms offered on this connection: those the broker offers, PLAIN only
/// over TLS.
fn offered(s: &Session) -> Vec<&'static str> {
    crate::security::MECHANISMS
        .iter()
        .copied()
        .filter(|m| (s.tls || *m != auth::plain::MECHANISM) && s.broker.security.offers(m))
        .collect()
}

/// SaslHandshake: picks the mechanism the next SaslAuthenticate uses.
pub fn handshake(s: &mut Session, r: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let offered = offered(s);
    let listed = offered
        .iter()
        .map(|m| StrBytes::from_static_str(m))
        .collect();
    let answer = SaslHandshakeResponse::default().with_mechanisms(listed);
    if !s.broker.security.enabled() || !offered.contains(&r.mechanism.as_str()) {
        return answer.with_error_code(K::UnsupportedSaslMechanism.code());
    }
    if !s.unauthenticated || s.mechanism.is_some() {
        return answer.with_error_code(K::IllegalSaslState.code());
    }
    s.mechanism = Some(r.mechanism.to_string());
    answer
}

/// SaslAuthenticate: one step of the exchange the handshake chose.
pub async fn authenticate(s: &mut Session, r: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    let Some(mechanism) = s.mechanism.clone() else {
        s.close_after_answer = true;
        return SaslAuthenticateResponse::default()
            .with_error_code(K::IllegalSaslState.code())
            .with_error_message(Some(StrBytes::from_static_str("SaslHandshake first")));
    };
    let security = s.broker.security.clone();
    let address = s.peer.ip();
    let step = AuthenticateRequest {
        mechanism: mechanism.clone(),
        payload: r.auth_bytes,
    };
    let outcome = if security.blocked(address) {
        Err(Refusal::Failed("too many failures from this address"))
    } else {
        s.login.step(&security, s.tls, &step)
    };
    let remote = s.peer;
    match outcome {
        Ok(Step::Continue(answer)) => {
            // librdkafka repeats its nonce in the client-final; Kafka accepts it.
            s.login.accept_repeated_client_nonce();
            SaslAuthenticateResponse::default().with_auth_bytes(answer.payload)
        }
        Ok(Step::Done(answer, principal)) => {
            tracing::info!(target: "audit", op = "Authenticate", listener = "kafka", principal = %principal.name, mechanism = principal.by.name(), %remote, "authenticated");
            s.mechanism = None;
            s.authenticated(principal);
            SaslAuthenticateResponse::default().with_auth_bytes(answer.payload)
        }
        Err(refusal) => {
            let why = match refusal {
                Refusal::Failed(why) => why,
                Refusal::Again => "a second exchange on an authenticated connection",
            };
            let mechanism = crate::security::MECHANISMS
                .iter()
                .find(|m| **m == mechanism)
                .copied()
                .unwrap_or("unknown");
            tracing::info!(target: "audit", op = "Authenticate", listener = "kafka", %remote, mechanism, reason = why, "authentication failed");
            security.failed(address);
            s.broker.stats.count_closed(Closed::AuthenticationFailed);
            tokio::time::sleep(security.failure_delay()).await;
            s.close_after_answer = true;
            SaslAuthenticateResponse::default()
                .with_error_code(K::SaslAuthenticationFailed.code())
                .with_error_message(Some(StrBytes::from_static_str("authentication failed")))
        }
    }
}
