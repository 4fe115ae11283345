//! PLAIN: arbitrary bytes through the parser and the check against a stored verifier.
//! Nothing may panic, and whatever parses must satisfy the limits it promises.
#![no_main]

use std::sync::OnceLock;

use auth::plain;
use auth::scram::StoredCredential;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = plain::parse(data) {
        assert!(!message.authcid.is_empty() && message.authcid.len() <= auth::MAX_USER_NAME_BYTES);
        assert!(!message.password.is_empty() && message.password.len() <= auth::MAX_PASSWORD_BYTES);
        assert!(message.authzid.is_none_or(|a| a == message.authcid));
        // One derivation per parsed input: slow, so only for what parses.
        static DECOY: OnceLock<Option<StoredCredential>> = OnceLock::new();
        let decoy = DECOY.get_or_init(|| {
            StoredCredential::derive("decoy", b"salt", auth::scram::MIN_ITERATIONS).ok()
        });
        let Some(decoy) = decoy else { return };
        let result = plain::authenticate(data, |_| None, decoy);
        assert!(result.is_err(), "an unknown user authenticated");
    }
});
