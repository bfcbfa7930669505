//! Server-side TLS of the receivers: the certificate files ([`ReceiverTls`])
//! and, with feature `tls`, the rustls acceptor built from them.
//!
//! The handshake itself runs in each connection's task (`serve.rs`), bounded
//! by the header read timeout, so a slow or plaintext client never holds up
//! the accept loop.

use std::path::{Path, PathBuf};

use crate::receive::ReceiveError;

/// The PEM files a receiver serves TLS with, as the OpenTelemetry
/// Collector's `tls` receiver settings (`cert_file`, `key_file`,
/// `client_ca_file`).
///
/// The files are read when the receiver binds, so a bad file fails `bind`
/// with an error naming it. With a client CA every client must present a
/// certificate that chains to it (mutual TLS); without one any client may
/// connect. ALPN offers `h2` and `http/1.1`.
///
/// ```
/// use otlp_transport::ReceiverTls;
///
/// let tls = ReceiverTls::new("/etc/otlp/server.pem", "/etc/otlp/server.key")
///     .with_client_ca_file("/etc/otlp/clients-ca.pem");
/// assert_eq!(tls.cert_file().to_str(), Some("/etc/otlp/server.pem"));
/// assert!(tls.client_ca_file().is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
}

/// What a receiver accepts connections with: the rustls acceptor when TLS is on.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub(crate) struct Acceptor(pub(crate) tokio_rustls::TlsAcceptor);

/// Without feature `tls` no acceptor can exist: binding with TLS is an error.
#[cfg(not(feature = "tls"))]
#[derive(Clone, Debug)]
pub(crate) enum Acceptor {}

// === impl Acceptor ===

#[cfg(feature = "tls")]
impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Acceptor(rustls)")
    }
}

// === impl ReceiverTls ===

impl ReceiverTls {
    /// TLS with the server certificate chain in `cert_file` (PEM, leaf
    /// first) and its private key in `key_file` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub fn new(cert_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            client_ca_file: None,
        }
    }

    /// Requires every client to present a certificate signed by a CA in
    /// `path` (PEM): mutual TLS.
    pub fn with_client_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_ca_file = Some(path.into());
        self
    }

    /// The server certificate chain file.
    pub fn cert_file(&self) -> &Path {
        &self.cert_file
    }

    /// The server private key file.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// The client CA file, when client certificates are required.
    pub fn client_ca_file(&self) -> Option<&Path> {
        self.client_ca_file.as_deref()
    }

    /// Loads the files and builds the acceptor.
    ///
    /// # Errors
    ///
    /// [`ReceiveError::Tls`] naming the file and what is wrong with it;
    /// [`ReceiveError::TlsFeatureDisabled`] when built without feature `tls`.
    pub(crate) fn acceptor(&self) -> Result<Acceptor, ReceiveError> {
        #[cfg(feature = "tls")]
        {
            server::acceptor(self)
        }
        #[cfg(not(feature = "tls"))]
        {
            Err(ReceiveError::TlsFeatureDisabled {
                cert_file: self.cert_file.display().to_string(),
            })
        }
    }
}

#[cfg(feature = "tls")]
mod server {
    //! The rustls `ServerConfig` from the PEM files.

    use std::{path::Path, sync::Arc};

    use rustls::{
        RootCertStore, ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
        server::WebPkiClientVerifier,
    };

    use super::{Acceptor, ReceiverTls};
    use crate::receive::ReceiveError;

    /// The protocols offered by ALPN: gRPC needs `h2`; OTLP/HTTP clients
    /// may speak either.
    const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

