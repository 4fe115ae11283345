//! The four SCRAM messages (RFC 5802 section 7) as parsed, borrowed views, and the
//! grammar pieces they share (`saslname`, `printable` nonces, attributes, base64).
//!
//! Parsing is separate from the state machines so that each can be tested alone and the
//! fuzz target reaches every branch. Every parser checks the message's length against
//! [`MAX_MESSAGE_BYTES`] before looking at it, and every field against its own limit
//! before decoding or allocating.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::error::ScramError;
use super::{MAX_CLIENT_NONCE_BYTES, MAX_ITERATIONS, MAX_MESSAGE_BYTES, MAX_NONCE_BYTES};
use super::{MAX_SALT_BYTES, MIN_ITERATIONS};
use crate::crypto::{Key, KEY_BYTES};
use crate::MAX_USER_NAME_BYTES;

/// The GS2 header of a client that does not do channel binding and asks for no other
/// identity; what our client sends.
pub(crate) const GS2_HEADER_NO_BINDING: &str = "n,,";

/// A parsed client-first message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ClientFirst<'a> {
    /// `gs2-header`, as sent (the client-final `c=` must repeat it).
    pub(crate) gs2_header: &'a str,
    /// `client-first-message-bare`, as sent (part of the AuthMessage).
    pub(crate) bare: &'a str,
    /// The user name, unescaped.
    pub(crate) user: String,
    /// The client's nonce.
    pub(crate) nonce: &'a str,
}

/// A parsed server-first message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ServerFirst<'a> {
    /// The combined nonce (client's, then server's).
    pub(crate) nonce: &'a str,
    /// The decoded salt.
    pub(crate) salt: Vec<u8>,
    /// The iteration count, within [`MIN_ITERATIONS`]`..=`[`MAX_ITERATIONS`].
    pub(crate) iterations: u32,
}

/// A parsed client-final message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ClientFinal<'a> {
    /// `client-final-message-without-proof`, as sent (part of the AuthMessage).
    pub(crate) without_proof: &'a str,
    /// The decoded `c=`: the GS2 header (we accept no channel-binding data).
    pub(crate) channel_binding: Vec<u8>,
    /// The combined nonce.
    pub(crate) nonce: &'a str,
    /// The decoded ClientProof.
    pub(crate) proof: Key,
}

/// A parsed server-final message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ServerFinal {
    /// `v=`: the ServerSignature.
    Verifier(Key),
    /// `e=`: the server's error value.
    Error(String),
}

/// The message as text, after the length check every parser starts with.
fn text(message: &[u8]) -> Result<&str, ScramError> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(ScramError::MessageTooLong {
            len: message.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    std::str::from_utf8(message).map_err(|_| ScramError::NotUtf8)
}

/// The value of `field` if it is the attribute `name=value`.
fn attribute<'a>(
    field: Option<&'a str>,
    name: char,
    what: &'static str,
) -> Result<&'a str, ScramError> {
    let field = field.ok_or(ScramError::malformed(what))?;
    let mut chars = field.chars();
    match (chars.next(), chars.next()) {
        (Some(n), Some('=')) if n == name => Ok(&field[2..]),
        _ => Err(ScramError::malformed(what)),
    }
}

/// Checks that every remaining field is an `extension` (`ALPHA "=" 1*value-char`) and
/// that none is mandatory (`m=` is only allowed first, where callers check it).
fn extensions<'a>(fields: impl Iterator<Item = &'a str>) -> Result<(), ScramError> {
    for field in fields {
        let bytes = field.as_bytes();
        let shaped = bytes.len() >= 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b'=';
        if !shaped || field.contains('\0') {
            return Err(ScramError::malformed(
                "an extension must be a letter, '=' and a value",
            ));
        }
    }
    Ok(())
}

