//! The exact span and log record every producer in the benchmarks creates.
//!
//! The peer (opentelemetry-otlp), our SDK bridge and our native path must all
//! produce the same telemetry, or the comparison means nothing. This module
//! pins it: one server span with 8 attributes and 1 event (about 380 bytes
//! once encoded), and one log record with a string body and 4 attributes,
//! under one resource (`service.name`) and one instrumentation scope.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry::{
    logs::{LogRecord as _, Logger, Severity},
    trace::{Span as _, SpanKind, Tracer},
};
use opentelemetry_proto::tonic::{
    collector::{logs::v1::ExportLogsServiceRequest, trace::v1::ExportTraceServiceRequest},
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span},
};
use otlp::wire;
use prost::Message as _;

use crate::BenchesError;

/// The value of one attribute of the shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A string attribute.
    Str(&'static str),
    /// An integer attribute.
    Int(i64),
}

/// `service.name` of the resource every producer reports under.
pub const SERVICE_NAME: &str = "otlp-bench";
/// The instrumentation scope (tracer / logger name).
pub const SCOPE_NAME: &str = "otlp-bench";
/// The span name.
pub const SPAN_NAME: &str = "GET /orders/{id}";
/// The span kind (server).
pub const SPAN_KIND: SpanKind = SpanKind::Server;
/// The 8 span attributes, in order.
pub const SPAN_ATTRIBUTES: [(&str, Value); 8] = [
    ("http.request.method", Value::Str("GET")),
    ("http.route", Value::Str("/orders/{id}")),
    ("url.path", Value::Str("/orders/12345")),
    ("url.scheme", Value::Str("https")),
    ("http.response.status_code", Value::Int(200)),
    ("server.address", Value::Str("orders.example.com")),
    ("server.port", Value::Int(8443)),
    (
        "user_agent.original",
        Value::Str("otlp-bench/1.0 (linux; x86_64)"),
    ),
];
/// The name of the one span event.
pub const EVENT_NAME: &str = "cache.lookup";
/// The attributes of the span event.
pub const EVENT_ATTRIBUTES: [(&str, Value); 1] = [("cache.key", Value::Str("orders:12345"))];

/// The log record body.
pub const LOG_BODY: &str = "order 12345 served from cache";
/// The log record severity text (the number is INFO, 9).
pub const LOG_SEVERITY_TEXT: &str = "INFO";
/// The 4 log record attributes, in order.
pub const LOG_ATTRIBUTES: [(&str, Value); 4] = [
    ("http.request.method", Value::Str("GET")),
    ("url.path", Value::Str("/orders/12345")),
    ("http.response.status_code", Value::Int(200)),
    ("duration_ms", Value::Int(3)),
];

// === impl Value ===

impl Value {
    fn otel(self) -> opentelemetry::Value {
        match self {
            Value::Str(s) => opentelemetry::Value::from(s),
            Value::Int(i) => opentelemetry::Value::I64(i),
        }
    }

    fn proto(self) -> AnyValue {
        AnyValue {
            value: Some(match self {
                Value::Str(s) => any_value::Value::StringValue(s.to_owned()),
                Value::Int(i) => any_value::Value::IntValue(i),
            }),
        }
    }
}

