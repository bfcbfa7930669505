//! The environment as a source of settings: the OpenTelemetry
//! `OTEL_EXPORTER_OTLP_*` variables (with per-signal variants) and the seed's
//! short forms `OTLP_ENDPOINT`, `OTLP_PROTOCOL`, `OTLP_TIMEOUT`, `OTLP_PRESET`.
//!
//! The environment is injected as a map ([`Env::from_map`] or
//! [`Env::from_lookup`]); only the binary calls [`Env::from_process`].

use std::collections::BTreeMap;

/// Generic endpoint (default `http://localhost:4317` for grpc, `http://localhost:4318` for HTTP);
/// for HTTP `v1/<signal>` is appended (`v1development/profiles` for profiles).
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Traces endpoint, used as given (default: the generic endpoint + `v1/traces` for HTTP).
pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// Metrics endpoint, used as given (default: the generic endpoint + `v1/metrics` for HTTP).
pub const OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
/// Logs endpoint, used as given (default: the generic endpoint + `v1/logs` for HTTP).
pub const OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
/// Profiles endpoint, used as given (default: the generic endpoint +
/// `v1development/profiles` for HTTP).
pub const OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT";
/// Protocol: `grpc` (default), `http/protobuf` or `http/json`.
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// Traces protocol (default: the generic protocol).
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// Metrics protocol (default: the generic protocol).
pub const OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL";
/// Logs protocol (default: the generic protocol).
pub const OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL";
/// Profiles protocol (default: the generic protocol).
pub const OTEL_EXPORTER_OTLP_PROFILES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROFILES_PROTOCOL";
/// Headers as `key=value,key2=value2`, percent-decoded (default: none).
pub const OTEL_EXPORTER_OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// Traces headers (default: the generic headers).
pub const OTEL_EXPORTER_OTLP_TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
/// Metrics headers (default: the generic headers).
pub const OTEL_EXPORTER_OTLP_METRICS_HEADERS: &str = "OTEL_EXPORTER_OTLP_METRICS_HEADERS";
/// Logs headers (default: the generic headers).
pub const OTEL_EXPORTER_OTLP_LOGS_HEADERS: &str = "OTEL_EXPORTER_OTLP_LOGS_HEADERS";
/// Profiles headers (default: the generic headers).
pub const OTEL_EXPORTER_OTLP_PROFILES_HEADERS: &str = "OTEL_EXPORTER_OTLP_PROFILES_HEADERS";
/// Compression: `none` (default), `gzip` or `zstd`.
pub const OTEL_EXPORTER_OTLP_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
/// Traces compression (default: the generic compression).
pub const OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION";
/// Metrics compression (default: the generic compression).
pub const OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION";
/// Logs compression (default: the generic compression).
pub const OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION";
/// Profiles compression (default: the generic compression).
pub const OTEL_EXPORTER_OTLP_PROFILES_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_PROFILES_COMPRESSION";
/// Export timeout in milliseconds (default 10000).
pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// Traces export timeout in milliseconds (default: the generic timeout).
pub const OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
/// Metrics export timeout in milliseconds (default: the generic timeout).
pub const OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT";
/// Logs export timeout in milliseconds (default: the generic timeout).
pub const OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT";
/// Profiles export timeout in milliseconds (default: the generic timeout).
pub const OTEL_EXPORTER_OTLP_PROFILES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_PROFILES_TIMEOUT";
/// CA certificate PEM file (default: the system roots).
pub const OTEL_EXPORTER_OTLP_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
/// Traces CA certificate PEM file (default: the generic one).
pub const OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE";
/// Metrics CA certificate PEM file (default: the generic one).
pub const OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE";
/// Logs CA certificate PEM file (default: the generic one).
pub const OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE";
/// Profiles CA certificate PEM file (default: the generic one).
pub const OTEL_EXPORTER_OTLP_PROFILES_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_PROFILES_CERTIFICATE";
/// Client private key PEM file for mutual TLS (default: none).
pub const OTEL_EXPORTER_OTLP_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";
/// Traces client private key PEM file (default: the generic one).
pub const OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY";
/// Metrics client private key PEM file (default: the generic one).
pub const OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY";
/// Logs client private key PEM file (default: the generic one).
pub const OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY";
/// Profiles client private key PEM file (default: the generic one).
pub const OTEL_EXPORTER_OTLP_PROFILES_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_PROFILES_CLIENT_KEY";
/// Client certificate PEM file for mutual TLS (default: none).
pub const OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
/// Traces client certificate PEM file (default: the generic one).
pub const OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: &str =
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE";
/// Metrics client certificate PEM file (default: the generic one).
pub const OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE: &str =
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE";
/// Logs client certificate PEM file (default: the generic one).
pub const OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE: &str =
    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE";
