//! The HTTP exporter (and endpoint balancing) against in-test peers on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(feature = "http", feature = "gzip"))]

mod common;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use common::{Reply, closed_port, next, partial_response, serve, trace_batch};
use otlp_core::{Classify, ExportResponse, Retryability};
use otlp_transport::{Compression, ConnectStep, Exporter, Protocol, TransportError};

fn ok_reply() -> Reply {
    Reply::Http {
        status: 200,
        headers: vec![("content-type", "application/x-protobuf".into())],
        body: Bytes::new(),
    }
}

fn exporter(endpoint: String) -> Exporter {
    Exporter::builder()
        .with_endpoint(endpoint)
        .with_protocol(Protocol::HttpProtobuf)
        .with_header("x-api-key", "s3cret")
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn http_posts_unchanged_protobuf_to_signal_path() {
    let (addr, mut rx) = serve(false, Arc::new(|_| ok_reply())).await;
    let batch = trace_batch(4);
    let exp = exporter(format!("http://{addr}"));
    let debug = format!("{exp:?}");
    assert!(
        debug.contains("x-api-key") && !debug.contains("s3cret"),
        "{debug}"
    );
    assert_eq!(
        exp.send(batch.clone()).await.unwrap(),
        ExportResponse::success()
    );
    let rec = next(&mut rx).await;
    assert_eq!(rec.path, "/v1/traces");
    assert_eq!(rec.headers["content-type"], "application/x-protobuf");
    assert_eq!(rec.headers["x-api-key"], "s3cret");
    assert!(
        rec.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("OTel-OTLP-Exporter-Rust/")
    );
    assert_eq!(rec.body, *batch.bytes());
    // A second request reuses the pooled connection and still arrives whole.
    exp.send(batch.clone()).await.unwrap();
    assert_eq!(next(&mut rx).await.body, *batch.bytes());
}

#[tokio::test]
async fn http_base_path_is_kept_before_signal_path() {
    let (addr, mut rx) = serve(false, Arc::new(|_| ok_reply())).await;
    exporter(format!("http://{addr}/otlp/"))
        .send(trace_batch(1))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await.path, "/otlp/v1/traces");
}

#[tokio::test]
async fn http_posts_profiles_to_the_development_path_with_partial_success() {
    let (addr, mut rx) = serve(
        false,
        Arc::new(|_| Reply::Http {
            status: 200,
            headers: vec![("content-type", "application/x-protobuf".into())],
            body: partial_response(1, "one profile dropped"),
        }),
    )
    .await;
    // One resource, one scope, two (empty) profiles, and a dictionary (field 2).
    let bytes = Bytes::from_static(&[0x0a, 0x06, 0x12, 0x04, 0x12, 0x00, 0x12, 0x00, 0x12, 0x00]);
    let batch = otlp_core::Batch::from_encoded(otlp_core::Signal::Profiles, bytes).unwrap();
    assert_eq!(batch.items(), 2);
    let resp = exporter(format!("http://{addr}/otlp"))
        .send(batch.clone())
        .await
        .unwrap();
    assert_eq!(resp, ExportResponse::partial(1, "one profile dropped"));
    let rec = next(&mut rx).await;
    assert_eq!(rec.path, "/otlp/v1development/profiles");
    assert_eq!(rec.body, *batch.bytes());
}

#[tokio::test]
async fn http_gzip_body_is_compressed_once_with_content_encoding() {
    let (addr, mut rx) = serve(false, Arc::new(|_| ok_reply())).await;
    let batch = trace_batch(30);
    let exp = Exporter::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_protocol(Protocol::HttpProtobuf)
        .with_compression(Compression::Gzip)
        .build()
        .unwrap();
    exp.send(batch.clone()).await.unwrap();
    let rec = next(&mut rx).await;
    assert_eq!(rec.headers["content-encoding"], "gzip");
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&rec.body[..]), &mut out).unwrap();
    assert_eq!(out, batch.bytes().to_vec());
}

