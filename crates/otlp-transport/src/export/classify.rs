//! The OTLP specification's retry rules, one mapping function per protocol,
//! plus the parsers for server hints (`RetryInfo`, `Retry-After`) and for
//! partial-success responses.

use std::time::Duration;

use otlp_core::ExportResponse;

use crate::google_rpc;

/// Server throttle hints are capped so a misbehaving server cannot park an
/// exporter for hours: [`otlp_core::MAX_THROTTLE`], five minutes.
pub(crate) const MAX_THROTTLE: Duration = otlp_core::MAX_THROTTLE;

/// Responses larger than this are refused (a collector's answer is tiny).
pub(crate) const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The OTLP specification's retry rules, defined in otlp-core (where
/// `Classify for tonic::Status` uses them too).
pub(crate) use otlp_core::grpc::{grpc_retryability, http_retryability};

/// Parses an HTTP `Retry-After` value: delay-seconds or an IMF-fixdate
/// HTTP-date (relative to `now`). The result is capped at [`MAX_THROTTLE`].
#[cfg(any(feature = "http", test))]
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_THROTTLE));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let delay = at.duration_since(now).unwrap_or(Duration::ZERO);
    Some(delay.min(MAX_THROTTLE))
}

// --- protobuf shapes of the OTLP responses we decode ---

/// The common shape of `Export{Trace,Metrics,Logs,Profiles}ServiceResponse`:
/// field 1 is the partial success, whose field 1 is the rejected count and
/// field 2 the message, for every signal.
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

/// Reads the `RetryInfo` delay from `grpc-status-details-bin` (an encoded
/// `google.rpc.Status` whose details hold a `google.rpc.RetryInfo`), capped
/// at [`MAX_THROTTLE`].
#[cfg(any(feature = "grpc", test))]
pub(crate) fn retry_info_from_status_details(details: &[u8]) -> Option<Duration> {
    let status = google_rpc::Status::decode_bytes(details).ok()?;
    status.retry_delay().map(|d| d.min(MAX_THROTTLE))
}

/// Reads the delay from a `google.rpc.retryinfo-bin` trailer (an encoded
/// `google.rpc.RetryInfo`, as the Python exporter expects it), capped at
/// [`MAX_THROTTLE`].
#[cfg(any(feature = "grpc", test))]
pub(crate) fn retry_info_from_trailer(value: &[u8]) -> Option<Duration> {
    use prost::Message as _;
    google_rpc::RetryInfo::decode(value)
        .ok()
        .and_then(|i| i.delay())
        .map(|d| d.min(MAX_THROTTLE))
}

/// Decodes an `Export*ServiceResponse` protobuf body into an [`ExportResponse`].
/// An undecodable body counts as full success: the status already said OK, and
/// the spec makes the partial-success field optional.
pub(crate) fn decode_partial_success(body: &[u8]) -> ExportResponse {
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
#[cfg(any(feature = "http", test))]
pub(crate) fn decode_partial_success_json(body: &[u8]) -> ExportResponse {
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
    let status = google_rpc::Status::decode_bytes(body).ok()?;
    (!status.message.is_empty()).then_some(status.message)
}

#[cfg(test)]
mod tests;
