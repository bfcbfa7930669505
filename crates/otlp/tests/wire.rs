//! The native path's borrowed records (`otlp::wire`) encode to exactly the
//! bytes prost writes for the equivalent opentelemetry-proto messages, for
//! generated spans and log records of every field and value kind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use opentelemetry_proto::tonic::{
    common::v1::{
        AnyValue as PAny, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
        any_value::Value as PV,
    },
    logs::v1::LogRecord as PLog,
    resource::v1::Resource,
    trace::v1::{
        Span as PSpan, Status as PStatus,
        span::{Event as PEvent, Link as PLink, SpanKind},
        status::StatusCode,
    },
};
use otlp::{
    core::Signal,
    wire::{AnyValue, Attribute, Event, Link, LogRecord, SpanRecord, Status},
};
use proptest::{collection::vec, option, prelude::*};
use prost::Message;

// === prost -> borrowed (the test keeps the borrowed trees alive by leaking) ===

fn borrowed(v: &PAny) -> AnyValue<'static> {
    let v: &'static PAny = Box::leak(Box::new(v.clone()));
    match &v.value {
        None => AnyValue::Empty,
        Some(PV::StringValue(s)) => AnyValue::Str(s),
        Some(PV::BoolValue(b)) => AnyValue::Bool(*b),
        Some(PV::IntValue(i)) => AnyValue::Int(*i),
        Some(PV::DoubleValue(d)) => AnyValue::Double(*d),
        Some(PV::BytesValue(b)) => AnyValue::Bytes(b),
        Some(PV::ArrayValue(a)) => {
            AnyValue::Array(a.values.iter().map(borrowed).collect::<Vec<_>>().leak())
        }
        Some(PV::KvlistValue(l)) => AnyValue::Map(attrs(&l.values)),
        Some(PV::StringValueStrindex(_)) => unreachable!("not generated"),
    }
}

fn attrs(kvs: &[KeyValue]) -> &'static [Attribute<'static>] {
    let kvs: &'static [KeyValue] = kvs.to_vec().leak();
    kvs.iter()
        .map(|kv| Attribute {
            key: &kv.key,
            value: borrowed(kv.value.as_ref().unwrap()),
        })
        .collect::<Vec<_>>()
        .leak()
}

fn span_record(s: &'static PSpan) -> SpanRecord<'static> {
    SpanRecord {
        trace_id: &s.trace_id,
        span_id: &s.span_id,
        trace_state: &s.trace_state,
        parent_span_id: &s.parent_span_id,
        flags: s.flags,
        name: &s.name,
        kind: SpanKind::try_from(s.kind).unwrap(),
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        attributes: attrs(&s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .iter()
            .map(|e| Event {
                time_unix_nano: e.time_unix_nano,
                name: &e.name,
                attributes: attrs(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect::<Vec<_>>()
            .leak(),
        dropped_events_count: s.dropped_events_count,
        links: s
            .links
            .iter()
            .map(|l| Link {
                trace_id: &l.trace_id,
                span_id: &l.span_id,
                trace_state: &l.trace_state,
                attributes: attrs(&l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect::<Vec<_>>()
            .leak(),
        dropped_links_count: s.dropped_links_count,
        status: s.status.as_ref().map(|st| Status {
            code: StatusCode::try_from(st.code).unwrap(),
            message: &st.message,
        }),
    }
}

fn log_record(r: &'static PLog) -> LogRecord<'static> {
    LogRecord {
        time_unix_nano: r.time_unix_nano,
        observed_time_unix_nano: r.observed_time_unix_nano,
        severity_number: r.severity_number,
        severity_text: &r.severity_text,
        body: r.body.as_ref().map(borrowed),
        attributes: attrs(&r.attributes),
        dropped_attributes_count: r.dropped_attributes_count,
        flags: r.flags,
        trace_id: &r.trace_id,
        span_id: &r.span_id,
        event_name: &r.event_name,
    }
}

// === generators ===

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z.]{1,12}",
        "\\PC{0,8}",
        "[a-z]{120,200}",
    ]
}

fn bytes_of(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn leaf() -> impl Strategy<Value = PAny> {
    prop_oneof![
        Just(None),
        text().prop_map(|s| Some(PV::StringValue(s))),
        any::<bool>().prop_map(|b| Some(PV::BoolValue(b))),
        any::<i64>().prop_map(|i| Some(PV::IntValue(i))),
        any::<f64>().prop_map(|d| Some(PV::DoubleValue(d))),
        bytes_of(200).prop_map(|b| Some(PV::BytesValue(b))),
    ]
    .prop_map(|value| PAny { value })
}

fn value() -> impl Strategy<Value = PAny> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|values| PAny {
                value: Some(PV::ArrayValue(ArrayValue { values }))
            }),
            vec((text(), inner), 0..4).prop_map(|kvs| PAny {
                value: Some(PV::KvlistValue(KeyValueList {
                    values: kvs.into_iter().map(|(k, v)| kv(k, v)).collect()
                }))
            }),
        ]
    })
}

fn kv(key: String, value: PAny) -> KeyValue {
    KeyValue {
        key,
        value: Some(value),
        key_strindex: 0,
    }
}

fn key_values() -> impl Strategy<Value = Vec<KeyValue>> {
    vec((text(), value()).prop_map(|(k, v)| kv(k, v)), 0..6)
}

fn id(len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(Vec::new()), vec(any::<u8>(), len..=len)]
}

fn small() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), any::<u32>()]
}

