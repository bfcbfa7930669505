//! The cut bytes decode, with the real OTLP types, to exactly the expected request.

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
        trace::v1::ExportTraceServiceRequest,
    },
    common::v1::{InstrumentationScope, KeyValue},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs},
    metrics::v1::{Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use prost::Message;

use super::*;

fn resource(i: usize) -> Resource {
    Resource {
        attributes: vec![KeyValue {
            key: format!("service.name.{i}"),
            value: None,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn scope(i: usize) -> InstrumentationScope {
    InstrumentationScope {
        name: format!("scope-{i}"),
        version: "1".to_owned(),
        ..Default::default()
    }
}

fn span(i: usize) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: format!("span-{i}"),
        start_time_unix_nano: i as u64,
        ..Default::default()
    }
}

#[test]
fn cut_traces_decode_to_grouped_request() {
    let groups_r: Vec<Group> = (0..2)
        .map(|r| Group::resource(&resource(r).encode_to_vec(), if r == 0 { "" } else { "s" }))
        .collect();
    let groups_s: Vec<Group> = (0..2)
        .map(|s| Group::scope(&scope(s).encode_to_vec(), "https://x/1.0"))
        .collect();
    let mut b = Batcher::new(Signal::Traces);
    // Interleave items of two resources and two scopes.
    let mut expected: Vec<(usize, usize, Vec<Span>)> = Vec::new();
    for i in 0..20 {
        let (r, s) = (i % 2, (i / 2) % 2);
        let item = Item::new(
            Signal::Traces,
            groups_r[r].clone(),
            // A fresh copy of the scope bytes exercises the byte comparison.
            Group::from_fields(Bytes::copy_from_slice(groups_s[s].as_bytes())),
            Bytes::from(span(i).encode_to_vec()),
            1,
        );
        b.push(item);
        match expected.iter_mut().find(|(er, es, _)| *er == r && *es == s) {
            Some(e) => e.2.push(span(i)),
            None => expected.push((r, s, vec![span(i)])),
        }
    }
    let charged_before = b.charged();
    let (batch, charged, _) = b.cut_charged().unwrap();
    assert!(b.is_empty());
    assert!(b.cut().is_none(), "an empty batcher never emits a request");
    assert_eq!(charged, charged_before);
    assert!(
        batch.byte_size() as u64 <= charged,
        "the charge bounds the cut size"
    );
    assert_eq!(batch.items(), 20);

    let decoded = ExportTraceServiceRequest::decode(batch.bytes().clone()).unwrap();
    let want = ExportTraceServiceRequest {
        resource_spans: (0..2)
            .map(|r| ResourceSpans {
                resource: Some(resource(r)),
                schema_url: if r == 0 {
                    String::new()
                } else {
                    "s".to_owned()
                },
                scope_spans: expected
                    .iter()
                    .filter(|e| e.0 == r)
                    .map(|(_, s, spans)| ScopeSpans {
                        scope: Some(scope(*s)),
                        spans: spans.clone(),
                        schema_url: "https://x/1.0".to_owned(),
                    })
                    .collect(),
            })
            .collect(),
    };
    assert_eq!(decoded, want);
    // The wire count agrees with the batcher's count.
    assert_eq!(
        otlp_core::count_items(Signal::Traces, batch.bytes()).unwrap(),
        20
    );
}

#[test]
fn raw_requests_are_appended_after_items_and_merge() {
    let log = |i: u64| LogRecord {
        time_unix_nano: i,
        ..Default::default()
    };
    let raw = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource(9)),
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: vec![log(100), log(101)],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let mut b = Batcher::new(Signal::Logs);
    let item = Item::new(
        Signal::Logs,
        Group::empty(),
        Group::empty(),
        Bytes::from(log(1).encode_to_vec()),
        1,
    );
    b.push(item);
    b.push_raw(Batch::from_encoded(Signal::Logs, Bytes::from(raw.encode_to_vec())).unwrap());
    let batch = b.cut().unwrap();
    assert_eq!(batch.items(), 3);
    let decoded = ExportLogsServiceRequest::decode(batch.bytes().clone()).unwrap();
    assert_eq!(decoded.resource_logs.len(), 2);
    assert_eq!(decoded.resource_logs[0].resource, None);
    assert_eq!(
        decoded.resource_logs[0].scope_logs[0].log_records,
        vec![log(1)]
    );
    assert_eq!(decoded.resource_logs[1], raw.resource_logs[0]);
}

#[test]
fn metric_items_count_their_data_points() {
    let metric = Metric {
        name: "m".to_owned(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint::default(); 3],
        })),
        ..Default::default()
    };
    let mut b = Batcher::new(Signal::Metrics);
    let r = Group::resource(&resource(0).encode_to_vec(), "");
    for _ in 0..2 {
        let item = Item::new(
            Signal::Metrics,
            r.clone(),
            Group::empty(),
            Bytes::from(metric.encode_to_vec()),
            3,
        );
        b.push(item);
    }
    let batch = b.cut().unwrap();
    assert_eq!(batch.items(), 6);
    assert_eq!(
        otlp_core::count_items(Signal::Metrics, batch.bytes()).unwrap(),
        6
    );
    let decoded = ExportMetricsServiceRequest::decode(batch.bytes().clone()).unwrap();
    assert_eq!(
        decoded,
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(resource(0)),
                scope_metrics: vec![ScopeMetrics {
                    scope: None,
                    metrics: vec![metric.clone(), metric],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    );
}

fn raw_logs(first: u64, n: u64) -> Batch {
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource(first as usize)),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope(0)),
                log_records: (first..first + n)
                    .map(|i| LogRecord {
                        time_unix_nano: i,
                        ..Default::default()
                    })
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    Batch::from_encoded(Signal::Logs, Bytes::from(req.encode_to_vec())).unwrap()
}

