//! The OTLP specification's retry rules for gRPC status codes and HTTP
//! statuses, and the gRPC status code table: pure functions with no protocol
//! library behind them, shared by otlp-transport's exporters and (with the
//! `tonic` feature) by [`Classify`](crate::Classify) for `tonic::Status`.

use std::time::Duration;

use crate::{MAX_THROTTLE, Retryability};

/// gRPC status codes (numbers from the gRPC specification).
pub mod code {
    /// Not an error.
    pub const OK: i32 = 0;
    /// The operation was cancelled.
    pub const CANCELLED: i32 = 1;
    /// Unknown error.
    pub const UNKNOWN: i32 = 2;
    /// The client sent an invalid argument.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// The deadline passed before the operation completed.
    pub const DEADLINE_EXCEEDED: i32 = 4;
    /// The requested entity (service, method, route) was not found.
    pub const NOT_FOUND: i32 = 5;
    /// The entity already exists.
    pub const ALREADY_EXISTS: i32 = 6;
    /// The caller may not do this.
    pub const PERMISSION_DENIED: i32 = 7;
    /// A resource (quota, size, memory) is exhausted.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// The system is not in the state the operation needs.
    pub const FAILED_PRECONDITION: i32 = 9;
    /// The operation was aborted.
    pub const ABORTED: i32 = 10;
    /// The operation went past the valid range.
    pub const OUT_OF_RANGE: i32 = 11;
    /// The operation is not implemented or supported.
    pub const UNIMPLEMENTED: i32 = 12;
    /// Internal error.
    pub const INTERNAL: i32 = 13;
    /// The service is currently unavailable.
    pub const UNAVAILABLE: i32 = 14;
    /// Unrecoverable data loss.
    pub const DATA_LOSS: i32 = 15;
    /// The request has no valid credentials.
    pub const UNAUTHENTICATED: i32 = 16;

    /// The canonical name of a status code (`UNRECOGNIZED` for a number the
    /// specification does not define).
    pub fn name(code: i32) -> &'static str {
        const NAMES: [&str; 17] = [
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        ];
        usize::try_from(code)
            .ok()
            .and_then(|i| NAMES.get(i))
            .copied()
            .unwrap_or("UNRECOGNIZED")
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

#[cfg(feature = "tonic")]
mod tonic_status {
    use crate::{Classify, Retryability};

    use super::{code, grpc_retryability};

    /// The OTLP/gRPC rules ([`grpc_retryability`]) for a status a tonic
    /// client returned, so a plain tonic client can sit under
    /// otlp-resilience's layers without a newtype. A `RetryInfo` detail is
    /// not read here (that takes the `google.rpc` messages of
    /// otlp-transport): `RESOURCE_EXHAUSTED` without one is permanent, as the
    /// specification says.
    impl Classify for tonic::Status {
        fn classify(&self) -> Retryability {
            grpc_retryability(self.code() as i32, self.message(), None)
        }

        fn is_connection_error(&self) -> bool {
            // tonic reports a failed connection as UNAVAILABLE with the
            // transport error as its source.
            self.code() == tonic::Code::Unavailable && std::error::Error::source(self).is_some()
        }

        fn is_invalid_request(&self) -> bool {
            self.code() as i32 == code::INVALID_ARGUMENT
        }
    }
}

#[cfg(test)]
mod tests;
