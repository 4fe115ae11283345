//! RFC 7677's example, byte for byte on both sides, and property tests of whole
//! exchanges: honest ones succeed, every kind of wrong one fails the same way, and no
//! input panics.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

/// RFC 7677 section 3, the example exchange (user "user", password "pencil").
mod rfc7677 {
    pub const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    pub const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    pub const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    pub const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    pub const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    pub const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    pub const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
}

fn rfc_credential() -> StoredCredential {
    let salt = STANDARD.decode(rfc7677::SALT).unwrap();
    StoredCredential::derive("pencil", &salt, 4096).unwrap()
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[test]
fn rfc7677_example_client_side() {
    let (client, first) =
        ClientExchange::with_nonce("user", "pencil", rfc7677::CLIENT_NONCE).unwrap();
    assert_eq!(std::str::from_utf8(&first).unwrap(), rfc7677::CLIENT_FIRST);
    let (client, last) = client.respond(rfc7677::SERVER_FIRST.as_bytes()).unwrap();
    assert_eq!(std::str::from_utf8(&last).unwrap(), rfc7677::CLIENT_FINAL);
    client.verify(rfc7677::SERVER_FINAL.as_bytes()).unwrap();
}

#[test]
fn rfc7677_example_server_side() {
    let server = ScramServer::new(&mut rng(0));
    let lookup = |user: &str| (user == "user").then(rfc_credential);
    let (exchange, first) = server
        .start_with_nonce(
            rfc7677::CLIENT_FIRST.as_bytes(),
            lookup,
            rfc7677::SERVER_NONCE,
        )
        .unwrap();
    assert_eq!(std::str::from_utf8(&first).unwrap(), rfc7677::SERVER_FIRST);
    assert_eq!(exchange.claimed_user(), "user");
    let (authenticated, last) = exchange.finish(rfc7677::CLIENT_FINAL.as_bytes()).unwrap();
    assert_eq!(std::str::from_utf8(&last).unwrap(), rfc7677::SERVER_FINAL);
    assert_eq!(authenticated.user, "user");
}

#[test]
fn a_client_refuses_a_forged_server_signature_or_an_error() {
    let (client, _) = ClientExchange::with_nonce("user", "pencil", rfc7677::CLIENT_NONCE).unwrap();
    let (client, _) = client.respond(rfc7677::SERVER_FIRST.as_bytes()).unwrap();
    let forged = format!("v={}", STANDARD.encode([0u8; 32]));
    assert_eq!(
        client.verify(forged.as_bytes()),
        Err(ScramError::ServerSignatureMismatch)
    );

    let (client, _) = ClientExchange::with_nonce("user", "pencil", rfc7677::CLIENT_NONCE).unwrap();
    let (client, _) = client.respond(rfc7677::SERVER_FIRST.as_bytes()).unwrap();
    let rejected = ScramError::ServerRejected {
        reason: "invalid-proof".into(),
    };
    assert_eq!(client.verify(b"e=invalid-proof"), Err(rejected));

    let (client, _) = ClientExchange::with_nonce("user", "pencil", rfc7677::CLIENT_NONCE).unwrap();
    let (client, _) = client.respond(rfc7677::SERVER_FIRST.as_bytes()).unwrap();
    let hostile = format!("e=a\u{1b}[2Jb\n{}", "x".repeat(500));
    let Err(ScramError::ServerRejected { reason }) = client.verify(hostile.as_bytes()) else {
        panic!("accepted")
    };
    assert!(
        reason.starts_with("a[2Jbxx") && reason.len() == 64,
        "{reason:?}"
    );
}

#[test]
fn a_client_refuses_a_nonce_that_does_not_extend_its_own() {
    let respond = |server_first: &str| {
        let (client, _) = ClientExchange::with_nonce("user", "pencil", "abc").unwrap();
        client.respond(server_first.as_bytes()).map(|_| ())
    };
    assert_eq!(
        respond("r=abc,s=QQ==,i=4096"),
        Err(ScramError::NonceMismatch)
    );
    assert_eq!(
        respond("r=xbcdef,s=QQ==,i=4096"),
        Err(ScramError::NonceMismatch)
    );
    assert_eq!(
        respond("r=ab,s=QQ==,i=4096"),
        Err(ScramError::NonceMismatch)
    );
    assert!(respond("r=abcd,s=QQ==,i=4096").is_ok());
    assert!(matches!(
        respond("r=abcd,s=QQ==,i=2000000"),
        Err(ScramError::TooManyIterations { .. })
    ));
}

#[test]
fn the_server_checks_binding_and_nonce_of_the_client_final() {
    let server = ScramServer::new(&mut rng(0));
    let start = || {
        server
            .start_with_nonce(
                rfc7677::CLIENT_FIRST.as_bytes(),
                |_| Some(rfc_credential()),
                rfc7677::SERVER_NONCE,
            )
            .unwrap()
            .0
    };
    let proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    // "eSws" is base64 of "y,,": not the header the client sent.
    let wrong_binding = format!("c=eSws,r={nonce},{proof}");
    assert_eq!(
        start().finish(wrong_binding.as_bytes()).unwrap_err(),
        ScramError::ChannelBindingMismatch
    );
    let wrong_nonce = format!("c=biws,r={nonce}x,{proof}");
    assert_eq!(
        start().finish(wrong_nonce.as_bytes()).unwrap_err(),
        ScramError::NonceMismatch
    );
}

/// A client other than ours: flag `y` and an authzid naming itself, so the GS2 header
/// that `c=` must repeat is not the usual `n,,`. Computed here from the RFC's formulas.
#[test]
fn a_y_flag_client_naming_itself_authenticates() {
    use crate::crypto;
    let server = ScramServer::new(&mut rng(0));
    let client_first = "y,a=user,n=user,r=abc";
    let (exchange, server_first) = server
        .start_with_nonce(client_first.as_bytes(), |_| Some(rfc_credential()), "XYZ")
        .unwrap();
    let server_first = String::from_utf8(server_first).unwrap();
    let without_proof = format!("c={},r=abcXYZ", STANDARD.encode("y,a=user,"));
    let auth_message = format!("n=user,r=abc,{server_first},{without_proof}");
    let salt = STANDARD.decode(rfc7677::SALT).unwrap();
    let keys = crypto::derive_keys(b"pencil", &salt, 4096);
    let signature = crypto::hmac(&keys.stored_key, &[auth_message.as_bytes()]);
    let proof = crypto::xor(&keys.client_key, &signature);
    let client_final = format!("{without_proof},p={}", STANDARD.encode(proof));
    let (who, server_final) = exchange.finish(client_final.as_bytes()).unwrap();
    assert_eq!(who.user, "user");
    let expected = crypto::hmac(&keys.server_key, &[auth_message.as_bytes()]);
    assert_eq!(
        server_final,
        format!("v={}", STANDARD.encode(expected)).into_bytes()
    );
}

/// librdkafka's client-final: `r=` is its own nonce and then the combined one. The
/// proof is over the message as sent. Refused unless the exchange accepts it; even
/// then a nonce without the server's part, or with the client's part three times,
/// is refused.
#[test]
fn librdkafkas_repeated_client_nonce_is_accepted_only_when_asked_for() {
    use crate::crypto;
    let finish = |nonce: &str, lenient: bool| {
        let server = ScramServer::new(&mut rng(0));
        let client_first = "n,,n=user,r=abc";
        let (mut exchange, server_first) = server
            .start_with_nonce(client_first.as_bytes(), |_| Some(rfc_credential()), "XYZ")
            .unwrap();
        if lenient {
            exchange.accept_repeated_client_nonce();
        }
        let server_first = String::from_utf8(server_first).unwrap();
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("n=user,r=abc,{server_first},{without_proof}");
        let salt = STANDARD.decode(rfc7677::SALT).unwrap();
        let keys = crypto::derive_keys(b"pencil", &salt, 4096);
        let signature = crypto::hmac(&keys.stored_key, &[auth_message.as_bytes()]);
        let proof = crypto::xor(&keys.client_key, &signature);
        let client_final = format!("{without_proof},p={}", STANDARD.encode(proof));
        exchange
            .finish(client_final.as_bytes())
            .map(|(who, _)| who.user)
    };
    assert_eq!(finish("abcXYZ", false).unwrap(), "user");
    assert_eq!(
        finish("abcabcXYZ", false).unwrap_err(),
        ScramError::NonceMismatch
    );
    assert_eq!(finish("abcabcXYZ", true).unwrap(), "user");
    assert_eq!(finish("abcXYZ", true).unwrap(), "user");
    assert_eq!(
        finish("abcabc", true).unwrap_err(),
        ScramError::NonceMismatch
    );
    assert_eq!(
        finish("abcabcabcXYZ", true).unwrap_err(),
        ScramError::NonceMismatch
    );
    assert_eq!(
        finish("zzzabcXYZ", true).unwrap_err(),
        ScramError::NonceMismatch
    );
}

#[test]
fn users_with_commas_and_equals_round_trip() {
    let mut rng = rng(7);
    let credential = StoredCredential::generate("pw", MIN_ITERATIONS, &mut rng).unwrap();
    let server = ScramServer::new(&mut rng);
    let (client, first) = ClientExchange::new("a=b,c", "pw", &mut rng).unwrap();
    assert!(std::str::from_utf8(&first)
        .unwrap()
        .starts_with("n,,n=a=3Db=2Cc,r="));
    let (exchange, first) = server
        .start(
            &first,
            |u| (u == "a=b,c").then(|| credential.clone()),
            &mut rng,
        )
        .unwrap();
    let (client, last) = client.respond(&first).unwrap();
    let (who, last) = exchange.finish(&last).unwrap();
    client.verify(&last).unwrap();
    assert_eq!(who.user, "a=b,c");
}

#[test]
fn a_kept_secret_keeps_unknown_users_salts_across_restarts() {
    let salt = |server: &ScramServer, seed| {
        let (_, first) = server
            .start(b"n,,n=ghost,r=abc", |_| None, &mut rng(seed))
            .unwrap();
        String::from_utf8(first)
            .unwrap()
            .split(',')
            .nth(1)
            .unwrap()
            .to_owned()
    };
    let before = ScramServer::from_secret([5; 32]);
    let after = ScramServer::from_secret([5; 32]);
    assert_eq!(salt(&before, 1), salt(&after, 2));
    assert_ne!(
        salt(&before, 1),
        salt(&ScramServer::from_secret([6; 32]), 1)
    );
}

#[test]
fn unknown_user_iterations_are_bounded() {
    let server = ScramServer::new(&mut rng(0));
    assert!(matches!(
        server.with_unknown_user_iterations(1),
        Err(ScramError::TooFewIterations { .. })
    ));
    let server = ScramServer::new(&mut rng(0))
        .with_unknown_user_iterations(10_000)
        .unwrap();
    let (_, first) = server
        .start(b"n,,n=ghost,r=abc", |_| None, &mut rng(1))
        .unwrap();
    assert!(std::str::from_utf8(&first).unwrap().ends_with(",i=10000"));
}

/// Runs a whole exchange; `server_password` is what the server's credential was made
/// from (`None`: the user is unknown). Returns the server's verdict and the
/// server-first message.
fn exchange(
    user: &str,
    password: &str,
    server_password: Option<&str>,
    salt: &[u8],
    iterations: u32,
    seed: u64,
) -> (Result<(), ScramError>, Vec<u8>) {
    let mut rng = rng(seed);
    let server = ScramServer::new(&mut rng);
    let credential =
        server_password.map(|p| StoredCredential::derive(p, salt, iterations).unwrap());
    let (client, client_first) = ClientExchange::new(user, password, &mut rng).unwrap();
    let (exchange, server_first) = server
        .start(&client_first, |_| credential, &mut rng)
        .unwrap();
    let (client, client_final) = client.respond(&server_first).unwrap();
    let verdict = exchange
        .finish(&client_final)
        .and_then(|(who, server_final)| {
            assert_eq!(who.user, user);
            client.verify(&server_final)
        });
    (verdict, server_first)
}

/// The shape of a server-first message: `r=<client nonce><server nonce>,s=<b64>,i=<n>`
/// with every variable part reduced to its length.
fn shape(server_first: &[u8]) -> Vec<(char, usize)> {
    std::str::from_utf8(server_first)
        .unwrap()
        .split(',')
        .map(|field| (field.chars().next().unwrap(), field.len()))
        .collect()
}

fn user_name() -> impl Strategy<Value = String> {
    "[^\u{0}]{1,24}"
}

fn password() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,24}"
}

