//! `SpanData` and `SdkLogRecord` written straight to the OTLP wire format,
//! byte for byte what `opentelemetry-proto`'s conversion followed by prost
//! encoding produces, without the temporary structs and per-field strings.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use opentelemetry::{
    Array, KeyValue, Value,
    logs::AnyValue as LogValue,
    trace::{SpanContext, SpanId, SpanKind, Status, TraceState},
};
use opentelemetry_sdk::{logs::SdkLogRecord, trace::SpanData};

use crate::wire::{
    bytes_always, close, double_always, fixed32, fixed64, open, string, tags::*, varint,
    varint_always,
};

/// OTLP `SpanFlags`: the context's remoteness is known.
const CONTEXT_HAS_IS_REMOTE: u32 = 0x100;
/// OTLP `SpanFlags`: the context is remote.
const CONTEXT_IS_REMOTE: u32 = 0x200;

/// Nanoseconds since the Unix epoch, 0 before it (as the proto conversion does).
fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Trace flags plus the OTLP remote bits, as the proto conversion builds them.
fn span_flags(context: &SpanContext, remote: bool) -> u32 {
    let mut flags = u32::from(context.trace_flags().to_u8()) | CONTEXT_HAS_IS_REMOTE;
    if remote {
        flags |= CONTEXT_IS_REMOTE;
    }
    flags
}

/// Writes a trace state header field, skipping the allocation when it is empty.
fn trace_state(buf: &mut BytesMut, tag: u32, state: &TraceState) {
    if *state != TraceState::NONE {
        string(buf, tag, &state.header());
    }
}

fn kind_number(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// Writes one `SpanData` as an encoded `Span` message body.
pub(crate) fn write_span(buf: &mut BytesMut, span: &SpanData) {
    let cx = &span.span_context;
    bytes_always(buf, SPAN_TRACE_ID, &cx.trace_id().to_bytes());
    bytes_always(buf, SPAN_SPAN_ID, &cx.span_id().to_bytes());
    trace_state(buf, SPAN_TRACE_STATE, cx.trace_state());
    if span.parent_span_id != SpanId::INVALID {
        bytes_always(buf, SPAN_PARENT_SPAN_ID, &span.parent_span_id.to_bytes());
    }
    string(buf, SPAN_NAME, &span.name);
    varint(buf, SPAN_KIND, kind_number(&span.span_kind));
    fixed64(buf, SPAN_START, nanos(span.start_time));
    fixed64(buf, SPAN_END, nanos(span.end_time));
    write_key_values(buf, SPAN_ATTRIBUTES, &span.attributes);
    varint(
        buf,
        SPAN_DROPPED_ATTRIBUTES,
        u64::from(span.dropped_attributes_count),
    );
    for event in span.events.iter() {
        let start = open(buf, SPAN_EVENTS);
        fixed64(buf, EVENT_TIME, nanos(event.timestamp));
        string(buf, EVENT_NAME, &event.name);
        write_key_values(buf, EVENT_ATTRIBUTES, &event.attributes);
        varint(
            buf,
            EVENT_DROPPED_ATTRIBUTES,
            u64::from(event.dropped_attributes_count),
        );
        close(buf, start);
    }
    varint(
        buf,
        SPAN_DROPPED_EVENTS,
        u64::from(span.events.dropped_count),
    );
    for link in span.links.iter() {
        let lcx = &link.span_context;
        let start = open(buf, SPAN_LINKS);
        bytes_always(buf, LINK_TRACE_ID, &lcx.trace_id().to_bytes());
        bytes_always(buf, LINK_SPAN_ID, &lcx.span_id().to_bytes());
        trace_state(buf, LINK_TRACE_STATE, lcx.trace_state());
        write_key_values(buf, LINK_ATTRIBUTES, &link.attributes);
        varint(
            buf,
            LINK_DROPPED_ATTRIBUTES,
            u64::from(link.dropped_attributes_count),
        );
        fixed32(buf, LINK_FLAGS, span_flags(lcx, lcx.is_remote()));
        close(buf, start);
    }
    varint(buf, SPAN_DROPPED_LINKS, u64::from(span.links.dropped_count));
    // The conversion always sets a status, even Unset with no message.
    let start = open(buf, SPAN_STATUS);
    match &span.status {
        Status::Unset => {}
        Status::Ok => varint(buf, STATUS_CODE, 1),
        Status::Error { description } => {
            string(buf, STATUS_MESSAGE, description);
            varint(buf, STATUS_CODE, 2);
        }
    }
    close(buf, start);
    fixed32(buf, SPAN_FLAGS, span_flags(cx, span.parent_span_is_remote));
}

/// Writes SDK attributes as a repeated `KeyValue` field `tag`.
fn write_key_values(buf: &mut BytesMut, tag: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        let start = open(buf, tag);
        string(buf, KV_KEY, kv.key.as_str());
        let value = open(buf, KV_VALUE);
        write_value(buf, &kv.value);
        close(buf, value);
        close(buf, start);
    }
}

