//! `diagnose`: DNS, TCP, TLS and an OTLP probe against the collector, with a
//! verdict and a fix per step.

use std::process::ExitCode;

use otlp::{
    config::{Config, ConfigFile, Env, Sources},
    core::Signal,
    transport::{Diagnosis, Protocol, TlsConfig, Verdict},
};

use super::stdout::outln;
use crate::cli::{DiagnoseArgs, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, Format, ProtocolArg};

/// `diagnose [--endpoint URL] [--protocol P] [--config FILE] [--format json]`.
pub(crate) async fn diagnose(args: DiagnoseArgs) -> ExitCode {
    // Resolve endpoint, protocol and TLS files exactly as `run` would.
    let mut sources = Sources::new()
        .with_env(Env::from_process())
        .with_flags(super::flags(
            args.endpoint.as_deref(),
            args.protocol.map(ProtocolArg::as_str),
        ));
    if let Some(path) = &args.config {
        match ConfigFile::read(path) {
            Ok(f) => sources = sources.with_file(f),
            Err(e) => {
                eprintln!("otlp-client diagnose: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let resolved = sources.resolve();
    // The resolved config holds defaults in place of invalid values:
    // diagnosing it would probe a collector nobody asked about.
    if !resolved.is_valid() {
        for p in resolved.errors() {
            eprintln!("otlp-client diagnose: config problem: {p}");
        }
        eprintln!(
            "otlp-client diagnose: nothing was diagnosed: fix the value above (e.g. --endpoint http://collector:4317 --protocol grpc); diagnose does not fall back to the defaults"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let report = probe(&resolved.config, args.timeout).await;
    let backends = backend_set(&resolved.config).await;
    if args.output_format() == Format::Json {
        let mut json = serde_json::to_value(&report)
            .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
        if let (Some(b), Some(obj)) = (&backends, json.as_object_mut()) {
            obj.insert("loadbalancing".into(), b.to_json());
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&json)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        );
    } else {
        outln!(
            "{}",
            super::style::paint_verdicts(&report.to_string(), super::style::colour_stdout())
        );
        if let Some(b) = &backends {
            outln!("{}", b.to_text());
        }
    }
    let lb_failed = backends.as_ref().is_some_and(|b| b.backends.is_err());
    if lb_failed || report.steps.iter().any(|s| s.verdict == Verdict::Fail) {
        ExitCode::from(EXIT_PROBLEM)
    } else {
        ExitCode::from(EXIT_OK)
    }
}

/// Diagnoses the upstream of a resolved (valid) config: the traces
/// endpoint, its protocol and TLS files, each step bounded by `timeout`.
pub(crate) async fn probe(config: &Config, timeout: std::time::Duration) -> Diagnosis {
    let sc = config.signal(Signal::Traces);
    let protocol = match sc.protocol {
        otlp::config::Protocol::Grpc => Protocol::Grpc,
        otlp::config::Protocol::HttpProtobuf => Protocol::HttpProtobuf,
        otlp::config::Protocol::HttpJson => Protocol::HttpJson,
    };
    let tls = TlsConfig {
        ca_file: sc.tls.ca_file.clone(),
        cert_file: sc.tls.cert_file.clone(),
        key_file: sc.tls.key_file.clone(),
        insecure: sc.tls.insecure,
        insecure_skip_verify: sc.tls.insecure_skip_verify,
    };
    otlp::transport::diagnose(&sc.endpoint, protocol, &tls, timeout).await
}

/// The resolved backend set of `loadbalancing:` (traces), as `run` would
/// start with it: the static list, or the DNS name resolved once.
struct BackendSet {
    routing_key: &'static str,
    resolver: String,
    backends: Result<Vec<String>, String>,
}

async fn backend_set(config: &Config) -> Option<BackendSet> {
    let lb = config.loadbalancing.as_ref()?;
    let backends = otlp::resolve_backends(config, Signal::Traces)
        .await?
        .map_err(|e| e.to_string());
    Some(BackendSet {
        routing_key: lb.routing_key.as_str(),
        resolver: lb.resolver.describe(),
        backends,
    })
}

impl BackendSet {
    fn to_text(&self) -> String {
        match &self.backends {
            Ok(list) if list.is_empty() => format!(
                "load balancing ({} over {}): FAIL no backend: the name resolved to no address (check that the gateways are up and registered under it)",
                self.routing_key, self.resolver
            ),
            Ok(list) => {
                let mut out = format!(
                    "load balancing ({} over {}): {} backend(s), traces go to:",
                    self.routing_key,
                    self.resolver,
                    list.len()
                );
                for b in list {
                    out.push_str("\n  ");
                    out.push_str(b);
                }
                out
            }
            Err(e) => format!(
                "load balancing ({} over {}): FAIL the backend set cannot be resolved: {e} (check loadbalancing.dns.hostname and loadbalancing.dns.server)",
                self.routing_key, self.resolver
            ),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match &self.backends {
            Ok(list) => serde_json::json!({
                "routing_key": self.routing_key, "resolver": self.resolver, "backends": list,
            }),
            Err(e) => serde_json::json!({
                "routing_key": self.routing_key, "resolver": self.resolver, "backends": [], "error": e,
            }),
        }
    }
}
