//! Tests of join, split and count against the real OTLP protobuf types.

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
        trace::v1::ExportTraceServiceRequest,
    },
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs},
    metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, Sum, metric::Data,
    },
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use proptest::prelude::*;
use prost::Message;

use super::*;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_owned())),
        }),
        ..Default::default()
    }
}

fn resource(i: usize) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", &format!("svc-{i}"))],
        ..Default::default()
    })
}

fn scope(i: usize) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: format!("scope-{i}"),
        version: "1.0".to_owned(),
        ..Default::default()
    })
}

/// A trace request with `shape[r][s]` spans in scope `s` of resource `r`.
fn traces(shape: &[Vec<usize>]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: shape
            .iter()
            .enumerate()
            .map(|(r, scopes)| ResourceSpans {
                resource: resource(r),
                scope_spans: scopes
                    .iter()
                    .enumerate()
                    .map(|(s, &n)| ScopeSpans {
                        scope: scope(s),
                        spans: (0..n)
                            .map(|i| Span {
                                trace_id: vec![r as u8; 16],
                                span_id: vec![s as u8; 8],
                                name: format!("span-{r}-{s}-{i}"),
                                start_time_unix_nano: i as u64,
                                attributes: vec![kv("k", "v")],
                                ..Default::default()
                            })
                            .collect(),
                        schema_url: "https://opentelemetry.io/schemas/1.30.0".to_owned(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
    }
}

fn logs(shape: &[Vec<usize>]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: shape
            .iter()
            .enumerate()
            .map(|(r, scopes)| ResourceLogs {
                resource: resource(r),
                scope_logs: scopes
                    .iter()
                    .enumerate()
                    .map(|(s, &n)| ScopeLogs {
                        scope: scope(s),
                        log_records: (0..n)
                            .map(|i| LogRecord {
                                time_unix_nano: i as u64,
                                severity_text: "INFO".to_owned(),
                                body: Some(AnyValue {
                                    value: Some(any_value::Value::StringValue(format!("log {i}"))),
                                }),
                                ..Default::default()
                            })
                            .collect(),
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
    }
}

fn number_points(n: usize) -> Vec<NumberDataPoint> {
    (0..n)
        .map(|i| NumberDataPoint {
            time_unix_nano: i as u64,
            attributes: vec![kv("i", &i.to_string())],
            ..Default::default()
        })
        .collect()
}

/// A metric request: `shape[r][s]` lists the data point counts of each metric,
/// cycling through gauge, sum and histogram.
fn metrics(shape: &[Vec<Vec<usize>>]) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: shape
            .iter()
            .enumerate()
            .map(|(r, scopes)| ResourceMetrics {
                resource: resource(r),
                scope_metrics: scopes
                    .iter()
                    .enumerate()
                    .map(|(s, ms)| ScopeMetrics {
                        scope: scope(s),
                        metrics: ms
                            .iter()
                            .enumerate()
                            .map(|(m, &points)| Metric {
                                name: format!("metric_{m}"),
                                unit: "1".to_owned(),
                                data: Some(match m % 3 {
                                    0 => Data::Gauge(Gauge {
                                        data_points: number_points(points),
                                    }),
                                    1 => Data::Sum(Sum {
                                        data_points: number_points(points),
                                        aggregation_temporality: 2,
                                        is_monotonic: true,
                                    }),
                                    _ => Data::Histogram(Histogram {
                                        data_points: (0..points)
                                            .map(|i| HistogramDataPoint {
                                                count: i as u64,
                                                bucket_counts: vec![1, 2],
                                                explicit_bounds: vec![1.0],
                                                ..Default::default()
                                            })
                                            .collect(),
                                        aggregation_temporality: 1,
                                    }),
                                }),
                                ..Default::default()
                            })
                            .collect(),
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
    }
}

fn span_count(r: &ExportTraceServiceRequest) -> u64 {
    r.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum()
}

fn point_count(r: &ExportMetricsServiceRequest) -> u64 {
    r.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        } as u64)
        .sum()
}

fn log_count(r: &ExportLogsServiceRequest) -> u64 {
    r.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len() as u64)
        .sum()
}

fn batch_of<M: Message>(signal: Signal, m: &M) -> Batch {
    Batch::from_encoded(signal, Bytes::from(m.encode_to_vec())).unwrap()
}

/// All spans of a request in order, with their resource and scope names, so two
/// requests with the same spans under the same headers compare equal however
/// their entries are grouped.
fn flat_spans(r: &ExportTraceServiceRequest) -> Vec<(Option<Resource>, String, Span)> {
    r.resource_spans
        .iter()
        .flat_map(|rs| {
            rs.scope_spans.iter().flat_map(move |ss| {
                ss.spans.iter().map(move |sp| {
                    (
                        rs.resource.clone(),
                        ss.scope
                            .as_ref()
                            .map(|s| s.name.clone())
                            .unwrap_or_default(),
                        sp.clone(),
                    )
                })
            })
        })
        .collect()
}

#[test]
fn joined_bytes_decode_to_the_merged_request() {
    let a = traces(&[vec![2, 1], vec![3]]);
    let b = traces(&[vec![4]]);
    let joined = batch_of(Signal::Traces, &a)
        .join(&batch_of(Signal::Traces, &b))
        .unwrap();

    let mut merged = a.clone();
    merged.resource_spans.extend(b.resource_spans.clone());
    let decoded = ExportTraceServiceRequest::decode(joined.bytes().clone()).unwrap();
    assert_eq!(decoded, merged);
    assert_eq!(joined.items(), 10);
    assert_eq!(
        joined.byte_size(),
        a.encoded_len() + b.encoded_len(),
        "join must append every byte of both requests"
    );
}

#[test]
fn join_that_loses_a_byte_is_caught() {
    // The same check as above, against a deliberately broken join: it must fail,
    // which shows the test above can detect a join that drops a byte.
    let a = batch_of(Signal::Logs, &logs(&[vec![3]]));
    let b = batch_of(Signal::Logs, &logs(&[vec![2, 2]]));
    let good = a.join(&b).unwrap();
    let mut broken = good.bytes().to_vec();
    broken.pop();
    let merged = {
        let mut m = logs(&[vec![3]]);
        m.resource_logs.extend(logs(&[vec![2, 2]]).resource_logs);
        m
    };
    assert_eq!(
        ExportLogsServiceRequest::decode(good.bytes().clone()).unwrap(),
        merged
    );
    let broken_decoded = ExportLogsServiceRequest::decode(broken.as_slice());
    assert!(broken_decoded.map(|d| d != merged).unwrap_or(true));
    assert!(Batch::from_encoded(Signal::Logs, Bytes::from(broken)).is_err());
}

#[test]
fn join_refuses_mixed_signals() {
    let t = batch_of(Signal::Traces, &traces(&[vec![1]]));
    let l = batch_of(Signal::Logs, &logs(&[vec![1]]));
    let err = t.join(&l).unwrap_err();
    assert_eq!(err.left, Signal::Traces);
    assert_eq!(err.right, Signal::Logs);
    assert!(err.to_string().contains("within one signal"));
}

#[test]
fn metrics_count_data_points_of_every_kind() {
    let m = metrics(&[vec![vec![3, 2, 5], vec![0]], vec![vec![1]]]);
    let b = batch_of(Signal::Metrics, &m);
    assert_eq!(b.items(), 11);
    assert_eq!(b.items(), point_count(&m));
}

#[test]
fn empty_request_has_no_items_and_cannot_split() {
    let b = Batch::from_encoded(Signal::Traces, Bytes::new()).unwrap();
    assert_eq!(b.items(), 0);
    assert!(b.is_empty());
    assert_eq!(b.try_split().unwrap(), None);
    let one = batch_of(Signal::Traces, &traces(&[vec![1]]));
    assert_eq!(one.try_split().unwrap(), None);
}

#[test]
fn split_of_one_scope_keeps_headers_on_both_halves() {
    let req = traces(&[vec![5]]);
    let (l, r) = batch_of(Signal::Traces, &req).try_split().unwrap().unwrap();
    assert_eq!((l.items(), r.items()), (3, 2));
    for half in [&l, &r] {
        let d = ExportTraceServiceRequest::decode(half.bytes().clone()).unwrap();
        assert_eq!(d.resource_spans.len(), 1);
        assert_eq!(d.resource_spans[0].resource, req.resource_spans[0].resource);
        assert_eq!(
            d.resource_spans[0].scope_spans[0].scope,
            req.resource_spans[0].scope_spans[0].scope
        );
        assert_eq!(
            d.resource_spans[0].scope_spans[0].schema_url,
            req.resource_spans[0].scope_spans[0].schema_url
        );
    }
}

#[test]
fn malformed_bytes_are_an_error_not_a_panic() {
    for bad in [
        &[0x0a, 0x10, 0x00][..],
        &[0x0a, 0x02, 0x12, 0x05][..],
        &[0x08, 0x01][..],             // field 1 as a varint: not a message
        &[0x0a, 0x02, 0x10, 0x01][..], // scope field 2 as varint
        &[0xff, 0xff, 0xff][..],
    ] {
        for s in Signal::ALL {
            assert!(
                Batch::from_encoded(s, Bytes::copy_from_slice(bad)).is_err(),
                "{s}: {bad:?}"
            );
        }
    }
}

fn shape() -> impl Strategy<Value = Vec<Vec<usize>>> {
    prop::collection::vec(prop::collection::vec(0usize..6, 0..4), 0..4)
}

fn metric_shape() -> impl Strategy<Value = Vec<Vec<Vec<usize>>>> {
    prop::collection::vec(
        prop::collection::vec(prop::collection::vec(0usize..5, 0..4), 0..3),
        0..3,
    )
}

proptest! {
    #[test]
    fn wire_count_equals_decoded_count(t in shape(), l in shape(), m in metric_shape()) {
        let t = traces(&t);
        prop_assert_eq!(batch_of(Signal::Traces, &t).items(), span_count(&t));
        let l = logs(&l);
        prop_assert_eq!(batch_of(Signal::Logs, &l).items(), log_count(&l));
        let m = metrics(&m);
        prop_assert_eq!(batch_of(Signal::Metrics, &m).items(), point_count(&m));
    }

    #[test]
    fn split_halves_carry_every_span_once_in_order(t in shape()) {
        let req = traces(&t);
        let batch = batch_of(Signal::Traces, &req);
        match batch.try_split().unwrap() {
            None => prop_assert!(span_count(&req) <= 1),
            Some((l, r)) => {
                prop_assert!(l.items() > 0 && r.items() > 0);
                prop_assert_eq!(l.items() + r.items(), batch.items());
                // The counts the split reports are the counts of the bytes it wrote.
                prop_assert_eq!(Batch::from_encoded(Signal::Traces, l.bytes().clone()).unwrap().items(), l.items());
                let joined = l.join(&r).unwrap();
                let decoded = ExportTraceServiceRequest::decode(joined.bytes().clone()).unwrap();
                prop_assert_eq!(flat_spans(&decoded), flat_spans(&req));
            }
        }
    }

    #[test]
    fn split_recursively_reaches_single_units(m in metric_shape()) {
        let req = metrics(&m);
        let mut stack = vec![batch_of(Signal::Metrics, &req)];
        let mut leaves = Vec::new();
        while let Some(b) = stack.pop() {
            match b.split() {
                Some((l, r)) => { stack.push(r); stack.push(l); }
                None => leaves.push(b),
            }
        }
        let total: u64 = leaves.iter().map(|b| b.items()).sum();
        prop_assert_eq!(total, point_count(&req));
        for leaf in &leaves {
            let d = ExportMetricsServiceRequest::decode(leaf.bytes().clone()).unwrap();
            let metrics_in_leaf: usize = d.resource_metrics.iter().flat_map(|r| &r.scope_metrics).map(|s| s.metrics.len()).sum();
            prop_assert!(metrics_in_leaf <= 1);
        }
    }

    #[test]
    fn split_to_fit_keeps_every_span_once_in_order_within_the_limits(
        t in shape(),
        max_items in 1u64..6,
        max_bytes in 1usize..600,
    ) {
        let req = traces(&t);
        let batch = batch_of(Signal::Traces, &req);
        let parts = batch.split_to_fit(max_items, max_bytes).unwrap();
        let mut spans = Vec::new();
        let mut total = 0;
        for p in &parts {
            prop_assert!(p.items() <= max_items);
            // Over the byte limit only when one span alone is (resources and
            // scopes without spans are kept, on top of the limit).
            let no_empties = t.iter().all(|r| !r.is_empty() && r.iter().all(|&n| n > 0));
            if p.items() > 1 && no_empties {
                prop_assert!(p.byte_size() <= max_bytes, "{} > {max_bytes}", p.byte_size());
            }
            prop_assert_eq!(Batch::from_encoded(Signal::Traces, p.bytes().clone()).unwrap().items(), p.items());
            let d = ExportTraceServiceRequest::decode(p.bytes().clone()).unwrap();
            spans.extend(flat_spans(&d));
            total += p.items();
        }
        prop_assert_eq!(total, batch.items());
        prop_assert_eq!(spans, flat_spans(&req));
    }

    #[test]
    fn split_to_fit_counts_metric_points(m in metric_shape(), max_items in 1u64..8) {
        let req = metrics(&m);
        let batch = batch_of(Signal::Metrics, &req);
        let parts = batch.split_to_fit(max_items, usize::MAX).unwrap();
        let total: u64 = parts.iter().map(Batch::items).sum();
        prop_assert_eq!(total, point_count(&req));
        for p in &parts {
            prop_assert_eq!(Batch::from_encoded(Signal::Metrics, p.bytes().clone()).unwrap().items(), p.items());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for s in Signal::ALL {
            let b = Bytes::from(bytes.clone());
            if let Ok(batch) = Batch::from_encoded(s, b) {
                let _ = batch.try_split();
            }
        }
    }
}

/// A trace request where span `i` of scope `s` of resource `r` belongs to
/// trace `shape[r][s][i]`, so traces cross resources and scopes.
fn traces_with_ids(shape: &[Vec<Vec<u8>>]) -> ExportTraceServiceRequest {
    let mut req = traces(
        &shape
            .iter()
            .map(|r| r.iter().map(Vec::len).collect())
            .collect::<Vec<_>>(),
    );
    for (rs, r) in req.resource_spans.iter_mut().zip(shape) {
        for (ss, s) in rs.scope_spans.iter_mut().zip(r) {
            for (span, &t) in ss.spans.iter_mut().zip(s) {
                span.trace_id = vec![t; 16];
            }
        }
    }
    req
}

/// Every span with its whole resource and scope headers, encoded, sorted:
/// equal for two sets of requests holding the same spans under the same headers.
fn sorted_spans(reqs: &[ExportTraceServiceRequest]) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let mut out: Vec<_> = reqs
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| {
            rs.scope_spans.iter().flat_map(move |ss| {
                let mut scope = ss.clone();
                scope.spans.clear();
                let mut resource = rs.clone();
                resource.scope_spans.clear();
                ss.spans.iter().map(move |sp| {
                    (
                        resource.encode_to_vec(),
                        scope.encode_to_vec(),
                        sp.encode_to_vec(),
                    )
                })
            })
        })
        .collect();
    out.sort();
    out
}

#[test]
fn route_split_to_one_part_is_the_request_itself() {
    let req = traces_with_ids(&[vec![vec![1, 2, 3]], vec![vec![4]]]);
    let batch = batch_of(Signal::Traces, &req);
    let split = batch
        .split_by_route(RouteKey::TraceId, 3, |_| Some(2))
        .unwrap();
    assert!(split.leftover.is_none());
    let parts = split.parts;
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].0, 2);
    assert_eq!(
        parts[0].1.bytes().as_ptr(),
        batch.bytes().as_ptr(),
        "copied"
    );
    assert_eq!(parts[0].1.items(), 4);
}

#[test]
fn route_split_of_malformed_bytes_is_an_error() {
    let batch = Batch::new(Signal::Traces, Bytes::from_static(&[0x0a, 0x05, 0x12]), 1);
    assert!(
        batch
            .split_by_route(RouteKey::TraceId, 3, |k| Some(k.len()))
            .is_err()
    );
}

#[test]
fn route_split_by_service_keeps_a_service_on_one_part() {
    let req = metrics(&[vec![vec![2, 3]], vec![vec![1]], vec![vec![4], vec![1]]]);
    let batch = batch_of(Signal::Metrics, &req);
    let parts = batch
        .split_by_route(RouteKey::TraceId, 2, |k| {
            // "svc-0" and "svc-2" to part 0, "svc-1" to part 1.
            Some(usize::from(k == b"svc-1"))
        })
        .unwrap()
        .parts;
    assert_eq!(parts.len(), 2);
    let services = |b: &Batch| -> Vec<Option<Resource>> {
        ExportMetricsServiceRequest::decode(b.bytes().clone())
            .unwrap()
            .resource_metrics
            .into_iter()
            .map(|r| r.resource)
            .collect()
    };
    assert_eq!(services(&parts[0].1), vec![resource(0), resource(2)]);
    assert_eq!(services(&parts[1].1), vec![resource(1)]);
    assert_eq!(parts[0].1.items() + parts[1].1.items(), point_count(&req));
}

#[test]
fn route_split_sends_logs_without_trace_id_with_their_resource() {
    let mut req = logs(&[vec![3], vec![2]]);
    // Resource 0: records 0 and 2 in traces 7 and 8, record 1 without one.
    req.resource_logs[0].scope_logs[0].log_records[0].trace_id = vec![7; 16];
    req.resource_logs[0].scope_logs[0].log_records[2].trace_id = vec![8; 16];
    let batch = batch_of(Signal::Logs, &req);
    let parts = batch
        .split_by_route(RouteKey::TraceId, 3, |k| match k {
            [7, ..] => Some(1),
            [8, ..] => Some(2),
            // Resources (encoded) to part 0.
            _ => Some(0),
        })
        .unwrap()
        .parts;
    let decoded: Vec<_> = parts
        .iter()
        .map(|(i, b)| {
            (
                *i,
                ExportLogsServiceRequest::decode(b.bytes().clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decoded.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(log_count(&decoded[0].1), 3);
    assert_eq!(log_count(&decoded[1].1), 1);
    assert_eq!(log_count(&decoded[2].1), 1);
    assert_eq!(decoded[1].1.resource_logs[0].resource, resource(0));
    assert_eq!(decoded[1].1.resource_logs[0].scope_logs[0].scope, scope(0));
}

/// Units routed to no part come back as one leftover request, under their
/// own headers, never in a part; everything to no part is the request itself.
#[test]
fn route_split_keeps_unrouted_units_as_the_leftover() {
    let req = traces_with_ids(&[vec![vec![1, 2, 3]], vec![vec![4, 1]]]);
    let batch = batch_of(Signal::Traces, &req);
    // Trace 1 has no part; the others go to part 1.
    let split = batch
        .split_by_route(RouteKey::TraceId, 2, |k| (k[0] != 1).then_some(1))
        .unwrap();
    assert_eq!(split.parts.len(), 1);
    assert_eq!(split.parts[0].0, 1);
    let leftover = split.leftover.expect("trace 1 is left over");
    assert_eq!(leftover.items(), 2);
    assert_eq!(split.parts[0].1.items() + leftover.items(), batch.items());
    let left = ExportTraceServiceRequest::decode(leftover.bytes().clone()).unwrap();
    let ids: Vec<u8> = left
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.trace_id[0])
        .collect();
    assert_eq!(ids, vec![1, 1]);
    assert_eq!(left.resource_spans.len(), 2, "each under its own resource");
    let all = batch
        .split_by_route(RouteKey::TraceId, 2, |_| None)
        .unwrap();
    assert!(all.parts.is_empty());
    assert_eq!(
        all.leftover.map(|b| b.bytes().as_ptr()),
        Some(batch.bytes().as_ptr())
    );
}

proptest! {
    #[test]
    fn route_split_keeps_every_span_once_each_trace_on_one_part(
        shape in prop::collection::vec(
            prop::collection::vec(prop::collection::vec(0u8..6, 0..6), 0..4),
            0..4,
        ),
        parts in 1usize..5,
        salt in any::<u8>(),
    ) {
        let req = traces_with_ids(&shape);
        let batch = batch_of(Signal::Traces, &req);
        let split = batch
            .split_by_route(RouteKey::TraceId, parts, |k| Some(usize::from(k[0] ^ salt)))
            .unwrap();
        prop_assert!(split.leftover.is_none());
        let split = split.parts;
        let mut decoded = Vec::new();
        let mut owner = std::collections::HashMap::new();
        let mut total = 0;
        for (i, part) in &split {
            prop_assert!(*i < parts);
            prop_assert!(!part.is_empty());
            // The count a part reports is the count of the bytes it holds.
            prop_assert_eq!(Batch::from_encoded(Signal::Traces, part.bytes().clone()).unwrap().items(), part.items());
            total += part.items();
            let d = ExportTraceServiceRequest::decode(part.bytes().clone()).unwrap();
            for sp in d.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
                let first = *owner.entry(sp.trace_id.clone()).or_insert(*i);
                prop_assert_eq!(first, *i, "trace {:?} on two parts", sp.trace_id);
            }
            decoded.push(d);
        }
        prop_assert_eq!(total, batch.items());
        prop_assert_eq!(sorted_spans(&decoded), sorted_spans(std::slice::from_ref(&req)));
        // Resources and scopes, empty ones too, all survive.
        let entries = |rs: &[ExportTraceServiceRequest]| {
            let mut v: Vec<_> = rs.iter().flat_map(|r| &r.resource_spans).map(|r| r.resource.clone().unwrap_or_default().encode_to_vec()).collect();
            v.sort();
            v.dedup();
            v
        };
        prop_assert_eq!(entries(&decoded), entries(&[req]));
    }

    #[test]
    fn route_split_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for s in Signal::ALL {
            let b = Batch::new(s, Bytes::from(bytes.clone()), 0);
            for key in [RouteKey::TraceId, RouteKey::Service, RouteKey::Resource] {
                let _ = b.split_by_route(key, 3, |k| k.first().copied().map(usize::from));
            }
        }
    }
}
