//! The `otlp-client run` agent as a child process, and small raw clients for
//! its receivers and admin server, shared by every suite that drives it.

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{E2eError, client_binary};

/// `127.0.0.1:0`: the agent binds a port the kernel picks, and [`Agent::start`]
/// reads the one it got back from the agent's log (never a port found free
/// a moment before, which another process may take in between).
pub const ANY_PORT: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));

/// The agent's configuration: the upstream, the listen addresses, and YAML
/// blocks that override the defaults of these suites.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The upstream endpoint (`endpoint:`).
    pub upstream: String,
    /// `protocol:` towards the upstream.
    pub protocol: &'static str,
    /// `compression:` towards the upstream (`none` unless a test sets it).
    pub compression: &'static str,
    /// The disk queue directory (`queue.persistent.dir`), if any.
    pub persistent: Option<PathBuf>,
    /// `queue.persistent.max_bytes` when `persistent` is set.
    pub disk_max_bytes: String,
    /// The gRPC receiver ([`ANY_PORT`] unless a test sets it; the address
    /// bound is [`Agent::grpc`]). A test that restarts the agent after
    /// `kill -9` and needs the same addresses sets these three to the first
    /// run's [`Agent`] addresses: that agent bound them, so binding them again
    /// once it is dead is the one legitimate rebind. No suite needs it today:
    /// a restarted agent is reached through its own [`Agent`] addresses.
    pub grpc: SocketAddr,
    /// The HTTP receiver ([`ANY_PORT`] unless a test sets it).
    pub http: SocketAddr,
    /// The admin server ([`ANY_PORT`] unless a test sets it).
    pub admin: SocketAddr,
    /// The `retry:` block's body (indented two spaces per line).
    pub retry: String,
    /// The `queue:` block's lines other than `persistent` (indented two spaces).
    pub queue: String,
    /// The `batch:` block's body.
    pub batch: String,
    /// Extra lines under `receivers:` (indented two spaces).
    pub receivers: String,
    /// Extra top-level YAML appended as is.
    pub extra: String,
}

impl AgentConfig {
    /// Fast retries, a 20 ms batch timeout, an 8 MiB `drop_newest` memory queue.
    pub fn new(upstream: String) -> Self {
        Self {
            upstream,
            protocol: "grpc",
            compression: "none",
            persistent: None,
            disk_max_bytes: "256MiB".to_owned(),
            grpc: ANY_PORT,
            http: ANY_PORT,
            admin: ANY_PORT,
            retry: "  max_retries: 100\n  initial_backoff: 20ms\n  max_backoff: 1s\n  max_elapsed: 2m\n"
                .to_owned(),
            queue: format!(
                "  max_items: 200000\n  max_bytes: {}\n  overflow: drop_newest\n",
                8 << 20
            ),
            batch: "  batch_timeout: 20ms\n".to_owned(),
            receivers: String::new(),
            extra: String::new(),
        }
    }

    /// The whole YAML file.
    pub fn yaml(&self) -> String {
        let mut y = format!(
            "endpoint: {}\nprotocol: {}\ncompression: {}\ntimeout: 1s\nconnect_timeout: 500ms\n\
             retry:\n{}batch:\n{}receivers:\n  grpc: {}\n  http: {}\n{}admin:\n  listen: {}\nqueue:\n{}",
            self.upstream,
            self.protocol,
            self.compression,
            self.retry,
            self.batch,
            self.grpc,
            self.http,
            self.receivers,
            self.admin,
            self.queue
        );
        if let Some(dir) = &self.persistent {
            y.push_str(&format!(
                "  persistent:\n    dir: {}\n    max_bytes: {}\n    fsync: true\n",
                dir.display(),
                self.disk_max_bytes
            ));
        }
        y.push_str(&self.extra);
        y
    }
}

/// A running agent; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Agent {
    child: Child,
    /// The HTTP receiver's bound address.
    pub http: SocketAddr,
    /// The gRPC receiver's bound address.
    pub grpc: SocketAddr,
    /// The admin server's bound address.
    pub admin: SocketAddr,
    dir: PathBuf,
}

impl Agent {
    /// Writes `cfg` to `dir/agent-<tag>.yaml`, starts `otlp-client run` with
    /// debug logs into `dir/agent-<tag>.log`, reads the addresses its
    /// listeners bound from that log, and waits until the HTTP receiver
    /// accepts connections.
    ///
    /// # Errors
    ///
    /// [`E2eError::Io`] when the process cannot start or exits at start, or
    /// does not listen within `start_limit`.
    pub fn start(cfg: &AgentConfig, dir: &Path, tag: &str) -> Result<Agent, E2eError> {
        Self::start_wrapped(cfg, dir, tag, &[], Duration::from_secs(20))
    }

