//! Server-side TLS and mTLS of both receivers, on real sockets at 127.0.0.1
//! with rcgen certificates made in the test, against our own exporters.

#![cfg(all(feature = "tls", feature = "grpc", feature = "http", feature = "gzip"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod receive_support;

use receive_support as support;

use std::{path::PathBuf, time::Duration};

use common::tls::Pki;
use otlp_core::Batch;
use otlp_transport::{
    ConnectStep, Exporter, GrpcReceiver, HttpReceiver, Protocol, ReceiveError, ReceiverLimits,
    ReceiverTls, TlsConfig,
};
use support::{Mode, Recorder, Running, trace_bytes};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Bound on every wait of these tests; a hang fails instead of blocking CI.
const BOUND: Duration = Duration::from_secs(20);

/// The server certificate and key of `pki` as files, as an operator gives them.
fn server_files(pki: &Pki) -> (PathBuf, PathBuf) {
    let cert = pki.dir.path().join("server.pem");
    let key = pki.dir.path().join("server.key");
    std::fs::write(&cert, &pki.server_cert).unwrap();
    std::fs::write(&key, &pki.server_key).unwrap();
    (cert, key)
}

fn receiver_tls(pki: &Pki, mtls: bool) -> ReceiverTls {
    let (cert, key) = server_files(pki);
    let tls = ReceiverTls::new(cert, key);
    if mtls {
        tls.with_client_ca_file(pki.ca.clone())
    } else {
        tls
    }
}

fn exporter(endpoint: String, protocol: Protocol, tls: TlsConfig) -> Exporter {
    Exporter::builder()
        .with_endpoint(endpoint)
        .with_protocol(protocol)
        .with_tls(tls)
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn ca_only(pki: &Pki) -> TlsConfig {
    TlsConfig {
        ca_file: Some(pki.ca.clone()),
        ..TlsConfig::default()
    }
}

fn with_client_cert(pki: &Pki) -> TlsConfig {
    TlsConfig {
        ca_file: Some(pki.ca.clone()),
        cert_file: Some(pki.client_cert.clone()),
        key_file: Some(pki.client_key.clone()),
        ..TlsConfig::default()
    }
}

async fn grpc_tls(inner: Recorder, tls: ReceiverTls) -> Running {
    let bound = GrpcReceiver::new(inner)
        .with_tls(tls)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert!(bound.is_tls());
    Running::start(bound)
}

async fn http_tls(inner: Recorder, tls: ReceiverTls, limits: ReceiverLimits) -> Running {
    let bound = HttpReceiver::new(inner)
        .with_limits(limits)
        .with_tls(tls)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert!(bound.is_tls());
    Running::start(bound)
}

async fn send(exporter: &Exporter, batch: Batch) -> Result<(), otlp_transport::TransportError> {
    tokio::time::timeout(BOUND, exporter.send(batch))
        .await
        .expect("the export finishes within the bound")
        .map(|_| ())
}

#[tokio::test]
async fn grpc_exporter_with_custom_ca_delivers_to_the_tls_grpc_receiver() {
    let pki = Pki::new(&["localhost"]);
    let inner = Recorder::new(Mode::Accept);
    let rx = grpc_tls(inner.clone(), receiver_tls(&pki, false)).await;
    let batch = Batch::from_encoded(otlp_core::Signal::Traces, trace_bytes(3)).unwrap();
    let exp = exporter(
        format!("https://localhost:{}", rx.addr.port()),
        Protocol::Grpc,
        ca_only(&pki),
    );
    send(&exp, batch.clone()).await.unwrap();
    let seen = inner.batches();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].bytes(), batch.bytes());
    assert_eq!(seen[0].items(), 3);
    rx.shutdown().await;
}

#[tokio::test]
async fn https_otlp_http_post_is_accepted_by_the_tls_http_receiver() {
    let pki = Pki::new(&["localhost"]);
    let inner = Recorder::new(Mode::Accept);
    let rx = http_tls(
        inner.clone(),
        receiver_tls(&pki, false),
        ReceiverLimits::new(),
    )
    .await;
    let batch = Batch::from_encoded(otlp_core::Signal::Traces, trace_bytes(2)).unwrap();
    let exp = exporter(
        format!("https://localhost:{}", rx.addr.port()),
        Protocol::HttpProtobuf,
        ca_only(&pki),
    );
    send(&exp, batch.clone()).await.unwrap();
    let seen = inner.batches();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].bytes(), batch.bytes());
    rx.shutdown().await;
}

#[tokio::test]
async fn mtls_refuses_a_client_without_certificate_and_accepts_a_signed_one() {
    let pki = Pki::new(&["localhost"]);
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let inner = Recorder::new(Mode::Accept);
        let rx = match protocol {
            Protocol::Grpc => grpc_tls(inner.clone(), receiver_tls(&pki, true)).await,
            _ => {
                http_tls(
                    inner.clone(),
                    receiver_tls(&pki, true),
                    ReceiverLimits::new(),
                )
                .await
            }
        };
        let endpoint = format!("https://localhost:{}", rx.addr.port());
        let batch = Batch::from_encoded(otlp_core::Signal::Traces, trace_bytes(1)).unwrap();

        let err = send(
            &exporter(endpoint.clone(), protocol, ca_only(&pki)),
            batch.clone(),
        )
        .await
        .unwrap_err();
        // TLS 1.3 finishes the client's side of the handshake before the
        // server checks its certificate, so the refusal may surface as the
        // alert on the first read rather than in the handshake step.
        assert!(
            err.to_string().contains("CertificateRequired"),
            "{protocol:?}: {err}"
        );
        assert!(inner.batches().is_empty(), "{protocol:?}");

        send(&exporter(endpoint, protocol, with_client_cert(&pki)), batch)
            .await
            .unwrap();
        assert_eq!(inner.batches().len(), 1, "{protocol:?}");
        rx.shutdown().await;
    }
}

