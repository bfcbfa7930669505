//! Validation against requests built with the real OTLP protobuf types.

use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
        profiles::v1development::ExportProfilesServiceRequest,
        trace::v1::ExportTraceServiceRequest,
    },
    common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs},
    metrics::v1::{
        Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
        HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
        SummaryDataPoint, exponential_histogram_data_point::Buckets, metric::Data,
        number_data_point, summary_data_point::ValueAtQuantile,
    },
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span},
};
use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::count_items;

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.to_owned())),
    })
}

fn kv(k: &str, v: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: v,
        ..Default::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", s("svc"))],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "lib".into(),
        version: "1.0".into(),
        attributes: vec![kv("k", s("v"))],
        ..Default::default()
    })
}

fn span(i: u8) -> Span {
    Span {
        trace_id: vec![i; 16],
        span_id: vec![i; 8],
        parent_span_id: vec![1; 8],
        trace_state: "a=b".into(),
        name: format!("span-{i}"),
        kind: 2,
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        attributes: vec![
            kv("http.method", s("GET")),
            kv(
                "int",
                Some(AnyValue {
                    value: Some(any_value::Value::IntValue(-5)),
                }),
            ),
            kv(
                "bytes",
                Some(AnyValue {
                    value: Some(any_value::Value::BytesValue(vec![0xff, 0x00])),
                }),
            ),
        ],
        events: vec![span::Event {
            time_unix_nano: 3,
            name: "ev".into(),
            attributes: vec![kv("e", s("x"))],
            dropped_attributes_count: 1,
        }],
        links: vec![span::Link {
            trace_id: vec![2; 16],
            span_id: vec![3; 8],
            flags: 1,
            ..Default::default()
        }],
        status: Some(Status {
            message: "ok".into(),
            code: 1,
        }),
        flags: 0x100,
        ..Default::default()
    }
}

fn traces(spans: Vec<Span>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

fn logs(records: Vec<LogRecord>) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn log(body: Option<AnyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: 5,
        observed_time_unix_nano: 6,
        severity_number: 9,
        severity_text: "INFO".into(),
        body,
        attributes: vec![kv("a", s("b"))],
        trace_id: vec![4; 16],
        span_id: vec![5; 8],
        event_name: "e".into(),
        flags: 1,
        ..Default::default()
    }
}

