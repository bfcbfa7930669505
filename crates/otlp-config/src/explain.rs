//! "explain-config": the effective config with the source of every value,
//! per-signal endpoints resolved, and secrets redacted.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::{
    model::Config,
    resolve::{Resolved, Sources},
    schema::{self, Kind},
    source::{Problem, Raw, Severity, Source},
    units,
};

/// What replaces a secret-bearing header's value and a URL password in explanations.
pub const REDACTED: &str = "<redacted>";

/// Where the metrics temporality preference applies, shown beside it.
const TEMPORALITY_NOTE: &str = "(the SDK bridge's OtlpMetricExporter; no effect on an agent, which forwards metrics as received)";

/// Header names whose value is a credential, compared case-insensitively.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-honeycomb-team",
];
/// A header whose name contains one of these carries a credential.
const SECRET_PARTS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "auth",
    "credential",
];
/// A header whose name has one of these as a word (between `-`, `_` or `.`) carries a credential.
const SECRET_WORDS: &[&str] = &["key", "apikey", "dsn"];

/// The effective config, explained: each key's value and source, then each
/// signal's resolved export settings.
#[derive(Clone, Debug)]
pub struct Explained {
    /// Every config key with its effective value (redacted) and source.
    pub entries: Vec<ExplainEntry>,
    /// The resolved export settings per signal.
    pub signals: Vec<ExplainSignal>,
    /// The problems found while resolving.
    pub problems: Vec<Problem>,
}

/// One key of [`Explained`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainEntry {
    /// The dotted key.
    pub key: String,
    /// The effective value as text, secrets redacted; `(unset)` when it has none.
    pub value: String,
    /// Where the value came from.
    pub source: Source,
}

/// One signal of [`Explained`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainSignal {
    /// `traces`, `metrics` or `logs`.
    pub signal: String,
    /// The resolved endpoint (URL password redacted).
    pub endpoint: String,
    /// The key the endpoint came from (`traces.endpoint`, `endpoint`) or `default`.
    pub endpoint_from: String,
    /// The protocol.
    pub protocol: String,
    /// Headers, with the values of secret-bearing ones (see [`is_secret_header`]) redacted.
    pub headers: Vec<(String, String)>,
    /// The deadline of each export attempt (every retry gets its own).
    pub timeout: String,
    /// The compression.
    pub compression: String,
    /// Whether TLS is used (https endpoint).
    pub tls: bool,
    /// With `loadbalancing:`, the backend set this signal is balanced over
    /// (URLs redacted) and how it is found; `None` without it.
    pub backends: Option<ExplainBackends>,
}

/// The backend set of a load-balanced signal, as `explain-config` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainBackends {
    /// The routing key (`trace_id`, `service`, `resource`, `round_robin`).
    pub routing_key: String,
    /// Where the set comes from (`static list (...)`, `dns NAME:PORT`).
    pub resolver: String,
    /// The backends, when known without the network (a static list); empty
    /// for DNS, resolved at run time.
    pub endpoints: Vec<String>,
}

/// Resolves `sources` and explains the result.
pub fn explain(sources: &Sources) -> Explained {
    sources.resolve().explain()
}

// === impl Resolved (explain) ===

impl Resolved {
    /// Explains this resolution; see [`Explained`].
    pub fn explain(&self) -> Explained {
        let config = &self.config;
        let mut entries = Vec::new();
        for def in schema::keys() {
            let key = def.key;
            let setting = self.settings.get(key);
            let is_signal_key = otlp_core::Signal::ALL.iter().any(|s| {
                key.strip_prefix(s.as_str())
                    .is_some_and(|k| k.starts_with('.'))
            });
            if setting.is_none() && is_signal_key {
                // Shown resolved in the per-signal section instead.
                continue;
            }
            let value = match setting {
                Some(_) if key == "metrics.temporality_preference" => {
                    format!("{} {TEMPORALITY_NOTE}", config.metrics_temporality.as_str())
                }
                Some(s) => match &s.raw {
                    Raw::Text(t) if def.kind == Kind::Url => redact_url(t),
                    Raw::Text(t) => t.clone(),
                    Raw::Null => "(empty)".into(),
                    Raw::Map(pairs) => redact_headers(pairs),
                    Raw::List(items) => items
                        .iter()
                        .map(|u| redact_url(u))
                        .collect::<Vec<_>>()
                        .join(", "),
                },
                None => default_value(config, key),
            };
            let source = match setting {
                Some(s) => s.source.clone(),
                None if is_preset_key(key) => Source::Preset(config.preset),
                None => Source::Default,
            };
            entries.push(ExplainEntry {
                key: key.to_owned(),
                value,
                source,
            });
        }
        let signals = config
            .signals
            .iter()
            .map(|sc| {
                let src = &self.signal_sources[sc.signal.index()];
                ExplainSignal {
                    signal: sc.signal.as_str().to_owned(),
                    endpoint: redact_url(&sc.endpoint),
                    endpoint_from: src.endpoint.clone().unwrap_or_else(|| "default".into()),
                    protocol: sc.protocol.as_str().to_owned(),
                    headers: sc
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), shown_header_value(k, v)))
                        .collect(),
                    timeout: units::format_duration(sc.timeout),
                    compression: sc.compression.as_str().to_owned(),
                    tls: sc
                        .endpoint
                        .trim()
                        .to_ascii_lowercase()
                        .starts_with("https://"),
                    backends: config.loadbalancing.as_ref().map(|lb| ExplainBackends {
                        routing_key: lb.routing_key.as_str().to_owned(),
                        resolver: lb.resolver.describe(),
                        endpoints: lb
                            .resolver
                            .static_backends(sc.signal, sc.protocol)
                            .unwrap_or_default()
                            .iter()
                            .map(|u| redact_url(u))
                            .collect(),
                    }),
                }
            })
            .collect();
        Explained {
            entries,
            signals,
            problems: self.problems.clone(),
        }
    }
}

