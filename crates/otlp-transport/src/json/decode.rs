//! OTLP/JSON to protobuf in one streaming pass: the JSON is read once and
//! each field is written as protobuf as it is met, guided by the message
//! descriptors. Nothing is built in between (no JSON tree, no dynamic
//! message), so decoding peaks at a few times the body, whatever a hostile
//! sender puts in it (`tests/json_memory.rs` measures it; the HTTP receiver
//! reserves [`super::DECODE_MEMORY_FACTOR`] of its budget per body byte).
//!
//! The proto3 JSON reading rules, per field kind:
//! - integers: a JSON number with an integral value (exponents allowed) or a
//!   string holding one; 32-bit kinds are range-checked;
//! - `double` / `float`: a number, or a string holding a number or
//!   `"NaN"`, `"Infinity"`, `"-Infinity"`;
//! - `bool`: `true` / `false`; `string`: a string;
//! - `bytes`: base64, standard or URL-safe, padded or not; OTLP's trace,
//!   span and profile ids: hex in either case;
//! - enums: the number, or the value's name;
//! - `null` anywhere: the field's default (left out);
//! - keys: the lowerCamelCase JSON name or the proto field name; unknown
//!   keys are skipped (with their whole value).

use std::fmt;

use base64::Engine as _;
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{decode_hex, is_id, shown};

/// Writes the JSON object read from `deserializer` as the protobuf fields of
/// `desc`, appended to `out`.
pub(super) fn message<'de, D: Deserializer<'de>>(
    desc: &MessageDescriptor,
    out: &mut Vec<u8>,
    deserializer: D,
) -> Result<(), D::Error> {
    deserializer.deserialize_any(Fields { desc, out })
}

/// The fields of one message: an object, or `null`.
struct Fields<'a> {
    desc: &'a MessageDescriptor,
    out: &'a mut Vec<u8>,
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON object ({})", self.desc.name())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key_seed(Key(self.desc))? {
            match field {
                Some(field) => map.next_value_seed(Field {
                    field: &field,
                    out: self.out,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key: the field it names, `None` for an unknown one.
struct Key<'a>(&'a MessageDescriptor);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<FieldDescriptor>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Option<FieldDescriptor>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .get_field_by_json_name(key)
            .or_else(|| self.0.get_field_by_name(key)))
    }
}

/// One field's value: a list for a repeated field, else one value.
struct Field<'a> {
    field: &'a FieldDescriptor,
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Field<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.field.is_map() {
            // No OTLP message has a map field.
            return Err(de::Error::custom(format!(
                "map field {} is not supported",
                self.field.name()
            )));
        }
        if self.field.is_list() {
            d.deserialize_any(List(self))
        } else {
            Single(self).deserialize(d)
        }
    }
}

/// A repeated field: `[...]` or `null`. Numeric kinds are written packed.
struct List<'a>(Field<'a>);

impl<'de> Visitor<'de> for List<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON array ({})", self.0.field.name())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Field { field, out } = self.0;
        let kind = field.kind();
        if matches!(kind, Kind::String | Kind::Bytes | Kind::Message(_)) {
            while seq
                .next_element_seed(Single(Field {
                    field,
                    out: &mut *out,
                }))?
                .is_some()
            {}
            return Ok(());
        }
        let start = out.len();
        let body = open_len(field, out);
        while let Some(value) = seq.next_element_seed(ScalarSeed)? {
            match value {
                Scalar::Null => return Err(de::Error::custom("null is not allowed in a list")),
                value => {
                    write_scalar(&kind, field, value, out, false).map_err(de::Error::custom)?;
                }
            }
        }
        if out.len() == body {
            out.truncate(start); // an empty packed list is no field
        } else {
            close_len(out, body);
        }
        Ok(())
    }
}

/// Room for the longest length prefix (a 64-bit varint).
const LEN_ROOM: usize = 10;

/// Writes `field`'s key and room for its length; returns where its body
/// starts. The body is then written in place (no buffer per nesting level)
/// and [`close_len`] fills the length in.
fn open_len(field: &FieldDescriptor, out: &mut Vec<u8>) -> usize {
    encode_key(field.number(), WireType::LengthDelimited, out);
    out.extend_from_slice(&[0; LEN_ROOM]);
    out.len()
}