/// Decodes a `saslname` (`=2C` is ',', `=3D` is '='; no other '=' allowed) into a user
/// name within [`MAX_USER_NAME_BYTES`].
pub(crate) fn decode_saslname(escaped: &str) -> Result<String, ScramError> {
    // Each byte of the name takes at most 3 escaped bytes: bound the work before it.
    if escaped.len() > 3 * MAX_USER_NAME_BYTES {
        return Err(ScramError::UserNameLength {
            len: escaped.len(),
            max: MAX_USER_NAME_BYTES,
        });
    }
    let mut name = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find(['=', '\0']) {
        name.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => name.push(','),
            Some("=3D") => name.push('='),
            _ => {
                return Err(ScramError::malformed(
                    "a user name has '=' not followed by 2C or 3D, or a NUL",
                ))
            }
        }
        rest = &rest[at + 3..];
    }
    name.push_str(rest);
    check_user_name(&name)?;
    Ok(name)
}

/// Escapes a user name as a `saslname`.
pub(crate) fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// A user name must be 1..=[`MAX_USER_NAME_BYTES`] bytes with no NUL.
pub(crate) fn check_user_name(name: &str) -> Result<(), ScramError> {
    if name.is_empty() || name.len() > MAX_USER_NAME_BYTES {
        return Err(ScramError::UserNameLength {
            len: name.len(),
            max: MAX_USER_NAME_BYTES,
        });
    }
    if name.contains('\0') {
        return Err(ScramError::malformed("a user name may not contain NUL"));
    }
    Ok(())
}

/// A nonce is 1..=`max` characters of RFC 5802's `printable` (0x21..=0x7E but ',').
pub(crate) fn check_nonce(nonce: &str, max: usize) -> Result<(), ScramError> {
    let printable = nonce
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b',');
    if nonce.is_empty() || nonce.len() > max || !printable {
        return Err(ScramError::InvalidNonce { max });
    }
    Ok(())
}

/// Decodes base64 of at most `max` bytes, checking the encoded length first.
fn decode_base64(encoded: &str, max: usize, attribute: char) -> Result<Vec<u8>, ScramError> {
    if encoded.len() > max.div_ceil(3) * 4 {
        return Err(ScramError::InvalidBase64 { attribute });
    }
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| ScramError::InvalidBase64 { attribute })?;
    if bytes.len() > max {
        return Err(ScramError::InvalidBase64 { attribute });
    }
    Ok(bytes)
}

/// Decodes base64 of exactly one key.
fn decode_key(encoded: &str, attribute: char) -> Result<Key, ScramError> {
    let bytes = decode_base64(encoded, KEY_BYTES, attribute)?;
    Key::try_from(bytes.as_slice()).map_err(|_| ScramError::InvalidBase64 { attribute })
}

/// Base64 as SCRAM writes it (standard alphabet, padded).
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Parses an iteration count: a `posit-number` within the limits.
pub(crate) fn parse_iterations(digits: &str) -> Result<u32, ScramError> {
    let shaped = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if !shaped {
        return Err(ScramError::malformed(
            "an iteration count must be a positive decimal number",
        ));
    }
    // Anything longer than u32's 10 digits is far past the limit; parse only what fits.
    let iterations = if digits.len() > 10 {
        None
    } else {
        digits.parse::<u64>().ok()
    };
    let iterations = match iterations.and_then(|i| u32::try_from(i).ok()) {
        Some(i) if i <= MAX_ITERATIONS => i,
        _ => {
            return Err(ScramError::TooManyIterations {
                max: MAX_ITERATIONS,
            })
        }
    };
    if iterations < MIN_ITERATIONS {
        return Err(ScramError::TooFewIterations {
            iterations,
            min: MIN_ITERATIONS,
        });
    }
    Ok(iterations)
}

