//! Test-only helpers shared by the workspace's test suites: a certificate
//! authority made in the test with rcgen, so no key or certificate is
//! checked in and every run gets fresh ones; the pinned Python venv
//! ([`python`]) and the DNS server of the load-balancing tests
//! ([`DnsServer`]).
//!
//! Only dev-dependencies point here; no product crate depends on it.
//!
//! # Example
//!
//! ```
//! use otlp_test_support::Ca;
//!
//! let ca = Ca::new("example ca");
//! let server = ca.leaf(&["localhost", "127.0.0.1"], "example server");
//! assert!(ca.pem().starts_with("-----BEGIN CERTIFICATE-----"));
//! assert!(server.key_pem.contains("PRIVATE KEY"));
//! ```
// A helper that cannot build a certificate has no way to go on but to fail
// the test that called it.
#![allow(clippy::expect_used)]

mod python;

pub use self::python::{DnsServer, python};
pub use rcgen;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A self-signed certificate authority that signs leaf certificates.
#[derive(Debug)]
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

/// A certificate signed by a [`Ca`] and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

// === impl Ca ===

impl Ca {
    /// A new CA whose common name is `cn`.
    pub fn new(cn: &str) -> Self {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).expect("an empty name list is valid");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("ring generates a key pair");
        let pem = params
            .self_signed(&key)
            .expect("a fresh CA signs itself")
            .pem();
        Self { params, key, pem }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A leaf for the subject alternative `names` (DNS names or IP
    /// addresses) with common name `cn`, valid from now on for rcgen's default span.
    pub fn leaf(&self, names: &[&str], cn: &str) -> Leaf {
        let mut params = leaf_params(names);
        params.distinguished_name.push(DnType::CommonName, cn);
        self.sign(params)
    }

    /// Signs `params` (for a leaf with, say, its own validity dates) with a fresh key.
    pub fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("ring generates a key pair");
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .expect("the CA signs a leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// The parameters of a leaf for `names`, to adjust before [`Ca::sign`].
pub fn leaf_params(names: &[&str]) -> CertificateParams {
    CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .expect("test names are valid subject alternative names")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_of_one_ca_differ_and_carry_their_own_keys() {
        let ca = Ca::new("test ca");
        let a = ca.leaf(&["localhost"], "a");
        let b = ca.leaf(&["127.0.0.1"], "b");
        assert_ne!(a.cert_pem, b.cert_pem);
        assert_ne!(a.key_pem, b.key_pem);
        assert!(a.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(Ca::new("test ca").pem(), ca.pem());
    }
}
