//! The gRPC exporter against an in-test HTTP/2 peer on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(feature = "grpc", feature = "gzip"))]

mod common;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use common::{Reply, closed_port, grpc_unframe, next, partial_response, serve, trace_batch};
use otlp_core::{Classify, ExportResponse, Retryability};
use otlp_transport::{Compression, ConnectStep, Exporter, GrpcExporter, Protocol, TransportError};
use tower::{Service, ServiceExt as _};

fn exporter(endpoint: String) -> Exporter {
    Exporter::builder()
        .with_endpoint(endpoint)
        .with_protocol(Protocol::Grpc)
        .with_header("authorization", "Bearer t0k3n")
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn grpc_sends_batch_bytes_unchanged_with_headers_and_user_agent() {
    let (addr, mut rx) = serve(true, Arc::new(|_| Reply::GrpcOk(Bytes::new()))).await;
    let batch = trace_batch(3);
    let mut exp = exporter(format!("http://{addr}"));
    let debug = format!("{exp:?}");
    assert!(
        debug.contains("authorization") && !debug.contains("t0k3n"),
        "{debug}"
    );
    let resp = exp
        .ready()
        .await
        .unwrap()
        .call(batch.clone())
        .await
        .unwrap();
    assert_eq!(resp, ExportResponse::success());
    let rec = next(&mut rx).await;
    assert_eq!(
        rec.path,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    );
    assert_eq!(rec.headers["content-type"], "application/grpc");
    assert_eq!(rec.headers["authorization"], "Bearer t0k3n");
    let ua = rec.headers["user-agent"].to_str().unwrap();
    assert!(ua.starts_with("OTel-OTLP-Exporter-Rust/"), "{ua}");
    let (compressed, msg) = grpc_unframe(&rec.body);
    assert_eq!(compressed, 0);
    assert_eq!(msg, *batch.bytes());
}

#[tokio::test]
async fn grpc_large_uncompressed_batch_is_sent_whole_with_grpc_headers() {
    let (addr, mut rx) = serve(true, Arc::new(|_| Reply::GrpcOk(Bytes::new()))).await;
    // Many HTTP/2 frames: the message goes out as the batch's own bytes.
    let batch = trace_batch(5_000);
    assert!(batch.byte_size() > 256 * 1024, "{}", batch.byte_size());
    let resp = exporter(format!("http://{addr}"))
        .send(batch.clone())
        .await
        .unwrap();
    assert_eq!(resp, ExportResponse::success());
    let rec = next(&mut rx).await;
    assert_eq!(rec.headers["te"], "trailers");
    assert_eq!(rec.headers["content-type"], "application/grpc");
    assert_eq!(rec.headers["authorization"], "Bearer t0k3n");
    let timeout = rec.headers["grpc-timeout"].to_str().unwrap();
    assert_eq!(timeout, "5000000u", "5 s in the finest unit of 8 digits");
    assert!(!rec.headers.contains_key("grpc-encoding"));
    let (compressed, msg) = grpc_unframe(&rec.body);
    assert_eq!(compressed, 0);
    assert_eq!(msg, *batch.bytes());
}

#[tokio::test]
async fn grpc_gzip_compresses_the_message() {
    let (addr, mut rx) = serve(true, Arc::new(|_| Reply::GrpcOk(Bytes::new()))).await;
    let batch = trace_batch(50);
    let exp = Exporter::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_compression(Compression::Gzip)
        .build()
        .unwrap();
    exp.send(batch.clone()).await.unwrap();
    let rec = next(&mut rx).await;
    assert_eq!(rec.headers["grpc-encoding"], "gzip");
    let (compressed, msg) = grpc_unframe(&rec.body);
    assert_eq!(compressed, 1);
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&msg[..]), &mut out).unwrap();
    assert_eq!(out, batch.bytes().to_vec());
}

#[tokio::test]
async fn grpc_partial_success_is_returned() {
    let (addr, _rx) = serve(
        true,
        Arc::new(|_| Reply::GrpcOk(partial_response(2, "two spans invalid"))),
    )
    .await;
    let resp = exporter(format!("http://{addr}"))
        .send(trace_batch(3))
        .await
        .unwrap();
    assert_eq!(resp, ExportResponse::partial(2, "two spans invalid"));
}