fn metrics() -> Vec<u8> {
    let exemplar = Exemplar {
        filtered_attributes: vec![kv("f", s("g"))],
        time_unix_nano: 1,
        span_id: vec![1; 8],
        trace_id: vec![2; 16],
        value: Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(1.5)),
    };
    let point = |v| NumberDataPoint {
        attributes: vec![kv("p", s("q"))],
        start_time_unix_nano: 1,
        time_unix_nano: 2,
        exemplars: vec![exemplar.clone()],
        value: Some(number_data_point::Value::AsInt(v)),
        flags: 0,
    };
    let metric = |name: &str, data| Metric {
        name: name.into(),
        description: "d".into(),
        unit: "1".into(),
        metadata: vec![kv("m", s("n"))],
        data: Some(data),
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![
                    metric(
                        "g",
                        Data::Gauge(Gauge {
                            data_points: vec![point(1), point(2)],
                        }),
                    ),
                    metric(
                        "s",
                        Data::Sum(Sum {
                            data_points: vec![point(3)],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        }),
                    ),
                    metric(
                        "h",
                        Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                count: 3,
                                sum: Some(4.0),
                                bucket_counts: vec![1, 2],
                                explicit_bounds: vec![1.0],
                                min: Some(0.5),
                                max: Some(3.0),
                                exemplars: vec![exemplar.clone()],
                                ..Default::default()
                            }],
                            aggregation_temporality: 1,
                        }),
                    ),
                    metric(
                        "e",
                        Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: vec![ExponentialHistogramDataPoint {
                                count: 3,
                                scale: -2,
                                zero_count: 1,
                                positive: Some(Buckets {
                                    offset: -3,
                                    bucket_counts: vec![1, 300, 70000],
                                }),
                                negative: Some(Buckets::default()),
                                zero_threshold: 0.1,
                                ..Default::default()
                            }],
                            aggregation_temporality: 1,
                        }),
                    ),
                    metric(
                        "q",
                        Data::Summary(Summary {
                            data_points: vec![SummaryDataPoint {
                                count: 2,
                                sum: 3.0,
                                quantile_values: vec![ValueAtQuantile {
                                    quantile: 0.5,
                                    value: 1.0,
                                }],
                                ..Default::default()
                            }],
                        }),
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn err(signal: Signal, buf: &[u8]) -> InvalidRequest {
    validate(signal, buf).expect_err("must be refused")
}

#[test]
fn valid_requests_of_every_signal_validate_and_count_like_count_items() {
    let t = traces(vec![span(1), span(2), span(3)]);
    assert_eq!(validate(Signal::Traces, &t), Ok(3));
    let l = logs(vec![log(s("hello")), log(None)]);
    assert_eq!(validate(Signal::Logs, &l), Ok(2));
    let m = metrics();
    assert_eq!(
        validate(Signal::Metrics, &m),
        count_items(Signal::Metrics, &m).map_err(|_| unreachable!())
    );
    assert_eq!(validate(Signal::Metrics, &m), Ok(6));
    // Empty requests are valid (the pipeline deals with them).
    assert_eq!(validate(Signal::Traces, b""), Ok(0));
    assert_eq!(validate(Signal::Logs, b"\x0a\x00"), Ok(0));
}

#[test]
fn a_request_of_another_signal_is_refused_for_every_combination() {
    let t = traces(vec![span(1)]);
    let l = logs(vec![log(s("x"))]);
    let m = metrics();
    for (sent, to, buf) in [
        ("traces", Signal::Logs, &t),
        ("traces", Signal::Metrics, &t),
        ("logs", Signal::Traces, &l),
        ("logs", Signal::Metrics, &l),
        ("metrics", Signal::Traces, &m),
        ("metrics", Signal::Logs, &m),
    ] {
        let e = validate(to, buf);
        assert!(e.is_err(), "{sent} sent as {to} was accepted: {e:?}");
    }
    let e = err(Signal::Logs, &t);
    assert!(
        e.reason.contains("wire type") && e.reason.contains("another signal"),
        "{e}"
    );
    assert_eq!(
        e.path,
        "resource_logs[0].scope_logs[0].log_records[0].time_unix_nano"
    );
}

#[test]
fn ids_are_empty_or_of_their_length() {
    let mut bad = span(1);
    bad.trace_id = vec![1; 15];
    let e = err(Signal::Traces, &traces(vec![span(0), bad]));
    assert_eq!(e.path, "resource_spans[0].scope_spans[0].spans[1].trace_id");
    assert_eq!(e.reason, "15 bytes, want 16 (or empty)");
    assert!(
        e.to_string()
            .contains("spans[1].trace_id: 15 bytes, want 16 (or empty)"),
        "{e}"
    );

    // Empty ids pass, as the Collector's pdata takes them.
    let mut empty = span(1);
    empty.span_id.clear();
    empty.trace_id.clear();
    assert_eq!(validate(Signal::Traces, &traces(vec![empty])), Ok(1));

    let mut bad = span(1);
    bad.parent_span_id = vec![1; 4];
    assert!(
        err(Signal::Traces, &traces(vec![bad]))
            .path
            .ends_with("parent_span_id")
    );
    let mut bad = span(1);
    bad.links[0].span_id = vec![1; 9];
    assert!(
        err(Signal::Traces, &traces(vec![bad]))
            .path
            .ends_with("links[0].span_id")
    );

    // Log record ids are optional, but of their length when present.
    let mut rec = log(None);
    rec.trace_id.clear();
    rec.span_id.clear();
    assert_eq!(validate(Signal::Logs, &logs(vec![rec])), Ok(1));
    let mut rec = log(None);
    rec.span_id = vec![1; 7];
    assert_eq!(
        err(Signal::Logs, &logs(vec![rec])).reason,
        "7 bytes, want 8 (or empty)"
    );
}

#[test]
fn strings_must_be_utf8() {
    // prost's String cannot hold invalid UTF-8: patch the encoded name.
    let mut sp = span(1);
    sp.name = "NAME-XYZ".into();
    let mut buf = traces(vec![sp]);
    let at = buf.windows(8).position(|w| w == b"NAME-XYZ").unwrap();
    buf[at + 2] = 0xff;
    let e = err(Signal::Traces, &buf);
    assert_eq!(e.path, "resource_spans[0].scope_spans[0].spans[0].name");
    assert!(
        e.reason.contains("UTF-8") && e.reason.contains("byte 2"),
        "{e}"
    );
    // A bytes value may hold anything.
    assert!(validate(Signal::Traces, &traces(vec![span(1)])).is_ok());
}

fn nested(levels: usize) -> Option<AnyValue> {
    let mut v = s("leaf");
    for i in 0..levels {
        v = Some(AnyValue {
            value: Some(if i % 2 == 0 {
                any_value::Value::ArrayValue(ArrayValue {
                    values: v.into_iter().collect(),
                })
            } else {
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![kv("k", v)],
                })
            }),
        });
    }
    v
}

