//! Hostile senders against the running agent (`otlp-client run`), issue 16:
//! parallel gzip bombs, gRPC messages declaring 63 MiB, stalled bodies and
//! CPU-heavy requests, each while a prober checks `/health/live` on a fresh
//! connection every 50 ms and a valid sender keeps exporting (retrying on
//! back-pressure, as SDKs do).
//!
//! Each attack must keep the agent's peak RSS (VmHWM) below `memory_limit`
//! plus [`FIXED_OVERHEAD`], keep the probe's p99 under 100 ms, and deliver
//! every valid span exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::Channel;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_e2e::{
    FaultServer, Figures, Script,
    agent::{Agent, AgentConfig, post, spans},
    peak_rss_bytes, record,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The agent's `memory_limit` here; its intake budget is a quarter (32 MiB).
const MEMORY_LIMIT: u64 = 128 << 20;
/// What the agent may use beyond `memory_limit`: runtime, code, per-connection
/// buffers and HTTP/2 windows (documented in ARCHITECTURE.md).
const FIXED_OVERHEAD: u64 = 96 << 20;
const TRACE_GRPC: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

fn config(upstream: String) -> AgentConfig {
    let mut cfg = AgentConfig::new(upstream);
    cfg.extra = format!("memory_limit: {MEMORY_LIMIT}\n");
    cfg.receivers = "  body_read_timeout: 2s\n".to_owned();
    cfg
}

/// Probes `/health/live` on a fresh connection every 50 ms until stopped;
/// returns each probe's latency (a failed or 2 s+ probe counts as 2 s).
fn prober(admin: SocketAddr, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Duration>> {
    tokio::spawn(async move {
        let mut latencies = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            let ok = tokio::time::timeout(Duration::from_secs(2), async {
                let mut s = TcpStream::connect(admin).await.ok()?;
                s.write_all(b"GET /health/live HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
                    .await
                    .ok()?;
                let mut buf = Vec::new();
                s.read_to_end(&mut buf).await.ok()?;
                buf.starts_with(b"HTTP/1.1 ").then_some(())
            })
            .await;
            latencies.push(match ok {
                Ok(Some(())) => started.elapsed(),
                _ => Duration::from_secs(2),
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        latencies
    })
}

/// Exports 10 spans every 50 ms over HTTP until stopped, retrying each
/// request on 503 as an SDK would (bounded); returns the span ids acknowledged.
fn valid_sender(
    http: SocketAddr,
    first: u64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let mut next = first;
        let mut refused = 0;
        while !stop.load(Ordering::SeqCst) {
            let body = spans(next, 10);
            let mut acked = false;
            for _ in 0..200 {
                match post(http, "", "application/x-protobuf", &body).await {
                    200 => {
                        acked = true;
                        break;
                    }
                    503 => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    other => panic!("valid request answered {other}"),
                }
            }
            assert!(acked, "a valid request was refused for 20 s");
            next += 10;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (next - first, refused)
    })
}

fn p99(latencies: &mut [Duration]) -> Duration {
    latencies.sort();
    latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]
}

/// Runs `attack` beside the prober and the valid sender, then checks the
/// probe latency and that the valid spans were all delivered once.
async fn under_attack<F: std::future::Future<Output = String>>(
    name: &str,
    agent: &Agent,
    sink: &FaultServer,
    first_id: u64,
    attack: F,
) -> (String, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let probe = prober(agent.admin, stop.clone());
    let sender = valid_sender(agent.http, first_id, stop.clone());
    let outcome = tokio::time::timeout(Duration::from_secs(120), attack)
        .await
        .unwrap_or_else(|_| panic!("{name}: the attack did not end within 120 s"));
    // Some valid traffic after the attack too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut latencies = probe.await.unwrap();
    let (valid, refused) = sender.await.unwrap();
    let p = p99(&mut latencies);
    assert!(
        p < Duration::from_millis(100),
        "{name}: /health/live p99 {p:?} over {} probes",
        latencies.len()
    );
    // Every acknowledged valid span reaches the upstream, once.
    let ids = (first_id..first_id + valid).collect::<Vec<_>>();
    let started = Instant::now();
    loop {
        let seen = sink.span_ids();
        if ids.iter().all(|i| seen.contains(i)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name}: {} of {valid} valid spans delivered",
            ids.iter().filter(|i| seen.contains(i)).count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sink.stats().duplicate_spans, 0, "{name}");
    (
        format!(
            "{outcome}; probe p99 {} ms; valid sender retried {refused} times",
            p.as_millis()
        ),
        valid,
    )
}

fn gzip_zeros(len: usize) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..len >> 20 {
        enc.write_all(&chunk).unwrap();
    }
    Bytes::from(enc.finish().unwrap())
}

/// A traces request of `n` empty spans, gzipped (10M spans: about 19 KiB).
fn gzip_empty_spans(n: usize) -> Bytes {
    let mut scope = Vec::with_capacity(2 * n);
    for _ in 0..n {
        scope.extend_from_slice(&[0x12, 0x00]);
    }
    let mut resource = Vec::new();
    put_len(&mut resource, 0x12, &scope);
    let mut req = Vec::new();
    put_len(&mut req, 0x0a, &resource);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&req).unwrap();
    Bytes::from(enc.finish().unwrap())
}

