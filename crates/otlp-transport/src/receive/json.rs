//! OTLP/JSON request bodies: mapped to protobuf by the OTLP descriptors
//! (`src/json.rs`), then validated into a [`Batch`] like a protobuf body
//! (the one receive path that re-encodes).

use bytes::Bytes;
use otlp_core::{Batch, Signal};

/// Decodes an OTLP/JSON export request of `signal` into an encoded batch,
/// validated as the receivers validate protobuf requests (the HTTP
/// receiver's JSON path, and [`super::from_otlp_json`]).
///
/// The error is a message for the client naming the field's path (or the
/// line and column of broken JSON): never a batch with data left out.
pub(crate) fn to_batch(signal: Signal, json: &[u8]) -> Result<Batch, String> {
    let encoded = crate::json::to_protobuf(signal, json)
        .map_err(|e| format!("malformed OTLP/JSON {signal} request: {e}"))?;
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
        Signal::Profiles => "resourceProfiles",
    }
}

/// Why a request that decoded to no items may have meant some: its first
/// unknown top-level key (unknown fields are ignored, as the spec requires,
/// so `ResourceSpans` or a logs request sent to the traces path silently
/// carries nothing).
fn zero_items_hint(signal: Signal, json: &[u8]) -> Option<String> {
    let keys: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json).ok()?;
    let want = known_key(signal);
    let snake = want_snake(signal);
    let unknown = keys
        .keys()
        .find(|k| k.as_str() != want && k.as_str() != snake && !is_shared_key(signal, k))?;
    Some(format!(
        "OTLP/JSON {signal} request decoded to 0 items: its top-level key '{unknown}' is unknown and was ignored; a {signal} request carries its items under '{want}'"
    ))
}

/// The proto field name of [`known_key`], also accepted (proto3 JSON).
fn want_snake(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "resource_spans",
        Signal::Metrics => "resource_metrics",
        Signal::Logs => "resource_logs",
        Signal::Profiles => "resource_profiles",
    }
}

/// Whether `key` is a known top-level key other than the resources: the
/// profiles dictionary.
fn is_shared_key(signal: Signal, key: &str) -> bool {
    signal == Signal::Profiles && key == "dictionary"
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
    use opentelemetry_proto::tonic::{
        collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value::Value,
    };
    use prost::Message as _;

    use super::*;

    #[test]
    fn snake_case_keys_are_read_and_unknown_keys_get_a_warning_naming_the_fix() {
        // Proto3 JSON parsers accept the original field names (so does the
        // Collector): snake_case carries its items.
        let json = br#"{"resource_spans":[{"scope_spans":[{"spans":[{"name":"x"}]}]}]}"#;
        assert_eq!(to_batch(Signal::Traces, json).unwrap().items(), 1);
        assert_eq!(zero_items_hint(Signal::Traces, json), None);
        // Unknown fields are ignored (a MUST): 0 items, accepted, and named.
        let json = br#"{"ResourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"}]}]}]}"#;
        assert_eq!(to_batch(Signal::Traces, json).unwrap().items(), 0);
        let hint = zero_items_hint(Signal::Traces, json).unwrap();
        assert!(
            hint.contains("'ResourceSpans'") && hint.contains("under 'resourceSpans'"),
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
        assert!(
            err.contains("resourceSpans[0].scopeSpans[0].spans[0].traceId"),
            "{err}"
        );
        let err = to_batch(Signal::Logs, b"{\"resourceLogs\": [").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }
}
