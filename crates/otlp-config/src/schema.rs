//! The table of every config key, its value kind and one line of docs, and
//! the "did you mean" suggestions built on it.

/// The kind of value a key takes; decides how text is parsed and printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Url,
    Enum(&'static [&'static str]),
    Duration,
    Size,
    Count,
    Float,
    Bool,
    Path,
    Addr,
    Headers,
    UrlList,
    Text,
}

/// One config key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyDef {
    pub(crate) key: &'static str,
    pub(crate) kind: Kind,
    pub(crate) doc: &'static str,
}

const PROTOCOLS: &[&str] = &["grpc", "http/protobuf", "http/json"];
const COMPRESSIONS: &[&str] = &["none", "gzip", "zstd"];
const OVERFLOWS: &[&str] = &["drop_newest", "drop_oldest", "block"];
const PRESETS: &[&str] = &["low_latency", "balanced", "high_throughput"];
const TEMPORALITIES: &[&str] = &["cumulative", "delta", "lowmemory"];
const ROUTING_KEYS: &[&str] = &crate::RoutingKey::VALUES;
const LB_RESOLVERS: &[&str] = &crate::loadbalancing::ResolverKind::VALUES;

/// `loadbalancing:`: trace-aware load balancing over a tier of gateways.
const LOADBALANCING: [KeyDef; 8] = [
    KeyDef {
        key: "loadbalancing.routing_key",
        kind: Kind::Enum(ROUTING_KEYS),
        doc: "what batches are split and routed on across the backends: trace_id (spans of a trace on one backend), service, resource or round_robin",
    },
    KeyDef {
        key: "loadbalancing.resolver",
        kind: Kind::Enum(LB_RESOLVERS),
        doc: "where the backends come from: static (loadbalancing.endpoints) or dns (loadbalancing.dns.*)",
    },
    KeyDef {
        key: "loadbalancing.endpoints",
        kind: Kind::UrlList,
        doc: "the backends' base URLs for the static resolver (they replace endpoint)",
    },
    KeyDef {
        key: "loadbalancing.dns.hostname",
        kind: Kind::Text,
        doc: "the name whose A/AAAA records are the backends (e.g. a headless Service)",
    },
    KeyDef {
        key: "loadbalancing.dns.port",
        kind: Kind::Count,
        doc: "the port of every backend found by dns",
    },
    KeyDef {
        key: "loadbalancing.dns.interval",
        kind: Kind::Duration,
        doc: "how often the name is resolved again",
    },
    KeyDef {
        key: "loadbalancing.dns.timeout",
        kind: Kind::Duration,
        doc: "deadline of one dns resolution",
    },
    KeyDef {
        key: "loadbalancing.dns.server",
        kind: Kind::Addr,
        doc: "the DNS server to ask, ip:port (default: the system resolver, /etc/resolv.conf)",
    },
];

macro_rules! signal_keys {
    ($s:literal) => {
        [
            KeyDef {
                key: concat!($s, ".endpoint"),
                kind: Kind::Url,
                doc: "full URL for this signal, used as given",
            },
            KeyDef {
                key: concat!($s, ".protocol"),
                kind: Kind::Enum(PROTOCOLS),
                doc: "protocol for this signal",
            },
            KeyDef {
                key: concat!($s, ".headers"),
                kind: Kind::Headers,
                doc: "headers for this signal (replace the generic ones)",
            },
            KeyDef {
                key: concat!($s, ".timeout"),
                kind: Kind::Duration,
                doc: "deadline of one export attempt for this signal",
            },
            KeyDef {
                key: concat!($s, ".compression"),
                kind: Kind::Enum(COMPRESSIONS),
                doc: "compression for this signal",
            },
            KeyDef {
                key: concat!($s, ".tls.ca_file"),
                kind: Kind::Path,
                doc: "CA certificate PEM for this signal",
            },
            KeyDef {
                key: concat!($s, ".tls.cert_file"),
                kind: Kind::Path,
                doc: "client certificate PEM for this signal",
            },
            KeyDef {
                key: concat!($s, ".tls.key_file"),
                kind: Kind::Path,
                doc: "client key PEM for this signal",
            },
            KeyDef {
                key: concat!($s, ".tls.insecure"),
                kind: Kind::Bool,
                doc: "plaintext (true) or TLS (false) for this signal's grpc endpoint written without a scheme",
            },
        ]
    };
}

