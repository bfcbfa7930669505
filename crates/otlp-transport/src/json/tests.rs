//! The OTLP/JSON mapping: the issue's observations (doubles as strings, NaN, null, string integers, paths in errors) and a property test of random requests in every allowed spelling.

use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
        profiles::v1development::ExportProfilesServiceRequest,
        trace::v1::ExportTraceServiceRequest,
    },
    metrics::v1::{exemplar, metric, number_data_point},
};
use proptest::prelude::*;
use prost::Message as _;
use prost_reflect::EnumDescriptor;

use super::*;

fn metrics(json: &str) -> Result<ExportMetricsServiceRequest, String> {
    let bytes = to_protobuf(Signal::Metrics, json.as_bytes())?;
    Ok(ExportMetricsServiceRequest::decode(bytes.as_slice()).unwrap())
}

/// One metric in an otherwise empty metrics request.
fn one_metric(metric: &str) -> String {
    format!(r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{metric}]}}]}}]}}"#)
}

#[test]
fn doubles_as_strings_and_non_finite_names_reach_every_data_point_kind() {
    let req = metrics(&one_metric(
        r#"{"name":"h","histogram":{"dataPoints":[{"count":"2","sum":"NaN","min":"-Infinity","max":"Infinity",
              "bucketCounts":["1",1],"explicitBounds":["3.5"]}]}},
           {"name":"s","summary":{"dataPoints":[{"count":1,"sum":"3.5","quantileValues":[{"quantile":"0.5","value":"NaN"}]}]}},
           {"name":"e","exponentialHistogram":{"dataPoints":[{"scale":"-2","zeroCount":"1","sum":"1e3",
              "positive":{"offset":"-1","bucketCounts":["4"]},"min":"0","max":"Infinity","zeroThreshold":"1E-9"}]}},
           {"name":"g","gauge":{"dataPoints":[{"asDouble":"NaN","exemplars":[{"asDouble":"-Infinity"}]},{"asDouble":"3.5"},{"asInt":"-7"}]}}"#,
    ))
    .unwrap();
    let m = &req.resource_metrics[0].scope_metrics[0].metrics;
    let Some(metric::Data::Histogram(h)) = &m[0].data else {
        panic!("{:?}", m[0])
    };
    let p = &h.data_points[0];
    assert!(p.sum.unwrap().is_nan());
    assert_eq!(p.min, Some(f64::NEG_INFINITY));
    assert_eq!(p.max, Some(f64::INFINITY));
    assert_eq!(p.bucket_counts, [1, 1]);
    assert_eq!(p.explicit_bounds, [3.5]);
    let Some(metric::Data::Summary(s)) = &m[1].data else {
        panic!("{:?}", m[1])
    };
    assert_eq!(s.data_points[0].sum, 3.5);
    assert!(s.data_points[0].quantile_values[0].value.is_nan());
    let Some(metric::Data::ExponentialHistogram(e)) = &m[2].data else {
        panic!("{:?}", m[2])
    };
    let p = &e.data_points[0];
    assert_eq!((p.scale, p.zero_count, p.sum), (-2, 1, Some(1000.0)));
    assert_eq!(p.positive.as_ref().map(|b| b.offset), Some(-1));
    assert_eq!((p.min, p.max), (Some(0.0), Some(f64::INFINITY)));
    assert_eq!(p.zero_threshold, 1e-9);
    let Some(metric::Data::Gauge(g)) = &m[3].data else {
        panic!("{:?}", m[3])
    };
    assert!(matches!(
        g.data_points[0].value,
        Some(number_data_point::Value::AsDouble(d)) if d.is_nan()
    ));
    assert_eq!(
        g.data_points[0].exemplars[0].value,
        Some(exemplar::Value::AsDouble(f64::NEG_INFINITY))
    );
    assert_eq!(
        g.data_points[1].value,
        Some(number_data_point::Value::AsDouble(3.5))
    );
    assert_eq!(
        g.data_points[2].value,
        Some(number_data_point::Value::AsInt(-7))
    );
}

