//! OTLP/JSON encoding of an encoded batch (the one path that re-encodes).
//!
//! The batch is decoded into opentelemetry-proto's generated types and
//! serialized with their serde support, which already writes lowerCamelCase
//! names, hex trace/span ids, integer enums and 64-bit integers as strings
//! (checked for opentelemetry-proto 0.33.1). What it gets wrong is absent
//! fields: it writes `null` for unset messages and optional scalars (`resource`,
//! `scope`, `sum`, `min`, `max`), which OTLP/JSON omits. A fix-up pass drops
//! those and also re-enforces the integer and id rules on the whole tree, so a
//! future change of the generated code cannot silently break the wire format.

use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
    trace::v1::ExportTraceServiceRequest,
};
use otlp_core::Signal;
use prost::Message as _;
use serde_json::Value;

use crate::TransportError;

/// Fields that are 64-bit integers in the OTLP protos (fixed64, int64,
/// sint64, uint64): OTLP/JSON writes them as decimal strings.
const INT64_FIELDS: &[&str] = &[
    "timeUnixNano",
    "startTimeUnixNano",
    "endTimeUnixNano",
    "observedTimeUnixNano",
    "count",
    "zeroCount",
    "asInt",
    "intValue",
    "bucketCounts",
    "timeUnixNanoMs",
];

/// Members of a `oneof` (`AnyValue`, data point values, metric data) and
/// `optional` scalars (histogram `min` / `max`): their presence is their
/// meaning, so they are written even when zero or empty.
const ONEOF_FIELDS: &[&str] = &[
    "min",
    "max",
    "stringValue",
    "boolValue",
    "intValue",
    "doubleValue",
    "arrayValue",
    "kvlistValue",
    "bytesValue",
    "asDouble",
    "asInt",
    "gauge",
    "sum",
    "histogram",
    "exponentialHistogram",
    "summary",
];

/// Fields that hold trace or span ids: OTLP/JSON writes them as hex.
const ID_FIELDS: &[&str] = &["traceId", "spanId", "parentSpanId"];

/// Re-encodes the protobuf export request of `signal` as OTLP/JSON.
///
/// # Errors
///
/// [`TransportError::Encode`] when the bytes are not a valid export request.
pub fn to_json(signal: Signal, bytes: &[u8]) -> Result<Vec<u8>, TransportError> {
    let err = |reason: String| TransportError::Encode {
        signal: signal.as_str(),
        reason,
    };
    let value = match signal {
        Signal::Traces => ExportTraceServiceRequest::decode(bytes)
            .map_err(|e| err(e.to_string()))
            .and_then(|r| serde_json::to_value(&r).map_err(|e| err(e.to_string()))),
        Signal::Metrics => ExportMetricsServiceRequest::decode(bytes)
            .map_err(|e| err(e.to_string()))
            .and_then(|r| serde_json::to_value(&r).map_err(|e| err(e.to_string()))),
        Signal::Logs => ExportLogsServiceRequest::decode(bytes)
            .map_err(|e| err(e.to_string()))
            .and_then(|r| serde_json::to_value(&r).map_err(|e| err(e.to_string()))),
    }?;
    let mut value = value;
    fix_up(&mut value);
    serde_json::to_vec(&value).map_err(|e| err(e.to_string()))
}