/// Profiles client certificate PEM file (default: the generic one).
pub const OTEL_EXPORTER_OTLP_PROFILES_CLIENT_CERTIFICATE: &str =
    "OTEL_EXPORTER_OTLP_PROFILES_CLIENT_CERTIFICATE";
/// For a gRPC endpoint written without a scheme (`collector:4317`): `true`
/// for plaintext, `false` (default) for TLS, as the OTLP specification says.
/// It has no effect on an endpoint with a scheme and never skips certificate
/// verification (that is `tls.insecure_skip_verify`, which has no variable).
pub const OTEL_EXPORTER_OTLP_INSECURE: &str = "OTEL_EXPORTER_OTLP_INSECURE";
/// Traces variant of [`OTEL_EXPORTER_OTLP_INSECURE`] (default: the generic one).
pub const OTEL_EXPORTER_OTLP_TRACES_INSECURE: &str = "OTEL_EXPORTER_OTLP_TRACES_INSECURE";
/// Metrics variant of [`OTEL_EXPORTER_OTLP_INSECURE`] (default: the generic one).
pub const OTEL_EXPORTER_OTLP_METRICS_INSECURE: &str = "OTEL_EXPORTER_OTLP_METRICS_INSECURE";
/// Logs variant of [`OTEL_EXPORTER_OTLP_INSECURE`] (default: the generic one).
pub const OTEL_EXPORTER_OTLP_LOGS_INSECURE: &str = "OTEL_EXPORTER_OTLP_LOGS_INSECURE";
/// Profiles variant of [`OTEL_EXPORTER_OTLP_INSECURE`] (default: the generic one).
pub const OTEL_EXPORTER_OTLP_PROFILES_INSECURE: &str = "OTEL_EXPORTER_OTLP_PROFILES_INSECURE";
/// The seed's short form of [`OTEL_EXPORTER_OTLP_ENDPOINT`]; the spec name wins when both are set.
pub const OTLP_ENDPOINT: &str = "OTLP_ENDPOINT";
/// The seed's short form of [`OTEL_EXPORTER_OTLP_PROTOCOL`]; the spec name wins when both are set.
pub const OTLP_PROTOCOL: &str = "OTLP_PROTOCOL";
/// The seed's short form of [`OTEL_EXPORTER_OTLP_TIMEOUT`], in **seconds** (default 10);
/// the spec name wins when both are set.
pub const OTLP_TIMEOUT: &str = "OTLP_TIMEOUT";
/// The preset (`low_latency`, `balanced` (default), `high_throughput`).
pub const OTLP_PRESET: &str = "OTLP_PRESET";
/// The `otlp-client` binary's log filter (default `info`), read by its
/// `--log-level` flag, not by this crate; listed so it is not reported as unknown.
pub const OTLP_LOG: &str = "OTLP_LOG";
/// The metrics temporality preference, `cumulative` (default), `delta` or
/// `lowmemory`, case-insensitive (the OTLP exporter spec's variable).
pub const OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: &str =
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
/// The `service.name` of the resource the library and `otlp-client send`
/// produce; it wins over a `service.name` in [`OTEL_RESOURCE_ATTRIBUTES`].
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// Resource attributes as `key=value,key2=value2`, percent-decoded (default:
/// none); a malformed entry is a warning and the others apply.
pub const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";

/// Variables read elsewhere (by the binary), known so they are not reported.
pub(crate) const READ_ELSEWHERE: &[&str] = &[OTLP_LOG];

/// How an environment variable's text becomes a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EnvFormat {
    /// Taken as written.
    Plain,
    /// Whole milliseconds (the spec's `*_TIMEOUT`).
    Millis,
    /// Whole seconds, or a duration with unit (the seed's `OTLP_TIMEOUT`).
    Seconds,
    /// `key=value,...` with percent-decoding.
    Headers,
    /// `true` / `false`, case-insensitive.
    Bool,
    /// `key=value,...` with percent-decoding, where a malformed entry is only a warning.
    Attributes,
    /// Taken lower-cased (the spec's case-insensitive enum values).
    Lower,
}

