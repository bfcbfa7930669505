//! Validation of a received OTLP export request against the OTLP protobuf
//! schema (opentelemetry-proto 1.x), in one pass that also counts its items.
//!
//! The agent forwards received requests as bytes and joins them with other
//! senders' requests, so one bad request would make the collector refuse
//! everybody's batch. Each request is therefore checked before it is
//! acknowledged:
//!
//! - every known field has its schema wire type (a traces request sent to the
//!   logs endpoint fails here: `Span.trace_id` is length-delimited where
//!   `LogRecord` field 1 is `fixed64`; the other cross-signal mix-ups fail on
//!   a wire type, an id length or UTF-8 in the first item as well); packed
//!   repeated scalars are accepted packed and unpacked; unknown fields are
//!   skipped (proto3 forward compatibility);
//! - every `string` field is UTF-8;
//! - trace and span ids are empty or of their length (`trace_id` 16 bytes,
//!   `span_id` 8): what the Collector's pdata accepts, so nothing it would
//!   take is refused here;
//! - `AnyValue`s nest (arrays and key-value lists) at most
//!   [`MAX_ANY_VALUE_DEPTH`] levels.
//!
//! Two walkers share the schema: the accepting one (`fast`), through which
//! every received byte passes, says only "valid or not"; when it says no,
//! the diagnosing one walks the request again to name the field and the
//! reason. Nothing is allocated unless the request is invalid; recursion is
//! bounded by the schema's depth plus the `AnyValue` nesting limit.

use crate::{
    Signal,
    error::DecodeError,
    wire::{FIXED32, FIXED64, Fields, LEN, VARINT},
};

/// How deeply `AnyValue`s may nest inside each other (through `array_value`
/// and `kvlist_value`). The Collector's pdata tolerates more; real telemetry
/// rarely exceeds a handful of levels, and a bound keeps a hostile request
/// from costing unbounded stack or time downstream.
pub const MAX_ANY_VALUE_DEPTH: usize = 32;

/// A received request that does not follow the OTLP schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid OTLP {signal} request: {path}: {reason}")]
pub struct InvalidRequest {
    /// The signal the request was received for.
    pub signal: Signal,
    /// Where, e.g. `resource_spans[0].scope_spans[1].spans[3].trace_id`.
    pub path: String,
    /// What is wrong, and what to check.
    pub reason: String,
}

/// The messages of the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum M {
    TraceRequest,
    ResourceSpans,
    ScopeSpans,
    Span,
    Event,
    Link,
    Status,
    LogsRequest,
    ResourceLogs,
    ScopeLogs,
    LogRecord,
    MetricsRequest,
    ResourceMetrics,
    ScopeMetrics,
    Metric,
    Gauge,
    Sum,
    Histogram,
    ExpHistogram,
    Summary,
    NumberPoint,
    HistogramPoint,
    ExpHistogramPoint,
    Buckets,
    SummaryPoint,
    Quantile,
    Exemplar,
    Resource,
    EntityRef,
    Scope,
    KeyValue,
    AnyValue,
    ArrayValue,
    KvList,
    ProfilesRequest,
    ResourceProfiles,
    ScopeProfiles,
    Profile,
    Dictionary,
    ValueType,
    Sample,
    Mapping,
    Location,
    Line,
    Function,
    ProfileLink,
    Stack,
    KeyValueAndUnit,
}

/// The type of one field.
#[derive(Clone, Copy, Debug)]
enum Ty {
    Msg(M),
    /// A message holding one item (span, log record, data point): counted.
    Item(M),
    Str,
    Bytes,
    /// An id of exactly this many bytes; `true` when it may be empty.
    Id(usize),
    Varint,
    Fixed64,
    Fixed32,
    /// A repeated fixed64 / double, packed or not.
    PackedFixed64,
    /// A repeated varint, packed or not.
    PackedVarint,
}