/// Enforces the OTLP/JSON integer and id rules on a serialized tree.
fn fix_up(value: &mut Value) {
    match value {
        Value::Object(map) => {
            // The generated serde code writes absent messages and optional
            // scalars as `null`, and every default scalar (`"schemaUrl":""`,
            // `"droppedAttributesCount":0`); proto3 JSON omits both. Oneof
            // members stay: their presence is their meaning.
            map.retain(|k, v| {
                !v.is_null() && (ONEOF_FIELDS.contains(&k.as_str()) || !is_default(v))
            });
            for (key, v) in map.iter_mut() {
                if INT64_FIELDS.contains(&key.as_str()) {
                    int64_to_string(v);
                } else if ID_FIELDS.contains(&key.as_str()) {
                    bytes_to_hex(v);
                } else {
                    fix_up(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fix_up),
        _ => {}
    }
}

/// A proto3 scalar default: empty string or list, zero, false.
fn is_default(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn int64_to_string(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => *v = Value::String(n.to_string()),
        Value::Array(items) => items.iter_mut().for_each(int64_to_string),
        _ => {}
    }
}

fn bytes_to_hex(v: &mut Value) {
    if let Value::Array(items) = v {
        let bytes: Option<Vec<u8>> = items
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect();
        if let Some(bytes) = bytes {
            *v = Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::{
        common::v1::{AnyValue, KeyValue, any_value},
        trace::v1::{ResourceSpans, ScopeSpans, Span},
    };

    use super::*;

    #[test]
    fn json_follows_otlp_rules_for_ids_enums_and_int64() {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![0xab; 16],
                        span_id: vec![0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
                        name: "op".into(),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_001,
                        attributes: vec![KeyValue {
                            key: "n".into(),
                            key_strindex: 0,
                            value: Some(AnyValue {
                                value: Some(any_value::Value::IntValue(-7)),
                            }),
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let json = to_json(Signal::Traces, &req.encode_to_vec()).unwrap();
        let v: Value = serde_json::from_slice(&json).unwrap();
        let span = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "abababababababababababababababab");
        assert_eq!(span["spanId"], "0102030405060708");
        assert_eq!(span["kind"], 2);
        assert_eq!(span["startTimeUnixNano"], "1700000000000000001");
        assert_eq!(span["attributes"][0]["value"]["intValue"], "-7");
    }

    #[test]
    fn fix_up_converts_numbers_and_byte_arrays() {
        let mut v = serde_json::json!({"x": [{"timeUnixNano": 5, "spanId": [1, 255], "bucketCounts": [1, 2]}]});
        fix_up(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"x": [{"timeUnixNano": "5", "spanId": "01ff", "bucketCounts": ["1", "2"]}]})
        );
    }

    #[test]
    fn defaults_are_omitted_but_oneof_and_optional_values_stay() {
        use opentelemetry_proto::tonic::{
            collector::metrics::v1::ExportMetricsServiceRequest,
            metrics::v1::{
                Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, metric,
            },
        };
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "op".into(),
            attributes: vec![KeyValue {
                key: "zero".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(0)),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let json =
            String::from_utf8(to_json(Signal::Traces, &req.encode_to_vec()).unwrap()).unwrap();
        for absent in [
            "schemaUrl",
            "droppedAttributesCount",
            "kind",
            "parentSpanId",
            "\"flags\"",
        ] {
            assert!(!json.contains(absent), "{absent} in {json}");
        }
        assert!(json.contains(r#"{"intValue":"0"}"#), "{json}");
        let point = HistogramDataPoint {
            count: 1,
            min: Some(0.0),
            max: Some(0.0),
            ..Default::default()
        };
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "h".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![point],
                            aggregation_temporality: 0,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let json =
            String::from_utf8(to_json(Signal::Metrics, &req.encode_to_vec()).unwrap()).unwrap();
        assert!(
            json.contains(r#""min":0.0"#) && json.contains(r#""max":0.0"#),
            "{json}"
        );
        assert!(json.contains(r#""histogram":{"#), "{json}");
    }

    #[test]
    fn absent_fields_are_omitted_not_null() {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans::default()],
        };
        let raw = serde_json::to_string(&req).unwrap();
        assert!(raw.contains("null"), "generated serde writes null: {raw}");
        let json =
            String::from_utf8(to_json(Signal::Traces, &req.encode_to_vec()).unwrap()).unwrap();
        assert!(!json.contains("null"), "{json}");
    }

    #[test]
    fn invalid_bytes_are_an_encode_error() {
        let err = to_json(Signal::Logs, b"\xff\xff\xff").unwrap_err();
        assert!(
            matches!(err, TransportError::Encode { signal: "logs", .. }),
            "{err}"
        );
    }
}