#[tokio::test]
async fn mtls_refuses_a_client_certificate_signed_by_another_ca() {
    let pki = Pki::new(&["localhost"]);
    let stranger = Pki::new(&["localhost"]);
    let inner = Recorder::new(Mode::Accept);
    let rx = grpc_tls(inner.clone(), receiver_tls(&pki, true)).await;
    let tls = TlsConfig {
        ca_file: Some(pki.ca.clone()),
        cert_file: Some(stranger.client_cert.clone()),
        key_file: Some(stranger.client_key.clone()),
        ..TlsConfig::default()
    };
    let exp = exporter(
        format!("https://localhost:{}", rx.addr.port()),
        Protocol::Grpc,
        tls,
    );
    let batch = Batch::from_encoded(otlp_core::Signal::Traces, trace_bytes(1)).unwrap();
    let err = send(&exp, batch).await.unwrap_err();
    assert!(err.to_string().contains("fatal alert"), "{err}");
    assert!(inner.batches().is_empty());
    rx.shutdown().await;
}

#[tokio::test]
async fn plaintext_client_to_a_tls_port_fails_without_hanging() {
    let pki = Pki::new(&["localhost"]);
    let inner = Recorder::new(Mode::Accept);
    let rx = http_tls(
        inner.clone(),
        receiver_tls(&pki, false),
        ReceiverLimits::new(),
    )
    .await;
    // Our exporter speaking plaintext HTTP/1.1 to the TLS port.
    let exp = exporter(
        format!("http://127.0.0.1:{}", rx.addr.port()),
        Protocol::HttpProtobuf,
        TlsConfig::default(),
    );
    let batch = Batch::from_encoded(otlp_core::Signal::Traces, trace_bytes(1)).unwrap();
    let err = send(&exp, batch).await.unwrap_err();
    // The TLS alert the receiver answers with is no HTTP/1.1.
    assert_eq!(
        err.connect_step(),
        Some(ConnectStep::ProtocolMismatch),
        "{err}"
    );

    // A raw plaintext request: the receiver answers no HTTP and closes.
    let mut tcp = tokio::net::TcpStream::connect(rx.addr).await.unwrap();
    tcp.write_all(b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(BOUND, tcp.read_to_end(&mut buf))
        .await
        .expect("the receiver closes a plaintext connection");
    assert!(
        !buf.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    assert!(inner.batches().is_empty());
    rx.shutdown().await;
}

#[tokio::test]
async fn silent_client_is_closed_after_the_header_read_timeout_and_the_port_keeps_serving() {
    let pki = Pki::new(&["localhost"]);
    let inner = Recorder::new(Mode::Accept);
    let limits = ReceiverLimits::new().with_header_read_timeout(Duration::from_millis(300));
    let rx = http_tls(inner.clone(), receiver_tls(&pki, false), limits).await;
    // Connects and never sends a ClientHello.
    let mut silent = tokio::net::TcpStream::connect(rx.addr).await.unwrap();
    // Meanwhile a real client is served: the handshake wait is not on the accept loop.
    let exp = exporter(
        format!("https://localhost:{}", rx.addr.port()),
        Protocol::HttpProtobuf,
        ca_only(&pki),
    );
    let batch = Batch::from_encoded(otlp_core::Signal::Traces, trace_bytes(1)).unwrap();
    send(&exp, batch).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(BOUND, silent.read(&mut buf))
        .await
        .expect("the receiver closes a connection that never starts its handshake")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert_eq!(inner.batches().len(), 1);
    rx.shutdown().await;
}

#[tokio::test]
async fn bad_certificate_or_key_file_fails_bind_naming_the_file() {
    let pki = Pki::new(&["localhost"]);
    let (cert, key) = server_files(&pki);
    let missing = pki.dir.path().join("absent.pem");
    let cases = [
        (ReceiverTls::new(&missing, &key), "cert_file", &missing),
        (ReceiverTls::new(&cert, &cert), "key_file", &cert),
        (ReceiverTls::new(&key, &key), "cert_file", &key),
        (
            ReceiverTls::new(&cert, &key).with_client_ca_file(&missing),
            "client_ca_file",
            &missing,
        ),
    ];
    for (tls, want_setting, want_path) in cases {
        let err = GrpcReceiver::new(Recorder::new(Mode::Accept))
            .with_tls(tls.clone())
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap_err();
        match &err {
            ReceiveError::Tls { setting, path, .. } => {
                assert_eq!(*setting, want_setting, "{err}");
                assert_eq!(path, &want_path.display().to_string(), "{err}");
            }
            other => panic!("expected a tls error, got {other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&want_path.display().to_string()), "{msg}");
        let http_err = HttpReceiver::new(Recorder::new(Mode::Accept))
            .with_tls(tls)
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap_err();
        assert_eq!(http_err.to_string(), msg);
    }
}
