//! End-to-end tests of the benchmark binaries as separate processes, the way
//! `cargo xtask bench` runs them: count-sink receives, peer-otlp (or our
//! ours-native / ours-sdk) produces.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use otlp_benches::shape;

const SINK: &str = env!("CARGO_BIN_EXE_count-sink");
const PEER: &str = env!("CARGO_BIN_EXE_peer-otlp");
const OURS_NATIVE: &str = env!("CARGO_BIN_EXE_ours-native");
const OURS_SDK: &str = env!("CARGO_BIN_EXE_ours-sdk");

struct Sink {
    child: Child,
    lines: mpsc::Receiver<String>,
    grpc: String,
    http: String,
}

impl Sink {
    fn start(args: &[&str]) -> Sink {
        let mut child = Command::new(SINK)
            .args(args)
            .args(["--max-secs", "60"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::sync_channel(8);
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first: serde_json::Value =
            serde_json::from_str(&lines.recv_timeout(Duration::from_secs(20)).unwrap()).unwrap();
        assert_eq!(first["event"], "listening");
        Sink {
            child,
            lines,
            grpc: first["grpc"].as_str().unwrap().to_owned(),
            http: first["http"].as_str().unwrap().to_owned(),
        }
    }

    fn final_counts(mut self) -> serde_json::Value {
        let line = self.lines.recv_timeout(Duration::from_secs(30)).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peer(args: &[&str]) -> serde_json::Value {
    producer(PEER, args)
}

fn producer(bin: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn delivers_everything(signal: &str, protocol: &str) {
    let sink = Sink::start(&["--expect", "3000"]);
    let addr = if protocol == "grpc" {
        &sink.grpc
    } else {
        &sink.http
    };
    let endpoint = format!("http://{addr}");
    let report = peer(&[
        "--signal",
        signal,
        "--protocol",
        protocol,
        "--endpoint",
        &endpoint,
        "--count",
        "3000",
        "--queue",
        "4096",
    ]);
    assert_eq!(report["created"], 3000);
    assert_eq!(report["shutdown_ok"], true, "{report}");
    let counts = sink.final_counts();
    assert_eq!(counts["reason"], "expect");
    assert_eq!(counts[format!("{signal}_items")], 3000, "{counts}");
    assert_eq!(counts["items"], 3000);
    assert_eq!(counts[format!("{signal}_errors")], 0);
    assert!(counts["cpu_s"].as_f64().unwrap() >= 0.0);
}

#[test]
fn peer_delivers_every_span_over_grpc_when_the_queue_holds_the_run() {
    delivers_everything("traces", "grpc");
}

#[test]
fn peer_delivers_every_span_over_http_when_the_queue_holds_the_run() {
    delivers_everything("traces", "http");
}

#[test]
fn peer_delivers_every_log_record_over_grpc() {
    delivers_everything("logs", "grpc");
}

/// Runs one of our producers under `block` and checks that the sink got
/// every item and that our pipeline's own accounting says the same.
fn ours_delivers_everything(bin: &str, signal: &str, protocol: &str) {
    let sink = Sink::start(&["--expect", "3000"]);
    let addr = if protocol == "grpc" {
        &sink.grpc
    } else {
        &sink.http
    };
    let endpoint = format!("http://{addr}");
    let report = producer(
        bin,
        &[
            "--signal",
            signal,
            "--protocol",
            protocol,
            "--endpoint",
            &endpoint,
            "--count",
            "3000",
            "--overflow",
            "block",
        ],
    );
    assert_eq!(report["created"], 3000, "{report}");
    assert_eq!(report["accepted"], 3000, "{report}");
    assert_eq!(report["sent"], 3000, "{report}");
    assert_eq!(report["dropped_total"], 0, "{report}");
    assert_eq!(report["refused"], 0, "{report}");
    assert_eq!(report["shutdown_ok"], true, "{report}");
    let counts = sink.final_counts();
    assert_eq!(counts[format!("{signal}_items")], 3000, "{counts}");
    assert_eq!(counts[format!("{signal}_errors")], 0, "{counts}");
}

#[test]
fn ours_native_delivers_every_span_over_grpc_under_block() {
    ours_delivers_everything(OURS_NATIVE, "traces", "grpc");
}

#[test]
fn ours_native_delivers_every_span_over_http_under_block() {
    ours_delivers_everything(OURS_NATIVE, "traces", "http");
}

#[test]
fn ours_native_delivers_every_log_record_over_grpc_under_block() {
    ours_delivers_everything(OURS_NATIVE, "logs", "grpc");
}

#[test]
fn ours_native_delivers_every_preencoded_span_including_the_remainder() {
    let sink = Sink::start(&["--expect", "3000"]);
    let endpoint = format!("http://{}", sink.grpc);
    // 3000 = 5 requests of 512 + one of 440.
    let report = producer(
        OURS_NATIVE,
        &[
            "--endpoint",
            &endpoint,
            "--count",
            "3000",
            "--overflow",
            "block",
            "--preencoded",
            "512",
        ],
    );
    assert_eq!(report["sent"], 3000, "{report}");
    assert_eq!(report["dropped_total"], 0, "{report}");
    let counts = sink.final_counts();
    assert_eq!(counts["traces_items"], 3000, "{counts}");
}

#[test]
fn ours_sdk_delivers_every_span_over_grpc_under_block() {
    ours_delivers_everything(OURS_SDK, "traces", "grpc");
}

#[test]
fn ours_sdk_delivers_every_span_over_http_under_block() {
    ours_delivers_everything(OURS_SDK, "traces", "http");
}

#[test]
fn ours_sdk_delivers_every_log_record_over_grpc_under_block() {
    ours_delivers_everything(OURS_SDK, "logs", "grpc");
}

#[test]
fn sink_prints_final_counts_on_sigterm() {
    let sink = Sink::start(&[]);
    let body = shape::encode(&shape::trace_request(7)).unwrap();
    let mut s = TcpStream::connect(&sink.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let mut status = String::new();
    BufReader::new(&s).read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let killed = Command::new("kill")
        .args(["-TERM", &sink.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let counts = sink.final_counts();
    assert_eq!(counts["reason"], "sigterm");
    assert_eq!(counts["traces_items"], 7);
    assert_eq!(counts["traces_requests"], 1);
}

#[test]
fn bad_flags_fail_with_a_message() {
    let out = Command::new(SINK).arg("--port").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port"));
    let out = Command::new(PEER)
        .args(["--count", "many"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'many'"));
    let out = Command::new(OURS_SDK)
        .args(["--overflow", "sometimes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'sometimes'"));
}