const GENERAL: [KeyDef; 45] = [
    KeyDef {
        key: "preset",
        kind: Kind::Enum(PRESETS),
        doc: "starting point for batch, queue and tuning",
    },
    KeyDef {
        key: "endpoint",
        kind: Kind::Url,
        doc: "collector URL; HTTP gets v1/<signal> appended (v1development/profiles for profiles)",
    },
    KeyDef {
        key: "protocol",
        kind: Kind::Enum(PROTOCOLS),
        doc: "grpc, http/protobuf or http/json",
    },
    KeyDef {
        key: "timeout",
        kind: Kind::Duration,
        doc: "deadline of one export attempt (each retry gets its own)",
    },
    KeyDef {
        key: "connect_timeout",
        kind: Kind::Duration,
        doc: "deadline of connection setup",
    },
    KeyDef {
        key: "headers",
        kind: Kind::Headers,
        doc: "headers sent with every export",
    },
    KeyDef {
        key: "compression",
        kind: Kind::Enum(COMPRESSIONS),
        doc: "none, gzip or zstd",
    },
    KeyDef {
        key: "compression_level",
        kind: Kind::Count,
        doc: "gzip 1-9 or zstd 1-19; 1, the fastest, by default",
    },
    KeyDef {
        key: "tls.ca_file",
        kind: Kind::Path,
        doc: "CA certificate PEM that signs the server's certificate",
    },
    KeyDef {
        key: "tls.cert_file",
        kind: Kind::Path,
        doc: "client certificate PEM (mutual TLS)",
    },
    KeyDef {
        key: "tls.key_file",
        kind: Kind::Path,
        doc: "client private key PEM (mutual TLS)",
    },
    KeyDef {
        key: "tls.insecure",
        kind: Kind::Bool,
        doc: "for a grpc endpoint written without a scheme (collector:4317): true plaintext, false TLS (the OTLP spec's meaning)",
    },
    KeyDef {
        key: "tls.insecure_skip_verify",
        kind: Kind::Bool,
        doc: "DANGEROUS: accept any server certificate on https:// (tests against self-signed collectors only)",
    },
    KeyDef {
        key: "retry.max_retries",
        kind: Kind::Count,
        doc: "retries after the first attempt",
    },
    KeyDef {
        key: "retry.initial_backoff",
        kind: Kind::Duration,
        doc: "first backoff",
    },
    KeyDef {
        key: "retry.max_backoff",
        kind: Kind::Duration,
        doc: "cap on one backoff",
    },
    KeyDef {
        key: "retry.multiplier",
        kind: Kind::Float,
        doc: "backoff growth per attempt",
    },
    KeyDef {
        key: "retry.jitter",
        kind: Kind::Float,
        doc: "random fraction 0..1 of each backoff",
    },
    KeyDef {
        key: "retry.max_elapsed",
        kind: Kind::Duration,
        doc: "give up after this long",
    },
    KeyDef {
        key: "batch.max_batch_size",
        kind: Kind::Count,
        doc: "items per batch",
    },
    KeyDef {
        key: "batch.max_batch_bytes",
        kind: Kind::Size,
        doc: "encoded bytes per batch",
    },
    KeyDef {
        key: "batch.batch_timeout",
        kind: Kind::Duration,
        doc: "longest wait for a batch to fill",
    },
    KeyDef {
        key: "queue.max_items",
        kind: Kind::Count,
        doc: "items the queue holds",
    },
    KeyDef {
        key: "queue.max_bytes",
        kind: Kind::Size,
        doc: "bytes the queue holds",
    },
    KeyDef {
        key: "queue.overflow",
        kind: Kind::Enum(OVERFLOWS),
        doc: "drop_newest, drop_oldest or block",
    },
    KeyDef {
        key: "queue.persistent.dir",
        kind: Kind::Path,
        doc: "directory of the disk queue",
    },
    KeyDef {
        key: "queue.persistent.max_bytes",
        kind: Kind::Size,
        doc: "disk space of the disk queue",
    },
    KeyDef {
        key: "queue.persistent.fsync",
        kind: Kind::Bool,
        doc: "sync each write before acknowledging it",
    },
    KeyDef {
        key: "tuning.adaptive",
        kind: Kind::Bool,
        doc: "adapt concurrency to latency and errors",
    },
    KeyDef {
        key: "tuning.min_concurrency",
        kind: Kind::Count,
        doc: "lowest export concurrency",
    },
    KeyDef {
        key: "tuning.max_concurrency",
        kind: Kind::Count,
        doc: "highest export concurrency",
    },
    KeyDef {
        key: "memory_limit",
        kind: Kind::Size,
        doc: "memory the pipeline may hold",
    },
    KeyDef {
        key: "admin.listen",
        kind: Kind::Addr,
        doc: "address of /health and /metrics",
    },
    KeyDef {
        key: "receivers.enabled",
        kind: Kind::Bool,
        doc: "agent mode: receive OTLP",
    },
    KeyDef {
        key: "receivers.grpc",
        kind: Kind::Addr,
        doc: "agent OTLP/gRPC listen address",
    },
    KeyDef {
        key: "receivers.http",
        kind: Kind::Addr,
        doc: "agent OTLP/HTTP listen address",
    },
    KeyDef {
        key: "receivers.intake_budget",
        kind: Kind::Size,
        doc: "bytes requests being received may hold at once (default memory_limit / 4)",
    },
    KeyDef {
        key: "receivers.max_request_bytes",
        kind: Kind::Size,
        doc: "largest request body on the wire (default 64MiB, the OTLP spec's recommended server limit)",
    },
    KeyDef {
        key: "receivers.max_decompressed_bytes",
        kind: Kind::Size,
        doc: "largest request once decompressed (default 64MiB, at least receivers.max_request_bytes)",
    },
    KeyDef {
        key: "receivers.body_read_timeout",
        kind: Kind::Duration,
        doc: "time a request has to deliver its whole body",
    },
    KeyDef {
        key: "receivers.idle_timeout",
        kind: Kind::Duration,
        doc: "time an idle receiver connection stays open",
    },
    KeyDef {
        key: "receivers.tls.cert_file",
        kind: Kind::Path,
        doc: "receiver server certificate chain PEM (turns on TLS)",
    },
    KeyDef {
        key: "receivers.tls.key_file",
        kind: Kind::Path,
        doc: "receiver server private key PEM",
    },
    KeyDef {
        key: "receivers.tls.client_ca_file",
        kind: Kind::Path,
        doc: "CA PEM client certificates must chain to (mutual TLS)",
    },
    KeyDef {
        key: "endpoints",
        kind: Kind::UrlList,
        doc: "extra upstream base URLs to balance across",
    },
];

