//! The three OpenTelemetry signals and their fixed OTLP names and paths.

use std::{fmt, str::FromStr};

/// One of the three OpenTelemetry signals carried over OTLP.
///
/// Each signal has its own export request type, HTTP path and gRPC method.
/// The names are fixed by the OTLP specification, so they are safe to use as
/// metric label values (the set is bounded).
///
/// ```
/// use otlp_core::Signal;
///
/// assert_eq!(Signal::Traces.http_path(), "/v1/traces");
/// assert_eq!("logs".parse::<Signal>(), Ok(Signal::Logs));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Spans (`ExportTraceServiceRequest`).
    Traces,
    /// Metric data points (`ExportMetricsServiceRequest`).
    Metrics,
    /// Log records (`ExportLogsServiceRequest`).
    Logs,
}

/// The error returned when a string names no signal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal '{0}': use traces, metrics or logs")]
pub struct UnknownSignal(pub String);

// === impl Signal ===

impl Signal {
    /// All signals, in a fixed order (traces, metrics, logs).
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The lower-case name used in config keys, environment variables and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// The OTLP/HTTP path of this signal's export endpoint, e.g. `/v1/traces`.
    pub const fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }

    /// The fully qualified gRPC service name of this signal's collector service.
    pub const fn grpc_service(self) -> &'static str {
        match self {
            Signal::Traces => "opentelemetry.proto.collector.trace.v1.TraceService",
            Signal::Metrics => "opentelemetry.proto.collector.metrics.v1.MetricsService",
            Signal::Logs => "opentelemetry.proto.collector.logs.v1.LogsService",
        }
    }

    /// The gRPC method path of this signal's export call, e.g.
    /// `/opentelemetry.proto.collector.trace.v1.TraceService/Export`.
    pub const fn grpc_path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        }
    }

    /// The name of one item of this signal, for reports ("spans", "data points", "log records").
    pub const fn item_name(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "data points",
            Signal::Logs => "log records",
        }
    }

    /// The signal's position in [`Signal::ALL`], handy for per-signal arrays.
    pub const fn index(self) -> usize {
        match self {
            Signal::Traces => 0,
            Signal::Metrics => 1,
            Signal::Logs => 2,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Signal {
    type Err = UnknownSignal;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "traces" | "trace" | "spans" => Ok(Signal::Traces),
            "metrics" | "metric" => Ok(Signal::Metrics),
            "logs" | "log" => Ok(Signal::Logs),
            _ => Err(UnknownSignal(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_matches_all() {
        for (i, s) in Signal::ALL.into_iter().enumerate() {
            assert_eq!(s.as_str().parse::<Signal>(), Ok(s));
            assert_eq!(s.index(), i);
            assert!(s.grpc_path().starts_with('/'));
            assert!(s.grpc_path().ends_with("/Export"));
            assert!(s.grpc_path().contains(s.grpc_service()));
        }
        assert_eq!(
            "span".parse::<Signal>(),
            Err(UnknownSignal("span".to_owned()))
        );
    }
}
