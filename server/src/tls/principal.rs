//! The principal a client certificate names: its subject's common name, or its first
//! DNS or email subject alternative name (`[tls] principal_from`). Pure: the caller
//! has already verified the certificate (rustls did, against `client_ca`); this only
//! reads a name out of it.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::config::PrincipalFrom;

/// Longest principal taken from a certificate, in bytes; a longer name is no
/// principal (it would only be a way to make the broker hold a large string).
pub const MAX_PRINCIPAL_BYTES: usize = 255;

/// The principal `der` (one DER certificate) names per `from`; `None` if it does not
/// parse, has no such name, or the name is empty or longer than
/// [`MAX_PRINCIPAL_BYTES`].
pub fn of(der: &[u8], from: PrincipalFrom) -> Option<String> {
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    let name = match from {
        PrincipalFrom::Cn => certificate
            .subject()
            .iter_common_name()
            .next()?
            .as_str()
            .ok()?
            .to_string(),
        PrincipalFrom::San => {
            let san = certificate.subject_alternative_name().ok()??;
            san.value.general_names.iter().find_map(|name| match name {
                GeneralName::DNSName(name) | GeneralName::RFC822Name(name) => {
                    Some(name.to_string())
                }
                _ => None,
            })?
        }
    };
    (!name.is_empty() && name.len() <= MAX_PRINCIPAL_BYTES).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    fn certificate(cn: Option<&str>, sans: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_common_name_or_the_first_dns_or_email_san() {
        let der = certificate(
            Some("alice"),
            vec![
                SanType::IpAddress([127, 0, 0, 1].into()),
                SanType::Rfc822Name("alice@example.com".try_into().unwrap()),
                SanType::DnsName("alice.example.com".try_into().unwrap()),
            ],
        );
        assert_eq!(of(&der, PrincipalFrom::Cn).as_deref(), Some("alice"));
        assert_eq!(
            of(&der, PrincipalFrom::San).as_deref(),
            Some("alice@example.com")
        );
    }

    #[test]
    fn a_missing_empty_or_overlong_name_is_no_principal() {
        let bare = certificate(None, vec![SanType::IpAddress([10, 0, 0, 1].into())]);
        assert_eq!(of(&bare, PrincipalFrom::Cn), None);
        assert_eq!(of(&bare, PrincipalFrom::San), None);
        let long = "x".repeat(MAX_PRINCIPAL_BYTES + 1);
        assert_eq!(
            of(&certificate(Some(&long), vec![]), PrincipalFrom::Cn),
            None
        );
        let longest = "x".repeat(MAX_PRINCIPAL_BYTES);
        assert_eq!(
            of(&certificate(Some(&longest), vec![]), PrincipalFrom::Cn),
            Some(longest)
        );
        assert_eq!(of(b"not a certificate", PrincipalFrom::Cn), None);
    }
}
