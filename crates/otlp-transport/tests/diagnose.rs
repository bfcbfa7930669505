//! `diagnose` against a closed port, an HTTP/1 server on the "gRPC" port, a
//! real OTLP/HTTP receiver probed with gRPC, a TLS server with an unknown CA,
//! and a working OTLP peer.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(feature = "grpc", feature = "http"))]

mod common;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use common::{Reply, closed_port, serve};
use otlp_transport::{Protocol, StepKind, TlsConfig, Verdict, diagnose, protocol_mismatch_hint};

const T: Duration = Duration::from_secs(3);

#[tokio::test]
async fn closed_port_fails_at_tcp_with_a_fix() {
    let addr = closed_port().await;
    let d = diagnose(
        &format!("http://{addr}"),
        Protocol::Grpc,
        &TlsConfig::default(),
        T,
    )
    .await;
    let kinds: Vec<_> = d.steps.iter().map(|s| (s.kind, s.verdict)).collect();
    assert_eq!(
        kinds,
        [
            (StepKind::Endpoint, Verdict::Pass),
            (StepKind::Dns, Verdict::Pass),
            (StepKind::Tcp, Verdict::Fail),
            (StepKind::OtlpProbe, Verdict::Skipped),
        ]
    );
    let fail = d.first_failure().unwrap();
    assert!(fail.fix.as_deref().unwrap().contains("4317"), "{d}");
    assert!(!d.is_healthy());
    let json: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
    assert_eq!(json["steps"][2]["verdict"], "fail");
    assert_eq!(json["protocol"], "grpc");
    assert!(d.to_string().contains("[FAIL] tcp"), "{d}");
}

#[tokio::test]
async fn http1_server_on_grpc_port_is_a_protocol_mismatch() {
    let (addr, _rx) = serve(
        false,
        Arc::new(|_| Reply::Http {
            status: 404,
            headers: vec![],
            body: Bytes::new(),
        }),
    )
    .await;
    let d = diagnose(
        &format!("http://{addr}"),
        Protocol::Grpc,
        &TlsConfig::default(),
        T,
    )
    .await;
    let probe = d.steps.last().unwrap();
    assert_eq!(
        (probe.kind, probe.verdict),
        (StepKind::OtlpProbe, Verdict::Fail),
        "{d}"
    );
    assert!(
        probe.fix.as_deref().unwrap().contains("http/protobuf"),
        "{d}"
    );
    assert_eq!(
        d.steps.iter().filter(|s| s.kind == StepKind::Tcp).count(),
        1
    );
    assert!(
        d.steps
            .iter()
            .find(|s| s.kind == StepKind::Tcp)
            .unwrap()
            .latency_ms
            .is_some()
    );
}

#[tokio::test]
async fn working_grpc_and_http_peers_are_healthy() {
    let (g, _grx) = serve(true, Arc::new(|_| Reply::GrpcOk(Bytes::new()))).await;
    let d = diagnose(
        &format!("http://{g}"),
        Protocol::Grpc,
        &TlsConfig::default(),
        T,
    )
    .await;
    assert!(d.is_healthy(), "{d}");
    let (h, _hrx) = serve(
        false,
        Arc::new(|_| Reply::Http {
            status: 200,
            headers: vec![],
            body: Bytes::new(),
        }),
    )
    .await;
    let d = diagnose(
        &format!("http://{h}"),
        Protocol::HttpProtobuf,
        &TlsConfig::default(),
        T,
    )
    .await;
    assert!(d.is_healthy(), "{d}");
    assert_eq!(d.steps.last().unwrap().kind, StepKind::OtlpProbe);
}

#[tokio::test]
async fn bad_endpoint_and_unknown_host_fail_early() {
    let d = diagnose("ftp://x", Protocol::Grpc, &TlsConfig::default(), T).await;
    assert_eq!(
        (d.steps[0].kind, d.steps[0].verdict),
        (StepKind::Endpoint, Verdict::Fail)
    );
    let d = diagnose(
        "http://no-such-host.invalid:4317",
        Protocol::Grpc,
        &TlsConfig::default(),
        T,
    )
    .await;
    assert_eq!(d.first_failure().unwrap().kind, StepKind::Dns, "{d}");
}

