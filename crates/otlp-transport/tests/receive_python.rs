//! Interop with a peer nobody here wrote: the official OpenTelemetry Python SDK
//! exporters (gRPC and HTTP/protobuf, pinned in tests/python/requirements.txt)
//! send a known set of spans, log records and metric points to our receivers;
//! the batches are decoded here with the prost types and checked field by field.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(feature = "grpc", feature = "http", feature = "gzip"))]

mod receive_support;

use receive_support as support;

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::{Arc, atomic::AtomicUsize},
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
        trace::v1::ExportTraceServiceRequest,
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    metrics::v1::{metric::Data, number_data_point},
};
use otlp_core::{Batch, Retryability, Signal};
use otlp_test_support::python;
use otlp_transport::{GrpcReceiver, HttpReceiver, ReceiverLimits};
use prost::Message;

use support::{Mode, Recorder, Running};

/// The venv python: `OTLP_PYTHON`, else `<workspace>/.ci/venv/bin/python`.
/// Runs the peer script to completion (bounded) and returns its stdout.
async fn run_peer(args: Vec<String>) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/receive_peer.py");
    let python = python();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&python)
            .arg(&script)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "python peer failed ({}): stdout: {stdout} stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    })
    .await
    .unwrap()
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn of(batches: &[Batch], signal: Signal) -> Vec<Batch> {
    batches
        .iter()
        .filter(|b| b.signal() == signal)
        .cloned()
        .collect()
}

