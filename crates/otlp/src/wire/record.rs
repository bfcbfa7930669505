//! Borrowed span and log record types for the native path, written straight
//! to the wire without building prost structs.

use bytes::BytesMut;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use otlp_core::Signal;
use otlp_pipeline::{Group, Item};

use super::{
    bytes, bytes_always, close, double_always, encode_with, fixed32, fixed64, int32, open, string,
    tags::*, varint, varint_always,
};

/// One attribute: a key and its value, both borrowed.
///
/// Encodes as an OTLP `KeyValue` whose `value` is always present.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attribute<'a> {
    /// The attribute name.
    pub key: &'a str,
    /// The attribute value.
    pub value: AnyValue<'a>,
}

/// A borrowed OTLP `AnyValue`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AnyValue<'a> {
    /// An `AnyValue` with no value set (encodes as an empty message).
    Empty,
    /// `string_value`.
    Str(&'a str),
    /// `bool_value`.
    Bool(bool),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bytes_value`.
    Bytes(&'a [u8]),
    /// `array_value`: the values in order.
    Array(&'a [AnyValue<'a>]),
    /// `kvlist_value`: the entries in order.
    Map(&'a [Attribute<'a>]),
}

/// A span event (OTLP `Span.Event`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Event<'a> {
    /// When the event happened, in nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// The event name.
    pub name: &'a str,
    /// The event attributes.
    pub attributes: &'a [Attribute<'a>],
    /// Attributes dropped before export.
    pub dropped_attributes_count: u32,
}

/// A link to another span (OTLP `Span.Link`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Link<'a> {
    /// The linked trace id (16 bytes).
    pub trace_id: &'a [u8],
    /// The linked span id (8 bytes).
    pub span_id: &'a [u8],
    /// The linked span's W3C trace state header, or empty.
    pub trace_state: &'a str,
    /// The link attributes.
    pub attributes: &'a [Attribute<'a>],
    /// Attributes dropped before export.
    pub dropped_attributes_count: u32,
    /// W3C trace flags and the OTLP `SpanFlags` remote bits.
    pub flags: u32,
}

/// A span status (OTLP `Status`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Status<'a> {
    /// The status code.
    pub code: StatusCode,
    /// A developer-facing message, usually set with `Error` only.
    pub message: &'a str,
}

/// A span made of borrowed parts, encoded straight into a pipeline [`Item`]
/// with no allocation per field.
///
/// It is the native path's zero-copy twin of the prost `Span`: the same
/// fields, with the same meaning, and the same bytes on the wire. Ids are
/// byte slices (an empty slice leaves the field out, as an empty `Vec` does).
///
/// ```
/// use otlp::wire::{AnyValue, Attribute, SpanRecord};
/// use opentelemetry_proto::tonic::{
///     common::v1::InstrumentationScope, resource::v1::Resource, trace::v1::span::SpanKind,
/// };
///
/// let resource = otlp::resource_group(&Resource::default(), "");
/// let scope = otlp::scope_group(&InstrumentationScope { name: "demo".into(), ..Default::default() }, "");
/// let attributes = [
///     Attribute { key: "http.request.method", value: AnyValue::Str("GET") },
///     Attribute { key: "http.response.status_code", value: AnyValue::Int(200) },
/// ];
/// let span = SpanRecord {
///     trace_id: &[1; 16],
///     span_id: &[2; 8],
///     name: "GET /orders/{id}",
///     kind: SpanKind::Server,
///     start_time_unix_nano: 1_700_000_000_000_000_000,
///     end_time_unix_nano: 1_700_000_000_001_000_000,
///     attributes: &attributes,
///     ..SpanRecord::default()
/// };
/// let item = span.to_item(&resource, &scope);
/// assert_eq!(item.count, 1);
/// // Exactly what prost writes for the same span.
/// # use prost::Message;
/// # let proto = opentelemetry_proto::tonic::trace::v1::Span {
/// #     trace_id: vec![1; 16], span_id: vec![2; 8], name: "GET /orders/{id}".into(), kind: 2,
/// #     start_time_unix_nano: 1_700_000_000_000_000_000, end_time_unix_nano: 1_700_000_000_001_000_000,
/// #     attributes: vec![
/// #         opentelemetry_proto::tonic::common::v1::KeyValue { key: "http.request.method".into(), value: Some(opentelemetry_proto::tonic::common::v1::AnyValue { value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue("GET".into())) }), key_strindex: 0 },
/// #         opentelemetry_proto::tonic::common::v1::KeyValue { key: "http.response.status_code".into(), value: Some(opentelemetry_proto::tonic::common::v1::AnyValue { value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(200)) }), key_strindex: 0 },
/// #     ],
/// #     ..Default::default()
/// # };
/// assert_eq!(&item.body[..], &proto.encode_to_vec()[..]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpanRecord<'a> {
    /// The trace id (16 bytes).
    pub trace_id: &'a [u8],
    /// The span id (8 bytes).
    pub span_id: &'a [u8],
    /// The W3C trace state header, or empty.
    pub trace_state: &'a str,
    /// The parent span id (8 bytes), or empty for a root span.
    pub parent_span_id: &'a [u8],
    /// W3C trace flags and the OTLP `SpanFlags` remote bits.
    pub flags: u32,
    /// The span name.
    pub name: &'a str,
    /// The span kind.
    pub kind: SpanKind,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_time_unix_nano: u64,
    /// End, in nanoseconds since the Unix epoch.
    pub end_time_unix_nano: u64,
    /// The span attributes.
    pub attributes: &'a [Attribute<'a>],
    /// Attributes dropped before export.
    pub dropped_attributes_count: u32,
    /// The span events.
    pub events: &'a [Event<'a>],
    /// Events dropped before export.
    pub dropped_events_count: u32,
    /// The span links.
    pub links: &'a [Link<'a>],
    /// Links dropped before export.
    pub dropped_links_count: u32,
    /// The status; `None` leaves the field out.
    pub status: Option<Status<'a>>,
}

