//! Thin, typed wrappers over the RustCrypto primitives SCRAM-SHA-256 is built from, so
//! that the mechanism code reads like RFC 5802 section 3. Nothing here is a primitive
//! of our own: PBKDF2, HMAC and SHA-256 are RustCrypto's, equality is `subtle`'s.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The output size of SHA-256, and so of every key and signature in SCRAM-SHA-256.
pub(crate) const KEY_BYTES: usize = 32;

/// A SHA-256-sized key or signature.
pub(crate) type Key = [u8; KEY_BYTES];

/// `Hi(password, salt, i)` of RFC 5802: PBKDF2 with HMAC-SHA-256, one output block.
pub(crate) fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> Key {
    let mut out = [0u8; KEY_BYTES];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    out
}

/// `HMAC(key, parts[0] || parts[1] || ...)` with SHA-256.
pub(crate) fn hmac(key: &[u8], parts: &[&[u8]]) -> Key {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC is defined for keys of every length (longer ones are hashed first);
        // RustCrypto's `InvalidLength` exists only for other MACs behind the same trait.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// `H(data)`: SHA-256.
pub(crate) fn sha256(data: &[u8]) -> Key {
    Sha256::digest(data).into()
}

/// `a XOR b`, for ClientProof = ClientKey XOR ClientSignature and its inverse.
pub(crate) fn xor(a: &Key, b: &Key) -> Key {
    let mut out = [0u8; KEY_BYTES];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b.iter())) {
        *o = x ^ y;
    }
    out
}

/// Equality whose time does not depend on where the inputs differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// The keys a salted password yields (RFC 5802 section 3).
pub(crate) struct DerivedKeys {
    /// `HMAC(SaltedPassword, "Client Key")`.
    pub(crate) client_key: Key,
    /// `H(ClientKey)`.
    pub(crate) stored_key: Key,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub(crate) server_key: Key,
}

/// ClientKey, StoredKey and ServerKey from a password, salt and iteration count.
pub(crate) fn derive_keys(password: &[u8], salt: &[u8], iterations: u32) -> DerivedKeys {
    let salted = salted_password(password, salt, iterations);
    let client_key = hmac(&salted, &[b"Client Key"]);
    DerivedKeys {
        stored_key: sha256(&client_key),
        server_key: hmac(&salted, &[b"Server Key"]),
        client_key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn xor_is_its_own_inverse() {
        let a = [0x5au8; KEY_BYTES];
        let b: Key = std::array::from_fn(|i| i as u8);
        assert_eq!(xor(&xor(&a, &b), &b), a);
    }

    #[test]
    fn ct_eq_compares_length_and_content() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
