//! The OTLP/HTTP receiver on real sockets at 127.0.0.1: status codes, limits,
//! encodings, JSON, back-pressure and shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(feature = "http", feature = "gzip"))]

mod receive_support;

use receive_support as support;

use std::{sync::Arc, time::Duration};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use otlp_core::{Retryability, Signal};
use otlp_transport::{HttpReceiver, ReceiveError, ReceiverLimits, google_rpc};
use prost::Message;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Notify,
};

use support::{Mode, Recorder, Running, gzip, trace_bytes};

const BOUND: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn status_body(&self) -> google_rpc::Status {
        assert_eq!(self.header("content-type"), Some("application/x-protobuf"));
        google_rpc::Status::decode(self.body.as_slice()).unwrap()
    }
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response head in {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Sends one request on a fresh connection and reads the whole answer.
async fn send(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> Reply {
    tokio::time::timeout(BOUND, async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        parse(&raw)
    })
    .await
    .expect("answer within the bound")
}

async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    content_type: &str,
    extra: &str,
    body: &[u8],
) -> Reply {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    );
    send(addr, &head, body).await
}

async fn start(inner: &Recorder, limits: ReceiverLimits) -> Running {
    let bound = HttpReceiver::new(inner.clone())
        .with_limits(limits)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert_ne!(bound.local_addr().port(), 0);
    Running::start(bound)
}

#[tokio::test]
async fn protobuf_export_is_forwarded_byte_for_byte_and_answered_200() {
    let inner = Recorder::new(Mode::Accept);
    let server = start(&inner, ReceiverLimits::new()).await;
    let body = trace_bytes(3);
    let reply = post(
        server.addr,
        "/v1/traces",
        "application/x-protobuf",
        "",
        &body,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/x-protobuf"));
    assert!(reply.body.is_empty(), "full success is an empty response");
    let seen = inner.batches();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].signal(), Signal::Traces);
    assert_eq!(seen[0].items(), 3);
    assert_eq!(seen[0].bytes(), &body);
    server.shutdown().await;
}

#[tokio::test]
async fn partial_success_from_inner_is_returned_in_the_response() {
    let inner = Recorder::new(Mode::Partial(2, "two spans had no name"));
    let server = start(&inner, ReceiverLimits::new()).await;
    let reply = post(
        server.addr,
        "/v1/traces",
        "application/x-protobuf",
        "",
        &trace_bytes(4),
    )
    .await;
    assert_eq!(reply.status, 200);
    let resp = ExportTraceServiceResponse::decode(reply.body.as_slice()).unwrap();
    let partial = resp.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert_eq!(partial.error_message, "two spans had no name");
    server.shutdown().await;
}

/// Proto3 JSON spells doubles as strings too, NaN and the infinities by name:
/// the data arrives whole (it used to be answered 200 and dropped), and a
/// value that is no double is a 400 naming the field, never a silent loss.
#[cfg(feature = "http-json")]
#[tokio::test]
async fn json_doubles_as_strings_arrive_and_unparseable_ones_are_a_400_with_the_path() {
    use opentelemetry_proto::tonic::{
        collector::metrics::v1::ExportMetricsServiceRequest, metrics::v1::metric,
    };
    let inner = Recorder::new(Mode::Accept);
    let server = start(&inner, ReceiverLimits::new()).await;
    let json = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"aggregationTemporality":2,
        "dataPoints":[{"count":"2","sum":"NaN","min":"-Infinity","max":"3.5","bucketCounts":["1","1"],"explicitBounds":["Infinity"]}]}}]}]}]}"#;
    let reply = post(server.addr, "/v1/metrics", "application/json", "", json).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let seen = inner.batches();
    assert_eq!(seen[0].items(), 1);
    let req = ExportMetricsServiceRequest::decode(seen[0].bytes().clone()).unwrap();
    let Some(metric::Data::Histogram(h)) =
        &req.resource_metrics[0].scope_metrics[0].metrics[0].data
    else {
        panic!("{req:?}")
    };
    let p = &h.data_points[0];
    assert!(p.sum.is_some_and(f64::is_nan));
    assert_eq!((p.min, p.max), (Some(f64::NEG_INFINITY), Some(3.5)));
    assert_eq!(p.explicit_bounds, [f64::INFINITY]);

    let json = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"dataPoints":[{"min":"abc"}]}}]}]}]}"#;
    let reply = post(server.addr, "/v1/metrics", "application/json", "", json).await;
    assert_eq!(reply.status, 400);
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message
            .contains("resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].min"),
        "{message}"
    );
    assert_eq!(inner.batches().len(), 1, "nothing more was accepted");
    server.shutdown().await;
}

