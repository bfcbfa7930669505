#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The agent (`otlp-client run`) forwards what the official OpenTelemetry
//! Python SDK sends to it into a sink, losing nothing; and `send` through the
//! agent is delivered whole. Real processes, 127.0.0.1 only, bounded waits.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_otlp-client"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") || k.starts_with("OTLP_") {
            c.env_remove(k);
        }
    }
    c
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let p = std::env::var_os("OTLP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".ci/venv/bin/python"));
    assert!(
        p.exists(),
        "python with the OpenTelemetry SDK not found at {}: run `bash .ci/run` (or `cargo xtask setup`) to create .ci/venv",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split("\r\n\r\n").nth(1).map(str::to_owned)
}

/// Starts a sink; returns it with its gRPC and HTTP addresses.
fn sink() -> (Proc, String, String) {
    let mut child = bin()
        .args(["sink", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    (
        Proc(child),
        v["grpc"].as_str().unwrap().to_owned(),
        v["http"].as_str().unwrap().to_owned(),
    )
}

/// Starts the agent forwarding to `upstream` (gRPC); returns it with its
/// gRPC, HTTP and admin addresses once `/health/live` answers.
fn agent(upstream: &str, dir: &Path) -> (Proc, String, String, String) {
    let (g, h, a) = (free_port(), free_port(), free_port());
    let config = dir.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "endpoint: http://{upstream}\nprotocol: grpc\nreceivers:\n  grpc: 127.0.0.1:{g}\n  http: 127.0.0.1:{h}\nadmin:\n  listen: 127.0.0.1:{a}\nbatch:\n  batch_timeout: 100ms\nqueue:\n  overflow: block\n"
        ),
    )
    .unwrap();
    let child = bin()
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let admin = format!("127.0.0.1:{a}");
    let started = Instant::now();
    while http_get(&admin, "/health/live").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "agent did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        proc,
        format!("127.0.0.1:{g}"),
        format!("127.0.0.1:{h}"),
        admin,
    )
}

fn wait_stats(http: &str, want: (u64, u64, u64)) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let stats: serde_json::Value =
            serde_json::from_str(&http_get(http, "/stats").unwrap()).unwrap();
        let got = (
            stats["spans"].as_u64().unwrap(),
            stats["data_points"].as_u64().unwrap(),
            stats["log_records"].as_u64().unwrap(),
        );
        if got == want || started.elapsed() > Duration::from_secs(20) {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn agent_forwards_what_the_python_sdk_sends_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (_sink, sink_grpc, sink_http) = sink();
    let (_agent, grpc, http, admin) = agent(&sink_grpc, dir.path());
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
    let stats = wait_stats(&sink_http, (6, 6, 4));
    assert_eq!(stats["spans"], 6, "{stats}");
    assert_eq!(stats["data_points"], 6, "{stats}");
    assert_eq!(stats["log_records"], 4, "{stats}");
    let metrics = http_get(&admin, "/metrics").unwrap();
    assert!(
        metrics.contains("otlp_items_sent_total{signal=\"traces\"} 6"),
        "{metrics}"
    );
}

#[test]
fn send_through_the_agent_is_delivered_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (_sink, sink_grpc, sink_http) = sink();
    let (_agent, _grpc, http, _admin) = agent(&sink_grpc, dir.path());
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
    let stats = wait_stats(&sink_http, (5000, 5000, 5000));
    assert_eq!(stats["spans"], 5000, "{stats}");
    assert_eq!(stats["data_points"], 5000, "{stats}");
    assert_eq!(stats["log_records"], 5000, "{stats}");
}