#[tokio::test]
async fn http_partial_success_is_returned() {
    let (addr, _rx) = serve(
        false,
        Arc::new(|_| Reply::Http {
            status: 200,
            headers: vec![("content-type", "application/x-protobuf".into())],
            body: partial_response(1, "one span dropped"),
        }),
    )
    .await;
    let resp = exporter(format!("http://{addr}"))
        .send(trace_batch(2))
        .await
        .unwrap();
    assert_eq!(resp, ExportResponse::partial(1, "one span dropped"));
}

async fn status_error(
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: &'static [u8],
) -> TransportError {
    let (addr, _rx) = serve(
        false,
        Arc::new(move |_| Reply::Http {
            status,
            headers: headers.clone(),
            body: Bytes::from_static(body),
        }),
    )
    .await;
    exporter(format!("http://{addr}"))
        .send(trace_batch(1))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn http_statuses_and_retry_after_are_classified_by_the_spec() {
    let e = status_error(503, vec![("retry-after", "9".into())], b"").await;
    assert_eq!(
        e.classify(),
        Retryability::Throttled(Duration::from_secs(9)),
        "{e}"
    );
    let e = status_error(429, vec![], b"").await;
    assert_eq!(e.classify(), Retryability::Retryable, "{e}");
    let e = status_error(413, vec![], b"too big").await;
    assert_eq!(e.classify(), Retryability::TooLarge, "{e}");
    let e = status_error(400, vec![], b"bad payload").await;
    assert_eq!(e.classify(), Retryability::Permanent, "{e}");
    assert!(e.to_string().contains("bad payload"), "{e}");
    let e = status_error(500, vec![], b"").await;
    assert_eq!(e.classify(), Retryability::Permanent, "{e}");
}

#[tokio::test]
async fn http_retry_after_as_http_date_is_honoured() {
    // A date far in the future is capped at five minutes.
    let e = status_error(
        503,
        vec![("retry-after", "Fri, 01 Jan 2100 00:00:00 GMT".into())],
        b"",
    )
    .await;
    assert_eq!(
        e.classify(),
        Retryability::Throttled(Duration::from_secs(300)),
        "{e}"
    );
}

#[tokio::test]
async fn http_error_message_comes_from_rpc_status_body() {
    // google.rpc.Status { code: 3, message: "no spans" }
    let body: &'static [u8] = b"\x08\x03\x12\x08no spans";
    let e = status_error(
        400,
        vec![("content-type", "application/x-protobuf".into())],
        body,
    )
    .await;
    assert!(
        matches!(&e, TransportError::HttpStatus { message, .. } if message == "no spans"),
        "{e}"
    );
}

#[tokio::test]
async fn http_response_over_cap_is_refused() {
    let huge = Bytes::from(vec![b'x'; 5 * 1024 * 1024]);
    let (addr, _rx) = serve(
        false,
        Arc::new(move |_| Reply::Http {
            status: 200,
            headers: vec![],
            body: huge.clone(),
        }),
    )
    .await;
    let e = exporter(format!("http://{addr}"))
        .send(trace_batch(1))
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::ResponseTooLarge { .. }), "{e}");
}

