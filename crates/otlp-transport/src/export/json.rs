//! OTLP/JSON encoding of an encoded batch (the one export path that
//! re-encodes): the proto3 JSON mapping with OTLP's choices, from the OTLP
//! descriptors (`src/json.rs`).

use otlp_core::Signal;

use crate::TransportError;

/// Re-encodes the protobuf export request of `signal` as OTLP/JSON:
/// lowerCamelCase keys, hex ids, integer enums, 64-bit integers as strings,
/// `"NaN"` / `"Infinity"` / `"-Infinity"` for non-finite doubles, defaults
/// omitted (fields with presence written when set).
///
/// # Errors
///
/// [`TransportError::Encode`] when the bytes are not a valid export request.
pub fn to_json(signal: Signal, bytes: &[u8]) -> Result<Vec<u8>, TransportError> {
    crate::json::from_protobuf(signal, bytes).map_err(|reason| TransportError::Encode {
        signal: signal.as_str(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::{
        common::v1::{AnyValue, KeyValue, any_value},
        trace::v1::{ResourceSpans, ScopeSpans, Span},
    };

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    use serde_json::Value;

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
    fn invalid_bytes_are_an_encode_error() {
        let err = to_json(Signal::Logs, b"\xff\xff\xff").unwrap_err();
        assert!(
            matches!(err, TransportError::Encode { signal: "logs", .. }),
            "{err}"
        );
    }
}
