//! Interop: our exporters send all three signals over gRPC, HTTP/protobuf
//! (gzip) and HTTP/JSON to a receiver that decodes with Google's protobuf
//! runtime (tests/python/export_peer.py, pinned packages from
//! tests/python/requirements.txt); it reports whether what it decoded equals
//! what we meant to send. The HTTP/JSON leg runs with feature `http-json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(feature = "grpc", feature = "http", feature = "gzip"))]

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
        trace::v1::ExportTraceServiceRequest,
    },
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs},
    metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, Sum, metric::Data, number_data_point,
    },
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span::Event},
};
use otlp_core::{Batch, Signal};
use otlp_test_support::python;
use otlp_transport::{Compression, Exporter, Protocol};
use prost::Message as _;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        key_strindex: 0,
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", Value::StringValue("interop".into()))],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "otlp-transport-test".into(),
        version: "1.0".into(),
        ..Default::default()
    })
}

fn traces() -> ExportTraceServiceRequest {
    let spans = (0..3u8)
        .map(|i| Span {
            trace_id: vec![0xa0 + i; 16],
            span_id: vec![i + 1; 8],
            parent_span_id: if i > 0 { vec![1; 8] } else { vec![] },
            name: format!("op-{i}"),
            kind: i32::from(i) + 1,
            start_time_unix_nano: 1_700_000_000_123_456_789 + u64::from(i),
            end_time_unix_nano: 1_700_000_001_123_456_789 + u64::from(i),
            attributes: vec![
                kv("int", Value::IntValue(-9_007_199_254_740_993)),
                kv("double", Value::DoubleValue(1.5)),
                kv("bool", Value::BoolValue(true)),
                kv("bytes", Value::BytesValue(vec![0, 1, 254, 255])),
            ],
            events: vec![Event {
                time_unix_nano: 1_700_000_000_500_000_000,
                name: "ev".into(),
                ..Default::default()
            }],
            status: Some(Status {
                message: "boom".into(),
                code: 2,
            }),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metrics() -> ExportMetricsServiceRequest {
    let point = |v: number_data_point::Value| NumberDataPoint {
        time_unix_nano: 1_700_000_000_000_000_001,
        start_time_unix_nano: 1_699_999_999_000_000_000,
        attributes: vec![kv("host", Value::StringValue("a".into()))],
        value: Some(v),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![
                    Metric {
                        name: "requests".into(),
                        unit: "1".into(),
                        data: Some(Data::Sum(Sum {
                            data_points: vec![point(number_data_point::Value::AsInt(
                                12_345_678_901_234,
                            ))],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "temperature".into(),
                        data: Some(Data::Gauge(Gauge {
                            // Non-finite doubles travel by name in OTLP/JSON
                            // ("NaN", "Infinity", "-Infinity").
                            data_points: vec![
                                point(number_data_point::Value::AsDouble(21.25)),
                                point(number_data_point::Value::AsDouble(f64::NAN)),
                                point(number_data_point::Value::AsDouble(f64::INFINITY)),
                                point(number_data_point::Value::AsDouble(f64::NEG_INFINITY)),
                            ],
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "latency".into(),
                        unit: "ms".into(),
                        data: Some(Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                time_unix_nano: 1_700_000_000_000_000_002,
                                count: 6,
                                sum: Some(30.5),
                                bucket_counts: vec![1, 2, 3],
                                explicit_bounds: vec![1.0, 10.0],
                                min: Some(0.5),
                                max: Some(20.0),
                                ..Default::default()
                            }],
                            aggregation_temporality: 1,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: (0..2u8)
                    .map(|i| LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000 + u64::from(i),
                        observed_time_unix_nano: 1_700_000_000_000_000_100,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(AnyValue {
                            value: Some(Value::StringValue(format!("hello {i}"))),
                        }),
                        attributes: vec![kv("n", Value::IntValue(i64::from(i)))],
                        trace_id: vec![0xcd; 16],
                        span_id: vec![0xef; 8],
                        flags: 1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn recv(rx: &mut tokio::sync::mpsc::Receiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("python peer answered in time")
        .expect("python peer printed a line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_protobuf_runtime_decodes_what_we_export_over_all_protocols() {
    let dir = tempfile::tempdir().unwrap();
    let encoded = [
        (Signal::Traces, traces().encode_to_vec()),
        (Signal::Metrics, metrics().encode_to_vec()),
        (Signal::Logs, logs().encode_to_vec()),
    ];
    for (signal, bytes) in &encoded {
        std::fs::write(dir.path().join(format!("{}.bin", signal.as_str())), bytes).unwrap();
    }
    let exporters = [
        (
            "grpc",
            Exporter::builder()
                .with_endpoint("grpc")
                .with_protocol(Protocol::Grpc),
        ),
        (
            "http-protobuf",
            Exporter::builder()
                .with_endpoint("http")
                .with_protocol(Protocol::HttpProtobuf)
                .with_compression(Compression::Gzip),
        ),
        #[cfg(feature = "http-json")]
        (
            "http-json",
            Exporter::builder()
                .with_endpoint("http")
                .with_protocol(Protocol::HttpJson),
        ),
    ];
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/export_peer.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(dir.path())
        .arg(exporters.len().checked_mul(3).unwrap().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(32);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().take(10) {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let ports: serde_json::Value = serde_json::from_str(&recv(&mut rx).await).unwrap();
    let grpc_port = ports["grpc"].as_u64().unwrap();
    let http_port = ports["http"].as_u64().unwrap();

    let mut results = Vec::new();
    for (transport, builder) in exporters {
        let port = if builder.config().endpoint == "grpc" {
            grpc_port
        } else {
            http_port
        };
        let exporter = builder
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        for (signal, bytes) in &encoded {
            let batch = Batch::from_encoded(*signal, Bytes::from(bytes.clone())).unwrap();
            let resp = exporter
                .send(batch)
                .await
                .unwrap_or_else(|e| panic!("{transport} {signal:?}: {e}"));
            assert!(resp.is_full_success(), "{transport} {signal:?}: {resp:?}");
            let line: serde_json::Value = serde_json::from_str(&recv(&mut rx).await).unwrap();
            results.push((transport, signal.as_str(), line));
        }
    }
    for (transport, signal, line) in &results {
        assert_eq!(line["transport"], *transport, "{line}");
        assert_eq!(line["signal"], *signal, "{line}");
        assert_eq!(
            line["equal"], true,
            "{transport} {signal} decoded differently: {line:#}"
        );
        assert!(
            line["user_agent"]
                .as_str()
                .unwrap()
                .contains("OTel-OTLP-Exporter-Rust/"),
            "{line}"
        );
    }
    let status = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        None
    })
    .await
    .unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "python peer exited cleanly"
    );
    reader.join().unwrap();
}
