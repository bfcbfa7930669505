//! The `google.rpc` and `google.protobuf` messages OTLP/gRPC and OTLP/HTTP
//! carry beside the OTLP ones (`Status`, `Any`, `RetryInfo`, `Duration`), and
//! the gRPC status code table.
//!
//! This is the one definition the exporters (reading a collector's
//! `grpc-status-details-bin`, `google.rpc.retryinfo-bin` or error body), the
//! receivers (answering with them) and the test helpers share; four messages
//! do not justify another generated crate.
//!
//! ```
//! use std::time::Duration;
//! use otlp_transport::google_rpc::{self, code};
//!
//! let bytes = google_rpc::encode_status(code::UNAVAILABLE, "busy", Some(Duration::from_secs(2)));
//! let status = google_rpc::Status::decode_bytes(&bytes).unwrap();
//! assert_eq!(code::name(status.code), "UNAVAILABLE");
//! assert_eq!(status.retry_delay(), Some(Duration::from_secs(2)));
//! ```

use prost::Message;

/// gRPC status codes, defined once in otlp-core beside the OTLP retry
/// rules that read them.
pub use otlp_core::grpc::code;

/// The type URL of `google.rpc.RetryInfo` inside a `google.protobuf.Any`.
pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status`: a code, a message and typed details.
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    /// The gRPC status code ([`code`]).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Typed details, such as a [`RetryInfo`].
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`: an encoded message with its type URL.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    /// The type URL, `type.googleapis.com/<full message name>`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`: how long the client should wait before retrying.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    /// The delay.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<Duration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub struct Duration {
    /// Whole seconds (negative for a negative duration).
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second, `0..1_000_000_000` for a valid positive duration.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

// === impl Status ===

impl Status {
    /// Decodes an encoded `google.rpc.Status`.
    ///
    /// # Errors
    ///
    /// Returns prost's error when the bytes are not a `Status`.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Self::decode(bytes)
    }

    /// The delay of the first decodable `RetryInfo` among the details (any
    /// type URL ending in `/google.rpc.RetryInfo`), uncapped.
    pub fn retry_delay(&self) -> Option<std::time::Duration> {
        self.details
            .iter()
            .filter(|any| {
                any.type_url == RETRY_INFO_TYPE_URL
                    || any.type_url.ends_with("/google.rpc.RetryInfo")
            })
            .find_map(|any| {
                RetryInfo::decode(any.value.as_slice())
                    .ok()
                    .and_then(|i| i.delay())
            })
    }
}

// === impl RetryInfo ===

impl RetryInfo {
    /// A `RetryInfo` asking the client to wait `delay`.
    pub fn new(delay: std::time::Duration) -> Self {
        Self {
            retry_delay: Some(Duration::from(delay)),
        }
    }

    /// The delay, or `None` when it is absent, negative or has out-of-range nanos.
    pub fn delay(&self) -> Option<std::time::Duration> {
        let d = self.retry_delay.as_ref()?;
        let secs = u64::try_from(d.seconds).ok()?;
        let nanos = u32::try_from(d.nanos).ok().filter(|n| *n < 1_000_000_000)?;
        Some(std::time::Duration::new(secs, nanos))
    }
}

// === impl Duration ===

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Self {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
        }
    }
}

/// The encoded `google.rpc.RetryInfo` asking the client to wait `delay`.
pub fn encode_retry_info(delay: std::time::Duration) -> Vec<u8> {
    RetryInfo::new(delay).encode_to_vec()
}

/// The encoded `google.rpc.Status`, with a `RetryInfo` detail when `retry` is set.
pub fn encode_status(code: i32, message: &str, retry: Option<std::time::Duration>) -> Vec<u8> {
    Status {
        code,
        message: message.to_owned(),
        details: retry
            .map(|d| Any {
                type_url: RETRY_INFO_TYPE_URL.to_owned(),
                value: encode_retry_info(d),
            })
            .into_iter()
            .collect(),
    }
    .encode_to_vec()
}

/// The `google.rpc.Status` in OTLP/JSON form (proto3 JSON mapping).
#[cfg(feature = "http")]
pub(crate) fn status_json(code: i32, message: &str, retry: Option<std::time::Duration>) -> Vec<u8> {
    let details: Vec<serde_json::Value> = retry
        .map(|d| {
            serde_json::json!({
                "@type": RETRY_INFO_TYPE_URL,
                "retryDelay": format!("{}.{:09}s", d.as_secs(), d.subsec_nanos()),
            })
        })
        .into_iter()
        .collect();
    serde_json::json!({ "code": code, "message": message, "details": details })
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_retry_info_detail() {
        let bytes = encode_status(
            code::UNAVAILABLE,
            "busy",
            Some(std::time::Duration::from_millis(1500)),
        );
        let decoded = Status::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.code, code::UNAVAILABLE);
        assert_eq!(decoded.message, "busy");
        assert_eq!(decoded.details.len(), 1);
        assert_eq!(decoded.details[0].type_url, RETRY_INFO_TYPE_URL);
        let info = RetryInfo::decode(decoded.details[0].value.as_slice()).unwrap();
        assert_eq!(
            info.retry_delay,
            Some(Duration {
                seconds: 1,
                nanos: 500_000_000
            })
        );
        assert_eq!(
            decoded.retry_delay(),
            Some(std::time::Duration::from_millis(1500))
        );
    }

    #[test]
    fn retry_delay_skips_other_details_and_refuses_negative_or_bad_nanos() {
        let other = Any {
            type_url: "type.googleapis.com/google.rpc.DebugInfo".into(),
            value: vec![1, 2, 3],
        };
        let bad = |seconds, nanos| RetryInfo {
            retry_delay: Some(Duration { seconds, nanos }),
        };
        assert_eq!(bad(-1, 0).delay(), None);
        assert_eq!(bad(1, 1_000_000_000).delay(), None);
        assert_eq!(bad(1, -1).delay(), None);
        assert_eq!(RetryInfo::default().delay(), None);
        let status = Status {
            code: code::RESOURCE_EXHAUSTED,
            message: String::new(),
            details: vec![
                other,
                Any {
                    type_url: "example.com/google.rpc.RetryInfo".into(),
                    value: encode_retry_info(std::time::Duration::from_secs(3)),
                },
            ],
        };
        assert_eq!(
            status.retry_delay(),
            Some(std::time::Duration::from_secs(3))
        );
    }

    #[test]
    fn code_names_follow_the_grpc_table() {
        assert_eq!(code::name(code::OK), "OK");
        assert_eq!(code::name(code::INVALID_ARGUMENT), "INVALID_ARGUMENT");
        assert_eq!(code::name(code::UNAUTHENTICATED), "UNAUTHENTICATED");
        assert_eq!(code::name(17), "UNRECOGNIZED");
        assert_eq!(code::name(-1), "UNRECOGNIZED");
    }

    #[cfg(feature = "http")]
    #[test]
    fn json_status_renders_retry_delay_as_duration_string() {
        let json = status_json(
            code::UNAVAILABLE,
            "busy",
            Some(std::time::Duration::from_secs(2)),
        );
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["code"], 14);
        assert_eq!(v["details"][0]["retryDelay"], "2.000000000s");
        let plain = status_json(code::INVALID_ARGUMENT, "bad", None);
        let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(v["details"].as_array().map(Vec::len), Some(0));
    }
}