/// Parses a client-first message (what a server receives first).
pub(crate) fn parse_client_first(message: &[u8]) -> Result<ClientFirst<'_>, ScramError> {
    let text = text(message)?;
    let mut gs2 = text.splitn(3, ',');
    match gs2.next() {
        Some("n" | "y") => {}
        Some(flag) if flag.starts_with("p=") => return Err(ScramError::ChannelBindingUnsupported),
        _ => {
            return Err(ScramError::malformed(
                "the GS2 channel-binding flag must be n or y",
            ))
        }
    }
    let authzid = match gs2.next() {
        Some("") => None,
        Some(field) => Some(decode_saslname(attribute(
            Some(field),
            'a',
            "the authzid must be a=name",
        )?)?),
        None => return Err(ScramError::malformed("the GS2 header must end with ','")),
    };
    let bare = gs2
        .next()
        .ok_or(ScramError::malformed("the GS2 header must end with ','"))?;
    let gs2_header = &text[..text.len() - bare.len()];

    let mut fields = bare.split(',');
    let first = fields.next();
    if first.is_some_and(|f| f.starts_with("m=")) {
        return Err(ScramError::MandatoryExtension);
    }
    let user = decode_saslname(attribute(first, 'n', "the first attribute must be n=user")?)?;
    let nonce = attribute(fields.next(), 'r', "the second attribute must be r=nonce")?;
    check_nonce(nonce, MAX_CLIENT_NONCE_BYTES)?;
    extensions(fields)?;
    if authzid.is_some_and(|a| a != user) {
        return Err(ScramError::AuthzidMismatch);
    }
    Ok(ClientFirst {
        gs2_header,
        bare,
        user,
        nonce,
    })
}

/// Parses a server-first message (what a client receives first).
pub(crate) fn parse_server_first(message: &[u8]) -> Result<ServerFirst<'_>, ScramError> {
    let text = text(message)?;
    let mut fields = text.split(',');
    let first = fields.next();
    if first.is_some_and(|f| f.starts_with("m=")) {
        return Err(ScramError::MandatoryExtension);
    }
    let nonce = attribute(first, 'r', "the first attribute must be r=nonce")?;
    check_nonce(nonce, MAX_NONCE_BYTES)?;
    let salt = attribute(fields.next(), 's', "the second attribute must be s=salt")?;
    let salt = decode_base64(salt, MAX_SALT_BYTES, 's')?;
    if salt.is_empty() {
        return Err(ScramError::SaltLength {
            len: 0,
            max: MAX_SALT_BYTES,
        });
    }
    let iterations = attribute(
        fields.next(),
        'i',
        "the third attribute must be i=iterations",
    )?;
    let iterations = parse_iterations(iterations)?;
    extensions(fields)?;
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

/// Parses a client-final message (what a server receives second).
pub(crate) fn parse_client_final(message: &[u8]) -> Result<ClientFinal<'_>, ScramError> {
    let text = text(message)?;
    let (without_proof, proof) = text
        .rsplit_once(',')
        .ok_or(ScramError::malformed("the last attribute must be p=proof"))?;
    let proof = decode_key(
        attribute(Some(proof), 'p', "the last attribute must be p=proof")?,
        'p',
    )?;
    let mut fields = without_proof.split(',');
    let binding = attribute(fields.next(), 'c', "the first attribute must be c=binding")?;
    // We accept no channel-binding data, so `c=` holds only a GS2 header, which is
    // bounded by the client-first message itself.
    let channel_binding = decode_base64(binding, MAX_MESSAGE_BYTES, 'c')?;
    let nonce = attribute(fields.next(), 'r', "the second attribute must be r=nonce")?;
    check_nonce(nonce, MAX_NONCE_BYTES)?;
    extensions(fields)?;
    Ok(ClientFinal {
        without_proof,
        channel_binding,
        nonce,
        proof,
    })
}

