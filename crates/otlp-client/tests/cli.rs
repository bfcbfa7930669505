#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `otlp-client` binary driven as a user would: real processes, real
//! sockets on 127.0.0.1, bounded waits.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

mod common;

use common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../otlp-config")
        .join(name)
}

#[test]
fn help_lists_every_command() {
    let out = run(bin().arg("--help"), Duration::from_secs(10));
    assert!(out.status.success());
    let t = text(&out);
    for cmd in [
        "run",
        "send",
        "sink",
        "diagnose",
        "demo",
        "validate-config",
        "explain-config",
    ] {
        assert!(t.contains(cmd), "--help misses {cmd}:\n{t}");
    }
}

#[test]
fn validate_config_exit_codes_follow_the_contract() {
    let ok = run(
        bin()
            .args(["validate-config"])
            .arg(fixture("configs/minimal.yaml")),
        Duration::from_secs(10),
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let bad = run(
        bin()
            .args(["validate-config"])
            .arg(fixture("tests/fixtures/typos.yaml")),
        Duration::from_secs(10),
    );
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("did you mean"), "{}", text(&bad));
    let unreadable = run(
        bin().args(["validate-config", "/nonexistent/otlp.yaml"]),
        Duration::from_secs(10),
    );
    assert_eq!(unreadable.status.code(), Some(2), "{}", text(&unreadable));
    // The seed guide's spelling.
    let seed = run(
        bin()
            .arg("--validate-config")
            .arg(fixture("tests/fixtures/typos.yaml")),
        Duration::from_secs(10),
    );
    assert_eq!(seed.status.code(), Some(1), "{}", text(&seed));
}

#[test]
fn explain_config_shows_sources_and_redacts_headers() {
    let out = run(
        bin()
            .args(["explain-config", "--endpoint", "http://10.1.2.3:4317"])
            .env(
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20s3cret",
            ),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("10.1.2.3"), "{t}");
    assert!(t.contains("flag"), "{t}");
    assert!(!t.contains("s3cret"), "secret leaked:\n{t}");
}

