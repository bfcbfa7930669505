//! Helpers shared by the binary's integration tests: spawning `otlp-client`
//! with a clean environment, bounded runs, a sink child process, the agent as
//! a child process, plain HTTP GETs.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `otlp-client` with no `OTEL_*` / `OTLP_*` variables, so a developer's
/// collector settings never leak into a test.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_otlp-client"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") || k.starts_with("OTLP_") {
            c.env_remove(k);
        }
    }
    c
}

/// Runs to completion, killing the process after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{cmd:?} did not finish within {limit:?}\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stdout then stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The venv's python with the pinned OpenTelemetry packages (one lookup
/// for every suite).
#[allow(unused_imports)] // as dead_code above: not every test binary runs python
pub use otlp_test_support::python;

/// The address (`addr=`) on the first text-format log line that contains
/// `message`: `otlp-client run` logs `admin server listening addr=…` and one
/// such line per receiver (`OTLP/gRPC receiver listening`, `OTLP/HTTP
/// receiver listening`) once bound, so a test binds `127.0.0.1:0` and reads
/// the port back.
pub fn logged_addr(log: &str, message: &str) -> Option<String> {
    log.lines()
        .filter(|line| line.contains(message))
        .find_map(|line| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
        })
        .map(|addr| addr.trim_matches('"').to_owned())
}

/// `otlp-client sink` on free loopback ports, killed on drop.
#[derive(Debug)]
pub struct Sink {
    child: Child,
    pub grpc: String,
    pub http: String,
}

impl Sink {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A sink with more arguments, e.g. `--expect N --output FILE`.
    pub fn start_with(extra: &[&std::ffi::OsStr]) -> Self {
        Self::start_on("127.0.0.1:0", "127.0.0.1:0", extra)
    }

    /// A sink whose receivers bind `grpc` and `http` (e.g. one port on
    /// 127.0.0.2, for gateways behind a DNS name), with more arguments.
    pub fn start_on(grpc: &str, http: &str, extra: &[&std::ffi::OsStr]) -> Self {
        let mut child = bin()
            .args(["sink", "--grpc", grpc, "--http", http])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("sink line {line:?}: {e}"));
        Self {
            grpc: v["grpc"].as_str().unwrap().to_owned(),
            http: v["http"].as_str().unwrap().to_owned(),
            child,
        }
    }

    /// `GET /stats`.
    pub fn stats(&self) -> serde_json::Value {
        let (status, body) = http_get(&self.http, "/stats");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("stats body {body:?}: {e}"))
    }

    /// Waits (up to 20 s) until the sink counts `want` = (spans, data points,
    /// log records), and returns the last stats either way.
    pub fn wait_for(&self, want: (u64, u64, u64)) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let stats = self.stats();
            let got = (
                stats["spans"].as_u64().unwrap_or(0),
                stats["data_points"].as_u64().unwrap_or(0),
                stats["log_records"].as_u64().unwrap_or(0),
            );
            if got == want || started.elapsed() > Duration::from_secs(20) {
                return stats;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Sink {
    /// Waits (up to 20 s) for a sink started with `--expect` to exit by
    /// itself, and returns what it printed after its address line (its
    /// counts).
    pub fn wait_exit(&mut self) -> String {
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "sink did not exit after --expect"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut rest = String::new();
        if let Some(out) = self.child.stdout.as_mut() {
            std::io::Read::read_to_string(out, &mut rest).unwrap();
        }
        rest
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET: the status and the (de-chunked) body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    try_http_get(addr, path).unwrap_or_else(|| panic!("GET http://{addr}{path} failed"))
}

/// As [`http_get`], `None` when nothing answers.
pub fn try_http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    for _ in 0..100_000 {
        let Some((size, rest)) = body.split_once("\r\n") else {
            break;
        };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A child process, killed and reaped when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// Waits (up to `limit`) for the process to exit by itself; panics
    /// naming `what` when it does not.
    pub fn wait_within(&mut self, limit: Duration, what: &str) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "{what} did not finish within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `otlp-client run` agent and its addresses.
pub struct AgentProc {
    pub proc: Proc,
    pub grpc: String,
    pub http: String,
    pub admin: String,
}

/// Starts the agent forwarding to `upstream` (gRPC) with gRPC and HTTP
/// receivers; `receivers_extra` is YAML added under `receivers:` (indented
/// by two spaces, e.g. a `tls:` section). Returns once `/health/live`
/// answers on the plaintext admin port.
pub fn start_agent(upstream: &str, dir: &Path, receivers_extra: &str) -> AgentProc {
    let config = dir.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "endpoint: http://{upstream}\nprotocol: grpc\nreceivers:\n  grpc: 127.0.0.1:0\n  http: 127.0.0.1:0\n{receivers_extra}admin:\n  listen: 127.0.0.1:0\nbatch:\n  batch_timeout: 100ms\nqueue:\n  overflow: block\n"
        ),
    )
    .unwrap();
    // Lossy: the lines are not read after start, and the agent must never
    // block on its stderr.
    let (proc, rx) = spawn_json_agent(&config, &[], true);
    let (admin, grpc, http, _) = read_addresses(&rx);
    let started = Instant::now();
    while try_http_get(&admin, "/health/live").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "agent did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    AgentProc {
        proc,
        grpc,
        http,
        admin,
    }
}