#[test]
fn any_values_nest_at_most_the_documented_depth() {
    assert_eq!(
        validate(Signal::Logs, &logs(vec![log(nested(MAX_ANY_VALUE_DEPTH))])),
        Ok(1)
    );
    let e = err(
        Signal::Logs,
        &logs(vec![log(nested(MAX_ANY_VALUE_DEPTH + 1))]),
    );
    assert!(e.reason.contains("nested deeper than 32"), "{e}");
    // 200 levels, as a hostile sender would: refused, no stack overflow.
    let e = err(Signal::Logs, &logs(vec![log(nested(200))]));
    assert!(
        e.path
            .starts_with("resource_logs[0].scope_logs[0].log_records[0].body"),
        "{e}"
    );
}

#[test]
fn unknown_fields_are_skipped() {
    // Field 99 (varint) inside a span: a newer schema's field; accepted.
    let scope = {
        let mut v = Vec::new();
        v.push(0x12);
        let mut body = span(1).encode_to_vec();
        body.extend_from_slice(&[0x98, 0x06, 0x01]);
        prost::encoding::encode_varint(body.len() as u64, &mut v);
        v.extend_from_slice(&body);
        v
    };
    let resource = {
        let mut v = vec![0x12];
        prost::encoding::encode_varint(scope.len() as u64, &mut v);
        v.extend_from_slice(&scope);
        v
    };
    let mut req = vec![0x0a];
    prost::encoding::encode_varint(resource.len() as u64, &mut req);
    req.extend_from_slice(&resource);
    assert_eq!(validate(Signal::Traces, &req), Ok(1));
}

