//! OTLP/JSON request bodies: decoded through the generated types' serde
//! support, then protobuf-encoded into a [`Batch`] (the one path that re-encodes).
//!
//! The OTLP/JSON rules checked by the tests: trace and span ids are
//! case-insensitive hex (not base64), 64-bit integers may be strings or
//! numbers, enums are integers, keys are lowerCamelCase, unknown fields are
//! ignored.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
    trace::v1::ExportTraceServiceRequest,
};
use otlp_core::{Batch, Signal};
use prost::Message;

/// Decodes an OTLP/JSON export request of `signal` into an encoded batch.
///
/// The error is a message for the client, naming the line and column.
pub(crate) fn to_batch(signal: Signal, json: &[u8]) -> Result<Batch, String> {
    let bad = |e: serde_json::Error| {
        format!(
            "malformed OTLP/JSON {signal} request: {e}; ids must be hex, 64-bit integers decimal strings"
        )
    };
    let encoded = match signal {
        Signal::Traces => serde_json::from_slice::<ExportTraceServiceRequest>(json)
            .map_err(bad)?
            .encode_to_vec(),
        Signal::Metrics => serde_json::from_slice::<ExportMetricsServiceRequest>(json)
            .map_err(bad)?
            .encode_to_vec(),
        Signal::Logs => serde_json::from_slice::<ExportLogsServiceRequest>(json)
            .map_err(bad)?
            .encode_to_vec(),
    };
    // JSON decoding guarantees UTF-8 but not ids' lengths or nesting depth.
    let batch = Batch::from_received(signal, Bytes::from(encoded)).map_err(|e| e.to_string())?;
    if batch.items() == 0
        && let Some(message) = zero_items_hint(signal, json)
    {
        warn_rate_limited(&message);
    }
    Ok(batch)
}

/// The top-level key an OTLP/JSON request of `signal` has.
fn known_key(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "resourceSpans",
        Signal::Metrics => "resourceMetrics",
        Signal::Logs => "resourceLogs",
    }
}

/// Why a request that decoded to no items may have meant some: its first
/// unknown top-level key (unknown fields are ignored, as the spec requires,
/// so `resource_spans` in snake_case silently carries nothing).
fn zero_items_hint(signal: Signal, json: &[u8]) -> Option<String> {
    let keys: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json).ok()?;
    let want = known_key(signal);
    let unknown = keys.keys().find(|k| k.as_str() != want)?;
    let camel = lower_camel(unknown);
    let fix = if camel == want {
        format!("OTLP/JSON keys are lowerCamelCase: write '{want}'")
    } else {
        format!("a {signal} request carries its items under '{want}'")
    };
    Some(format!(
        "OTLP/JSON {signal} request decoded to 0 items: its top-level key '{unknown}' is unknown and was ignored; {fix}"
    ))
}

/// `resource_spans` -> `resourceSpans`.
fn lower_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Logs `message` at WARN at most once every 10 s (a misconfigured sender
/// repeats it with every request).
fn warn_rate_limited(message: &str) {
    use std::sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    };
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let now = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs();
    let next = NEXT.load(Ordering::Relaxed);
    if now >= next
        && NEXT
            .compare_exchange(next, now + 10, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!("{message} (this warning repeats at most every 10 s)");
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    use super::*;

    #[test]
    fn snake_case_keys_carry_nothing_and_the_warning_names_the_fix() {
        let json = br#"{"resource_spans":[{"scope_spans":[{"spans":[{"name":"x"}]}]}]}"#;
        // Unknown fields are ignored (a MUST): 0 items, accepted.
        assert_eq!(to_batch(Signal::Traces, json).unwrap().items(), 0);
        let hint = zero_items_hint(Signal::Traces, json).unwrap();
        assert!(
            hint.contains("'resource_spans'") && hint.contains("write 'resourceSpans'"),
            "{hint}"
        );
        // Logs sent to the traces endpoint: named, with where items go.
        let hint = zero_items_hint(Signal::Traces, br#"{"resourceLogs":[]}"#).unwrap();
        assert!(hint.contains("under 'resourceSpans'"), "{hint}");
        // An empty envelope or the right key: nothing to say.
        assert_eq!(zero_items_hint(Signal::Traces, b"{}"), None);
        assert_eq!(
            zero_items_hint(Signal::Logs, br#"{"resourceLogs":[]}"#),
            None
        );
    }

    #[test]
    fn spec_example_trace_decodes_with_hex_ids_and_string_times() {
        let json = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
            "scopeSpans":[{"scope":{"name":"lib"},"spans":[{
              "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"",
              "name":"op","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
              "attributes":[{"key":"n","value":{"intValue":"-42"}},{"key":"m","value":{"intValue":7}}],
              "status":{"code":1},"someFutureField":{"x":1}}]}]}]}"#;
        let batch = to_batch(Signal::Traces, json).unwrap();
        assert_eq!(batch.items(), 1);
        let req = ExportTraceServiceRequest::decode(batch.bytes().clone()).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            span.trace_id,
            [
                0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
                0xc6, 0x0c
            ]
        );
        assert_eq!(
            span.span_id,
            [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]
        );
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.kind, 2);
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(
            span.attributes[0].value.as_ref().unwrap().value,
            Some(Value::IntValue(-42))
        );
        assert_eq!(
            span.attributes[1].value.as_ref().unwrap().value,
            Some(Value::IntValue(7))
        );
    }

    #[test]
    fn metric_points_are_counted_after_json_decode() {
        let json = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
            {"name":"c","sum":{"dataPoints":[{"asInt":"5","timeUnixNano":"1"},{"asDouble":1.5}],"aggregationTemporality":2,"isMonotonic":true}},
            {"name":"h","histogram":{"dataPoints":[{"count":"3","bucketCounts":["1","2"],"explicitBounds":[1.0]}]}}]}]}]}"#;
        let batch = to_batch(Signal::Metrics, json).unwrap();
        assert_eq!(batch.items(), 3);
    }

    #[test]
    fn base64_ids_and_broken_json_are_refused_with_a_message() {
        let json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"W47/95gDgQPSabYzgT/GDA=="}]}]}]}"#;
        let err = to_batch(Signal::Traces, json).unwrap_err();
        assert!(err.contains("malformed OTLP/JSON traces request"), "{err}");
        let err = to_batch(Signal::Logs, b"{\"resourceLogs\": [").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }
}
