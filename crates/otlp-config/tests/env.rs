#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Table-driven tests of every environment variable and path rule. The
//! environment is always injected as a map; the process environment is never read.

use std::time::Duration;

use otlp_config::{Compression, Config, Env, Flags, Protocol, Severity, Source, Sources, env::*};
use otlp_core::Signal;

/// A set of environment variables.
type Vars = &'static [(&'static str, &'static str)];

fn resolve(vars: &[(&str, &str)]) -> (Config, Vec<otlp_config::Problem>) {
    let r = Sources::new()
        .with_env(Env::from_map(vars.iter().copied()))
        .resolve();
    (r.config, r.problems)
}

fn endpoints(c: &Config) -> [String; Signal::COUNT] {
    Signal::ALL.map(|s| c.signal(s).endpoint.clone())
}

#[test]
fn endpoint_path_rules_follow_the_spec() {
    // (env, expected traces / metrics / logs / profiles endpoints)
    let cases: &[(Vars, [&str; Signal::COUNT])] = &[
        (
            &[],
            [
                "http://localhost:4317",
                "http://localhost:4317",
                "http://localhost:4317",
                "http://localhost:4317",
            ],
        ),
        (
            &[(OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf")],
            [
                "http://localhost:4318/v1/traces",
                "http://localhost:4318/v1/metrics",
                "http://localhost:4318/v1/logs",
                "http://localhost:4318/v1development/profiles",
            ],
        ),
        (
            &[
                (OTEL_EXPORTER_OTLP_PROTOCOL, "http/json"),
                (OTEL_EXPORTER_OTLP_ENDPOINT, "https://c:4318/"),
            ],
            [
                "https://c:4318/v1/traces",
                "https://c:4318/v1/metrics",
                "https://c:4318/v1/logs",
                "https://c:4318/v1development/profiles",
            ],
        ),
        (
            &[
                (OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf"),
                (OTEL_EXPORTER_OTLP_ENDPOINT, "http://gw:4318/otlp"),
            ],
            [
                "http://gw:4318/otlp/v1/traces",
                "http://gw:4318/otlp/v1/metrics",
                "http://gw:4318/otlp/v1/logs",
                "http://gw:4318/otlp/v1development/profiles",
            ],
        ),
        (
            // gRPC: the generic endpoint is used as is.
            &[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://gw:4317")],
            [
                "http://gw:4317",
                "http://gw:4317",
                "http://gw:4317",
                "http://gw:4317",
            ],
        ),
        (
            // Per-signal endpoints are used as given, with no path appended.
            &[
                (OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf"),
                (OTEL_EXPORTER_OTLP_ENDPOINT, "http://gw:4318"),
                (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "http://t:9999/custom"),
                (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://l:4318"),
            ],
            [
                "http://t:9999/custom",
                "http://gw:4318/v1/metrics",
                "http://l:4318",
                "http://gw:4318/v1development/profiles",
            ],
        ),
        (
            // Per-signal protocol changes the default endpoint of that signal only.
            &[(OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, "http/protobuf")],
            [
                "http://localhost:4317",
                "http://localhost:4318/v1/metrics",
                "http://localhost:4317",
                "http://localhost:4317",
            ],
        ),
        (
            &[(OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, "http://m:4317")],
            [
                "http://localhost:4317",
                "http://m:4317",
                "http://localhost:4317",
                "http://localhost:4317",
            ],
        ),
    ];
    for (env, want) in cases {
        let (c, problems) = resolve(env);
        assert_eq!(endpoints(&c), want.map(str::to_owned), "env {env:?}");
        assert!(
            problems.iter().all(|p| p.severity == Severity::Warning),
            "{env:?}: {problems:?}"
        );
    }
}

#[test]
fn every_per_signal_variable_applies_to_its_signal_only() {
    for signal in Signal::ALL {
        let upper = signal.as_str().to_ascii_uppercase();
        let var = |f: &str| format!("OTEL_EXPORTER_OTLP_{upper}_{f}");
        let env = Env::from_map([
            (var("PROTOCOL"), "http/json".to_owned()),
            (var("HEADERS"), "k=v".to_owned()),
            (var("COMPRESSION"), "zstd".to_owned()),
            (var("TIMEOUT"), "1500".to_owned()),
            (var("INSECURE"), "TRUE".to_owned()),
            (var("ENDPOINT"), "https://x:1/p".to_owned()),
        ]);
        let r = Sources::new().with_env(env).resolve();
        for other in Signal::ALL {
            let sc = r.config.signal(other);
            if other == signal {
                assert_eq!(sc.protocol, Protocol::HttpJson);
                assert_eq!(sc.headers, vec![("k".to_owned(), "v".to_owned())]);
                assert_eq!(sc.compression, Compression::Zstd);
                assert_eq!(sc.timeout, Duration::from_millis(1500));
                assert!(sc.tls.insecure);
                assert_eq!(sc.endpoint, "https://x:1/p");
            } else {
                assert_eq!(
                    sc.protocol,
                    Protocol::Grpc,
                    "{other} got {signal}'s setting"
                );
                assert!(sc.headers.is_empty());
                assert_eq!(sc.compression, Compression::None);
                assert_eq!(sc.timeout, Duration::from_secs(10));
                assert!(!sc.tls.insecure);
            }
        }
        assert!(r.is_valid(), "{:?}", r.problems);
    }
}

#[test]
fn tls_variables_map_to_tls_files_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("c.pem");
    let key = dir.path().join("k.pem");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let (c, problems) = resolve(&[
        (OTEL_EXPORTER_OTLP_ENDPOINT, "https://c:4317"),
        (OTEL_EXPORTER_OTLP_CERTIFICATE, cert.to_str().unwrap()),
        (
            OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
            cert.to_str().unwrap(),
        ),
        (OTEL_EXPORTER_OTLP_CLIENT_KEY, key.to_str().unwrap()),
        (OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY, cert.to_str().unwrap()),
    ]);
    let tls = &c.signal(Signal::Traces).tls;
    assert_eq!(tls.ca_file.as_deref(), Some(cert.as_path()));
    assert_eq!(tls.cert_file.as_deref(), Some(cert.as_path()));
    assert_eq!(tls.key_file.as_deref(), Some(key.as_path()));
    // The logs key points at a certificate: that is an error, found at its variable.
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "logs.tls.key_file");
    assert_eq!(
        problems[0].source,
        Source::Env(OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY.into())
    );
    assert!(
        problems[0].message.contains("PRIVATE KEY"),
        "{}",
        problems[0].message
    );
}

#[test]
fn headers_are_baggage_like_and_percent_decoded() {
    let cases: &[(&str, Vars, usize)] = &[
        ("api-key=abc", &[("api-key", "abc")], 0),
        ("a=1,b=2", &[("a", "1"), ("b", "2")], 0),
        (" a = 1 , b=x%20y ", &[("a", "1"), ("b", "x y")], 0),
        (
            "authorization=Bearer%20t%3D%3D",
            &[("authorization", "Bearer t==")],
            0,
        ),
        ("a=1,,b=2,", &[("a", "1"), ("b", "2")], 0),
        ("novalue,a=1", &[("a", "1")], 1),
        ("a=%zz", &[], 1),
        ("bad name=1", &[("bad name", "1")], 1),
    ];
    for (text, want, n_problems) in cases {
        let r = Sources::new()
            .with_env(Env::from_map([(OTEL_EXPORTER_OTLP_HEADERS, *text)]))
            .resolve();
        let got: Vec<(&str, &str)> = r
            .config
            .signal(Signal::Metrics)
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(&got, want, "{text}");
        assert_eq!(r.problems.len(), *n_problems, "{text}: {:?}", r.problems);
        for p in &r.problems {
            assert_eq!(p.source, Source::Env(OTEL_EXPORTER_OTLP_HEADERS.into()));
        }
    }
}

#[test]
fn timeouts_are_milliseconds_in_spec_vars_and_seconds_in_short_form() {
    let cases: &[(Vars, Option<Duration>)] = &[
        (
            &[(OTEL_EXPORTER_OTLP_TIMEOUT, "2500")],
            Some(Duration::from_millis(2500)),
        ),
        (&[(OTLP_TIMEOUT, "30")], Some(Duration::from_secs(30))),
        (&[(OTLP_TIMEOUT, "45s")], Some(Duration::from_secs(45))),
        // The spec name wins over the short form.
        (
            &[(OTLP_TIMEOUT, "30"), (OTEL_EXPORTER_OTLP_TIMEOUT, "500")],
            Some(Duration::from_millis(500)),
        ),
        (
            &[
                (OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, "100"),
                (OTEL_EXPORTER_OTLP_TIMEOUT, "200"),
            ],
            Some(Duration::from_millis(100)),
        ),
        // Invalid: a problem, and the default stays.
        (&[(OTEL_EXPORTER_OTLP_TIMEOUT, "10s")], None),
        (&[(OTEL_EXPORTER_OTLP_TIMEOUT, "-5")], None),
        (&[(OTLP_TIMEOUT, "soon")], None),
    ];
    for (env, want) in cases {
        let (c, problems) = resolve(env);
        match want {
            Some(d) => {
                assert_eq!(c.signal(Signal::Traces).timeout, *d, "{env:?}");
                assert!(problems.is_empty(), "{env:?}: {problems:?}");
            }
            None => {
                assert_eq!(
                    c.signal(Signal::Traces).timeout,
                    Duration::from_secs(10),
                    "{env:?}"
                );
                // Per the spec: a warning, never an error that stops start-up.
                assert_eq!(problems.len(), 1, "{env:?}: {problems:?}");
                assert_eq!(problems[0].severity, Severity::Warning, "{env:?}");
                assert!(problems[0].hint.is_some());
            }
        }
    }
    // 0 means no limit (the spec): the longest timeout allowed, with a note.
    for env in [[(OTEL_EXPORTER_OTLP_TIMEOUT, "0")], [(OTLP_TIMEOUT, "0")]] {
        let (c, problems) = resolve(&env);
        assert_eq!(c.signal(Signal::Traces).timeout, Duration::from_secs(600));
        assert!(
            problems
                .iter()
                .all(|p| p.severity == Severity::Warning && p.message.contains("no timeout")),
            "{problems:?}"
        );
    }
}

#[test]
fn spec_names_win_over_short_forms() {
    let (c, _) = resolve(&[
        (OTLP_ENDPOINT, "http://short:4317"),
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://spec:4317"),
        (OTLP_PROTOCOL, "http/json"),
        (OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
    ]);
    assert_eq!(c.signal(Signal::Logs).endpoint, "http://spec:4317");
    assert_eq!(c.signal(Signal::Logs).protocol, Protocol::Grpc);
    let (c, problems) = resolve(&[
        (OTLP_ENDPOINT, "http://short:4318"),
        (OTLP_PROTOCOL, "http/protobuf"),
    ]);
    assert_eq!(c.signal(Signal::Logs).endpoint, "http://short:4318/v1/logs");
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn bad_values_are_reported_at_their_variable_with_a_suggestion() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            OTEL_EXPORTER_OTLP_PROTOCOL,
            "http",
            "protocol",
            "http/protobuf",
        ),
        (OTLP_PROTOCOL, "GRPC", "protocol", "grpc"),
        (OTEL_EXPORTER_OTLP_COMPRESSION, "gzp", "compression", "gzip"),
        (
            OTEL_EXPORTER_OTLP_TRACES_COMPRESSION,
            "snappy",
            "traces.compression",
            "accepted",
        ),
        (
            OTEL_EXPORTER_OTLP_ENDPOINT,
            "collector:99999",
            "endpoint",
            "between 1 and 65535",
        ),
        (
            OTEL_EXPORTER_OTLP_ENDPOINT,
            "grpc://c:4317",
            "endpoint",
            "protocol: grpc",
        ),
        (
            OTEL_EXPORTER_OTLP_INSECURE,
            "yes",
            "tls.insecure",
            "true or false",
        ),
        (OTLP_PRESET, "fast", "preset", "accepted"),
    ];
    for (var, value, path, hint_has) in cases {
        let (_, problems) = resolve(&[(var, value)]);
        let p = problems
            .iter()
            .find(|p| p.severity == Severity::Error)
            .unwrap_or_else(|| panic!("{var}={value}: {problems:?}"));
        assert_eq!(p.path, *path, "{var}");
        assert_eq!(p.source, Source::Env((*var).to_owned()));
        let hint = p.hint.as_deref().unwrap_or("");
        assert!(hint.contains(hint_has), "{var}={value}: hint {hint:?}");
    }
}

#[test]
fn unknown_exporter_variables_warn_with_the_nearest_name() {
    let (_, problems) = resolve(&[("OTEL_EXPORTER_OTLP_ENDPIONT", "http://x:4317")]);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].severity, Severity::Warning);
    assert_eq!(
        problems[0].hint.as_deref(),
        Some("did you mean OTEL_EXPORTER_OTLP_ENDPOINT?")
    );
}

#[test]
fn precedence_is_default_then_file_then_env_then_flags() {
    let file = otlp_config::ConfigFile::parse(
        "c.yaml",
        "endpoint: http://file:4317\ntimeout: 3s\ncompression: gzip\npreset: low_latency\ntraces:\n  endpoint: http://file-traces:4317\n",
    )
    .unwrap();
    let env = Env::from_map([
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://env:4317"),
        (OTEL_EXPORTER_OTLP_TIMEOUT, "4000"),
    ]);
    let flags = Flags::new().with_flag("--timeout", "timeout", "5s");
    let r = Sources::new()
        .with_file(file)
        .with_env(env)
        .with_flags(flags)
        .resolve();
    assert!(r.is_valid(), "{:?}", r.problems);
    let c = &r.config;
    // A file's per-signal endpoint beats the generic env endpoint (signal-specific wins).
    assert_eq!(c.signal(Signal::Traces).endpoint, "http://file-traces:4317");
    assert_eq!(c.signal(Signal::Metrics).endpoint, "http://env:4317");
    assert_eq!(c.signal(Signal::Logs).timeout, Duration::from_secs(5));
    assert_eq!(c.signal(Signal::Logs).compression, Compression::Gzip);
    assert_eq!(
        c.batch.max_batch_size, 100,
        "low_latency preset from the file"
    );
    assert_eq!(
        r.source_of("timeout"),
        Some(&Source::Flag("--timeout".into()))
    );
    assert_eq!(
        r.source_of("endpoint"),
        Some(&Source::Env(OTEL_EXPORTER_OTLP_ENDPOINT.into()))
    );
    assert!(matches!(
        r.source_of("compression"),
        Some(Source::File {
            line: 3,
            column: 14,
            ..
        })
    ));
}