/// Keys of no section: the resource and the metrics temporality.
const EXTRA: [KeyDef; 3] = [
    KeyDef {
        key: "service_name",
        kind: Kind::Text,
        doc: "service.name of the resource the library and `send` produce (OTEL_SERVICE_NAME); relayed data is never changed",
    },
    KeyDef {
        key: "resource_attributes",
        kind: Kind::Headers,
        doc: "attributes of the resource the library and `send` produce (OTEL_RESOURCE_ATTRIBUTES, key=value,...)",
    },
    KeyDef {
        key: "metrics.temporality_preference",
        kind: Kind::Enum(TEMPORALITIES),
        doc: "cumulative, delta or lowmemory for the SDK bridge's metric exporter; no effect on forwarded metrics",
    },
];

const TRACES: [KeyDef; 9] = signal_keys!("traces");
const METRICS: [KeyDef; 9] = signal_keys!("metrics");
const LOGS: [KeyDef; 9] = signal_keys!("logs");
const PROFILES: [KeyDef; 9] = signal_keys!("profiles");

/// Sections: keys whose value is a mapping of further keys.
pub(crate) const SECTIONS: &[&str] = &[
    "tls",
    "retry",
    "batch",
    "queue",
    "queue.persistent",
    "tuning",
    "admin",
    "receivers",
    "receivers.tls",
    "traces",
    "metrics",
    "logs",
    "profiles",
    "traces.tls",
    "metrics.tls",
    "logs.tls",
    "profiles.tls",
    "loadbalancing",
    "loadbalancing.dns",
];

/// Every leaf key, in documentation order.
pub(crate) fn keys() -> impl Iterator<Item = &'static KeyDef> {
    GENERAL
        .iter()
        .chain(EXTRA.iter())
        .chain(LOADBALANCING.iter())
        .chain(TRACES.iter())
        .chain(METRICS.iter())
        .chain(LOGS.iter())
        .chain(PROFILES.iter())
}

/// The definition of a leaf key.
pub(crate) fn lookup(key: &str) -> Option<&'static KeyDef> {
    keys().find(|d| d.key == key)
}

pub(crate) fn is_section(key: &str) -> bool {
    SECTIONS.contains(&key)
}

/// The child names allowed directly under `section` ("" is the top level).
pub(crate) fn children(section: &str) -> Vec<&'static str> {
    let prefix = if section.is_empty() {
        String::new()
    } else {
        format!("{section}.")
    };
    let mut out: Vec<&'static str> = keys()
        .map(|d| d.key)
        .chain(SECTIONS.iter().copied())
        .filter_map(|k| k.strip_prefix(prefix.as_str()))
        .map(|rest| rest.split('.').next().unwrap_or(rest))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The closest of `candidates` to `word`, if close enough to be a plausible typo.