/// Starts `otlp-client run --log-format json [extra] --config <config>` with
/// its stderr read by a thread into a channel of 4096 lines. `lossy` drops
/// the lines nobody takes (the thread reads to the end, so the agent never
/// blocks on a full pipe); otherwise the thread waits for room.
pub fn spawn_json_agent(
    config: &Path,
    extra: &[&str],
    lossy: bool,
) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let mut child = bin()
        .args(["run", "--log-format", "json"])
        .args(extra)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel::<String>(4096);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if lossy {
                let _ = tx.try_send(line);
            } else if tx.send(line).is_err() {
                return;
            }
        }
    });
    (Proc(child), rx)
}

/// Reads the agent's JSON log lines (up to 60 s) until it logged the
/// addresses its admin server and both receivers bound: (admin, gRPC, HTTP,
/// the lines read).
pub fn read_addresses(
    rx: &std::sync::mpsc::Receiver<String>,
) -> (String, String, String, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut admin, mut grpc, mut http): (Option<String>, Option<String>, Option<String>) =
        (None, None, None);
    let mut seen = Vec::new();
    loop {
        if let (Some(a), Some(g), Some(h)) = (&admin, &grpc, &http) {
            return (a.clone(), g.clone(), h.clone(), seen);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            panic!(
                "agent did not log its addresses within 60s:\n{}",
                seen.join("\n")
            );
        };
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            let msg = v["message"].as_str().unwrap_or("");
            let addr = v["addr"].as_str().map(str::to_owned);
            if msg.starts_with("admin server") {
                admin = addr;
            } else if msg.starts_with("OTLP/gRPC receiver") {
                grpc = addr;
            } else if msg.starts_with("OTLP/HTTP receiver") {
                http = addr;
            }
        }
        seen.push(line);
    }
}

/// `otlp-client run` with every listener on 127.0.0.1:0 and JSON logs, the
/// addresses read back from its log lines; killed on drop.
pub struct LoggingAgent {
    pub proc: Proc,
    pub grpc: String,
    pub http: String,
    pub admin: String,
    /// Every later stderr line (bounded: the reader blocks when 4096 are unread).
    pub lines: std::sync::mpsc::Receiver<String>,
    /// The lines read while starting.
    pub seen: Vec<String>,
}

/// Starts the agent forwarding to `upstream` over gRPC with `extra` YAML
/// appended to its config, and waits (up to 60 s) until it logged the
/// addresses of its admin server and both receivers.
pub fn start_logging_agent(upstream: &str, dir: &Path, extra: &str) -> LoggingAgent {
    let config = dir.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "endpoint: http://{upstream}\nprotocol: grpc\ntimeout: 1s\n\
             receivers:\n  grpc: 127.0.0.1:0\n  http: 127.0.0.1:0\n\
             admin:\n  listen: 127.0.0.1:0\n\
             batch:\n  batch_timeout: 100ms\n{extra}"
        ),
    )
    .unwrap();
    let (proc, rx) = spawn_json_agent(&config, &["--shutdown-timeout", "2s"], false);
    let (admin, grpc, http, seen) = read_addresses(&rx);
    LoggingAgent {
        proc,
        grpc,
        http,
        admin,
        lines: rx,
        seen,
    }
}

impl LoggingAgent {
    /// Sends SIGTERM and returns every line logged until the agent exited
    /// (within 30 s), with its exit code.
    #[cfg(unix)]
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let pid = self.proc.0.id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut lines = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => lines.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.proc.0.wait().unwrap();
                    return (status.code(), lines);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            assert!(
                Instant::now() < deadline,
                "agent did not stop within 30s:\n{}",
                lines.join("\n")
            );
        }
    }
}

/// Runs `command` (a shell command line) with its stdout and stderr on a
/// pseudo-terminal, through util-linux `script`; returns what the terminal
/// showed and the exit code.
pub fn on_a_terminal(
    command: &str,
    env: &[(&str, &str)],
    limit: Duration,
) -> (Option<i32>, String) {
    let mut cmd = Command::new("script");
    cmd.args(["-qefc", command, "/dev/null"])
        .env("TERM", "xterm-256color");
    for (k, v) in env {
        cmd.env(k, v);
    }
    for (k, _) in std::env::vars() {
        let ours = k.starts_with("OTEL_") || k.starts_with("OTLP_") || k == "NO_COLOR";
        if ours && !env.iter().any(|(e, _)| *e == k) {
            cmd.env_remove(k);
        }
    }
    let out = run(&mut cmd, limit);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A loopback address nobody listens on: bound by the kernel, noted, closed
/// (the one legitimate free-then-use: the test needs a port with no listener).
#[allow(dead_code)] // Not every test binary probes a closed port.
pub fn closed_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}