impl M {
    /// Every message, in declaration order (the index of [`TABLE`]).
    const ALL: [M; 48] = [
        M::TraceRequest,
        M::ResourceSpans,
        M::ScopeSpans,
        M::Span,
        M::Event,
        M::Link,
        M::Status,
        M::LogsRequest,
        M::ResourceLogs,
        M::ScopeLogs,
        M::LogRecord,
        M::MetricsRequest,
        M::ResourceMetrics,
        M::ScopeMetrics,
        M::Metric,
        M::Gauge,
        M::Sum,
        M::Histogram,
        M::ExpHistogram,
        M::Summary,
        M::NumberPoint,
        M::HistogramPoint,
        M::ExpHistogramPoint,
        M::Buckets,
        M::SummaryPoint,
        M::Quantile,
        M::Exemplar,
        M::Resource,
        M::EntityRef,
        M::Scope,
        M::KeyValue,
        M::AnyValue,
        M::ArrayValue,
        M::KvList,
        M::ProfilesRequest,
        M::ResourceProfiles,
        M::ScopeProfiles,
        M::Profile,
        M::Dictionary,
        M::ValueType,
        M::Sample,
        M::Mapping,
        M::Location,
        M::Line,
        M::Function,
        M::ProfileLink,
        M::Stack,
        M::KeyValueAndUnit,
    ];

    /// The export request message of `signal`.
    fn root(signal: Signal) -> M {
        match signal {
            Signal::Traces => M::TraceRequest,
            Signal::Metrics => M::MetricsRequest,
            Signal::Logs => M::LogsRequest,
            Signal::Profiles => M::ProfilesRequest,
        }
    }

