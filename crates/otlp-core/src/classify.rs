//! How a failed export is classified: retry it, wait and retry it, split it, or give up.

use std::time::Duration;

/// The longest a server's throttle hint (gRPC `RetryInfo`, HTTP `Retry-After`)
/// is obeyed: five minutes, so a misbehaving server cannot park an exporter
/// for hours. The one source of this cap: the transport caps the hints it
/// parses, and the retry layer caps the delay it waits, with this value.
pub const MAX_THROTTLE: Duration = Duration::from_secs(300);

/// The default deadline of one export attempt: 10 s, the OTLP
/// specification's `OTEL_EXPORTER_OTLP_TIMEOUT` default. The one source of
/// this default for the config, the transport and the retry layer.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default export retry schedule: the one home of these defaults, which
/// the config (`retry.*`), the retry layer (`RetryPolicy::default`) and so
/// `explain-config` share.
///
/// 1 s doubling to 30 s with 20 % jitter, for at most five minutes (with the
/// memory queue): what the agent has always run with and what the shipped
/// ConfigMap and troubleshooting guide show. It recovers from a short
/// outage within seconds; the Collector's slower 5 s x 1.5 schedule (with
/// 50 % jitter) is one `retry:` section away.
pub mod retry_defaults {
    use std::time::Duration;

    /// First backoff (`retry.initial_backoff`).
    pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
    /// Backoff growth per retry (`retry.multiplier`).
    pub const MULTIPLIER: f64 = 2.0;
    /// Cap on one backoff (`retry.max_backoff`).
    pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
    /// Random fraction of each backoff (`retry.jitter`).
    pub const JITTER: f64 = 0.2;
    /// Total time a batch is retried (`retry.max_elapsed`; with the disk
    /// queue the config's default is no limit).
    pub const MAX_ELAPSED: Duration = Duration::from_secs(300);
}

/// What a failed export means for the data it carried.
///
/// Every error type in otlp-rust implements [`Classify`] and maps itself onto
/// one of these, following the OTLP specification's rules for gRPC codes and
/// HTTP statuses (the mapping tables live in `otlp-transport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retryability {
    /// A transient failure: the same request may succeed later (e.g. gRPC
    /// `UNAVAILABLE`, HTTP 503, a refused connection).
    Retryable,
    /// The server asked us to slow down and said for how long (gRPC `RetryInfo`,
    /// HTTP `Retry-After`). The next attempt must wait at least this long.
    Throttled(Duration),
    /// Retrying the same bytes cannot succeed (e.g. gRPC `INVALID_ARGUMENT`, HTTP 400).
    Permanent,
    /// The request was refused for its size (HTTP 413, gRPC message too large):
    /// it may succeed when split into smaller requests.
    TooLarge,
}

/// Classifies an error for retry and recovery decisions.
///
/// Layers in `otlp-resilience` are generic over the error type and only need
/// this trait, so they can wrap any tower service, not just ours.
///
/// ```
/// use otlp_core::{Classify, Retryability};
///
/// #[derive(Debug)]
/// struct Refused;
///
/// impl Classify for Refused {
///     fn classify(&self) -> Retryability {
///         Retryability::Retryable
///     }
///     fn is_connection_error(&self) -> bool {
///         true
///     }
/// }
///
/// assert!(Refused.classify().is_retryable());
/// ```
pub trait Classify {
    /// How the failed request should be treated.
    fn classify(&self) -> Retryability;

    /// Whether the failure happened at the connection level (DNS, connect,
    /// TLS handshake, reset), so that re-establishing the connection may help.
    fn is_connection_error(&self) -> bool {
        false
    }

    /// Whether the server refused the request's *content* as invalid (gRPC
    /// `INVALID_ARGUMENT`, HTTP 400), so that a request joined from several
    /// senders' requests may succeed once the bad one is taken out of it.
    /// Other permanent failures (authentication, a wrong path) fail every
    /// part alike and answer `false`.
    fn is_invalid_request(&self) -> bool {
        false
    }
}

// === impl Retryability ===

impl Retryability {
    /// Whether the same request may be sent again (retryable or throttled).
    pub const fn is_retryable(self) -> bool {
        matches!(self, Retryability::Retryable | Retryability::Throttled(_))
    }

    /// The server's throttle hint, if any.
    pub const fn throttle(self) -> Option<Duration> {
        match self {
            Retryability::Throttled(d) => Some(d),
            _ => None,
        }
    }

    /// A short, fixed label for metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Retryability::Retryable => "retryable",
            Retryability::Throttled(_) => "throttled",
            Retryability::Permanent => "permanent",
            Retryability::TooLarge => "too_large",
        }
    }
}

impl<T: Classify + ?Sized> Classify for Box<T> {
    fn classify(&self) -> Retryability {
        (**self).classify()
    }

    fn is_invalid_request(&self) -> bool {
        (**self).is_invalid_request()
    }

    fn is_connection_error(&self) -> bool {
        (**self).is_connection_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_retryable_and_throttled_are_retried() {
        assert!(Retryability::Retryable.is_retryable());
        assert!(Retryability::Throttled(Duration::from_secs(1)).is_retryable());
        assert!(!Retryability::Permanent.is_retryable());
        assert!(!Retryability::TooLarge.is_retryable());
        assert_eq!(
            Retryability::Throttled(Duration::from_millis(300)).throttle(),
            Some(Duration::from_millis(300))
        );
        assert_eq!(Retryability::Retryable.throttle(), None);
    }
}