#[test]
fn one_raw_request_is_cut_as_the_same_bytes_without_a_copy() {
    let raw = raw_logs(0, 512);
    let mut b = Batcher::new(Signal::Logs);
    b.push_raw(raw.clone());
    assert_eq!(b.charged(), raw.byte_size() as u64);
    let (batch, charged, _) = b.cut_charged().unwrap();
    assert_eq!(batch.items(), 512);
    assert_eq!(charged, raw.byte_size() as u64);
    assert_eq!(batch.bytes(), raw.bytes());
    // The same allocation: the cut handed on the request, it did not copy it.
    assert_eq!(batch.bytes().as_ptr(), raw.bytes().as_ptr());
    assert!(b.is_empty());
    assert_eq!((b.items(), b.charged()), (0, 0));
    assert!(b.started().is_none());
    assert!(b.cut().is_none());
}

#[test]
fn two_raw_requests_are_joined_into_one_request() {
    let (first, second) = (raw_logs(0, 3), raw_logs(10, 2));
    let mut b = Batcher::new(Signal::Logs);
    b.push_raw(first.clone());
    b.push_raw(second.clone());
    let batch = b.cut().unwrap();
    assert_eq!(batch.items(), 5);
    assert_eq!(batch.byte_size(), first.byte_size() + second.byte_size());
    let decoded = ExportLogsServiceRequest::decode(batch.bytes().clone()).unwrap();
    let want_first = ExportLogsServiceRequest::decode(first.bytes().clone()).unwrap();
    let want_second = ExportLogsServiceRequest::decode(second.bytes().clone()).unwrap();
    assert_eq!(
        decoded.resource_logs,
        [want_first.resource_logs, want_second.resource_logs].concat()
    );
    // After a single-request cut, the next batch joins again.
    b.push_raw(first.clone());
    assert_eq!(b.cut().unwrap().bytes().as_ptr(), first.bytes().as_ptr());
    b.push_raw(first);
    b.push_raw(second);
    assert_eq!(b.cut().unwrap().items(), 5);
}

/// Items `(resource, scope, span)` as the batcher takes them.
fn span_items(spec: &[(usize, usize, usize)]) -> Vec<Item> {
    spec.iter()
        .map(|&(r, s, i)| {
            Item::new(
                Signal::Traces,
                Group::resource(&resource(r).encode_to_vec(), ""),
                Group::scope(&scope(s).encode_to_vec(), ""),
                Bytes::from(span(i).encode_to_vec()),
                1,
            )
        })
        .collect()
}

#[test]
fn buffers_kept_from_the_last_batch_never_change_the_next_one() {
    let first = span_items(&[(0, 0, 1), (1, 1, 2), (0, 1, 3)]);
    // The next batch uses one group of the last, in another order, and a new one.
    let second = span_items(&[(2, 0, 4), (0, 1, 5), (0, 1, 6)]);
    let mut reused = Batcher::new(Signal::Traces);
    for item in first {
        reused.push(item);
    }
    reused.cut().unwrap();
    assert!(reused.is_empty());
    let kept = reused.resources[0].scopes[0].buf.capacity();
    assert!(kept > 0, "the buffers of the last batch are kept");
    let mut fresh = Batcher::new(Signal::Traces);
    for item in second {
        // An entry kept empty costs its headers again, as a new one does.
        assert_eq!(reused.cost(&item), fresh.cost(&item));
        reused.push(item.clone());
        fresh.push(item);
    }
    assert_eq!(reused.charged(), fresh.charged());
    let (a, b) = (reused.cut().unwrap(), fresh.cut().unwrap());
    assert_eq!(a.items(), 3);
    // Same resources and scopes, no empty entry of the last batch.
    assert_eq!(
        ExportTraceServiceRequest::decode(a.bytes().clone()).unwrap(),
        ExportTraceServiceRequest::decode(b.bytes().clone()).unwrap()
    );
    assert_eq!(
        a.bytes(),
        b.bytes(),
        "byte for byte, in the order of first use"
    );
    // Groups the second batch did not use are forgotten at its cut.
    assert_eq!(reused.resources.len(), 2);
    // A raw request alone is still cut as its own bytes.
    let raw = raw_logs(0, 2);
    let mut logs = Batcher::new(Signal::Logs);
    logs.push_raw(raw.clone());
    assert_eq!(logs.cut().unwrap().bytes().as_ptr(), raw.bytes().as_ptr());
}