    fn name(self) -> &'static str {
        match self {
            M::TraceRequest => "ExportTraceServiceRequest",
            M::ResourceSpans => "ResourceSpans",
            M::ScopeSpans => "ScopeSpans",
            M::Span => "Span",
            M::Event => "Span.Event",
            M::Link => "Span.Link",
            M::Status => "Status",
            M::LogsRequest => "ExportLogsServiceRequest",
            M::ResourceLogs => "ResourceLogs",
            M::ScopeLogs => "ScopeLogs",
            M::LogRecord => "LogRecord",
            M::MetricsRequest => "ExportMetricsServiceRequest",
            M::ResourceMetrics => "ResourceMetrics",
            M::ScopeMetrics => "ScopeMetrics",
            M::Metric => "Metric",
            M::Gauge => "Gauge",
            M::Sum => "Sum",
            M::Histogram => "Histogram",
            M::ExpHistogram => "ExponentialHistogram",
            M::Summary => "Summary",
            M::NumberPoint => "NumberDataPoint",
            M::HistogramPoint => "HistogramDataPoint",
            M::ExpHistogramPoint => "ExponentialHistogramDataPoint",
            M::Buckets => "ExponentialHistogramDataPoint.Buckets",
            M::SummaryPoint => "SummaryDataPoint",
            M::Quantile => "SummaryDataPoint.ValueAtQuantile",
            M::Exemplar => "Exemplar",
            M::Resource => "Resource",
            M::EntityRef => "EntityRef",
            M::Scope => "InstrumentationScope",
            M::KeyValue => "KeyValue",
            M::AnyValue => "AnyValue",
            M::ArrayValue => "ArrayValue",
            M::KvList => "KeyValueList",
            M::ProfilesRequest => "ExportProfilesServiceRequest",
            M::ResourceProfiles => "ResourceProfiles",
            M::ScopeProfiles => "ScopeProfiles",
            M::Profile => "Profile",
            M::Dictionary => "ProfilesDictionary",
            M::ValueType => "ValueType",
            M::Sample => "Sample",
            M::Mapping => "Mapping",
            M::Location => "Location",
            M::Line => "Line",
            M::Function => "Function",
            M::ProfileLink => "Link",
            M::Stack => "Stack",
            M::KeyValueAndUnit => "KeyValueAndUnit",
        }
    }

    /// The name and type of field `n`, or `None` for a field the schema does
    /// not know (skipped).
    const fn field(self, n: u32) -> Option<(&'static str, Ty)> {
        use Ty::*;
        let kv = ("attributes", Msg(M::KeyValue));
        Some(match (self, n) {
            (M::TraceRequest, 1) => ("resource_spans", Msg(M::ResourceSpans)),
            (M::ResourceSpans | M::ResourceLogs | M::ResourceMetrics | M::ResourceProfiles, 1) => {
                ("resource", Msg(M::Resource))
            }
            (M::ResourceSpans, 2) => ("scope_spans", Msg(M::ScopeSpans)),
            (M::ResourceSpans | M::ResourceLogs | M::ResourceMetrics | M::ResourceProfiles, 3)
            | (M::ScopeSpans | M::ScopeLogs | M::ScopeMetrics | M::ScopeProfiles, 3) => {
                ("schema_url", Str)
            }
            (M::ScopeSpans | M::ScopeLogs | M::ScopeMetrics | M::ScopeProfiles, 1) => {
                ("scope", Msg(M::Scope))
            }
            (M::ScopeSpans, 2) => ("spans", Item(M::Span)),
            (M::Span, 1) => ("trace_id", Id(16)),
            (M::Span, 2) => ("span_id", Id(8)),
            (M::Span, 3) => ("trace_state", Str),
            (M::Span, 4) => ("parent_span_id", Id(8)),
            (M::Span, 5) => ("name", Str),
            (M::Span, 6) => ("kind", Varint),
            (M::Span, 7) => ("start_time_unix_nano", Fixed64),
            (M::Span, 8) => ("end_time_unix_nano", Fixed64),
            (M::Span, 9) => kv,
            (M::Span, 10) => ("dropped_attributes_count", Varint),
            (M::Span, 11) => ("events", Msg(M::Event)),
            (M::Span, 12) => ("dropped_events_count", Varint),
            (M::Span, 13) => ("links", Msg(M::Link)),
            (M::Span, 14) => ("dropped_links_count", Varint),
            (M::Span, 15) => ("status", Msg(M::Status)),
            (M::Span, 16) => ("flags", Fixed32),
            (M::Event, 1) => ("time_unix_nano", Fixed64),
            (M::Event, 2) => ("name", Str),
            (M::Event, 3) => kv,
            (M::Event, 4) => ("dropped_attributes_count", Varint),
            (M::Link, 1) => ("trace_id", Id(16)),
            (M::Link, 2) => ("span_id", Id(8)),
            (M::Link, 3) => ("trace_state", Str),
            (M::Link, 4) => kv,
            (M::Link, 5) => ("dropped_attributes_count", Varint),
            (M::Link, 6) => ("flags", Fixed32),
            (M::Status, 2) => ("message", Str),
            (M::Status, 3) => ("code", Varint),
            (M::LogsRequest, 1) => ("resource_logs", Msg(M::ResourceLogs)),
            (M::ResourceLogs, 2) => ("scope_logs", Msg(M::ScopeLogs)),
            (M::ScopeLogs, 2) => ("log_records", Item(M::LogRecord)),
            (M::LogRecord, 1) => ("time_unix_nano", Fixed64),
            (M::LogRecord, 11) => ("observed_time_unix_nano", Fixed64),
            (M::LogRecord, 2) => ("severity_number", Varint),
            (M::LogRecord, 3) => ("severity_text", Str),
            (M::LogRecord, 5) => ("body", Msg(M::AnyValue)),
            (M::LogRecord, 6) => kv,
            (M::LogRecord, 7) => ("dropped_attributes_count", Varint),
            (M::LogRecord, 8) => ("flags", Fixed32),
            (M::LogRecord, 9) => ("trace_id", Id(16)),
            (M::LogRecord, 10) => ("span_id", Id(8)),
            (M::LogRecord, 12) => ("event_name", Str),
            (M::MetricsRequest, 1) => ("resource_metrics", Msg(M::ResourceMetrics)),
            (M::ResourceMetrics, 2) => ("scope_metrics", Msg(M::ScopeMetrics)),
            (M::ScopeMetrics, 2) => ("metrics", Msg(M::Metric)),
            (M::Metric, 1) => ("name", Str),
            (M::Metric, 2) => ("description", Str),
            (M::Metric, 3) => ("unit", Str),
            (M::Metric, 5) => ("gauge", Msg(M::Gauge)),
            (M::Metric, 7) => ("sum", Msg(M::Sum)),
            (M::Metric, 9) => ("histogram", Msg(M::Histogram)),
            (M::Metric, 10) => ("exponential_histogram", Msg(M::ExpHistogram)),
            (M::Metric, 11) => ("summary", Msg(M::Summary)),
            (M::Metric, 12) => ("metadata", Msg(M::KeyValue)),
            (M::Gauge | M::Sum, 1) => ("data_points", Item(M::NumberPoint)),
            (M::Histogram, 1) => ("data_points", Item(M::HistogramPoint)),
            (M::ExpHistogram, 1) => ("data_points", Item(M::ExpHistogramPoint)),
            (M::Summary, 1) => ("data_points", Item(M::SummaryPoint)),
            (M::Sum | M::Histogram | M::ExpHistogram, 2) => ("aggregation_temporality", Varint),
            (M::Sum, 3) => ("is_monotonic", Varint),
            (M::NumberPoint, 7) | (M::HistogramPoint, 9) | (M::ExpHistogramPoint, 1) => kv,
            (M::SummaryPoint, 7) => kv,
            (M::NumberPoint | M::HistogramPoint | M::ExpHistogramPoint | M::SummaryPoint, 2) => {
                ("start_time_unix_nano", Fixed64)
            }
            (M::NumberPoint | M::HistogramPoint | M::ExpHistogramPoint | M::SummaryPoint, 3) => {
                ("time_unix_nano", Fixed64)
            }
            (M::NumberPoint, 4) | (M::Exemplar, 3) => ("as_double", Fixed64),
            (M::NumberPoint, 6) | (M::Exemplar, 6) => ("as_int", Fixed64),
            (M::NumberPoint, 5) | (M::HistogramPoint, 8) | (M::ExpHistogramPoint, 11) => {
                ("exemplars", Msg(M::Exemplar))
            }
            (M::NumberPoint, 8)
            | (M::HistogramPoint, 10)
            | (M::ExpHistogramPoint, 10)
            | (M::SummaryPoint, 8) => ("flags", Varint),
            (M::HistogramPoint | M::ExpHistogramPoint | M::SummaryPoint, 4) => ("count", Fixed64),
            (M::HistogramPoint | M::ExpHistogramPoint | M::SummaryPoint, 5) => ("sum", Fixed64),
            (M::HistogramPoint, 6) => ("bucket_counts", PackedFixed64),
            (M::HistogramPoint, 7) => ("explicit_bounds", PackedFixed64),
            (M::HistogramPoint, 11) | (M::ExpHistogramPoint, 12) => ("min", Fixed64),
            (M::HistogramPoint, 12) | (M::ExpHistogramPoint, 13) => ("max", Fixed64),
            (M::ExpHistogramPoint, 6) => ("scale", Varint),
            (M::ExpHistogramPoint, 7) => ("zero_count", Fixed64),
            (M::ExpHistogramPoint, 8) => ("positive", Msg(M::Buckets)),
            (M::ExpHistogramPoint, 9) => ("negative", Msg(M::Buckets)),
            (M::ExpHistogramPoint, 14) => ("zero_threshold", Fixed64),
            (M::Buckets, 1) => ("offset", Varint),
            (M::Buckets, 2) => ("bucket_counts", PackedVarint),
            (M::SummaryPoint, 6) => ("quantile_values", Msg(M::Quantile)),
            (M::Quantile, 1) => ("quantile", Fixed64),
            (M::Quantile, 2) => ("value", Fixed64),
            (M::Exemplar, 7) => ("filtered_attributes", Msg(M::KeyValue)),
            (M::Exemplar, 2) => ("time_unix_nano", Fixed64),
            (M::Exemplar, 4) => ("span_id", Id(8)),
            (M::Exemplar, 5) => ("trace_id", Id(16)),
            (M::Resource, 1) | (M::Scope, 3) => kv,
            (M::Resource, 2) => ("dropped_attributes_count", Varint),
            (M::Resource, 3) => ("entity_refs", Msg(M::EntityRef)),
            (M::EntityRef, 1) => ("schema_url", Str),
            (M::EntityRef, 2) => ("type", Str),
            (M::EntityRef, 3) => ("id_keys", Str),
            (M::EntityRef, 4) => ("description_keys", Str),
            (M::Scope, 1) => ("name", Str),
            (M::Scope, 2) => ("version", Str),
            (M::Scope, 4) => ("dropped_attributes_count", Varint),
            (M::KeyValue, 1) => ("key", Str),
            (M::KeyValue, 2) => ("value", Msg(M::AnyValue)),
            (M::KeyValue, 3) => ("key_strindex", Varint),
            (M::AnyValue, 1) => ("string_value", Str),
            (M::AnyValue, 2) => ("bool_value", Varint),
            (M::AnyValue, 3) => ("int_value", Varint),
            (M::AnyValue, 4) => ("double_value", Fixed64),
            (M::AnyValue, 5) => ("array_value", Msg(M::ArrayValue)),
            (M::AnyValue, 6) => ("kvlist_value", Msg(M::KvList)),
            (M::AnyValue, 7) => ("bytes_value", Bytes),
            (M::AnyValue, 8) => ("string_value_strindex", Varint),
            (M::ArrayValue, 1) => ("values", Msg(M::AnyValue)),
            (M::KvList, 1) => ("values", Msg(M::KeyValue)),
            // Profiles (opentelemetry-proto profiles/v1development).
            (M::ProfilesRequest, 1) => ("resource_profiles", Msg(M::ResourceProfiles)),
            (M::ProfilesRequest, 2) => ("dictionary", Msg(M::Dictionary)),
            (M::ResourceProfiles, 2) => ("scope_profiles", Msg(M::ScopeProfiles)),
            (M::ScopeProfiles, 2) => ("profiles", Item(M::Profile)),
            (M::Profile, 1) => ("sample_type", Msg(M::ValueType)),
            (M::Profile, 2) => ("samples", Msg(M::Sample)),
            (M::Profile, 3) => ("time_unix_nano", Fixed64),
            (M::Profile, 4) => ("duration_nano", Varint),
            (M::Profile, 5) => ("period_type", Msg(M::ValueType)),
            (M::Profile, 6) => ("period", Varint),
            (M::Profile, 7) => ("profile_id", Id(16)),
            (M::Profile, 8) => ("dropped_attributes_count", Varint),
            (M::Profile, 9) => ("original_payload_format", Str),
            (M::Profile, 10) => ("original_payload", Bytes),
            (M::Profile, 11) | (M::Sample, 2) | (M::Mapping, 5) | (M::Location, 4) => {
                ("attribute_indices", PackedVarint)
            }
            (M::Dictionary, 1) => ("mapping_table", Msg(M::Mapping)),
            (M::Dictionary, 2) => ("location_table", Msg(M::Location)),
            (M::Dictionary, 3) => ("function_table", Msg(M::Function)),
            (M::Dictionary, 4) => ("link_table", Msg(M::ProfileLink)),
            (M::Dictionary, 5) => ("string_table", Str),
            (M::Dictionary, 6) => ("attribute_table", Msg(M::KeyValueAndUnit)),
            (M::Dictionary, 7) => ("stack_table", Msg(M::Stack)),
            (M::ValueType, 1) => ("type_strindex", Varint),
            (M::ValueType, 2) => ("unit_strindex", Varint),
            (M::Sample, 1) => ("stack_index", Varint),
            (M::Sample, 3) => ("link_index", Varint),
            (M::Sample, 4) => ("values", PackedVarint),
            (M::Sample, 5) => ("timestamps_unix_nano", PackedFixed64),
            (M::Mapping, 1) => ("memory_start", Varint),
            (M::Mapping, 2) => ("memory_limit", Varint),
            (M::Mapping, 3) => ("file_offset", Varint),
            (M::Mapping, 4) | (M::Function, 3) => ("filename_strindex", Varint),
            (M::Stack, 1) => ("location_indices", PackedVarint),
            (M::Location, 1) => ("mapping_index", Varint),
            (M::Location, 2) => ("address", Varint),
            (M::Location, 3) => ("lines", Msg(M::Line)),
            (M::Line, 1) => ("function_index", Varint),
            (M::Line, 2) => ("line", Varint),
            (M::Line, 3) => ("column", Varint),
            (M::Function, 1) => ("name_strindex", Varint),
            (M::Function, 2) => ("system_name_strindex", Varint),
            (M::Function, 4) => ("start_line", Varint),
            (M::ProfileLink, 1) => ("trace_id", Id(16)),
            (M::ProfileLink, 2) => ("span_id", Id(8)),
            (M::KeyValueAndUnit, 1) => ("key_strindex", Varint),
            (M::KeyValueAndUnit, 2) => ("value", Msg(M::AnyValue)),
            (M::KeyValueAndUnit, 3) => ("unit_strindex", Varint),
            _ => return None,
        })
    }
}