/// Fills in the length of the body written since `body` and moves the body
/// up against it.
fn close_len(out: &mut Vec<u8>, body: usize) {
    let len = out.len() - body;
    let mut prefix = Vec::with_capacity(LEN_ROOM);
    encode_varint(len as u64, &mut prefix);
    let at = body - LEN_ROOM;
    out[at..at + prefix.len()].copy_from_slice(&prefix);
    out.copy_within(body.., at + prefix.len());
    out.truncate(at + prefix.len() + len);
}

/// One value of a field (or one element of a repeated string, bytes or
/// message field), written with its key.
struct Single<'a>(Field<'a>);

impl<'de> DeserializeSeed<'de> for Single<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let Field { field, out } = self.0;
        match field.kind() {
            Kind::Message(m) => {
                let start = out.len();
                let body = open_len(field, out);
                let mut present = false;
                d.deserialize_any(Present {
                    inner: Fields { desc: &m, out },
                    present: &mut present,
                })?;
                if present {
                    close_len(out, body);
                } else {
                    out.truncate(start); // null: absent
                }
                Ok(())
            }
            kind => match ScalarSeed.deserialize(d)? {
                Scalar::Null => Ok(()),
                value => write_scalar(&kind, field, value, out, true).map_err(de::Error::custom),
            },
        }
    }
}

/// Notes whether a message value was an object (written even when empty:
/// a set message is present) rather than `null` (absent).
struct Present<'a, 'b> {
    inner: Fields<'a>,
    present: &'b mut bool,
}

impl<'de> Visitor<'de> for Present<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        *self.present = true;
        self.inner.visit_map(map)
    }
}

/// A JSON scalar as read, before the field's kind gives it a meaning.
enum Scalar<'de> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(std::borrow::Cow<'de, str>),
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("null"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::I64(n) => write!(f, "{n}"),
            Scalar::U64(n) => write!(f, "{n}"),
            Scalar::F64(n) => write!(f, "{n}"),
            Scalar::Str(s) => f.write_str(&shown(s)),
        }
    }
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, string, boolean or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::I64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::U64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::F64(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(v.into()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(v.to_owned().into()))
    }
}

