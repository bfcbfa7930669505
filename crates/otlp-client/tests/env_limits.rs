#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue 19's "limits and env": `insecure` as the OTLP spec means it, the
//! loud `tls.insecure_skip_verify`, and the environment variables the binary
//! must know, driven through the real binary on 127.0.0.1.

use std::{
    net::{SocketAddr, TcpListener},
    time::Duration,
};

mod common;

use common::*;

/// A port nobody listens on: bind, note the port, close.
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

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