    /// As [`Agent::start`], under `wrapper` (e.g. valgrind) when it is not empty.
    ///
    /// # Errors
    ///
    /// As [`Agent::start`].
    pub fn start_wrapped(
        cfg: &AgentConfig,
        dir: &Path,
        tag: &str,
        wrapper: &[String],
        start_limit: Duration,
    ) -> Result<Agent, E2eError> {
        let io = |what: &'static str| move |source| E2eError::Io { what, source };
        let bin = client_binary()?;
        let config = dir.join(format!("agent-{tag}.yaml"));
        std::fs::write(&config, cfg.yaml()).map_err(io("write agent config"))?;
        let log_path = dir.join(format!("agent-{tag}.log"));
        let log = std::fs::File::create(&log_path).map_err(io("create agent log"))?;
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let child = cmd
            .args(["run", "-c"])
            .arg(&config)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_HEADERS")
            .env("OTLP_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("clone agent log"))?)
            .stderr(log)
            .spawn()
            .map_err(io("spawn otlp-client run"))?;
        let mut agent = Agent {
            child,
            http: cfg.http,
            grpc: cfg.grpc,
            admin: cfg.admin,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + start_limit;
        // Bounded by `start_limit`: the agent logs each address once bound.
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let bound = (
                logged_addr(&text, "admin server listening"),
                logged_addr(&text, "OTLP/gRPC receiver listening"),
                logged_addr(&text, "OTLP/HTTP receiver listening"),
            );
            if let (Some(admin), Some(grpc), Some(http)) = bound {
                (agent.admin, agent.grpc, agent.http) = (admin, grpc, http);
                break;
            }
            agent.check_starting(deadline, start_limit, "log its addresses")?;
            std::thread::sleep(Duration::from_millis(20));
        }
        while std::net::TcpStream::connect(agent.http).is_err() {
            agent.check_starting(deadline, start_limit, "listen")?;
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(agent)
    }

    /// Fails when the agent has exited, or when `deadline` passed before it
    /// did `what`.
    fn check_starting(
        &mut self,
        deadline: Instant,
        start_limit: Duration,
        what: &str,
    ) -> Result<(), E2eError> {
        if !self.alive() {
            return Err(E2eError::Io {
                what: "agent start",
                source: std::io::Error::other(format!("agent exited at start:\n{}", self.logs())),
            });
        }
        if Instant::now() >= deadline {
            return Err(E2eError::Io {
                what: "agent start",
                source: std::io::Error::other(format!(
                    "agent did not {what} within {start_limit:?}:\n{}",
                    self.logs()
                )),
            });
        }
        Ok(())
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, once the process has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        // `Child::kill` is SIGKILL on Unix.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything the agents of this test directory logged.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        all
    }

    /// The admin server's `/metrics` text (empty when it does not answer).
    pub async fn metrics(&self) -> String {
        let (_, body) = get(self.admin, "/metrics").await;
        body
    }

    /// The sum of the samples of `family` whose label set contains every one
    /// of `labels` (e.g. `signal="traces"`).
    pub async fn metric(&self, family: &str, labels: &[&str]) -> u64 {
        metric_sum(&self.metrics().await, family, labels)
    }
}

/// The address (`addr=`) on the first text-format log line that contains
/// `message` (`otlp-client run` logs `admin server listening addr=…` and
/// one such line per receiver once bound).
fn logged_addr(log: &str, message: &str) -> Option<SocketAddr> {
    log.lines()
        .filter(|line| line.contains(message))
        .find_map(|line| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
        })
        .and_then(|addr| addr.trim_matches('"').parse().ok())
}

/// One OTLP/protobuf traces request of `n` spans whose span ids (big-endian)
/// are `first..first + n`, as [`FaultServer::span_ids`](crate::FaultServer::span_ids) reads them.
pub fn spans(first: u64, n: u64) -> Vec<u8> {
    spans_with(first, n, "no-loss", 16)
}

/// As [`spans`], with every span named `name` and a trace id of
/// `trace_id_len` bytes (16 is valid; others test validation).
pub fn spans_with(first: u64, n: u64, name: &str, trace_id_len: usize) -> Vec<u8> {
    use opentelemetry_proto::tonic::{
        collector::trace::v1::ExportTraceServiceRequest,
        trace::v1::{ResourceSpans, ScopeSpans, Span},
    };
    use prost::Message;
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (first..first + n)
                    .map(|i| Span {
                        trace_id: vec![7; trace_id_len],
                        span_id: i.to_be_bytes().to_vec(),
                        name: name.to_owned(),
                        start_time_unix_nano: i,
                        end_time_unix_nano: i + 1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// The accounting of one signal, as the agent's `/metrics` shows it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// `otlp_items_accepted_total`.
    pub accepted: u64,
    /// `otlp_items_recovered_total`: found in the disk queue at start.
    pub recovered: u64,
    /// `otlp_items_sent_total`.
    pub sent: u64,
    /// `otlp_items_dropped_total`, every reason.
    pub dropped: u64,
    /// `otlp_items_failed_total`, every reason.
    pub failed: u64,
    /// `otlp_queue_items`.
    pub queued: u64,
    /// `otlp_items_refused_total` (never accepted, outside the identity).
    pub refused: u64,
}

impl Account {
    /// Whether `accepted + recovered = sent + dropped + failed + queued`.
    pub fn adds_up(&self) -> bool {
        self.accepted + self.recovered == self.sent + self.dropped + self.failed + self.queued
    }
}

impl Agent {
    /// The accounting of `signal` (`traces`, `metrics`, `logs`).
    pub async fn account(&self, signal: &str) -> Account {
        let m = self.metrics().await;
        let l = format!("signal=\"{signal}\"");
        let t = [l.as_str()];
        Account {
            accepted: metric_sum(&m, "otlp_items_accepted_total", &t),
            recovered: metric_sum(&m, "otlp_items_recovered_total", &t),
            sent: metric_sum(&m, "otlp_items_sent_total", &t),
            dropped: metric_sum(&m, "otlp_items_dropped_total", &t),
            failed: metric_sum(&m, "otlp_items_failed_total", &t),
            queued: metric_sum(&m, "otlp_queue_items", &t),
            refused: metric_sum(&m, "otlp_items_refused_total", &t),
        }
    }

    /// Waits (bounded by `limit`) until nothing of `signal` is queued, then
    /// asserts the accounting identity.
    ///
    /// # Panics
    ///
    /// When the identity does not hold: that is the test failing.
    pub async fn settled_account(&self, signal: &str, limit: Duration) -> Account {
        let deadline = Instant::now() + limit;
        loop {
            let a = self.account(signal).await;
            if (a.queued == 0 && a.adds_up()) || Instant::now() > deadline {
                assert!(a.adds_up(), "accounting identity: {a:?}");
                return a;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The sum of the samples of `family` in a Prometheus text exposition whose
/// label set contains every one of `labels`.
pub fn metric_sum(text: &str, family: &str, labels: &[&str]) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// A raw HTTP/1.1 answer: status (0 when the connection closed without one),
/// and the whole answer text (head and body).
pub type Answer = (u16, String);

/// Sends one raw HTTP/1.1 request and reads the answer to the end (10 s at most).
pub async fn request(addr: SocketAddr, head: &str, body: &[u8]) -> Answer {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    if s.write_all(head.as_bytes()).await.is_err() || s.write_all(body).await.is_err() {
        return (0, String::new());
    }
    let mut out = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await {
        Ok(_) => {
            let text = String::from_utf8_lossy(&out).into_owned();
            let status = text
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            (status, text)
        }
        Err(_) => (0, String::new()),
    }
}

/// Reads an answer to the end (10 s at most) and returns its status (0 when
/// the connection closed without one).
pub async fn read_status(s: &mut tokio::net::TcpStream) -> u16 {
    let mut out = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await {
        Ok(_) => String::from_utf8_lossy(&out)
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

/// `GET path` on `addr`.
pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    let head = format!("GET {path} HTTP/1.1\r\nhost: agent\r\nconnection: close\r\n\r\n");
    let (status, text) = request(addr, &head, b"").await;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `POST path` of `body` with `content_type` (and `head_extra` header lines,
/// each ending in `\r\n`).
pub async fn post_to(
    addr: SocketAddr,
    path: &str,
    head_extra: &str,
    content_type: &str,
    body: &[u8],
) -> Answer {
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: agent\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{head_extra}connection: close\r\n\r\n",
        body.len()
    );
    request(addr, &head, body).await
}

/// `POST /v1/traces`; returns the status only.
pub async fn post(addr: SocketAddr, head_extra: &str, content_type: &str, body: &[u8]) -> u16 {
    post_to(addr, "/v1/traces", head_extra, content_type, body)
        .await
        .0
}

/// The resident set size (`VmRSS`) of a process now.
pub fn rss_now(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}