#[test]
fn unparseable_values_are_refused_with_the_field_path() {
    for (metric, path) in [
        (
            r#"{"name":"h","histogram":{"dataPoints":[{"min":"abc"}]}}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].min",
        ),
        (
            r#"{"name":"g","gauge":{"dataPoints":[{"asDouble":"1,5"}]}}"#,
            "metrics[0].gauge.dataPoints[0].asDouble",
        ),
        (
            r#"{"name":"s","sum":{"dataPoints":[{"timeUnixNano":"-1"}]}}"#,
            "dataPoints[0].timeUnixNano",
        ),
        (
            r#"{"name":"s","sum":{"aggregationTemporality":"SOMETIMES"}}"#,
            "sum.aggregationTemporality",
        ),
        (
            r#"{"name":"s","sum":{"isMonotonic":"yes"}}"#,
            "sum.isMonotonic",
        ),
        (r#"{"name":["x"]}"#, "metrics[0].name"),
    ] {
        let err = metrics(&one_metric(metric)).unwrap_err();
        assert!(err.contains(path), "{metric}: {err}");
    }
    let err = to_protobuf(
        Signal::Traces,
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{},{"links":[{"spanId":"xyz"}]}]}]}]}"#,
    )
    .unwrap_err();
    assert!(
        err.contains("resourceSpans[0].scopeSpans[0].spans[1].links[0].spanId: ids are hex"),
        "{err}"
    );
}

#[test]
fn null_is_the_default_and_every_integer_may_be_a_string() {
    let bytes = to_protobuf(
        Signal::Traces,
        br#"{"resourceSpans":[{"resource":null,"schemaUrl":null,"scopeSpans":[{"spans":[{
            "name":null,"traceId":null,"kind":"SPAN_KIND_SERVER","droppedAttributesCount":"3",
            "flags":"257","startTimeUnixNano":12,"status":{"code":"2","message":null},
            "events":[{"timeUnixNano":"5","droppedAttributesCount":4}]}]}]}]}"#,
    )
    .unwrap();
    let req = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
    assert!(req.resource_spans[0].resource.is_none());
    let span = &req.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(
        (span.name.as_str(), span.kind, span.dropped_attributes_count),
        ("", 2, 3)
    );
    assert_eq!((span.flags, span.start_time_unix_nano), (257, 12));
    assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
    assert_eq!(
        (
            span.events[0].time_unix_nano,
            span.events[0].dropped_attributes_count
        ),
        (5, 4)
    );
}

#[test]
fn the_exporter_writes_non_finite_doubles_by_name_and_omits_defaults() {
    let req = metrics(&one_metric(
        r#"{"name":"g","gauge":{"dataPoints":[{"asDouble":"NaN"},{"asDouble":"Infinity"},{"asDouble":"-Infinity"},{"asDouble":0}]}}"#,
    ))
    .unwrap();
    let json = from_protobuf(Signal::Metrics, &req.encode_to_vec()).unwrap();
    let json = String::from_utf8(json).unwrap();
    for want in [
        r#"{"asDouble":"NaN"}"#,
        r#"{"asDouble":"Infinity"}"#,
        r#"{"asDouble":"-Infinity"}"#,
        r#"{"asDouble":0.0}"#,
    ] {
        assert!(json.contains(want), "{want} not in {json}");
    }
    assert!(
        !json.contains("schemaUrl") && !json.contains("null"),
        "{json}"
    );
}

#[test]
fn hex_ids_go_both_ways_in_any_case() {
    for (hex, want) in [
        (
            "0A0b0C0d0E0f10111213141516171819",
            "0a0b0c0d0e0f10111213141516171819",
        ),
        ("", ""),
    ] {
        let json = format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"traceId":"{hex}","spanId":"{}"}}]}}]}}]}}"#,
            &hex[..hex.len() / 2]
        );
        let bytes = to_protobuf(Signal::Logs, json.as_bytes()).unwrap();
        let req = ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap();
        let record = &req.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(encode_hex(&record.trace_id), want);
        let back: Value =
            serde_json::from_slice(&from_protobuf(Signal::Logs, &bytes).unwrap()).unwrap();
        let record = &back["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        if want.is_empty() {
            assert!(record.get("traceId").is_none(), "{back}");
        } else {
            assert_eq!(record["traceId"], want);
            assert_eq!(record["spanId"], &want[..16]);
        }
    }
}

// --- property: random valid OTLP -> proto3 JSON in any allowed spelling ->
// the receiver's decoding -> the same protobuf. ---