fn wire_name(w: u8) -> &'static str {
    match w {
        VARINT => "varint",
        FIXED64 => "fixed64",
        LEN => "length-delimited",
        FIXED32 => "fixed32",
        _ => "unknown",
    }
}

/// The error as it unwinds: the path is built innermost first, only on error.
struct Bad {
    /// Path segments, innermost first: field name and repeated index.
    path: Vec<(&'static str, Option<u32>)>,
    reason: String,
}

impl Bad {
    fn new(reason: String) -> Self {
        Self {
            path: Vec::new(),
            reason,
        }
    }

    fn at(mut self, name: &'static str, index: Option<u32>) -> Self {
        self.path.push((name, index));
        self
    }
}

impl From<DecodeError> for Bad {
    fn from(e: DecodeError) -> Self {
        Bad::new(e.to_string())
    }
}

/// Validates one encoded export request of `signal` and returns its item
/// count (spans, log records, or metric data points, as
/// [`count_items`](crate::count_items) counts them).
///
/// # Errors
///
/// [`InvalidRequest`] naming the first offending field's path and the fix.
pub fn validate(signal: Signal, buf: &[u8]) -> Result<u64, InvalidRequest> {
    let root = M::root(signal);
    let mut items = 0;
    if fast::walk(root, buf, 0, &mut items) {
        return Ok(items);
    }
    // The request is invalid (or the fast walker was stricter than the
    // schema, which the tests rule out): walk it again with the walker that
    // builds the error and its path. An answer from it is the answer.
    items = 0;
    walk(root, buf, 0, &mut items).map_err(|bad| {
        let mut path = String::new();
        for (name, index) in bad.path.iter().rev() {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(name);
            if let Some(i) = index {
                path.push_str(&format!("[{i}]"));
            }
        }
        if path.is_empty() {
            path.push_str(root.name());
        }
        InvalidRequest {
            signal,
            path,
            reason: bad.reason,
        }
    })?;
    Ok(items)
}

/// Whether field `name` of a message is repeated (shown with an index in paths).
fn repeated(ty: Ty, name: &str) -> bool {
    matches!(ty, Ty::Item(_))
        || matches!(
            name,
            "resource_spans"
                | "resource_logs"
                | "resource_metrics"
                | "scope_spans"
                | "scope_logs"
                | "scope_metrics"
                | "metrics"
                | "attributes"
                | "events"
                | "links"
                | "values"
                | "exemplars"
                | "quantile_values"
                | "filtered_attributes"
                | "metadata"
                | "entity_refs"
                | "resource_profiles"
                | "scope_profiles"
                | "samples"
                | "mapping_table"
                | "location_table"
                | "function_table"
                | "link_table"
                | "string_table"
                | "attribute_table"
                | "stack_table"
                | "lines"
        )
}

/// The field types of every message, indexed by message and field number:
/// the walk looks a field up with two array indexes instead of a match.
/// Field numbers above [`MAX_FIELD`] are unknown to every message.
const MAX_FIELD: usize = 16;
const TABLE: [[Option<Ty>; MAX_FIELD + 1]; M::ALL.len()] = {
    let mut t = [[None; MAX_FIELD + 1]; M::ALL.len()];
    let mut i = 0;
    while i < M::ALL.len() {
        assert!(M::ALL[i] as usize == i, "M::ALL is in declaration order");
        let mut n = 0;
        while n <= MAX_FIELD {
            if let Some((_, ty)) = M::ALL[i].field(n as u32) {
                t[i][n] = Some(ty);
            }
            n += 1;
        }
        i += 1;
    }
    // No message has a known field above MAX_FIELD.
    let mut i = 0;
    while i < M::ALL.len() {
        assert!(M::ALL[i].field(MAX_FIELD as u32 + 1).is_none());
        assert!(M::ALL[i].field(MAX_FIELD as u32 + 2).is_none());
        i += 1;
    }
    t
};

/// Reads a varint at `*pos`; one-byte varints (most tags and lengths) take
/// the first branch.
#[inline(always)]
fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    match buf.get(*pos) {
        Some(&b) if b < 0x80 => {
            *pos += 1;
            Ok(u64::from(b))
        }
        _ => varint_slow(buf, pos),
    }
}