/// Checks everything the script sent arrived once, with its field values.
fn check_received(batches: &[Batch], service: &str) {
    // Traces: three spans, one trace, children point at the parent.
    let traces = of(batches, Signal::Traces);
    assert_eq!(traces.iter().map(Batch::items).sum::<u64>(), 3);
    let joined = Batch::concat(Signal::Traces, &traces).unwrap();
    let req = ExportTraceServiceRequest::decode(joined.bytes().clone()).unwrap();
    let rs = &req.resource_spans[0];
    let res_attrs = &rs.resource.as_ref().unwrap().attributes;
    assert_eq!(
        attr(res_attrs, "service.name"),
        Some(&Value::StringValue(service.to_owned()))
    );
    assert_eq!(attr(res_attrs, "interop.run"), Some(&Value::IntValue(7)));
    let scope = &rs.scope_spans[0];
    let scope_info = scope.scope.as_ref().unwrap();
    assert_eq!(
        (scope_info.name.as_str(), scope_info.version.as_str()),
        ("interop.tracer", "1.2.3")
    );
    let spans: Vec<_> = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let parent = spans
        .iter()
        .find(|s| s.name == "parent")
        .expect("parent span");
    assert_eq!(parent.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(parent.trace_id.len(), 16);
    assert_eq!(parent.span_id.len(), 8);
    assert!(parent.parent_span_id.is_empty());
    assert!(parent.end_time_unix_nano >= parent.start_time_unix_nano);
    for i in [1i64, 2] {
        let child = spans
            .iter()
            .find(|s| s.name == format!("child-{i}"))
            .expect("child span");
        assert_eq!(child.kind, 1, "SPAN_KIND_INTERNAL");
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(child.parent_span_id, parent.span_id);
        assert_eq!(
            attr(&child.attributes, "interop.index"),
            Some(&Value::IntValue(i))
        );
        assert_eq!(
            attr(&child.attributes, "interop.ratio"),
            Some(&Value::DoubleValue(i as f64 / 4.0))
        );
        assert_eq!(
            attr(&child.attributes, "interop.flag"),
            Some(&Value::BoolValue(i == 2))
        );
        assert_eq!(child.events[0].name, "step");
        assert_eq!(
            attr(&child.events[0].attributes, "n"),
            Some(&Value::IntValue(i))
        );
    }

    // Logs: two warnings, in order.
    let logs = of(batches, Signal::Logs);
    assert_eq!(logs.iter().map(Batch::items).sum::<u64>(), 2);
    let joined = Batch::concat(Signal::Logs, &logs).unwrap();
    let req = ExportLogsServiceRequest::decode(joined.bytes().clone()).unwrap();
    let records: Vec<_> = req
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .collect();
    for (i, rec) in records.iter().enumerate() {
        assert_eq!(
            rec.body.as_ref().and_then(|b| b.value.as_ref()),
            Some(&Value::StringValue(format!("log-{i}")))
        );
        assert_eq!(rec.severity_number, 13, "SEVERITY_NUMBER_WARN");
        assert_eq!(rec.severity_text, "WARN");
        assert_eq!(
            attr(&rec.attributes, "interop.index"),
            Some(&Value::IntValue(i as i64))
        );
    }
    assert_eq!(
        req.resource_logs[0].scope_logs[0]
            .scope
            .as_ref()
            .unwrap()
            .name,
        "interop.logger"
    );

    // Metrics: two counter points (5 and 7) and one histogram point (count 3, sum 7.5).
    let metrics = of(batches, Signal::Metrics);
    assert_eq!(metrics.iter().map(Batch::items).sum::<u64>(), 3);
    let joined = Batch::concat(Signal::Metrics, &metrics).unwrap();
    let req = ExportMetricsServiceRequest::decode(joined.bytes().clone()).unwrap();
    let all: Vec<_> = req
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .collect();
    let counter = all
        .iter()
        .find(|m| m.name == "interop.requests")
        .expect("counter");
    let Some(Data::Sum(sum)) = &counter.data else {
        panic!("counter is a sum: {counter:?}")
    };
    assert!(sum.is_monotonic);
    let mut values: Vec<(String, i64)> = sum
        .data_points
        .iter()
        .map(|p| {
            let Some(Value::StringValue(route)) = attr(&p.attributes, "route") else {
                panic!("route attribute")
            };
            let Some(number_data_point::Value::AsInt(v)) = p.value else {
                panic!("integer point")
            };
            (route.clone(), v)
        })
        .collect();
    values.sort();
    assert_eq!(values, [("/a".to_owned(), 5), ("/b".to_owned(), 7)]);
    let hist = all
        .iter()
        .find(|m| m.name == "interop.latency")
        .expect("histogram");
    assert_eq!(hist.unit, "ms");
    let Some(Data::Histogram(h)) = &hist.data else {
        panic!("histogram data: {hist:?}")
    };
    assert_eq!(h.data_points.len(), 1);
    assert_eq!(h.data_points[0].count, 3);
    assert_eq!(h.data_points[0].sum, Some(7.5));
    assert_eq!(h.data_points[0].bucket_counts.iter().sum::<u64>(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_grpc_exporter_delivers_spans_logs_and_metrics() {
    let inner = Recorder::new(Mode::Accept);
    let bound = GrpcReceiver::new(inner.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = Running::start(bound);
    let out = run_peer(vec!["grpc".into(), server.addr.to_string(), "gzip".into()]).await;
    assert!(
        out.contains("traces=SUCCESS logs=SUCCESS metrics=SUCCESS"),
        "{out}"
    );
    check_received(&inner.batches(), "python-interop-grpc");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_http_exporter_delivers_spans_logs_and_metrics() {
    let inner = Recorder::new(Mode::Accept);
    let bound = HttpReceiver::new(inner.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = Running::start(bound);
    let out = run_peer(vec![
        "http".into(),
        format!("http://{}", server.addr),
        "gzip".into(),
    ])
    .await;
    assert!(
        out.contains("traces=SUCCESS logs=SUCCESS metrics=SUCCESS"),
        "{out}"
    );
    check_received(&inner.batches(), "python-interop-http");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_exporter_retries_after_unavailable_with_retry_info() {
    // The first answer of each signal is UNAVAILABLE with a 200 ms RetryInfo.
    let left = Arc::new(AtomicUsize::new(3));
    let inner = Recorder::new(Mode::FailFirst(left.clone(), Retryability::Retryable));
    let limits = ReceiverLimits::new().with_retry_after(Duration::from_millis(200));
    let bound = GrpcReceiver::new(inner.clone())
        .with_limits(limits)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = Running::start(bound);
    let out = run_peer(vec!["grpc".into(), server.addr.to_string()]).await;
    assert!(
        out.contains("traces=SUCCESS logs=SUCCESS metrics=SUCCESS"),
        "{out}"
    );
    assert_eq!(
        left.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "three refusals were answered"
    );
    check_received(&inner.batches(), "python-interop-grpc");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_http_exporter_retries_after_503_with_retry_after() {
    let left = Arc::new(AtomicUsize::new(3));
    let inner = Recorder::new(Mode::FailFirst(left.clone(), Retryability::Retryable));
    let limits = ReceiverLimits::new().with_retry_after(Duration::from_millis(300));
    let bound = HttpReceiver::new(inner.clone())
        .with_limits(limits)
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let server = Running::start(bound);
    let out = run_peer(vec!["http".into(), format!("http://{}", server.addr)]).await;
    assert!(
        out.contains("traces=SUCCESS logs=SUCCESS metrics=SUCCESS"),
        "{out}"
    );
    assert_eq!(
        left.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "three refusals were answered"
    );
    check_received(&inner.batches(), "python-interop-http");
    server.shutdown().await;
}