/// A valid request of `Signal::ALL[sig]` with `edits` (offset, new byte)
/// applied.
fn mutated(sig: usize, edits: Vec<(usize, u8)>) -> (Signal, Vec<u8>) {
    let signal = Signal::ALL[sig];
    let mut buf = match signal {
        Signal::Traces => traces(vec![span(1), span(2)]),
        Signal::Logs => logs(vec![log(s("hello")), log(nested(3))]),
        Signal::Metrics => metrics(),
        Signal::Profiles => {
            crate::batch::profiles_tests::profiles(&[vec![2], vec![1]]).encode_to_vec()
        }
    };
    for (at, byte) in edits {
        let i = at % buf.len();
        buf[i] = byte;
    }
    (signal, buf)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The fast walker is never laxer than prost: whatever it accepts after
    /// bytes of a valid request were changed, prost decodes as that signal too
    /// and `count_items` counts the same items.
    #[test]
    fn mutated_requests_accepted_only_if_prost_decodes_them(
        sig in 0usize..Signal::COUNT,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let (signal, buf) = mutated(sig, edits);
        if let Ok(n) = validate(signal, &buf) {
            let decodes = match signal {
                Signal::Traces => ExportTraceServiceRequest::decode(buf.as_slice()).is_ok(),
                Signal::Logs => ExportLogsServiceRequest::decode(buf.as_slice()).is_ok(),
                Signal::Metrics => ExportMetricsServiceRequest::decode(buf.as_slice()).is_ok(),
                Signal::Profiles => ExportProfilesServiceRequest::decode(buf.as_slice()).is_ok(),
            };
            prop_assert!(decodes, "validate accepted what prost refuses: {:02x?}", buf);
            prop_assert_eq!(count_items(signal, &buf).ok(), Some(n));
        }
    }

    /// The accepting walker and the diagnosing one agree on every mutated
    /// request: same verdict, same item count.
    #[test]
    fn both_walkers_agree_on_mutated_requests(
        sig in 0usize..Signal::COUNT,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let (signal, buf) = mutated(sig, edits);
        let root = M::root(signal);
        let (mut fast_items, mut slow_items) = (0, 0);
        let fast_ok = super::fast::walk(root, &buf, 0, &mut fast_items);
        let slow_ok = walk(root, &buf, 0, &mut slow_items).is_ok();
        prop_assert_eq!(fast_ok, slow_ok, "{:02x?}", buf);
        if fast_ok {
            prop_assert_eq!(fast_items, slow_items);
        }
    }

    #[test]
    fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512), sig in 0usize..Signal::COUNT) {
        let _ = validate(Signal::ALL[sig], &buf);
    }

    #[test]
    fn generated_valid_spans_validate_and_count_exactly(
        names in proptest::collection::vec("\\PC{0,12}", 1..20),
        attrs in proptest::collection::vec(("[a-z.]{1,8}", "\\PC{0,8}", any::<i64>(), any::<f64>()), 0..6),
    ) {
        let spans: Vec<Span> = names
            .iter()
            .enumerate()
            .map(|(i, n)| Span {
                trace_id: vec![i as u8; 16],
                span_id: vec![i as u8; 8],
                name: n.clone(),
                attributes: attrs
                    .iter()
                    .flat_map(|(k, v, n, d)| {
                        [
                            kv(k, s(v)),
                            kv(k, Some(AnyValue { value: Some(any_value::Value::IntValue(*n)) })),
                            kv(k, Some(AnyValue { value: Some(any_value::Value::DoubleValue(*d)) })),
                        ]
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        let buf = traces(spans);
        prop_assert_eq!(validate(Signal::Traces, &buf), Ok(names.len() as u64));
        prop_assert_eq!(count_items(Signal::Traces, &buf).ok(), Some(names.len() as u64));
    }
}

/// Puts a message's fields in another order.
type Order<'a> = &'a dyn Fn(&mut Vec<crate::wire::Field<'_>>);

/// `message`'s top-level fields re-encoded in another order.
fn reordered(message: &[u8], order: Order<'_>) -> Vec<u8> {
    let mut fields: Vec<_> = crate::wire::Fields::new(message)
        .collect::<Result<_, _>>()
        .unwrap();
    order(&mut fields);
    fields.iter().flat_map(|f| f.raw.iter().copied()).collect()
}

/// `item` as the only item of a request: field 1 (resource entry) > field 2
/// (scope entry) > field 2 (item).
fn wrapped(item: &[u8]) -> Vec<u8> {
    let mut scope = Vec::new();
    crate::wire::put_len_header(&mut scope, 2, item.len());
    scope.extend_from_slice(item);
    let mut resource = Vec::new();
    crate::wire::put_len_header(&mut resource, 2, scope.len());
    resource.extend_from_slice(&scope);
    let mut request = Vec::new();
    crate::wire::put_len_header(&mut request, 1, resource.len());
    request.extend_from_slice(&resource);
    request
}

#[test]
fn items_validate_whatever_order_their_fields_come_in() {
    // prost and pdata write fields in declaration order, upb (the Python
    // SDK) in field-number order; any order is valid protobuf.
    let mut bad_name = span(1);
    bad_name.name = "x".into();
    let cases = [
        (Signal::Traces, span(7).encode_to_vec()),
        (Signal::Logs, log(s("hello")).encode_to_vec()),
    ];
    let orders: [Order<'_>; 3] = [&|_| {}, &|f| f.sort_by_key(|f| f.number), &|f| f.reverse()];
    for (signal, item) in &cases {
        for order in orders {
            let request = wrapped(&reordered(item, order));
            assert_eq!(
                validate(*signal, &request),
                Ok(1),
                "{signal} {request:02x?}"
            );
        }
    }
    // An invalid field is found, with its path, in any order.
    let item = bad_name.encode_to_vec();
    for order in orders {
        let mut request = wrapped(&reordered(&item, order));
        let at = request
            .windows(3)
            .rposition(|w| w == [0x2a, 1, b'x'])
            .unwrap();
        request[at + 2] = 0xff;
        let e = validate(Signal::Traces, &request).unwrap_err();
        assert_eq!(
            e.path, "resource_spans[0].scope_spans[0].spans[0].name",
            "{e}"
        );
    }
}