#[cold]
fn varint_slow(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    crate::wire::varint_at(buf, pos)
}

/// Moves `*pos` past `len` bytes, returning them.
#[inline(always)]
fn take<'a>(buf: &'a [u8], pos: &mut usize, len: usize) -> Result<&'a [u8], DecodeError> {
    match buf.get(*pos..).and_then(|rest| rest.get(..len)) {
        Some(s) => {
            *pos += len;
            Ok(s)
        }
        None => Err(DecodeError::Truncated { offset: *pos }),
    }
}

/// Walks message `m` in `buf`; `depth` is the `AnyValue` nesting so far.
///
/// This is the diagnosing walker: it runs when the accepting one
/// ([`fast::walk`], the receive path's hot loop) refused a request, and
/// builds the error with its path.
fn walk(m: M, buf: &[u8], depth: usize, items: &mut u64) -> Result<(), Bad> {
    let row = &TABLE[m as usize];
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let key = varint(buf, &mut pos)?;
        let wire = (key & 0x7) as u8;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX) {
            return Err(DecodeError::BadTag { offset: start }.into());
        }
        let mut payload: &[u8] = &[];
        match wire {
            VARINT => {
                varint(buf, &mut pos)?;
            }
            FIXED64 => {
                take(buf, &mut pos, 8)?;
            }
            FIXED32 => {
                take(buf, &mut pos, 4)?;
            }
            LEN => {
                let len = usize::try_from(varint(buf, &mut pos)?)
                    .map_err(|_| DecodeError::Truncated { offset: pos })?;
                payload = take(buf, &mut pos, len)?;
            }
            other => {
                return Err(DecodeError::BadWireType {
                    offset: start,
                    wire_type: other,
                }
                .into());
            }
        }
        let Some(ty) = row.get(number as usize).copied().flatten() else {
            continue;
        };
        if let Err(bad) = check(m, number as u32, wire, payload, ty, depth, items) {
            return Err(located(m, buf, start, number as u32, bad));
        }
    }
    Ok(())
}