async fn status_error(reply: Reply) -> TransportError {
    let (addr, _rx) = serve(true, Arc::new(move |_| reply.clone())).await;
    exporter(format!("http://{addr}"))
        .send(trace_batch(1))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn grpc_statuses_are_classified_by_the_spec() {
    let unavailable = status_error(Reply::GrpcStatus {
        code: 14,
        message: "down",
        details: None,
        retryinfo_trailer: None,
    })
    .await;
    assert_eq!(
        unavailable.classify(),
        Retryability::Retryable,
        "{unavailable}"
    );
    assert!(
        unavailable.to_string().contains("UNAVAILABLE"),
        "{unavailable}"
    );

    let invalid = status_error(Reply::GrpcStatus {
        code: 3,
        message: "bad",
        details: None,
        retryinfo_trailer: None,
    })
    .await;
    assert_eq!(invalid.classify(), Retryability::Permanent);

    let exhausted = status_error(Reply::GrpcStatus {
        code: 8,
        message: "quota",
        details: None,
        retryinfo_trailer: None,
    })
    .await;
    assert_eq!(exhausted.classify(), Retryability::Permanent);
}

#[tokio::test]
async fn grpc_retry_info_from_status_details_throttles() {
    let err = status_error(Reply::GrpcStatus {
        code: 8,
        message: "slow down",
        details: Some(common::status_with_retry_info(8, 7)),
        retryinfo_trailer: None,
    })
    .await;
    assert_eq!(
        err.classify(),
        Retryability::Throttled(Duration::from_secs(7)),
        "{err}"
    );
}

#[tokio::test]
async fn grpc_retry_info_from_trailer_throttles() {
    let err = status_error(Reply::GrpcStatus {
        code: 8,
        message: "slow down",
        details: None,
        retryinfo_trailer: Some(common::retry_info(4)),
    })
    .await;
    assert_eq!(
        err.classify(),
        Retryability::Throttled(Duration::from_secs(4)),
        "{err}"
    );
}

#[tokio::test]
async fn grpc_request_over_max_is_refused_before_sending() {
    let (addr, mut rx) = serve(true, Arc::new(|_| Reply::GrpcOk(Bytes::new()))).await;
    let exp = Exporter::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_max_request_bytes(100)
        .build()
        .unwrap();
    let err = exp.send(trace_batch(20)).await.unwrap_err();
    assert_eq!(err.classify(), Retryability::TooLarge);
    assert!(
        matches!(err, TransportError::RequestTooLarge { max: 100, .. }),
        "{err}"
    );
    assert!(rx.try_recv().is_err(), "nothing was sent");
}

#[tokio::test]
async fn grpc_response_over_cap_is_refused() {
    let huge = Bytes::from(vec![0u8; 5 * 1024 * 1024]);
    let (addr, _rx) = serve(true, Arc::new(move |_| Reply::GrpcOk(huge.clone()))).await;
    let err = exporter(format!("http://{addr}"))
        .send(trace_batch(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::ResponseTooLarge { .. }),
        "{err}"
    );
    assert_eq!(err.classify(), Retryability::Permanent);
}

#[tokio::test]
async fn grpc_to_closed_port_is_a_refused_connection_error() {
    let addr = closed_port().await;
    let err = exporter(format!("http://{addr}"))
        .send(trace_batch(1))
        .await
        .unwrap_err();
    assert_eq!(err.connect_step(), Some(ConnectStep::Refused), "{err}");
    assert!(err.is_connection_error());
    assert!(err.is_retryable_by_spec());
    assert!(err.to_string().contains("4317"), "{err}");
}

#[tokio::test]
async fn grpc_to_http1_port_reports_protocol_mismatch() {
    let (addr, _rx) = serve(
        false,
        Arc::new(|_| Reply::Http {
            status: 404,
            headers: vec![],
            body: Bytes::new(),
        }),
    )
    .await;
    let err = exporter(format!("http://{addr}"))
        .send(trace_batch(1))
        .await
        .unwrap_err();
    assert_eq!(
        err.connect_step(),
        Some(ConnectStep::ProtocolMismatch),
        "{err}"
    );
    assert!(err.to_string().contains("http/protobuf"), "{err}");
}

#[tokio::test]
async fn grpc_exporter_alone_is_a_tower_service() {
    let (addr, mut rx) = serve(true, Arc::new(|_| Reply::GrpcOk(Bytes::new()))).await;
    let cfg = otlp_transport::ExporterConfig {
        endpoint: format!("http://{addr}"),
        ..Default::default()
    };
    let svc = GrpcExporter::new(&cfg).unwrap();
    let resp = svc.oneshot(trace_batch(1)).await.unwrap();
    assert!(resp.is_full_success());
    next(&mut rx).await;
}

trait SpecRetry {
    fn is_retryable_by_spec(&self) -> bool;
}

impl SpecRetry for TransportError {
    fn is_retryable_by_spec(&self) -> bool {
        self.classify().is_retryable()
    }
}