fn nanos() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), any::<u64>()]
}

prop_compose! {
    fn proto_span()(
        trace_id in id(16), span_id in id(8), trace_state in text(), parent_span_id in id(8),
        flags in small(), name in text(), kind in 0i32..=5,
        start_time_unix_nano in nanos(), end_time_unix_nano in nanos(),
        attributes in key_values(), dropped_attributes_count in small(),
        events in vec((nanos(), text(), key_values(), small()).prop_map(|(t, n, a, d)| PEvent {
            time_unix_nano: t, name: n, attributes: a, dropped_attributes_count: d,
        }), 0..3),
        dropped_events_count in small(),
        links in vec((id(16), id(8), text(), key_values(), small(), small()).prop_map(
            |(trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags)| PLink {
                trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags,
            }), 0..3),
        dropped_links_count in small(),
        status in option::of((text(), 0i32..=2).prop_map(|(message, code)| PStatus { message, code })),
    ) -> PSpan {
        PSpan {
            trace_id, span_id, trace_state, parent_span_id, flags, name, kind,
            start_time_unix_nano, end_time_unix_nano, attributes, dropped_attributes_count,
            events, dropped_events_count, links, dropped_links_count, status,
        }
    }
}

prop_compose! {
    fn proto_log()(
        time_unix_nano in nanos(), observed_time_unix_nano in nanos(),
        severity_number in prop_oneof![Just(0i32), 1i32..=24, any::<i32>()],
        severity_text in text(), body in option::of(value()), attributes in key_values(),
        dropped_attributes_count in small(), flags in small(),
        trace_id in id(16), span_id in id(8), event_name in text(),
    ) -> PLog {
        PLog {
            time_unix_nano, observed_time_unix_nano, severity_number, severity_text, body,
            attributes, dropped_attributes_count, flags, trace_id, span_id, event_name,
        }
    }
}

fn encoded(write: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut buf = BytesMut::new();
    write(&mut buf);
    buf.to_vec()
}

// === tests ===

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn span_record_encodes_byte_identical_to_prost_span(span in proto_span()) {
        let want = span.encode_to_vec();
        let span: &'static PSpan = Box::leak(Box::new(span));
        let record = span_record(span);
        prop_assert_eq!(encoded(|b| record.encode(b)), want);
    }

    #[test]
    fn log_record_encodes_byte_identical_to_prost_log_record(record in proto_log()) {
        let want = record.encode_to_vec();
        let record: &'static PLog = Box::leak(Box::new(record));
        let direct = log_record(record);
        prop_assert_eq!(encoded(|b| direct.encode(b)), want);
    }
}

#[test]
fn span_record_item_carries_its_groups_and_the_span_bytes() {
    let resource = otlp::resource_group(&Resource::default(), "");
    let scope = otlp::scope_group(
        &InstrumentationScope {
            name: "s".into(),
            ..Default::default()
        },
        "",
    );
    let proto = PSpan {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "n".into(),
        kind: SpanKind::Client as i32,
        status: Some(PStatus::default()),
        ..Default::default()
    };
    let record = SpanRecord {
        trace_id: &[1; 16],
        span_id: &[2; 8],
        name: "n",
        kind: SpanKind::Client,
        status: Some(Status {
            code: StatusCode::Unset,
            message: "",
        }),
        ..SpanRecord::default()
    };
    let item = record.to_item(&resource, &scope);
    assert_eq!(item, otlp::span_item(&resource, &scope, &proto));
    let log = PLog {
        severity_number: 9,
        body: Some(PAny {
            value: Some(PV::StringValue("hi".into())),
        }),
        ..Default::default()
    };
    let item = LogRecord {
        severity_number: 9,
        body: Some(AnyValue::Str("hi")),
        ..LogRecord::default()
    }
    .to_item(&resource, &scope);
    assert_eq!(item.signal, Signal::Logs);
    assert_eq!(item, otlp::log_item(&resource, &scope, &log));
}