/// Parses a server-final message (what a client receives last).
pub(crate) fn parse_server_final(message: &[u8]) -> Result<ServerFinal, ScramError> {
    let text = text(message)?;
    let mut fields = text.split(',');
    let first = fields.next().unwrap_or_default();
    let parsed = if let Some(reason) = first.strip_prefix("e=") {
        ServerFinal::Error(reason.to_owned())
    } else {
        ServerFinal::Verifier(decode_key(
            attribute(Some(first), 'v', "the first attribute must be v= or e=")?,
            'v',
        )?)
    };
    extensions(fields)?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_round_trips_commas_and_equals() {
        let name = "a,b=c,,==";
        let escaped = encode_saslname(name);
        assert_eq!(escaped, "a=2Cb=3Dc=2C=2C=3D=3D");
        assert_eq!(decode_saslname(&escaped).unwrap(), name);
    }

    #[test]
    fn saslname_refuses_bad_escapes_and_lengths() {
        for bad in ["a=2", "a=", "=41", "a=2c", "a\0b"] {
            assert!(
                matches!(decode_saslname(bad), Err(ScramError::Malformed { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            decode_saslname(""),
            Err(ScramError::UserNameLength { len: 0, .. })
        ));
        let long = "x".repeat(MAX_USER_NAME_BYTES + 1);
        assert!(matches!(
            decode_saslname(&long),
            Err(ScramError::UserNameLength { .. })
        ));
        let longest = "x".repeat(MAX_USER_NAME_BYTES);
        assert_eq!(decode_saslname(&longest).unwrap(), longest);
        // Escapes count as one byte each once decoded.
        let escaped = "=2C".repeat(MAX_USER_NAME_BYTES);
        assert_eq!(
            decode_saslname(&escaped).unwrap().len(),
            MAX_USER_NAME_BYTES
        );
    }

    #[test]
    fn client_first_parses_header_bare_user_and_nonce() {
        let parsed = parse_client_first(b"n,,n=us=2Cer,r=abc,x=ext").unwrap();
        assert_eq!(parsed.gs2_header, "n,,");
        assert_eq!(parsed.bare, "n=us=2Cer,r=abc,x=ext");
        assert_eq!(parsed.user, "us,er");
        assert_eq!(parsed.nonce, "abc");
        let parsed = parse_client_first(b"y,a=user,n=user,r=abc").unwrap();
        assert_eq!(parsed.gs2_header, "y,a=user,");
    }

    #[test]
    fn client_first_refusals_are_typed() {
        type Check = fn(&ScramError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            (b"p=tls-unique,,n=user,r=abc", |e| {
                *e == ScramError::ChannelBindingUnsupported
            }),
            (b"x,,n=user,r=abc", |e| {
                matches!(e, ScramError::Malformed { .. })
            }),
            (b"n,a=other,n=user,r=abc", |e| {
                *e == ScramError::AuthzidMismatch
            }),
            (b"n,,m=must,n=user,r=abc", |e| {
                *e == ScramError::MandatoryExtension
            }),
            (b"n,,n=user", |e| matches!(e, ScramError::Malformed { .. })),
            (b"n,,r=abc,n=user", |e| {
                matches!(e, ScramError::Malformed { .. })
            }),
            (b"n,,n=user,r=a,b", |e| {
                matches!(e, ScramError::Malformed { .. })
            }),
            (b"n,,n=user,r=", |e| {
                matches!(e, ScramError::InvalidNonce { .. })
            }),
            (b"n,,n=,r=abc", |e| {
                matches!(e, ScramError::UserNameLength { .. })
            }),
            (b"n,,n=user,r=abc\x7f", |e| {
                matches!(e, ScramError::InvalidNonce { .. })
            }),
            (b"n,,n=u\xff,r=abc", |e| *e == ScramError::NotUtf8),
            (b"n,", |e| matches!(e, ScramError::Malformed { .. })),
            (b"", |e| matches!(e, ScramError::Malformed { .. })),
        ];
        for (message, expected) in cases {
            let err = parse_client_first(message).unwrap_err();
            assert!(
                expected(&err),
                "{:?}: {err:?}",
                String::from_utf8_lossy(message)
            );
        }
        let long = format!("n,,n=user,r={}", "a".repeat(MAX_CLIENT_NONCE_BYTES + 1));
        assert!(matches!(
            parse_client_first(long.as_bytes()),
            Err(ScramError::InvalidNonce { .. })
        ));
        let huge = vec![b'a'; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            parse_client_first(&huge),
            Err(ScramError::MessageTooLong { .. })
        ));
    }

    #[test]
    fn iteration_counts_are_bounded_both_ways() {
        assert_eq!(parse_iterations("4096").unwrap(), 4096);
        assert_eq!(
            parse_iterations(&MAX_ITERATIONS.to_string()).unwrap(),
            MAX_ITERATIONS
        );
        assert!(matches!(
            parse_iterations("4095"),
            Err(ScramError::TooFewIterations { .. })
        ));
        for huge in [
            (MAX_ITERATIONS + 1).to_string(),
            "4294967296".into(),
            "9".repeat(40),
        ] {
            assert!(matches!(
                parse_iterations(&huge),
                Err(ScramError::TooManyIterations { .. })
            ));
        }
        for bad in ["", "04096", "+4096", "40 96", "-1"] {
            assert!(
                matches!(parse_iterations(bad), Err(ScramError::Malformed { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn server_first_checks_salt_and_iterations() {
        let parsed = parse_server_first(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=4096").unwrap();
        assert_eq!(parsed.nonce, "abcdef");
        assert_eq!(parsed.iterations, 4096);
        assert!(matches!(
            parse_server_first(b"r=abc,s=,i=4096"),
            Err(ScramError::SaltLength { .. })
        ));
        assert!(matches!(
            parse_server_first(b"r=abc,s=!!!!,i=4096"),
            Err(ScramError::InvalidBase64 { attribute: 's' })
        ));
        assert!(matches!(
            parse_server_first(b"m=x,r=abc,s=QQ==,i=4096"),
            Err(ScramError::MandatoryExtension)
        ));
        assert!(matches!(
            parse_server_first(b"r=abc,s=QQ==,i=1"),
            Err(ScramError::TooFewIterations { .. })
        ));
        let long_salt = format!("r=abc,s={},i=4096", encode_base64(&[0; MAX_SALT_BYTES + 1]));
        assert!(matches!(
            parse_server_first(long_salt.as_bytes()),
            Err(ScramError::InvalidBase64 { .. })
        ));
    }

    #[test]
    fn client_final_splits_off_the_proof() {
        let proof = encode_base64(&[7; KEY_BYTES]);
        let message = format!("c=biws,r=abcdef,p={proof}");
        let parsed = parse_client_final(message.as_bytes()).unwrap();
        assert_eq!(parsed.without_proof, "c=biws,r=abcdef");
        assert_eq!(parsed.channel_binding, b"n,,");
        assert_eq!(parsed.proof, [7; KEY_BYTES]);
        let short = format!("c=biws,r=abcdef,p={}", encode_base64(&[7; KEY_BYTES - 1]));
        assert!(matches!(
            parse_client_final(short.as_bytes()),
            Err(ScramError::InvalidBase64 { attribute: 'p' })
        ));
        assert!(matches!(
            parse_client_final(b"c=biws,r=abcdef"),
            Err(ScramError::Malformed { .. })
        ));
        assert!(matches!(
            parse_client_final(b"p=x"),
            Err(ScramError::Malformed { .. })
        ));
    }

    #[test]
    fn server_final_is_a_verifier_or_an_error() {
        let v = encode_base64(&[9; KEY_BYTES]);
        assert_eq!(
            parse_server_final(format!("v={v}").as_bytes()).unwrap(),
            ServerFinal::Verifier([9; KEY_BYTES])
        );
        assert_eq!(
            parse_server_final(b"e=invalid-proof").unwrap(),
            ServerFinal::Error("invalid-proof".into())
        );
        assert!(matches!(
            parse_server_final(b"x=1"),
            Err(ScramError::Malformed { .. })
        ));
        assert!(matches!(
            parse_server_final(b""),
            Err(ScramError::Malformed { .. })
        ));
    }
}