/// Decoding JSON takes memory the body's size does not show: the receiver
/// takes it from the intake budget first, so a JSON body that would need
/// more than the whole budget is a 413, not memory past the limit.
#[cfg(feature = "http-json")]
#[tokio::test]
async fn json_decoding_memory_comes_out_of_the_intake_budget() {
    let budget = otlp_transport::IntakeBudget::new(1 << 20);
    let inner = Recorder::new(Mode::Accept);
    let server = start(
        &inner,
        ReceiverLimits::new().with_intake_budget(budget.clone()),
    )
    .await;
    // 200 KB of JSON: small as a body, over the 1 MiB budget once decoded.
    let points = vec![r#"{"asInt":"1"}"#; 15_000].join(",");
    let json = format!(
        r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"g","gauge":{{"dataPoints":[{points}]}}}}]}}]}}]}}"#
    );
    assert!(json.len() < 1 << 18);
    let reply = post(
        server.addr,
        "/v1/metrics",
        "application/json",
        "",
        json.as_bytes(),
    )
    .await;
    assert_eq!(
        reply.status,
        413,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(inner.batches().is_empty());
    // A small one fits, and the budget is whole again afterwards.
    let json = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","gauge":{"dataPoints":[{"asInt":"1"}]}}]}]}]}"#;
    let reply = post(server.addr, "/v1/metrics", "application/json", "", json).await;
    assert_eq!(reply.status, 200);
    assert_eq!(budget.used(), 0);
    server.shutdown().await;
}

#[cfg(feature = "http-json")]
#[tokio::test]
async fn json_export_is_reencoded_and_answered_in_json() {
    let inner = Recorder::new(Mode::Partial(1, "one log dropped"));
    let server = start(&inner, ReceiverLimits::new()).await;
    let json = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json-svc"}}]},
        "scopeLogs":[{"scope":{"name":"s"},"logRecords":[
          {"timeUnixNano":"1700000000000000001","severityNumber":9,"body":{"stringValue":"hello"},
           "traceId":"0102030405060708090A0B0C0D0E0F10","spanId":"a1a2a3a4a5a6a7a8"},
          {"observedTimeUnixNano":1700000000000000002,"body":{"intValue":"9007199254740993"}}]}]}]}"#;
    let reply = post(
        server.addr,
        "/v1/logs",
        "application/json; charset=utf-8",
        "",
        json,
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedLogRecords"], "1");
    let seen = inner.batches();
    assert_eq!(seen[0].items(), 2);
    let req = opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest::decode(
        seen[0].bytes().clone(),
    )
    .unwrap();
    let records = &req.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(records[0].time_unix_nano, 1_700_000_000_000_000_001);
    assert_eq!(records[0].trace_id, (1..=16).collect::<Vec<u8>>());
    assert_eq!(
        records[0].span_id,
        [0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8]
    );
    assert_eq!(
        records[1].observed_time_unix_nano,
        1_700_000_000_000_000_002
    );
    // 2^53 + 1 survives because it travels as a string, not a float.
    assert_eq!(
        records[1].body.as_ref().unwrap().value,
        Some(
            opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(
                9_007_199_254_740_993
            )
        )
    );
    server.shutdown().await;
}

