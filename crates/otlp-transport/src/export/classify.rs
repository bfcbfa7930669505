//! The OTLP specification's retry rules, one mapping function per protocol,
//! plus the parsers for server hints (`RetryInfo`, `Retry-After`) and for
//! partial-success responses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otlp_core::{ExportResponse, Retryability};

/// Server throttle hints are capped so a misbehaving server cannot park an
/// exporter for hours: [`otlp_core::MAX_THROTTLE`], five minutes.
pub const MAX_THROTTLE: Duration = otlp_core::MAX_THROTTLE;

/// Responses larger than this are refused (a collector's answer is tiny).
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// gRPC status codes used by the mapping (numbers from the gRPC spec).
pub(crate) mod code {
    pub(crate) const CANCELLED: i32 = 1;
    pub(crate) const DEADLINE_EXCEEDED: i32 = 4;
    pub(crate) const RESOURCE_EXHAUSTED: i32 = 8;
    pub(crate) const ABORTED: i32 = 10;
    pub(crate) const OUT_OF_RANGE: i32 = 11;
    pub(crate) const UNAVAILABLE: i32 = 14;
    pub(crate) const DATA_LOSS: i32 = 15;
}

/// The canonical name of a gRPC status code.
pub(crate) fn grpc_code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNRECOGNIZED",
    }
}

/// The OTLP/gRPC rule: which status codes may be retried.
///
/// CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and
/// DATA_LOSS are retryable (throttled when the server sent `RetryInfo`);
/// RESOURCE_EXHAUSTED only when the server sent `RetryInfo`; a message-size
/// refusal is [`Retryability::TooLarge`]; everything else is permanent.
pub fn grpc_retryability(code: i32, message: &str, retry_after: Option<Duration>) -> Retryability {
    let hinted = |fallback| match retry_after {
        Some(d) => Retryability::Throttled(d.min(MAX_THROTTLE)),
        None => fallback,
    };
    match code {
        code::CANCELLED
        | code::DEADLINE_EXCEEDED
        | code::ABORTED
        | code::OUT_OF_RANGE
        | code::UNAVAILABLE
        | code::DATA_LOSS => hinted(Retryability::Retryable),
        code::RESOURCE_EXHAUSTED => {
            if retry_after.is_none() && is_size_message(message) {
                Retryability::TooLarge
            } else {
                hinted(Retryability::Permanent)
            }
        }
        _ => Retryability::Permanent,
    }
}

/// The OTLP/HTTP rule: 429, 502, 503 and 504 are retryable (throttled when
/// `Retry-After` was sent), 413 is [`Retryability::TooLarge`], every other
/// status is permanent.
pub fn http_retryability(status: u16, retry_after: Option<Duration>) -> Retryability {
    match status {
        429 | 502 | 503 | 504 => match retry_after {
            Some(d) => Retryability::Throttled(d.min(MAX_THROTTLE)),
            None => Retryability::Retryable,
        },
        413 => Retryability::TooLarge,
        _ => Retryability::Permanent,
    }
}

/// Whether a gRPC status message reports a size limit (tonic, grpc-go and
/// grpc-java word it differently).
fn is_size_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("message larger than max")
        || m.contains("too large")
        || m.contains("message length too large")
        || m.contains("exceeds maximum")
}

/// Parses an HTTP `Retry-After` value: delay-seconds or an IMF-fixdate
/// HTTP-date (relative to `now`). The result is capped at [`MAX_THROTTLE`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_THROTTLE));
    }
    let at = parse_http_date(value)?;
    let delay = at.duration_since(now).unwrap_or(Duration::ZERO);
    Some(delay.min(MAX_THROTTLE))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the HTTP-date
/// form every current server sends.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let mut parts = value.split_ascii_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let s: u64 = hms.next()?.parse().ok()?;
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day as i64);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// --- protobuf shapes of the small messages we decode ---

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    #[prost(string, tag = "2")]
    pub(crate) message: String,
    #[prost(message, repeated, tag = "3")]
    pub(crate) details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProtoAny {
    #[prost(string, tag = "1")]
    pub(crate) type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub(crate) retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub(crate) seconds: i64,
    #[prost(int32, tag = "2")]
    pub(crate) nanos: i32,
}

