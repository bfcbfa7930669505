//! Byte identity of the direct SDK encoders with `opentelemetry-proto`'s
//! conversion followed by prost encoding, over generated spans and records.

use std::{
    borrow::Cow,
    collections::HashMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::BytesMut;
use opentelemetry::{
    InstrumentationScope, Key, KeyValue, StringValue, Value,
    logs::{AnyValue as LogValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity},
    trace::{Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState},
};
use opentelemetry_proto::tonic::{
    logs::v1::LogRecord as ProtoLogRecord, trace::v1::Span as ProtoSpan,
};
use opentelemetry_sdk::{
    logs::{SdkLogRecord, SdkLoggerProvider},
    trace::{SpanData, SpanEvents, SpanLinks},
};
use proptest::{collection::vec, prelude::*};
use prost::Message;

use super::{write_log, write_span};

// === generators ===

fn text() -> impl Strategy<Value = String> {
    // Empty, short, multi-byte and long (past one length byte) strings.
    prop_oneof![
        Just(String::new()),
        "[a-z.]{1,12}",
        "\\PC{0,8}",
        "[a-z]{120,200}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::I64),
        any::<f64>().prop_map(Value::F64),
        text().prop_map(|s| Value::String(StringValue::from(s))),
        vec(any::<bool>(), 0..4).prop_map(|v| Value::Array(v.into())),
        vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(v.into())),
        vec(any::<f64>(), 0..4).prop_map(|v| Value::Array(v.into())),
        vec(text(), 0..4).prop_map(|v| Value::Array(
            v.into_iter()
                .map(StringValue::from)
                .collect::<Vec<_>>()
                .into()
        )),
    ]
}

fn key_values() -> impl Strategy<Value = Vec<KeyValue>> {
    vec(
        (text(), value()).prop_map(|(k, v)| KeyValue::new(k, v)),
        0..6,
    )
}

fn trace_state() -> impl Strategy<Value = TraceState> {
    prop_oneof![
        Just(TraceState::NONE),
        Just(TraceState::default()),
        Just(TraceState::from_key_value([("vendor", "abc")]).unwrap()),
        Just(TraceState::from_key_value([("a", "1"), ("b", "2")]).unwrap()),
    ]
}

fn span_context() -> impl Strategy<Value = SpanContext> {
    (
        any::<u128>(),
        any::<u64>(),
        any::<u8>(),
        any::<bool>(),
        trace_state(),
    )
        .prop_map(|(t, s, f, remote, state)| {
            SpanContext::new(
                TraceId::from(t),
                SpanId::from(s),
                TraceFlags::new(f),
                remote,
                state,
            )
        })
}

fn time() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        Just(UNIX_EPOCH),
        // Before the epoch: the conversion writes 0.
        (1u64..1_000_000).prop_map(|s| UNIX_EPOCH - Duration::from_secs(s)),
        (0u64..4_000_000_000_000_000_000).prop_map(|n| UNIX_EPOCH + Duration::from_nanos(n)),
    ]
}

fn kind() -> impl Strategy<Value = SpanKind> {
    prop_oneof![
        Just(SpanKind::Internal),
        Just(SpanKind::Server),
        Just(SpanKind::Client),
        Just(SpanKind::Producer),
        Just(SpanKind::Consumer),
    ]
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Unset),
        Just(Status::Ok),
        text().prop_map(|d| Status::Error {
            description: Cow::Owned(d)
        }),
    ]
}

fn events() -> impl Strategy<Value = SpanEvents> {
    (
        vec(
            (text(), time(), key_values(), any::<u32>())
                .prop_map(|(n, t, a, d)| Event::new(n, t, a, d)),
            0..4,
        ),
        any::<u32>(),
    )
        .prop_map(|(events, dropped)| {
            let mut e = SpanEvents::default();
            e.events = events;
            e.dropped_count = dropped;
            e
        })
}

fn links() -> impl Strategy<Value = SpanLinks> {
    (
        vec(
            (span_context(), key_values(), any::<u32>()).prop_map(|(c, a, d)| Link::new(c, a, d)),
            0..3,
        ),
        any::<u32>(),
    )
        .prop_map(|(links, dropped)| {
            let mut l = SpanLinks::default();
            l.links = links;
            l.dropped_count = dropped;
            l
        })
}

prop_compose! {
    fn span_data()(
        span_context in span_context(),
        parent in prop_oneof![Just(0u64), any::<u64>()],
        parent_span_is_remote in any::<bool>(),
        span_kind in kind(),
        name in text(),
        start_time in time(),
        end_time in time(),
        attributes in key_values(),
        dropped_attributes_count in prop_oneof![Just(0u32), any::<u32>()],
        events in events(),
        links in links(),
        status in status(),
    ) -> SpanData {
        SpanData {
            span_context,
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote,
            span_kind,
            name: Cow::Owned(name),
            start_time,
            end_time,
            attributes,
            dropped_attributes_count,
            events,
            links,
            status,
            instrumentation_scope: InstrumentationScope::builder("test").build(),
        }
    }
}

fn log_value(depth: u32) -> BoxedStrategy<LogValue> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(LogValue::Int),
        any::<f64>().prop_map(LogValue::Double),
        text().prop_map(|s| LogValue::String(s.into())),
        any::<bool>().prop_map(LogValue::Boolean),
        vec(any::<u8>(), 0..40).prop_map(|b| LogValue::Bytes(Box::new(b))),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf,
        1 => vec(log_value(depth - 1), 0..4).prop_map(|v| LogValue::ListAny(Box::new(v))),
        1 => vec((text(), log_value(depth - 1)), 0..4).prop_map(|kv| {
            let map: HashMap<Key, LogValue> = kv.into_iter().map(|(k, v)| (Key::new(k), v)).collect();
            LogValue::Map(Box::new(map))
        }),
    ]
    .boxed()
}

