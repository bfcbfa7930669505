//! The few `google.rpc` messages the receivers answer with (`Status`,
//! `RetryInfo`), defined locally so no extra crate is needed for three structs.

use std::time::Duration;

use prost::Message;

/// gRPC status codes used in answers and in `google.rpc.Status` bodies.
// Without HTTP, only UNAVAILABLE is used here (tonic names the others itself).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) mod code {
    pub(crate) const INVALID_ARGUMENT: i32 = 3;
    pub(crate) const DEADLINE_EXCEEDED: i32 = 4;
    pub(crate) const NOT_FOUND: i32 = 5;
    pub(crate) const RESOURCE_EXHAUSTED: i32 = 8;
    pub(crate) const UNIMPLEMENTED: i32 = 12;
    pub(crate) const INTERNAL: i32 = 13;
    pub(crate) const UNAVAILABLE: i32 = 14;
}

/// The type URL of `google.rpc.RetryInfo` inside a `google.protobuf.Any`.
pub(crate) const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    #[prost(string, tag = "2")]
    pub(crate) message: String,
    #[prost(message, repeated, tag = "3")]
    pub(crate) details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ProtoAny {
    #[prost(string, tag = "1")]
    pub(crate) type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub(crate) retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub(crate) seconds: i64,
    #[prost(int32, tag = "2")]
    pub(crate) nanos: i32,
}

/// The encoded `google.rpc.RetryInfo` asking the client to wait `delay`.
pub(crate) fn retry_info(delay: Duration) -> Vec<u8> {
    RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        }),
    }
    .encode_to_vec()
}

/// The encoded `google.rpc.Status`, with a `RetryInfo` detail when `retry` is set.
pub(crate) fn status(code: i32, message: &str, retry: Option<Duration>) -> Vec<u8> {
    RpcStatus {
        code,
        message: message.to_owned(),
        details: retry
            .map(|d| ProtoAny {
                type_url: RETRY_INFO_TYPE_URL.to_owned(),
                value: retry_info(d),
            })
            .into_iter()
            .collect(),
    }
    .encode_to_vec()
}

/// The `google.rpc.Status` in OTLP/JSON form (proto3 JSON mapping).
#[cfg(feature = "http")]
pub(crate) fn status_json(code: i32, message: &str, retry: Option<Duration>) -> Vec<u8> {
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
        let bytes = status(code::UNAVAILABLE, "busy", Some(Duration::from_millis(1500)));
        let decoded = RpcStatus::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.code, code::UNAVAILABLE);
        assert_eq!(decoded.message, "busy");
        assert_eq!(decoded.details.len(), 1);
        assert_eq!(decoded.details[0].type_url, RETRY_INFO_TYPE_URL);
        let info = RetryInfo::decode(decoded.details[0].value.as_slice()).unwrap();
        assert_eq!(
            info.retry_delay,
            Some(ProtoDuration {
                seconds: 1,
                nanos: 500_000_000
            })
        );
    }

    #[cfg(feature = "http")]
    #[test]
    fn json_status_renders_retry_delay_as_duration_string() {
        let json = status_json(code::UNAVAILABLE, "busy", Some(Duration::from_secs(2)));
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["code"], 14);
        assert_eq!(v["details"][0]["retryDelay"], "2.000000000s");
        let plain = status_json(code::INVALID_ARGUMENT, "bad", None);
        let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(v["details"].as_array().map(Vec::len), Some(0));
    }
}