#[tokio::test]
async fn grpc_on_http_port_4318_warns_at_endpoint() {
    let d = diagnose(
        "http://127.0.0.1:4318",
        Protocol::Grpc,
        &TlsConfig::default(),
        T,
    )
    .await;
    assert_eq!(d.steps[0].verdict, Verdict::Warn, "{d}");
    assert!(d.steps[0].fix.as_deref().unwrap().contains("4317"), "{d}");
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_server_with_unknown_ca_shows_certificate_and_fix() {
    let pki = common::tls::Pki::new(&["localhost"]);
    let (addr, _rx) = common::tls::serve_tls(
        true,
        pki.server_config(false, &[b"h2"]),
        Arc::new(|_| Reply::GrpcOk(Bytes::new())),
    )
    .await;
    let endpoint = format!("https://localhost:{}", addr.port());
    let d = diagnose(&endpoint, Protocol::Grpc, &TlsConfig::default(), T).await;
    let tls = d.steps.iter().find(|s| s.kind == StepKind::Tls).unwrap();
    assert_eq!(tls.verdict, Verdict::Fail, "{d}");
    assert!(tls.detail.contains("unknown CA"), "{d}");
    assert!(tls.detail.contains("otlp test ca"), "issuer shown: {d}");
    assert!(tls.fix.as_deref().unwrap().contains("ca_file"), "{d}");

    // With the CA the same server is healthy, and the name matches.
    let with_ca = TlsConfig {
        ca_file: Some(pki.ca.clone()),
        ..TlsConfig::default()
    };
    let d = diagnose(&endpoint, Protocol::Grpc, &with_ca, T).await;
    assert!(d.is_healthy(), "{d}");
    let tls = d.steps.iter().find(|s| s.kind == StepKind::Tls).unwrap();
    assert!(tls.detail.contains("match 'localhost'"), "{d}");
}

/// An inner service for a real receiver: accepts every batch.
#[derive(Debug)]
struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}

impl otlp_core::Classify for Never {
    fn classify(&self) -> otlp_core::Retryability {
        otlp_core::Retryability::Permanent
    }
}

/// A real OTLP/HTTP receiver on 127.0.0.1 (it serves HTTP/1.1 and h2c).
async fn otlp_http_receiver() -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let inner = tower::service_fn(|_: otlp_core::Batch| async {
        Ok::<_, Never>(otlp_core::ExportResponse::success())
    });
    let bound = otlp_transport::HttpReceiver::new(inner)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = bound.local_addr();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bound.serve(async move {
        let _ = rx.await;
    }));
    (addr, stop)
}

#[tokio::test]
async fn grpc_to_an_otlp_http_receiver_names_the_mismatch_and_the_fix() {
    let (addr, _stop) = otlp_http_receiver().await;
    let d = tokio::time::timeout(
        Duration::from_secs(20),
        diagnose(
            &format!("http://{addr}"),
            Protocol::Grpc,
            &TlsConfig::default(),
            T,
        ),
    )
    .await
    .unwrap();
    let probe = d.steps.last().unwrap();
    assert_eq!(
        (probe.kind, probe.verdict),
        (StepKind::OtlpProbe, Verdict::Fail),
        "{d}"
    );
    assert!(probe.detail.starts_with("protocol mismatch"), "{d}");
    let fix = probe.fix.as_deref().unwrap();
    assert!(fix.contains("looks like an OTLP/HTTP server"), "{d}");
    assert!(fix.contains("--protocol http/protobuf"), "{d}");
    assert!(fix.contains("port 4317"), "{d}");

    // The same peer is healthy over the protocol the fix names.
    let d = diagnose(
        &format!("http://{addr}"),
        Protocol::HttpProtobuf,
        &TlsConfig::default(),
        T,
    )
    .await;
    assert!(d.is_healthy(), "{d}");
}

#[tokio::test]
async fn the_mismatch_hint_names_grpc_on_otlp_http_and_spares_a_real_grpc_internal() {
    let (addr, _stop) = otlp_http_receiver().await;
    let exporter = otlp_transport::Exporter::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_protocol(Protocol::Grpc)
        .with_timeout(T)
        .build()
        .unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        exporter.send(otlp_core::Batch::empty(otlp_core::Signal::Traces)),
    )
    .await
    .unwrap()
    .unwrap_err();
    let hint = protocol_mismatch_hint(&err).unwrap_or_else(|| panic!("no hint: {err}"));
    assert!(hint.contains("OTLP/HTTP server"), "{hint}");
    assert!(hint.contains("--protocol http/protobuf"), "{hint}");

    // A gRPC server's own INTERNAL is not a mismatch, in the hint or in diagnose.
    let (g, _rx) = serve(
        true,
        Arc::new(|_| Reply::GrpcStatus {
            code: 13,
            message: "collector exploded",
            details: None,
            retryinfo_trailer: None,
        }),
    )
    .await;
    let exporter = otlp_transport::Exporter::builder()
        .with_endpoint(format!("http://{g}"))
        .with_protocol(Protocol::Grpc)
        .with_timeout(T)
        .build()
        .unwrap();
    let err = exporter
        .send(otlp_core::Batch::empty(otlp_core::Signal::Traces))
        .await
        .unwrap_err();
    assert_eq!(protocol_mismatch_hint(&err), None, "{err}");
    let d = diagnose(
        &format!("http://{g}"),
        Protocol::Grpc,
        &TlsConfig::default(),
        T,
    )
    .await;
    let probe = d.steps.last().unwrap();
    assert!(probe.detail.contains("collector exploded"), "{d}");
    assert!(!probe.detail.contains("mismatch"), "{d}");
}
