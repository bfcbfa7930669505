//! TLS failures the exporter must report clearly, with certificates made in
//! the test (rcgen).
//!
//! Unknown CA, wrong name, mTLS without a client certificate and https to a
//! plaintext port are tested in `crates/otlp-transport/tests/export_tls.rs`;
//! this suite adds the expired certificate, checks that each handshake
//! failure is a connection-level error that names the cause, and that the
//! header secret is not in the error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use bytes::Bytes;
use otlp_core::{Batch, Classify, Signal};
use otlp_e2e::{Figures, record};
use otlp_test_support::{
    Ca, leaf_params,
    rcgen::{DnType, date_time_ymd},
};
use otlp_transport::{Exporter, Protocol, TlsConfig};
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
};
use tokio::net::TcpListener;

const SECRET: &str = "Bearer tls-s3cr3t";

struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: String,
    key: String,
}

/// A CA and a server certificate for `localhost` valid only in `years`.
fn pki(years: (i32, i32)) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("e2e ca");
    let mut leaf = leaf_params(&["localhost"]);
    leaf.distinguished_name
        .push(DnType::CommonName, "e2e server");
    leaf.not_before = date_time_ymd(years.0, 1, 1);
    leaf.not_after = date_time_ymd(years.1, 1, 1);
    let server = ca.sign(leaf);
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    Pki {
        _dir: dir,
        ca: ca_path,
        cert: server.cert_pem,
        key: server.key_pem,
    }
}

/// A TLS listener that completes handshakes and then closes: enough for a
/// client whose verification fails during the handshake.
async fn tls_server(p: &Pki) -> SocketAddr {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(p.cert.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(p.key.as_bytes()).unwrap();
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // Bounded: the test makes a handful of connections.
        for _ in 0..64 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await;
            });
        }
    });
    addr
}

async fn export_error(
    endpoint: String,
    protocol: Protocol,
    ca: PathBuf,
) -> otlp_transport::TransportError {
    let exporter = Exporter::builder()
        .with_endpoint(endpoint)
        .with_protocol(protocol)
        .with_header("authorization", SECRET)
        .with_tls(TlsConfig {
            ca_file: Some(ca),
            ..TlsConfig::default()
        })
        .build()
        .unwrap();
    let batch = Batch::from_encoded(
        Signal::Traces,
        Bytes::from_static(&[0x0a, 0x02, 0x12, 0x00]),
    )
    .unwrap();
    tower::ServiceExt::oneshot(exporter, batch)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn expired_certificate_fails_the_handshake_with_a_clear_error() {
    let p = pki((2000, 2001));
    let addr = tls_server(&p).await;
    let mut seen = Vec::new();
    for (protocol, name) in [(Protocol::Grpc, "grpc"), (Protocol::HttpProtobuf, "http")] {
        let endpoint = match protocol {
            Protocol::Grpc => format!("https://localhost:{}", addr.port()),
            _ => format!("https://localhost:{}/v1/traces", addr.port()),
        };
        let err = export_error(endpoint, protocol, p.ca.clone()).await;
        assert!(
            err.is_connection_error(),
            "{name}: not a connection error: {err}"
        );
        let text = err.to_string();
        assert!(text.contains("expired"), "{name}: {text}");
        assert!(!text.contains("s3cr3t"), "{name}: secret in error: {text}");
        seen.push(name);
    }
    record(&Figures {
        suite: "tls",
        scenario: "expired_certificate".to_owned(),
        protocol: "grpc+http",
        expected: "handshake error naming the expiry; no secret in the error".to_owned(),
        cases: Some(seen.len() as u64),
        ..Figures::default()
    });
}

#[tokio::test]
async fn a_valid_certificate_passes_the_same_handshake() {
    // The control for the test above: with an in-date certificate the
    // handshake succeeds, so the failure above is the expiry and nothing else.
    let p = pki((2020, 2200));
    let addr = tls_server(&p).await;
    let text = export_error(
        format!("https://localhost:{}/v1/traces", addr.port()),
        Protocol::HttpProtobuf,
        p.ca.clone(),
    )
    .await
    .to_string();
    assert!(!text.contains("expired"), "{text}");
    assert!(!text.to_lowercase().contains("certificate"), "{text}");
}