/// A log record made of borrowed parts (OTLP `LogRecord`), encoded straight
/// into a pipeline [`Item`].
///
/// ```
/// use otlp::wire::{AnyValue, Attribute, LogRecord};
/// use opentelemetry_proto::tonic::{common::v1::InstrumentationScope, resource::v1::Resource};
///
/// let resource = otlp::resource_group(&Resource::default(), "");
/// let scope = otlp::scope_group(&InstrumentationScope { name: "demo".into(), ..Default::default() }, "");
/// let record = LogRecord {
///     time_unix_nano: 1_700_000_000_000_000_000,
///     severity_number: 9, // INFO
///     severity_text: "INFO",
///     body: Some(AnyValue::Str("order 12345 served from cache")),
///     attributes: &[Attribute { key: "duration_ms", value: AnyValue::Int(3) }],
///     ..LogRecord::default()
/// };
/// let item = record.to_item(&resource, &scope);
/// assert_eq!(item.count, 1);
/// assert_eq!(item.signal, otlp::core::Signal::Logs);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LogRecord<'a> {
    /// When the event happened, in nanoseconds since the Unix epoch (0: unknown).
    pub time_unix_nano: u64,
    /// When the record was observed, in nanoseconds since the Unix epoch.
    pub observed_time_unix_nano: u64,
    /// The OTLP `SeverityNumber` (0: unspecified, 1-24: TRACE to FATAL4).
    pub severity_number: i32,
    /// The severity as the source wrote it.
    pub severity_text: &'a str,
    /// The body; `None` leaves the field out.
    pub body: Option<AnyValue<'a>>,
    /// The record attributes.
    pub attributes: &'a [Attribute<'a>],
    /// Attributes dropped before export.
    pub dropped_attributes_count: u32,
    /// W3C trace flags of the span the record belongs to.
    pub flags: u32,
    /// The trace id (16 bytes), or empty.
    pub trace_id: &'a [u8],
    /// The span id (8 bytes), or empty.
    pub span_id: &'a [u8],
    /// The event name, or empty.
    pub event_name: &'a str,
}

// === impl AnyValue ===

impl AnyValue<'_> {
    /// Writes the `AnyValue` message body (its oneof member).
    fn write(&self, buf: &mut BytesMut) {
        match *self {
            AnyValue::Empty => {}
            AnyValue::Str(s) => bytes_always(buf, ANY_STRING, s.as_bytes()),
            AnyValue::Bool(b) => varint_always(buf, ANY_BOOL, u64::from(b)),
            AnyValue::Int(i) => varint_always(buf, ANY_INT, i as u64),
            AnyValue::Double(d) => double_always(buf, ANY_DOUBLE, d),
            AnyValue::Bytes(b) => bytes_always(buf, ANY_BYTES, b),
            AnyValue::Array(values) => {
                let start = open(buf, ANY_ARRAY);
                for v in values {
                    let inner = open(buf, LIST_VALUES);
                    v.write(buf);
                    close(buf, inner);
                }
                close(buf, start);
            }
            AnyValue::Map(entries) => {
                let start = open(buf, ANY_KVLIST);
                write_attributes(buf, LIST_VALUES, entries);
                close(buf, start);
            }
        }
    }
}

/// Writes each attribute as a repeated `KeyValue` field `tag`.
fn write_attributes(buf: &mut BytesMut, tag: u32, attributes: &[Attribute<'_>]) {
    for a in attributes {
        let start = open(buf, tag);
        string(buf, KV_KEY, a.key);
        let value = open(buf, KV_VALUE);
        a.value.write(buf);
        close(buf, value);
        close(buf, start);
    }
}

// === impl SpanRecord ===

impl Default for SpanRecord<'_> {
    fn default() -> Self {
        Self {
            trace_id: &[],
            span_id: &[],
            trace_state: "",
            parent_span_id: &[],
            flags: 0,
            name: "",
            kind: SpanKind::Unspecified,
            start_time_unix_nano: 0,
            end_time_unix_nano: 0,
            attributes: &[],
            dropped_attributes_count: 0,
            events: &[],
            dropped_events_count: 0,
            links: &[],
            dropped_links_count: 0,
            status: None,
        }
    }
}