/// Adds the field at `start` to the path of an error found inside it.
#[cold]
fn located(m: M, buf: &[u8], start: usize, number: u32, bad: Bad) -> Bad {
    let Some((name, ty)) = m.field(number) else {
        return bad;
    };
    // The path index is worked out on the error path only: how many fields
    // numbered like this one come before it.
    let index = repeated(ty, name).then(|| {
        Fields::new(&buf[..start])
            .map_while(Result::ok)
            .filter(|g| g.number == number)
            .count() as u32
    });
    bad.at(name, index)
}

#[inline(always)]
fn check(
    m: M,
    number: u32,
    wire: u8,
    payload: &[u8],
    ty: Ty,
    depth: usize,
    items: &mut u64,
) -> Result<(), Bad> {
    let want = match ty {
        Ty::Msg(_) | Ty::Item(_) | Ty::Str | Ty::Bytes | Ty::Id(..) => LEN,
        Ty::Varint => VARINT,
        Ty::Fixed64 => FIXED64,
        Ty::Fixed32 => FIXED32,
        Ty::PackedFixed64 => {
            if wire == LEN && !payload.len().is_multiple_of(8) {
                return Err(Bad::new(format!(
                    "packed fixed64 values of {} bytes: not a multiple of 8",
                    payload.len()
                )));
            }
            if wire == LEN { LEN } else { FIXED64 }
        }
        Ty::PackedVarint => {
            if wire == LEN {
                check_packed_varints(payload)?;
                LEN
            } else {
                VARINT
            }
        }
    };
    if wire != want {
        return Err(wrong_wire(m, number, wire, want));
    }
    match ty {
        Ty::Msg(inner) => walk_inner(inner, payload, depth, items),
        Ty::Item(inner) => {
            // A span, a log record or a metric data point.
            *items += 1;
            walk_inner(inner, payload, depth, items)
        }
        Ty::Str => utf8(payload),
        Ty::Id(len) => {
            let n = payload.len();
            if n == len || n == 0 {
                Ok(())
            } else {
                Err(Bad::new(format!("{n} bytes, want {len} (or empty)")))
            }
        }
        _ => Ok(()),
    }
}