proptest! {
    // Each case derives PBKDF2 at least twice; a few dozen cases cover the grammar.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn honest_exchanges_succeed(
        user in user_name(),
        password in password(),
        salt in prop::collection::vec(any::<u8>(), 1..=MAX_SALT_BYTES),
        iterations in MIN_ITERATIONS..MIN_ITERATIONS + 64,
        seed: u64,
    ) {
        let (verdict, _) = exchange(&user, &password, Some(&password), &salt, iterations, seed);
        prop_assert_eq!(verdict, Ok(()));
    }

    #[test]
    fn wrong_passwords_and_unknown_users_fail_alike(
        user in user_name(),
        password in password(),
        other in password(),
        seed: u64,
    ) {
        prop_assume!(password != other);
        let salt = [7u8; DEFAULT_SALT_BYTES];
        let (wrong, known_first) = exchange(&user, &password, Some(&other), &salt, DEFAULT_ITERATIONS, seed);
        let (unknown, unknown_first) = exchange(&user, &password, None, &salt, DEFAULT_ITERATIONS, seed);
        prop_assert_eq!(&wrong, &Err(ScramError::AuthenticationFailed));
        prop_assert_eq!(&unknown, &wrong);
        prop_assert!(wrong.unwrap_err().is_bad_credentials());
        prop_assert_eq!(shape(&known_first), shape(&unknown_first));
    }

    #[test]
    fn an_unknown_user_sees_the_same_salt_every_time(user in user_name(), seeds: (u64, u64)) {
        let server = ScramServer::new(&mut rng(seeds.0));
        let first = format!("n,,n={},r=abc", message::encode_saslname(&user));
        let salt = |seed| {
            let (_, reply) = server.start(first.as_bytes(), |_| None, &mut rng(seed)).unwrap();
            String::from_utf8(reply).unwrap().split(',').nth(1).unwrap().to_owned()
        };
        prop_assert_eq!(salt(seeds.1), salt(seeds.1.wrapping_add(1)));
    }

    #[test]
    fn a_mutated_client_final_fails_and_never_panics(
        user in user_name(),
        seed: u64,
        mutation in (any::<prop::sample::Index>(), any::<u8>(), 0..4u8),
    ) {
        let mut rng = rng(seed);
        let credential = StoredCredential::generate("pw", MIN_ITERATIONS, &mut rng).unwrap();
        let server = ScramServer::new(&mut rng);
        let (client, first) = ClientExchange::new(&user, "pw", &mut rng).unwrap();
        let (exchange, first) = server.start(&first, |_| Some(credential), &mut rng).unwrap();
        let (_, mut last) = client.respond(&first).unwrap();
        let (index, byte, kind) = mutation;
        let at = index.index(last.len());
        match kind {
            0 if last[at] != byte => last[at] = byte,
            0 => last[at] ^= 0x01,
            1 => { last.remove(at); }
            2 => last.insert(at, byte),
            _ => last.truncate(at),
        }
        prop_assert!(exchange.finish(&last).is_err());
    }

    #[test]
    fn random_bytes_never_panic_the_server(first: Vec<u8>, last: Vec<u8>, seed: u64) {
        let mut rng = rng(seed);
        let server = ScramServer::new(&mut rng);
        let credential = StoredCredential::derive("pw", b"salt", MIN_ITERATIONS).unwrap();
        if let Ok((exchange, _)) = server.start(&first, |_| Some(credential), &mut rng) {
            let _ = exchange.finish(&last);
        }
        // And a finish reached through a valid start.
        let (exchange, _) = server.start(b"n,,n=user,r=abc", |_| None, &mut rng).unwrap();
        prop_assert!(exchange.finish(&last).is_err());
    }

    #[test]
    fn random_bytes_never_panic_the_client(first: Vec<u8>, last: Vec<u8>) {
        let (client, _) = ClientExchange::with_nonce("user", "pw", "abc").unwrap();
        if let Ok((client, _)) = client.respond(&first) {
            let _ = client.verify(&last);
        }
    }
}
