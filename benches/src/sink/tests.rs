//! Tests of the counting receiver over real sockets on 127.0.0.1.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::{
    logs::v1::logs_service_client::LogsServiceClient,
    trace::v1::trace_service_client::TraceServiceClient,
};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::shape;

/// One HTTP/1.1 request on a fresh connection; returns the status and body.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn sink(expect: Option<u64>) -> Sink {
    Sink::bind(&SinkConfig {
        expect,
        ..SinkConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn http_post_counts_requests_items_and_bytes_per_signal() {
    let sink = sink(None).await;
    let traces = shape::encode(&shape::trace_request(10)).unwrap();
    let logs = shape::encode(&shape::logs_request(3)).unwrap();
    assert_eq!(
        http(sink.http_addr(), "POST", "/v1/traces", &traces)
            .await
            .0,
        200
    );
    assert_eq!(
        http(sink.http_addr(), "POST", "/v1/traces", &traces)
            .await
            .0,
        200
    );
    assert_eq!(
        http(sink.http_addr(), "POST", "/v1/logs", &logs).await.0,
        200
    );
    let snap = sink.snapshot();
    let t = snap.signal(Signal::Traces);
    assert_eq!(
        (t.requests, t.items, t.bytes, t.errors),
        (2, 20, 2 * traces.len() as u64, 0)
    );
    let l = snap.signal(Signal::Logs);
    assert_eq!((l.requests, l.items, l.bytes), (1, 3, logs.len() as u64));
    assert_eq!(snap.items(), 23);
    assert!(snap.first_item_s.unwrap() <= snap.last_item_s.unwrap());
}

#[tokio::test]
async fn grpc_export_is_counted_from_the_raw_bytes() {
    let sink = sink(None).await;
    let url = format!("http://{}", sink.grpc_addr());
    let mut traces = TraceServiceClient::connect(url.clone()).await.unwrap();
    let req = shape::trace_request(5);
    let len = req.encoded_len() as u64;
    traces.export(req).await.unwrap();
    let mut logs = LogsServiceClient::connect(url).await.unwrap();
    logs.export(shape::logs_request(4)).await.unwrap();
    let snap = sink.snapshot();
    let t = snap.signal(Signal::Traces);
    assert_eq!((t.requests, t.items, t.bytes), (1, 5, len));
    assert_eq!(snap.signal(Signal::Logs).items, 4);
    assert_eq!(snap.signal(Signal::Metrics), SignalStats::default());
}

#[tokio::test]
async fn malformed_requests_are_refused_and_counted_as_errors() {
    let sink = sink(None).await;
    // A resource field claiming 5 bytes with only 1 present.
    let (status, body) = http(sink.http_addr(), "POST", "/v1/traces", &[0x0a, 0x05, 0x01]).await;
    assert_eq!(status, 400);
    assert!(body.contains("truncated"), "{body}");
    let mut client = TraceServiceClient::connect(format!("http://{}", sink.grpc_addr()))
        .await
        .unwrap();
    // A well-formed request is still counted after the bad one.
    client.export(shape::trace_request(1)).await.unwrap();
    let t = sink.snapshot().signal(Signal::Traces);
    assert_eq!((t.errors, t.items, t.requests), (1, 1, 1));
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let sink = Sink::bind(&SinkConfig {
        max_body: 16,
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let big = shape::encode(&shape::trace_request(2)).unwrap();
    assert_eq!(
        http(sink.http_addr(), "POST", "/v1/traces", &big).await.0,
        413
    );
    assert_eq!(sink.snapshot().signal(Signal::Traces).errors, 1);
}

#[tokio::test]
async fn expected_resolves_once_enough_items_arrived() {
    let sink = sink(Some(10)).await;
    let four = shape::encode(&shape::trace_request(4)).unwrap();
    let six = shape::encode(&shape::logs_request(6)).unwrap();
    http(sink.http_addr(), "POST", "/v1/traces", &four).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(50), sink.expected())
            .await
            .is_err(),
        "resolved after 4 of 10 items"
    );
    http(sink.http_addr(), "POST", "/v1/logs", &six).await;
    tokio::time::timeout(Duration::from_secs(10), sink.expected())
        .await
        .unwrap();
    // Still resolved for a later caller.
    tokio::time::timeout(Duration::from_secs(1), sink.expected())
        .await
        .unwrap();
}

#[tokio::test]
async fn stats_endpoint_returns_the_counts_as_json() {
    let sink = sink(None).await;
    let req = shape::encode(&shape::trace_request(3)).unwrap();
    http(sink.http_addr(), "POST", "/v1/traces", &req).await;
    let (status, body) = http(sink.http_addr(), "GET", "/stats", &[]).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["traces_items"], 3);
    assert_eq!(v["traces_bytes"], req.len() as u64);
    assert_eq!(v["items"], 3);
    let (status, body) = http(sink.http_addr(), "GET", "/nope", &[]).await;
    assert_eq!(status, 404);
    assert!(body.contains("/v1/traces"), "{body}");
}

#[test]
fn flags_set_addresses_and_limits() {
    let args = [
        "--grpc",
        "127.0.0.1:4317",
        "--expect",
        "1000",
        "--max-secs",
        "2.5",
    ];
    let cfg = SinkConfig::from_args(args.map(String::from)).unwrap();
    assert_eq!(cfg.grpc.port(), 4317);
    assert_eq!(cfg.http.port(), 0);
    assert_eq!(cfg.expect, Some(1000));
    assert_eq!(cfg.max_time, Duration::from_millis(2500));
    let err = SinkConfig::from_args(["--bogus".to_owned()]).unwrap_err();
    assert!(err.to_string().contains("--bogus"));
}

#[test]
fn process_cpu_time_is_read_and_grows_with_work() {
    let before = process_cpu_s().unwrap();
    // Burn some CPU (bounded): encode and count requests for at least 50 ms of CPU.
    let start = std::time::Instant::now();
    let mut n = 0;
    while process_cpu_s().unwrap() < before + 0.05 && start.elapsed() < Duration::from_secs(20) {
        let bytes = shape::encode(&shape::trace_request(64)).unwrap();
        n += count_items(Signal::Traces, &bytes).unwrap();
    }
    assert!(n > 0);
    assert!(process_cpu_s().unwrap() >= before + 0.05);
}