#[tokio::test]
async fn http_request_over_max_is_refused_before_sending() {
    let (addr, mut rx) = serve(false, Arc::new(|_| ok_reply())).await;
    let exp = Exporter::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_protocol(Protocol::HttpProtobuf)
        .with_max_request_bytes(64)
        .build()
        .unwrap();
    let e = exp.send(trace_batch(10)).await.unwrap_err();
    assert_eq!(e.classify(), Retryability::TooLarge);
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn http_to_grpc_port_reports_protocol_mismatch() {
    let (addr, _rx) = serve(true, Arc::new(|_| Reply::GrpcOk(Bytes::new()))).await;
    let e = exporter(format!("http://{addr}"))
        .send(trace_batch(1))
        .await
        .unwrap_err();
    assert_eq!(e.connect_step(), Some(ConnectStep::ProtocolMismatch), "{e}");
    assert!(e.to_string().contains("4318"), "{e}");
}

#[tokio::test]
async fn http_to_closed_port_is_refused_connection_error() {
    let addr = closed_port().await;
    let e = exporter(format!("http://{addr}"))
        .send(trace_batch(1))
        .await
        .unwrap_err();
    assert_eq!(e.connect_step(), Some(ConnectStep::Refused), "{e}");
    assert!(e.is_connection_error());
    assert_eq!(e.classify(), Retryability::Retryable);
}

#[tokio::test]
async fn unresolvable_host_is_a_dns_error() {
    let e = exporter("http://no-such-host.invalid:4318".into())
        .send(trace_batch(1))
        .await
        .unwrap_err();
    assert_eq!(e.connect_step(), Some(ConnectStep::Dns), "{e}");
}

#[tokio::test]
async fn balanced_exporter_fails_over_and_round_robins() {
    let dead = closed_port().await;
    let (a, mut rx_a) = serve(false, Arc::new(|_| ok_reply())).await;
    let (b, mut rx_b) = serve(false, Arc::new(|_| ok_reply())).await;
    let exp = Exporter::builder()
        .with_endpoint(format!("http://{dead}"))
        .with_additional_endpoint(format!("http://{a}"))
        .with_additional_endpoint(format!("http://{b}"))
        .with_protocol(Protocol::HttpProtobuf)
        .build()
        .unwrap();
    assert_eq!(exp.endpoints(), 3);
    for _ in 0..6 {
        exp.send(trace_batch(1)).await.unwrap();
    }
    let (mut na, mut nb) = (0, 0);
    while rx_a.try_recv().is_ok() {
        na += 1;
    }
    while rx_b.try_recv().is_ok() {
        nb += 1;
    }
    // Every request succeeded although the first endpoint is down, and both
    // live endpoints took a share.
    assert_eq!(na + nb, 6);
    assert!(na >= 2 && nb >= 2, "a={na} b={nb}");
}

#[tokio::test]
async fn balanced_exporter_does_not_fail_over_on_server_status() {
    let (a, mut rx_a) = serve(
        false,
        Arc::new(|_| Reply::Http {
            status: 400,
            headers: vec![],
            body: Bytes::new(),
        }),
    )
    .await;
    let (b, mut rx_b) = serve(false, Arc::new(|_| ok_reply())).await;
    let exp = Exporter::builder()
        .with_endpoint(format!("http://{a}"))
        .with_additional_endpoint(format!("http://{b}"))
        .with_protocol(Protocol::HttpProtobuf)
        .build()
        .unwrap();
    let first = exp.send(trace_batch(1)).await;
    assert!(matches!(
        first,
        Err(TransportError::HttpStatus { status: 400, .. })
    ));
    next(&mut rx_a).await;
    assert!(
        rx_b.try_recv().is_err(),
        "a server answer is not a reason to fail over"
    );
}

#[tokio::test(start_paused = true)]
async fn http_request_timeout_is_reported() {
    // A listener that accepts but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let conn = listener.accept().await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(conn);
    });
    let exp = Exporter::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_protocol(Protocol::HttpProtobuf)
        .with_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let e = exp.send(trace_batch(1)).await.unwrap_err();
    assert!(
        matches!(e, TransportError::Timeout { after, .. } if after == Duration::from_secs(2)),
        "{e}"
    );
    assert_eq!(e.classify(), Retryability::Retryable);
    hold.abort();
}

#[cfg(feature = "http-json")]
#[tokio::test]
async fn the_request_cap_applies_to_the_json_body_actually_sent() {
    let (addr, mut rx) = serve(false, Arc::new(|_| ok_reply())).await;
    let batch = trace_batch(50);
    // Room for the protobuf, not for its larger JSON form.
    let max = batch.byte_size() + 16;
    let exp = Exporter::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_protocol(Protocol::HttpJson)
        .with_max_request_bytes(max)
        .build()
        .unwrap();
    let err = exp.send(batch.clone()).await.unwrap_err();
    assert!(
        matches!(err, TransportError::RequestTooLarge { size, max: m } if size > max && m == max),
        "{err}"
    );
    // Too large is what the recovery layer splits on.
    assert_eq!(err.classify(), Retryability::TooLarge);
    // Nothing was sent.
    assert!(rx.try_recv().is_err());
}