#[inline(always)]
fn walk_inner(inner: M, payload: &[u8], depth: usize, items: &mut u64) -> Result<(), Bad> {
    if payload.is_empty() {
        return Ok(());
    }
    let depth = if matches!(inner, M::ArrayValue | M::KvList) {
        let d = depth + 1;
        if d > MAX_ANY_VALUE_DEPTH {
            return Err(Bad::new(format!(
                "AnyValue nested deeper than {MAX_ANY_VALUE_DEPTH} levels; flatten the attribute or body"
            )));
        }
        d
    } else {
        depth
    };
    walk(inner, payload, depth, items)
}

/// Checks a string field: ASCII (nearly every key and value) is checked a
/// word at a time, anything else by the full UTF-8 validator.
#[inline(always)]
fn utf8(payload: &[u8]) -> Result<(), Bad> {
    if payload.is_ascii() {
        return Ok(());
    }
    match std::str::from_utf8(payload) {
        Ok(_) => Ok(()),
        Err(e) => Err(Bad::new(format!(
            "not valid UTF-8 (at byte {}): protobuf strings must be UTF-8; send binary data as bytes_value",
            e.valid_up_to()
        ))),
    }
}

#[cold]
fn wrong_wire(m: M, number: u32, wire: u8, want: u8) -> Bad {
    let name = m.field(number).map_or("?", |(name, _)| name);
    Bad::new(format!(
        "field {number} of {} ({name}) has wire type {}, want {}: is this request of another signal, sent to the {} endpoint?",
        m.name(),
        wire_name(wire),
        wire_name(want),
        root_signal(m),
    ))
}