impl SpanRecord<'_> {
    /// Appends the encoded `Span` message body (no tag or length of its own)
    /// to `buf`: the same bytes prost writes for the equivalent `Span`.
    pub fn encode(&self, buf: &mut BytesMut) {
        bytes(buf, SPAN_TRACE_ID, self.trace_id);
        bytes(buf, SPAN_SPAN_ID, self.span_id);
        string(buf, SPAN_TRACE_STATE, self.trace_state);
        bytes(buf, SPAN_PARENT_SPAN_ID, self.parent_span_id);
        string(buf, SPAN_NAME, self.name);
        int32(buf, SPAN_KIND, self.kind as i32);
        fixed64(buf, SPAN_START, self.start_time_unix_nano);
        fixed64(buf, SPAN_END, self.end_time_unix_nano);
        write_attributes(buf, SPAN_ATTRIBUTES, self.attributes);
        varint(
            buf,
            SPAN_DROPPED_ATTRIBUTES,
            u64::from(self.dropped_attributes_count),
        );
        for e in self.events {
            let start = open(buf, SPAN_EVENTS);
            fixed64(buf, EVENT_TIME, e.time_unix_nano);
            string(buf, EVENT_NAME, e.name);
            write_attributes(buf, EVENT_ATTRIBUTES, e.attributes);
            varint(
                buf,
                EVENT_DROPPED_ATTRIBUTES,
                u64::from(e.dropped_attributes_count),
            );
            close(buf, start);
        }
        varint(
            buf,
            SPAN_DROPPED_EVENTS,
            u64::from(self.dropped_events_count),
        );
        for l in self.links {
            let start = open(buf, SPAN_LINKS);
            bytes(buf, LINK_TRACE_ID, l.trace_id);
            bytes(buf, LINK_SPAN_ID, l.span_id);
            string(buf, LINK_TRACE_STATE, l.trace_state);
            write_attributes(buf, LINK_ATTRIBUTES, l.attributes);
            varint(
                buf,
                LINK_DROPPED_ATTRIBUTES,
                u64::from(l.dropped_attributes_count),
            );
            fixed32(buf, LINK_FLAGS, l.flags);
            close(buf, start);
        }
        varint(buf, SPAN_DROPPED_LINKS, u64::from(self.dropped_links_count));
        if let Some(status) = &self.status {
            let start = open(buf, SPAN_STATUS);
            string(buf, STATUS_MESSAGE, status.message);
            int32(buf, STATUS_CODE, status.code as i32);
            close(buf, start);
        }
        fixed32(buf, SPAN_FLAGS, self.flags);
    }

    /// The span as a pipeline item of `resource` and `scope`.
    ///
    /// The body is cut from a per-thread chunk shared with neighbouring
    /// items, so encoding allocates once per chunk, not once per span.
    pub fn to_item(&self, resource: &Group, scope: &Group) -> Item {
        Item::new(
            Signal::Traces,
            resource.clone(),
            scope.clone(),
            encode_with(|buf| self.encode(buf)),
            1,
        )
    }
}

// === impl LogRecord ===

impl LogRecord<'_> {
    /// Appends the encoded `LogRecord` message body (no tag or length of its
    /// own) to `buf`: the same bytes prost writes for the equivalent record.
    pub fn encode(&self, buf: &mut BytesMut) {
        fixed64(buf, LOG_TIME, self.time_unix_nano);
        int32(buf, LOG_SEVERITY_NUMBER, self.severity_number);
        string(buf, LOG_SEVERITY_TEXT, self.severity_text);
        if let Some(body) = &self.body {
            let start = open(buf, LOG_BODY);
            body.write(buf);
            close(buf, start);
        }
        write_attributes(buf, LOG_ATTRIBUTES, self.attributes);
        varint(
            buf,
            LOG_DROPPED_ATTRIBUTES,
            u64::from(self.dropped_attributes_count),
        );
        fixed32(buf, LOG_FLAGS, self.flags);
        bytes(buf, LOG_TRACE_ID, self.trace_id);
        bytes(buf, LOG_SPAN_ID, self.span_id);
        fixed64(buf, LOG_OBSERVED_TIME, self.observed_time_unix_nano);
        string(buf, LOG_EVENT_NAME, self.event_name);
    }

    /// The record as a pipeline item of `resource` and `scope`.
    pub fn to_item(&self, resource: &Group, scope: &Group) -> Item {
        Item::new(
            Signal::Logs,
            resource.clone(),
            scope.clone(),
            encode_with(|buf| self.encode(buf)),
            1,
        )
    }
}