/// Writes `value` as `field` of `kind`: with its key, or bare (packed).
fn write_scalar(
    kind: &Kind,
    field: &FieldDescriptor,
    value: Scalar<'_>,
    out: &mut Vec<u8>,
    keyed: bool,
) -> Result<(), String> {
    let key = |wire: WireType, out: &mut Vec<u8>| {
        if keyed {
            encode_key(field.number(), wire, out);
        }
    };
    let want = |what: &str| format!("want {what}, got {value}");
    match kind {
        Kind::Double => {
            let v = float(&value)
                .ok_or_else(|| want("a number (or \"NaN\", \"Infinity\", \"-Infinity\")"))?;
            key(WireType::SixtyFourBit, out);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Kind::Float => {
            let v = float(&value)
                .filter(|v| !v.is_finite() || v.abs() <= f64::from(f32::MAX))
                .ok_or_else(|| want("a 32-bit float"))?;
            key(WireType::ThirtyTwoBit, out);
            #[allow(clippy::cast_possible_truncation)] // range-checked above
            out.extend_from_slice(&(v as f32).to_le_bytes());
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            let v = integer(&value)
                .and_then(|v| i64::try_from(v).ok())
                .ok_or_else(|| want("a 64-bit signed integer"))?;
            match kind {
                Kind::Sfixed64 => {
                    key(WireType::SixtyFourBit, out);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Kind::Sint64 => {
                    key(WireType::Varint, out);
                    encode_varint(((v << 1) ^ (v >> 63)) as u64, out);
                }
                _ => {
                    key(WireType::Varint, out);
                    encode_varint(v as u64, out);
                }
            }
        }
        Kind::Uint64 | Kind::Fixed64 => {
            let v = integer(&value)
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(|| want("a 64-bit unsigned integer"))?;
            if matches!(kind, Kind::Fixed64) {
                key(WireType::SixtyFourBit, out);
                out.extend_from_slice(&v.to_le_bytes());
            } else {
                key(WireType::Varint, out);
                encode_varint(v, out);
            }
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            let v = integer(&value)
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| want("a 32-bit signed integer"))?;
            match kind {
                Kind::Sfixed32 => {
                    key(WireType::ThirtyTwoBit, out);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Kind::Sint32 => {
                    key(WireType::Varint, out);
                    encode_varint(u64::from(((v << 1) ^ (v >> 31)) as u32), out);
                }
                _ => {
                    key(WireType::Varint, out);
                    encode_varint(i64::from(v) as u64, out);
                }
            }
        }
        Kind::Uint32 | Kind::Fixed32 => {
            let v = integer(&value)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| want("a 32-bit unsigned integer"))?;
            if matches!(kind, Kind::Fixed32) {
                key(WireType::ThirtyTwoBit, out);
                out.extend_from_slice(&v.to_le_bytes());
            } else {
                key(WireType::Varint, out);
                encode_varint(u64::from(v), out);
            }
        }
        Kind::Bool => {
            let Scalar::Bool(v) = value else {
                return Err(want("true or false"));
            };
            key(WireType::Varint, out);
            encode_varint(u64::from(v), out);
        }
        Kind::Enum(e) => {
            let v = match &value {
                Scalar::Str(name) => match e.get_value_by_name(name) {
                    Some(v) => v.number(),
                    // A number in a string, as for every other integer.
                    None if let Some(n) = integer(&value).and_then(|v| i32::try_from(v).ok()) => n,
                    None => {
                        let names: Vec<_> = e.values().map(|v| v.name().to_owned()).collect();
                        return Err(format!(
                            "unknown {} value {value}: want its number or one of {}",
                            e.name(),
                            names.join(", ")
                        ));
                    }
                },
                _ => integer(&value)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| want("an enum number or name"))?,
            };
            key(WireType::Varint, out);
            encode_varint(i64::from(v) as u64, out);
        }
        Kind::String => {
            let Scalar::Str(s) = &value else {
                return Err(want("a string"));
            };
            key(WireType::LengthDelimited, out);
            encode_varint(s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        }
        Kind::Bytes => {
            let Scalar::Str(s) = &value else {
                return Err(want("a string"));
            };
            let bytes = if is_id(field) {
                decode_hex(s).ok_or_else(|| {
                    format!(
                        "ids are hex strings in OTLP/JSON (32 hex digits for a trace id, 16 for a span id), got {value}"
                    )
                })?
            } else {
                base64(s).ok_or_else(|| want("base64 (standard or URL-safe)"))?
            };
            key(WireType::LengthDelimited, out);
            encode_varint(bytes.len() as u64, out);
            out.extend_from_slice(&bytes);
        }
        Kind::Message(_) => return Err(want("an object")),
    }
    Ok(())
}

/// A float field's value: a number, a numeric string, or a non-finite name.
fn float(value: &Scalar<'_>) -> Option<f64> {
    match value {
        #[allow(clippy::cast_precision_loss)] // JSON numbers are doubles
        Scalar::I64(n) => Some(*n as f64),
        #[allow(clippy::cast_precision_loss)]
        Scalar::U64(n) => Some(*n as f64),
        Scalar::F64(n) => Some(*n),
        Scalar::Str(s) => match s.as_ref() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            // Rust also reads "inf" and "nan": proto3 JSON does not.
            s if is_decimal(s) => s.parse().ok().filter(|v: &f64| v.is_finite()),
            _ => None,
        },
        Scalar::Null | Scalar::Bool(_) => None,
    }
}

/// An integer field's value: an integral number (exponents allowed) or a
/// string holding one.
fn integer(value: &Scalar<'_>) -> Option<i128> {
    match value {
        Scalar::I64(n) => Some(i128::from(*n)),
        Scalar::U64(n) => Some(i128::from(*n)),
        Scalar::F64(n) => integral(*n),
        Scalar::Str(s) => s.parse::<i128>().ok().or_else(|| {
            is_decimal(s)
                .then(|| s.parse().ok().and_then(integral))
                .flatten()
        }),
        Scalar::Null | Scalar::Bool(_) => None,
    }
}

/// `v` as an integer, if it is one (and of at most 64 bits).
fn integral(v: f64) -> Option<i128> {
    // 2^64 as a double: anything at or past it fits no 64-bit field.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    #[allow(clippy::cast_possible_truncation)] // integral and in range
    (v.fract() == 0.0 && v.abs() < LIMIT).then_some(v as i128)
}

/// A decimal number as JSON writes one (no `inf`, `nan`, hex or spaces).
fn is_decimal(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// Standard or URL-safe base64, padded or not.
fn base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const CONFIG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
    STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).ok()
}