// === impl Explained ===

impl Explained {
    /// Whether no problem is an error, so the effective values mean something.
    pub fn is_valid(&self) -> bool {
        !self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// A human-readable table: `key = value  (source)` lines, then the signals, then problems.
    ///
    /// When the config has errors, only the problems are listed (as
    /// `validate-config` prints them) and a verdict line: values that stand in
    /// for the broken ones would read as the config in force.
    pub fn render_text(&self) -> String {
        if !self.is_valid() {
            let mut out = String::new();
            for p in &self.problems {
                let _ = writeln!(out, "{p}");
            }
            let errors = self
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .count();
            let _ = writeln!(
                out,
                "the configuration is invalid ({errors} error(s), {} warning(s)); fix the errors above, then run explain-config again",
                self.problems.len() - errors
            );
            return out;
        }
        let width = self.entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
        let mut out =
            String::from("effective configuration (precedence: default < file < env < flag)\n\n");
        for e in &self.entries {
            let _ = writeln!(out, "{:width$} = {}  ({})", e.key, e.value, e.source);
        }
        let _ = writeln!(
            out,
            "\nfixed limits:\n  server throttle hints (gRPC RetryInfo, HTTP Retry-After) are obeyed up to {}",
            units::format_duration(otlp_core::MAX_THROTTLE)
        );
        out.push_str("\nresolved per signal:\n");
        for s in &self.signals {
            let headers = if s.headers.is_empty() {
                "none".to_owned()
            } else {
                s.headers
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "  {:8} {} via {} (from {}), timeout {} per attempt, compression {}, tls {}, headers {}",
                s.signal,
                s.endpoint,
                s.protocol,
                s.endpoint_from,
                s.timeout,
                s.compression,
                if s.tls { "on" } else { "off" },
                headers
            );
            if let Some(b) = &s.backends {
                if b.endpoints.is_empty() {
                    let _ = writeln!(
                        out,
                        "          load balanced by {} over {}: the set is resolved at run time (`otlp-client diagnose` resolves it once and lists it)",
                        b.routing_key, b.resolver
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "          load balanced by {} over {} backends: {} (the endpoint above is not used)",
                        b.routing_key,
                        b.endpoints.len(),
                        b.endpoints.join(", ")
                    );
                }
            }
        }
        if !self.problems.is_empty() {
            out.push_str("\nproblems:\n");
            for p in &self.problems {
                let _ = writeln!(out, "{p}");
            }
        }
        out
    }

    /// The same as JSON: `{"valid": true, "entries": [...], "signals": [...], "problems": [...]}`;
    /// when the config has errors, `{"valid": false, "entries": [], "signals": [], "problems": [...]}`.
    pub fn render_json(&self) -> String {
        let problems: Vec<Value> = self.problems.iter().map(problem_json).collect();
        if !self.is_valid() {
            return json!({"valid": false, "entries": [], "signals": [], "problems": problems})
                .to_string();
        }
        let entries: Vec<Value> = self
            .entries
            .iter()
            .map(|e| json!({"key": e.key, "value": e.value, "source": e.source.kind(), "from": e.source.to_string()}))
            .collect();
        let signals: Vec<Value> = self
            .signals
            .iter()
            .map(|s| {
                json!({
                    "signal": s.signal, "endpoint": s.endpoint, "endpoint_from": s.endpoint_from,
                    "protocol": s.protocol, "timeout": s.timeout, "compression": s.compression,
                    "tls": s.tls,
                    "headers": s.headers.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
                    "loadbalancing": s.backends.as_ref().map(|b| json!({
                        "routing_key": b.routing_key, "resolver": b.resolver, "backends": b.endpoints,
                    })),
                })
            })
            .collect();
        let limits = json!({"max_throttle": units::format_duration(otlp_core::MAX_THROTTLE)});
        json!({"valid": true, "entries": entries, "signals": signals, "limits": limits, "problems": problems})
            .to_string()
    }
}

pub(crate) fn problem_json(p: &Problem) -> Value {
    let (line, column) = match &p.source {
        Source::File { line, column, .. } => (Some(*line), Some(*column)),
        _ => (None, None),
    };
    json!({
        "path": p.path, "severity": p.severity.as_str(), "message": p.message,
        "hint": p.hint, "source": p.source.kind(), "location": p.location(),
        "line": line, "column": column,
    })
}

fn is_preset_key(key: &str) -> bool {
    key.starts_with("batch.")
        || key == "queue.max_items"
        || key == "queue.max_bytes"
        || key == "tuning.max_concurrency"
}

fn default_value(c: &Config, key: &str) -> String {
    let d = units::format_duration;
    let z = units::format_size;
    let first = &c.signals[0];
    match key {
        "preset" => c.preset.as_str().into(),
        "endpoint" => {
            "(per protocol: http://localhost:4317 grpc, http://localhost:4318 http)".into()
        }
        "protocol" => {
            "grpc (kept from the original guide; the OTLP spec's default is http/protobuf)".into()
        }
        "timeout" => d(first.timeout),
        "connect_timeout" => d(c.connect_timeout),
        "headers" => "(none)".into(),
        "compression" => "none".into(),
        "compression_level" => "1 (the fastest gzip / zstd level)".into(),
        "tls.insecure" => "false (a grpc endpoint without a scheme uses TLS)".into(),
        "tls.insecure_skip_verify" => "false".into(),
        "retry.max_retries" => c.retry.max_retries.map_or_else(
            || "unlimited (retry.max_elapsed bounds retrying)".into(),
            |n| n.to_string(),
        ),
        "retry.initial_backoff" => d(c.retry.initial_backoff),
        "retry.max_backoff" => d(c.retry.max_backoff),
        "retry.multiplier" => c.retry.multiplier.to_string(),
        "retry.jitter" => c.retry.jitter.to_string(),
        "retry.max_elapsed" => c.retry.max_elapsed.map_or_else(|| "forever (0)".into(), d),
        "batch.max_batch_size" => c.batch.max_batch_size.to_string(),
        "batch.max_batch_bytes" => z(c.batch.max_batch_bytes),
        "batch.batch_timeout" => d(c.batch.batch_timeout),
        "queue.max_items" => c.queue.max_items.to_string(),
        "queue.max_bytes" => z(c.queue.max_bytes),
        "queue.overflow" => c.queue.overflow.as_str().into(),
        "queue.persistent.max_bytes" => z(crate::resolve::DEFAULT_PERSISTENT_MAX_BYTES),
        "queue.persistent.fsync" => "true".into(),
        "tuning.adaptive" => c.tuning.adaptive.to_string(),
        "tuning.min_concurrency" => c.tuning.min_concurrency.to_string(),
        "tuning.max_concurrency" => c.tuning.max_concurrency.to_string(),
        "memory_limit" => z(c.memory_limit),
        "admin.listen" => c.admin.listen.to_string(),
        "receivers.enabled" => "false (`run` receives unless it is set to false)".into(),
        "receivers.intake_budget" => format!("{} (memory_limit / 4)", z(c.intake.budget)),
        "receivers.max_request_bytes" => z(c.intake.max_request_bytes),
        "receivers.max_decompressed_bytes" => z(c.intake.max_decompressed_bytes),
        "receivers.body_read_timeout" => d(c.intake.body_read_timeout),
        "receivers.idle_timeout" => d(c.intake.idle_timeout),
        "receivers.grpc" => crate::model::DEFAULT_RECEIVER_GRPC.into(),
        "receivers.http" => crate::model::DEFAULT_RECEIVER_HTTP.into(),
        "endpoints" => "(none)".into(),
        "loadbalancing.routing_key" => "trace_id".into(),
        "loadbalancing.resolver" => match &c.loadbalancing {
            Some(lb) => lb.resolver.describe(),
            None => "(off: no loadbalancing section)".into(),
        },
        "loadbalancing.endpoints" => "(none)".into(),
        "loadbalancing.dns.port" => crate::DEFAULT_LB_DNS_PORT.to_string(),
        "loadbalancing.dns.interval" => d(crate::DEFAULT_LB_DNS_INTERVAL),
        "loadbalancing.dns.timeout" => d(crate::DEFAULT_LB_DNS_TIMEOUT),
        "loadbalancing.dns.server" => "(the system resolver, /etc/resolv.conf)".into(),
        "service_name" => {
            "(unset: unknown_service for the library, otlp-client-send for `send`)".into()
        }
        "resource_attributes" => "(none)".into(),
        "metrics.temporality_preference" => {
            format!("{} {TEMPORALITY_NOTE}", c.metrics_temporality.as_str())
        }
        _ => "(unset)".into(),
    }
}

fn redact_headers(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return "(none)".into();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", shown_header_value(k, v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a header named `name` carries a credential, so its value is never
/// shown: the well-known ones (`authorization`, `proxy-authorization`,
/// `cookie`, `set-cookie`, `x-api-key`, `api-key`), any name containing
/// `token`, `secret`, `password`, `auth` or `credential`, and any name with
/// `key` as a word (`dd-api-key`, `signoz_ingestion_key`). Other values, such
/// as a tenant id, are shown so explain output can be checked.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    SECRET_HEADERS.contains(&name.as_str())
        || SECRET_PARTS.iter().any(|part| name.contains(part))
        || name
            .split(['-', '_', '.'])
            .any(|word| SECRET_WORDS.contains(&word))
}

/// The value to show for header `name`: [`REDACTED`] for a secret-bearing one.
fn shown_header_value(name: &str, value: &str) -> String {
    if is_secret_header(name) {
        REDACTED.to_owned()
    } else {
        value.to_owned()
    }
}

/// Replaces the password of `scheme://user:password@host` with [`REDACTED`].
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:{REDACTED}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        env::Env,
        source::{ConfigFile, Flags},
    };

    #[test]
    fn explain_names_each_source_and_redacts_secrets() {
        let env = Env::from_map([
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cret"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        let flags = Flags::new().with_flag("--endpoint", "endpoint", "https://u:pw@collector:4318");
        let ex = explain(&Sources::new().with_env(env).with_flags(flags));
        let text = ex.render_text();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains("pw@"), "{text}");
        let json = ex.render_json();
        assert!(!json.contains("s3cret") && !json.contains(":pw@"), "{json}");
        let endpoint = ex.entries.iter().find(|e| e.key == "endpoint").unwrap();
        assert_eq!(endpoint.source, Source::Flag("--endpoint".into()));
        let protocol = ex.entries.iter().find(|e| e.key == "protocol").unwrap();
        assert_eq!(
            protocol.source,
            Source::Env("OTEL_EXPORTER_OTLP_PROTOCOL".into())
        );
        let batch = ex
            .entries
            .iter()
            .find(|e| e.key == "batch.max_batch_size")
            .unwrap();
        assert_eq!(batch.source.kind(), "preset");
        assert_eq!(
            ex.signals[0].endpoint,
            format!("https://u:{REDACTED}@collector:4318/v1/traces")
        );
        assert!(ex.signals[0].tls);
        assert_eq!(
            ex.signals[2].headers,
            vec![("api-key".to_owned(), REDACTED.to_owned())]
        );
        let parsed: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["signals"][1]["endpoint_from"], "endpoint");
    }

    #[test]
    fn explain_names_the_source_of_each_receiver_tls_file() {
        let file = ConfigFile::parse(
            "/etc/otlp/c.yaml",
            "receivers:\n  grpc: 127.0.0.1:4317\n  tls:\n    cert_file: tls/cert.pem\n    key_file: tls/key.pem\n",
        )
        .unwrap();
        let ex = explain(&Sources::new().with_file(file));
        let entry = |key: &str| ex.entries.iter().find(|e| e.key == key).unwrap();
        let cert = entry("receivers.tls.cert_file");
        assert_eq!(cert.value, "/etc/otlp/tls/cert.pem");
        assert!(
            matches!(cert.source, Source::File { line: 4, .. }),
            "{cert:?}"
        );
        assert_eq!(
            entry("receivers.tls.key_file").value,
            "/etc/otlp/tls/key.pem"
        );
        let ca = entry("receivers.tls.client_ca_file");
        assert_eq!(
            (ca.value.as_str(), &ca.source),
            ("(unset)", &Source::Default)
        );
        assert!(ex.render_text().contains("receivers.tls.cert_file"));
    }
}