/// A small deterministic generator (splitmix64), driven by proptest's seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// A random message of `desc`: most fields set near the envelope, fewer
/// deeper down (so data points, exemplars and nested `AnyValue`s all occur
/// while the tree stays small), ids of their valid lengths, doubles
/// including NaN, ±Infinity, -0 and subnormals, strings with escapes and
/// non-ASCII.
fn random_message(desc: &MessageDescriptor, rng: &mut Rng, depth: usize) -> DynamicMessage {
    const MAX_DEPTH: usize = 9;
    let mut m = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        let message = matches!(field.kind(), Kind::Message(_));
        let keep = if depth < 4 { 4 } else { 2 };
        if rng.below(5) >= keep || (message && depth >= MAX_DEPTH) {
            continue;
        }
        let value = if field.is_list() {
            let n = if depth < 4 {
                1 + rng.below(2)
            } else {
                rng.below(2)
            };
            prost_reflect::Value::List((0..n).map(|_| random_value(&field, rng, depth)).collect())
        } else {
            random_value(&field, rng, depth)
        };
        m.set_field(&field, value);
    }
    m
}

fn random_value(field: &FieldDescriptor, rng: &mut Rng, depth: usize) -> prost_reflect::Value {
    use prost_reflect::Value as V;
    const DOUBLES: [f64; 9] = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        3.5,
        1e300,
        5e-324,
        -1.234_567_890_123_456_7e-7,
    ];
    const STRINGS: [&str; 5] = ["", "svc", "é✓ \"q\" \\ \n\t\u{1}", "a.b/c", "0"];
    match field.kind() {
        Kind::Double => V::F64(if rng.coin() {
            DOUBLES[rng.below(9) as usize]
        } else {
            f64::from_bits(rng.next())
        }),
        Kind::Float => V::F32(f32::from_bits(rng.next() as u32)),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => V::I64(rng.next() as i64),
        Kind::Uint64 | Kind::Fixed64 => V::U64(rng.next()),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => V::I32(rng.next() as i32),
        Kind::Uint32 | Kind::Fixed32 => V::U32(rng.next() as u32),
        Kind::Bool => V::Bool(rng.coin()),
        Kind::String => V::String(STRINGS[rng.below(5) as usize].to_owned()),
        Kind::Bytes => {
            let len = match field.name() {
                "trace_id" | "profile_id" => 16,
                "span_id" | "parent_span_id" => 8,
                _ => rng.below(6),
            };
            V::Bytes(
                (0..len)
                    .map(|_| rng.next() as u8)
                    .collect::<Vec<_>>()
                    .into(),
            )
        }
        Kind::Enum(e) => {
            let values: Vec<i32> = e.values().map(|v| v.number()).collect();
            // Open enums: an unknown number travels as a number.
            V::EnumNumber(if rng.below(5) == 0 {
                42
            } else {
                values[rng.below(values.len() as u64) as usize]
            })
        }
        Kind::Message(m) => V::Message(random_message(&m, rng, depth + 1)),
    }
}

/// Rewrites `value` (JSON of `desc`) into another spelling proto3 JSON
/// allows: original field names, numbers as strings and 64-bit strings as
/// numbers, doubles in exponent form, enum names, upper-case hex ids,
/// explicit `null` for unset fields, unknown fields.
fn respell(desc: &MessageDescriptor, value: &mut Value, rng: &mut Rng) {
    let Value::Object(map) = value else { return };
    let mut out = serde_json::Map::new();
    for (key, mut v) in std::mem::take(map) {
        let Some(field) = desc.get_field_by_json_name(&key) else {
            out.insert(key, v);
            continue;
        };
        match &mut v {
            Value::Array(items) => items
                .iter_mut()
                .for_each(|item| respell_value(&field, item, rng)),
            _ => respell_value(&field, &mut v, rng),
        }
        let key = if rng.coin() {
            field.name().to_owned()
        } else {
            key
        };
        out.insert(key, v);
    }
    for field in desc.fields() {
        let set = out.contains_key(field.json_name()) || out.contains_key(field.name());
        if !set && field.containing_oneof().is_none() && !field.supports_presence() && rng.coin() {
            out.insert(field.json_name().to_owned(), Value::Null);
        }
    }
    if rng.below(4) == 0 {
        out.insert(
            "someFutureField".to_owned(),
            serde_json::json!({"spanId": "not hex", "n": [1, "x"]}),
        );
    }
    *map = out;
}

