//! The OpenTelemetry signals OTLP carries and their fixed names and paths.

use std::{fmt, str::FromStr};

/// One of the OpenTelemetry signals carried over OTLP: the three stable ones
/// and profiles (OTLP `v1development`).
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
    /// Profiles (`ExportProfilesServiceRequest`, OTLP `v1development`).
    ///
    /// Its requests carry a dictionary (field 2) that their profiles index
    /// into, so two of them do not join by appending bytes (see
    /// [`Signal::joins_by_concatenation`]).
    Profiles,
}

/// The error returned when a string names no signal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal '{0}': use traces, metrics, logs or profiles")]
pub struct UnknownSignal(pub String);

// === impl Signal ===

impl Signal {
    /// How many signals there are: the length of per-signal arrays.
    pub const COUNT: usize = 4;

    /// All signals, in a fixed order (traces, metrics, logs, profiles): the
    /// order of [`Signal::index`].
    pub const ALL: [Signal; Signal::COUNT] = [
        Signal::Traces,
        Signal::Metrics,
        Signal::Logs,
        Signal::Profiles,
    ];

    /// The lower-case name used in config keys, environment variables and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
            Signal::Profiles => "profiles",
        }
    }

    /// The OTLP/HTTP path of this signal's export endpoint, e.g. `/v1/traces`.
    pub const fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
            Signal::Profiles => "/v1development/profiles",
        }
    }

    /// The fully qualified gRPC service name of this signal's collector service.
    pub const fn grpc_service(self) -> &'static str {
        match self {
            Signal::Traces => "opentelemetry.proto.collector.trace.v1.TraceService",
            Signal::Metrics => "opentelemetry.proto.collector.metrics.v1.MetricsService",
            Signal::Logs => "opentelemetry.proto.collector.logs.v1.LogsService",
            Signal::Profiles => {
                "opentelemetry.proto.collector.profiles.v1development.ProfilesService"
            }
        }
    }

    /// The gRPC method path of this signal's export call, e.g.
    /// `/opentelemetry.proto.collector.trace.v1.TraceService/Export`.
    pub const fn grpc_path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            Signal::Profiles => {
                "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
            }
        }
    }

    /// The name of the items of this signal, for reports ("spans", "data
    /// points", "log records", "profiles").
    pub const fn item_name(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "data points",
            Signal::Logs => "log records",
            Signal::Profiles => "profiles",
        }
    }

    /// The signal's position in [`Signal::ALL`], handy for per-signal arrays
    /// (`[T; Signal::COUNT]`). New signals are added at the end, so the
    /// numbers of the others never change (the disk queue stores them).
    pub const fn index(self) -> usize {
        match self {
            Signal::Traces => 0,
            Signal::Metrics => 1,
            Signal::Logs => 2,
            Signal::Profiles => 3,
        }
    }

    /// Whether two encoded requests of this signal join into one valid
    /// request by appending their bytes (protobuf merge semantics).
    ///
    /// True for traces, metrics and logs. Not for profiles: each
    /// `ExportProfilesServiceRequest` carries a `dictionary` (field 2) whose
    /// tables its profiles refer to by index; appending two requests merges
    /// the dictionaries into one, table after table, and the second request's
    /// indexes then point at the first one's entries. Profiles requests are
    /// therefore forwarded one by one, never joined.
    pub const fn joins_by_concatenation(self) -> bool {
        !matches!(self, Signal::Profiles)
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
            "profiles" | "profile" => Ok(Signal::Profiles),
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
        assert_eq!(Signal::ALL.len(), Signal::COUNT);
    }

    #[test]
    fn profiles_has_the_otlp_development_names() {
        let p = Signal::Profiles;
        assert_eq!(p.http_path(), "/v1development/profiles");
        assert_eq!(
            p.grpc_path(),
            "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
        );
        assert_eq!(p.index(), 3, "added after the three stable signals");
        assert!(!p.joins_by_concatenation());
        assert!(Signal::Logs.joins_by_concatenation());
    }
}
