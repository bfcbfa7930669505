#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The agent (`otlp-client run`) forwards what the official OpenTelemetry
//! Python SDK sends to it into a sink, losing nothing; and `send` through the
//! agent is delivered whole. Real processes, 127.0.0.1 only, bounded waits.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

mod common;

use common::*;

/// Starts the agent forwarding to `upstream` (gRPC); returns it with its
/// gRPC, HTTP and admin addresses once `/health/live` answers.
fn agent(upstream: &str, dir: &Path) -> (Proc, String, String, String) {
    let a = start_agent(upstream, dir, "");
    (a.proc, a.grpc, a.http, a.admin)
}

#[test]
fn agent_forwards_what_the_python_sdk_sends_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let (_agent, grpc, http, admin) = agent(&sink.grpc, dir.path());
    let script = root().join("crates/otlp-transport/tests/python/receive_peer.py");
    for (protocol, endpoint) in [("grpc", grpc.clone()), ("http", format!("http://{http}"))] {
        let out = Command::new(python())
            .arg(&script)
            .args([protocol, &endpoint])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python SDK export over {protocol} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The script sends 3 spans, 3 metric points and 2 log records per protocol.
    let stats = sink.wait_for((6, 6, 4));
    assert_eq!(stats["spans"], 6, "{stats}");
    assert_eq!(stats["data_points"], 6, "{stats}");
    assert_eq!(stats["log_records"], 4, "{stats}");
    let (_, metrics) = http_get(&admin, "/metrics");
    assert!(
        metrics.contains("otlp_items_sent_total{signal=\"traces\"} 6"),
        "{metrics}"
    );
}

#[test]
fn send_through_the_agent_is_delivered_whole() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let (_agent, _grpc, http, _admin) = agent(&sink.grpc, dir.path());
    let out = bin()
        .args([
            "send",
            "--endpoint",
            &format!("http://{http}"),
            "--protocol",
            "http/protobuf",
            "--signal",
            "all",
            "--count",
            "5000",
            "--report",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = sink.wait_for((5000, 5000, 5000));
    assert_eq!(stats["spans"], 5000, "{stats}");
    assert_eq!(stats["data_points"], 5000, "{stats}");
    assert_eq!(stats["log_records"], 5000, "{stats}");
}

#[test]
fn sigterm_stops_intake_flushes_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let (mut agent, _grpc, http, _admin) = agent(&sink.grpc, dir.path());
    let out = bin()
        .args([
            "send",
            "--endpoint",
            &format!("http://{http}"),
            "--protocol",
            "http/protobuf",
            "--count",
            "2000",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let pid = agent.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "agent did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "agent exit status after SIGTERM: {status}"
    );
    let stats = sink.wait_for((2000, 0, 0));
    assert_eq!(stats["spans"], 2000, "{stats}");
}