const SEVERITIES: [Severity; 6] = [
    Severity::Trace,
    Severity::Debug2,
    Severity::Info,
    Severity::Warn4,
    Severity::Error,
    Severity::Fatal4,
];

const TEXTS: [&str; 3] = ["", "INFO", "a much longer severity text"];

#[derive(Debug, Clone)]
struct LogInput {
    time: Option<SystemTime>,
    observed: Option<SystemTime>,
    severity: Option<usize>,
    text: Option<usize>,
    event_name: Option<usize>,
    body: Option<LogValue>,
    attributes: Vec<(String, LogValue)>,
    trace: Option<(u128, u64, Option<u8>)>,
}

prop_compose! {
    fn log_input()(
        time in proptest::option::of(time()),
        observed in proptest::option::of(time()),
        severity in proptest::option::of(0..SEVERITIES.len()),
        text in proptest::option::of(0..TEXTS.len()),
        event_name in proptest::option::of(0..TEXTS.len()),
        body in proptest::option::of(log_value(2)),
        attributes in vec((text(), log_value(1)), 0..6),
        trace in proptest::option::of((any::<u128>(), any::<u64>(), proptest::option::of(any::<u8>()))),
    ) -> LogInput {
        LogInput { time, observed, severity, text, event_name, body, attributes, trace }
    }
}

fn record(provider: &SdkLoggerProvider, input: &LogInput) -> SdkLogRecord {
    let mut r = provider.logger("test").create_log_record();
    if let Some(t) = input.time {
        r.set_timestamp(t);
    }
    if let Some(t) = input.observed {
        r.set_observed_timestamp(t);
    }
    if let Some(i) = input.severity {
        r.set_severity_number(SEVERITIES[i]);
    }
    if let Some(i) = input.text {
        r.set_severity_text(TEXTS[i]);
    }
    if let Some(i) = input.event_name {
        r.set_event_name(TEXTS[i]);
    }
    if let Some(b) = &input.body {
        r.set_body(b.clone());
    }
    for (k, v) in &input.attributes {
        r.add_attribute(k.clone(), v.clone());
    }
    if let Some((t, s, f)) = input.trace {
        r.set_trace_context(TraceId::from(t), SpanId::from(s), f.map(TraceFlags::new));
    }
    r
}

fn direct_span(span: &SpanData) -> Vec<u8> {
    let mut buf = BytesMut::new();
    write_span(&mut buf, span);
    buf.to_vec()
}

fn direct_log(record: &SdkLogRecord, observed: SystemTime) -> Vec<u8> {
    let mut buf = BytesMut::new();
    write_log(&mut buf, record, observed);
    buf.to_vec()
}

// === tests ===

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn direct_span_encoding_is_byte_identical_to_proto_conversion(span in span_data()) {
        let want = ProtoSpan::from(span.clone()).encode_to_vec();
        prop_assert_eq!(direct_span(&span), want);
    }

    #[test]
    fn direct_log_encoding_is_byte_identical_to_proto_conversion(input in log_input()) {
        let provider = SdkLoggerProvider::builder().build();
        let mut r = record(&provider, &input);
        let fallback = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let got = direct_log(&r, fallback);
        // The conversion needs an observed time: stamp the fallback as the bridge does.
        if r.observed_timestamp().is_none() {
            r.set_observed_timestamp(fallback);
        }
        let want = ProtoLogRecord::from(&r).encode_to_vec();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn every_span_kind_status_and_remote_parent_matches_the_conversion() {
    let parent = SpanContext::new(
        TraceId::from(7u128),
        SpanId::from(9u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_value([("k", "v")]).unwrap(),
    );
    for kind in [
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ] {
        for status in [
            Status::Unset,
            Status::Ok,
            Status::error(""),
            Status::error("boom"),
        ] {
            for remote in [false, true] {
                let mut links = SpanLinks::default();
                links.links = vec![Link::new(
                    parent.clone(),
                    vec![KeyValue::new("link.attr", 1i64)],
                    2,
                )];
                let span = SpanData {
                    span_context: parent.clone(),
                    parent_span_id: SpanId::from(3u64),
                    parent_span_is_remote: remote,
                    span_kind: kind.clone(),
                    name: "span".into(),
                    start_time: UNIX_EPOCH + Duration::from_secs(1),
                    end_time: UNIX_EPOCH + Duration::from_secs(2),
                    attributes: vec![KeyValue::new("", ""), KeyValue::new("b", false)],
                    dropped_attributes_count: 1,
                    events: SpanEvents::default(),
                    links,
                    status: status.clone(),
                    instrumentation_scope: InstrumentationScope::builder("s").build(),
                };
                let want = ProtoSpan::from(span.clone()).encode_to_vec();
                assert_eq!(
                    direct_span(&span),
                    want,
                    "{kind:?} {status:?} remote={remote}"
                );
            }
        }
    }
}

#[test]
fn log_record_without_trace_flags_or_observed_time_matches_the_conversion() {
    let provider = SdkLoggerProvider::builder().build();
    let mut r = provider.logger("test").create_log_record();
    r.set_trace_context(TraceId::from(1u128), SpanId::from(2u64), None);
    r.set_body(LogValue::Bytes(Box::default()));
    let observed = UNIX_EPOCH + Duration::from_secs(5);
    let got = direct_log(&r, observed);
    r.set_observed_timestamp(observed);
    assert_eq!(got, ProtoLogRecord::from(&r).encode_to_vec());
}
