//! SCRAM handshake: arbitrary bytes through both sides' state machines. The first
//! byte picks the route, the next two where the input splits into two messages:
//! - the server's start, then (if it accepted) its finish on the second part;
//! - a well-formed start with fixed nonces, then finish on the whole rest, so the
//!   fuzzer can reach the proof check (the combined nonce is `abc` + `XYZ`);
//! - the client's respond, then (if it accepted) its verify.
//!
//! Nothing may panic, and a finish on bytes the fuzzer made must never authenticate.
#![no_main]

use auth::scram::{ClientExchange, ScramServer, StoredCredential};
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let Some((&route, rest)) = data.split_first() else {
        return;
    };
    let Some((split, rest)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let at = usize::from(u16::from_le_bytes(*split)).min(rest.len());
    let (first, last) = rest.split_at(at);

    let mut rng = StdRng::seed_from_u64(0);
    let server = ScramServer::new(&mut rng);
    // Fixed keys rather than a derivation: PBKDF2 on every run would cut the fuzzer's
    // speed a hundredfold, and the keys' origin does not matter to the parsers.
    let credential = || {
        StoredCredential::from_parts(
            b"salt".to_vec(),
            auth::scram::MIN_ITERATIONS,
            [1; 32],
            [2; 32],
        )
        .ok()
    };
    match route % 3 {
        0 => {
            if let Ok((exchange, reply)) = server.start(first, |_| credential(), &mut rng) {
                assert!(reply.len() <= auth::scram::MAX_MESSAGE_BYTES);
                assert!(
                    exchange.finish(last).is_err(),
                    "a made-up proof authenticated"
                );
            }
        }
        1 => {
            let started = server.start_with_nonce(b"n,,n=user,r=abc", |_| credential(), "XYZ");
            if let Ok((exchange, _)) = started {
                assert!(
                    exchange.finish(rest).is_err(),
                    "a made-up proof authenticated"
                );
            }
        }
        _ => {
            let Ok((client, _)) = ClientExchange::with_nonce("user", "pencil", "abc") else {
                return;
            };
            if let Ok((client, _)) = client.respond(first) {
                let _ = client.verify(last);
            }
        }
    }
});
