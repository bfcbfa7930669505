#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `insecure` as the OTLP specification means it: for a gRPC endpoint written
//! without a scheme, plaintext (true) or TLS (false). Skipping certificate
//! verification is a separate, loudly named key.

use otlp_config::{ConfigFile, Env, Protocol, Severity, Sources, explain_config};
use otlp_core::Signal;

fn resolve(vars: &[(&str, &str)]) -> otlp_config::Resolved {
    Sources::new()
        .with_env(Env::from_map(vars.iter().copied()))
        .resolve()
}

#[test]
fn a_scheme_less_grpc_endpoint_is_tls_unless_insecure_is_true() {
    let r = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    for s in Signal::ALL {
        assert_eq!(r.config.signal(s).endpoint, "https://collector:4317");
    }
    let r = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
    ]);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    for s in Signal::ALL {
        assert_eq!(r.config.signal(s).endpoint, "http://collector:4317");
    }
    // The per-signal variable decides for its signal only.
    let r = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
        ("OTEL_EXPORTER_OTLP_METRICS_INSECURE", "true"),
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "[::1]:4317"),
    ]);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        r.config.signal(Signal::Traces).endpoint,
        "https://collector:4317"
    );
    assert_eq!(
        r.config.signal(Signal::Metrics).endpoint,
        "http://collector:4317"
    );
    assert_eq!(r.config.signal(Signal::Logs).endpoint, "https://[::1]:4317");
}

#[test]
fn a_scheme_less_file_endpoint_follows_tls_insecure_too() {
    let file = ConfigFile::parse(
        "c.yaml",
        "endpoint: collector:4317\ntls:\n  insecure: true\ntraces:\n  endpoint: traces-collector:4317\n  tls:\n    insecure: false\n",
    )
    .unwrap();
    let r = Sources::new().with_file(file).resolve();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        r.config.signal(Signal::Traces).endpoint,
        "https://traces-collector:4317"
    );
    assert_eq!(
        r.config.signal(Signal::Logs).endpoint,
        "http://collector:4317"
    );
}

#[test]
fn a_scheme_less_http_endpoint_is_still_an_error_saying_what_to_write() {
    let r = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ]);
    let errors: Vec<_> = r.errors().collect();
    assert_eq!(errors.len(), 1, "{:?}", r.problems);
    assert_eq!(errors[0].path, "endpoint");
    assert!(
        errors[0].message.contains("missing scheme"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("use http://collector:4318 (plaintext) or https://collector:4318 (TLS)"),
        "{}",
        errors[0]
    );
    // A bad host:port is reported as written.
    let r = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:99999")]);
    let e = r.errors().next().unwrap();
    assert!(e.message.contains("'collector:99999'"), "{e}");
}

#[test]
fn insecure_on_an_endpoint_with_a_scheme_is_a_warning_that_it_has_no_effect() {
    let r = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
    ]);
    assert!(r.is_valid(), "{:?}", r.problems);
    assert_eq!(
        r.config.signal(Signal::Traces).endpoint,
        "https://collector:4317",
        "insecure never downgrades https://"
    );
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let p = &r.problems[0];
    assert_eq!(
        (p.path.as_str(), p.severity),
        ("tls.insecure", Severity::Warning)
    );
    assert!(p.message.contains("has no effect"), "{p}");
    assert!(
        p.hint
            .as_deref()
            .unwrap()
            .contains("tls.insecure_skip_verify"),
        "{p}"
    );
}

#[test]
fn insecure_skip_verify_is_its_own_key_and_warned_about() {
    let file = ConfigFile::parse(
        "c.yaml",
        "endpoint: https://collector:4317\ntls:\n  insecure_skip_verify: true\n",
    )
    .unwrap();
    let r = Sources::new().with_file(file).resolve();
    assert!(r.is_valid(), "{:?}", r.problems);
    for s in Signal::ALL {
        let tls = &r.config.signal(s).tls;
        assert!(tls.insecure_skip_verify && !tls.insecure, "{s}");
    }
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(
        r.problems[0]
            .message
            .contains("certificate is not verified"),
        "{}",
        r.problems[0]
    );
    // tls.insecure alone never turns verification off.
    let r = resolve(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]);
    assert!(!r.config.signal(Signal::Traces).tls.insecure_skip_verify);
    assert_eq!(r.config.signal(Signal::Traces).protocol, Protocol::Grpc);
}

#[test]
fn explain_documents_insecure_as_the_spec_means_it() {
    let text = explain_config(
        None,
        Env::new(),
        otlp_config::Flags::new(),
        otlp_config::OutputFormat::Text,
    )
    .text;
    let line = text
        .lines()
        .find(|l| l.starts_with("tls.insecure "))
        .unwrap();
    assert!(
        line.contains("a grpc endpoint without a scheme uses TLS"),
        "{line}"
    );
    assert!(
        !text.contains("skip server certificate verification"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("tls.insecure_skip_verify ")),
        "{text}"
    );
}