fn direct_attributes<const N: usize>(
    attrs: &[(&'static str, Value); N],
) -> [wire::Attribute<'static>; N] {
    attrs.map(|(key, v)| wire::Attribute {
        key,
        value: match v {
            Value::Str(s) => wire::AnyValue::Str(s),
            Value::Int(i) => wire::AnyValue::Int(i),
        },
    })
}

fn otel_attributes(attrs: &[(&'static str, Value)]) -> Vec<opentelemetry::KeyValue> {
    attrs
        .iter()
        .map(|&(k, v)| opentelemetry::KeyValue::new(k, v.otel()))
        .collect()
}

fn proto_attributes(attrs: &[(&'static str, Value)]) -> Vec<KeyValue> {
    attrs
        .iter()
        .map(|&(k, v)| KeyValue {
            key: k.to_owned(),
            value: Some(v.proto()),
            ..Default::default()
        })
        .collect()
}

/// The resource attributes every producer uses (`service.name`).
pub fn otel_resource() -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder_empty()
        .with_service_name(SERVICE_NAME)
        .build()
}

/// Creates `n` spans of the shape with `tracer`, one after the other on the
/// calling thread, as fast as it goes: each one started, given its event, and
/// ended. Every producer on the SDK path runs exactly this loop.
pub fn create_spans<T: Tracer>(tracer: &T, n: u64) {
    for _ in 0..n {
        let mut span = tracer
            .span_builder(SPAN_NAME)
            .with_kind(SPAN_KIND)
            .with_attributes(otel_attributes(&SPAN_ATTRIBUTES))
            .start(tracer);
        span.add_event(EVENT_NAME, otel_attributes(&EVENT_ATTRIBUTES));
        span.end();
    }
}

/// Emits `n` log records of the shape with `logger`, as fast as it goes.
pub fn emit_logs<L: Logger>(logger: &L, n: u64) {
    for _ in 0..n {
        let mut record = logger.create_log_record();
        let now = SystemTime::now();
        record.set_timestamp(now);
        record.set_observed_timestamp(now);
        record.set_severity_number(Severity::Info);
        record.set_severity_text(LOG_SEVERITY_TEXT);
        record.set_body(opentelemetry::logs::AnyValue::from(LOG_BODY));
        record.add_attributes(LOG_ATTRIBUTES.iter().map(|&(k, v)| (k, log_value(v))));
        logger.emit(record);
    }
}

fn log_value(v: Value) -> opentelemetry::logs::AnyValue {
    match v {
        Value::Str(s) => opentelemetry::logs::AnyValue::from(s),
        Value::Int(i) => opentelemetry::logs::AnyValue::Int(i),
    }
}

/// Nanoseconds since the Unix epoch, from the system clock (0 before 1970).
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The shape as an opentelemetry-proto span, built from scratch with owned
/// strings (as an exporter builds it), with the given ids and start time and a
/// 1 ms duration.
pub fn proto_span(trace_id: [u8; 16], span_id: [u8; 8], start_unix_nano: u64) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        // Sampled, with the "is remote" bit known (what the SDK exports).
        flags: 0x101,
        name: SPAN_NAME.to_owned(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start_unix_nano,
        end_time_unix_nano: start_unix_nano + 1_000_000,
        attributes: proto_attributes(&SPAN_ATTRIBUTES),
        events: vec![span::Event {
            time_unix_nano: start_unix_nano + 500_000,
            name: EVENT_NAME.to_owned(),
            attributes: proto_attributes(&EVENT_ATTRIBUTES),
            dropped_attributes_count: 0,
        }],
        status: Some(Status::default()),
        ..Default::default()
    }
}

/// The shape as an opentelemetry-proto log record.
pub fn proto_log_record(time_unix_nano: u64) -> LogRecord {
    LogRecord {
        time_unix_nano,
        observed_time_unix_nano: time_unix_nano,
        severity_number: SeverityNumber::Info as i32,
        severity_text: LOG_SEVERITY_TEXT.to_owned(),
        body: Some(Value::Str(LOG_BODY).proto()),
        attributes: proto_attributes(&LOG_ATTRIBUTES),
        ..Default::default()
    }
}

/// The shape as borrowed [`otlp::wire`] records: the native path's
/// allocation-free API. Each record carries the same fields, in the same
/// order, as [`proto_span`] / [`proto_log_record`], so it encodes to the same
/// bytes for the same ids and timestamps.
#[derive(Clone, Debug)]
pub struct DirectShape {
    span_attributes: [wire::Attribute<'static>; 8],
    event_attributes: [wire::Attribute<'static>; 1],
    log_attributes: [wire::Attribute<'static>; 4],
}

// === impl DirectShape ===

impl Default for DirectShape {
    fn default() -> Self {
        Self::new()
    }
}

impl DirectShape {
    /// The shape's attribute tables, built once.
    pub fn new() -> Self {
        Self {
            span_attributes: direct_attributes(&SPAN_ATTRIBUTES),
            event_attributes: direct_attributes(&EVENT_ATTRIBUTES),
            log_attributes: direct_attributes(&LOG_ATTRIBUTES),
        }
    }

    /// Calls `f` with the span of the shape with these ids and start time
    /// (1 ms long, its event at 0.5 ms), as [`proto_span`] builds it.
    pub fn with_span<R>(
        &self,
        trace_id: &[u8; 16],
        span_id: &[u8; 8],
        start_unix_nano: u64,
        f: impl FnOnce(&wire::SpanRecord<'_>) -> R,
    ) -> R {
        let events = [wire::Event {
            time_unix_nano: start_unix_nano + 500_000,
            name: EVENT_NAME,
            attributes: &self.event_attributes,
            dropped_attributes_count: 0,
        }];
        f(&wire::SpanRecord {
            trace_id,
            span_id,
            flags: 0x101,
            name: SPAN_NAME,
            kind: span::SpanKind::Server,
            start_time_unix_nano: start_unix_nano,
            end_time_unix_nano: start_unix_nano + 1_000_000,
            attributes: &self.span_attributes,
            events: &events,
            status: Some(wire::Status {
                code: opentelemetry_proto::tonic::trace::v1::status::StatusCode::Unset,
                message: "",
            }),
            ..wire::SpanRecord::default()
        })
    }

    /// The log record of the shape at `time_unix_nano`, as [`proto_log_record`] builds it.
    pub fn log_record(&self, time_unix_nano: u64) -> wire::LogRecord<'_> {
        wire::LogRecord {
            time_unix_nano,
            observed_time_unix_nano: time_unix_nano,
            severity_number: SeverityNumber::Info as i32,
            severity_text: LOG_SEVERITY_TEXT,
            body: Some(wire::AnyValue::Str(LOG_BODY)),
            attributes: &self.log_attributes,
            ..wire::LogRecord::default()
        }
    }
}

/// The shape's resource as opentelemetry-proto (`service.name` only).
pub fn proto_resource() -> Resource {
    Resource {
        attributes: proto_attributes(&[("service.name", Value::Str(SERVICE_NAME))]),
        ..Default::default()
    }
}

/// The shape's instrumentation scope as opentelemetry-proto.
pub fn proto_scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_owned(),
        ..Default::default()
    }
}

/// A deterministic (not random) pair of ids for span number `i`.
pub fn ids(i: u64) -> ([u8; 16], [u8; 8]) {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&i.wrapping_add(1).to_be_bytes());
    trace_id[8..].copy_from_slice(&0x5eed_u64.to_be_bytes());
    (trace_id, i.wrapping_add(1).to_be_bytes())
}

/// An export request of `n` spans of the shape under one resource and scope.
pub fn trace_request(n: u64) -> ExportTraceServiceRequest {
    let start = now_nanos();
    let spans = (0..n)
        .map(|i| {
            let (t, s) = ids(i);
            proto_span(t, s, start + i)
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(proto_resource()),
            scope_spans: vec![ScopeSpans {
                scope: Some(proto_scope()),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// An export request of `n` log records of the shape under one resource and scope.
pub fn logs_request(n: u64) -> ExportLogsServiceRequest {
    let start = now_nanos();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(proto_resource()),
            scope_logs: vec![ScopeLogs {
                scope: Some(proto_scope()),
                log_records: (0..n).map(|i| proto_log_record(start + i)).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Encodes a message into fresh bytes of exactly its encoded length.
///
/// # Errors
///
/// Returns [`BenchesError::Encode`] if prost refuses (it cannot for a `Vec`
/// sized by `encoded_len`, but the error is passed on rather than assumed away).
pub fn encode<M: prost::Message>(msg: &M) -> Result<Bytes, BenchesError> {
    let mut buf = Vec::with_capacity(msg.encoded_len());
    msg.encode(&mut buf)?;
    Ok(Bytes::from(buf))
}

/// The encoded size of one span of the shape, as it sits inside a request.
pub fn span_encoded_len() -> usize {
    let (t, s) = ids(0);
    proto_span(t, s, now_nanos()).encoded_len()
}

/// The encoded size of one log record of the shape, as it sits inside a request.
pub fn log_record_encoded_len() -> usize {
    proto_log_record(now_nanos()).encoded_len()
}

/// The shape in Markdown, for BENCHMARKS.md (one sentence per line).
pub fn describe() -> String {
    let attrs = |list: &[(&str, Value)]| {
        list.iter()
            .map(|(k, v)| match v {
                Value::Str(s) => format!("`{k}` = \"{s}\""),
                Value::Int(i) => format!("`{k}` = {i}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    out.push_str(&format!(
        "Each span is a `{SPAN_NAME}` server span ({} bytes encoded, ids and timestamps included) with {} attributes: {}.\n",
        span_encoded_len(),
        SPAN_ATTRIBUTES.len(),
        attrs(&SPAN_ATTRIBUTES)
    ));
    out.push_str(&format!(
        "It carries {} event, `{EVENT_NAME}`, with {}.\n",
        1,
        attrs(&EVENT_ATTRIBUTES)
    ));
    out.push_str(&format!(
        "Each log record ({} bytes encoded) has severity {LOG_SEVERITY_TEXT}, the body \"{LOG_BODY}\" and {} attributes: {}.\n",
        log_record_encoded_len(),
        LOG_ATTRIBUTES.len(),
        attrs(&LOG_ATTRIBUTES)
    ));
    out.push_str(&format!(
        "All of them come from one resource (`service.name` = \"{SERVICE_NAME}\") and one scope (`{SCOPE_NAME}`), created from one thread, root spans only (the source is `benches/src/shape.rs`).\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use otlp_core::{Signal, count_items};

    use super::*;

    #[test]
    fn span_shape_encodes_to_about_380_bytes() {
        let len = span_encoded_len();
        assert!((340..=420).contains(&len), "span encodes to {len} bytes");
        let (t, s) = ids(7);
        let span = proto_span(t, s, 1);
        assert_eq!(span.attributes.len(), 8);
        assert_eq!(span.events.len(), 1);
    }

    #[test]
    fn direct_records_encode_to_the_prost_shape_bytes() {
        let direct = DirectShape::new();
        for i in [0u64, 1, 1 << 40] {
            let (t, s) = ids(i);
            let start = now_nanos() + i;
            let want = proto_span(t, s, start).encode_to_vec();
            let got = direct.with_span(&t, &s, start, |span| {
                let mut buf = bytes::BytesMut::new();
                span.encode(&mut buf);
                buf
            });
            assert_eq!(&got[..], &want[..]);
            let want = proto_log_record(start).encode_to_vec();
            let mut buf = bytes::BytesMut::new();
            direct.log_record(start).encode(&mut buf);
            assert_eq!(&buf[..], &want[..]);
        }
    }

    #[test]
    fn encoded_requests_count_their_items_on_the_wire() {
        let bytes = encode(&trace_request(100)).unwrap();
        assert_eq!(count_items(Signal::Traces, &bytes).unwrap(), 100);
        let bytes = encode(&logs_request(7)).unwrap();
        assert_eq!(count_items(Signal::Logs, &bytes).unwrap(), 7);
    }

    #[test]
    fn description_names_every_attribute_and_the_sizes() {
        let text = describe();
        for (k, _) in SPAN_ATTRIBUTES.iter().chain(&LOG_ATTRIBUTES) {
            assert!(text.contains(k), "{k} missing from {text}");
        }
        assert!(text.contains(&format!("{} bytes", span_encoded_len())));
    }
}