#[test]
fn diagnose_a_closed_port_says_the_collector_is_not_running() {
    let addr = closed_port();
    let out = run(
        bin().args([
            "diagnose",
            "--endpoint",
            &format!("http://{addr}"),
            "--timeout",
            "2s",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out).to_lowercase();
    assert!(t.contains("refused"), "{t}");
}

#[test]
fn diagnose_an_http1_server_on_the_grpc_port_names_the_protocol_mismatch() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        for _ in 0..4 {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let out = run(
        bin().args([
            "diagnose",
            "--endpoint",
            &format!("http://{addr}"),
            "--protocol",
            "grpc",
            "--timeout",
            "2s",
            "--json",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out).to_lowercase();
    assert!(t.contains("http/1") || t.contains("protocol"), "{t}");
    drop(server);
}

#[test]
fn diagnose_a_working_sink_passes_every_step() {
    let sink = Sink::start();
    for (endpoint, protocol) in [
        (format!("http://{}", sink.grpc), "grpc"),
        (format!("http://{}", sink.http), "http/protobuf"),
    ] {
        let out = run(
            bin().args([
                "diagnose",
                "--endpoint",
                &endpoint,
                "--protocol",
                protocol,
                "--json",
            ]),
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(0), "{protocol}: {}", text(&out));
    }
}

#[test]
fn send_delivers_every_item_to_the_sink() {
    let sink = Sink::start();
    for (endpoint, protocol) in [
        (format!("http://{}", sink.grpc), "grpc"),
        (format!("http://{}", sink.http), "http/protobuf"),
        (format!("http://{}", sink.http), "http/json"),
    ] {
        let out = run(
            bin().args([
                "send",
                "--endpoint",
                &endpoint,
                "--protocol",
                protocol,
                "--signal",
                "all",
                "--count",
                "2000",
                "--report",
                "json",
            ]),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(0), "{protocol}: {}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["generated"], 6000, "{report}");
        assert_eq!(report["sent"], 6000, "{report}");
        assert_eq!(report["dropped"], 0, "{report}");
    }
    let stats = sink.stats();
    assert_eq!(stats["spans"], 6000, "{stats}");
    assert_eq!(stats["data_points"], 6000, "{stats}");
    assert_eq!(stats["log_records"], 6000, "{stats}");
}

#[test]
fn send_to_a_dead_collector_reports_failures_and_exits_non_zero() {
    let addr = closed_port();
    let out = run(
        bin().args([
            "send",
            "--endpoint",
            &format!("http://{addr}"),
            "--count",
            "100",
            "--flush-timeout",
            "3s",
            "--report",
            "json",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let accounted = report["sent"].as_u64().unwrap()
        + report["dropped"].as_u64().unwrap()
        + report["failed"].as_u64().unwrap()
        + report["left_queued"].as_u64().unwrap();
    assert_eq!(accounted, report["accepted"].as_u64().unwrap(), "{report}");
    assert_eq!(report["sent"], 0, "{report}");
}

#[test]
fn demo_runs_end_to_end_and_delivers_everything() {
    let out = run(
        bin().args(["demo", "--count", "3000"]),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("every item was delivered"), "{t}");
    assert!(t.contains("/metrics"), "{t}");
    assert!(
        t.contains("sink received: 3000 spans, 3000 data points, 3000 log records"),
        "{t}"
    );
}

/// A TLS server with a self-signed certificate for `localhost` (a CA the
/// client does not know), completing handshakes on a background thread.
fn tls_server_with_unknown_ca() -> SocketAddr {
    let cert = otlp_test_support::rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            // Bounded: a handful of handshakes, then the thread ends with the test.
            for _ in 0..16 {
                let Ok(Ok((tcp, _))) =
                    tokio::time::timeout(Duration::from_secs(30), listener.accept()).await
                else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = acceptor.accept(tcp).await;
                });
            }
        });
    });
    addr
}

#[test]
fn diagnose_a_tls_server_with_an_unknown_ca_names_the_ca_problem() {
    let addr = tls_server_with_unknown_ca();
    let out = run(
        bin().args([
            "diagnose",
            "--endpoint",
            &format!("https://localhost:{}", addr.port()),
            "--timeout",
            "3s",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("unknown CA"), "{t}");
    assert!(t.contains("ca_file"), "the fix names the setting: {t}");
}

#[test]
fn json_logs_go_to_the_log_file_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("otlp.log");
    let addr = closed_port();
    let out = run(
        bin()
            .args(["--log-format", "json", "--log-file"])
            .arg(&log)
            .args([
                "send",
                "--endpoint",
                &format!("http://{addr}"),
                "--count",
                "10",
                "--flush-timeout",
                "2s",
            ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let lines = std::fs::read_to_string(&log).unwrap();
    assert!(!lines.trim().is_empty(), "no log lines written");
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        assert!(v.get("level").is_some(), "{line}");
    }
}

#[test]
fn sink_writes_otlp_json_lines_and_exits_after_the_expected_count() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("received.jsonl");
    let mut sink = Sink::start_with(&[
        "--expect".as_ref(),
        "30".as_ref(),
        "--output".as_ref(),
        output.as_os_str(),
    ]);
    let grpc = sink.grpc.clone();
    let out = run(
        bin().args([
            "send",
            "--endpoint",
            &format!("http://{grpc}"),
            "--signal",
            "all",
            "--count",
            "10",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The sink exits by itself once 30 items arrived, printing its counts.
    let last = sink.wait_exit();
    let counts: serde_json::Value = serde_json::from_str(last.trim()).unwrap();
    assert_eq!(counts["spans"], 10, "{counts}");
    let written = std::fs::read_to_string(&output).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for l in written.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        for k in ["resourceSpans", "resourceMetrics", "resourceLogs"] {
            if v.get(k).is_some() {
                kinds.insert(k);
            }
        }
    }
    assert_eq!(kinds.len(), 3, "OTLP/JSON lines of every signal: {written}");
}

#[test]
fn send_to_a_dead_collector_names_the_cause_per_signal_and_keeps_secrets_out() {
    let addr = closed_port();
    let secret = "s3cr3t-t0ken";
    let send = |report: &str| {
        run(
            bin()
                .args([
                    "send",
                    "--endpoint",
                    &format!("http://{addr}"),
                    "--signal",
                    "all",
                    "--count",
                    "20",
                    "--flush-timeout",
                    "2s",
                    "--report",
                    report,
                ])
                .env(
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    format!("authorization=Bearer%20{secret}"),
                ),
            Duration::from_secs(60),
        )
    };
    let out = send("json");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        !text(&out).contains(secret),
        "secret leaked:\n{}",
        text(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for signal in ["traces", "metrics", "logs"] {
        let s = &report["per_signal"][signal];
        assert_eq!(s["sent"], 0, "{report}");
        let undelivered = s["dropped"].as_u64().unwrap() + s["failed"].as_u64().unwrap();
        assert_eq!(undelivered, 20, "{report}");
        let last = s["last_error"].as_str().unwrap_or_default();
        assert!(last.contains("refused"), "{signal}: {report}");
    }
    let out = send("text");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("last error (traces):"), "{t}");
    assert!(t.contains("connection refused"), "{t}");
    assert!(
        !text(&out).contains(secret),
        "secret leaked:\n{}",
        text(&out)
    );
}

#[test]
fn diagnose_refuses_a_bad_endpoint_or_protocol_instead_of_probing_the_defaults() {
    for (args, hint) in [
        (["--endpoint", "ftp://127.0.0.1:1"], "http://"),
        (["--endpoint", "not a url"], "hint"),
    ] {
        let out = run(
            bin().arg("diagnose").args(args).args(["--timeout", "1s"]),
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(hint), "{args:?}: {stderr}");
        assert!(
            stderr.contains("does not fall back to the defaults"),
            "{stderr}"
        );
        // Nothing was probed: no diagnosis of localhost:4317.
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("4317 (grpc)"), "{}", text(&out));
    }
    // A bad --protocol never gets that far: the parser refuses it with the
    // values it takes, and nothing is probed.
    let out = run(
        bin().args(["diagnose", "--protocol", "grcp", "--timeout", "1s"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("possible values: grpc, http/protobuf, http/json"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "{}", text(&out));
}

#[test]
fn grpc_sent_to_an_otlp_http_sink_names_the_protocol_mismatch() {
    let sink = Sink::start();
    let endpoint = format!("http://{}", sink.http);
    let out = run(
        bin().args([
            "diagnose",
            "--endpoint",
            &endpoint,
            "--protocol",
            "grpc",
            "--timeout",
            "3s",
            "--json",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let probe = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "otlp_probe")
        .unwrap();
    assert_eq!(probe["verdict"], "fail", "{d}");
    assert!(
        probe["detail"]
            .as_str()
            .unwrap()
            .starts_with("protocol mismatch"),
        "{d}"
    );
    let fix = probe["fix"].as_str().unwrap();
    assert!(fix.contains("looks like an OTLP/HTTP server"), "{d}");
    assert!(fix.contains("--protocol http/protobuf"), "{d}");
    assert!(fix.contains("4317"), "{d}");

    let out = run(
        bin().args([
            "send",
            "--endpoint",
            &endpoint,
            "--protocol",
            "grpc",
            "--count",
            "10",
            "--flush-timeout",
            "3s",
            "--report",
            "json",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let last = report["per_signal"]["traces"]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(last.contains("protocol mismatch"), "{report}");
    assert!(last.contains("--protocol http/protobuf"), "{report}");
    assert!(last.contains("4317"), "{report}");
}

/// Spawns `cmd` with stdout a pipe whose read end is closed at once (as in
/// `otlp-client … | true`), then waits up to `limit`; `before_wait` runs
/// after the spawn (e.g. to stop an agent). Returns the exit code and stderr.
fn with_closed_stdout(
    cmd: &mut std::process::Command,
    limit: Duration,
    before_wait: impl FnOnce(u32, &dyn Fn() -> String),
) -> (Option<i32>, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    // Read stderr on the side so a chatty child never blocks on it;
    // `before_wait` can look at what it wrote so far.
    let mut stderr = child.stderr.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                seen.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        })
    };
    let so_far = || String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    before_wait(child.id(), &so_far);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    reader.join().unwrap();
    (status.code(), so_far())
}

#[test]
fn every_command_exits_quietly_on_a_closed_stdout() {
    let addr = closed_port();
    let endpoint = format!("http://{addr}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("valid.yaml");
    std::fs::write(&config, "endpoint: http://127.0.0.1:4317\n").unwrap();
    let short_send = [
        "--count",
        "10",
        "--flush-timeout",
        "1s",
        "--endpoint",
        &endpoint,
    ];
    // (arguments, the exit code the command has with an open stdout)
    let cases: Vec<(Vec<&str>, i32)> = vec![
        ([&["send"][..], &short_send].concat(), 1),
        ([&["send", "--report", "json"][..], &short_send].concat(), 1),
        (
            vec!["diagnose", "--endpoint", &endpoint, "--timeout", "1s"],
            1,
        ),
        (
            vec![
                "diagnose",
                "--json",
                "--endpoint",
                &endpoint,
                "--timeout",
                "1s",
            ],
            1,
        ),
        (vec!["demo", "--count", "100"], 0),
        (
            vec![
                "sink",
                "--grpc",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--expect",
                "0",
            ],
            0,
        ),
        (vec!["--help"], 0),
        (vec!["explain-config"], 0),
        (vec!["validate-config", config.to_str().unwrap()], 0),
    ];
    for (args, code) in cases {
        let (got, stderr) =
            with_closed_stdout(bin().args(&args), Duration::from_secs(60), |_, _| {});
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
        assert_eq!(got, Some(code), "{args:?}:\n{stderr}");
    }
}

#[cfg(unix)]
#[test]
fn the_agent_exits_cleanly_on_sigterm_with_a_closed_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "endpoint: http://{}\nreceivers:\n  grpc: 127.0.0.1:0\n  http: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n",
            closed_port()
        ),
    )
    .unwrap();
    let (code, stderr) = with_closed_stdout(
        bin()
            .args(["run", "--shutdown-timeout", "1s", "--config"])
            .arg(&config),
        Duration::from_secs(60),
        |pid, stderr| {
            let started = Instant::now();
            // The admin server logs its address once bound.
            let admin = loop {
                if let Some(admin) = logged_addr(&stderr(), "admin server listening") {
                    break admin;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "agent did not log its admin address: {}",
                    stderr()
                );
                std::thread::sleep(Duration::from_millis(50));
            };
            while try_http_get(&admin, "/health/live").is_none() {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "agent did not start"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            let kill = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap();
            assert!(kill.success());
        },
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
}
