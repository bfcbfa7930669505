#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 19's "limits and env": `insecure` as the OTLP spec means it, the
//! loud `tls.insecure_skip_verify`, and the environment variables the binary
//! must know, driven through the real binary on 127.0.0.1.

use std::time::Duration;

mod common;

use common::*;

#[test]
fn send_to_a_scheme_less_grpc_endpoint_is_plaintext_only_when_insecure_is_true() {
    let sink = Sink::start();
    // `127.0.0.1:PORT`, no scheme, as OTLP's gRPC examples write it.
    let out = run(
        bin()
            .args([
                "send",
                "--endpoint",
                &sink.grpc,
                "--count",
                "10",
                "--report",
                "json",
            ])
            .env("OTEL_EXPORTER_OTLP_INSECURE", "true"),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sent"], 10, "{report}");
    assert_eq!(sink.stats()["spans"], 10);
    // Without it the endpoint means TLS, which the plaintext sink cannot speak.
    let out = run(
        bin().args([
            "send",
            "--endpoint",
            &sink.grpc,
            "--count",
            "10",
            "--flush-timeout",
            "2s",
            "--report",
            "json",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sent"], 0, "{report}");
    assert_eq!(sink.stats()["spans"], 10);
}

#[test]
fn insecure_skip_verify_is_warned_about_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    let addr = closed_port();
    std::fs::write(
        &config,
        format!("endpoint: https://localhost:{}\ntls:\n  insecure_skip_verify: true\nretry:\n  max_retries: 0\n", addr.port()),
    )
    .unwrap();
    let out = run(
        bin()
            .args(["send", "--count", "1", "--flush-timeout", "1s", "--config"])
            .arg(&config),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.contains("WARN")
            && l.contains("tls.insecure_skip_verify is on")
            && l.contains("NOT verified")),
        "{}",
        text(&out)
    );
    // The same config without the key logs no such line.
    std::fs::write(
        &config,
        format!(
            "endpoint: https://localhost:{}\nretry:\n  max_retries: 0\n",
            addr.port()
        ),
    )
    .unwrap();
    let out = run(
        bin()
            .args(["send", "--count", "1", "--flush-timeout", "1s", "--config"])
            .arg(&config),
        Duration::from_secs(60),
    );
    assert!(
        !text(&out).contains("insecure_skip_verify"),
        "{}",
        text(&out)
    );
}

#[test]
fn send_applies_otel_service_name_and_resource_attributes_to_what_it_produces() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("received.jsonl");
    let mut sink = Sink::start_with(&[
        "--expect".as_ref(),
        "5".as_ref(),
        "--output".as_ref(),
        output.as_os_str(),
    ]);
    let grpc = sink.grpc.clone();
    let out = run(
        bin()
            .args([
                "send",
                "--endpoint",
                &format!("http://{grpc}"),
                "--count",
                "5",
            ])
            .env("OTEL_SERVICE_NAME", "checkout")
            .env(
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=ignored,deployment.environment=prod%20eu,broken",
            )
            .env("OTLP_LOG", "info"),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    sink.wait_exit();
    let written = std::fs::read_to_string(&output).unwrap();
    let first: serde_json::Value = serde_json::from_str(written.lines().next().unwrap()).unwrap();
    let attrs = &first["resourceSpans"][0]["resource"]["attributes"];
    let value = |key: &str| {
        attrs
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"]["stringValue"].clone())
    };
    assert_eq!(value("service.name"), Some("checkout".into()), "{attrs}");
    assert_eq!(
        value("deployment.environment"),
        Some("prod eu".into()),
        "{attrs}"
    );
    assert_eq!(value("host.name"), Some("loadgen".into()), "{attrs}");
    // The malformed entry is a warning, not a failure; OTLP_LOG is known.
    let t = text(&out);
    assert!(!t.contains("unknown variable OTLP_LOG"), "{t}");
}

#[test]
fn explain_config_knows_otlp_log_and_the_temporality_preference() {
    let out = run(
        bin()
            .arg("explain-config")
            .env("OTLP_LOG", "debug")
            .env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(!t.contains("unknown variable"), "{t}");
    assert!(t.contains("metrics.temporality_preference"), "{t}");
}