/// The endpoint a message belongs to, for the wire-type hint.
fn root_signal(m: M) -> &'static str {
    match m {
        M::TraceRequest
        | M::ResourceSpans
        | M::ScopeSpans
        | M::Span
        | M::Event
        | M::Link
        | M::Status => "traces",
        M::LogsRequest | M::ResourceLogs | M::ScopeLogs | M::LogRecord => "logs",
        M::MetricsRequest
        | M::ResourceMetrics
        | M::ScopeMetrics
        | M::Metric
        | M::Gauge
        | M::Sum
        | M::Histogram
        | M::ExpHistogram
        | M::Summary
        | M::NumberPoint
        | M::HistogramPoint
        | M::ExpHistogramPoint
        | M::Buckets
        | M::SummaryPoint
        | M::Quantile
        | M::Exemplar => "metrics",
        M::ProfilesRequest
        | M::ResourceProfiles
        | M::ScopeProfiles
        | M::Profile
        | M::Dictionary
        | M::ValueType
        | M::Sample
        | M::Mapping
        | M::Location
        | M::Line
        | M::Function
        | M::ProfileLink
        | M::Stack
        | M::KeyValueAndUnit => "profiles",
        _ => "this",
    }
}

/// Checks that `buf` is a run of complete varints.
fn check_packed_varints(buf: &[u8]) -> Result<(), Bad> {
    let mut run = 0;
    for (i, b) in buf.iter().enumerate() {
        run += 1;
        if run > 10 || (run == 10 && *b > 1) {
            return Err(DecodeError::BadVarint { offset: i }.into());
        }
        if b & 0x80 == 0 {
            run = 0;
        }
    }
    if run > 0 {
        return Err(DecodeError::Truncated { offset: buf.len() }.into());
    }
    Ok(())
}

mod fast;

#[cfg(test)]
mod tests;