pub(crate) fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for &c in candidates {
        let d = strsim::damerau_levenshtein(&lower, c);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    // Short words are too easily "close" to another short word ("otlp" and
    // "tls" are two edits apart), so they get one edit only.
    let len = word.chars().count();
    let limit = if len <= 4 { 1 } else { (len / 3).max(2) };
    (d <= limit).then_some(c)
}

/// A suggestion for an unknown key `name` found in `section`: a near name in
/// the same section, or the full path of a key with that name elsewhere.
pub(crate) fn suggest_key(section: &str, name: &str) -> Option<String> {
    let here = children(section);
    if let Some(c) = nearest(name, &here) {
        return Some(join(section, c));
    }
    let lower = name.to_ascii_lowercase().replace('-', "_");
    keys()
        .map(|d| d.key)
        .find(|k| {
            k.rsplit('.').next() == Some(lower.as_str())
                && !otlp_core::Signal::ALL
                    .iter()
                    .any(|s| k.starts_with(s.as_str()))
        })
        .map(str::to_owned)
}

/// A suggestion for an enum value: the same word lower-cased, a known
/// shorthand, or the nearest accepted value.
pub(crate) fn suggest_enum(value: &str, values: &[&'static str]) -> Option<&'static str> {
    let lower = value.trim().to_ascii_lowercase().replace('-', "_");
    if let Some(v) = values.iter().find(|v| **v == lower) {
        return Some(v);
    }
    if values == PROTOCOLS {
        let mapped = match lower.as_str() {
            "http" | "https" | "protobuf" | "http/proto" | "http_protobuf" | "http/protobuff" => {
                Some("http/protobuf")
            }
            "json" | "http_json" => Some("http/json"),
            "grpcs" | "grpc/protobuf" => Some("grpc"),
            _ => None,
        };
        if mapped.is_some() {
            return mapped;
        }
    }
    nearest(&lower, values)
}

/// The hint for an unknown key `name` in `section`.
pub(crate) fn key_hint(section: &str, name: &str) -> String {
    match suggest_key(section, name) {
        Some(s) if s.rsplit('.').next() == Some(name) => match s.rsplit_once('.') {
            Some((parent, _)) => format!("'{name}' belongs under '{parent}:', as '{s}'"),
            None => format!("'{name}' is a top-level key; move it out of '{section}:'"),
        },
        Some(s) => format!("did you mean '{s}'?"),
        None => format!("allowed here: {}", children(section).join(", ")),
    }
}

pub(crate) fn join(section: &str, name: &str) -> String {
    if section.is_empty() {
        name.to_owned()
    } else {
        format!("{section}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parent_is_a_section() {
        for d in keys() {
            if let Some((parent, _)) = d.key.rsplit_once('.') {
                assert!(is_section(parent), "{}", d.key);
            }
            assert!(!d.doc.is_empty(), "{}", d.key);
        }
        assert_eq!(keys().count(), 45 + 3 + 8 + 9 * otlp_core::Signal::COUNT);
        assert!(lookup("profiles.endpoint").is_some());
        assert!(is_section("profiles.tls"));
    }

    #[test]
    fn suggestions_find_typos_and_misplaced_keys() {
        assert_eq!(
            suggest_key("retry", "max_retry").as_deref(),
            Some("retry.max_retries")
        );
        assert_eq!(suggest_key("", "endpiont").as_deref(), Some("endpoint"));
        assert_eq!(
            suggest_key("", "max_batch_size").as_deref(),
            Some("batch.max_batch_size")
        );
        assert_eq!(suggest_key("", "zzzzzz"), None);
        assert_eq!(suggest_key("", "otlp"), None);
        assert_eq!(
            key_hint("", "max_batch_size"),
            "'max_batch_size' belongs under 'batch:', as 'batch.max_batch_size'"
        );
        assert_eq!(
            key_hint("tls", "endpoint"),
            "'endpoint' is a top-level key; move it out of 'tls:'"
        );
        assert_eq!(suggest_enum("gprc", PROTOCOLS), Some("grpc"));
        assert_eq!(suggest_enum("HTTP", PROTOCOLS), Some("http/protobuf"));
        assert_eq!(suggest_enum("GZIP", COMPRESSIONS), Some("gzip"));
        assert_eq!(suggest_enum("drop-oldest", OVERFLOWS), Some("drop_oldest"));
        assert_eq!(suggest_enum("brotli", COMPRESSIONS), None);
    }
}