#[cfg(feature = "http-json")]
#[tokio::test]
async fn malformed_json_gets_400_with_a_json_status() {
    let inner = Recorder::new(Mode::Accept);
    let server = start(&inner, ReceiverLimits::new()).await;
    let reply = post(
        server.addr,
        "/v1/traces",
        "application/json",
        "",
        b"{\"resourceSpans\": [{",
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["code"], 3);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("malformed OTLP/JSON traces request")
    );
    assert!(inner.batches().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn gzip_and_deflate_bodies_are_decompressed() {
    let inner = Recorder::new(Mode::Accept);
    let server = start(&inner, ReceiverLimits::new()).await;
    let body = trace_bytes(5);
    let reply = post(
        server.addr,
        "/v1/traces",
        "application/x-protobuf",
        "Content-Encoding: gzip\r\n",
        &gzip(&body),
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut z, &body).unwrap();
    let reply = post(
        server.addr,
        "/v1/traces",
        "application/x-protobuf",
        "Content-Encoding: deflate\r\n",
        &z.finish().unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = inner.batches();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|b| b.bytes() == &body));
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_and_truncated_protobuf_get_400_with_a_message() {
    let inner = Recorder::new(Mode::Accept);
    let server = start(&inner, ReceiverLimits::new()).await;
    // A resource field claiming 100 bytes with 2 present.
    let reply = post(
        server.addr,
        "/v1/metrics",
        "application/x-protobuf",
        "",
        &[0x0a, 100, 1, 2],
    )
    .await;
    assert_eq!(reply.status, 400);
    let st = reply.status_body();
    assert_eq!(st.code, 3);
    assert!(
        st.message.contains("invalid OTLP metrics request"),
        "{}",
        st.message
    );
    assert!(st.message.contains("truncated"), "{}", st.message);

    // A valid request cut short on the wire: the client declares more than it sends.
    let body = trace_bytes(2);
    let reply = tokio::time::timeout(BOUND, async {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            body.len() + 50
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body).await.unwrap();
        s.shutdown().await.unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw).await;
        raw
    })
    .await
    .unwrap();
    // hyper either answers 400 or closes; it must never hand a cut request on.
    if !reply.is_empty() {
        assert_eq!(parse(&reply).status, 400);
    }
    // Corrupt gzip is a 400, not a 500.
    let reply = post(
        server.addr,
        "/v1/traces",
        "application/x-protobuf",
        "Content-Encoding: gzip\r\n",
        b"\x1f\x8bnot really",
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(reply.status_body().message.contains("not valid gzip"));
    assert!(inner.batches().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_path_method_content_type_and_encoding_get_404_405_415() {
    let inner = Recorder::new(Mode::Accept);
    let server = start(&inner, ReceiverLimits::new()).await;
    let body = trace_bytes(1);

    let reply = post(
        server.addr,
        "/v1/spans",
        "application/x-protobuf",
        "",
        &body,
    )
    .await;
    assert_eq!(reply.status, 404);
    assert!(
        reply
            .status_body()
            .message
            .contains("/v1/traces, /v1/metrics or /v1/logs")
    );

    let reply = send(
        server.addr,
        "GET /v1/traces HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));

    let reply = post(server.addr, "/v1/traces", "text/plain", "", &body).await;
    assert_eq!(reply.status, 415);
    assert!(
        reply
            .status_body()
            .message
            .contains("unsupported content type 'text/plain'")
    );

    let reply = post(
        server.addr,
        "/v1/traces",
        "application/x-protobuf",
        "Content-Encoding: br\r\n",
        &body,
    )
    .await;
    assert_eq!(reply.status, 415);
    assert!(
        reply
            .status_body()
            .message
            .contains("unsupported content encoding 'br'")
    );
    assert!(inner.batches().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn bodies_over_the_wire_limit_get_413_declared_or_streamed() {
    let inner = Recorder::new(Mode::Accept);
    let server = start(
        &inner,
        ReceiverLimits::new()
            .with_max_request_bytes(1024)
            .with_max_decompressed_bytes(4096),
    )
    .await;
    // Declared too large: refused from the header, before the body is read.
    let head = "POST /v1/traces HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000000000\r\n\r\n";
    let reply = send(server.addr, head, b"").await;
    assert_eq!(reply.status, 413);
    assert!(reply.status_body().message.contains("limit of 1024 bytes"));

    // Chunked with no length: refused while reading.
    let chunk = vec![0x0a_u8; 600];
    let mut body = Vec::new();
    for _ in 0..3 {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /v1/traces HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n";
    let reply = send(server.addr, head, &body).await;
    assert_eq!(reply.status, 413);
    assert!(inner.batches().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_20_mib_request_fits_the_default_64_mib_limit() {
    // The OTLP specification recommends servers take 64 MiB; 16 MiB was refused with 413.
    let inner = Recorder::new(Mode::Accept);
    let server = start(&inner, ReceiverLimits::new()).await;
    let body = trace_bytes(500_000);
    assert!(body.len() > 20 << 20, "{}", body.len());
    let reply = post(
        server.addr,
        "/v1/traces",
        "application/x-protobuf",
        "",
        &body,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(inner.batches()[0].items(), 500_000);
    server.shutdown().await;
}

#[cfg(feature = "zstd")]
#[tokio::test]
async fn zstd_bodies_are_decompressed_and_zstd_bombs_refused_with_413() {
    let inner = Recorder::new(Mode::Accept);
    let limits = ReceiverLimits::new()
        .with_max_request_bytes(1 << 20)
        .with_max_decompressed_bytes(2 << 20);
    let server = start(&inner, limits).await;
    let body = trace_bytes(5);
    let reply = post(
        server.addr,
        "/v1/traces",
        "application/x-protobuf",
        "Content-Encoding: zstd\r\n",
        &zstd::bulk::compress(&body, 3).unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(inner.batches()[0].bytes(), &body);
    // 256 MiB of zeros: a few KiB on the wire, refused at 2 MiB decompressed.
    let bomb =
        zstd::stream::encode_all(std::io::Read::take(std::io::repeat(0), 256 << 20), 19).unwrap();
    assert!(bomb.len() < 1 << 20);
    let reply = post(
        server.addr,
        "/v1/logs",
        "application/x-protobuf",
        "Content-Encoding: zstd\r\n",
        &bomb,
    )
    .await;
    assert_eq!(reply.status, 413);
    assert!(reply.status_body().message.contains(
        "decompressed request body is larger than the receiver's limit of 2097152 bytes"
    ));
    // Corrupt zstd is a 400 naming the encoding.
    let reply = post(
        server.addr,
        "/v1/traces",
        "application/x-protobuf",
        "Content-Encoding: zstd\r\n",
        b"not zstd at all",
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(reply.status_body().message.contains("not valid zstd"));
    assert_eq!(inner.batches().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_gzip_request_is_forwarded_upstream_as_received_not_recompressed() {
    // The relay's hop: receiver A -> exporter (gzip) -> receiver B.
    let upstream = Recorder::new(Mode::Accept);
    let b = start(&upstream, ReceiverLimits::new()).await;
    let inner = Recorder::new(Mode::Accept);
    let a = start(&inner, ReceiverLimits::new()).await;
    let body = trace_bytes(50);
    // Level 9: not what the exporter (level 1) would make of the same bytes.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &body).unwrap();
    let sent = enc.finish().unwrap();
    let reply = post(
        a.addr,
        "/v1/traces",
        "application/x-protobuf",
        "Content-Encoding: gzip\r\n",
        &sent,
    )
    .await;
    assert_eq!(reply.status, 200);
    let received = inner.batches().remove(0);
    assert_eq!(received.bytes(), &body);
    assert!(received.has_wire_form("gzip"));
    let exporter = otlp_transport::Exporter::builder()
        .with_endpoint(format!("http://{}", b.addr))
        .with_protocol(otlp_transport::Protocol::HttpProtobuf)
        .with_compression(otlp_transport::Compression::Gzip)
        .build()
        .unwrap();
    exporter.send(received).await.unwrap();
    let forwarded = upstream.batches().remove(0);
    assert_eq!(forwarded.bytes(), &body);
    let on_the_wire = forwarded.wire_form("gzip", |_| Err(())).unwrap();
    assert_eq!(on_the_wire, sent, "forwarded as received, byte for byte");
    // deflate is not a form the exporter sends: nothing is kept.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut z, &body).unwrap();
    let reply = post(
        a.addr,
        "/v1/traces",
        "application/x-protobuf",
        "Content-Encoding: deflate\r\n",
        &z.finish().unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let received = inner.batches().remove(1);
    assert!(!received.has_wire_form("gzip"));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn gzip_bomb_is_refused_with_413_at_the_decompressed_limit() {
    let inner = Recorder::new(Mode::Accept);
    let limits = ReceiverLimits::new()
        .with_max_request_bytes(1 << 20)
        .with_max_decompressed_bytes(2 << 20);
    let server = start(&inner, limits).await;
    // 256 MiB of zeros: about 250 KiB on the wire.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let reply = post(
        server.addr,
        "/v1/logs",
        "application/x-protobuf",
        "Content-Encoding: gzip\r\n",
        &bomb,
    )
    .await;
    assert_eq!(reply.status, 413);
    assert!(reply.status_body().message.contains(
        "decompressed request body is larger than the receiver's limit of 2097152 bytes"
    ));
    assert!(inner.batches().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn not_ready_inner_gets_503_with_retry_after_and_status_details() {
    let inner = Recorder::new(Mode::NeverReady);
    let limits = ReceiverLimits::new()
        .with_ready_timeout(Duration::from_millis(20))
        .with_retry_after(Duration::from_millis(2500));
    let server = start(&inner, limits).await;
    let reply = post(
        server.addr,
        "/v1/traces",
        "application/x-protobuf",
        "",
        &trace_bytes(1),
    )
    .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("3"));
    let st = reply.status_body();
    assert_eq!(st.code, 14);
    assert!(st.message.contains("receiver busy"), "{}", st.message);
    let info = google_rpc::RetryInfo::decode(st.details[0].value.as_slice()).unwrap();
    assert_eq!(
        info.retry_delay,
        Some(google_rpc::Duration {
            seconds: 2,
            nanos: 500_000_000
        })
    );
    server.shutdown().await;
}

#[tokio::test]
async fn inner_failures_map_to_503_413_and_500_by_classification() {
    let inner = Recorder::new(Mode::Accept);
    let server = start(&inner, ReceiverLimits::new()).await;
    let cases = [
        (Retryability::Retryable, 503, Some("1")),
        (
            Retryability::Throttled(Duration::from_secs(7)),
            503,
            Some("7"),
        ),
        (Retryability::TooLarge, 413, None),
        (Retryability::Permanent, 500, None),
    ];
    for (class, status, retry_after) in cases {
        inner.set(Mode::Fail(class));
        let reply = post(
            server.addr,
            "/v1/traces",
            "application/x-protobuf",
            "",
            &trace_bytes(1),
        )
        .await;
        assert_eq!(reply.status, status, "{class:?}");
        assert_eq!(reply.header("retry-after"), retry_after, "{class:?}");
        assert!(
            reply.status_body().message.contains("upstream answered"),
            "{class:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_get_503() {
    let gate = Arc::new(Notify::new());
    let inner = Recorder::new(Mode::Block(gate.clone()));
    let server = start(
        &inner,
        ReceiverLimits::new().with_max_concurrent_requests(1),
    )
    .await;
    let addr = server.addr;
    let first = tokio::spawn(async move {
        post(
            addr,
            "/v1/traces",
            "application/x-protobuf",
            "",
            &trace_bytes(1),
        )
        .await
    });
    // Once the first request holds the only slot, the next one is refused.
    inner.wait_calls(1).await;
    let refused = post(
        addr,
        "/v1/traces",
        "application/x-protobuf",
        "",
        &trace_bytes(1),
    )
    .await;
    assert_eq!(refused.status, 503);
    assert!(
        refused
            .status_body()
            .message
            .contains("1 requests in flight")
    );
    assert!(refused.header("retry-after").is_some());
    gate.notify_one();
    assert_eq!(first.await.unwrap().status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn slow_header_trickle_is_disconnected_after_the_header_read_timeout() {
    let inner = Recorder::new(Mode::Accept);
    let limits = ReceiverLimits::new().with_header_read_timeout(Duration::from_millis(200));
    let server = start(&inner, limits).await;
    let outcome = tokio::time::timeout(BOUND, async {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: t\r\n")
            .await
            .unwrap();
        // Keep trickling one header byte every 50 ms; the server must cut us off.
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if s.write_all(b"X").await.is_err() {
                return "write failed";
            }
            let mut buf = [0u8; 512];
            match tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return "closed",
                Ok(Ok(_)) => return "answered",
                Err(_) => {}
            }
        }
        "still open"
    })
    .await
    .unwrap();
    assert!(
        outcome == "closed" || outcome == "write failed" || outcome == "answered",
        "{outcome}"
    );
    assert_ne!(outcome, "still open");
    assert!(inner.batches().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_busy_keep_alive_connection_lives_past_the_header_read_timeout() {
    // The first-request deadline must disarm once requests flow: this
    // connection carries a request every 50 ms for 5 header timeouts.
    let inner = Recorder::new(Mode::Accept);
    let limits = ReceiverLimits::new().with_header_read_timeout(Duration::from_millis(200));
    let server = start(&inner, limits).await;
    let body = trace_bytes(1);
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let answered = tokio::time::timeout(BOUND, async {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let mut answered = 0u32;
        for _ in 0..20 {
            if s.write_all(head.as_bytes()).await.is_err() || s.write_all(&body).await.is_err() {
                break;
            }
            // One answer: headers, then Content-Length bytes of body.
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let complete = loop {
                let Ok(n) = s.read(&mut buf).await else {
                    break false;
                };
                if n == 0 {
                    break false;
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let text = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + len {
                        break text.starts_with("http/1.1 200");
                    }
                }
            };
            if !complete {
                break;
            }
            answered += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        answered
    })
    .await
    .unwrap();
    assert_eq!(
        answered, 20,
        "the busy connection was cut after {answered} requests"
    );
    assert_eq!(inner.batches().len(), 20);
    server.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_and_later_ones_served() {
    let inner = Recorder::new(Mode::Accept);
    let server = start(&inner, ReceiverLimits::new().with_max_connections(1)).await;
    let mut held = TcpStream::connect(server.addr).await.unwrap();
    held.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    // The second connection is accepted and closed at once.
    let closed = tokio::time::timeout(BOUND, async {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
        let mut buf = Vec::new();
        matches!(s.read_to_end(&mut buf).await, Ok(0) | Err(_))
    })
    .await
    .unwrap();
    assert!(closed, "a connection over the limit gets no answer");
    drop(held);
    // Once the held connection is gone, new ones are served again (bounded retry).
    let mut ok = false;
    for _ in 0..100 {
        let attempt = tokio::time::timeout(Duration::from_secs(1), async {
            let mut s = TcpStream::connect(server.addr).await.ok()?;
            let body = trace_bytes(1);
            let head = format!("POST /v1/traces HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n", body.len());
            s.write_all(head.as_bytes()).await.ok()?;
            s.write_all(&body).await.ok()?;
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).await.ok()?;
            (!raw.is_empty()).then(|| parse(&raw).status)
        })
        .await;
        if let Ok(Some(200)) = attempt {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "a new connection is served after the held one closed");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_stops_accepting() {
    let gate = Arc::new(Notify::new());
    let inner = Recorder::new(Mode::Block(gate.clone()));
    let server = start(&inner, ReceiverLimits::new()).await;
    let addr = server.addr;
    let in_flight = tokio::spawn(async move {
        post(
            addr,
            "/v1/traces",
            "application/x-protobuf",
            "",
            &trace_bytes(2),
        )
        .await
    });
    // Let the request reach the inner service, then shut down and release it.
    inner.wait_calls(1).await;
    let stopping = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.notify_one();
    assert_eq!(in_flight.await.unwrap().status, 200);
    tokio::time::timeout(BOUND, stopping)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inner.batches().len(), 1);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn binding_a_taken_port_and_zero_limits_are_clear_errors() {
    let inner = Recorder::new(Mode::Accept);
    let first = HttpReceiver::new(inner.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let err = HttpReceiver::new(inner.clone())
        .bind(first.local_addr())
        .await
        .unwrap_err();
    assert!(matches!(err, ReceiveError::Bind { .. }));
    assert!(
        err.to_string().contains(&first.local_addr().to_string()),
        "{err}"
    );
    let err = HttpReceiver::new(inner)
        .with_limits(ReceiverLimits::new().with_max_concurrent_requests(0))
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "receiver limit 'max_concurrent_requests' is 0: use a positive count such as 256"
    );
}
