//! Certificates made in the test with rcgen: a CA that writes its certificate and
//! the leaves it issues as PEM files into the test's temporary directory, where
//! brokerd's `[tls]` and the test's own TLS clients read them.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;

/// A certificate authority writing its certificate and the ones it issues as PEM
/// files into a directory.
pub struct Pki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
    pub ca_path: PathBuf,
}

/// What a leaf certificate looks like.
pub struct Leaf<'a> {
    pub common_name: &'a str,
    pub sans: &'a [&'a str],
    pub expired: bool,
}

impl Pki {
    /// A new CA named `name`, its certificate in `dir/name.pem`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca_path = dir.join(format!("{name}.pem"));
        std::fs::write(&ca_path, ca.pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            ca,
            ca_path,
        }
    }

    /// Issues `leaf` into `name.pem` and `name-key.pem`; returns their paths and the
    /// certificate.
    pub fn issue(&self, name: &str, leaf: Leaf<'_>) -> (PathBuf, PathBuf, CertificateDer<'static>) {
        let sans: Vec<String> = leaf.sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, leaf.common_name);
        if leaf.expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let cert_path = self.dir.join(format!("{name}.pem"));
        let key_path = self.dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path, cert.der().clone())
    }

    /// A server certificate for localhost and 127.0.0.1.
    pub fn server(&self, name: &str) -> (PathBuf, PathBuf, CertificateDer<'static>) {
        self.issue(
            name,
            Leaf {
                common_name: "brokerd",
                sans: &["localhost", "127.0.0.1"],
                expired: false,
            },
        )
    }

    /// A client certificate naming `common_name`.
    pub fn client(&self, name: &str, common_name: &str, expired: bool) -> (PathBuf, PathBuf) {
        let (cert, key, _) = self.issue(
            name,
            Leaf {
                common_name,
                sans: &[],
                expired,
            },
        );
        (cert, key)
    }
}