/// The environment variables this crate reads, as a map from name to value.
///
/// Empty values count as unset, as the OpenTelemetry spec says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

// === impl Env ===

impl Env {
    /// An environment with no variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `OTEL_*` and `OTLP_*` variables of this process (non-UTF-8 values are skipped).
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("OTEL_") || k.starts_with("OTLP_"));
        Self::from_map(vars)
    }

    /// An environment from name/value pairs.
    pub fn from_map<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// An environment that asks `lookup` for each variable this crate knows.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self::from_map(
            table()
                .into_iter()
                .filter_map(|(name, _, _)| lookup(&name).map(|v| (name, v))),
        )
    }

    /// Adds or replaces one variable.
    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// The value of `name`, `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// All variables, sorted by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Every variable read, in application order: short forms first so the spec
/// names, applied later, win. Each maps to a config key and a format.
pub(crate) fn table() -> Vec<(String, String, EnvFormat)> {
    let mut out = vec![
        (
            OTLP_PRESET.to_owned(),
            "preset".to_owned(),
            EnvFormat::Plain,
        ),
        (
            OTLP_ENDPOINT.to_owned(),
            "endpoint".to_owned(),
            EnvFormat::Plain,
        ),
        (
            OTLP_PROTOCOL.to_owned(),
            "protocol".to_owned(),
            EnvFormat::Plain,
        ),
        (
            OTLP_TIMEOUT.to_owned(),
            "timeout".to_owned(),
            EnvFormat::Seconds,
        ),
    ];
    let fields: [(&str, &str, EnvFormat); 9] = [
        ("ENDPOINT", "endpoint", EnvFormat::Plain),
        ("PROTOCOL", "protocol", EnvFormat::Plain),
        ("HEADERS", "headers", EnvFormat::Headers),
        ("COMPRESSION", "compression", EnvFormat::Plain),
        ("TIMEOUT", "timeout", EnvFormat::Millis),
        ("CERTIFICATE", "tls.ca_file", EnvFormat::Plain),
        ("CLIENT_KEY", "tls.key_file", EnvFormat::Plain),
        ("CLIENT_CERTIFICATE", "tls.cert_file", EnvFormat::Plain),
        ("INSECURE", "tls.insecure", EnvFormat::Bool),
    ];
    for (suffix, key, format) in fields {
        out.push((
            format!("OTEL_EXPORTER_OTLP_{suffix}"),
            key.to_owned(),
            format,
        ));
    }
    for signal in otlp_core::Signal::ALL {
        let upper = signal.as_str().to_ascii_uppercase();
        for (suffix, key, format) in fields {
            out.push((
                format!("OTEL_EXPORTER_OTLP_{upper}_{suffix}"),
                format!("{signal}.{key}"),
                format,
            ));
        }
    }
    out.extend([
        (
            OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE.to_owned(),
            "metrics.temporality_preference".to_owned(),
            EnvFormat::Lower,
        ),
        (
            OTEL_RESOURCE_ATTRIBUTES.to_owned(),
            "resource_attributes".to_owned(),
            EnvFormat::Attributes,
        ),
        (
            OTEL_SERVICE_NAME.to_owned(),
            "service_name".to_owned(),
            EnvFormat::Plain,
        ),
    ]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_keys_exist_and_constants_are_in_table() {
        let t = table();
        for (_, key, _) in &t {
            assert!(crate::schema::lookup(key).is_some(), "{key}");
        }
        for name in [
            OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE,
            OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT,
            OTEL_EXPORTER_OTLP_PROFILES_INSECURE,
            OTEL_EXPORTER_OTLP_METRICS_INSECURE,
            OTLP_TIMEOUT,
        ] {
            assert!(t.iter().any(|(n, _, _)| n == name), "{name}");
        }
        assert_eq!(t.len(), 4 + 9 * (1 + otlp_core::Signal::COUNT) + 3);
    }

    #[test]
    fn empty_values_count_as_unset_and_lookup_asks_known_names() {
        let env = Env::from_map([("OTLP_ENDPOINT", " ")]);
        assert_eq!(env.get("OTLP_ENDPOINT"), None);
        let env = Env::from_lookup(|n| (n == OTLP_PROTOCOL).then(|| "grpc".to_owned()));
        assert_eq!(env.get(OTLP_PROTOCOL), Some("grpc"));
        assert_eq!(env.iter().count(), 1);
    }
}
