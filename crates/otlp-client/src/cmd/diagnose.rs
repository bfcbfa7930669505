//! `diagnose`: DNS, TCP, TLS and an OTLP probe against the collector, with a
//! verdict and a fix per step.

use std::{process::ExitCode, time::Duration};

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
    // With `loadbalancing:` the signal endpoint is not where data goes:
    // each backend of the resolved set is probed instead.
    if let Some(set) = backend_set(&resolved.config, args.timeout).await {
        return report_backends(&set, args.output_format());
    }
    let report = probe(&resolved.config, args.timeout).await;
    if args.output_format() == Format::Json {
        print_json(
            &serde_json::to_value(&report)
                .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()})),
        );
    } else {
        outln!(
            "{}",
            super::style::paint_verdicts(&report.to_string(), super::style::colour_stdout())
        );
    }
    exit_code(report.first_failure().is_none())
}

/// Prints the backend set and each backend's diagnosis; fails unless the
/// set resolved to at least one backend and every probed one passed.
fn report_backends(set: &BackendSet, format: Format) -> ExitCode {
    if format == Format::Json {
        print_json(&set.to_json());
    } else {
        outln!(
            "{}",
            super::style::paint_verdicts(&set.to_text(), super::style::colour_stdout())
        );
    }
    exit_code(set.is_healthy())
}

fn print_json(json: &serde_json::Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(json).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    );
}

fn exit_code(healthy: bool) -> ExitCode {
    ExitCode::from(if healthy { EXIT_OK } else { EXIT_PROBLEM })
}

/// Diagnoses the upstream of a resolved (valid) config: the traces
/// endpoint, its protocol and TLS files, each step bounded by `timeout`.
pub(crate) async fn probe(config: &Config, timeout: Duration) -> Diagnosis {
    let (protocol, tls) = probe_settings(config);
    let endpoint = &config.signal(Signal::Traces).endpoint;
    otlp::transport::diagnose(endpoint, protocol, &tls, timeout).await
}

/// The traces signal's protocol and TLS files, as its exporter takes them.
fn probe_settings(config: &Config) -> (Protocol, TlsConfig) {
    let ec = otlp::exporter_config(config, Signal::Traces);
    (ec.protocol, ec.tls)
}

/// At most this many backends are probed (all at once); the rest of a
/// larger set are listed and counted as not probed.
const MAX_PROBED: usize = 16;

/// The resolved backend set of `loadbalancing:` (traces), as `run` would
/// start with it (the static list, or the DNS name resolved once), and the
/// diagnosis of each of its first [`MAX_PROBED`] backends, in set order.
pub(crate) struct BackendSet {
    routing_key: &'static str,
    resolver: String,
    backends: Result<Vec<String>, String>,
    probes: Vec<Diagnosis>,
}

pub(crate) async fn backend_set(config: &Config, timeout: Duration) -> Option<BackendSet> {
    let lb = config.loadbalancing.as_ref()?;
    let backends = otlp::resolve_backends(config, Signal::Traces)
        .await?
        .map_err(|e| e.to_string());
    let probes = match &backends {
        Ok(list) => probe_all(config, &list[..list.len().min(MAX_PROBED)], timeout).await,
        Err(_) => Vec::new(),
    };
    Some(BackendSet {
        routing_key: lb.routing_key.as_str(),
        resolver: lb.resolver.describe(),
        backends,
        probes,
    })
}

/// Diagnoses every backend of `list` concurrently, with the traces
/// signal's protocol and TLS files; the results in `list`'s order.
async fn probe_all(config: &Config, list: &[String], timeout: Duration) -> Vec<Diagnosis> {
    let (protocol, tls) = probe_settings(config);
    let mut probes = tokio::task::JoinSet::new();
    for (i, endpoint) in list.iter().enumerate() {
        let (endpoint, tls) = (endpoint.clone(), tls.clone());
        probes.spawn(async move {
            let d = otlp::transport::diagnose(&endpoint, protocol, &tls, timeout).await;
            (i, d)
        });
    }
    let mut done = Vec::with_capacity(list.len());
    while let Some(joined) = probes.join_next().await {
        match joined {
            Ok(probe) => done.push(probe),
            // A probe never panics by design; if one does, say so rather
            // than report the backend healthy.
            Err(e) => eprintln!("otlp-client diagnose: a backend probe ended early: {e}"),
        }
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, d)| d).collect()
}

impl BackendSet {
    /// The probed backends that failed a step.
    pub(crate) fn failing(&self) -> Vec<&str> {
        self.probes
            .iter()
            .filter(|d| d.first_failure().is_some())
            .map(|d| d.endpoint.as_str())
            .collect()
    }

    /// How many backends of the set were not probed (over [`MAX_PROBED`]).
    fn not_probed(&self) -> usize {
        self.backends
            .as_ref()
            .map_or(0, |list| list.len() - self.probes.len())
    }

