//! The OTLP/JSON mapping, both ways, driven by the OTLP protos' own
//! descriptors (`opentelemetry_proto::DESCRIPTORS` through prost-reflect's
//! proto3 JSON support), so every field gets its exact rule instead of a
//! hand-kept list of names:
//!
//! - reading accepts every proto3 JSON form: 64-bit integers as numbers or
//!   decimal strings, all integers and floats also as strings, doubles as
//!   `"NaN"` / `"Infinity"` / `"-Infinity"`, `null` as the field's default,
//!   enum numbers or names, lowerCamelCase or original (snake_case) keys, and
//!   unknown fields ignored; anything unparseable is an error naming the
//!   field's path;
//! - writing follows the proto3 mapping with OTLP's choices: lowerCamelCase
//!   keys, enums as integers, 64-bit integers as strings, non-finite doubles
//!   as their string names, default values omitted (fields with presence, the
//!   `oneof` members and `optional` min/max, are written when set).
//!
//! OTLP's one exception to proto3 JSON is applied on top, on the JSON tree and
//! by descriptor: trace, span and profile ids are hex strings, not base64.

use std::sync::LazyLock;

use base64::Engine as _;
use otlp_core::Signal;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, SerializeOptions,
};
use serde_json::Value;

/// How many bytes of memory decoding one byte of OTLP/JSON may take at its
/// peak: the receiver reserves this much of its intake budget before
/// decoding. Measured on the shapes that expand most
/// (`tests/json_memory.rs`), with margin.
pub(crate) const DECODE_MEMORY_FACTOR: usize = 8;

static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(opentelemetry_proto::DESCRIPTORS).map_err(|e| e.to_string())
});

/// The export request message of `signal`.
fn request(signal: Signal) -> Result<MessageDescriptor, String> {
    let pool = POOL
        .as_ref()
        .map_err(|e| format!("the OTLP protobuf descriptors do not load: {e}"))?;
    let name = match signal {
        Signal::Traces => "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
        Signal::Metrics => "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest",
        Signal::Logs => "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest",
        Signal::Profiles => {
            "opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest"
        }
    };
    pool.get_message_by_name(name)
        .ok_or_else(|| format!("{name} is missing from the OTLP protobuf descriptors"))
}

/// Encodes an OTLP/JSON export request of `signal` as protobuf, in one
/// streaming pass ([`decode`]).
///
/// The error says what is wrong and where (`resourceMetrics[0]...min: ...`).
pub(crate) fn to_protobuf(signal: Signal, json: &[u8]) -> Result<Vec<u8>, String> {
    let desc = request(signal)?;
    let mut out = Vec::with_capacity(json.len() / 2);
    let mut reader = serde_json::Deserializer::from_slice(json);
    let mut track = serde_path_to_error::Track::new();
    let result = decode::message(
        &desc,
        &mut out,
        serde_path_to_error::Deserializer::new(&mut reader, &mut track),
    )
    .and_then(|()| reader.end());
    match result {
        Ok(()) => Ok(out),
        Err(e) => {
            let path = track.path().to_string();
            Err(if path.is_empty() || path == "." {
                e.to_string()
            } else {
                format!("{path}: {e}")
            })
        }
    }
}

/// Encodes the protobuf export request of `signal` as OTLP/JSON.
pub(crate) fn from_protobuf(signal: Signal, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let desc = request(signal)?;
    let message = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| e.to_string())?;
    let options = SerializeOptions::new()
        .use_enum_numbers(true)
        .stringify_64_bit_integers(true)
        .skip_default_fields(true);
    let mut value = message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| e.to_string())?;
    base64_ids_to_hex(&desc, &mut value);
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

/// The bytes fields OTLP/JSON writes as hex.
pub(crate) fn is_id(field: &FieldDescriptor) -> bool {
    matches!(field.kind(), Kind::Bytes)
        && matches!(
            field.name(),
            "trace_id" | "span_id" | "parent_span_id" | "profile_id"
        )
}

/// Rewrites the base64 ids of a serialized JSON tree as OTLP/JSON's hex.
fn base64_ids_to_hex(desc: &MessageDescriptor, value: &mut Value) {
    let Value::Object(map) = value else {
        return;
    };
    for (key, v) in map.iter_mut() {
        let Some(field) = desc.get_field_by_json_name(key) else {
            continue;
        };
        let items = match v {
            Value::Array(items) => items.as_mut_slice(),
            v => std::slice::from_mut(v),
        };
        for item in items {
            match field.kind() {
                Kind::Message(m) => base64_ids_to_hex(&m, item),
                _ if is_id(&field) => {
                    if let Value::String(b64) = item
                        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&*b64)
                    {
                        *item = Value::String(encode_hex(&bytes));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Case-insensitive hex, or `None`.
pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A client's string in an error message: quoted, and cut if long.
pub(crate) fn shown(s: &str) -> String {
    const MAX: usize = 48;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

mod decode;
#[cfg(test)]
mod tests;
