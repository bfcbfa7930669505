//! rustls client configuration from [`TlsConfig`] (custom CA, mTLS, system roots)
//! and the translation of handshake failures into actionable words.

use std::sync::{Arc, Mutex};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject as _},
};

use crate::{TransportError, export::TlsConfig};

/// Builds the rustls client config. `alpn` is the protocol list to offer
/// (`h2` for gRPC, `http/1.1` for OTLP/HTTP).
///
/// Roots: the CA file when set, otherwise the system store, falling back to
/// the bundled Mozilla roots when the system store is empty.
pub(crate) fn client_config(
    tls: &TlsConfig,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TransportError> {
    client_config_recording(tls, alpn, None)
}

/// The server's end-entity certificate as seen during the handshake.
pub(crate) type SeenCert = Arc<Mutex<Option<CertificateDer<'static>>>>;

/// Like [`client_config`], and when `seen` is given it also records the
/// server's certificate (whether or not it verifies) for `diagnose`.
/// Verification is exactly the same: the recorder delegates to webpki.
pub(crate) fn client_config_recording(
    tls: &TlsConfig,
    alpn: &[&[u8]],
    seen: Option<SeenCert>,
) -> Result<Arc<ClientConfig>, TransportError> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = &tls.ca_file {
        let certs = load_certs("ca_file", ca)?;
        for cert in certs {
            roots.add(cert).map_err(|e| TransportError::TlsConfig {
                setting: "ca_file",
                value: ca.display().to_string(),
                reason: format!(
                    "certificate rejected: {e}; the file must hold PEM CA certificates"
                ),
            })?;
        }
    } else {
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::TlsConfig {
            setting: "protocol_versions",
            value: "default".into(),
            reason: format!("{e}"),
        })?
        .dangerous();
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| TransportError::TlsConfig {
            setting: "ca_file",
            value: tls
                .ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            reason: format!("no usable root certificate: {e}; set ca_file to a PEM CA bundle"),
        })?;
    let verifier: Arc<dyn ServerCertVerifier> = if seen.is_some() || tls.insecure_skip_verify {
        Arc::new(Recording {
            inner: webpki,
            seen,
            skip_verify: tls.insecure_skip_verify,
        })
    } else {
        webpki
    };
    let builder = builder.with_custom_certificate_verifier(verifier);
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = load_certs("cert_file", cert)?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TransportError::TlsConfig {
                setting: "key_file",
                value: key.display().to_string(),
                reason: format!("cannot read a PEM private key: {e}; point key_file at the client key (PKCS#8, PKCS#1 or SEC1 PEM)"),
            })?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                TransportError::TlsConfig {
                    setting: "cert_file",
                    value: cert.display().to_string(),
                    reason: format!("client certificate and key do not fit together: {e}"),
                }
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), None) => {
            return Err(TransportError::TlsConfig {
                setting: "key_file",
                value: cert.display().to_string(),
                reason: "cert_file is set but key_file is not; mTLS needs both".into(),
            });
        }
        (None, Some(key)) => {
            return Err(TransportError::TlsConfig {
                setting: "cert_file",
                value: key.display().to_string(),
                reason: "key_file is set but cert_file is not; mTLS needs both".into(),
            });
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn load_certs(
    setting: &'static str,
    path: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let err = |reason: String| TransportError::TlsConfig {
        setting,
        value: path.display().to_string(),
        reason,
    };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| {
            err(format!(
                "cannot read the file: {e}; check the path and permissions"
            ))
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| err(format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate found in the file".into()));
    }
    Ok(certs)
}

/// Words an on-call engineer can act on for a failed handshake.
pub(crate) fn describe_handshake_error(err: &std::io::Error, host: &str) -> String {
    use rustls::{CertificateError as C, Error as E};
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<E>());
    match inner {
        Some(E::InvalidCertificate(cert)) => match cert {
            C::UnknownIssuer => "server certificate is signed by an unknown CA; set tls ca_file to the CA that signed the collector's certificate".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "server certificate is not valid for the name '{host}' (name mismatch); connect with a name listed in the certificate's SAN or reissue the certificate"
            ),
            C::Expired | C::ExpiredContext { .. } => "server certificate has expired; renew the collector's certificate".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "server certificate is not valid yet; check the clocks of both hosts".into(),
            C::Revoked => "server certificate has been revoked".into(),
            C::BadSignature => "server certificate has a bad signature".into(),
            other => format!("server certificate rejected: {other:?}"),
        },
        Some(E::AlertReceived(alert)) => format!(
            "server rejected the handshake with alert {alert:?}; if the collector requires mutual TLS set tls cert_file and key_file"
        ),
        Some(E::InvalidMessage(_)) | Some(E::InappropriateMessage { .. }) => {
            "peer does not speak TLS on this port; use http:// if the collector listens in plaintext".into()
        }
        Some(other) => format!("tls error: {other}"),
        None => match err.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                "peer closed the connection during the tls handshake; it may require client certificates (mTLS) or not speak TLS".into()
            }
            _ => format!("tls handshake failed: {err}"),
        },
    }
}

/// A verifier that records the server certificate (for `diagnose`) and
/// delegates every decision to webpki, except, with `insecure_skip_verify`,
/// the certificate chain and name: any certificate is accepted, but the
/// handshake signature is still checked, so the session stays encrypted to
/// whoever holds the certificate's key.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Option<SeenCert>,
    skip_verify: bool,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(seen) = &self.seen
            && let Ok(mut seen) = seen.lock()
        {
            *seen = Some(end_entity.clone().into_owned());
        }
        if self.skip_verify {
            return Ok(ServerCertVerified::assertion());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