    /// Resolved to at least one backend, each probed one passed, and none
    /// was lost to a failed probe task.
    pub(crate) fn is_healthy(&self) -> bool {
        let probed = self
            .backends
            .as_ref()
            .map_or(0, |l| l.len().min(MAX_PROBED));
        probed > 0 && self.probes.len() == probed && self.failing().is_empty()
    }

    fn head(&self) -> String {
        format!(
            "load balancing ({} over {})",
            self.routing_key, self.resolver
        )
    }

    /// Why the set has no backend to probe, and the fix; `None` once it
    /// resolved to at least one.
    fn unusable(&self) -> Option<(String, &'static str)> {
        match &self.backends {
            Ok(list) if list.is_empty() => Some((
                "no backend: the name resolved to no address".to_owned(),
                "check that the gateways are up and registered under it",
            )),
            Err(e) => Some((
                format!("the backend set cannot be resolved: {e}"),
                "check loadbalancing.dns.hostname and loadbalancing.dns.server",
            )),
            Ok(_) => None,
        }
    }

    /// The set in one verdict, for `doctor`: what was found, and the fix
    /// of the first failing backend's first failed step.
    pub(crate) fn summary(&self) -> (Verdict, String, Option<String>) {
        let head = self.head();
        if let Some((problem, fix)) = self.unusable() {
            return (
                Verdict::Fail,
                format!("{head}: {problem}"),
                Some(fix.to_owned()),
            );
        }
        let total = self.backends.as_ref().map_or(0, Vec::len);
        let failing = self.failing();
        let first_failed = self.probes.iter().find_map(Diagnosis::first_failure);
        if let Some(step) = first_failed {
            return (
                Verdict::Fail,
                format!(
                    "{head}: {} of {} probed backend(s) failing: {} (first: {}: {})",
                    failing.len(),
                    self.probes.len(),
                    failing.join(", "),
                    step.target,
                    step.detail
                ),
                step.fix.clone(),
            );
        }
        if !self.is_healthy() {
            return (
                Verdict::Fail,
                format!("{head}: a backend probe ended early"),
                Some("run `otlp-client diagnose --config FILE` to see each backend".to_owned()),
            );
        }
        let skipped = self.not_probed();
        let probed = if skipped > 0 {
            format!(
                " (the first {} probed, {skipped} not probed)",
                self.probes.len()
            )
        } else {
            String::new()
        };
        (
            Verdict::Pass,
            format!("{head}: {total} backend(s) answer OTLP{probed}"),
            None,
        )
    }

    fn to_text(&self) -> String {
        let head = self.head();
        if let Some((problem, fix)) = self.unusable() {
            return format!("{head}: FAIL {problem} ({fix})");
        }
        let Ok(list) = &self.backends else {
            return head;
        };
        let mut out = format!("{head}: {} backend(s), traces go to:", list.len());
        for b in list {
            out.push_str("\n  ");
            out.push_str(b);
        }
        out.push_str(
            "\n(the endpoint setting is not used with loadbalancing: each backend is probed instead)",
        );
        for (i, d) in self.probes.iter().enumerate() {
            out.push_str(&format!("\n\nbackend {} of {}: {d}", i + 1, list.len()));
        }
        out.push_str("\n\n");
        let skipped = self.not_probed();
        if skipped > 0 {
            out.push_str(&format!(
                "{} of {} backends probed (the first {MAX_PROBED} of the set); {skipped} not probed\n",
                self.probes.len(),
                list.len()
            ));
        }
        let failing = self.failing();
        if failing.is_empty() && self.is_healthy() {
            out.push_str("load balancing result: every probed backend is healthy");
        } else if failing.is_empty() {
            out.push_str("load balancing result: FAIL a backend probe ended early (see above)");
        } else {
            out.push_str(&format!(
                "load balancing result: FAIL {} of {} probed backend(s) failing: {} (the agent sends their share to the other backends meanwhile: fix or restart each one, following the fix of its first failed step above, or remove it from the set)",
                failing.len(),
                self.probes.len(),
                failing.join(", ")
            ));
        }
        out
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let (backends, error) = match &self.backends {
            Ok(list) => (list.clone(), None),
            Err(e) => (Vec::new(), Some(e.as_str())),
        };
        let probes: Vec<serde_json::Value> = self
            .probes
            .iter()
            .map(|d| {
                let mut v = serde_json::to_value(d)
                    .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}));
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("healthy".into(), d.first_failure().is_none().into());
                }
                v
            })
            .collect();
        let mut lb = serde_json::json!({
            "routing_key": self.routing_key,
            "resolver": self.resolver,
            "backends": backends,
            "probes": probes,
            "not_probed": self.not_probed(),
            "failing": self.failing(),
            "healthy": self.is_healthy(),
        });
        if let (Some(e), Some(obj)) = (error, lb.as_object_mut()) {
            obj.insert("error".into(), e.into());
        }
        serde_json::json!({ "loadbalancing": lb })
    }
}