/// Writes an SDK attribute value as an `AnyValue` message body.
fn write_value(buf: &mut BytesMut, value: &Value) {
    match value {
        Value::Bool(b) => varint_always(buf, ANY_BOOL, u64::from(*b)),
        Value::I64(i) => varint_always(buf, ANY_INT, *i as u64),
        Value::F64(f) => double_always(buf, ANY_DOUBLE, *f),
        Value::String(s) => bytes_always(buf, ANY_STRING, s.as_str().as_bytes()),
        Value::Array(array) => {
            let start = open(buf, ANY_ARRAY);
            match array {
                Array::Bool(v) => {
                    for b in v {
                        let e = open(buf, LIST_VALUES);
                        varint_always(buf, ANY_BOOL, u64::from(*b));
                        close(buf, e);
                    }
                }
                Array::I64(v) => {
                    for i in v {
                        let e = open(buf, LIST_VALUES);
                        varint_always(buf, ANY_INT, *i as u64);
                        close(buf, e);
                    }
                }
                Array::F64(v) => {
                    for f in v {
                        let e = open(buf, LIST_VALUES);
                        double_always(buf, ANY_DOUBLE, *f);
                        close(buf, e);
                    }
                }
                Array::String(v) => {
                    for s in v {
                        let e = open(buf, LIST_VALUES);
                        bytes_always(buf, ANY_STRING, s.as_str().as_bytes());
                        close(buf, e);
                    }
                }
                // A kind added to the SDK after this was written (the proto
                // conversion panics on it): sent as its display string.
                other => {
                    let e = open(buf, LIST_VALUES);
                    bytes_always(buf, ANY_STRING, other.to_string().as_bytes());
                    close(buf, e);
                }
            }
            close(buf, start);
        }
        // A kind added to the SDK after this was written: its display string.
        other => bytes_always(buf, ANY_STRING, other.to_string().as_bytes()),
    }
}

/// Writes a log value as an `AnyValue` message body.
fn write_log_value(buf: &mut BytesMut, value: &LogValue) {
    match value {
        LogValue::Int(i) => varint_always(buf, ANY_INT, *i as u64),
        LogValue::Double(f) => double_always(buf, ANY_DOUBLE, *f),
        LogValue::String(s) => bytes_always(buf, ANY_STRING, s.as_str().as_bytes()),
        LogValue::Boolean(b) => varint_always(buf, ANY_BOOL, u64::from(*b)),
        LogValue::Bytes(b) => bytes_always(buf, ANY_BYTES, b),
        LogValue::ListAny(values) => {
            let start = open(buf, ANY_ARRAY);
            for v in values.iter() {
                let e = open(buf, LIST_VALUES);
                write_log_value(buf, v);
                close(buf, e);
            }
            close(buf, start);
        }
        LogValue::Map(map) => {
            let start = open(buf, ANY_KVLIST);
            // The map's own iteration order, which its clone (what the proto
            // conversion walks) shares.
            for (key, v) in map.iter() {
                write_log_key_value(buf, LIST_VALUES, key.as_str(), v);
            }
            close(buf, start);
        }
        // A kind added to the SDK after this was written (the proto
        // conversion panics on it): an AnyValue with no value.
        _ => {}
    }
}

fn write_log_key_value(buf: &mut BytesMut, tag: u32, key: &str, value: &LogValue) {
    let start = open(buf, tag);
    string(buf, KV_KEY, key);
    let v = open(buf, KV_VALUE);
    write_log_value(buf, value);
    close(buf, v);
    close(buf, start);
}

/// Writes one SDK log record as an encoded `LogRecord` message body;
/// `observed` stands in for a missing observed timestamp.
pub(crate) fn write_log(buf: &mut BytesMut, record: &SdkLogRecord, observed: SystemTime) {
    fixed64(buf, LOG_TIME, record.timestamp().map(nanos).unwrap_or(0));
    varint(
        buf,
        LOG_SEVERITY_NUMBER,
        record.severity_number().map_or(0, |s| s as i32 as u64),
    );
    string(buf, LOG_SEVERITY_TEXT, record.severity_text().unwrap_or(""));
    if let Some(body) = record.body() {
        let start = open(buf, LOG_BODY);
        write_log_value(buf, body);
        close(buf, start);
    }
    for (key, value) in record.attributes_iter() {
        write_log_key_value(buf, LOG_ATTRIBUTES, key.as_str(), value);
    }
    if let Some(cx) = record.trace_context() {
        fixed32(
            buf,
            LOG_FLAGS,
            cx.trace_flags.map_or(0, |f| u32::from(f.to_u8())),
        );
        bytes_always(buf, LOG_TRACE_ID, &cx.trace_id.to_bytes());
        bytes_always(buf, LOG_SPAN_ID, &cx.span_id.to_bytes());
    }
    fixed64(
        buf,
        LOG_OBSERVED_TIME,
        nanos(record.observed_timestamp().unwrap_or(observed)),
    );
    string(buf, LOG_EVENT_NAME, record.event_name().unwrap_or(""));
}

#[cfg(test)]
mod tests;