fn respell_value(field: &FieldDescriptor, v: &mut Value, rng: &mut Rng) {
    match (field.kind(), &*v) {
        (Kind::Message(m), _) => respell(&m, v, rng),
        (_, Value::String(s)) if is_id(field) && rng.coin() => {
            *v = Value::String(s.to_uppercase());
        }
        (Kind::Enum(e), Value::Number(n)) if rng.coin() => {
            if let Some(name) = enum_name(&e, n) {
                *v = Value::String(name);
            }
        }
        (Kind::Double | Kind::Float, Value::Number(n)) if rng.coin() => {
            let f = n.as_f64().unwrap_or_default();
            *v = Value::String(if rng.coin() {
                format!("{f:e}")
            } else {
                format!("{f}")
            });
        }
        (
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32,
            Value::Number(n),
        ) if rng.coin() => {
            *v = Value::String(n.to_string());
        }
        (
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64,
            Value::String(s),
        ) if rng.coin() => {
            if let Ok(n) = s.parse::<serde_json::Number>() {
                *v = Value::Number(n);
            }
        }
        _ => {}
    }
}

fn enum_name(e: &EnumDescriptor, n: &serde_json::Number) -> Option<String> {
    let n = i32::try_from(n.as_i64()?).ok()?;
    Some(e.get_value(n)?.name().to_owned())
}

/// Both requests decoded by the generated types, compared by their Debug
/// form (NaN equals NaN there, and -0 differs from 0).
fn same_request(signal: Signal, a: &[u8], b: &[u8]) -> Result<(), String> {
    fn debug<M: prost::Message + Default + std::fmt::Debug>(bytes: &[u8]) -> String {
        M::decode(bytes).map_or_else(|e| e.to_string(), |m| format!("{m:#?}"))
    }
    let (a, b) = match signal {
        Signal::Traces => (
            debug::<ExportTraceServiceRequest>(a),
            debug::<ExportTraceServiceRequest>(b),
        ),
        Signal::Metrics => (
            debug::<ExportMetricsServiceRequest>(a),
            debug::<ExportMetricsServiceRequest>(b),
        ),
        Signal::Logs => (
            debug::<ExportLogsServiceRequest>(a),
            debug::<ExportLogsServiceRequest>(b),
        ),
        Signal::Profiles => (
            debug::<ExportProfilesServiceRequest>(a),
            debug::<ExportProfilesServiceRequest>(b),
        ),
    };
    if a == b {
        Ok(())
    } else {
        Err(format!("original:\n{a}\nround trip:\n{b}"))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_otlp_survives_any_json_spelling(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let signal = Signal::ALL[rng.below(Signal::COUNT as u64) as usize];
        let desc = request(signal).unwrap();
        let original = random_message(&desc, &mut rng, 0);
        let bytes = original.encode_to_vec();
        // The exporter's spelling, then another one.
        let json = from_protobuf(signal, &bytes).unwrap();
        let mut value: Value = serde_json::from_slice(&json).unwrap();
        respell(&desc, &mut value, &mut rng);
        let json = serde_json::to_vec(&value).unwrap();
        let back = to_protobuf(signal, &json)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&json))))?;
        same_request(signal, &bytes, &back).map_err(TestCaseError::fail)?;
        // What the receiver then does with it: the batch validates.
        let batch = otlp_core::Batch::from_received(signal, bytes::Bytes::from(back));
        prop_assert!(batch.is_ok(), "{:?}", batch.err());
    }
}

#[test]
fn deep_nesting_is_refused_without_exhausting_a_blocking_threads_stack() {
    // Deeper than serde_json lets a value nest (128), in a known field
    // (AnyValue lists) and in an unknown one, on a thread with the 2 MiB
    // stack of tokio's blocking pool (debug builds use the most stack).
    let any = format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{}1{}}}]}}]}}]}}"#,
        r#"{"arrayValue":{"values":["#.repeat(200),
        "]}}".repeat(200)
    );
    let unknown = format!(
        r#"{{"resourceLogs":[{{"x":{}1{}}}]}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let results = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            [any, unknown].map(|json| to_protobuf(Signal::Logs, json.as_bytes()).map(|_| ()))
        })
        .unwrap()
        .join()
        .unwrap();
    // A known field nests through the decoder: refused at serde_json's limit.
    let [any, unknown] = results;
    let err = any.unwrap_err();
    assert!(err.contains("recursion limit exceeded"), "{err}");
    // An unknown one is skipped by serde_json's iterative skipper: no stack
    // used, nothing kept.
    assert_eq!(unknown, Ok(()));
}
