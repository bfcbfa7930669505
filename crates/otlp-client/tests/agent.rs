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

#[test]
fn run_refuses_to_start_when_receivers_are_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        "receivers:\n  enabled: false\nadmin:\n  listen: 127.0.0.1:0\n",
    )
    .unwrap();
    let out = run(
        bin().args(["run", "--config"]).arg(&config),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("receivers.enabled is false"),
        "{}",
        text(&out)
    );
}

/// The listening sockets of port `port` in /proc/net/tcp, as `ADDR:PORT` hex.
fn listeners(port: u16) -> Vec<String> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    tcp.lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // State 0A is LISTEN.
            (cols.get(3) == Some(&"0A") && cols[1].ends_with(&format!(":{port:04X}")))
                .then(|| cols[1].to_owned())
        })
        .collect()
}

#[test]
fn a_bare_run_receives_on_loopback_only() {
    // Nothing else in the suite binds the default ports.
    assert!(listeners(4317).is_empty() && listeners(4318).is_empty());
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "endpoint: http://{}\nadmin:\n  listen: 127.0.0.1:0\n",
            sink.grpc
        ),
    )
    .unwrap();
    // Each address is logged once bound; lossy, the rest is not read.
    let (_agent, rx) = spawn_json_agent(&config, &[], true);
    let (_, grpc, http, _) = read_addresses(&rx);
    assert_eq!(
        (grpc.as_str(), http.as_str()),
        ("127.0.0.1:4317", "127.0.0.1:4318")
    );
    // 0100007F is 127.0.0.1; 00000000 would be every interface.
    assert_eq!(listeners(4317), vec!["0100007F:10DD".to_owned()]);
    assert_eq!(listeners(4318), vec!["0100007F:10DE".to_owned()]);
}

/// Starts `otlp-client run` under `sh -c 'ulimit …; exec …'` with its log in
/// `dir/agent.log`; returns the process and its log path once `/health/live`
/// answers, plus the HTTP receiver's address.
fn agent_with_ulimit(ulimit: &str, dir: &Path, sink: &str) -> (Proc, std::path::PathBuf, String) {
    let config = dir.join("agent.yaml");
    std::fs::write(
        &config,
        format!("endpoint: http://{sink}\nreceivers:\n  http: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n"),
    )
    .unwrap();
    let log = dir.join("agent.log");
    let program = bin().get_program().to_owned();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{ulimit} && exec \"$0\" run --config \"$1\""))
        .arg(program)
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") || k.starts_with("OTLP_") {
            cmd.env_remove(k);
        }
    }
    let agent = Proc(cmd.spawn().unwrap());
    let started = Instant::now();
    // The agent logs the address of each listener once bound.
    let (admin, http) = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let admin = logged_addr(&text, "admin server listening");
        if let (Some(a), Some(h)) = (admin, logged_addr(&text, "OTLP/HTTP receiver listening")) {
            break (a, h);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "agent did not log its addresses: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    while try_http_get(&admin, "/health/live").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "agent did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (agent, log, http)
}

/// The soft and hard "Max open files" of process `pid`.
fn open_files_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    (cols[3].to_owned(), cols[4].to_owned())
}

#[test]
fn run_raises_the_soft_descriptor_limit_to_the_hard_one() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let (agent, log, _) =
        agent_with_ulimit("ulimit -Sn 256 && ulimit -Hn 4096", dir.path(), &sink.grpc);
    assert_eq!(
        open_files_limit(agent.0.id()),
        ("4096".to_owned(), "4096".to_owned())
    );
    let log = std::fs::read_to_string(log).unwrap();
    assert!(!log.contains("cannot hold"), "{log}");
}

#[test]
fn run_caps_connections_to_what_the_descriptor_limit_holds_and_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    // 300 descriptors: 128 reserved, 64 admin connections, 108 left for the
    // one receiver (only the HTTP receiver is configured).
    let (agent, log, http) = agent_with_ulimit("ulimit -n 300", dir.path(), &sink.grpc);
    assert_eq!(open_files_limit(agent.0.id()).0, "300");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("cannot hold 1024 connections per receiver")
            .count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("capped each receiver at 108 connections") && text.contains("ulimit -n"),
        "{text}"
    );
    // Connections past the cap close at once; those within it stay open and
    // the agent keeps serving (no EMFILE).
    let conns: Vec<std::net::TcpStream> = (0..140)
        .map(|_| std::net::TcpStream::connect(&http).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut closed = 0;
    for c in &conns {
        c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        // Ok(0) is a close by the agent; a timeout means still open.
        if matches!(std::io::Read::read(&mut &*c, &mut [0u8; 1]), Ok(0)) {
            closed += 1;
        }
    }
    assert!(
        (140 - 108..140 - 100).contains(&closed),
        "{closed} of 140 connections closed (108 fit)"
    );
    drop(conns);
    // Once the agent has seen those close, a new connection is served again.
    let started = Instant::now();
    while try_http_get(&http, "/").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not served after the connections closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("too many open files"), "{text}");
}
