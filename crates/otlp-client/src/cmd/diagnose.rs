//! `diagnose`: DNS, TCP, TLS and an OTLP probe against the collector, with a
//! verdict and a fix per step.

use std::process::ExitCode;

use otlp::{
    config::{Config, ConfigFile, Env, Sources},
    core::Signal,
    transport::{Diagnosis, Protocol, TlsConfig, diagnose::Verdict},
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
    if args.output_format() == Format::Json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        );
    } else {
        outln!(
            "{}",
            super::style::paint_verdicts(&report.to_string(), super::style::colour_stdout())
        );
    }
    if report.steps.iter().any(|s| s.verdict == Verdict::Fail) {
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
    otlp::transport::diagnose::diagnose(&sc.endpoint, protocol, &tls, timeout).await
}