    pub(super) fn acceptor(tls: &ReceiverTls) -> Result<Acceptor, ReceiveError> {
        let chain = load_certs("cert_file", &tls.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|e| {
            error(
                "key_file",
                &tls.key_file,
                format!(
                    "cannot read a PEM private key: {e}; point key_file at the server key (PKCS#8, PKCS#1 or SEC1 PEM) and check its permissions"
                ),
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| error("cert_file", &tls.cert_file, format!("{e}")))?;
        let builder = match &tls.client_ca_file {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in load_certs("client_ca_file", ca)? {
                    roots.add(cert).map_err(|e| {
                        error(
                            "client_ca_file",
                            ca,
                            format!(
                                "certificate rejected: {e}; the file must hold PEM CA certificates"
                            ),
                        )
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| {
                            error(
                                "client_ca_file",
                                ca,
                                format!("no usable CA certificate: {e}; set client_ca_file to the PEM CA that signs the client certificates"),
                            )
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            error(
                "cert_file",
                &tls.cert_file,
                format!(
                    "certificate and key '{}' do not fit together: {e}; give the key that belongs to the certificate",
                    tls.key_file.display()
                ),
            )
        })?;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Acceptor(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    fn load_certs(
        setting: &'static str,
        path: &Path,
    ) -> Result<Vec<CertificateDer<'static>>, ReceiveError> {
        let certs: Vec<_> = CertificateDer::pem_file_iter(path)
            .map_err(|e| {
                error(
                    setting,
                    path,
                    format!("cannot read the file: {e}; check the path and permissions"),
                )
            })?
            .collect::<Result<_, _>>()
            .map_err(|e| error(setting, path, format!("invalid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(error(
                setting,
                path,
                "no PEM certificate found in the file; expected a '-----BEGIN CERTIFICATE-----' block".into(),
            ));
        }
        Ok(certs)
    }

    fn error(setting: &'static str, path: &Path, reason: String) -> ReceiveError {
        ReceiveError::Tls {
            setting,
            path: path.display().to_string(),
            reason,
        }
    }
}

#[cfg(test)]
#[cfg(not(feature = "tls"))]
mod tests_without_tls {
    use super::*;

    #[test]
    fn without_the_tls_feature_receiver_tls_is_a_clear_error() {
        let err = ReceiverTls::new("server.pem", "server.key")
            .acceptor()
            .unwrap_err();
        assert!(
            matches!(&err, ReceiveError::TlsFeatureDisabled { cert_file } if cert_file == "server.pem"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("rebuild with feature `tls`"),
            "{err}"
        );
    }
}

#[cfg(test)]
#[cfg(feature = "tls")]
mod tests {
    use super::*;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let ca_key = otlp_test_support::rcgen::KeyPair::generate().unwrap();
            let ca = otlp_test_support::rcgen::CertificateParams::new(Vec::<String>::new())
                .unwrap()
                .self_signed(&ca_key)
                .unwrap();
            let key = otlp_test_support::rcgen::KeyPair::generate().unwrap();
            let cert =
                otlp_test_support::rcgen::CertificateParams::new(vec!["localhost".to_owned()])
                    .unwrap()
                    .self_signed(&key)
                    .unwrap();
            std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
            std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
            std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
            std::fs::write(dir.path().join("other.pem"), ca_key.serialize_pem()).unwrap();
            Self { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }
    }

    fn tls_error(tls: &ReceiverTls) -> (&'static str, String, String) {
        match tls.acceptor() {
            Err(ReceiveError::Tls {
                setting,
                path,
                reason,
            }) => (setting, path, reason),
            other => panic!("expected a tls error, got {other:?}"),
        }
    }

    #[test]
    fn good_files_build_an_acceptor_with_and_without_client_ca() {
        let f = Files::new();
        let tls = ReceiverTls::new(f.path("cert.pem"), f.path("key.pem"));
        assert!(tls.acceptor().is_ok());
        assert!(tls.with_client_ca_file(f.path("ca.pem")).acceptor().is_ok());
    }

    #[test]
    fn bad_files_name_the_file_and_what_is_wrong() {
        let f = Files::new();
        let (setting, path, reason) =
            tls_error(&ReceiverTls::new(f.path("missing.pem"), f.path("key.pem")));
        assert_eq!(setting, "cert_file");
        assert!(path.ends_with("missing.pem"), "{path}");
        assert!(reason.contains("cannot read the file"), "{reason}");

        // A key where the certificate should be: no certificate in it.
        let (setting, _, reason) =
            tls_error(&ReceiverTls::new(f.path("key.pem"), f.path("key.pem")));
        assert_eq!(setting, "cert_file");
        assert!(reason.contains("no PEM certificate"), "{reason}");

        // A certificate where the key should be.
        let (setting, path, reason) =
            tls_error(&ReceiverTls::new(f.path("cert.pem"), f.path("cert.pem")));
        assert_eq!(setting, "key_file");
        assert!(path.ends_with("cert.pem"), "{path}");
        assert!(reason.contains("private key"), "{reason}");

        // The key of another certificate.
        let (setting, _, reason) =
            tls_error(&ReceiverTls::new(f.path("cert.pem"), f.path("other.pem")));
        assert_eq!(setting, "cert_file");
        assert!(reason.contains("do not fit together"), "{reason}");

        let (setting, path, _) = tls_error(
            &ReceiverTls::new(f.path("cert.pem"), f.path("key.pem"))
                .with_client_ca_file(f.path("nope.pem")),
        );
        assert_eq!(setting, "client_ca_file");
        assert!(path.ends_with("nope.pem"), "{path}");
    }

    #[test]
    fn tls_error_message_says_which_setting_and_how_to_fix() {
        let f = Files::new();
        let err = ReceiverTls::new(f.path("cert.pem"), f.path("cert.pem"))
            .acceptor()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("receiver tls key_file '"), "{err}");
        assert!(err.contains("PKCS#8"), "{err}");
    }
}