/// The common shape of `Export{Trace,Metrics,Logs}ServiceResponse`: field 1
/// is the partial success, whose field 1 is the rejected count and field 2
/// the message, for all three signals.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ExportServiceResponse {
    #[prost(message, optional, tag = "1")]
    pub(crate) partial_success: Option<PartialSuccess>,
}

/// `Export*PartialSuccess`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PartialSuccess {
    #[prost(int64, tag = "1")]
    pub(crate) rejected: i64,
    #[prost(string, tag = "2")]
    pub(crate) error_message: String,
}

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

fn retry_delay(info: &RetryInfo) -> Option<Duration> {
    let d = info.retry_delay.as_ref()?;
    let secs = u64::try_from(d.seconds).ok()?;
    let nanos = u32::try_from(d.nanos).ok().filter(|n| *n < 1_000_000_000)?;
    Some(Duration::new(secs, nanos).min(MAX_THROTTLE))
}

/// Reads the `RetryInfo` delay from `grpc-status-details-bin` (an encoded
/// `google.rpc.Status` whose details hold a `google.rpc.RetryInfo`).
pub fn retry_info_from_status_details(details: &[u8]) -> Option<Duration> {
    use prost::Message as _;
    let status = RpcStatus::decode(details).ok()?;
    status
        .details
        .iter()
        .filter(|any| {
            any.type_url == RETRY_INFO_TYPE || any.type_url.ends_with("/google.rpc.RetryInfo")
        })
        .find_map(|any| {
            RetryInfo::decode(any.value.as_slice())
                .ok()
                .and_then(|i| retry_delay(&i))
        })
}

/// Reads the delay from a `google.rpc.retryinfo-bin` trailer (an encoded
/// `google.rpc.RetryInfo`, as the Python exporter expects it).
pub fn retry_info_from_trailer(value: &[u8]) -> Option<Duration> {
    use prost::Message as _;
    RetryInfo::decode(value).ok().and_then(|i| retry_delay(&i))
}

/// Decodes an `Export*ServiceResponse` protobuf body into an [`ExportResponse`].
/// An undecodable body counts as full success: the status already said OK, and
/// the spec makes the partial-success field optional.
pub fn decode_partial_success(body: &[u8]) -> ExportResponse {
    use prost::Message as _;
    match ExportServiceResponse::decode(body) {
        Ok(ExportServiceResponse {
            partial_success: Some(p),
        }) if p.rejected > 0 || !p.error_message.is_empty() => {
            ExportResponse::partial(u64::try_from(p.rejected).unwrap_or(0), p.error_message)
        }
        _ => ExportResponse::success(),
    }
}

/// Decodes an OTLP/JSON response body's `partialSuccess` (rejected counts are
/// 64-bit integers, so they may come as strings).
pub fn decode_partial_success_json(body: &[u8]) -> ExportResponse {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ExportResponse::success();
    };
    let Some(p) = value
        .get("partialSuccess")
        .or_else(|| value.get("partial_success"))
    else {
        return ExportResponse::success();
    };
    let rejected = [
        "rejectedSpans",
        "rejectedDataPoints",
        "rejectedLogRecords",
        "rejected_spans",
        "rejected_data_points",
        "rejected_log_records",
    ]
    .iter()
    .find_map(|k| p.get(*k))
    .and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    })
    .unwrap_or(0);
    let message = p
        .get("errorMessage")
        .or_else(|| p.get("error_message"))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    if rejected > 0 || !message.is_empty() {
        ExportResponse::partial(rejected, message)
    } else {
        ExportResponse::success()
    }
}

/// The message of a `google.rpc.Status` protobuf error body, if it is one.
#[cfg(feature = "http")]
pub(crate) fn status_message_from_body(body: &[u8]) -> Option<String> {
    use prost::Message as _;
    let status = RpcStatus::decode(body).ok()?;
    (!status.message.is_empty()).then_some(status.message)
}

#[cfg(test)]
mod tests;
