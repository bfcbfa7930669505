//! TLS and mTLS for both exporters, with rcgen certificates made in the test.
#![cfg(all(feature = "tls", feature = "grpc", feature = "http"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use common::{
    Reply, next, serve,
    tls::{Pki, serve_tls},
    trace_batch,
};
use otlp_core::{Classify, Retryability};
use otlp_transport::{ConnectStep, Exporter, Protocol, TlsConfig, TransportError};

fn http_ok() -> Reply {
    Reply::Http {
        status: 200,
        headers: vec![],
        body: Bytes::new(),
    }
}

fn build(endpoint: String, protocol: Protocol, tls: TlsConfig) -> Exporter {
    Exporter::builder()
        .with_endpoint(endpoint)
        .with_protocol(protocol)
        .with_tls(tls)
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_with_custom_ca_delivers_over_grpc_and_http() {
    let pki = Pki::new(&["localhost"]);
    let tls = TlsConfig {
        ca_file: Some(pki.ca.clone()),
        ..TlsConfig::default()
    };
    let (g, mut grx) = serve_tls(
        true,
        pki.server_config(false, &[b"h2"]),
        Arc::new(|_| Reply::GrpcOk(Bytes::new())),
    )
    .await;
    let batch = trace_batch(2);
    build(
        format!("https://localhost:{}", g.port()),
        Protocol::Grpc,
        tls.clone(),
    )
    .send(batch.clone())
    .await
    .unwrap();
    let (_, msg) = common::grpc_unframe(&next(&mut grx).await.body);
    assert_eq!(msg, *batch.bytes());

    let (h, mut hrx) = serve_tls(
        false,
        pki.server_config(false, &[b"http/1.1"]),
        Arc::new(|_| http_ok()),
    )
    .await;
    build(
        format!("https://localhost:{}", h.port()),
        Protocol::HttpProtobuf,
        tls,
    )
    .send(batch.clone())
    .await
    .unwrap();
    assert_eq!(next(&mut hrx).await.body, *batch.bytes());
}

#[tokio::test]
async fn unknown_ca_is_a_tls_handshake_error_naming_the_ca() {
    let pki = Pki::new(&["localhost"]);
    let (h, _rx) = serve_tls(
        false,
        pki.server_config(false, &[b"http/1.1"]),
        Arc::new(|_| http_ok()),
    )
    .await;
    // No ca_file: the system roots do not know the test CA.
    let err = build(
        format!("https://localhost:{}", h.port()),
        Protocol::HttpProtobuf,
        TlsConfig::default(),
    )
    .send(trace_batch(1))
    .await
    .unwrap_err();
    assert_eq!(err.connect_step(), Some(ConnectStep::TlsHandshake), "{err}");
    assert!(err.to_string().contains("unknown CA"), "{err}");
    assert_eq!(err.classify(), Retryability::Permanent);
    assert!(err.is_connection_error());
}

#[tokio::test]
async fn certificate_for_another_name_is_a_name_mismatch() {
    let pki = Pki::new(&["collector.example"]);
    let (g, _rx) = serve_tls(
        true,
        pki.server_config(false, &[b"h2"]),
        Arc::new(|_| Reply::GrpcOk(Bytes::new())),
    )
    .await;
    let tls = TlsConfig {
        ca_file: Some(pki.ca.clone()),
        ..TlsConfig::default()
    };
    let err = build(
        format!("https://localhost:{}", g.port()),
        Protocol::Grpc,
        tls,
    )
    .send(trace_batch(1))
    .await
    .unwrap_err();
    assert_eq!(err.connect_step(), Some(ConnectStep::TlsHandshake), "{err}");
    assert!(err.to_string().contains("name mismatch"), "{err}");
}

#[tokio::test]
async fn insecure_skip_verify_accepts_an_unknown_ca_and_name_only_when_set() {
    // Signed by a CA the client does not know, for another name.
    let pki = Pki::new(&["collector.example"]);
    let (g, mut grx) = serve_tls(
        true,
        pki.server_config(false, &[b"h2"]),
        Arc::new(|_| Reply::GrpcOk(Bytes::new())),
    )
    .await;
    let (h, mut hrx) = serve_tls(
        false,
        pki.server_config(false, &[b"http/1.1"]),
        Arc::new(|_| http_ok()),
    )
    .await;
    let cases = [
        (format!("https://localhost:{}", g.port()), Protocol::Grpc),
        (
            format!("https://localhost:{}", h.port()),
            Protocol::HttpProtobuf,
        ),
    ];
    for (endpoint, protocol) in cases {
        let err = build(endpoint.clone(), protocol, TlsConfig::default())
            .send(trace_batch(1))
            .await
            .unwrap_err();
        assert_eq!(err.connect_step(), Some(ConnectStep::TlsHandshake), "{err}");
        let skip = TlsConfig {
            insecure_skip_verify: true,
            ..TlsConfig::default()
        };
        build(endpoint, protocol, skip)
            .send(trace_batch(1))
            .await
            .unwrap();
    }
    next(&mut grx).await;
    next(&mut hrx).await;
}

#[tokio::test]
async fn mtls_sends_client_certificate_and_fails_without_it() {
    let pki = Pki::new(&["localhost"]);
    let (h, mut rx) = serve_tls(
        false,
        pki.server_config(true, &[b"http/1.1"]),
        Arc::new(|_| http_ok()),
    )
    .await;
    let endpoint = format!("https://localhost:{}", h.port());
    let with_cert = TlsConfig {
        ca_file: Some(pki.ca.clone()),
        cert_file: Some(pki.client_cert.clone()),
        key_file: Some(pki.client_key.clone()),
        ..TlsConfig::default()
    };
    build(endpoint.clone(), Protocol::HttpProtobuf, with_cert)
        .send(trace_batch(1))
        .await
        .unwrap();
    next(&mut rx).await;

    let without = TlsConfig {
        ca_file: Some(pki.ca.clone()),
        ..TlsConfig::default()
    };
    let err = build(endpoint, Protocol::HttpProtobuf, without)
        .send(trace_batch(1))
        .await
        .unwrap_err();
    assert!(err.is_connection_error(), "{err}");
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn https_to_plaintext_port_never_falls_back() {
    let (addr, mut rx) = serve(false, Arc::new(|_| http_ok())).await;
    let pki = Pki::new(&["localhost"]);
    let tls = TlsConfig {
        ca_file: Some(pki.ca.clone()),
        ..TlsConfig::default()
    };
    let err = build(
        format!("https://localhost:{}", addr.port()),
        Protocol::HttpProtobuf,
        tls,
    )
    .send(trace_batch(1))
    .await
    .unwrap_err();
    assert_eq!(err.connect_step(), Some(ConnectStep::TlsHandshake), "{err}");
    assert!(rx.try_recv().is_err(), "no plaintext request was made");
}

#[test]
fn missing_ca_file_is_a_build_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let err = Exporter::builder()
        .with_endpoint("https://localhost:4317")
        .with_tls(TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        })
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::TlsConfig {
                setting: "ca_file",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
