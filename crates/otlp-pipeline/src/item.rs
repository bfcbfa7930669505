//! One encoded telemetry item and the pre-encoded resource / scope group it belongs to.

use std::fmt;

use bytes::Bytes;
use otlp_core::Signal;

/// The pre-encoded header fields of a resource or scope entry.
///
/// For a resource: the encoded `resource` (field 1) and `schema_url` (field 3)
/// of a `ResourceSpans` / `ResourceLogs` / `ResourceMetrics`. For a scope: the
/// encoded `scope` (field 1) and `schema_url` (field 3) of a `ScopeSpans` /
/// `ScopeLogs` / `ScopeMetrics`. The repeated child field is left out: the
/// batcher writes it. Cloning is cheap (a reference count), and two groups
/// compare by pointer first and bytes second.
///
/// ```
/// use otlp_pipeline::Group;
///
/// // A Resource message body with no attributes, and a schema URL.
/// let r = Group::resource(b"", "https://opentelemetry.io/schemas/1.30.0");
/// assert_eq!(r.as_bytes()[0], 0x0a); // field 1, length-delimited
/// assert_eq!(r, Group::resource(b"", "https://opentelemetry.io/schemas/1.30.0"));
/// assert!(Group::empty().is_empty());
/// ```
#[derive(Clone, Default)]
pub struct Group {
    fields: Bytes,
}

/// One encoded telemetry item with its group, ready for the batcher.
///
/// `body` is an encoded `Span`, `LogRecord` or `Metric` message (without its
/// own tag and length). `count` is 1 for a span or log record and the number
/// of data points for a metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The signal the body belongs to.
    pub signal: Signal,
    /// The resource entry's header fields.
    pub resource: Group,
    /// The scope entry's header fields.
    pub scope: Group,
    /// The encoded item message.
    pub body: Bytes,
    /// Items the body counts for (1, or the data points of a metric).
    pub count: u64,
}

// === impl Group ===

impl Group {
    /// A group with no header fields (no resource / scope, empty schema URL).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Wraps already-encoded header fields, as found in a received request.
    pub fn from_fields(fields: Bytes) -> Self {
        Self { fields }
    }

    /// Builds a resource group from an encoded `Resource` message body and a schema URL.
    pub fn resource(resource: &[u8], schema_url: &str) -> Self {
        Self::message_and_schema(resource, schema_url)
    }

    /// Builds a scope group from an encoded `InstrumentationScope` message body and a schema URL.
    pub fn scope(scope: &[u8], schema_url: &str) -> Self {
        Self::message_and_schema(scope, schema_url)
    }

    fn message_and_schema(message: &[u8], schema_url: &str) -> Self {
        let mut out = Vec::with_capacity(message.len() + schema_url.len() + 12);
        put_len_header(&mut out, 1, message.len());
        out.extend_from_slice(message);
        if !schema_url.is_empty() {
            put_len_header(&mut out, 3, schema_url.len());
            out.extend_from_slice(schema_url.as_bytes());
        }
        Self {
            fields: Bytes::from(out),
        }
    }

    /// The encoded header fields.
    pub fn as_bytes(&self) -> &Bytes {
        &self.fields
    }

    /// The encoded size of the header fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the group carries no header fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl PartialEq for Group {
    fn eq(&self, other: &Self) -> bool {
        // Groups are usually clones of one value: compare the pointer first.
        (self.fields.as_ptr() == other.fields.as_ptr() && self.fields.len() == other.fields.len())
            || self.fields == other.fields
    }
}

impl Eq for Group {}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("len", &self.fields.len())
            .finish()
    }
}

// === impl Item ===

impl Item {
    /// One span / log record / metric with `count` items.
    pub fn new(signal: Signal, resource: Group, scope: Group, body: Bytes, count: u64) -> Self {
        Self {
            signal,
            resource,
            scope,
            body,
            count,
        }
    }

    /// The bytes this item adds to a batch: its body with the tag and length.
    pub fn encoded_len(&self) -> usize {
        len_field_size(self.body.len())
    }
}

/// The size of a length-delimited field with a one-byte tag and `len` payload bytes.
pub(crate) fn len_field_size(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

pub(crate) fn varint_len(v: u64) -> usize {
    // Each byte holds 7 bits; zero still takes one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Writes the tag (wire type 2) and length of field `number` (< 16).
pub(crate) fn put_len_header(out: &mut Vec<u8>, number: u8, len: usize) {
    out.push((number << 3) | 2);
    put_varint(out, len as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_matches_encoding() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
    }

    #[test]
    fn groups_compare_by_bytes_when_pointers_differ() {
        let a = Group::scope(b"\x0a\x01x", "");
        let b = Group::scope(b"\x0a\x01x", "");
        let c = Group::scope(b"\x0a\x01y", "");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, a.clone());
    }
}