fn put_len(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    let mut n = body.len() as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(body);
}

/// Sends one raw HTTP/1.1 request and returns the status code (0 when the
/// connection ended without an answer).
async fn raw_status(addr: SocketAddr, head: String, body: Bytes) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return 0;
    };
    if s.write_all(head.as_bytes()).await.is_err() || s.write_all(&body).await.is_err() {
        // Refused before we finished sending: read the answer anyway.
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw).await;
    String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn tally(codes: &[u16]) -> String {
    let mut kinds: Vec<(u16, usize)> = Vec::new();
    for c in codes {
        match kinds.iter_mut().find(|(k, _)| k == c) {
            Some((_, n)) => *n += 1,
            None => kinds.push((*c, 1)),
        }
    }
    kinds.sort();
    kinds
        .iter()
        .map(|(k, n)| format!("{n}x {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn grpc_prefix(declared: u32) -> Bytes {
    let mut b = BytesMut::with_capacity(5);
    b.put_u8(0);
    b.put_u32(declared);
    b.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_senders_cannot_push_the_agent_past_memory_limit_or_starve_probes() {
    let sink = FaultServer::start(Script::accept()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(sink.grpc_endpoint());
    let agent = Agent::start(&cfg, dir.path(), "hostile").unwrap();
    let pid = agent.pid();
    let mut rows = Vec::new();
    let mut first = 1u64;

    // A: 32 parallel gzip bombs of 100 MiB of zeros (each about 100 KiB),
    // over the 64 MiB decompressed limit.
    let bomb = gzip_zeros(100 << 20);
    let http = agent.http;
    let (outcome, n) = under_attack("gzip_bombs", &agent, &sink, first, async move {
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let head = format!(
                "POST /v1/traces HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                bomb.len()
            );
            tasks.push(tokio::spawn(raw_status(http, head, bomb.clone())));
        }
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        format!("32 bombs: {}", tally(&codes))
    })
    .await;
    let rss = peak_rss_bytes(pid).unwrap_or(u64::MAX);
    assert!(
        rss < MEMORY_LIMIT + FIXED_OVERHEAD,
        "gzip bombs: peak RSS {} MiB",
        rss >> 20
    );
    // Each bomb is refused: too large for the budget alone (413) or while
    // other bombs hold it (503).
    assert!(
        outcome.starts_with("32 bombs: ")
            && !outcome.contains("x 200")
            && !outcome.contains("x 400"),
        "{outcome}"
    );
    rows.push(("gzip_bombs_32x100MiB", "http", outcome, n, Some(rss)));
    first += n;

    // B: 40 gRPC messages declaring 63 MiB on 10 connections, sent in 64 KiB
    // frames until the agent refuses them.
    let grpc = agent.grpc;
    let (outcome, n) = under_attack("big_declared_grpc", &agent, &sink, first, async move {
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let stream = TcpStream::connect(grpc).await.unwrap();
            let (sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(async move {
                let _ = conn.await;
            });
            for _ in 0..4 {
                let mut sender = sender.clone();
                tasks.push(tokio::spawn(async move {
                    let (mut tx, body) = Channel::<Bytes>::new(2);
                    let req = http::Request::post(format!("http://{grpc}{TRACE_GRPC}"))
                        .header("content-type", "application/grpc")
                        .header("te", "trailers")
                        .body(body)
                        .unwrap();
                    if sender.ready().await.is_err() {
                        return "no stream".to_owned();
                    }
                    let resp = sender.send_request(req);
                    let feed = async {
                        let _ = tx.send_data(grpc_prefix(63 << 20)).await;
                        let chunk = Bytes::from(vec![0u8; 64 << 10]);
                        for _ in 0..(63 << 4) - 1 {
                            if tx.send_data(chunk.clone()).await.is_err() {
                                break;
                            }
                        }
                        // All but the last 64 KiB sent; stall with the body open.
                        tx
                    };
                    let (resp, _tx) = tokio::join!(resp, feed);
                    match resp {
                        Ok(r) => r
                            .headers()
                            .get("grpc-status")
                            .map_or("status in trailers".to_owned(), |v| {
                                format!("grpc-status {}", v.to_str().unwrap_or("?"))
                            }),
                        Err(e) => format!("stream error: {e}"),
                    }
                }));
            }
        }
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        assert!(
            outcomes
                .iter()
                .all(|o| o == "grpc-status 14" || o == "grpc-status 4" || o == "grpc-status 8"),
            "{outcomes:?}"
        );
        let unavailable = outcomes.iter().filter(|o| *o == "grpc-status 14").count();
        format!("40 messages declaring 63 MiB: {unavailable} UNAVAILABLE (budget spent), the rest DEADLINE_EXCEEDED/RESOURCE_EXHAUSTED")
    })
    .await;
    rows.push((
        "big_declared_grpc_40x63MiB",
        "grpc",
        outcome,
        n,
        peak_rss_bytes(pid),
    ));
    first += n;

    // C: 260 HTTP requests that send 10 of 1 MB declared body bytes and stall.
    let (outcome, n) = under_attack("stalled_bodies", &agent, &sink, first, async move {
        let mut held = Vec::new();
        for _ in 0..260 {
            let mut s = TcpStream::connect(http).await.unwrap();
            s.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000000\r\n\r\n0123456789")
                .await
                .unwrap();
            held.push(s);
        }
        let mut codes = Vec::new();
        for mut s in held {
            let mut raw = Vec::new();
            let _ = s.read_to_end(&mut raw).await;
            codes.push(
                String::from_utf8_lossy(&raw)
                    .split(' ')
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0u16),
            );
        }
        assert!(codes.iter().all(|c| *c == 408), "{}", tally(&codes));
        format!("260 stalled bodies: {} after the body read timeout", tally(&codes))
    })
    .await;
    rows.push((
        "stalled_bodies_260",
        "http",
        outcome,
        n,
        peak_rss_bytes(pid),
    ));
    first += n;

    // D: six 19 KiB gzip requests of 10M empty spans each (CPU-heavy to
    // decompress, validate and cut).
    let heavy = gzip_empty_spans(10_000_000);
    let accepted = Arc::new(AtomicU64::new(0));
    let acc = accepted.clone();
    let (outcome, n) = under_attack("cpu_heavy", &agent, &sink, first, async move {
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let head = format!(
                "POST /v1/traces HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                heavy.len()
            );
            tasks.push(tokio::spawn(raw_status(http, head, heavy.clone())));
        }
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        // Too many items for the queue (413) or back-pressure (503); none is
        // half taken.
        assert!(
            codes.iter().all(|c| *c == 413 || *c == 503 || *c == 200),
            "{codes:?}"
        );
        acc.store(
            codes.iter().filter(|c| **c == 200).count() as u64 * 10_000_000,
            Ordering::SeqCst,
        );
        format!("6 requests of 10M empty spans ({} KiB each): {}", heavy.len() >> 10, tally(&codes))
    })
    .await;
    rows.push((
        "cpu_heavy_6x10M_spans",
        "http",
        outcome,
        n,
        peak_rss_bytes(pid),
    ));

    let peak = peak_rss_bytes(pid).unwrap();
    for (scenario, _, _, _, rss) in &rows {
        let rss = rss.unwrap_or(u64::MAX);
        assert!(
            rss < MEMORY_LIMIT + FIXED_OVERHEAD,
            "{scenario}: peak RSS {} MiB over memory_limit {} MiB + {} MiB",
            rss >> 20,
            MEMORY_LIMIT >> 20,
            FIXED_OVERHEAD >> 20
        );
    }
    for (scenario, protocol, expected, valid, rss) in rows {
        record(&Figures {
            suite: "hostile_senders",
            scenario: scenario.to_owned(),
            protocol,
            expected,
            sent: valid,
            delivered: valid,
            lost: 0,
            duplicated: 0,
            dropped_or_failed: 0,
            peak_rss_bytes: rss,
            recover_ms: None,
            cases: None,
        });
    }
    assert!(
        peak < MEMORY_LIMIT + FIXED_OVERHEAD,
        "peak RSS {} MiB over memory_limit {} MiB + {} MiB",
        peak >> 20,
        MEMORY_LIMIT >> 20,
        FIXED_OVERHEAD >> 20
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a 10M-span request was taken"
    );
}
